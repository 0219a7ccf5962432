"""tools/data_memory_bench.py's ``build`` case: the cold build's steps, each timed,
on a small generated file (the figures are benchmarks; only the report's shape is
checked here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO

from yolact.data.coco_scale import write_coco_scale


def test_the_build_case_reports_every_step(tmp_path: Path) -> None:
    ann, images = write_coco_scale(str(tmp_path), n_images=40, seed=2)
    before = sorted(p.name for p in Path(ann).parent.iterdir())
    done = subprocess.run(
        [sys.executable, "tools/data_memory_bench.py", "--ann", ann, "--images", images,
         "--cases", "build"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("build  |")]
    for step in (
        "sha256 of the json",
        "json decode (C scanner)",
        "stream_records (all)",
        "check_columns",
        "assemble",
        "cache write",
        "peak RSS over the start, MB",
    ):
        assert f"{step} " in line, step
    assert sorted(p.name for p in Path(ann).parent.iterdir()) == before  # no cache left
