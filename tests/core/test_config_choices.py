"""String options of the configs: Literal types, checked when a config is built, in
code, by ``replace`` and from a stored dict alike, with a one-line ConfigError."""

from __future__ import annotations

import dataclasses
import types
from typing import Literal, Optional, Union, get_args, get_origin, get_type_hints

import pytest
from conftest import exactly

from yolact.core.config import (
    AUGMENTATIONS,
    OPTIMIZERS,
    Augmentation,
    ConfigError,
    Optimizer,
    TrainConfig,
    check_choices,
)
from yolact.registry import FAMILIES, config_from_dict, get_config

TRAIN_OPTIONS = [
    ("optimizer", "adam", "train.optimizer must be one of 'sgd', 'adamw'; got 'adam'"),
    ("augment", "heavy", "train.augment must be one of 'ssd', 'light', 'none'; got 'heavy'"),
]


def test_train_option_values_are_the_literal_types() -> None:
    assert OPTIMIZERS == get_args(Optimizer) == ("sgd", "adamw")
    assert AUGMENTATIONS == get_args(Augmentation) == ("ssd", "light", "none")
    assert TrainConfig(optimizer="adamw", augment="none").augment == "none"


@pytest.mark.parametrize(("field", "bad", "message"), TRAIN_OPTIONS)
def test_train_option_is_checked_when_built(field: str, bad: str, message: str) -> None:
    with pytest.raises(ConfigError, match=exactly(message)):
        TrainConfig(**{field: bad})
    with pytest.raises(ConfigError, match=exactly(message)):
        dataclasses.replace(TrainConfig(), **{field: bad})
    for name in ("yolact_tiny", "mask_rcnn_tiny"):
        with pytest.raises(ConfigError, match=exactly(message)):
            get_config(name).with_train(**{field: bad})


@pytest.mark.parametrize(("field", "bad", "message"), TRAIN_OPTIONS)
def test_train_option_is_checked_in_a_stored_config(field: str, bad: str, message: str) -> None:
    with pytest.raises(ConfigError, match=exactly(message)):
        TrainConfig.from_dict({**dataclasses.asdict(TrainConfig()), field: bad})
    for name in ("yolact_tiny", "mask_rcnn_tiny"):
        stored = get_config(name).to_dict()
        stored["train"] = {**stored["train"], field: bad}
        with pytest.raises(ConfigError, match=exactly(message)):
            config_from_dict(stored)


@dataclasses.dataclass(frozen=True)
class Options:
    mode: Literal["a", "b"] = "a"
    maybe: Literal["x", "y"] | None = None
    old_style: Optional[Literal["p", "q"]] = "p"  # noqa: UP045 (the older spelling)
    free: str = "anything"

    def __post_init__(self) -> None:
        check_choices(self, "options: ")


def test_check_choices_reads_literal_and_optional_literal_fields() -> None:
    assert Options(mode="b", maybe="y", old_style=None, free="whatever").mode == "b"
    with pytest.raises(
        ConfigError, match=exactly("options: mode must be one of 'a', 'b'; got 'c'")
    ):
        Options(mode="c")
    with pytest.raises(
        ConfigError, match=exactly("options: mode must be one of 'a', 'b'; got None")
    ):
        Options(mode=None)
    message = "options: maybe must be None or one of 'x', 'y'; got 'z'"
    with pytest.raises(ConfigError, match=exactly(message)):
        Options(maybe="z")
    message = "options: old_style must be None or one of 'p', 'q'; got 'r'"
    with pytest.raises(ConfigError, match=exactly(message)):
        Options(old_style="r")


def _plain_str_fields(cls: type, prefix: str = "") -> list[str]:
    """Fields of a config dataclass (and the dataclasses inside it) typed ``str`` or
    ``str | None``: options whose values nothing checks."""
    found = []
    for name, hint in get_type_hints(cls).items():
        members = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
        if str in members:
            found.append(prefix + name)
        for member in members:
            if dataclasses.is_dataclass(member) and isinstance(member, type):
                found += _plain_str_fields(member, f"{prefix}{name}.")
    return found


def test_every_string_option_of_every_config_is_a_literal() -> None:
    for family in FAMILIES:
        for make in family.configs.values():
            cfg = make()
            assert _plain_str_fields(type(cfg)) == ["name"], type(cfg).__name__
