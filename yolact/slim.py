"""Slim a training checkpoint for inference: weights, config and class names only.

A train.py checkpoint also holds the optimizer state (for SGD with momentum or
AdamW, one or two extra copies of the weights), the scaler and the RNG states;
none is needed to run the model. ``--half`` stores the floating-point weights as
float16, halving the file again; they are cast back to the model's dtype when
loaded, so the model still runs in float32::

    python -m yolact.slim weights/yolact_tiny_79_10000.pth small.pth --half
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import torch

from yolact.backends.meta import exported_format
from yolact.backends.writes import (
    WriteError,
    check_replaceable_file,
    check_writable_folder,
    write_file,
)
from yolact.core.weights import CheckpointError
from yolact.io.outputs import same_file
from yolact.registry import read_checkpoint


def slim_checkpoint(src: str, dst: str, half: bool = False) -> dict:
    """Write ``dst`` holding ``src``'s weights, config, class names and iteration.

    Args:
        src: a checkpoint with a stored config (written by train.py or this function).
        dst: output path: written beside it under a temporary name, read back, then
            moved into place (an earlier ``dst`` stays until then).
        half: store floating-point tensors as float16.

    Returns:
        The dict written.

    Raises:
        CheckpointError: ``src`` is unreadable, an exported file (no weights) or has
            no stored config.
        WriteError: ``dst`` is ``src`` (however spelt), a folder, or cannot be
            written; checked before ``src`` is read.
    """
    check_paths(src, dst)
    ckpt = read_checkpoint(src)
    if ckpt.config is None:
        raise CheckpointError(f"{src} has no stored config; export needs a train.py checkpoint")
    state = {
        k: v.half() if half and v.is_floating_point() else v for k, v in ckpt.state_dict.items()
    }
    out = {
        "model": state,
        "config": ckpt.config.to_dict(),
        "class_names": list(ckpt.config.class_names),
        "iteration": ckpt.meta.get("iteration"),
    }
    write_file(dst, lambda tmp: torch.save(out, tmp), _readable)
    return out


def _readable(path: str) -> None:
    """Read a written checkpoint back (a failed read leaves the earlier ``dst``)."""
    read_checkpoint(path)


def check_paths(src: str, dst: str) -> None:
    """Refuse, before any work, an exported ``src`` and a ``dst`` that is ``src``
    or cannot be written.

    Raises:
        CheckpointError, WriteError: in one line.
    """
    fmt = exported_format(src)
    if fmt is not None and os.path.exists(src):  # a missing one: "not found"
        kind = "an ONNX file" if fmt == "onnx" else "an OpenVINO model"
        raise CheckpointError(f"{src} is {kind} written by export; slim a train.py checkpoint")
    if os.path.exists(dst) and same_file(src, dst):
        raise WriteError(f"the output {dst} would overwrite the input {src}; give another path")
    check_replaceable_file(dst)
    check_writable_folder(os.path.dirname(os.path.abspath(dst)))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m yolact.slim", description=__doc__.split("\n")[0])
    p.add_argument("src", help="a train.py checkpoint")
    p.add_argument("dst", help="the slim checkpoint to write")
    p.add_argument("--half", action="store_true", help="store the weights as float16")
    a = p.parse_args(argv)
    try:
        slim_checkpoint(a.src, a.dst, a.half)
    except (CheckpointError, WriteError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    size = os.path.getsize(a.dst) / 2**20
    print(f"wrote {a.dst} ({size:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
