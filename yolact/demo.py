"""First-run demo: synthetic data -> ``yolact_tiny`` -> COCO AP -> masks on a video.

Needs no download. The model is ``weights/yolact_tiny_synthetic.pth``, trained by
this project's train.py on the synthetic shapes (the command is in
weights/README.md). Where that file is missing, or with ``--train``, the demo
trains the model on this machine and writes it to ``<out>/yolact_tiny_synthetic.pth``:
in mixed precision where that is fast (CUDA, or a CPU with bfloat16
instructions), 3200 iterations (9.5 minutes in all, the data included, on an
idle 2-core CPU with AVX512-BF16; box AP 0.79 and mask AP 0.79 on the val
split); elsewhere in float32 with the config's 2400 (about 12 minutes; box AP
0.77, mask AP 0.76)::

    python -m yolact.demo [--out runs/demo] [--train [--iterations N]]

Writes ``<out>/demo_masks.mp4`` (the synthetic input video with masks drawn) and
``<out>/metrics.json``; a window shows the video where a display exists.

Without ``--train`` only the val split is written to ``data/demo``, the demo's
own folder: a manifest there records the generator's parameters, and the demo
uses no data it did not write (``--data_dir`` with another tool's data is
refused). A dataset with both splits, to train on with train.py, comes from::

    python -m yolact.data.synthetic --out data/synthetic --train 400 --val 60 --varied
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from yolact.cli import eval_cli, train_cli
from yolact.cli.eval_args import str2bool
from yolact.core.gpu import cpu_has_bf16
from yolact.core.threads import ThreadsError, configure_threads
from yolact.data.coco import CocoDataset
from yolact.data.synthetic import write_coco_dataset, write_synthetic_video
from yolact.engine.checkpoint_names import find_latest
from yolact.engine.evaluate import evaluate_dataset, format_aps, write_metrics
from yolact.predictor import Predictor
from yolact.registry import get_config
from yolact.slim import slim_checkpoint

CONFIG = "yolact_tiny"
# The demo's own folder: the README's walkthrough and `python -m yolact.data.synthetic`
# write data/synthetic, with other parameters.
DATA_DIR = "data/demo"
MANIFEST = "demo_manifest.json"
DATA_SEED = 0
WEIGHTS = "weights/yolact_tiny_synthetic.pth"
NUM_TRAIN, NUM_VAL, IMAGE_SIZE = 5000, 100, 160  # the synthetic split the schedule is tuned on
# Scenes of the demo split: up to 3 shapes of circumradius 14-30% of the side, so
# that a model trained from scratch for a few CPU minutes learns them.
MAX_OBJECTS, RADIUS_RANGE = 3, (0.14, 0.3)
VIDEO_FRAMES, VIDEO_SEED = 90, 7


@dataclass
class DemoResult:
    """What a demo run produced.

    Attributes:
        metrics: ``{"bbox": {"AP", ...}, "segm": {"AP", ...}}`` on the val split (0..1).
        weights: the checkpoint used; trained: whether this run trained it.
        input_video, output_video: the synthetic video and the one with masks drawn.
    """

    metrics: dict[str, dict[str, float]]
    weights: str
    trained: bool
    input_video: str
    output_video: str


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def _command(script: str, argv: Sequence[str]) -> str:
    return " ".join(["python", script, *argv])


# Iterations of the demo's training in mixed precision, which takes 0.6 times as long
# per iteration (the config's schedule, 2400, stretched with its steps).
AMP_ITERATIONS = 3200


def default_amp() -> bool:
    """Mixed precision where it is fast: on CUDA (float16), or on a CPU with bfloat16
    instructions, where a training iteration of yolact_tiny takes about 0.6 times as
    long as in float32 (docs/training.md)."""
    return torch.cuda.is_available() or cpu_has_bf16()


def train_model(paths: dict[str, str], weights: str, work_dir: str, iterations: int | None,
                batch_size: int | None, num_workers: int, progress: bool,
                amp: bool = False) -> None:  # fmt: skip
    """Train ``yolact_tiny`` with train.py (``--amp`` with ``amp``); keep the final
    weights (with config) at ``weights``."""
    shutil.rmtree(work_dir, ignore_errors=True)  # a fresh run, not a resume of an old one
    batch = batch_size or get_config(CONFIG).train.batch_size
    argv = [
        f"--config={CONFIG}", f"--batch_size={batch}",
        f"--train_ann={paths['train_ann_file']}", f"--train_images={paths['train_image_dir']}",
        f"--save_folder={work_dir}", "--save_interval=0", "--validation_epoch=-1",
        f"--num_workers={num_workers}",
    ]  # fmt: skip
    if iterations is not None:
        # The config's schedule stretched or shrunk: its rate steps at the same fractions.
        train = get_config(CONFIG).train
        steps = ",".join(str(round(s * iterations / train.max_iter)) for s in train.lr_steps)
        argv += [f"--max_iter={iterations}", f"--lr_steps={steps}"]
    if amp:
        argv.append("--amp")
    if not progress:
        argv.append("--no_bar")
    step(f"training {CONFIG} from scratch: {_command('train.py', argv)}")
    code = train_cli.main(argv)
    last = find_latest(work_dir, CONFIG)
    if code != 0 or last is None:
        raise SystemExit(f"training failed (exit code {code})")
    slim_checkpoint(last, weights)
    step(f"saved the trained model to {weights}")


def _image_count(ann_file: str) -> int:
    try:
        with open(ann_file, encoding="utf-8") as f:
            return len(json.load(f).get("images", []))
    except (OSError, ValueError, AttributeError):
        return -1


class DemoDataError(ValueError):
    """A data folder the demo cannot use (the message is one line)."""


def _read_manifest(data_dir: str) -> dict | None:
    """The demo's manifest in ``data_dir``; None where there is none or it is unreadable."""
    try:
        with open(os.path.join(data_dir, MANIFEST), encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _write_manifest(data_dir: str, manifest: dict) -> None:
    """Write the manifest beside the data, atomically (a temporary name, then a rename)."""
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, MANIFEST)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, path)


