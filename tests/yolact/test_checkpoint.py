"""Loading weights: original key layout and file names, old files, bad files, class changes."""

from __future__ import annotations

import logging
import pathlib
import pickle
import re
import zipfile

import numpy as np
import pytest
import torch

from yolact.core.config import ConfigError
from yolact.core.weights import Checkpoint, CheckpointError
from yolact.models.yolact.config import YolactConfig
from yolact.models.yolact.model import Yolact, build_model
from yolact.models.yolact.weights import adapt_original_keys, load_weights, save_weights
from yolact.registry import config_name_from_checkpoint, get_config, read_checkpoint, resolve_config


@pytest.fixture(scope="module")
def tiny() -> Yolact:
    torch.manual_seed(0)
    model = build_model(get_config("yolact_tiny"))
    # Non-trivial BatchNorm statistics, so that they have to be loaded too.
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.1)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
    return model


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return torch.randn(1, 3, 192, 192, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def reference(tiny: Yolact, image: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return tiny(image)


@pytest.fixture(scope="module")
def saved(tiny: Yolact, tmp_path_factory) -> pathlib.Path:
    """The tiny model saved as the original does: a plain state dict, <config>_<ep>_<iter>.pth."""
    path = tmp_path_factory.mktemp("weights") / "yolact_tiny_3_100.pth"
    torch.save(tiny.state_dict(), path)
    return path


def assert_same_outputs(
    model: Yolact, image: torch.Tensor, reference: dict[str, torch.Tensor]
) -> None:
    with torch.no_grad():
        out = model(image)
    for k, v in reference.items():
        assert torch.equal(out[k], v), k


def fresh_tiny(seed: int = 123, **changes) -> Yolact:
    torch.manual_seed(seed)
    return build_model(get_config("yolact_tiny").replace(**changes))


ORIGINAL_KEY = re.compile(
    r"backbone\.(conv1|bn1|layers\.[0-3]\.\d+)\.|fpn\.(lat|pred|downsample)_layers\.\d+\."
    r"|proto_net\.\d+\.|prediction_layers\.0\.|semantic_seg_conv\.|maskiou_net\.maskiou_net\.\d+\."
)


def test_original_layout_file_loads_and_matches(saved, image, reference) -> None:
    state = torch.load(saved, weights_only=True)
    assert all(ORIGINAL_KEY.match(k) for k in state), [
        k for k in state if not ORIGINAL_KEY.match(k)
    ]
    cfg, ckpt = resolve_config(str(saved), None)
    assert cfg.name == "yolact_tiny" and ckpt is not None and ckpt.config is None
    model = build_model(cfg)
    with torch.no_grad():
        assert not torch.equal(model(image)["conf"], reference["conf"])
    assert load_weights(model, ckpt) == []
    assert_same_outputs(model, image, reference)


@pytest.mark.parametrize(
    "file_name, expected",
    [
        ("yolact_base_54_800000.pth", "yolact_base"),
        ("weights/yolact_plus_resnet50_54_800000.pth", "yolact_plus_resnet50"),
        ("yolact_plus_base_54_800000.pth", "yolact_plus_base"),
        ("yolact_im700_54_800000.pth", "yolact_im700"),
        ("yolact_resnet50_54_800000.pth", "yolact_resnet50"),
        ("yolact_base_2_3000_interrupt.pth", "yolact_base"),
        ("yolact_base.pth", "yolact_base"),
        ("my_model_1_100.pth", None),
        ("resnet101_reducedfc.pth", None),
    ],
)
def test_config_name_from_file_name(file_name: str, expected: str | None) -> None:
    assert config_name_from_checkpoint(file_name) == expected


def test_unknown_file_name_needs_a_config(saved, tmp_path) -> None:
    path = tmp_path / "my_model_1_100.pth"
    path.write_bytes(saved.read_bytes())
    with pytest.raises(ConfigError, match="cannot infer the config"):
        resolve_config(str(path), None)
    cfg, _ = resolve_config(str(path), "yolact_tiny")
    assert cfg.name == "yolact_tiny"
    # An explicit name wins over the file name.
    assert resolve_config(str(saved), "yolact_tiny_config")[0].name == "yolact_tiny"


def test_old_keys_are_dropped(tiny, saved, image, reference, tmp_path) -> None:
    state = torch.load(saved, weights_only=True)
    # Files of old versions carry the backbone twice (backbone.layerN) and a third downsample conv.
    for k, v in list(state.items()):
        if k.startswith("backbone.layers."):
            state["backbone.layer" + k[len("backbone.layers.") :]] = v.clone()
    state["backbone.layer1.0.conv1.weight"] = torch.zeros(3)
    state["fpn.downsample_layers.2.weight"] = torch.zeros(64, 64, 3, 3)
    state["fpn.downsample_layers.2.bias"] = torch.zeros(64)
    # Very old files have no BatchNorm batch counters.
    for k in [k for k in state if k.endswith("num_batches_tracked")]:
        del state[k]
    path = tmp_path / "yolact_tiny_1_10.pth"
    torch.save(state, path)
    model = fresh_tiny()
    load_weights(model, read_checkpoint(str(path)))
    assert_same_outputs(model, image, reference)


def test_module_prefix_is_stripped(tiny, image, reference) -> None:
    state = {"module." + k: v for k, v in tiny.state_dict().items()}
    model = fresh_tiny()
    load_weights(model, state)
    assert_same_outputs(model, image, reference)
    adapted = adapt_original_keys(state, model)
    assert set(adapted) == set(tiny.state_dict())


def test_missing_semantic_seg_conv_is_tolerated(tiny, image, reference) -> None:
    state = {k: v for k, v in tiny.state_dict().items() if not k.startswith("semantic_seg_conv")}
    model = fresh_tiny()
    assert load_weights(model, state) == ["semantic_seg_conv.weight", "semantic_seg_conv.bias"]
    assert_same_outputs(model, image, reference)


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg and "\x1b" not in msg and len(msg) < 400
    return msg


def test_truncated_file(saved, tmp_path) -> None:
    path = tmp_path / "yolact_tiny_3_100.pth"
    data = saved.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(str(path))
    assert _one_line(err) == (
        f"cannot read checkpoint {path}: truncated or corrupt (an incomplete zip archive)"
    )


def _npy(path: pathlib.Path) -> None:
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))


