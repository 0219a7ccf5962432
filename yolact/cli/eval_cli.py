"""eval.py: run a model on an image, a folder, a video, a webcam or a stream."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import cv2
import numpy as np
import torch

from yolact.bench.benchmark import run_benchmark
from yolact.cli.compare_cli import run_compare
from yolact.cli.eval_args import EvalOptions
from yolact.cli.eval_outputs import (
    check_dataset_outputs,
    check_outputs,
    save_dataset_outputs,
    save_output_json,
    write_drawing,
)
from yolact.cli.eval_streams import (
    check_stream_flags,
    close_sources,
    close_writers,
    grid_window,
    note_not_shown,
    open_sources,
    open_writers,
    report_video,
    stream_options,
)
from yolact.cli.predictors import (
    Flags,
    UsageError,
    benchmark_frames,
    build_predictor,
    dataset_mode,
    device_from_args,
)
from yolact.cli.video_list import VideoItem, video_items
from yolact.core.config import ConfigError
from yolact.core.predictor import Predictor
from yolact.core.structures import Detections
from yolact.core.weights import CheckpointError
from yolact.data.coco import CocoDataset, DatasetError, named_dataset
from yolact.engine.distributed import cleanup, device_for, init_distributed
from yolact.engine.evaluate import evaluate_dataset, match_classes
from yolact.inference.mots import record_mots
from yolact.inference.outputs import (
    DrawOptions,
    draw,
    summary,
    write_folder,
    write_video,
)
from yolact.inference.sources import ImageFiles
from yolact.inference.stream import stream
from yolact.inference.tracking import TRACK_IOU_KINDS
from yolact.io.coco_json import CocoJsonWriter, category_ids_for
from yolact.io.images import InputError, list_images, output_names
from yolact.io.mots import MotsWriter, check_mots_output
from yolact.io.pipeline import StageError

# VideoSource (opened in yolact.cli.eval_streams) stays importable here, where tests patch it.
from yolact.io.sources import VideoSource, parse_source, redact, split_in_out  # noqa: F401
from yolact.io.stop import StopSignals
from yolact.io.video import VideoWriter, open_window_possible
from yolact.runtime.device import select_device
from yolact.runtime.threads import ThreadsError, configure_threads

log = logging.getLogger("yolact")


ERRORS = (InputError, CheckpointError, ConfigError, UsageError, DatasetError, ThreadsError,
          StageError)  # fmt: skip


def check_track_flags(args: EvalOptions) -> None:
    """Refuse tracking flags that cannot be used (one line, before the model is built)."""
    if args.track_iou not in TRACK_IOU_KINDS:
        raise UsageError(f"--track_iou must be box or mask, got {args.track_iou!r}")
    if not (math.isfinite(args.track_buffer) and args.track_buffer >= 0):
        raise UsageError(f"--track_buffer must be >= 0 seconds, got {args.track_buffer}")
    if args.track and not (args.video or args.streams or args.images):
        raise UsageError("--track goes with --video or --images")


def check_mots_flag(args: EvalOptions, items: Sequence[VideoItem]) -> None:
    """Refuse ``--output_mots`` without ``--track``, onto a file the run reads or
    writes, or where it cannot be written (one line, before the model is built).

    With several video sources the files are ``FILE``'s stem + ``_K`` per source.
    """
    if args.output_mots is None:
        return
    if not args.track:
        raise UsageError("--output_mots goes with --track")
    outputs = [args.output_json or ""]
    inputs: list[str] = []
    if args.images:
        src, out = split_in_out(args.images)
        inputs = list_images(src)
        outputs += [os.path.join(out, n) for n in output_names(inputs)] if out else []
    for item in items:
        kind, target = parse_source(item.src)
        inputs += [os.path.expanduser(str(target))] if kind == "file" else []
        outputs.append(item.out or "")
    check_mots_output(args.output_mots, inputs, outputs, sources=max(len(items), 1))


def save_mots(mots: MotsWriter | None) -> None:
    """Write ``--output_mots`` after a run that processed at least one frame."""
    if mots is None:
        return
    if mots.frames == 0:
        print(f"note: nothing was processed; {mots.paths[0]} not written", file=sys.stderr)
        return
    for path in mots.save():
        print(f"wrote MOTS tracks of {mots.frames} frames to {path}")


def track_options(args: EvalOptions) -> dict[str, Any]:
    """The tracking keywords of :func:`yolact.inference.stream` for the flags."""
    if not args.track:
        return {}
    return {"track": True, "track_iou": args.track_iou, "track_buffer": args.track_buffer}


def _draw_options(args: Flags) -> DrawOptions:
    return DrawOptions(top_k=args.top_k, masks=args.display_masks, boxes=args.display_bboxes,
                       text=args.display_text, scores=args.display_scores,
                       fps=args.display_fps)  # fmt: skip


def _draw(image: np.ndarray, det: Detections, args: Flags, fps: float | None = None) -> np.ndarray:
    """The drawing eval.py makes of ``image`` with the flags' parts."""
    return draw(image, det, _draw_options(args), fps)


