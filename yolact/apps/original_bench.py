"""This project against the original YOLACT code, on the CPU, on the same frames and weights.

::

    python -m yolact.apps.original_bench --original_repo=PATH [--trained_model=W] --images=N

``PATH`` is a checkout of the original code (dbolya/yolact). It is imported in
this process, unedited: its CUDA calls at import and construction
(``torch.cuda.current_device()``, ``.cuda()``, a CUDA default tensor type) are
turned into no-ops while it loads (:func:`cpu_shims`), and its top-level
modules (``data``, ``layers``, ``utils``, ``backbone``) are taken out of
``sys.modules`` again afterwards, so nothing else sees them.

Without ``--trained_model`` the model gets random weights, written in the
original key layout by this project's own writer
(:func:`yolact.models.yolact.weights.save_weights`) and read by both sides.

Every timed call goes from a BGR uint8 frame to full-resolution masks at
batch 1. The original's path is its ``eval.py`` display path: ``FastBaseTransform``,
the network with Fast NMS, ``postprocess`` (every detection's mask upsampled
and binarised, score threshold 0) and the ``top_k`` best by score (5). This
project's predictors run with the same ``top_k`` and score threshold. The
backends take turns frame by frame (interleaved), after untimed warm-up frames.
The detections of every backend are compared with the original's: the same
classes, boxes within 1 pixel.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

# The original's top-level modules (the repository root is its import root).
ORIGINAL_MODULES = ("data", "layers", "utils", "backbone")
# The private name its yolact.py is loaded under (``yolact`` is this package).
ORIGINAL_MODEL_MODULE = "_original_yolact_model"
BACKENDS = ("original", "pytorch", "onnxruntime", "openvino")
BOX_TOLERANCE_PX = 1.0


class OriginalCodeError(Exception):
    """The original checkout cannot be loaded or run (one line)."""


@dataclass
class FrameDetections:
    """One frame's detections, sorted by descending score.

    Attributes:
        boxes: [N, 4] pixel (x1, y1, x2, y2); classes: [N] 0-based; scores: [N];
        masks: [N, H, W] binary, or None.
    """

    boxes: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    masks: np.ndarray | None = None


Runner = Callable[[np.ndarray], Any]


@dataclass
class Backend:
    """A way to run frames: ``run`` is timed, ``to_detections`` turns its result
    into :class:`FrameDetections` afterwards (untimed)."""

    name: str
    run: Runner
    to_detections: Callable[[Any], FrameDetections]


@contextlib.contextmanager
def cpu_shims() -> Iterator[None]:
    """While active, the original's CUDA calls do nothing, so it loads on the CPU.

    ``torch.cuda.current_device()`` returns 0, ``torch.cuda.device_count()`` 1
    (the original then builds its TorchScript modules, as on one GPU), the
    ``.cuda()`` of tensors and modules returns them unchanged, and a CUDA
    default tensor type is ignored. Everything is restored on exit.
    """

    def keep_tensor(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self

    def keep_module(self: nn.Module, *args: Any, **kwargs: Any) -> nn.Module:
        return self

    set_type = torch.set_default_tensor_type

    def cpu_default_type(t: Any) -> None:
        if "cuda" not in str(t):
            set_type(t)

    patches: list[tuple[Any, str, Any]] = [
        (torch.cuda, "current_device", lambda: 0),
        (torch.cuda, "device_count", lambda: 1),
        (torch.Tensor, "cuda", keep_tensor),
        (nn.Module, "cuda", keep_module),
        (torch, "set_default_tensor_type", cpu_default_type),
    ]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    try:
        for obj, name, value in patches:
            setattr(obj, name, value)
        yield
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)


def _is_original_name(name: str) -> bool:
    return name == ORIGINAL_MODEL_MODULE or any(
        name == m or name.startswith(m + ".") for m in ORIGINAL_MODULES
    )


@contextlib.contextmanager
def original_import_root(repo: str) -> Iterator[dict[str, ModuleType]]:
    """Import from ``repo`` as the original's root; afterwards its modules leave
    ``sys.modules`` (yielded dict: collected on exit) and what they displaced is back."""
    displaced = {k: v for k, v in sys.modules.items() if _is_original_name(k)}
    for k in displaced:
        del sys.modules[k]
    path = list(sys.path)
    sys.path.insert(0, repo)
    importlib.invalidate_caches()
    loaded: dict[str, ModuleType] = {}
    try:
        yield loaded
    finally:
        for k in [k for k in sys.modules if _is_original_name(k)]:
            loaded[k] = sys.modules.pop(k)
        sys.modules.update(displaced)
        sys.path[:] = path


@dataclass
class OriginalCode:
    """The original's pieces for its evaluation path, built on the CPU.

    Attributes:
        net: its ``Yolact``, weights loaded, eval mode, Fast NMS.
        transform: its ``FastBaseTransform``.
        postprocess: its ``layers.output_utils.postprocess``.
        cfg: its global config object.
    """

    net: nn.Module
    transform: nn.Module
    postprocess: Callable[..., Any]
    cfg: Any
    modules: dict[str, ModuleType] = field(default_factory=dict, repr=False)


def is_original_checkout(repo: str) -> bool:
    """Whether ``repo`` looks like the original code's root."""
    return all(os.path.isfile(os.path.join(repo, p)) for p in ("yolact.py", "data/config.py"))


