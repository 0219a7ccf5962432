"""eval.py's flags: the original YOLACT names and defaults, plus a few new ones."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

EXIT_CODES = (
    "exit status: 0 done, 1 bad input (one 'error:' line), 2 unknown or malformed flags, "
    "130 stopped by SIGINT (Ctrl-C), 143 stopped by SIGTERM; a stopped run still writes "
    "everything processed so far (images, the video file, --output_json). Outputs are "
    "checked before any work (never an input, by any path) and written beside the target, "
    "then moved into place; a run that processed nothing leaves existing files as they "
    "were, and detections that cannot be written where asked are saved under another "
    "name that the error line gives."
)


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help lines end with ``(default: X)`` where a flag has a default worth stating.

    Unlike ``argparse.ArgumentDefaultsHelpFormatter`` it says nothing for on/off
    switches and ``None`` defaults (their help says what happens when they are
    omitted) and never repeats a default the help text already states.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            not action.option_strings
            or default is None
            or default is argparse.SUPPRESS
            or action.nargs == 0
            or "default" in text
        ):
            return text
        return f"{text} (default: %(default)s)"


def str2bool(value: str) -> bool:
    """Parse the original's boolean flag values (``--cuda=False``)."""
    v = value.strip().lower()
    if v in ("yes", "true", "t", "y", "1"):
        return True
    if v in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (True/False), got '{value}'")


def build_parser() -> argparse.ArgumentParser:
    """The parser of eval.py; ``--help`` states each flag's default."""
    p = argparse.ArgumentParser(
        prog="eval.py",
        description="YOLACT instance segmentation on images, folders, videos, webcams and streams.",
        epilog=EXIT_CODES,
        formatter_class=DefaultsHelpFormatter,
    )
    a = p.add_argument
    a("--trained_model", default=None, help="checkpoint (.pth), original YOLACT files included")
    a("--config", default=None, help="config name; inferred from the checkpoint when omitted")
    a("--top_k", default=5, type=int, help="detections shown per image")
    a("--score_threshold", default=0.0, type=float, help="detections at or below are hidden")
    a("--cuda", default=None, type=str2bool, help="use CUDA (default: when available)")
    a("--device", default=None, help="cpu, cuda or cuda:N (overrides --cuda)")
    a(
        "--half",
        action="store_true",
        help="reduced precision: the network in float16 on CUDA, in bfloat16 on a CPU that "
        "has it (AVX512-BF16, AMX; PyTorch and OpenVINO); the post-processing in float32",
    )
    a(
        "--cuda_graph",
        action="store_true",
        help="CUDA: replay the network and post-processing as one CUDA graph captured at the "
        "first batch's size (smaller batches padded to it, larger ones in chunks)",
    )
    a(
        "--channels_last",
        default=None,
        type=str2bool,
        help="the network in NHWC memory format (default: on with --half)",
    )
    a("--fast_nms", default=True, type=str2bool, help="Fast NMS (False: torchvision NMS)")
    a("--cross_class_nms", default=False, type=str2bool, help="suppress across classes")
    a("--display_masks", default=True, type=str2bool, help="draw the masks")
    a("--display_bboxes", default=True, type=str2bool, help="draw the boxes")
    a("--display_text", default=True, type=str2bool, help="draw the class names")
    a("--display_scores", default=True, type=str2bool, help="draw the scores next to the names")
    a("--display", action="store_true", help="show results in a window (when a display exists)")
    a("--display_fps", action="store_true", help="overlay the processing FPS")
    a("--no_crop", dest="crop", action="store_false", help="do not crop masks to their boxes")
    a("--image", default=None, metavar="IN[:OUT]", help="one image; OUT writes the drawing")
    a("--images", default=None, metavar="IN_DIR:OUT_DIR",
      help="every image of a folder, drawn into OUT_DIR as PNG files: photo.jpg -> "
      "photo.png; inputs sharing a name (photo.png, photo.bmp) keep photo.png for the "
      "PNG and add their extension to the others (photo_bmp.png); a name still taken "
      "gets _2, _3...; no output overwrites another")  # fmt: skip
    a("--video", default=None, metavar="SRC[:OUT][,SRC[:OUT]...]",
      help="video file, webcam index or stream URL; several, comma-separated, run through "
      "one model, each drawn to its OUT (no OUT: a window with a grid of them); a comma "
      "inside a URL stays there unless a URL, an existing path or (outside the query) a "
      "webcam index follows it (see docs/inference.md)")  # fmt: skip
    a("--streams", default=None, metavar="FILE",
      help="like --video with one SRC[:OUT] per line of FILE, taken as written (blank "
      "lines and lines starting with # skipped)")  # fmt: skip
    a("--detect_fps", default=None, type=float, metavar="F",
      help="--video/--streams: process at most F frames per second of each live source, "
      "the others counted as dropped; files give every frame (default: as many as the "
      "model keeps up with)")  # fmt: skip
    a("--batch_wait_ms", default=5.0, type=float, metavar="MS",
      help="--video/--streams with several sources: how long a batch waits for more "
      "sources' new frames; a stalled source never holds the others back")  # fmt: skip
    a("--reconnect", default=0, type=int, metavar="N",
      help="--video/--streams: reopen a webcam or stream that drops, up to N tries in a "
      "row, after pauses of 0.5 s, 1 s, 2 s, 4 s, then 8 s; a frame read resets the "
      "count")  # fmt: skip
    a("--video_multiframe", default=1, type=int, help="frames per network batch (video files)")
    a("--track", action="store_true",
      help="--video/--images: follow objects over frames; drawings colour and label each "
      "track 'id N', --output_json entries gain track_id")  # fmt: skip
    a(
        "--track_iou",
        default="box",
        metavar="box|mask",
        help="what --track matches frames by: box or mask overlap",
    )
    a(
        "--track_buffer",
        default=1.0,
        type=float,
        metavar="SECONDS",
        help="how long --track keeps a lost object (at the source's frame rate)",
    )
    a("--max_images", default=-1, type=int, help="stop after this many images/frames (-1: all)")
    a("--benchmark", action="store_true", help="time pre-processing, network, post-processing")
    a("--benchmark_warmup", default=3, type=int, help="untimed frames before --benchmark timing")
    a("--compare", default=None, metavar="MODEL[,MODEL...]",
      help="with --benchmark: time (and evaluate) these configs, checkpoints or exported "
           "files side by side")  # fmt: skip
    a("--backends", default=None, metavar="NAME[,NAME...]",
      help="with --benchmark: export the model for each of pytorch, onnxruntime, openvino, "
           "tensorrt (onnxruntime's TensorRT provider) and time (and evaluate) them side by "
           "side")  # fmt: skip
    a("--benchmark_batch", default=4, type=int, help="the larger batch of --compare/--backends")
    a("--benchmark_dir", default="runs/benchmark", help="where --compare/--backends write")
    a("--output_json", default=None, metavar="PATH", help="write detections (COCO results)")
    a("--output_mots", default=None, metavar="FILE",
      help="with --track: write the tracks as MOTS txt (frame id class h w RLE); with "
      "several sources one file each, FILE's stem + _0, _1, ...")  # fmt: skip
    a("--no_bar", action="store_true", help="no progress bar")
    a("--dataset", default=None, help="evaluate a named dataset (coco2017_val, coco2017_testdev)")
    a("--val_ann", default=None, metavar="PATH", help="evaluate a COCO json (with --val_images)")
    a("--val_images", default=None, metavar="DIR", help="image folder of --val_ann")
    a("--output_coco_json", action="store_true", help="dataset mode: write the result files")
    a("--bbox_det_file", default="results/bbox_detections.json", help="box results path")
    a("--mask_det_file", default="results/mask_detections.json", help="mask results path")
    a("--metrics_json", default=None, metavar="PATH", help="dataset mode: write the APs")
    a("--seed", default=None, type=int, help="random seed (random-weight benchmarks)")
    a("--threads", default=None, type=int, metavar="N",
      help="threads this process keeps busy (default: the cores it may use that are idle "
      "at start; an explicit "
      "OMP_NUM_THREADS sets the network's own)")  # fmt: skip
    # Set by --backends for its tensorrt entry: an exported file's runtime must use TensorRT.
    p.set_defaults(tensorrt=None)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """eval.py's flags from ``argv`` (default: the command line)."""
    return build_parser().parse_args(argv)


