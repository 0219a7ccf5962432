"""Network structure: output shapes, FPN sizes, state-dict layout, DCN, gradients."""

from __future__ import annotations

import re
from typing import get_args

import pytest
import torch
import torch.nn.functional as F

from yolact.core.backbone import ModulatedDeformConv
from yolact.core.config import BackboneConfig
from yolact.core.fpn import EXTRA_LEVELS, FPN, UPSAMPLE_MODES, ExtraLevels, UpsampleMode
from yolact.models.yolact.model import Yolact, build_model
from yolact.registry import get_config


def run_full_size(name: str) -> tuple[Yolact, dict[str, torch.Tensor], list[torch.Size]]:
    """Build a full-size model and run one 550 x 550 forward, recording the FPN levels."""
    torch.manual_seed(0)
    model = build_model(get_config(name))
    levels: list[torch.Size] = []
    model.fpn.register_forward_hook(lambda m, i, o: levels.extend(p.shape for p in o))
    with torch.no_grad():
        out = model(torch.randn(1, 3, 550, 550))
    return model, out, levels


@pytest.fixture(scope="module")
def base() -> tuple[Yolact, dict[str, torch.Tensor], list[torch.Size]]:
    return run_full_size("yolact_base")


@pytest.fixture(scope="module")
def plus() -> tuple[Yolact, dict[str, torch.Tensor], list[torch.Size]]:
    return run_full_size("yolact_plus_base")


@pytest.mark.slow
@pytest.mark.parametrize("which, num_priors", [("base", 19248), ("plus", 57744)])
def test_full_size_output_shapes(which: str, num_priors: int, request) -> None:
    model, out, levels = request.getfixturevalue(which)
    assert set(out) == {"loc", "conf", "coef", "proto", "priors"}
    assert out["loc"].shape == (1, num_priors, 4)
    assert out["conf"].shape == (1, num_priors, 81)
    assert out["coef"].shape == (1, num_priors, 32)
    assert out["proto"].shape == (1, 138, 138, 32)
    assert out["priors"].shape == (num_priors, 4)
    # Coefficients are tanh-activated, prototypes ReLU-activated.
    assert out["coef"].abs().max() <= 1 and out["proto"].min() >= 0
    assert [tuple(s[-2:]) for s in levels] == [(69, 69), (35, 35), (18, 18), (9, 9), (5, 5)]
    assert all(s[1] == 256 for s in levels)


def _block_prefixes(keys: list[str], stage: int) -> set[int]:
    pattern = re.compile(rf"backbone\.layers\.{stage}\.(\d+)\.")
    return {int(m.group(1)) for k in keys if (m := pattern.match(k))}


def _dcn_blocks(keys: list[str]) -> set[str]:
    return {k.split(".conv2.")[0] for k in keys if ".conv2.conv_offset_mask." in k}


@pytest.mark.slow
def test_yolact_base_state_dict_layout(base) -> None:
    model = base[0]
    sd = model.state_dict()
    keys = list(sd)
    assert len(keys) == 660
    assert sum(k.endswith("num_batches_tracked") for k in keys) == 104
    assert [len(_block_prefixes(keys, s)) for s in range(4)] == [3, 4, 23, 3]
    for k in (
        "backbone.conv1.weight",
        "backbone.bn1.running_mean",
        "backbone.layers.0.0.downsample.0.weight",
        "backbone.layers.3.0.downsample.1.weight",
        "backbone.layers.2.22.conv3.weight",
    ):
        assert k in sd, k
    assert not [k for k in keys if re.match(r"backbone\.layer\d", k)]
    assert sd["fpn.lat_layers.0.weight"].shape == (256, 2048, 1, 1)  # C5 first
    assert sd["fpn.lat_layers.1.weight"].shape == (256, 1024, 1, 1)
    assert sd["fpn.lat_layers.2.weight"].shape == (256, 512, 1, 1)
    for i in range(3):
        assert sd[f"fpn.pred_layers.{i}.weight"].shape == (256, 256, 3, 3)
    assert {k for k in keys if k.startswith("fpn.downsample_layers.")} == {
        f"fpn.downsample_layers.{i}.{p}" for i in (0, 1) for p in ("weight", "bias")
    }
    assert {int(k.split(".")[1]) for k in keys if k.startswith("proto_net.")} == {0, 2, 4, 8, 10}
    assert sd["proto_net.10.weight"].shape == (32, 256, 1, 1)
    head = {k for k in keys if k.startswith("prediction_layers.")}
    assert head == {
        f"prediction_layers.0.{m}.{p}"
        for m in ("upfeature.0", "bbox_layer", "conf_layer", "mask_layer")
        for p in ("weight", "bias")
    }
    assert sd["prediction_layers.0.bbox_layer.weight"].shape == (3 * 4, 256, 3, 3)
    assert sd["prediction_layers.0.conf_layer.weight"].shape == (3 * 81, 256, 3, 3)
    assert sd["prediction_layers.0.mask_layer.weight"].shape == (3 * 32, 256, 3, 3)
    assert sd["semantic_seg_conv.weight"].shape == (80, 256, 1, 1)
    assert not _dcn_blocks(keys)
    assert not any(k.startswith("maskiou_net") for k in keys)
    # 50.16 M parameters (the semantic segmentation conv included); 50.26 M numbers
    # in the state dict with the BatchNorm statistics.
    assert sum(p.numel() for p in model.parameters()) == 50_157_071
    assert sum(v.numel() for v in sd.values()) == 50_262_519


