"""tools/eval_streams_bench.py: paced loopback cameras through eval.py (a short run; the
figures themselves are benchmarks, not tests)."""

from __future__ import annotations

import re
import sys

from conftest import REPO

if str(REPO / "tools") not in sys.path:  # the tools are scripts: `python tools/X.py`
    sys.path.insert(0, str(REPO / "tools"))

from eval_streams_bench import main, parse_args  # noqa: E402


def test_flags_before_and_after_the_separator() -> None:
    args, rest = parse_args(["--streams=3", "--fps=5", "--", "--half", "--detect_fps=4"])
    assert (args.streams, args.fps, args.seconds, args.no_out) == (3, 5.0, 20.0, False)
    assert rest == ["--half", "--detect_fps=4"]
    assert parse_args(["--no_out"])[1] == []


def test_two_cameras_each_get_results_and_a_video(capsys, tiny_ckpt) -> None:
    code = main(["--streams=2", "--fps=10", "--seconds=1", "--size=64x48", "--",
                 f"--trained_model={tiny_ckpt}", "--cuda=False"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    lines = re.findall(r"^source (\d) \S+: (\d+) delivered, (\d+) processed", out, re.M)
    assert [k for k, _, _ in lines] == ["0", "1"]
    assert all(int(done) >= 1 and int(got) == 10 for _, got, done in lines)
    written = re.findall(r"^wrote \S+cam(\d)\.avi \((\d+) frames\)$", out, re.M)
    assert written == [(k, done) for k, _, done in lines]
    assert "frames sent per camera: [10, 10]" in out
