"""Config types shared by every model family.

A config is an explicit, immutable value handed to constructors. Nothing in
the package reads a global config, so models built from different configs can
live side by side in one process. Each family defines its own config type
(see :class:`ModelConfig` for what every one of them offers) on top of the
backbone and training settings here.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar, Union, get_args, get_origin, get_type_hints

_Config = TypeVar("_Config")

# BGR order, as the original models were trained with.
PIXEL_MEAN_BGR = (103.94, 116.78, 123.68)
PIXEL_STD_BGR = (57.38, 57.12, 58.40)

# The string options of the shared configs (TrainConfig).
Optimizer = Literal["sgd", "adamw"]
Augmentation = Literal["ssd", "light", "none"]
LrSchedule = Literal["steps", "cosine"]
OPTIMIZERS: tuple[Optimizer, ...] = get_args(Optimizer)
AUGMENTATIONS: tuple[Augmentation, ...] = get_args(Augmentation)
LR_SCHEDULES: tuple[LrSchedule, ...] = get_args(LrSchedule)


class ConfigError(ValueError):
    """An unknown config name or an invalid config."""


# A dataclass -> its Literal-typed fields: (name, allowed values, None allowed) each.
_ChoiceFields = tuple[tuple[str, tuple[object, ...], bool], ...]
_CHOICE_FIELDS: dict[type, _ChoiceFields] = {}


def _choice_fields(cls: type) -> _ChoiceFields:
    """The fields of dataclass ``cls`` typed as a ``Literal`` (or one or None)."""
    if cls in _CHOICE_FIELDS:
        return _CHOICE_FIELDS[cls]
    hints = get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        optional = False
        if get_origin(hint) in (Union, types.UnionType):
            members = [a for a in get_args(hint) if a is not type(None)]
            optional = len(members) < len(get_args(hint))
            if len(members) != 1:
                continue
            hint = members[0]
        if get_origin(hint) is Literal:
            found.append((f.name, get_args(hint), optional))
    _CHOICE_FIELDS[cls] = tuple(found)
    return _CHOICE_FIELDS[cls]


def check_choices(config: object, where: str = "") -> None:
    """Check every ``Literal``-typed field of a config dataclass (called by its
    ``__post_init__``, so configs built in code, by ``replace`` and from stored
    dicts are checked alike).

    Args:
        config: a dataclass instance.
        where: prefix of the message, e.g. ``"config yolact_base: "`` or ``"train."``.

    Raises:
        ConfigError: a field holds a value its type does not list, in one line such
            as ``train.optimizer must be one of 'sgd', 'adamw'; got 'adam'``.
    """
    for name, allowed, optional in _choice_fields(type(config)):
        value = getattr(config, name)
        if value in allowed or (optional and value is None):
            continue
        listed = ", ".join(repr(a) for a in allowed)
        also = "None or " if optional else ""
        raise ConfigError(f"{where}{name} must be {also}one of {listed}; got {value!r}")


@dataclass(frozen=True)
class BackboneConfig:
    """ResNet backbone.

    Attributes:
        depth: 18, 34, 50, 101 or 152 (torchvision's ResNet layouts).
        width: channels of the stem and of the first stage's 3x3 convs; the
            stages double it (64 is torchvision's ResNet, smaller values give
            the same layout at a fraction of the cost, for small models).
        dcn_layers: per stage C2..C5, how many of the last blocks may use a
            deformable 3x3 convolution (YOLACT++); 0 disables.
        dcn_interval: inside those, every ``dcn_interval``-th block is deformable.
        selected_layers: stage indices (0 = C2) that feed the FPN.
    """

    depth: int = 101
    width: int = 64
    dcn_layers: tuple[int, int, int, int] = (0, 0, 0, 0)
    dcn_interval: int = 1
    selected_layers: tuple[int, ...] = (1, 2, 3)


# Keys stored in training settings by earlier versions that are no shared field now:
# the YOLACT loss settings (a field of its subclass of TrainConfig) and use_focal_loss.
FORMER_TRAIN_KEYS = frozenset(
    (
        "use_focal_loss", "pos_thresh", "neg_thresh", "crowd_iou_thresh", "negpos_ratio",
        "masks_to_train", "assigner", "atss_topk", "box_loss", "focal_alpha", "focal_gamma",
        "discard_mask_area", "bbox_alpha", "conf_alpha", "mask_alpha", "semantic_alpha",
        "maskiou_alpha",
    )
)  # fmt: skip
_Train = TypeVar("_Train", bound="TrainConfig")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings every family shares (the original's, for a batch of
    ``batch_size``); a family adds its loss settings in a subclass
    (:class:`yolact.models.yolact.train_config.YolactTrainConfig`).

    Attributes:
        optimizer: ``"sgd"`` (the original's, with momentum) or ``"adamw"``.
        lr, momentum, weight_decay: optimiser settings (AdamW takes ``momentum``
            as its beta1).
        grad_clip: clip the gradient norm to this value before each step (0: off).
        augment: training augmentation, ``"ssd"`` (the original's), ``"light"``
            (photometric and mirror only) or ``"none"``; see
            :func:`yolact.data.transforms.train_transform`.
        gamma: learning-rate factor at each of ``lr_steps``.
        lr_steps, max_iter: schedule in iterations.
        lr_schedule: after the warm-up, ``"steps"`` (the original's: multiply by
            ``gamma`` at each of ``lr_steps``) or ``"cosine"`` (a half cosine from
            ``lr`` down to 0 at the run's last iteration, whatever its length;
            ``lr_steps`` and ``gamma`` are unused).
        warmup_init, warmup_until: linear warm-up from ``warmup_init`` to ``lr``.
        batch_size: the total batch the schedule is written for; other batch
            sizes scale lr, max_iter and lr_steps (``autoscale``).
        freeze_bn: keep BatchNorm statistics and affine parameters fixed.
        discard_box_size: ground truth under this many pixels (at the input size) is dropped.
    """

    optimizer: Optimizer = "sgd"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    grad_clip: float = 0.0
    augment: Augmentation = "ssd"
    gamma: float = 0.1
    lr_steps: tuple[int, ...] = (280000, 600000, 700000, 750000)
    max_iter: int = 800000
    lr_schedule: LrSchedule = "steps"
    warmup_init: float = 1e-4
    warmup_until: int = 500
    batch_size: int = 8
    freeze_bn: bool = False
    discard_box_size: float = 4.0

    def __post_init__(self) -> None:
        check_choices(self, "train.")

    @classmethod
    def from_dict(cls: type[_Train], d: dict[str, Any]) -> _Train:
        """Inverse of ``dataclasses.asdict`` (lists become tuples).

        Keys that earlier versions stored in every family's training settings and
        that are no field of ``cls`` are dropped (:data:`FORMER_TRAIN_KEYS`): the
        loss settings a family's subclass holds now, and ``use_focal_loss`` (the
        classifier is a model setting now). Any other key is still an error.
        """
        own = {f.name for f in dataclasses.fields(cls)}
        fields: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v
            for k, v in d.items()
            if k in own or k not in FORMER_TRAIN_KEYS
        }
        return cls(**fields)