def prepare_dataset(data_dir: str, num_train: int, num_val: int, image_size: int) -> dict:
    """The demo's synthetic split in ``data_dir``, written unless it is already there
    with at least ``num_train`` training and exactly ``num_val`` val images. With
    ``num_train`` 0 only the val split is written (no training split at all).

    The demo uses only data it wrote itself: its manifest (:data:`MANIFEST`) records
    the generator's parameters and seed, and says complete once every file is
    written. Its own data with other parameters, or half written, is written again;
    a folder that holds files but no manifest (another tool's data) is refused.

    Raises:
        DemoDataError: ``data_dir`` holds data that the demo did not write.
    """
    paths = {
        "train_ann_file": os.path.join(data_dir, "annotations", "train.json"),
        "train_image_dir": os.path.join(data_dir, "train"),
        "val_ann_file": os.path.join(data_dir, "annotations", "val.json"),
        "val_image_dir": os.path.join(data_dir, "val"),
    }
    params = {
        "generator": "yolact.demo", "seed": DATA_SEED, "size": image_size,
        "max_objects": MAX_OBJECTS, "radius_range": list(RADIUS_RANGE), "num_val": num_val,
    }  # fmt: skip
    if os.path.exists(data_dir) and not os.path.isdir(data_dir):
        raise DemoDataError(f"{data_dir} is not a folder; give --data_dir a new or empty folder")
    manifest = _read_manifest(data_dir)
    if manifest is None and os.path.isdir(data_dir) and os.listdir(data_dir):
        raise DemoDataError(
            f"{data_dir} holds data that the demo did not write (no {MANIFEST}); "
            "give --data_dir a new or empty folder"
        )
    if (
        manifest is not None
        and manifest.get("complete") is True
        and {k: manifest.get(k) for k in params} == params
        and (num_train == 0 or _image_count(paths["train_ann_file"]) >= num_train)
        and _image_count(paths["val_ann_file"]) == num_val
    ):
        step(f"using the synthetic dataset in {data_dir}")
        return paths
    step(f"writing a synthetic dataset ({num_train} train, {num_val} val images) to {data_dir}")
    _write_manifest(data_dir, {**params, "num_train": num_train, "complete": False})
    size = (image_size, image_size)
    write_coco_dataset(data_dir, num_train, num_val, size, DATA_SEED, MAX_OBJECTS, RADIUS_RANGE)
    _write_manifest(data_dir, {**params, "num_train": num_train, "complete": True})
    return paths


