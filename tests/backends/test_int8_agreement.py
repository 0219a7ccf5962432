"""The INT8 export's check against float32: detections matched by class and box
overlap, figures computed by hand; beyond the tolerances the export is refused in
one line and the output keeps what it held."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO, digest, one_line

from yolact.backends import agreement
from yolact.backends.agreement import Agreement, compare_graphs
from yolact.data.synthetic import write_coco_dataset
from yolact.export import main as export_main

DEMO = str(REPO / "weights" / "yolact_tiny_synthetic.pth")


def outputs(boxes, scores, classes, masks) -> list[np.ndarray]:
    """One image's graph outputs (boxes relative, masks [D, 4, 4])."""
    b = np.array([boxes], dtype=np.float32)
    s = np.array([scores], dtype=np.float32)
    return [b, s, s, np.array([classes]), np.array([masks], dtype=np.float32),
            np.array([len(scores)])]  # fmt: skip


def test_compare_graphs_by_hand() -> None:
    full = np.ones((4, 4))
    half = np.zeros((4, 4))
    half[:2] = 1
    ref = outputs(
        [[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.0, 0.5, 0.5, 1.0], [0, 0, 1, 1]],
        [0.9, 0.8, 0.6, 0.4],  # the last is below 0.5: not compared
        [1, 2, 3, 1],
        [full, full, full, full],
    )
    got = outputs(
        # class 2 comes first now; class 1's box moved 0.01 (1 px at 100 px); class 3
        # is found as class 0 only (lost).
        [[0.5, 0.5, 1.0, 1.0], [0.0, 0.0, 0.51, 0.5], [0.0, 0.5, 0.5, 1.0]],
        [0.85, 0.8, 0.6],
        [2, 1, 0],
        [half, full, full],
    )
    result = compare_graphs([ref], [got], input_size=100)
    assert result == Agreement(
        images=1, detections=3, matched=2, max_box_px=pytest.approx(1.0, abs=1e-4),
        mean_mask_iou=0.75, min_mask_iou=0.5,
    )  # fmt: skip
    assert result.matched_fraction == pytest.approx(2 / 3)
    assert not result.within_tolerance()
    same = compare_graphs([ref], [ref], input_size=100)
    assert same.matched == same.detections == 3 and same.max_box_px == 0.0
    assert same.within_tolerance() and same.mean_mask_iou == 1.0


def test_refused_beyond_tolerance_output_kept(tmp_path, capsys, monkeypatch) -> None:
    calib = write_coco_dataset(str(tmp_path / "calib"), 4, 0, size=(160, 160), seed=5,
                               max_objects=3, radius_range=(0.14, 0.3))  # fmt: skip
    output = tmp_path / "model.onnx"
    output.write_bytes(b"an earlier export")
    before = digest(output)
    monkeypatch.setattr(agreement, "MIN_MATCHED", 1.01)  # nothing can pass
    code = export_main([f"--trained_model={DEMO}", f"--output={output}", "--int8",
                        f"--calib={calib['train_image_dir']}"])  # fmt: skip
    assert code == 1
    err = one_line(capsys.readouterr().err)
    assert err.startswith("error: refused: INT8 against float32 on 4 calibration image(s)")
    assert "nothing written" in err
    assert digest(output) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calib", "model.onnx"]