def _zip_without_torch(path: pathlib.Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("weights/readme.txt", "not a model")


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch notes the pickle protocol
@pytest.mark.parametrize(
    "write, what",
    [
        (lambda p: p.write_bytes(b""), "it is empty"),
        (lambda p: p.write_text("hello\nthis is not a checkpoint\n"),
         "it is a text file starting 'hello'"),
        (lambda p: p.write_text("<!DOCTYPE html><html><title>404 Not Found</title></html>"),
         "it is a text file starting '<!DOCTYPE html><html><title>404 Not F...'"),
        (_zip_without_torch, "it is a zip archive not written by torch.save"),
        (lambda p: p.write_bytes(pickle.dumps([1, 2, 3])),
         "it is a pickled list, not one written by torch.save"),
        (lambda p: p.write_bytes(pickle.dumps({"conv.weight": [0.5]}, protocol=2)),
         "it is a pickled dict, not one written by torch.save"),
        (_npy, "it is a NumPy .npy array"),
        (lambda p: p.write_bytes(bytes(range(256))), "it is binary data of an unknown format"),
    ],
)  # fmt: skip
def test_files_that_are_not_checkpoints_say_what_they_are(tmp_path, write, what: str) -> None:
    path = tmp_path / "x.pth"
    write(path)
    with pytest.raises(CheckpointError) as err:
        resolve_config(str(path), "yolact_tiny")
    assert _one_line(err) == f"{path} is not a PyTorch checkpoint ({what})"


@pytest.mark.parametrize(
    "content, what",
    [(b"\x80\x02}q\x00", "an incomplete pickle"),  # a dict cut short after two opcodes
     (b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9", "an incomplete legacy "
      "PyTorch file")],  # torch's legacy magic number, then a cut-off protocol version
)  # fmt: skip
def test_cut_pickles_are_truncated(tmp_path, content: bytes, what: str) -> None:
    path = tmp_path / "yolact_base_1_1.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        resolve_config(str(path), None)
    assert _one_line(err) == f"cannot read checkpoint {path}: truncated or corrupt ({what})"


def test_eval_py_names_a_text_file(tmp_path, capsys) -> None:
    from yolact.cli.eval_cli import main

    path = tmp_path / "model.pth"
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\n")
    code = main(["--no_bar", "--cuda=False", f"--trained_model={path}", "--config=yolact_tiny",
                 f"--image={tmp_path / 'a.png'}"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"error: {path} is not a PyTorch checkpoint (it is a Git LFS pointer; 'git lfs pull' "
        "fetches the file)"
    ]


def test_missing_file(tmp_path) -> None:
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(str(tmp_path / "nope.pth"))
    assert "not found" in _one_line(err)
    with pytest.raises(CheckpointError):
        read_checkpoint(str(tmp_path))  # a directory


class _Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch notes the pickle protocol
@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_arbitrary_objects_are_refused_without_running_code(tmp_path, writer: str) -> None:
    marker = tmp_path / "code_ran"
    path = tmp_path / "yolact_base_1_1.pth"
    payload = {"backbone.conv1.weight": _Payload(marker)}
    if writer == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(str(path))
    msg = _one_line(err)
    head = f"refusing to load {path}: it holds Python objects other than tensors ("
    tail = "), and loading those could run arbitrary code"
    assert msg.startswith(head) and msg.endswith(tail), msg
    objects = msg[len(head) : -len(tail)].split(", ")
    assert any(o.startswith("pathlib.") for o in objects), msg  # the objects it would import
    assert not marker.exists()


def test_non_tensor_contents_are_refused(tmp_path) -> None:
    path = tmp_path / "x.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(str(path))
    assert (
        _one_line(err)
        == f"checkpoint {path} does not hold a state dict of tensors (it holds a list)"
    )
    torch.save({"a": torch.zeros(1), "b": 3}, path)
    with pytest.raises(CheckpointError, match="state dict of tensors"):
        read_checkpoint(str(path))


def test_own_checkpoint_with_config(tiny, image, reference, tmp_path) -> None:
    cfg = get_config("yolact_tiny")
    path = tmp_path / "anything.pth"
    torch.save({"model": tiny.state_dict(), "config": cfg.to_dict(), "iteration": 7}, path)
    got_cfg, ckpt = resolve_config(str(path), None)
    assert got_cfg == cfg and ckpt.meta == {"iteration": 7}
    assert YolactConfig.from_dict(cfg.to_dict()) == cfg
    model = build_model(got_cfg)
    load_weights(model, ckpt)
    assert_same_outputs(model, image, reference)


def test_save_weights_round_trip(tiny, image, reference, tmp_path) -> None:
    path = tmp_path / "yolact_tiny_0_0.pth"
    save_weights(tiny, str(path))
    assert not (tmp_path / "yolact_tiny_0_0.pth.tmp").exists()
    model = fresh_tiny()
    load_weights(model, read_checkpoint(str(path)))
    assert_same_outputs(model, image, reference)


def test_other_class_count(tiny, caplog) -> None:
    state = tiny.state_dict()
    model = fresh_tiny(class_names=("a", "b", "c"))
    with pytest.raises(CheckpointError) as err:
        load_weights(model, state, source="coco.pth")
    msg = _one_line(err)
    assert "prediction_layers.0.conf_layer" in msg and "81 classes" in msg and "4" in msg
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with caplog.at_level(logging.WARNING, logger="yolact.core.weights"):
        skipped = load_weights(model, state, allow_class_change=True, source="coco.pth")
    assert set(skipped) == {
        "prediction_layers.0.conf_layer.weight",
        "prediction_layers.0.conf_layer.bias",
        "semantic_seg_conv.weight",
        "semantic_seg_conv.bias",
    }
    assert "conf_layer" in caplog.text and "coco.pth" in caplog.text
    after = model.state_dict()
    for k in after:
        if k in skipped:
            assert torch.equal(after[k], before[k]), k  # left as initialised
        else:
            assert torch.equal(after[k], state[k]), k
    # Other mismatches are not excused by allow_class_change.
    bad = dict(state)
    bad["fpn.lat_layers.0.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="fpn.lat_layers.0.weight"):
        load_weights(fresh_tiny(class_names=("a",)), bad, allow_class_change=True)


def test_other_architecture_names_first_mismatches(tmp_path) -> None:
    # A yolact_base-shaped file for yolact_resnet50. Expanded zero tensors keep the file tiny.
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in Yolact(get_config("yolact_base")).state_dict().items()}
    path = tmp_path / "yolact_base_54_800000.pth"
    torch.save({k: torch.zeros(()).expand(s) for k, s in shapes.items()}, path)
    with torch.device("meta"):
        model = Yolact(get_config("yolact_resnet50"))
    with pytest.raises(CheckpointError) as err:
        load_weights(model, read_checkpoint(str(path)), source=str(path))
    msg = _one_line(err)
    assert "yolact_resnet50" in msg
    assert "unexpected keys: backbone.layers.2.6." in msg and "more)" in msg


def test_mask_rcnn_state_is_recognised() -> None:
    with pytest.raises(CheckpointError, match="Mask R-CNN"):
        load_weights(fresh_tiny(), {"rpn.head.conv.weight": torch.zeros(1)})


def test_unknown_config_name_lists_close_names() -> None:
    with pytest.raises(ConfigError) as err:
        get_config("yolact_bse")
    assert "Did you mean yolact_base" in str(err.value)
    assert "yolact_plus_resnet50" in str(err.value)  # the known names follow
    assert get_config("yolact_base_config").name == "yolact_base"


def test_checkpoint_dataclass_default_meta() -> None:
    assert Checkpoint({}).meta == {} and Checkpoint({}).config is None


def test_export_slims_and_halves_a_training_checkpoint(tiny, image, reference, tmp_path) -> None:
    from yolact.slim import main as export_main
    from yolact.slim import slim_checkpoint

    src = tmp_path / "yolact_tiny_0_5.pth"
    big = {name: torch.zeros_like(p) for name, p in tiny.named_parameters()}
    torch.save({"model": tiny.state_dict(), "config": tiny.cfg.to_dict(), "iteration": 5,
                "optimizer": {"state": big}}, src)  # fmt: skip
    full = slim_checkpoint(str(src), str(tmp_path / "full.pth"))
    assert set(full) == {"model", "config", "class_names", "iteration"}
    assert full["iteration"] == 5 and full["class_names"] == list(tiny.cfg.class_names)
    assert export_main([str(src), str(tmp_path / "half.pth"), "--half"]) == 0
    half = read_checkpoint(str(tmp_path / "half.pth"))
    dtypes = {v.dtype for v in half.state_dict.values()}
    assert dtypes == {torch.float16, torch.int64}  # int64: BatchNorm's batch counters
    size = {p: (tmp_path / p).stat().st_size for p in ("full.pth", "half.pth")}
    assert size["half.pth"] < 0.55 * size["full.pth"] < 0.55 * 0.55 * src.stat().st_size
    # A float16 file loads into a float32 model and gives nearly the same outputs.
    model = fresh_tiny()
    load_weights(model, half)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with torch.no_grad():
        out = model.eval()(image)
    torch.testing.assert_close(out["proto"], reference["proto"], atol=3e-2, rtol=2e-2)
    torch.testing.assert_close(out["loc"], reference["loc"], atol=3e-2, rtol=2e-2)


def test_export_bad_input(tmp_path, saved, capsys) -> None:
    from yolact.slim import main as export_main

    assert export_main([str(tmp_path / "none.pth"), str(tmp_path / "out.pth")]) == 1
    assert export_main([str(saved), str(tmp_path / "out.pth")]) == 1  # original file: no config
    assert export_main([str(saved), str(saved)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err), err
    assert "not found" in err[0] and "no stored config" in err[1] and "overwrite" in err[2]
    assert not (tmp_path / "out.pth").exists()


# ---- YOLACT++ from an ImageNet ResNet (train.py --init_weights) ---------------------------


def _dcn_convs(model: Yolact) -> dict[str, torch.nn.Module]:
    from yolact.core.backbone import ModulatedDeformConv

    return {n: m for n, m in model.backbone.named_modules() if isinstance(m, ModulatedDeformConv)}


@pytest.fixture(scope="module")
def resnet50_file(tmp_path_factory) -> tuple[pathlib.Path, dict[str, torch.Tensor]]:
    """torchvision's resnet50 (random weights, torchvision's key layout) saved as a state dict."""
    import torchvision

    torch.manual_seed(3)
    state = torchvision.models.resnet50(weights=None).state_dict()
    path = tmp_path_factory.mktemp("tv") / "resnet50-19c8e357.pth"
    torch.save(state, path)
    return path, state


def test_yolact_plus_from_torchvision_resnet50(resnet50_file, caplog) -> None:
    from yolact.engine.init_weights import initialise
    from yolact.models.yolact.family import YOLACT

    path, state = resnet50_file
    torch.manual_seed(0)
    model = build_model(get_config("yolact_plus_resnet50"))
    dcn = _dcn_convs(model)
    assert len(dcn) == 13  # every block of C3..C5
    with caplog.at_level(logging.INFO, logger="test"):
        assert (
            initialise(
                model, read_checkpoint(str(path)), str(path), logging.getLogger("test"), YOLACT
            )
            == "backbone"
        )
    assert "13 deformable blocks" in caplog.text
    own = model.backbone.state_dict()
    for key, value in state.items():
        if key.startswith("fc."):
            continue
        m = re.match(r"layer(\d)\.(.+)", key)
        ours = f"layers.{int(m[1]) - 1}.{m[2]}" if m else key
        assert torch.equal(own[ours], value), key  # the deformable convs' 3x3 weights too
    for name, conv in dcn.items():  # new layers: zero offsets and modulation logits, zero bias
        assert not conv.conv_offset_mask.weight.any() and not conv.conv_offset_mask.bias.any()
        assert not conv.bias.any(), name


@pytest.mark.parametrize(
    "change, key",
    [("drop", "layer2.0.conv1.weight"), ("drop", "layer3.1.bn2.running_var"),
     ("shape", "layer4.0.conv2.weight"), ("shape", "bn1.weight")],
)  # fmt: skip
def test_resnet_file_with_other_missing_or_misshapen_keys(resnet50_file, tmp_path, change, key):
    from yolact.engine.init_weights import initialise
    from yolact.models.yolact.family import YOLACT

    _, state = resnet50_file
    bad = dict(state)
    if change == "drop":
        del bad[key]
    else:
        bad[key] = torch.zeros(*bad[key].shape[:-1], bad[key].shape[-1] + 1)
    path = tmp_path / "resnet50.pth"
    torch.save(bad, path)
    with torch.device("meta"):
        model = Yolact(get_config("yolact_plus_resnet50"))
    with pytest.raises(CheckpointError) as err:
        initialise(model, read_checkpoint(str(path)), str(path), logging.getLogger("test"), YOLACT)
    m = re.match(r"layer(\d)\.(.+)", key)
    ours = f"layers.{int(m[1]) - 1}.{m[2]}" if m else key
    assert _one_line(err) == (
        f"{path} is neither a YOLACT checkpoint nor a ResNet-50 backbone file for "
        f"yolact_plus_resnet50: first mismatching keys {ours}"
    )


def test_yolact_plus_base_from_original_reducedfc_layout(tmp_path) -> None:
    """The original's resnet101_reducedfc.pth: torchvision keys, a smaller fc, no BatchNorm
    batch counters (older PyTorch). Expanded constants keep the file small."""
    import torchvision

    from yolact.engine.init_weights import initialise
    from yolact.models.yolact.family import YOLACT

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in torchvision.models.resnet101().state_dict().items()}
    state = {
        k: torch.full((), 0.25).expand(s)
        for k, s in shapes.items()
        if not k.endswith("num_batches_tracked") and not k.startswith("fc.")
    }
    state["fc.weight"], state["fc.bias"] = torch.zeros(2, 2048), torch.zeros(2)  # reduced fc
    path = tmp_path / "resnet101_reducedfc.pth"
    torch.save(state, path)
    torch.manual_seed(0)
    model = build_model(get_config("yolact_plus_base"))
    assert (
        initialise(model, read_checkpoint(str(path)), str(path), logging.getLogger("test"), YOLACT)
        == "backbone"
    )
    dcn = _dcn_convs(model)
    assert sorted(dcn) == [f"layers.1.{i}.conv2" for i in (0, 3)] + [
        f"layers.2.{i}.conv2" for i in (0, 12, 15, 18, 21, 3, 6, 9)
    ] + ["layers.3.0.conv2"]  # fmt: skip
    for name, value in model.backbone.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        new = any(name.startswith(f"{d}.conv_offset_mask") or name == f"{d}.bias" for d in dcn)
        assert bool((value == 0).all()) if new else bool((value == 0.25).all()), name