# The small configs' recipe: short from-scratch CPU runs (see yolact_tiny).
TINY_TRAIN = TrainConfig(
    optimizer="adamw",
    lr=1e-3,
    weight_decay=0.05,
    grad_clip=10.0,
    augment="light",
    warmup_init=1e-4,
    warmup_until=100,
    lr_steps=(1800, 2250),
    max_iter=2400,
    batch_size=8,
)


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _as_tuples(value: Any) -> Any:
    """Lists (at any depth) as tuples, as the configs store sequences."""
    if isinstance(value, list | tuple):
        return tuple(_as_tuples(v) for v in value)
    return value


def _parse_value(text: str, hint: Any, key: str) -> Any:
    """``text`` as a value of the type ``hint`` (see :func:`apply_overrides`)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(hint) if a is not type(None)]
        if text.lower() == "none" and len(members) < len(get_args(hint)):
            return None
        return _parse_value(text, members[0], key)
    try:
        if hint is bool:
            if text.lower() in _TRUE + _FALSE:
                return text.lower() in _TRUE
            raise ValueError
        if hint in (int, float):
            return hint(text)
        if hint is str or origin is Literal:
            return text
        if origin is tuple:
            if text.strip()[:1] in "([":
                value = _as_tuples(ast.literal_eval(text))
                if not isinstance(value, tuple):
                    raise ValueError
                return value
            args = get_args(hint)
            parts = [t.strip() for t in text.split(",") if t.strip()]
            kinds = [args[0]] * len(parts) if len(args) == 2 and args[1] is ... else list(args)
            if len(kinds) != len(parts):
                raise ValueError
            return tuple(_parse_value(t, k, key) for t, k in zip(parts, kinds, strict=True))
        return _as_tuples(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError):
        name = str(hint) if get_origin(hint) else getattr(hint, "__name__", str(hint))
        raise ConfigError(f"{key}={text}: not a value of type {name}") from None


def apply_overrides(config: _Config, items: Sequence[str]) -> _Config:
    """A copy of a config with ``KEY=VALUE`` settings applied, checked as a new config.

    ``KEY`` is a field name, dotted into the nested configs (``max_size``,
    ``train.lr``, ``train.assigner``, ``nms.top_k``, ``backbone.width``).
    ``VALUE`` is read as the field's type: a number, true/false, a name, ``none``
    where the field allows it, and for sequences a comma list (``1800,2250``) or a
    Python literal (``((24,), (48,))``).

    Raises:
        ConfigError: a malformed item, an unknown key (naming the closest known
            ones), a value that does not parse or a config that is invalid with it.
    """
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"expected KEY=VALUE, got '{item}'")
        config = _override(config, key.split("."), text.strip(), key)
    return config


def _override(config: Any, path: list[str], text: str, key: str) -> Any:
    """``config`` with the field at ``path`` set from ``text``."""
    hints = get_type_hints(type(config))
    name = path[0]
    if name not in hints:
        prefix = key[: len(key) - len(".".join(path))]
        known = [prefix + n for n in hints]
        close = difflib.get_close_matches(key, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown config key '{key}'{hint}")
    current = getattr(config, name)
    if len(path) > 1:
        if not dataclasses.is_dataclass(current):
            raise ConfigError(f"unknown config key '{key}': '{name}' has no fields")
        value = _override(current, path[1:], text, key)
    elif dataclasses.is_dataclass(current):
        raise ConfigError(f"'{key}' is a group of settings; set one of its fields ({key}.NAME)")
    else:
        value = _parse_value(text, hints[name], key)
    try:
        return dataclasses.replace(config, **{name: value})
    except TypeError as e:
        raise ConfigError(f"{key}={text}: {e}") from None


class ModelConfig(Protocol):
    """What the engine reads from any family's config.

    Attributes:
        name: registry name, also the checkpoint file name prefix.
        class_names: foreground class names.
        backbone: ResNet settings.
        train: optimisation and loss settings.
    """

    @property
    def name(self) -> str: ...

    @property
    def class_names(self) -> tuple[str, ...]: ...

    @property
    def backbone(self) -> BackboneConfig: ...

    @property
    def train(self) -> TrainConfig: ...

    @property
    def num_classes(self) -> int: ...

    def replace(self, **changes: Any) -> ModelConfig: ...

    def with_train(self, **changes: Any) -> ModelConfig: ...

    def to_dict(self) -> dict[str, Any]: ...