def _progress(total: int | None, desc: str, unit: str, disable: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=disable)


def eval_image(
    predictor: Predictor, spec: str, args: EvalOptions, writer: CocoJsonWriter | None
) -> None:
    """``--image IN[:OUT]``: one image, drawn to OUT or a window."""
    src, out = split_in_out(spec)
    with stream(predictor, ImageFiles([src], src, skip_unreadable=False)) as s:
        r = next(s)
    if writer is not None:
        writer.add(r.detections, 0, os.path.basename(src), category_ids_for(predictor.class_names))
    print(f"{redact(src)}: {summary(r.detections, args.top_k)}")
    drawing = _draw(r.image, r.detections, args)
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
    args: EvalOptions,
    writer: CocoJsonWriter | None,
    stop: StopSignals | None = None,
    mots: MotsWriter | None = None,
) -> None:
    """``--images IN_DIR:OUT_DIR``: draw every image of a folder into another.

    Drawings are PNG files named by :func:`yolact.io.images.output_names`, so two
    inputs never share an output. With ``--output_json`` the ``image_id`` is the
    input's place in the sorted folder listing and ``file_name`` its own name.
    A stop request (SIGINT, SIGTERM) ends reading; the images read are drawn.
    """
    src, out = split_in_out(spec)
    if not out:
        raise UsageError("--images needs IN_DIR:OUT_DIR")
    folder = ImageFiles.folder(src, args.max_images)
    names = output_names(folder.all_files)
    os.makedirs(out, exist_ok=True)
    bar = _progress(len(folder.files), "images", "img", args.no_bar)
    skipped: list[str] = []

    def skip(path: str, err: InputError) -> None:
        skipped.append(path)
        bar.write(f"skipping: {err}", file=sys.stderr)
        bar.update(1)

    s = stream(predictor, folder, stop=stop.event if stop else None, on_skip=skip,
               **track_options(args))  # fmt: skip
    s = record_mots(s, mots) if mots is not None else s
    try:
        done = write_folder(s, out, names, _draw_options(args), write_drawing, writer,
                            predictor.class_names, on_frame=lambda: bar.update(1))  # fmt: skip
    finally:
        bar.close()
    if skipped and not done:
        raise InputError(f"none of the {len(skipped)} images in {src} could be read")
    print(f"processed {done} images into {out}, skipped {len(skipped)}")


def eval_video(
    predictor: Predictor,
    items: Sequence[VideoItem],
    args: EvalOptions,
    writer: CocoJsonWriter | None,
    stop: StopSignals | None = None,
    mots: MotsWriter | None = None,
) -> None:
    """``--video SRC[:OUT][,SRC[:OUT]...]`` or ``--streams FILE``: video files, webcams or
    streams, each drawn to its OUT, the others to one window (a grid).

    All sources go through one :func:`yolact.inference.stream` call (reading each
    source, the network and post-processing on threads of their own) and are
    drawn and written here; a file's frames all arrive in order, a live source's
    newest frame is taken. The time per frame of every stage and one line of
    figures per source are printed at the end. A stop request (SIGINT, SIGTERM)
    ends reading; the frames already read are processed, written and reported,
    and every OUT is closed as a playable file. An error in a stage ends the run
    with that error.
    """
    names = [redact(item.src) for item in items]  # what messages and the window show
    opened = open_sources(items)
    try:
        s = stream(predictor, list(opened), batch_size=args.video_multiframe,
                   max_frames=args.max_images, stop=stop.event if stop is not None else None,
                   **track_options(args), **stream_options(args))  # fmt: skip
    except BaseException:
        close_sources(opened)
        raise
    s = record_mots(s, mots) if mots is not None else s
    sources: list[Any] = list(s.sources)  # VideoSources (reconnecting ones wrapped)
    window = grid_window(items, sources, args.display, open_window_possible())
    note_not_shown(items, window)
    try:
        outs = open_writers(items, sources, args.detect_fps, VideoWriter)
    except BaseException:
        s.close()
        raise
    counts = [source.frame_count for source in sources]
    total = None if None in counts else sum(c for c in counts if c is not None)
    if total is not None and args.max_images >= 0:
        total = min(total, args.max_images)
    live = any(source.is_live for source in sources)
    bar = _progress(total, "frames", "frame", args.no_bar or live)
    s.times.add("draw+write", 0.0)
    start = time.perf_counter()
    try:
        report = write_video(s, _draw_options(args), outs, window, writer, predictor.class_names,
                             on_frame=lambda: bar.update(1))  # fmt: skip
    finally:
        bar.close()
        close_writers(outs)
        if window is not None:
            cv2.destroyAllWindows()
    report_video(s, report, names, items, outs, time.perf_counter() - start)