@dataclass(frozen=True)
class EvalOptions:
    """Every eval.py flag, typed: one run of eval.py as a value.

    The field names and defaults are the flags' (``--top_k`` is ``top_k``); see
    ``python eval.py --help`` for what each does. From Python::

        from yolact.cli.eval_cli import run_eval
        run_eval(EvalOptions(trained_model="w.pth", video="in.mp4:out.mp4"))
    """

    trained_model: str | None = None
    config: str | None = None
    top_k: int = 5
    score_threshold: float = 0.0
    cuda: bool | None = None
    device: str | None = None
    half: bool = False
    cuda_graph: bool = False
    channels_last: bool | None = None
    fast_nms: bool = True
    cross_class_nms: bool = False
    display_masks: bool = True
    display_bboxes: bool = True
    display_text: bool = True
    display_scores: bool = True
    display: bool = False
    display_fps: bool = False
    crop: bool = True
    image: str | None = None
    images: str | None = None
    video: str | None = None
    streams: str | None = None
    detect_fps: float | None = None
    batch_wait_ms: float = 5.0
    reconnect: int = 0
    video_multiframe: int = 1
    track: bool = False
    track_iou: str = "box"
    track_buffer: float = 1.0
    max_images: int = -1
    benchmark: bool = False
    benchmark_warmup: int = 3
    compare: str | None = None
    backends: str | None = None
    benchmark_batch: int = 4
    benchmark_dir: str = "runs/benchmark"
    output_json: str | None = None
    output_mots: str | None = None
    no_bar: bool = False
    dataset: str | None = None
    val_ann: str | None = None
    val_images: str | None = None
    output_coco_json: bool = False
    bbox_det_file: str = "results/bbox_detections.json"
    mask_det_file: str = "results/mask_detections.json"
    metrics_json: str | None = None
    seed: int | None = None
    threads: int | None = None
    tensorrt: bool | None = None  # set by --backends for its tensorrt row

    @classmethod
    def from_args(cls, namespace: argparse.Namespace) -> EvalOptions:
        """The options of parsed flags (``parse_args``)."""
        return cls(**{f.name: getattr(namespace, f.name) for f in fields(cls)})

    @classmethod
    def parse(cls, argv: list[str] | None = None) -> EvalOptions:
        """The options of a command line (default: this process's)."""
        return cls.from_args(parse_args(argv))

    def to_args(self) -> argparse.Namespace:
        """The options as parsed flags (for code that changes copies of them)."""
        return argparse.Namespace(**{f.name: getattr(self, f.name) for f in fields(self)})
