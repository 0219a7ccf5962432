"""A folder of cached detections for the tracking benchmark.

The network dominates the benchmark's time; the tracker takes well under a millisecond
a frame. With a cache, each clip's detections are computed once per model and clip,
and tracker variants are scored in seconds. An entry is keyed by the SHA-256 of the
model file, the SHA-256 of the clip's frames (so any change to the clip generator
misses the cache) and the score threshold. Entries are written beside their final
name and moved into place, so an interrupted run never leaves a partial entry.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable

import numpy as np

from yolact.data.clips import Clip
from yolact.io.outputs import atomic_write

__all__ = ["cached_detections", "file_digest", "clip_digest"]

_FIELDS = ("boxes", "scores", "labels", "masks", "shape")


def file_digest(path: str) -> str:
    """The SHA-256 of the file at ``path``, as hex.

    Raises:
        OSError: the file cannot be read.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def clip_digest(clip: Clip) -> str:
    """The SHA-256 of a clip's frames (their shapes and pixels), as hex."""
    h = hashlib.sha256()
    for frame in clip.frames:
        h.update(repr(frame.shape).encode())
        h.update(np.ascontiguousarray(frame).tobytes())
    return h.hexdigest()


def _entry_path(folder: str, model_digest: str, clip: Clip, score_threshold: float) -> str:
    name = f"{model_digest[:16]}_{clip_digest(clip)[:16]}_{score_threshold:.4f}.npz"
    return os.path.join(folder, name)


def _save(path: str, frames: list) -> None:  # list[FrameDetections]
    arrays: dict[str, np.ndarray] = {"count": np.array(len(frames))}
    for i, d in enumerate(frames):
        arrays[f"boxes_{i}"] = d.boxes
        arrays[f"scores_{i}"] = d.scores
        arrays[f"labels_{i}"] = d.labels
        arrays[f"shape_{i}"] = np.array(d.masks.shape, np.int64)
        arrays[f"masks_{i}"] = np.packbits(d.masks.astype(bool).reshape(-1))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    atomic_write(path, buf.getvalue())


def _load(path: str, make: Callable[..., object]) -> list | None:
    try:
        with np.load(path) as data:
            out = []
            for i in range(int(data["count"])):
                shape = tuple(int(v) for v in data[f"shape_{i}"])
                size = int(np.prod(shape))
                masks = np.unpackbits(data[f"masks_{i}"], count=size).astype(bool)
                out.append(
                    make(
                        boxes=data[f"boxes_{i}"],
                        scores=data[f"scores_{i}"],
                        labels=data[f"labels_{i}"],
                        masks=masks.reshape(shape),
                    )
                )
            return out
    except (OSError, KeyError, ValueError):  # missing or unreadable: compute again
        return None


def cached_detections(
    folder: str,
    model_digest: str,
    clip: Clip,
    score_threshold: float,
    compute: Callable[[], list],
    make: Callable[..., object],
) -> list:
    """The clip's detections from the cache, or computed and stored there.

    Args:
        folder: the cache folder (created when missing).
        model_digest: :func:`file_digest` of the model file.
        clip: the clip.
        score_threshold: the threshold the detections were kept at.
        compute: computes the detections (a list of ``FrameDetections``) on a miss.
        make: builds one ``FrameDetections`` from keyword arrays.

    Returns:
        One ``FrameDetections`` per frame.
    """
    path = _entry_path(folder, model_digest, clip, score_threshold)
    found = _load(path, make) if os.path.exists(path) else None
    if found is not None and len(found) == len(clip.frames):
        return found
    frames = compute()
    _save(path, frames)
    return frames
