"""INT8 under accuracy control (``--max_ap_drop``, NNCF): the validation function is
the project's COCO mask AP, and the drop reached is printed, stored and within
the bound."""

from __future__ import annotations

import contextlib
import io

import pytest
from conftest import REPO

from yolact.backends.accuracy import MaskApValidator
from yolact.backends.meta import read_meta
from yolact.data.coco import CocoDataset
from yolact.data.synthetic import write_coco_dataset
from yolact.engine.evaluate import evaluate_dataset
from yolact.export import main as export_main
from yolact.predictor import Predictor
from yolact.registry import exported_config

pytest.importorskip("openvino")
pytest.importorskip("nncf")

DEMO = str(REPO / "weights" / "yolact_tiny_synthetic.pth")
DEMO_SCENES = {"size": (160, 160), "max_objects": 3, "radius_range": (0.14, 0.3)}
VAL = 20


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("accuracy")
    calib = write_coco_dataset(str(root / "calib"), 16, 0, seed=5, **DEMO_SCENES)
    val = write_coco_dataset(str(root / "demo"), 0, VAL, seed=0, **DEMO_SCENES)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        code = export_main([
            f"--trained_model={DEMO}", "--format=openvino", f"--output={root / 'ac'}",
            "--int8", f"--calib={calib['train_image_dir']}", "--max_ap_drop=0.003",
            f"--val_ann={val['val_ann_file']}", f"--val_images={val['val_image_dir']}",
        ])  # fmt: skip
    assert code == 0
    return {"model": str(root / "ac_openvino_model"), "log": log.getvalue(), **val}


def test_validator_is_coco_mask_ap(run) -> None:
    """NNCF's validation function gives the mask AP eval.py's evaluation gives, on
    the same images (here on the INT8 result, compiled as NNCF compiles it)."""
    import openvino as ov

    meta = read_meta(run["model"])
    cfg = exported_config(run["model"])
    validator = MaskApValidator(run["val_ann_file"], run["val_image_dir"], cfg, meta)
    assert validator.indices == list(range(VAL))
    compiled = ov.Core().compile_model(
        run["model"] + "/model.xml", "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
    )
    ap, per_sample = validator(compiled, validator.indices)
    predictor = Predictor.from_checkpoint(run["model"], device="cpu")
    dataset = CocoDataset(run["val_ann_file"], run["val_image_dir"])
    expected = evaluate_dataset(predictor, dataset, progress=False).metrics["segm"]["AP"]
    assert per_sample is None and ap == pytest.approx(expected, abs=1e-9)


def test_drop_within_bound_printed_and_stored(run) -> None:
    control = read_meta(run["model"]).quantization["accuracy_control"]
    assert control["max_ap_drop"] == 0.003 and control["images"] == VAL
    assert control["achieved_drop"] == pytest.approx(
        control["float_mask_ap"] - control["int8_mask_ap"], abs=1e-4
    )
    assert control["achieved_drop"] <= 0.003
    assert control["quantizers_removed"] >= 0
    assert (
        read_meta(run["model"]).quantization["tool"].startswith("nncf 3.")
        and "quantize_with_accuracy_control" in read_meta(run["model"]).quantization["tool"]
    )
    assert "accuracy control: mask AP" in run["log"] and "(bound 0.003)" in run["log"]
