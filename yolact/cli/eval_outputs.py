"""eval.py's output places: checked before the model is built (one ``error:`` line each),
then written beside the target and moved into place.

No output may be one of the run's inputs, whatever spelling of its path reaches
it (see ``yolact.io.outputs.FileSet``): ``--image IN:OUT``, ``--video SRC:OUT``,
the drawings of ``--images IN_DIR:OUT_DIR`` and ``--output_json`` are each
compared with every input file, and ``--output_json`` with the drawings too.
Every output's folder must be writable (or creatable) and a file's place must
not be a folder.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from yolact.cli.predictors import Flags
from yolact.cli.video_list import VideoItem, video_items
from yolact.engine.evaluate import EvalResult, metrics_dict
from yolact.io.coco_json import CocoJsonWriter
from yolact.io.images import InputError, list_images, output_names
from yolact.io.outputs import (
    FileSet,
    OutputError,
    atomic_write,
    check_folder_writable,
    check_output_file,
    write_or_rescue,
)
from yolact.io.sources import parse_source, redact, split_in_out
from yolact.io.video import FOURCC_BY_EXTENSION


@dataclass
class Places:
    """The files a run reads and the files it writes (drawings, video), by path."""

    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


def _check_drawing(flag: str, out: str) -> None:
    """Raise unless a drawing can be written at ``out`` (place and image type)."""
    check_output_file(out, f"{flag} OUT")
    ext = os.path.splitext(out)[1]
    if ext and not cv2.haveImageWriter(out):
        raise OutputError(f"{flag}: cannot write images of type '{ext}' ({out}); use .png or .jpg")


def _image_places(spec: str) -> Places:
    """``--image IN[:OUT]``: IN, and OUT once its place is checked."""
    src, out = split_in_out(spec)
    places = Places(inputs=[src])
    if out:
        _check_drawing("--image", out)
        places.outputs.append(out)
    return places


def _images_places(spec: str) -> Places:
    """``--images IN_DIR:OUT_DIR``: the folder's images and their drawings, checked:
    OUT_DIR a writable folder other than IN_DIR, and no drawing onto an input."""
    src, out = split_in_out(spec)
    if not out:
        raise OutputError("--images needs IN_DIR:OUT_DIR")
    files = list_images(src)
    if os.path.exists(out) and not os.path.isdir(out):
        raise OutputError(f"--images: OUT_DIR {out} is a file, expected a folder")
    if os.path.isdir(out) and os.path.samefile(src, out):
        raise OutputError(f"--images: OUT_DIR must differ from IN_DIR ({out}): drawings would "
                          "replace the inputs")  # fmt: skip
    check_folder_writable(out, "--images OUT_DIR")
    drawings = [os.path.join(out, name) for name in output_names(files)]
    protected = FileSet(files)
    for drawing in drawings:
        hit = protected.find(drawing)
        if hit is not None:
            raise OutputError(f"--images: the drawing {drawing} would replace the input "
                              f"{redact(hit)} (the same file); give another OUT_DIR")  # fmt: skip
    return Places(inputs=files, outputs=drawings)


def _video_places(items: Sequence[VideoItem], flag: str) -> Places:
    """``--video``/``--streams``: each SRC that is a file, and each OUT once its place is
    checked: a video type, given to one source only, and none of the inputs."""
    places = Places()
    for item in items:
        kind, target = parse_source(item.src)
        if kind == "file":
            places.inputs.append(os.path.expanduser(str(target)))
    inputs = FileSet(places.inputs)
    for item in items:
        out = item.out
        if not out:
            continue
        check_output_file(out, f"{flag} OUT")
        ext = os.path.splitext(out)[1].lower()
        if ext not in FOURCC_BY_EXTENSION:
            known = ", ".join(FOURCC_BY_EXTENSION)
            raise OutputError(f"{flag}: unsupported video extension {ext!r} for {out} "
                              f"(use {known})")  # fmt: skip
        hit = inputs.find(out)
        if hit is not None:
            raise OutputError(f"{flag}: OUT {out} is the input {redact(hit)} itself "
                              "(the same file); give another OUT")  # fmt: skip
        hit = FileSet(places.outputs).find(out)
        if hit is not None:
            raise OutputError(f"{flag}: OUT {out} is given to two sources (the same file as "
                              f"{hit}); give each source its own OUT")  # fmt: skip
        places.outputs.append(out)
    return places


def check_outputs(args: Flags, items: Sequence[VideoItem] | None = None) -> None:
    """Refuse, before any work, every output of ``args`` that cannot be used.

    Args:
        args: the run's flags.
        items: the sources of ``--video``/``--streams`` (default: read from ``args``).

    Raises:
        OutputError: an output is an input (the same file by any path), two
            sources share an OUT, a folder where a file goes, of a type that
            cannot be written, or in a folder that cannot be written or made.
        InputError: ``--images``' IN_DIR does not exist, or a bad source list.
    """
    streams = getattr(args, "streams", None)
    if args.image:
        places = _image_places(args.image)
    elif args.images:
        places = _images_places(args.images)
    elif args.video or streams:
        if items is None:
            items = video_items(args.video, streams)
        places = _video_places(items, "--streams" if streams else "--video")
    else:
        places = Places()
    if args.image and places.outputs:
        out = places.outputs[0]
        hit = FileSet(places.inputs).find(out)
        if hit is not None:
            raise OutputError(f"--image: OUT {out} is the input {redact(hit)} itself "
                              "(the same file); give another OUT")  # fmt: skip
    if args.output_json:
        path = args.output_json
        check_output_file(path, "--output_json")
        hit = FileSet(places.inputs).find(path)
        if hit is not None:
            raise OutputError(f"--output_json {path} is the input {redact(hit)} (the same file); "
                              "give another path")  # fmt: skip
        hit = FileSet(places.outputs).find(path)
        if hit is not None:
            raise OutputError(f"--output_json {path} is also where the drawing {redact(hit)} goes; "
                              "give another path")  # fmt: skip


def check_dataset_outputs(args: Flags, ann_file: str) -> None:
    """Dataset mode: refuse result and metric files that would replace the annotation
    file or each other, and (those that will be written) unusable places, up front.

    Raises:
        OutputError: one line naming the flag and the cause.
    """
    outputs = [("--bbox_det_file", args.bbox_det_file), ("--mask_det_file", args.mask_det_file)]
    if args.metrics_json:
        outputs.append(("--metrics_json", args.metrics_json))
    annotations = FileSet([ann_file])
    seen: dict[str, str] = {}
    for flag, path in outputs:
        if flag == "--metrics_json" or args.output_coco_json:
            check_output_file(path, flag)
        if annotations.find(path) is not None:
            raise OutputError(f"{flag} {path} is the annotation file {ann_file} (the same file); "
                              "give another path")  # fmt: skip
        hit = FileSet(seen).find(path)
        if hit is not None:
            raise OutputError(f"{flag} {path} is the file of {seen[hit]} too; give another path")
        seen[path] = flag


def save_dataset_outputs(result: EvalResult, args: Flags, results: bool) -> None:
    """Write the result files (when ``results``) and ``--metrics_json``; a file that
    cannot be written is saved under another name and the others are still written.

    Raises:
        OutputError: one line naming each file not written and where it went instead.
    """
    files: list[tuple[str, Any, str]] = []
    if results:
        files.append((args.bbox_det_file, result.bbox_results, "box results"))
        files.append((args.mask_det_file, result.segm_results, "mask results"))
    if args.metrics_json:
        files.append((args.metrics_json, metrics_dict(result), "metrics"))
    failures = []
    for path, obj, what in files:
        try:
            write_or_rescue(path, json.dumps(obj).encode("utf-8"), what)
        except OutputError as e:
            failures.append(str(e))
            continue
        print(f"wrote {path}")
    if failures:
        raise OutputError("; ".join(failures))


def write_drawing(path: str, image: np.ndarray) -> None:
    """Encode by the extension (PNG without one) and write beside, then move into place."""
    ext = os.path.splitext(path)[1] or ".png"
    ok, buf = cv2.imencode(ext, image)
    if not ok:
        raise InputError(f"cannot encode output image as '{ext}': {path}")
    try:
        atomic_write(path, buf.tobytes())
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


def save_output_json(writer: CocoJsonWriter | None, failing: bool) -> None:
    """Write ``--output_json`` when the run processed at least one image or frame.

    A run that processed nothing (its input failed, or it was stopped first)
    leaves an existing file as it was. Where the file cannot be written, the
    detections are saved under another name (see ``CocoJsonWriter.save``): an
    ``error:`` line says where, or a ``note:`` line when the run is already
    failing with an error of its own.
    """
    if writer is None:
        return
    if writer.images == 0:
        if not failing:
            print(f"note: nothing was processed; {writer.path} not written", file=sys.stderr)
        return
    try:
        writer.save()
    except OutputError as e:
        if not failing:
            raise
        print(f"note: {e}", file=sys.stderr)
        return
    print(f"wrote {len(writer)} detections to {writer.path}")
