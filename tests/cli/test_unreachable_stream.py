"""An unreachable stream ends eval.py in exactly one line: ours, without FFmpeg's own
log lines and without the stream's password."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO, free_port

SHIPPED = REPO / "weights" / "yolact_tiny_synthetic.pth"


def test_refused_stream_is_one_line_without_ffmpeg_logs() -> None:
    url = f"rtsp://bob:secret@127.0.0.1:{free_port()}/cam"
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"}
    env["OMP_NUM_THREADS"] = "1"
    run = subprocess.run(
        [sys.executable, str(REPO / "eval.py"), f"--trained_model={SHIPPED}", f"--video={url}"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300,
    )  # fmt: skip
    lines = [ln for ln in (run.stdout + run.stderr).splitlines() if ln.strip()]
    assert run.returncode != 0
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: cannot connect to stream rtsp://bob:***@127.0.0.1:")
    assert "secret" not in run.stdout + run.stderr