def _check_dcn_block(sd: dict[str, torch.Tensor], block: str) -> None:
    channels = sd[f"{block}.conv2.weight"].shape[0]
    assert sd[f"{block}.conv2.weight"].shape == (channels, channels, 3, 3)
    assert sd[f"{block}.conv2.bias"].shape == (channels,)
    assert sd[f"{block}.conv2.conv_offset_mask.weight"].shape == (27, channels, 3, 3)
    assert sd[f"{block}.conv2.conv_offset_mask.bias"].shape == (27,)


@pytest.mark.slow
def test_yolact_plus_base_state_dict_layout(plus) -> None:
    sd = plus[0].state_dict()
    keys = list(sd)
    # The original's ResNet101_DCN_Interval3 (dcn_layers [0, 4, 23, 3], interval 3):
    # every third block of C3..C5, 11 deformable convs in all.
    expected = {"backbone.layers.1.0", "backbone.layers.1.3", "backbone.layers.3.0"}
    expected |= {f"backbone.layers.2.{i}" for i in range(0, 23, 3)}
    assert _dcn_blocks(keys) == expected
    for block in expected:
        _check_dcn_block(sd, block)
    # Plain blocks keep a bias-free conv2.
    assert "backbone.layers.2.1.conv2.bias" not in sd
    assert "backbone.layers.0.0.conv2.bias" not in sd
    maskiou = {k for k in keys if k.startswith("maskiou_net.")}
    assert maskiou == {
        f"maskiou_net.maskiou_net.{i}.{p}" for i in (0, 2, 4, 6, 8, 10) for p in ("weight", "bias")
    }
    assert sd["maskiou_net.maskiou_net.0.weight"].shape == (8, 1, 3, 3)
    assert sd["maskiou_net.maskiou_net.10.weight"].shape == (80, 128, 1, 1)
    assert sd["prediction_layers.0.conf_layer.weight"].shape == (9 * 81, 256, 3, 3)
    assert len(keys) == 660 + 11 * 3 + 12


@pytest.mark.slow
def test_yolact_plus_resnet50_deformable_blocks() -> None:
    keys = list(Yolact(get_config("yolact_plus_resnet50")).state_dict())
    expected = {f"backbone.layers.{s}.{b}" for s, n in ((1, 4), (2, 6), (3, 3)) for b in range(n)}
    assert _dcn_blocks(keys) == expected
    assert [len(_block_prefixes(keys, s)) for s in range(4)] == [3, 4, 6, 3]


def test_modulated_deform_conv_zero_offsets_is_half_a_conv() -> None:
    torch.manual_seed(0)
    for stride in (1, 2):
        dcn = ModulatedDeformConv(4, 5, stride=stride)
        with torch.no_grad():
            dcn.bias.normal_()
        x = torch.randn(2, 4, 9, 7)
        conv = F.conv2d(x, dcn.weight, stride=stride, padding=1)
        expected = 0.5 * conv + dcn.bias.view(1, -1, 1, 1)
        assert torch.allclose(dcn(x), expected, atol=1e-5)


