"""eval.py over several paced loopback cameras, each drawn to its own video file.

Starts ``--streams`` MJPEG-over-HTTP cameras on 127.0.0.1 (``PacedCamera`` of
:mod:`yolact.bench.streams`: synthetic frames at ``--fps`` for ``--seconds``), then
runs ``eval.py --video=URL1:OUT1,URL2:OUT2,...`` in this process with the eval
flags given after ``--``, so drawing and writing every source's video is part of
what is measured. eval.py prints its own figures (one line per source); this
script adds the load average before and after.

    python tools/eval_streams_bench.py --streams=4 --fps=15 --seconds=20 -- \\
        --trained_model=weights/yolact_tiny_synthetic.pth --half
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence

import cv2

from yolact.bench.streams import PacedCamera, synthetic_frames
from yolact.cli.eval_cli import main as eval_main


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """This script's flags, and the eval.py flags after ``--``."""
    argv = list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", type=int, default=4, help="how many cameras")
    p.add_argument("--fps", type=float, default=15.0, help="each camera's frame rate")
    p.add_argument("--seconds", type=float, default=20.0, help="how long each camera sends")
    p.add_argument("--size", default="320x240", help="frame size WxH")
    p.add_argument("--no_out", action="store_true", help="count only: no video files")
    return p.parse_args(argv[:cut]), argv[cut + 1 :]


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the cameras, run eval.py over them; returns eval.py's exit status."""
    args, eval_flags = parse_args(sys.argv[1:] if argv is None else argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    jpegs = [cv2.imencode(".jpg", f)[1].tobytes() for f in synthetic_frames(30, width, height)]
    cameras = [PacedCamera(jpegs, args.fps, args.seconds) for _ in range(args.streams)]
    load = os.getloadavg()[0]
    print(f"{args.streams} cameras, {width}x{height} at {args.fps:g} fps for {args.seconds:g} "
          f"s; load average {load:.1f} on {os.cpu_count()} CPUs", flush=True)  # fmt: skip
    try:
        with tempfile.TemporaryDirectory() as folder:
            items = [c.url if args.no_out else f"{c.url}:{folder}/cam{k}.avi"
                     for k, c in enumerate(cameras)]  # fmt: skip
            code = eval_main(["--no_bar", f"--video={','.join(items)}", *eval_flags])
    finally:
        for camera in cameras:
            camera.close()
    print(f"frames sent per camera: {[c.sent for c in cameras]}; load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    return code


if __name__ == "__main__":
    sys.exit(main())
