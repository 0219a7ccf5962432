"""Many live streams through one model: loopback MJPEG cameras and per-source figures.

Each camera is an MJPEG-over-HTTP server on 127.0.0.1 (a thread of this process)
that sends synthetic frames at a fixed rate for a fixed time, then closes; one may
freeze (send nothing) for some seconds in the middle. The model runs over all of
them through :func:`yolact.inference.stream.stream`, and the per-source figures
are printed with the targets of the "many streams" scenarios:

- ``4``: 4 streams at 15 fps: each stream's results cover >= 90% of its frames,
  with p95 latency <= 100 ms;
- ``freeze``: the same with stream 0 silent for a while: the others keep >= 90%
  of their rate meanwhile;
- ``8``: 8 streams (overload): processed rates within 10% of each other, drops counted.

Run as ``python -m yolact.bench.streams --trained_model=W [--half] [--scenario=all]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from yolact.inference.stats import SourceStats

SCENARIOS = ("4", "freeze", "8")


def synthetic_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """``count`` BGR frames: a circle and a square moving across a grey field."""
    frames = []
    for i in range(count):
        img = np.full((height, width, 3), 90, np.uint8)
        r = max(4, height // 6)
        x = r + (i * width // count) % max(1, width - 2 * r)
        cv2.circle(img, (x, height // 3), r, (40, 200, 40), -1)
        s = width - 2 * r - (i * width // (2 * count)) % max(1, width - 3 * r)
        cv2.rectangle(img, (s, height // 2), (s + r * 2, height // 2 + r * 2), (200, 60, 60), -1)
        frames.append(img)
    return frames


class PacedCamera:
    """An MJPEG-over-HTTP camera on 127.0.0.1 sending ``fps`` frames a second.

    From a client's connection on, frame ``k`` goes at ``k / fps`` seconds (frames
    due while frozen are not sent); after ``seconds`` the connection closes.

    Args:
        jpegs: the encoded frames, sent in turn.
        fps: frames per second.
        seconds: how long it sends.
        freeze: (start, length) in seconds after the connection: silent meanwhile.
    """

    def __init__(
        self,
        jpegs: Sequence[bytes],
        fps: float,
        seconds: float,
        freeze: tuple[float, float] | None = None,
    ) -> None:
        self.sent = 0
        self.connected: float | None = None  # time.monotonic() of the connection
        self.freeze = freeze
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                start = camera.connected = time.monotonic()
                k = 0
                while (due := k / fps) < seconds:
                    k += 1
                    if freeze is not None and freeze[0] <= due < freeze[0] + freeze[1]:
                        continue
                    pause = start + due - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    jpeg = jpegs[(k - 1) % len(jpegs)]
                    head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}"
                    try:
                        self.wfile.write(head.encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                        self.wfile.flush()
                    except OSError:
                        return
                    camera.sent += 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/cam.mjpg"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class ScenarioResult:
    """One scenario's figures."""

    name: str
    stats: list[SourceStats]
    sent: list[int]
    freeze_ratio: list[float | None]  # per source: rate while stream 0 froze / otherwise
    wall_s: float


def _rate_ratio(
    captured: list[float], window: tuple[float, float], span: tuple[float, float]
) -> float | None:
    """Results per second captured inside ``window`` over those outside it (in ``span``)."""
    inside = sum(window[0] <= t < window[1] for t in captured)
    outside = len(captured) - inside
    length_in = window[1] - window[0]
    length_out = (span[1] - span[0]) - length_in
    if length_in <= 0 or length_out <= 0 or outside == 0:
        return None
    return (inside / length_in) / (outside / length_out)