def _not_a_checkout(repo: str) -> str:
    return f"{repo} is not a checkout of the original YOLACT (no yolact.py and data/config.py)"


def load_original(repo: str, config: str, weights: str) -> OriginalCode:
    """Import the original code from ``repo`` on the CPU and build ``config`` with ``weights``.

    Args:
        repo: the checkout's root (holding ``yolact.py`` and ``data/config.py``).
        config: a config name without ``_config`` ("yolact_base").
        weights: a checkpoint in the original layout.

    Raises:
        OriginalCodeError: not such a checkout, an unknown config, or a failure
            while loading, in one line.
    """
    if not is_original_checkout(repo):
        raise OriginalCodeError(_not_a_checkout(repo))
    with (
        cpu_shims(),
        original_import_root(os.path.abspath(repo)) as modules,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        try:
            data_config = importlib.import_module("data.config")
            if not hasattr(data_config, f"{config}_config"):
                raise OriginalCodeError(f"the original code has no config '{config}_config'")
            data_config.set_cfg(f"{config}_config")
            data_config.cfg.mask_proto_debug = False  # as eval.py sets it
            spec = importlib.util.spec_from_file_location(
                ORIGINAL_MODEL_MODULE, os.path.join(repo, "yolact.py")
            )
            assert spec is not None and spec.loader is not None
            model_module = importlib.util.module_from_spec(spec)
            sys.modules[ORIGINAL_MODEL_MODULE] = model_module
            spec.loader.exec_module(model_module)
            net = model_module.Yolact()
            net.load_weights(weights)
            net.eval()
            net.detect.use_fast_nms = True  # eval.py's default --fast_nms=True
            net.detect.use_cross_class_nms = False
            transform = importlib.import_module("utils.augmentations").FastBaseTransform()
            postprocess = importlib.import_module("layers.output_utils").postprocess
        except OriginalCodeError:
            raise
        except Exception as e:  # noqa: BLE001 (its code raises anything)
            line = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise OriginalCodeError(
                f"the original code failed to load from {repo}: {type(e).__name__}: {line}"
            ) from None
    return OriginalCode(net, transform, postprocess, data_config.cfg, modules)


def original_runner(code: OriginalCode, top_k: int = 5, score_threshold: float = 0.0) -> Runner:
    """The original's ``eval.py`` display path for one BGR frame -> (classes, scores,
    boxes, masks) tensors: masks [N, H, W] of 0./1. at the frame size."""

    @torch.no_grad()
    def run(frame: np.ndarray) -> tuple[torch.Tensor, ...]:
        h, w = frame.shape[:2]
        img = torch.from_numpy(frame).float()
        preds = code.net(code.transform(img[None]))
        saved = getattr(code.cfg, "rescore_bbox", None)
        code.cfg.rescore_bbox = True  # as eval.py's prep_display
        try:
            classes, scores, boxes, masks = code.postprocess(
                preds, w, h, crop_masks=True, score_threshold=score_threshold
            )
        finally:
            code.cfg.rescore_bbox = saved
        idx = scores.argsort(0, descending=True)[:top_k]
        return classes[idx], scores[idx], boxes[idx], masks[idx]

    return run


def original_detections(out: tuple[torch.Tensor, ...]) -> FrameDetections:
    """The original runner's result as :class:`FrameDetections`."""
    classes, scores, boxes, masks = out
    if classes.numel() == 0:
        return FrameDetections(np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0))
    return FrameDetections(
        boxes.float().numpy().reshape(-1, 4),
        classes.long().numpy(),
        scores.float().numpy(),
        masks.numpy() > 0.5,
    )