def benchmark(predictor: Predictor, args: EvalOptions) -> None:
    default = 200 if predictor.device.type == "cuda" else 20
    count = args.max_images if args.max_images > 0 else default
    frames = benchmark_frames(args, count)
    batch = max(1, args.video_multiframe)
    result = run_benchmark(predictor, frames, warmup=args.benchmark_warmup, batch_size=batch)
    print(result.table())


def eval_dataset(args: EvalOptions) -> int:
    """COCO box and mask AP over a dataset; under torchrun the images are sharded."""
    if args.dataset and (args.val_ann or args.val_images):
        raise UsageError("give --dataset or --val_ann/--val_images, not both")
    if not args.dataset and not (args.val_ann and args.val_images):
        raise UsageError("--val_ann and --val_images go together")
    if args.dataset:
        ann_file, image_dir = named_dataset(args.dataset)
    else:
        ann_file, image_dir = str(args.val_ann), str(args.val_images)
    dataset = CocoDataset(ann_file, image_dir)  # fails before the model is built
    check_dataset_outputs(args, ann_file)
    try:
        requested = select_device(device_from_args(args))
    except ValueError as e:
        raise UsageError(str(e)) from None
    info = init_distributed(requested.type)
    try:
        args = replace(args, device=str(device_for(info, str(requested))))
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


def run(args: EvalOptions, stop: StopSignals | None = None) -> int:
    """Do what the options ask; returns the exit code.

    With ``stop``, ``--images`` and ``--video`` end early on SIGINT/SIGTERM and
    keep what they processed (drawings, video file, ``--output_json``).
    """
    if args.seed is not None:
        torch.manual_seed(args.seed)
    inputs = [x for x in (args.image, args.images, args.video, args.streams) if x]
    if len(inputs) > 1:
        raise UsageError("give only one of --image, --images, --video, --streams")
    if not inputs and not args.benchmark:
        if dataset_mode(args):
            return eval_dataset(args)
        raise UsageError(
            "give --image, --images, --video or --streams (or --dataset, --val_ann, --benchmark)"
        )
    if args.video_multiframe < 1:
        raise UsageError("--video_multiframe must be at least 1")
    if args.backends and not args.benchmark:
        raise UsageError("--backends goes with --benchmark")
    check_track_flags(args)
    check_stream_flags(args)
    items = video_items(args.video, args.streams)
    check_mots_flag(args, items)
    if args.benchmark and (args.compare or args.backends):
        return run_compare(args.to_args())
    if not args.benchmark:
        check_outputs(args, items)  # before the model is built: nothing to lose yet
    predictor = build_predictor(args)
    if args.benchmark:
        benchmark(predictor, args)
        return 0
    writer = CocoJsonWriter(args.output_json) if args.output_json else None
    mots = None
    if args.output_mots:
        mots = MotsWriter(args.output_mots, sources=max(len(items), 1),
                          category_ids=category_ids_for(predictor.class_names))  # fmt: skip
    # One image (which may wait for a key in its window) stops at once instead.
    with stop.polling() if stop is not None and not args.image else contextlib.nullcontext():
        try:
            if args.image:
                eval_image(predictor, args.image, args, writer)
            elif args.images:
                eval_images(predictor, args.images, args, writer, stop, mots)
            elif items:
                eval_video(predictor, items, args, writer, stop, mots)
        except BaseException:
            save_output_json(writer, failing=True)
            raise
        save_output_json(writer, failing=False)
        save_mots(mots)  # a failed run leaves an existing file as it was
    return 0


def run_eval(options: EvalOptions, stop: StopSignals | None = None) -> int:
    """One eval.py run from Python: size the threads, then do what ``options`` ask.

    Args:
        options: the flags as a value (``EvalOptions(trained_model=..., video=...)``).
        stop: with it, ``--images`` and ``--video`` runs end early on its signals
            and keep what they processed.

    Returns:
        The exit code (0; a dataset run under torchrun returns 0 on every rank).

    Raises:
        The errors that eval.py prints as its one ``error:`` line (``ERRORS``).
    """
    # A video keeps one drawing and writing thread busy beside the network.
    configure_threads(options.threads, reserved=1 if options.video or options.streams else 0)
    return run(options, stop)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (see ``EXIT_CODES`` in eval_args)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    options = EvalOptions.parse(list(argv) if argv is not None else None)
    with StopSignals() as stop:
        try:
            code = run_eval(options, stop)
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
