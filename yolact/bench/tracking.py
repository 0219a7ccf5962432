"""Tracking benchmark: box against mask association on generated clips.

The predictor runs once per frame and its detections are cached, so every
association mode sees the same detections. One :class:`~yolact.tracking.tracker.Tracker`
runs per clip and mode; mask association gets the detection masks downsampled by
``mask_stride`` (about the model's prototype resolution) with the frame size.

Scores use :func:`~yolact.bench.tracking_score.score_tracks`: the IoU between the
ground truth's visible masks and the masks of tracked detections (track id >= 0) as a
MOTS file holds them (made disjoint, :func:`yolact.io.mots.kept_objects`), so a run
exported with ``--output_mots`` and read back scores the same.

Run as ``python -m yolact.bench.tracking --trained_model=W --clips=N --frames=F``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]

from yolact.bench.tracking_cache import cached_detections, file_digest
from yolact.bench.tracking_clips import CLIP_STYLES, bench_clips, crossing_clips
from yolact.bench.tracking_cost import sampling_cost, synthetic_cost
from yolact.bench.tracking_errors import ErrorBreakdown, error_breakdown, format_breakdown
from yolact.bench.tracking_score import score_tracks
from yolact.data.clips import Clip, FrameTruth
from yolact.io.mots import kept_objects
from yolact.tracking.metrics import box_iou, mask_iou
from yolact.tracking.options import TrackerOptions
from yolact.tracking.tracker import Tracker

__all__ = [
    "FrameDetections",
    "ModeResult",
    "TrackBenchReport",
    "bench_clips",
    "crossing_clips",
    "format_report",
    "perfect_association",
    "sampling_cost",
    "main",
    "synthetic_cost",
    "track_benchmark",
]


@dataclass(frozen=True)
class FrameDetections:
    """Detections of one frame kept above the score threshold, as numpy arrays."""

    boxes: np.ndarray  # [N, 4] float32
    scores: np.ndarray  # [N] float32
    labels: np.ndarray  # [N] int64
    masks: np.ndarray  # [N, H, W] bool at frame size


@dataclass(frozen=True)
class ModeResult:
    """Tracking scores of one association mode over all clips."""

    mode: str
    hota: float
    idf1: float
    mota: float
    id_switches: int
    tracker_ms: float
    detections: int
    errors: ErrorBreakdown | None = None


@dataclass
class TrackBenchReport:
    """What :func:`track_benchmark` measured."""

    modes: list[ModeResult]
    recall: float
    frames: int
    clips: int
    synthetic_ms: dict[str, float] = field(default_factory=dict)
    synthetic_off_ms: dict[str, float] = field(default_factory=dict)  # colour cue off
    synthetic_detections: int = 50
    clip_set: str = ""
    perfect: tuple[float, float] | None = None
    sampling_ms: float | None = None
    show_errors: bool = False


def _detect(predictor: object, clip: Clip, score_threshold: float) -> list[FrameDetections]:
    out = []
    for dets in predictor(clip.frames):  # type: ignore[operator]
        keep = dets.scores >= score_threshold
        h, w = clip.options.size
        masks = (
            dets.masks[keep].cpu().numpy() if dets.masks is not None else np.zeros((0, h, w), bool)
        )
        out.append(
            FrameDetections(
                boxes=dets.boxes[keep].cpu().numpy().astype(np.float32),
                scores=dets.scores[keep].cpu().numpy().astype(np.float32),
                labels=dets.labels[keep].cpu().numpy().astype(np.int64),
                masks=masks.astype(bool),
            )
        )
    return out


def _oracle(clip: Clip) -> list[FrameDetections]:
    return [
        FrameDetections(
            boxes=t.boxes.astype(np.float32),
            scores=np.ones(len(t.ids), np.float32),
            labels=t.labels.astype(np.int64),
            masks=t.masks.astype(bool),
        )
        for t in clip.truth
    ]


def _downsample(masks: np.ndarray, stride: int) -> np.ndarray:
    h, w = masks.shape[1:]
    size = (max(1, w // stride), max(1, h // stride))
    out = np.zeros((masks.shape[0], size[1], size[0]), bool)
    for i, m in enumerate(masks):
        out[i] = cv2.resize(m.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.5
    return out


def _recall(clips: Sequence[Clip], detections: Sequence[Sequence[FrameDetections]]) -> float:
    found = total = 0
    for clip, frames in zip(clips, detections):
        for truth, dets in zip(clip.truth, frames):
            total += len(truth.ids)
            if len(truth.ids) and len(dets.boxes):
                iou = box_iou(truth.boxes, dets.boxes)
                rows, cols = linear_sum_assignment(-iou)
                found += int((iou[rows, cols] >= 0.5).sum())
    return found / total if total else 1.0


def perfect_association(
    clips: Sequence[Clip], detections: Sequence[Sequence[FrameDetections]]
) -> tuple[float, float]:
    """HOTA and IDF1 of the best any tracker could do with these detections.

    Each detection matched to a ground-truth object (visible-mask IoU >= 0.5, one to
    one per frame) is given that object's id; the others are left untracked.
    """
    tracked: list[list[FrameTruth]] = []
    for clip, frames in zip(clips, detections):
        tracked.append([])
        for truth, dets in zip(clip.truth, frames):
            ids = np.full(len(dets.boxes), -1, dtype=np.int64)
            if len(truth.ids) and len(dets.boxes):
                iou = mask_iou(truth.masks, dets.masks)
                for r, c in zip(*linear_sum_assignment(-iou)):
                    if iou[r, c] >= 0.5:
                        ids[c] = truth.ids[r]
            keep, masks = kept_objects(ids, dets.masks, dets.scores)
            tracked[-1].append(FrameTruth(ids[keep], dets.labels[keep], dets.boxes[keep], masks))
    scores = score_tracks([c.truth for c in clips], tracked)
    return scores.hota.hota, scores.identity.idf1


def _run_mode(
    mode: str,
    clips: Sequence[Clip],
    detections: Sequence[Sequence[FrameDetections]],
    mask_stride: int,
    buffer_s: float,
    tracker_kwargs: dict[str, object] | None = None,
) -> ModeResult:
    tracked: list[list[FrameTruth]] = []
    all_ids: list[list[np.ndarray]] = []
    times: list[float] = []
    count = 0
    for clip, frames in zip(clips, detections):
        kwargs = dict(tracker_kwargs or {})
        tracker = Tracker(TrackerOptions.from_seconds(buffer_s, fps=clip.fps, iou=mode, **kwargs))
        tracked.append([])
        all_ids.append([])
        for frame, dets in zip(clip.frames, frames):
            small = _downsample(dets.masks, mask_stride) if mode == "mask" else None
            start = time.perf_counter()
            ids = tracker.update(
                dets.boxes,
                dets.scores,
                dets.labels,
                masks=small,
                image_size=clip.options.size,
                image=frame,
            )
            times.append(time.perf_counter() - start)
            ids_np = ids.numpy()
            all_ids[-1].append(ids_np)
            count += len(dets.boxes)
            keep, masks = kept_objects(ids_np, dets.masks, dets.scores)
            tracked[-1].append(FrameTruth(ids_np[keep], dets.labels[keep], dets.boxes[keep], masks))
    scores = score_tracks([c.truth for c in clips], tracked)
    return ModeResult(
        mode=mode,
        hota=scores.hota.hota,
        idf1=scores.identity.idf1,
        mota=scores.clear.mota,
        id_switches=scores.clear.id_switches,
        tracker_ms=1000.0 * statistics.median(times) if times else 0.0,
        detections=count,
        errors=error_breakdown(
            [c.truth for c in clips], tracked, [[d.masks for d in f] for f in detections], all_ids
        ),
    )


def track_benchmark(
    predictor: object,
    clips: Sequence[Clip],
    iou_modes: Sequence[str] = ("box", "mask"),
    score_threshold: float = 0.1,
    mask_stride: int = 4,
    buffer_s: float = 1.0,
    oracle: bool = False,
    synthetic_detections: int = 50,
    synthetic_frames: int = 100,
    detections_cache: str | None = None,
    model_digest: str = "",
    tracker_kwargs: dict[str, object] | None = None,
) -> TrackBenchReport:
    """Track the clips with each association mode and score the results.

    Args:
        predictor: a callable taking a list of frames and returning one ``Detections``
            per frame (a :class:`~yolact.Predictor`); unused when ``oracle``.
        clips: the clips to track.
        iou_modes: association modes to compare (``"box"``, ``"mask"``).
        score_threshold: detections scoring below this are dropped before tracking; the
            default is the tracker's ``low_thresh``, so its second stage sees them all.
        mask_stride: mask association sees masks downsampled by this factor.
        buffer_s: the tracker's buffer in seconds of each clip's frame rate.
        oracle: feed the ground truth (score 1.0) as detections instead of the predictor's.
        synthetic_detections: detections per frame of the synthetic cost loop; 0 skips it.
        synthetic_frames: frames of the synthetic cost loop; 0 skips it.
        detections_cache: a folder where each clip's detections are kept, keyed by
            ``model_digest``, the clip's frames and ``score_threshold``
            (:mod:`yolact.bench.tracking_cache`); None computes them every run.
        model_digest: the model file's SHA-256, for the cache.
        tracker_kwargs: other fields of :class:`TrackerOptions` for every mode.

    Returns:
        One result per mode, the detector's recall at box IoU 0.5 and the synthetic cost.
    """

    def detect(clip: Clip) -> list[FrameDetections]:
        if oracle:
            return _oracle(clip)
        if detections_cache is None:
            return _detect(predictor, clip, score_threshold)
        return cached_detections(
            detections_cache,
            model_digest,
            clip,
            score_threshold,
            lambda: _detect(predictor, clip, score_threshold),
            FrameDetections,
        )

    detections = [detect(c) for c in clips]
    modes = [
        _run_mode(m, clips, detections, mask_stride, buffer_s, tracker_kwargs) for m in iou_modes
    ]
    synthetic: dict[str, float] = {}
    off: dict[str, float] = {}
    if synthetic_detections > 0 and synthetic_frames > 0:
        for m in iou_modes:  # interleaved, so that load changes hit both alike
            off[m] = synthetic_cost(m, synthetic_detections, synthetic_frames, reid=False)
            synthetic[m] = synthetic_cost(m, synthetic_detections, synthetic_frames)
    return TrackBenchReport(
        modes=modes,
        recall=_recall(clips, detections),
        perfect=None if oracle else perfect_association(clips, detections),
        sampling_ms=sampling_cost(synthetic_detections)
        if synthetic and "mask" in iou_modes
        else None,
        frames=sum(len(c.frames) for c in clips),
        clips=len(clips),
        synthetic_ms=synthetic,
        synthetic_off_ms=off,
        synthetic_detections=synthetic_detections,
    )


def format_report(report: TrackBenchReport) -> str:
    """The report as a text table with the detector and synthetic-cost lines.

    Args:
        report: what :func:`track_benchmark` returned.

    Returns:
        The text, ending with a newline.
    """
    lines = [
        f"tracking benchmark: {report.clips} clips, {report.frames} frames",
        f"{'mode':<6}{'HOTA':>8}{'IDF1':>8}{'MOTA':>8}{'IDsw':>6}{'ms/frame':>10}",
    ]
    for m in report.modes:
        lines.append(
            f"{m.mode:<6}{m.hota:>8.3f}{m.idf1:>8.3f}{m.mota:>8.3f}{m.id_switches:>6d}{m.tracker_ms:>10.3f}"
        )
    lines.append(f"detector recall @ IoU 0.5 (per frame): {report.recall:.3f}")
    if report.show_errors:
        lines += [format_breakdown(m.mode, m.errors) for m in report.modes if m.errors]
    for mode, ms in report.synthetic_ms.items():
        n = report.synthetic_detections
        lines.append(f"tracker cost, {n} detections/frame, 1 thread, {mode}: {ms:.3f} ms")
    for mode, ms in report.synthetic_off_ms.items():
        n = report.synthetic_detections
        lines.append(
            f"tracker cost, {n} detections/frame, 1 thread, {mode}, colour cue off: {ms:.3f} ms"
        )
    if report.sampling_ms is not None:
        n = report.synthetic_detections
        lines.append(f"mask sampling for the tracker, {n} masks of 480x640: "
                     f"{report.sampling_ms:.3f} ms")  # fmt: skip
    if report.perfect is not None:
        hota, idf1 = report.perfect
        lines.append(f"perfect association of these detections: HOTA {hota:.3f} IDF1 {idf1:.3f}")
    if report.clip_set:
        lines.append(f"clips: {report.clip_set}")
    return "\n".join(lines) + "\n"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from the command line and print its table.

    Args:
        argv: arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        0 on success, 2 on bad input (one line on stderr).
    """
    parser = _Parser(prog="python -m yolact.bench.tracking", description=__doc__)
    parser.add_argument("--trained_model", default="weights/yolact_tiny_synthetic.pth")
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--score_threshold", type=float, default=0.1)
    parser.add_argument("--clip_style", default="demo", choices=CLIP_STYLES,
                        help="demo: objects like the demo model's training data; small: "
                        "smaller, more crowded ones")  # fmt: skip
    parser.add_argument("--crossing", action="store_true",
                        help="clips whose objects all cross one point mid-clip")  # fmt: skip
    parser.add_argument("--size", type=int, nargs=2, default=(160, 160), metavar=("H", "W"))
    parser.add_argument("--oracle", action="store_true", help="use ground truth as detections")
    parser.add_argument("--synthetic_frames", type=int, default=100)
    parser.add_argument("--errors", action="store_true",
                        help="also print each mode's errors per ground-truth object")  # fmt: skip
    parser.add_argument("--detections_cache", default=None, metavar="DIR",
                        help="keep each clip's detections in DIR (keyed by the model "
                        "file's hash and the clip), so later runs skip the network")  # fmt: skip
    try:
        args = parser.parse_args(argv)
        if args.clips < 1 or args.frames < 1:
            raise ValueError("--clips and --frames must be >= 1")
        if args.synthetic_frames < 0:
            raise ValueError("--synthetic_frames must be >= 0")
        cache = args.detections_cache
        if cache is not None and os.path.exists(cache) and not os.path.isdir(cache):
            raise ValueError(f"--detections_cache {cache} is not a folder")
        make = crossing_clips if args.crossing else bench_clips
        clips = make(args.clips, args.frames, args.seed, tuple(args.size), args.clip_style)
        predictor = None
        digest = ""
        if not args.oracle:
            from yolact import Predictor

            if args.detections_cache is not None:
                digest = file_digest(args.trained_model)
            predictor = Predictor.from_checkpoint(args.trained_model, device="cpu")
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = track_benchmark(
        predictor,
        clips,
        score_threshold=args.score_threshold,
        oracle=args.oracle,
        synthetic_frames=args.synthetic_frames,
        detections_cache=args.detections_cache,
        model_digest=digest,
    )
    report.show_errors = args.errors
    report.clip_set = f"{args.clip_style} objects" + (", crossing" if args.crossing else "")
    sys.stdout.write(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
