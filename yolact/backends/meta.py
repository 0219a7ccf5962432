"""What an exported file stores about its model, and telling such a file apart."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from yolact.core.weights import CheckpointError

# The ONNX metadata key (and the OpenVINO directory's JSON file) holding ExportMeta.
META_KEY = "yolact"
OPENVINO_SUFFIX = "_openvino_model"
OPENVINO_XML = "model.xml"
OPENVINO_BIN = "model.bin"
OPENVINO_META = "metadata.json"
# The layout version of ExportMeta this code writes and reads. Every file written
# since export existed carries its ``version`` (1), so a file without one was not
# written by export (or was edited), and is refused rather than guessed at.
# An INT8 export keeps version 1: its precision and calibration facts live in
# ``extra`` (which every version-1 reader accepts), and its graph is one that any
# reader runs as it is (QuantizeLinear/DequantizeLinear, FakeQuantize).
FORMAT_VERSION = 1
# What ``ExportMeta.precision`` can be: the weights' and activations' number format.
PRECISIONS = ("fp32", "fp16", "int8")


class ExportedFileError(CheckpointError):
    """An exported file that cannot be read or run here (one line)."""


@dataclass
class ExportMeta:
    """The metadata of an exported graph.

    Attributes:
        config_name: the registered config it was built from.
        config: the full stored config (``cfg.to_dict()``).
        class_names: foreground class names, indexed by the graph's ``classes``.
        input_size: S of the [B, 3, S, S] input.
        batch: the fixed batch size, or None for a dynamic batch.
        pixel_mean, pixel_std: BGR normalisation; channels: "rgb" or "bgr".
        crop, crop_padding: the masks come cropped to their boxes widened by
            ``crop_padding`` mask pixels.
        nms_method: the NMS in the graph.
        half: float16 weights and input.
        deformable: the graph holds ONNX DeformConv (TensorRT only).
        version: the layout version of this metadata.
        extra: further facts that need no new version; an INT8 export stores
            ``precision`` ("int8") and ``quantization`` (how it was calibrated and
            checked) here (:attr:`precision`, :attr:`quantization`).
    """

    config_name: str
    config: dict[str, Any]
    class_names: list[str]
    input_size: int
    batch: int | None
    pixel_mean: list[float]
    pixel_std: list[float]
    channels: str = "rgb"
    crop: bool = True
    crop_padding: float = 1.0
    nms_method: str = "fast"
    half: bool = False
    deformable: bool = False
    version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def precision(self) -> str:
        """ "int8" for an INT8 export, else "fp16" (``half``) or "fp32"."""
        stored = self.extra.get("precision")
        if isinstance(stored, str):
            return stored
        return "fp16" if self.half else "fp32"

    @property
    def quantization(self) -> dict[str, Any]:
        """How an INT8 export was made (calibration, tool, agreement); {} otherwise."""
        q = self.extra.get("quantization")
        return q if isinstance(q, dict) else {}

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(text: str, source: str) -> ExportMeta:
        """Read metadata written by :meth:`to_json`, checking its version and types
        (:func:`check_meta_dict`).

        Raises:
            ExportedFileError: not JSON, no or an unknown format version, a newer
                one, a missing key, a value of the wrong type, or an unknown key,
                in one line naming it.
        """
        try:
            d = json.loads(text)
        except ValueError as e:
            raise ExportedFileError(f"{source}: yolact metadata is not JSON ({e})") from None
        check_meta_dict(d, source)
        return ExportMeta(**d)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _positive_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _numbers(n: int) -> Callable[[object], bool]:
    return lambda v: isinstance(v, list) and len(v) == n and all(map(_is_number, v))


# Each key's check and what it expects, as the error line says it.
_FIELDS: dict[str, tuple[Callable[[object], bool], str]] = {
    "config_name": (lambda v: isinstance(v, str), "a string"),
    "config": (lambda v: isinstance(v, dict), "an object"),
    "class_names": (
        lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v),
        "a list of strings",
    ),
    "input_size": (_positive_int, "a positive integer"),
    "batch": (lambda v: v is None or _positive_int(v), "null or a positive integer"),
    "pixel_mean": (_numbers(3), "a list of 3 numbers"),
    "pixel_std": (_numbers(3), "a list of 3 numbers"),
    "channels": (lambda v: v in ("rgb", "bgr"), '"rgb" or "bgr"'),
    "crop": (lambda v: isinstance(v, bool), "true or false"),
    "crop_padding": (_is_number, "a number"),
    "nms_method": (lambda v: isinstance(v, str), "a string"),
    "half": (lambda v: isinstance(v, bool), "true or false"),
    "deformable": (lambda v: isinstance(v, bool), "true or false"),
    "extra": (
        lambda v: (
            isinstance(v, dict)
            and v.get("precision", "fp32") in PRECISIONS
            and isinstance(v.get("quantization", {}), dict)
        ),
        f"an object (its precision one of {', '.join(PRECISIONS)}, its quantization an object)",
    ),
}
_REQUIRED = ("config_name", "config", "class_names", "input_size", "batch", "pixel_mean",
             "pixel_std")  # fmt: skip


def check_meta_dict(d: object, source: str) -> None:
    """Check parsed metadata: its ``version`` first (absent, not a positive integer,
    or newer than :data:`FORMAT_VERSION` are refused), then the keys and types.

    Raises:
        ExportedFileError: in one line naming the cause.
    """
    if not isinstance(d, dict):
        raise ExportedFileError(f"{source}: yolact metadata is not a JSON object")
    if "version" not in d:
        raise ExportedFileError(f"{source}: yolact metadata without a format version")
    version = d["version"]
    if not _positive_int(version):
        raise ExportedFileError(f"{source}: unknown yolact metadata format version {version!r}")
    if version > FORMAT_VERSION:
        raise ExportedFileError(
            f"{source}: yolact metadata format version {version} is newer than this "
            f"yolact reads ({FORMAT_VERSION}); update yolact"
        )
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise ExportedFileError(f"{source}: yolact metadata without {', '.join(missing)}")
    unknown = sorted(k for k in d if k not in _FIELDS and k != "version")
    if unknown:
        raise ExportedFileError(
            f"{source}: unknown key(s) in yolact metadata: {', '.join(unknown)}"
        )
    for key, (ok, expected) in _FIELDS.items():
        if key in d and not ok(d[key]):
            raise ExportedFileError(
                f"{source}: yolact metadata '{key}' should be {expected}, not {d[key]!r:.60}"
            )


def exported_format(path: str) -> str | None:
    """ "onnx" for a ``.onnx`` file, "openvino" for an ``*_openvino_model`` directory
    (or its ``.xml``), else None (a checkpoint, say)."""
    if path.lower().endswith(".onnx"):
        return "onnx"
    if os.path.isdir(path) and (
        path.rstrip("/\\").endswith(OPENVINO_SUFFIX)
        or os.path.isfile(os.path.join(path, OPENVINO_META))
    ):
        return "openvino"
    if path.lower().endswith(".xml") and os.path.isfile(
        os.path.join(os.path.dirname(path) or ".", OPENVINO_META)
    ):
        return "openvino"
    return None


def read_meta(path: str) -> ExportMeta:
    """The metadata of an exported file.

    Raises:
        ExportedFileError: missing, unreadable, or written by another tool.
    """
    fmt = exported_format(path)
    if not os.path.exists(path):
        raise ExportedFileError(f"{path}: no such file")
    if fmt == "onnx":
        import onnx

        try:
            model = onnx.load(path, load_external_data=False)
        except Exception as e:  # noqa: BLE001 (protobuf raises several kinds)
            raise ExportedFileError(
                f"{path}: not a readable ONNX file ({type(e).__name__})"
            ) from None
        props = {p.key: p.value for p in model.metadata_props}
        if META_KEY not in props:
            raise ExportedFileError(
                f"{path}: an ONNX file without yolact metadata "
                "(export it with python -m yolact.export)"
            )
        return ExportMeta.from_json(props[META_KEY], path)
    if fmt == "openvino":
        return _openvino_meta(path)
    raise ExportedFileError(f"{path}: not an exported model (.onnx or *{OPENVINO_SUFFIX}/)")


def _openvino_meta(path: str) -> ExportMeta:
    """The metadata of an OpenVINO model (folder or .xml), after checking that the
    model's .xml and .bin are there."""
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    xml = os.path.join(path, OPENVINO_XML) if os.path.isdir(path) else path
    for needed in (xml, os.path.splitext(xml)[0] + ".bin"):
        if not os.path.isfile(needed):
            raise ExportedFileError(f"{path}: missing {os.path.basename(needed)}")
    meta = os.path.join(folder, OPENVINO_META)
    if not os.path.isfile(meta):
        raise ExportedFileError(
            f"{path}: no {OPENVINO_META} (export it with python -m yolact.export)"
        )
    try:
        with open(meta, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ExportedFileError(
            f"{meta}: unreadable ({getattr(e, 'strerror', None) or e})"
        ) from None
    return ExportMeta.from_json(text, meta)
