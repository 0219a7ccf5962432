"""``--benchmark_dir`` that cannot be written is one line before any work, not a
traceback after every model was timed; the files are written beside, then moved
(issue 16, items 3 and 6, for the comparison's files)."""

from __future__ import annotations

import os

from yolact.bench.benchmark import BenchmarkResult
from yolact.bench.compare import Comparison, ModelReport
from yolact.cli.eval_cli import main


def test_a_benchmark_dir_under_a_file_is_one_line_before_any_work(tmp_path, capsys) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_bytes(b"mine")
    code = main([
        "--benchmark", "--config=yolact_tiny", "--compare=yolact_tiny", "--max_images=1",
        "--benchmark_batch=1", "--benchmark_warmup=0", f"--benchmark_dir={blocker / 'b'}",
        "--cuda=False",
    ])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err == (
        f"error: --benchmark_dir: cannot write to {blocker / 'b'}: {blocker} is not a folder\n"
    )
    assert blocker.read_bytes() == b"mine" and os.listdir(tmp_path) == ["notes.txt"]


def test_the_files_replace_earlier_ones_and_leave_no_temporary(tmp_path) -> None:
    (tmp_path / "comparison.md").write_text("earlier")
    timing = BenchmarkResult(config="m", device="cpu", batch_size=1, frames=1, image_size=(8, 8),
                             pre_ms=1.0, network_ms=2.0, post_ms=3.0)  # fmt: skip
    report = ModelReport("m", [timing], {1: 10.0}, 1.0)
    comparison = Comparison([report], "cpu", "fp32", 1, (8, 8))
    written = comparison.write(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["comparison.csv", "comparison.md", "comparison.png"]
    assert written == [str(tmp_path / n) for n in ("comparison.md", "comparison.csv",
                                                    "comparison.png")]  # fmt: skip
    assert (tmp_path / "comparison.md").read_text().startswith("Device: cpu, precision: fp32")
