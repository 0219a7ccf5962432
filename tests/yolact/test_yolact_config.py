"""YOLACT's string options (NMS method, classifier): Literal types checked when a config
is built, also from a checkpoint's stored config, where eval.py reports them in one line."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import cv2
import numpy as np
import pytest
import torch
from conftest import exactly

from yolact.cli.eval_cli import main
from yolact.core.config import ConfigError
from yolact.core.ops.nms import NMS_METHODS, NMSMethod
from yolact.core.weights import CheckpointError
from yolact.models.yolact.config import CLASSIFIERS, Classifier, NMSConfig, YolactConfig
from yolact.registry import config_from_dict, get_config, read_checkpoint

NMS_MESSAGE = "nms.method must be one of 'fast', 'cross_class', 'standard'; got 'soft'"
CLASSIFIER_MESSAGE = (
    "config yolact_tiny: classifier must be one of 'softmax', 'sigmoid'; got 'focal'"
)


def test_option_values_are_the_literal_types() -> None:
    assert NMS_METHODS == get_args(NMSMethod) == ("fast", "cross_class", "standard")
    assert CLASSIFIERS == get_args(Classifier) == ("softmax", "sigmoid")


def test_nms_method_is_checked_when_built() -> None:
    with pytest.raises(ConfigError, match=exactly(NMS_MESSAGE)):
        NMSConfig(method="soft")
    with pytest.raises(ConfigError, match=exactly(NMS_MESSAGE)):
        get_config("yolact_tiny").with_nms(method="soft")
    assert get_config("yolact_tiny").with_nms(method="standard").nms.method == "standard"


def test_classifier_is_checked_when_built() -> None:
    with pytest.raises(ConfigError, match=exactly(CLASSIFIER_MESSAGE)):
        YolactConfig(name="yolact_tiny", classifier="focal")
    with pytest.raises(ConfigError, match=exactly(CLASSIFIER_MESSAGE)):
        get_config("yolact_tiny").replace(classifier="focal")


def _stored(**changes: object) -> dict:
    d = get_config("yolact_tiny").to_dict()
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".")
            d[outer] = {**d[outer], inner: value}
        else:
            d[key] = value
    return d


@pytest.mark.parametrize(
    ("change", "message"),
    [({"nms.method": "soft"}, NMS_MESSAGE), ({"classifier": "focal"}, CLASSIFIER_MESSAGE)],
)
def test_options_are_checked_in_a_stored_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=exactly(message)):
        YolactConfig.from_dict(_stored(**change))
    with pytest.raises(ConfigError, match=exactly(message)):
        config_from_dict(_stored(**change))
    path = tmp_path / "yolact_tiny_1_10.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "config": _stored(**change)}, path)
    line = f"checkpoint {path} has an unreadable config (ConfigError: {message})"
    with pytest.raises(CheckpointError, match=exactly(line)):
        read_checkpoint(str(path))
    image = tmp_path / "in.png"
    cv2.imwrite(str(image), np.full((32, 48, 3), 90, np.uint8))
    code = main(["--no_bar", "--cuda=False", f"--trained_model={path}", f"--image={image}"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err == f"error: {line}\n"
