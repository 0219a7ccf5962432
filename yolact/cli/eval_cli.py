"""eval.py: run a model on an image, a folder, a video, a webcam or a stream."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch

from yolact.bench.benchmark import run_benchmark
from yolact.cli.compare_cli import run_compare
from yolact.cli.eval_args import parse_args
from yolact.cli.eval_outputs import (
    check_dataset_outputs,
    check_outputs,
    save_dataset_outputs,
    save_output_json,
    write_drawing,
)
from yolact.cli.predictors import (
    UsageError,
    benchmark_frames,
    build_predictor,
    dataset_mode,
    device_from_args,
)
from yolact.core.config import ConfigError
from yolact.core.device import select_device
from yolact.core.predictor import Predictor
from yolact.core.structures import Detections
from yolact.core.threads import ThreadsError, configure_threads
from yolact.core.weights import CheckpointError
from yolact.data.coco import CocoDataset, DatasetError, named_dataset
from yolact.engine.distributed import cleanup, device_for, init_distributed
from yolact.engine.evaluate import evaluate_dataset, match_classes
from yolact.io.coco_json import CocoJsonWriter, category_ids_for
from yolact.io.images import (
    IMAGE_EXTENSIONS,
    InputError,
    list_images,
    output_names,
    read_image,
    to_bgr8,
)
from yolact.io.pipeline import StageError, StageThread, StageTimes
from yolact.io.render import draw_detections
from yolact.io.sources import FrameReader, VideoSource, redact, split_in_out
from yolact.io.stop import StopSignals
from yolact.io.video import VideoWriter, open_window_possible

log = logging.getLogger("yolact")


ERRORS = (InputError, CheckpointError, ConfigError, UsageError, DatasetError, ThreadsError,
          StageError)  # fmt: skip
QUIT_KEYS = (27, ord("q"), ord("Q"))


def _shown(det: Detections, top_k: int) -> Detections:
    """The detections to draw: the first ``top_k`` (they are sorted by score)."""
    k = min(max(top_k, 0), len(det))
    return det.select(torch.arange(k, device=det.scores.device))


def _draw(image: np.ndarray, det: Detections, args: argparse.Namespace, fps=None) -> np.ndarray:
    return draw_detections(
        image,
        _shown(det, args.top_k),
        masks=args.display_masks,
        boxes=args.display_bboxes,
        text=args.display_text,
        scores=args.display_scores,
        fps=fps,
    )


def _summary(det: Detections, top_k: int) -> str:
    shown = _shown(det, top_k)
    parts = [
        f"{name} {score:.2f} [{', '.join(str(int(v)) for v in box)}]"
        for name, score, box in zip(shown.names, shown.scores.tolist(), shown.boxes.tolist())
    ]
    return f"{len(det)} detections" + (": " + "; ".join(parts) if parts else "")


def eval_image(predictor: Predictor, spec: str, args: argparse.Namespace, writer) -> None:
    src, out = split_in_out(spec)
    image = read_image(src)
    det = predictor(image)
    if writer is not None:
        writer.add(det, 0, os.path.basename(src), category_ids_for(predictor.class_names))
    print(f"{redact(src)}: {_summary(det, args.top_k)}")
    drawing = _draw(image, det, args)
    if out:
        write_drawing(out, drawing)
        print(f"wrote {out}")
    elif open_window_possible():
        cv2.imshow(os.path.basename(redact(src)), drawing)
        cv2.waitKey(0)
        cv2.destroyAllWindows()


def eval_images(
    predictor: Predictor,
    spec: str,
    args: argparse.Namespace,
    writer: CocoJsonWriter | None,
    stop: StopSignals | None = None,
) -> None:
    """``--images IN_DIR:OUT_DIR``: draw every image of a folder into another.

    Drawings are PNG files named by :func:`yolact.io.images.output_names`, so two
    inputs never share an output. With ``--output_json`` the ``image_id`` is the
    input's place in the sorted folder listing and ``file_name`` its own name.
    A stop request (SIGINT, SIGTERM) ends the loop after the current image.
    """
    src, out = split_in_out(spec)
    if not out:
        raise UsageError("--images needs IN_DIR:OUT_DIR")
    files = list_images(src)
    if not files:
        raise InputError(f"no images in {src} (looked for {', '.join(IMAGE_EXTENSIONS)})")
    names = output_names(files)
    if args.max_images >= 0:
        files = files[: args.max_images]
    os.makedirs(out, exist_ok=True)
    from tqdm import tqdm

    done, skipped = 0, []
    ids = category_ids_for(predictor.class_names)
    for i, path in enumerate(tqdm(files, desc="images", unit="img", disable=args.no_bar)):
        if stop is not None and stop.requested:
            break
        try:
            image = read_image(path)
        except InputError as e:
            skipped.append(path)
            tqdm.write(f"skipping: {e}", file=sys.stderr)
            continue
        det = predictor(image)
        if writer is not None:
            writer.add(det, i, os.path.basename(path), ids)
        write_drawing(os.path.join(out, names[i]), _draw(image, det, args))
        done += 1
    if skipped and not done:
        raise InputError(f"none of the {len(skipped)} images in {src} could be read")
    print(f"processed {done} images into {out}, skipped {len(skipped)}")


class FPSMeter:
    """Frames per second over a sliding window of recent frames."""

    def __init__(self, window: int = 30) -> None:
        self.times: deque = deque(maxlen=window)

    def tick(self) -> float | None:
        self.times.append(time.perf_counter())
        if len(self.times) < 2:
            return None
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


class _VideoSink:
    """The drawing and writing stage of a video run (on its own thread): post-processing,
    ``--output_json``, drawing and encoding, in the order the frames were read."""

    def __init__(
        self,
        predictor: Predictor,
        args: argparse.Namespace,
        src: str,
        writer: CocoJsonWriter | None,
        video_out: VideoWriter | None,
        show: bool,
        times: StageTimes,
        bar: Any,
    ) -> None:
        self.predictor, self.args, self.src = predictor, args, src
        self.writer, self.video_out, self.show = writer, video_out, show
        self.times, self.bar = times, bar
        self.ids = category_ids_for(predictor.class_names)
        self.meter = FPSMeter()
        self.fps: float | None = None
        self.processed = 0
        self.detections = 0
        self.latest: np.ndarray | None = None

    def __call__(self, item: tuple[list[tuple[int, np.ndarray]], Any]) -> None:
        """Post-process one network batch and draw, write and count its frames."""
        frames, raw = item
        with self.times.timed("post"):
            dets = self.predictor.run_post(raw, [frame.shape[:2] for _, frame in frames])
        with self.times.timed("draw+write"):
            for (index, frame), det in zip(frames, dets):
                self.processed += 1
                self.times.frames = self.processed
                self.detections += len(det)
                self.fps = self.meter.tick() or self.fps
                if self.writer is not None:
                    self.writer.add(det, index, os.path.basename(self.src), self.ids)
                if self.video_out is None and not self.show:
                    continue
                fps = self.fps if self.args.display_fps else None
                drawing = _draw(frame, det, self.args, fps)
                if self.video_out is not None:
                    self.video_out.write(drawing)
                if self.show:
                    self.latest = drawing
        self.bar.update(len(frames))


def _show_latest(sink: _VideoSink, window: str) -> bool:
    """Show the newest drawing (windows belong to the main thread); True on a quit key."""
    drawing, sink.latest = sink.latest, None
    if drawing is not None:
        cv2.imshow(window, drawing)
    return (cv2.waitKey(1) & 0xFF) in QUIT_KEYS


def eval_video(
    predictor: Predictor,
    spec: str,
    args: argparse.Namespace,
    writer: CocoJsonWriter | None,
    stop: StopSignals | None = None,
) -> None:
    """``--video SRC[:OUT]``: a video file, webcam or stream, drawn to OUT or a window.

    Three stages run at once: reading and decoding (a reader thread), the network
    (this thread), and post-processing, drawing and encoding (a stage thread), with
    bounded queues between them; a file's frames all arrive in order, a live
    source's newest frame is taken. The time per frame of every stage is printed
    at the end. A stop request (SIGINT, SIGTERM) ends reading; the frames already
    read are processed, written and reported, and OUT is closed as a playable
    file. An error in a stage ends the run with that error.
    """
    src, out = split_in_out(spec)
    name = redact(src)  # what messages, the window and --output_json show
    source = VideoSource.open(src)
    show = open_window_possible() and (args.display or out is None)
    if out is None and not show:
        print("note: no display here and no output file given; detections are only counted",
              file=sys.stderr)  # fmt: skip
    window = f"yolact: {name}"
    video_out = VideoWriter(out, source.fps, (source.width, source.height)) if out else None
    batch_size = 1 if source.is_live else max(1, args.video_multiframe)
    from tqdm import tqdm

    total = source.frame_count
    if total is not None and args.max_images >= 0:
        total = min(total, args.max_images)
    bar = tqdm(total=total, desc="frames", unit="frame", disable=args.no_bar or source.is_live)
    times = StageTimes(dict.fromkeys(("read", "network", "post", "draw+write"), 0.0))
    sink = _VideoSink(predictor, args, name, writer, video_out, show, times, bar)
    stage = StageThread(sink, "drawing and writing", max_queue=2, context=torch.no_grad)
    reader = FrameReader(source, cancel=stop.event if stop is not None else None)
    stopped = False
    start = time.perf_counter()
    try:
        with reader:
            pending: list[tuple[int, np.ndarray]] = []
            sent = 0
            frames_iter = iter(reader)
            while not stopped:
                item = next(frames_iter, None)
                if item is not None:
                    pending.append((item[0], to_bgr8(item[1])))
                    if args.max_images >= 0 and sent + len(pending) >= args.max_images:
                        stopped = True
                    if stop is not None and stop.requested:
                        stopped = True
                    if len(pending) < batch_size and not stopped:
                        continue
                if not pending:
                    break
                with times.timed("network"), torch.no_grad():
                    raw = predictor.run_network(predictor.run_pre([f for _, f in pending]))
                stage.put((pending, raw))
                sent += len(pending)
                pending = []
                if show and _show_latest(sink, window):
                    stopped = True
                if item is None:
                    break
        stage.finish()
        if show:
            _show_latest(sink, window)
    except Exception:
        with contextlib.suppress(Exception):  # keep what went through the network
            stage.finish()
        raise
    finally:
        stage.abort()
        bar.close()
        if video_out is not None:
            video_out.close()
        if show:
            cv2.destroyAllWindows()
    wall_s = time.perf_counter() - start
    times.add("read", reader.read_seconds)
    rate = f", {sink.fps:.1f} FPS" if sink.fps else ""
    dropped = getattr(reader, "dropped", 0)
    extra = f", {dropped} stale frames dropped" if dropped else ""
    print(f"{name}: processed {sink.processed} frames, {sink.detections} detections{rate}{extra}")
    print(times.summary(wall_s))
    if getattr(reader, "ended_early", False) and not stopped:
        print(f"note: the stream {name} ended or dropped; kept what was processed", file=sys.stderr)
    if video_out is not None and video_out.frames_written:
        print(f"wrote {out} ({video_out.frames_written} frames)")
    elif video_out is not None:
        print(f"note: no frame was processed; {out} not written", file=sys.stderr)


def benchmark(predictor: Predictor, args: argparse.Namespace) -> None:
    default = 200 if predictor.device.type == "cuda" else 20
    count = args.max_images if args.max_images > 0 else default
    frames = benchmark_frames(args, count)
    batch = max(1, args.video_multiframe)
    result = run_benchmark(predictor, frames, warmup=args.benchmark_warmup, batch_size=batch)
    print(result.table())


def eval_dataset(args: argparse.Namespace) -> int:
    """COCO box and mask AP over a dataset; under torchrun the images are sharded."""
    if args.dataset and (args.val_ann or args.val_images):
        raise UsageError("give --dataset or --val_ann/--val_images, not both")
    if not args.dataset and not (args.val_ann and args.val_images):
        raise UsageError("--val_ann and --val_images go together")
    ann_file, image_dir = named_dataset(args.dataset) if args.dataset else (
        args.val_ann, args.val_images)  # fmt: skip
    dataset = CocoDataset(ann_file, image_dir)  # fails before the model is built
    check_dataset_outputs(args, ann_file)
    try:
        requested = select_device(device_from_args(args))
    except ValueError as e:
        raise UsageError(str(e)) from None
    info = init_distributed(requested.type)
    try:
        args.device = str(device_for(info, str(requested)))
        predictor = build_predictor(args, class_names=dataset.class_names,
                                    class_source=os.path.basename(ann_file))  # fmt: skip
        dataset, note = match_classes(dataset, predictor.class_names)
        if note and info.is_main:
            print(note, file=sys.stderr)
        result = evaluate_dataset(predictor, dataset, max_images=args.max_images,
                                  progress=not args.no_bar, rank=info.rank,
                                  world_size=info.world_size)  # fmt: skip
    finally:
        cleanup()
    if not info.is_main:
        return 0
    print(result.table())
    if result.metrics is None:
        print(f"note: {ann_file} has no annotations; COCOeval skipped, wrote results only",
              file=sys.stderr)  # fmt: skip
    save_dataset_outputs(result, args, results=args.output_coco_json or result.metrics is None)
    return 0


def run(args: argparse.Namespace, stop: StopSignals | None = None) -> int:
    """Do what the flags ask; returns the exit code.

    With ``stop``, ``--images`` and ``--video`` end early on SIGINT/SIGTERM and
    keep what they processed (drawings, video file, ``--output_json``).
    """
    if args.seed is not None:
        torch.manual_seed(args.seed)
    inputs = [x for x in (args.image, args.images, args.video) if x]
    if len(inputs) > 1:
        raise UsageError("give only one of --image, --images, --video")
    if not inputs and not args.benchmark:
        if dataset_mode(args):
            return eval_dataset(args)
        raise UsageError("give --image, --images or --video (or --dataset, --val_ann, --benchmark)")
    if args.video_multiframe < 1:
        raise UsageError("--video_multiframe must be at least 1")
    if args.backends and not args.benchmark:
        raise UsageError("--backends goes with --benchmark")
    if args.benchmark and (args.compare or args.backends):
        return run_compare(args)
    if not args.benchmark:
        check_outputs(args)  # before the model is built: nothing to lose yet
    predictor = build_predictor(args)
    if args.benchmark:
        benchmark(predictor, args)
        return 0
    writer = CocoJsonWriter(args.output_json) if args.output_json else None
    # One image (which may wait for a key in its window) stops at once instead.
    with stop.polling() if stop is not None and not args.image else contextlib.nullcontext():
        try:
            if args.image:
                eval_image(predictor, args.image, args, writer)
            elif args.images:
                eval_images(predictor, args.images, args, writer, stop)
            else:
                eval_video(predictor, args.video, args, writer, stop)
        except BaseException:
            save_output_json(writer, failing=True)
            raise
        save_output_json(writer, failing=False)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (see ``EXIT_CODES`` in eval_args)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    args = parse_args(list(argv) if argv is not None else None)
    with StopSignals() as stop:
        try:
            # A video keeps one drawing and writing thread busy beside the network.
            configure_threads(args.threads, reserved=1 if args.video else 0)
            code = run(args, stop)
        except ERRORS as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"interrupted ({stop.name})", file=sys.stderr)
            return stop.exit_code
    if stop.requested:
        print(f"stopped by {stop.name}; kept what was processed", file=sys.stderr)
        return stop.exit_code
    return code