def run_scenario(
    predictor: object,
    name: str,
    streams: int,
    fps: float,
    seconds: float,
    jpegs: Sequence[bytes],
    freeze: tuple[float, float] | None = None,
    **options: object,
) -> ScenarioResult:
    """Serve ``streams`` cameras and run the model over them until they close."""
    cameras = [PacedCamera(jpegs, fps, seconds, freeze if i == 0 else None) for i in range(streams)]
    captured: list[list[float]] = [[] for _ in cameras]
    start = time.monotonic()
    try:
        s = predictor.stream([c.url for c in cameras], **options)  # type: ignore[attr-defined]
        with s:
            for r in s:
                captured[r.source_index].append(r.captured)
            stats = s.source_stats()
    finally:
        for camera in cameras:
            camera.close()
    wall = time.monotonic() - start
    ratios: list[float | None] = [None] * streams
    frozen_from = cameras[0].connected
    if freeze is not None and frozen_from is not None:
        window = (frozen_from + freeze[0], frozen_from + freeze[0] + freeze[1])
        for i in range(1, streams):
            connected = cameras[i].connected or frozen_from
            ratios[i] = _rate_ratio(captured[i], window, (connected, connected + seconds))
    return ScenarioResult(name, stats, [c.sent for c in cameras], ratios, wall)


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(result: ScenarioResult, fps: float) -> list[str]:
    """The scenario's lines: one per source, then its targets."""
    lines = [f"== {result.name} ({result.wall_s:.1f} s)"]
    lines += [st.line() for st in result.stats]
    shares = [st.processed / st.delivered if st.delivered else 0.0 for st in result.stats]
    p95 = [st.latency_p95_ms for st in result.stats]
    if result.name.startswith("4 "):
        worst = min(shares)
        worst_p95 = max((p for p in p95 if p is not None), default=float("inf"))
        lines.append(f"results for >= 90% of each stream's frames: lowest {worst:.0%} "
                     f"({_verdict(worst >= 0.9)})")  # fmt: skip
        lines.append(f"p95 latency <= 100 ms: highest {worst_p95:.0f} ms "
                     f"({_verdict(worst_p95 <= 100)})")  # fmt: skip
    if result.name.startswith("freeze"):
        ratios = [r for r in result.freeze_ratio if r is not None]
        low = min(ratios) if ratios else 0.0
        lines.append(f"others' rate while stream 0 froze, against their rate otherwise: "
                     f"lowest {low:.0%} ({_verdict(low >= 0.9)})")  # fmt: skip
    if result.name.startswith("8 "):
        rates = [st.fps for st in result.stats]
        spread = max(rates) / min(rates) - 1 if min(rates) > 0 else float("inf")
        dropped = sum(st.dropped for st in result.stats)
        adds_up = all(st.delivered == st.processed + st.dropped for st in result.stats)
        lines.append(f"processed rates within 10% of each other: {min(rates):.2f}-"
                     f"{max(rates):.2f} FPS, spread {spread:.1%} "
                     f"({_verdict(spread <= 0.1)})")  # fmt: skip
        lines.append(f"drops counted: {dropped} dropped, delivered = processed + dropped for "
                     f"every source: {adds_up}")  # fmt: skip
    lines.append(f"frames sent per camera: {result.sent} (at {fps:g} fps)")
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trained_model", default="weights/yolact_tiny_synthetic.pth")
    p.add_argument("--half", action="store_true", help="bfloat16 on the CPU, float16 on CUDA")
    p.add_argument("--device", default="cpu")
    p.add_argument("--scenario", default="all", choices=(*SCENARIOS, "all"))
    p.add_argument("--fps", type=float, default=15.0, help="each camera's frame rate")
    p.add_argument("--seconds", type=float, default=20.0, help="how long each camera sends")
    p.add_argument("--freeze", type=float, default=5.0, help="seconds stream 0 stays silent")
    p.add_argument("--size", default="320x240", help="frame size WxH")
    p.add_argument("--batch_wait", type=float, default=0.005)
    p.add_argument("--max_batch", type=int, default=None)
    p.add_argument("--detect_fps", type=float, default=None)
    p.add_argument("--threads", type=int, default=None)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
        if width < 32 or height < 32:
            raise ValueError
    except ValueError:
        print(f"error: --size must be WxH of at least 32x32, got {args.size!r}", file=sys.stderr)
        return 2
    if not (args.fps > 0 and args.seconds > 0 and 0 <= args.freeze < args.seconds):
        print("error: --fps and --seconds must be > 0 and --freeze within --seconds",
              file=sys.stderr)  # fmt: skip
        return 2
    from yolact import Predictor
    from yolact.io.images import InputError

    try:
        predictor = Predictor.from_checkpoint(
            args.trained_model, device=args.device, half=args.half, threads=args.threads
        )
    except (InputError, ValueError, TypeError, OSError) as err:
        print(f"error: {str(err).splitlines()[0] if str(err) else type(err).__name__}",
              file=sys.stderr)  # fmt: skip
        return 2
    frames = synthetic_frames(30, width, height)
    jpegs = [cv2.imencode(".jpg", f)[1].tobytes() for f in frames]
    predictor(frames[:4])  # warm up (bfloat16 kernels, allocations)
    options = {"batch_wait": args.batch_wait, "max_batch": args.max_batch,
               "detect_fps": args.detect_fps}  # fmt: skip
    print(f"model {args.trained_model}, half={args.half}, {width}x{height} frames at "
          f"{args.fps:g} fps for {args.seconds:g} s per camera, options {options}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    plan = {
        "4": ("4 streams", 4, None),
        "freeze": (f"freeze: 4 streams, stream 0 silent {args.freeze:g} s", 4,
                   (args.seconds / 4, args.freeze)),
        "8": ("8 streams (overload)", 8, None),
    }  # fmt: skip
    for key in SCENARIOS if args.scenario == "all" else (args.scenario,):
        name, n, freeze = plan[key]
        result = run_scenario(predictor, name, n, args.fps, args.seconds, jpegs, freeze,
                              **options)  # fmt: skip
        print("\n".join(report(result, args.fps)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