def test_modulated_deform_conv_integer_offset_is_a_shifted_conv() -> None:
    torch.manual_seed(1)
    dcn = ModulatedDeformConv(3, 2)
    with torch.no_grad():
        dcn.bias.normal_()
        # Channels are (dy, dx) pairs per tap, then 9 modulation logits: dx = +1 everywhere,
        # modulation sigmoid(20) ~ 1.
        dcn.conv_offset_mask.bias.zero_()
        dcn.conv_offset_mask.bias[1:18:2] = 1.0
        dcn.conv_offset_mask.bias[18:] = 20.0
    x = torch.randn(1, 3, 6, 8)
    # Every tap reads one column to the right: a plain conv over x padded 1 row
    # top and bottom, none on the left and 2 columns on the right.
    shifted = F.conv2d(F.pad(x, (0, 2, 1, 1)), dcn.weight) * torch.sigmoid(torch.tensor(20.0))
    expected = shifted + dcn.bias.view(1, -1, 1, 1)
    assert torch.allclose(dcn(x), expected, atol=1e-5)
    # dy = -1 instead: one row up.
    with torch.no_grad():
        dcn.conv_offset_mask.bias[:18] = 0.0
        dcn.conv_offset_mask.bias[0:18:2] = -1.0
    shifted = F.conv2d(F.pad(x, (1, 1, 2, 0)), dcn.weight) * torch.sigmoid(torch.tensor(20.0))
    assert torch.allclose(dcn(x), shifted + dcn.bias.view(1, -1, 1, 1), atol=1e-5)


def test_modulated_deform_conv_gradients() -> None:
    dcn = ModulatedDeformConv(3, 4)
    x = torch.randn(1, 3, 5, 5, requires_grad=True)
    dcn(x).square().sum().backward()
    for name, p in dcn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x.grad is not None


def tiny_config(**changes):
    return get_config("yolact_tiny").replace(**changes)


def test_tiny_shapes_and_level_sizes() -> None:
    model = build_model(tiny_config())
    levels: list[torch.Size] = []
    model.fpn.register_forward_hook(lambda m, i, o: levels.extend(p.shape for p in o))
    with torch.no_grad():
        out = model(torch.randn(2, 3, 192, 192))
    assert [tuple(s[-2:]) for s in levels] == [(24, 24), (12, 12), (6, 6), (3, 3), (2, 2)]
    num_priors = 3 * (24 * 24 + 12 * 12 + 6 * 6 + 3 * 3 + 2 * 2)
    assert out["loc"].shape == (2, num_priors, 4)
    assert out["conf"].shape == (2, num_priors, 81)
    assert out["coef"].shape == (2, num_priors, 16)
    assert out["proto"].shape == (2, 48, 48, 16)
    assert out["priors"].shape == (num_priors, 4)


def test_train_eval_switch() -> None:
    model = build_model(tiny_config())
    assert not model.training
    x = torch.randn(1, 3, 128, 128)  # any input size works; smaller is faster
    with torch.no_grad():
        assert "segm" not in model(x)
        model.train()
        out = model(x)
    assert out["segm"].shape == (1, 80, 16, 16)  # at P3 resolution
    model.eval()
    with torch.no_grad():
        assert "segm" not in model(x)
    no_segm = build_model(tiny_config(use_semantic_seg=False)).train()
    assert not hasattr(no_segm, "semantic_seg_conv")
    with torch.no_grad():
        assert "segm" not in no_segm(x)


def _used_parameters(model: Yolact, x: torch.Tensor) -> tuple[set[str], set[str]]:
    for p in model.parameters():
        p.grad = None
    out = model(x)
    loss = sum(v.square().mean() for k, v in out.items() if k not in ("priors", "prior_levels"))
    loss.backward()
    with_grad = {
        n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0
    }
    return with_grad, {n for n, _ in model.named_parameters()} - with_grad


def test_every_parameter_gets_a_gradient() -> None:
    torch.manual_seed(0)
    model = Yolact(tiny_config(use_maskiou=True))
    x = torch.randn(2, 3, 128, 128)
    # Training forward: everything but the mask re-scoring net (fed from post-processing).
    _, unused = _used_parameters(model.train(), x)
    assert unused == {n for n, _ in model.named_parameters() if n.startswith("maskiou_net.")}
    # Eval-style forward: the semantic segmentation conv is not run either.
    _, unused = _used_parameters(model.eval(), x)
    assert unused == {
        n
        for n, _ in model.named_parameters()
        if n.startswith(("maskiou_net.", "semantic_seg_conv."))
    }