def run_demo(
    out: str = "runs/demo",
    data_dir: str = DATA_DIR,
    weights: str = WEIGHTS,
    iterations: int | None = None,
    force: bool = False,
    num_train: int = NUM_TRAIN,
    num_val: int = NUM_VAL,
    image_size: int = IMAGE_SIZE,
    video_frames: int = VIDEO_FRAMES,
    batch_size: int | None = None,
    num_workers: int = 0,
    progress: bool = True,
    amp: bool | None = None,
    threads: int | None = None,
) -> DemoResult:
    """Run the four demo steps; see the module docstring. ``amp`` None trains in mixed
    precision where it is fast (:func:`default_amp`); ``iterations`` None trains
    :data:`AMP_ITERATIONS` in mixed precision, else the config's schedule.

    The thread pools are sized as eval.py sizes them (``threads``: its ``--threads``)
    before the data is written and again before the evaluation, since training sizes
    them for itself and its data loader.

    Raises:
        yolact.core.threads.ThreadsError: ``threads`` below 1 or a bad ``OMP_NUM_THREADS``.
    """
    configure_threads(threads)
    trained = force or not os.path.isfile(weights)
    # The val split does not depend on the number of training images, so a run
    # that only evaluates writes no training images.
    paths = prepare_dataset(data_dir, num_train if trained else 0, num_val, image_size)
    if trained:
        work_dir = os.path.join(out, "train")
        amp = default_amp() if amp is None else amp
        if iterations is None and amp:
            iterations = AMP_ITERATIONS
        train_model(paths, weights, work_dir, iterations, batch_size, num_workers, progress, amp)
        configure_threads(threads)
    else:
        step(f"using the trained model {weights} (--train trains one here)")

    step(f"evaluating {weights} on {paths['val_ann_file']} (COCO AP, IoU .50:.95)")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    predictor = Predictor.from_checkpoint(weights, device=device)
    val_set = CocoDataset(
        paths["val_ann_file"], paths["val_image_dir"], class_names=predictor.class_names
    )
    result = evaluate_dataset(predictor, val_set, progress=progress)
    assert result.metrics is not None
    write_metrics(result, os.path.join(out, "metrics.json"))
    print(f"{format_aps(result.metrics)} on {len(val_set)} images")

    input_video = os.path.join(out, "demo_input.mp4")
    output_video = os.path.join(out, "demo_masks.mp4")
    step(f"writing a synthetic video ({video_frames} frames) to {input_video}")
    size = (image_size, image_size)
    write_synthetic_video(
        input_video, video_frames, size, seed=VIDEO_SEED, radius_range=RADIUS_RANGE
    )
    argv = [
        f"--trained_model={weights}", f"--video={input_video}:{output_video}",
        "--score_threshold=0.3", "--display",
    ]  # fmt: skip
    if not progress:
        argv.append("--no_bar")
    step(f"drawing masks on the video: {_command('eval.py', argv)}")
    if eval_cli.main(argv) != 0:
        raise SystemExit("eval.py failed on the demo video")
    return DemoResult(result.metrics, weights, trained, input_video, output_video)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m yolact.demo", description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/demo", help="output folder (video, metrics, train logs)")
    p.add_argument("--iterations", type=int, default=None,
                   help="training iterations at batch 8 (default: 3200 in mixed precision, "
                   "else the config's 2400), the rate steps moved with them")  # fmt: skip
    p.add_argument("--train", "--force", dest="train", action="store_true",
                   help="train the model here instead of using the shipped one")  # fmt: skip
    p.add_argument("--data_dir", default=DATA_DIR, help="synthetic dataset folder")
    p.add_argument("--weights", default=None,
                   help=f"the checkpoint to use or write (default: {WEIGHTS}; with "
                   "--train, <out>/yolact_tiny_synthetic.pth)")  # fmt: skip
    p.add_argument("--num_train", type=int, default=NUM_TRAIN, help="train images (new dataset)")
    p.add_argument("--num_val", type=int, default=NUM_VAL, help="val images (new dataset)")
    p.add_argument("--size", type=int, default=IMAGE_SIZE, help="image and video side in pixels")
    p.add_argument("--frames", type=int, default=VIDEO_FRAMES, help="frames of the demo video")
    p.add_argument("--batch_size", type=int, default=None, help="default: the config's")
    p.add_argument("--num_workers", type=int, default=0, help="data loading processes")
    p.add_argument("--no_bar", action="store_true", help="no progress bars")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: the cores idle at start)")  # fmt: skip
    p.add_argument("--amp", type=str2bool, default=None,
                   help="train in mixed precision (default: on CUDA, or on a CPU with "
                   "bfloat16 instructions)")  # fmt: skip
    a = p.parse_args(argv)
    weights = a.weights or (os.path.join(a.out, os.path.basename(WEIGHTS)) if a.train else WEIGHTS)
    try:
        result = run_demo(
            a.out, a.data_dir, weights, a.iterations, a.train, a.num_train, a.num_val,
            a.size, a.frames, a.batch_size, a.num_workers, progress=not a.no_bar, amp=a.amp,
            threads=a.threads,
        )  # fmt: skip
    except (ThreadsError, DemoDataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    step(f"done: {result.output_video}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
