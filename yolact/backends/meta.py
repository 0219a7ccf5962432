"""What an exported file stores about its model, and telling such a file apart."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from yolact.core.weights import CheckpointError

# The ONNX metadata key (and the OpenVINO directory's JSON file) holding ExportMeta.
META_KEY = "yolact"
OPENVINO_SUFFIX = "_openvino_model"
OPENVINO_XML = "model.xml"
OPENVINO_META = "metadata.json"
FORMAT_VERSION = 1


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

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(text: str, source: str) -> ExportMeta:
        """Raises: ExportedFileError: not this project's metadata."""
        try:
            d = json.loads(text)
            return ExportMeta(**d)
        except (ValueError, TypeError) as e:
            raise ExportedFileError(f"{source}: unreadable yolact metadata ({e})") from None


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
        folder = path if os.path.isdir(path) else os.path.dirname(path)
        meta = os.path.join(folder, OPENVINO_META)
        if not os.path.isfile(meta):
            raise ExportedFileError(
                f"{path}: no {OPENVINO_META} (export it with python -m yolact.export)"
            )
        with open(meta, encoding="utf-8") as f:
            return ExportMeta.from_json(f.read(), meta)
    raise ExportedFileError(f"{path}: not an exported model (.onnx or *{OPENVINO_SUFFIX}/)")
