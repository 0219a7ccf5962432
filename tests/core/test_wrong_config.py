"""A --config other than the one a file stores: one short line naming the file's
config, not lists of keys (issue 16, item 11)."""

from __future__ import annotations

import pytest
import torch
from conftest import REPO

from yolact.core.weights import CheckpointError
from yolact.predictor import Predictor
from yolact.registry import family_of, get_config

SHIPPED = str(REPO / "weights" / "yolact_tiny_synthetic.pth")


def expected(path: str, stored: str, given: str) -> str:
    return f"{path} holds a '{stored}' model, not '{given}'; use --config={stored} or leave it out"


@pytest.mark.parametrize("given", ["yolact_base", "yolact_resnet50", "mask_rcnn_tiny"])
def test_the_api_names_the_stored_config(given) -> None:
    with pytest.raises(CheckpointError) as info:
        Predictor.from_checkpoint(SHIPPED, config=given, device="cpu")
    assert str(info.value) == expected(SHIPPED, "yolact_tiny", given)


@pytest.fixture(scope="module")
def rcnn_file(tmp_path_factory) -> str:
    cfg = get_config("mask_rcnn_tiny")
    model = family_of(cfg).build_model(cfg, None, "random")
    path = tmp_path_factory.mktemp("rcnn") / "rcnn.pth"
    torch.save({"model": model.state_dict(), "config": cfg.to_dict()}, path)
    return str(path)


@pytest.mark.parametrize("given", ["mask_rcnn_r50_fpn", "yolact_tiny"])
def test_a_mask_rcnn_file_names_its_config_too(rcnn_file, given) -> None:
    with pytest.raises(CheckpointError) as info:
        Predictor.from_checkpoint(rcnn_file, config=given, device="cpu")
    assert str(info.value) == expected(rcnn_file, "mask_rcnn_tiny", given)


def test_eval_prints_one_short_line(tmp_path, capsys) -> None:
    import cv2
    import numpy as np

    from yolact.cli import eval_cli

    image, out = tmp_path / "p.png", tmp_path / "o.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    code = eval_cli.main([f"--trained_model={SHIPPED}", "--config=yolact_base",
                          f"--image={image}:{out}", "--cuda=False", "--no_bar"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines() == [f"error: {expected(SHIPPED, 'yolact_tiny', 'yolact_base')}"]
    assert len(err.strip()) < 160 and not out.exists()