def predictor_detections(det: Any) -> FrameDetections:
    """A predictor's :class:`~yolact.core.structures.Detections` as :class:`FrameDetections`."""
    return FrameDetections(
        det.boxes.float().numpy(),
        det.labels.long().numpy(),
        det.scores.float().numpy(),
        None if det.masks is None else det.masks.numpy().astype(bool),
    )


@dataclass
class Agreement:
    """How one backend's detections compare with the reference's over the frames."""

    frames: int = 0
    frames_equal: int = 0
    detections: int = 0
    matched: int = 0
    max_box_px: float = 0.0
    min_mask_iou: float = 1.0

    def line(self, name: str, reference: str) -> str:
        verdict = "agree" if self.frames_equal == self.frames else "DIFFER"
        return (
            f"{name} vs {reference}: {verdict}: {self.frames_equal}/{self.frames} frames with "
            f"the same classes and boxes within {BOX_TOLERANCE_PX:g} px; {self.matched}/"
            f"{self.detections} detections matched, max box difference {self.max_box_px:g} px, "
            f"min mask IoU {self.min_mask_iou:.3f}"
        )


def compare_frame(ref: FrameDetections, other: FrameDetections, agreement: Agreement) -> None:
    """Add one frame to ``agreement``: each reference detection is matched to an
    unmatched one of ``other`` with its class and every box edge within
    :data:`BOX_TOLERANCE_PX` (closest first)."""
    agreement.frames += 1
    agreement.detections += len(ref.classes)
    free = list(range(len(other.classes)))
    matched = 0
    for i in range(len(ref.classes)):
        best, best_d = -1, float("inf")
        for j in free:
            if other.classes[j] != ref.classes[i]:
                continue
            d = float(np.abs(other.boxes[j] - ref.boxes[i]).max())
            if d <= BOX_TOLERANCE_PX and d < best_d:
                best, best_d = j, d
        if best < 0:
            continue
        free.remove(best)
        matched += 1
        agreement.max_box_px = max(agreement.max_box_px, best_d)
        if ref.masks is not None and other.masks is not None:
            a, b = ref.masks[i], other.masks[best]
            union = np.logical_or(a, b).sum()
            iou = float(np.logical_and(a, b).sum() / union) if union else 1.0
            agreement.min_mask_iou = min(agreement.min_mask_iou, iou)
    agreement.matched += matched
    if matched == len(ref.classes) == len(other.classes):
        agreement.frames_equal += 1