def test_two_configs_in_one_process_are_independent() -> None:
    torch.manual_seed(0)
    a = build_model(tiny_config())
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        first = a(x)
    b_cfg = tiny_config(
        name="tiny_b", class_names=("cat", "dog"), max_size=128, square_anchors=True
    )
    b = build_model(b_cfg)
    with torch.no_grad():
        out_b = b(torch.randn(1, 3, 96, 96))
        again = a(x)
    assert out_b["conf"].shape[-1] == 3 and first["conf"].shape[-1] == 81
    assert torch.equal(out_b["priors"][:, 2], out_b["priors"][:, 3])  # square anchors
    assert not torch.equal(first["priors"][:, 2], first["priors"][:, 3])
    for k in first:
        assert torch.equal(first[k], again[k]), k
    assert a.cfg == get_config("yolact_tiny") and b.cfg.max_size == 128
    # Config objects are frozen values.
    with pytest.raises(AttributeError):
        a.cfg.max_size = 1  # type: ignore[misc]


def test_invalid_configs_are_rejected() -> None:
    with pytest.raises(ValueError, match="anchor scale groups"):
        Yolact(tiny_config(scales=((24,), (48,))))
    with pytest.raises(ValueError, match="Bottleneck"):
        Yolact(tiny_config(backbone=BackboneConfig(depth=18, dcn_layers=(0, 1, 0, 0))))


@pytest.mark.parametrize("depth, channels", [(18, [32, 64, 128, 256]), (50, [128, 256, 512, 1024])])
def test_narrow_backbone_keeps_the_layout(depth: int, channels: list[int]) -> None:
    """width=32 halves every stage and keeps torchvision's module names and strides."""
    from yolact.core.backbone import ResNetBackbone

    narrow = ResNetBackbone(BackboneConfig(depth=depth, width=32))
    full = ResNetBackbone(BackboneConfig(depth=depth))
    assert narrow.channels == channels and full.channels == [2 * c for c in channels]
    assert list(narrow.state_dict()) == list(full.state_dict())
    for key, value in narrow.state_dict().items():
        if value.ndim == 4:  # conv weights: out and in channels halved, except the RGB input
            out_full, in_full = full.state_dict()[key].shape[:2]
            assert value.shape[0] * 2 == out_full
            assert value.shape[1] * (2 if in_full != 3 else 1) == in_full
    outs = narrow(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [
        (1, c, 64 // s, 96 // s) for c, s in zip(channels, (4, 8, 16, 32))
    ]
    with pytest.raises(ValueError, match="width must be positive"):
        ResNetBackbone(BackboneConfig(depth=18, width=0))


def test_fpn_string_options_are_checked_when_built() -> None:
    assert UPSAMPLE_MODES == get_args(UpsampleMode) == ("bilinear", "nearest")
    assert EXTRA_LEVELS == get_args(ExtraLevels) == ("conv", "maxpool")
    message = "FPN upsample must be one of ('bilinear', 'nearest'): 'bicubic'"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        FPN([8, 16], 8, upsample="bicubic")  # type: ignore[arg-type]
    message = "FPN extra_levels must be one of ('conv', 'maxpool'): 'pool'"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        FPN([8, 16], 8, extra_levels="pool")  # type: ignore[arg-type]


def test_extra_head_layers_have_the_original_keys_and_train() -> None:
    base = build_model(tiny_config(extra_layers=(0, 0, 0)))
    model = build_model(tiny_config(extra_layers=(1, 2, 0)))
    head = "prediction_layers.0."
    added = sorted(set(model.state_dict()) - set(base.state_dict()))
    assert added == sorted(
        f"{head}{name}.{i}.{p}"
        for name, idx in (("bbox_extra", (0,)), ("conf_extra", (0, 2)))
        for i in idx
        for p in ("weight", "bias")
    )
    c = tiny_config().head_channels
    extra = sum(p.numel() for n, p in model.named_parameters() if "_extra" in n)
    assert extra == 3 * (c * c * 9 + c)
    x = torch.randn(1, 3, 160, 160)
    # Every extra layer is in the graph of its output.
    model.train()
    out = model(x)
    (out["loc"].sum() + out["conf"].sum()).backward()
    assert all(p.grad is not None and p.grad.any() for n, p in model.named_parameters()
               if "_extra" in n)  # fmt: skip