@dataclass
class SideBySide:
    """Per-frame milliseconds of each backend (interleaved) and their agreement with
    the first backend (the reference for the speed-up too)."""

    ms: dict[str, list[float]]
    agreement: dict[str, Agreement]
    frame_size: tuple[int, int]
    notes: list[str] = field(default_factory=list)

    def median(self, name: str) -> float:
        return float(np.median(self.ms[name]))

    def rows(self) -> list[tuple[str, float, float, float, str]]:
        """(backend, median ms, mean ms, FPS, speed-up over the first backend) per backend."""
        names = list(self.ms)
        base = self.median(names[0])
        return [
            (
                n, self.median(n), float(np.mean(self.ms[n])), 1000.0 / self.median(n),
                f"{base / self.median(n):.2f}x",
            )
            for n in names
        ]  # fmt: skip

    def table(self) -> str:
        head = f"{'backend':<14} {'median ms':>10} {'mean ms':>9} {'FPS':>7} {'speed-up':>9}"
        lines = [head]
        lines += [f"{n:<14} {m:>10.1f} {a:>9.1f} {f:>7.2f} {s:>9}" for n, m, a, f, s in self.rows()]
        lines += [a.line(n, next(iter(self.ms))) for n, a in self.agreement.items()]
        return "\n".join(lines + self.notes)

    def markdown(self) -> str:
        first = next(iter(self.ms))
        lines = [
            f"| backend | median ms/frame | mean ms/frame | FPS | speed-up over {first} |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [f"| {n} | {m:.1f} | {a:.1f} | {f:.2f} | {s} |" for n, m, a, f, s in self.rows()]
        extra = [a.line(n, first) for n, a in self.agreement.items()] + self.notes
        return "\n".join(lines) + ("\n\n" + "\n".join(f"- {x}" for x in extra) if extra else "")


def run_side_by_side(
    backends: Sequence[Backend], frames: Sequence[np.ndarray], warmup: int = 2
) -> SideBySide:
    """Time every backend on every frame, taking turns frame by frame (the order
    rotates each frame), after ``warmup`` untimed frames each; then compare each
    backend's detections with the first's.

    Raises:
        ValueError: no backends or no frames.
    """
    if not backends or not frames:
        raise ValueError("side by side needs at least one backend and one frame")
    for i in range(warmup):
        for b in backends:
            b.run(frames[i % len(frames)])
    ms: dict[str, list[float]] = {b.name: [] for b in backends}
    results: dict[str, list[Any]] = {b.name: [] for b in backends}
    for i, frame in enumerate(frames):
        turn = i % len(backends)
        for b in list(backends[turn:]) + list(backends[:turn]):
            t0 = time.perf_counter()
            out = b.run(frame)
            ms[b.name].append((time.perf_counter() - t0) * 1000.0)
            results[b.name].append(out)
    ref = backends[0]
    agreement: dict[str, Agreement] = {}
    for b in backends[1:]:
        agreement[b.name] = Agreement()
        for r, o in zip(results[ref.name], results[b.name]):
            compare_frame(ref.to_detections(r), b.to_detections(o), agreement[b.name])
    H, W = frames[0].shape[:2]
    return SideBySide(ms, agreement, (H, W))


def write_original_weights(config: str, path: str, seed: int = 0) -> str:
    """Random weights for ``config`` written in the original key layout; returns ``path``.

    This project's initialisation (seeded), then the BatchNorm statistics of a
    forward pass over two synthetic frames, so that activations keep their scale
    through the random backbone, and the class layer scaled to logits of unit
    spread on those frames, so that scores stay finite and rarely tie.
    """
    from yolact.apps.benchmark import synthetic_frames
    from yolact.models.yolact.weights import save_weights
    from yolact.registry import family_of, get_config

    cfg = get_config(config)
    torch.manual_seed(seed)
    family = family_of(cfg)
    model = family.build_model(cfg, None, "random weights")
    batch = family.predictor_class(model, device="cpu").run_pre(
        synthetic_frames(2, 480, 640, seed=seed + 1)
    )
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain average over the calibration pass
    model.train()
    with torch.no_grad():
        model(batch)
    for m in norms:
        m.momentum = 0.1
    model.eval()
    with torch.no_grad():
        conf = model(batch)["conf"]  # [B, P, C] logits
        layer = getattr(model, "prediction_layers")[0].conf_layer  # noqa: B009
        scale = 1.0 / max(float(conf.std()), 1e-6)
        layer.weight.mul_(scale)
        layer.bias.mul_(scale)
    save_weights(model, path)
    return path


def project_backends(
    weights: str, config: str, names: Sequence[str], folder: str, top_k: int
) -> list[Backend]:
    """This project's predictors for ``names`` (pytorch, onnxruntime, openvino) on
    ``weights``, with the process's thread plan; the exported graphs are written
    under ``folder``."""
    from yolact.export import export
    from yolact.registry import load_predictor

    out = []
    for name in names:
        source = weights
        if name in ("onnxruntime", "openvino"):
            fmt = "onnx" if name == "onnxruntime" else "openvino"
            source = export(
                weights, os.path.join(folder, f"{config}.onnx"), fmt, config=config,
                check=False, log=False,
            )  # fmt: skip
        predictor = load_predictor(source, config=config, device="cpu", top_k=top_k)
        out.append(Backend(name, predictor, predictor_detections))
    return out


@contextlib.contextmanager
def busy_process(enabled: bool) -> Iterator[None]:
    """A ``python -c "while True: pass"`` process spinning while active (when enabled)."""
    if not enabled:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        proc.kill()
        proc.wait()


def _load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _build_backends(a: argparse.Namespace, names: list[str], folder: str) -> list[Backend]:
    """The backends ``names`` in that order, on ``--trained_model`` or random weights."""
    weights = a.trained_model or write_original_weights(
        a.config, os.path.join(folder, f"{a.config}_0_0.pth")
    )
    backends: list[Backend] = []
    if "original" in names:
        code = load_original(a.original_repo, a.config, weights)
        backends.append(Backend("original", original_runner(code, a.top_k), original_detections))
    ours = [n for n in names if n != "original"]
    backends += project_backends(weights, a.config, ours, folder, a.top_k)
    return sorted(backends, key=lambda b: names.index(b.name))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m yolact.apps.original_bench",
        description="This project against the original YOLACT code on the CPU, side by side.",
    )
    p.add_argument("--original_repo", default="", help="a checkout of dbolya/yolact")
    p.add_argument("--trained_model", help="an original-layout checkpoint (default: random)")
    p.add_argument("--config", default="yolact_base", help="config name (default yolact_base)")
    p.add_argument("--images", type=int, default=10, help="timed 640x480 frames")
    p.add_argument("--warmup", type=int, default=2, help="untimed frames per backend")
    p.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated, in order")
    p.add_argument("--top_k", type=int, default=5, help="detections kept (eval.py's 5)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: plan)")
    p.add_argument("--busy", action="store_true", help="beside a spinning python process")
    p.add_argument("--markdown", help="also write the table to this markdown file")
    a = p.parse_args(argv)
    names = [n.strip() for n in a.backends.split(",") if n.strip()]
    bad = [n for n in names if n not in BACKENDS]
    if bad or not names or names.count("original") > 1 or len(set(names)) < len(names):
        print(f"error: --backends takes distinct names of {', '.join(BACKENDS)}", file=sys.stderr)
        return 2
    if a.images < 1 or a.warmup < 0:
        print("error: --images must be at least 1 and --warmup at least 0", file=sys.stderr)
        return 2
    if "original" in names and not is_original_checkout(a.original_repo):
        print(f"error: {_not_a_checkout(a.original_repo)}", file=sys.stderr)
        return 1
    if a.trained_model and not os.path.isfile(a.trained_model):
        print(f"error: {a.trained_model}: no such file", file=sys.stderr)
        return 2

    from yolact.apps.benchmark import synthetic_frames
    from yolact.core.threads import configure_threads
    from yolact.core.weights import CheckpointError

    with busy_process(a.busy):  # started first, so that the thread plan sees it
        try:
            plan = configure_threads(a.threads)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        with tempfile.TemporaryDirectory(prefix="original_bench_") as folder:
            try:
                backends = _build_backends(a, names, folder)
            except (OriginalCodeError, CheckpointError, ValueError) as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
            before = _load_average()
            result = run_side_by_side(backends, synthetic_frames(a.images, 480, 640), a.warmup)
            after = _load_average()
    H, W = result.frame_size
    result.notes.append(
        f"{a.config}, {'checkpoint ' + a.trained_model if a.trained_model else 'random weights'}"
        f", {len(result.ms[names[0]])} frames of {W}x{H}, batch 1, top_k {a.top_k}, score "
        f"threshold 0; {plan.intra_op} intra-op threads ({plan.source})"
        f"{', beside a busy process' if a.busy else ''}; load average {before} -> {after}"
    )
    print(result.table())
    if a.markdown:
        with open(a.markdown, "w", encoding="utf-8") as f:
            f.write(result.markdown() + "\n")
        print(f"wrote {a.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
