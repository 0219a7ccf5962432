"""The Mask R-CNN reference: shapes, training, hooks, RoIAlignV2, torchvision equality,
checkpoints of both kinds and eval.py end to end."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch
import torchvision
from pycocotools import mask as mask_utils
from torchvision.ops import roi_align

from yolact.cli.eval_cli import main
from yolact.core.data_names import COCO_CATEGORY_IDS
from yolact.core.weights import CheckpointError
from yolact.models.mask_rcnn.config import RCNN_CONFIGS, MaskRCNNConfig
from yolact.models.mask_rcnn.heads import batched_nms_fn
from yolact.models.mask_rcnn.model import MaskRCNN
from yolact.models.mask_rcnn.poolers import MultiScaleRoIAlignV2
from yolact.models.mask_rcnn.predictor import RCNNPredictor
from yolact.models.mask_rcnn.weights import (
    build_rcnn,
    convert_torchvision_state,
    load_rcnn_weights,
    torchvision_config_name,
)
from yolact.models.yolact.model import build_model
from yolact.models.yolact.weights import load_weights
from yolact.registry import config_from_dict, get_config, read_checkpoint, resolve_config

TV_SIZE = 256  # torchvision's transform sizes on both sides, scaled down for speed


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**changes: object) -> MaskRCNN:
    torch.manual_seed(0)
    return MaskRCNN(get_config("mask_rcnn_tiny").replace(**changes))


def scene(h: int = 128, w: int = 160, seed: int = 0) -> np.ndarray:
    """A BGR uint8 image with a filled rectangle and circle."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 70, np.uint8)
    cv2.rectangle(img, (10, 12), (70, 60), tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
    cv2.circle(img, (int(w * 0.7), int(h * 0.6)), h // 5, (200, 40, 90), -1)
    return img


def targets_for(h: int, w: int) -> dict[str, torch.Tensor]:
    """Two boxes with their masks (1-based labels, as torchvision's)."""
    boxes = torch.tensor([[10.0, 12.0, 70.0, 60.0], [80.0, 50.0, 140.0, 110.0]])
    masks = torch.zeros(2, h, w, dtype=torch.uint8)
    for m, (x1, y1, x2, y2) in zip(masks, boxes.long().tolist()):
        m[y1:y2, x1:x2] = 1
    return {"boxes": boxes, "labels": torch.tensor([1, 5]), "masks": masks}


def rgb(image: np.ndarray) -> torch.Tensor:
    """BGR uint8 [H, W, 3] -> RGB float [3, H, W] in 0..1, as torchvision models take."""
    return torch.from_numpy(image[..., ::-1].copy()).permute(2, 0, 1).float() / 255.0


# ----------------------------------------------------------------------------- configs


def test_configs_registered_and_round_trip() -> None:
    assert set(RCNN_CONFIGS) == {"mask_rcnn_r101_fpn", "mask_rcnn_r50_fpn", "mask_rcnn_tiny"}
    cfg = get_config("mask_rcnn_r50_fpn")
    assert isinstance(cfg, MaskRCNNConfig) and cfg.backbone.depth == 50
    assert cfg.num_classes == 81 and cfg.roi_align_aligned and cfg.fpn_upsample == "nearest"
    assert cfg.anchor_sizes == (32, 64, 128, 256, 512) and cfg.anchor_ratios == (0.5, 1.0, 2.0)
    assert (cfg.rpn_pre_nms_top_n_train, cfg.rpn_post_nms_top_n_train) == (2000, 1000)
    train = cfg.train
    assert (train.lr, train.lr_steps, train.max_iter) == (0.02, (210000, 250000), 270000)
    changed = cfg.replace(soft_nms="linear", output_ids=COCO_CATEGORY_IDS)
    d = json.loads(json.dumps(changed.to_dict()))
    assert d["kind"] == "mask_rcnn"
    back = config_from_dict(d)
    assert back == changed
    assert back.num_classes == 91
    # A dict without "kind" (older files) and one marked "yolact" are YOLACT configs.
    yolact = get_config("yolact_tiny")
    assert config_from_dict(yolact.to_dict()) == yolact
    assert config_from_dict({**yolact.to_dict(), "kind": "yolact"}) == yolact
    with pytest.raises(ValueError, match="soft_nms"):
        cfg.replace(soft_nms="hard")


# ----------------------------------------------------------------------------- model


def test_tiny_eval_output_shapes() -> None:
    model = tiny(box_score_thresh=0.0).eval()
    with torch.no_grad():
        out = model([torch.rand(3, 128, 160)])
    assert len(out) == 1 and set(out[0]) == {"boxes", "labels", "scores", "masks"}
    det = out[0]
    N = det["boxes"].shape[0]
    assert 0 < N <= 100
    assert det["boxes"].shape == (N, 4) and det["masks"].shape == (N, 1, 128, 160)
    labels = det["labels"]
    assert labels.dtype == torch.int64 and 1 <= labels.min() <= labels.max() <= 80
    assert det["boxes"][:, [0, 2]].max() <= 160 and det["boxes"][:, [1, 3]].max() <= 128
    assert torch.all(det["scores"][:-1] >= det["scores"][1:])
    assert det["masks"].min() >= 0.0 and det["masks"].max() <= 1.0


def test_tiny_training_losses_and_gradients() -> None:
    model = tiny().train()
    images = [torch.rand(3, 128, 160), torch.rand(3, 120, 150)]
    targets = [targets_for(128, 160), targets_for(120, 150)]
    torch.manual_seed(1)
    losses = model(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness",
                           "loss_rpn_box_reg"}  # fmt: skip
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    assert math.isclose(losses["loss_classifier"].item(), math.log(81), rel_tol=0.05)
    sum(losses.values()).backward()
    without_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert without_grad == []
    # Dynamic R-CNN statistics: per image, the IoU of every proposal (GT appended).
    stats = model.roi_heads.last_stats
    ious, errors = stats["ious"], stats["errors"]
    assert len(ious) == 2 and ious[0].max().item() == pytest.approx(1.0)
    assert errors.dim() == 1 and errors.numel() > 0 and torch.all(errors >= 0)


def test_empty_targets_train() -> None:
    model = tiny().train()
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
             "masks": torch.zeros(0, 96, 96, dtype=torch.uint8)}  # fmt: skip
    losses = model([torch.rand(3, 96, 96)], [empty])
    assert losses["loss_mask"].item() == 0.0 and losses["loss_box_reg"].item() == 0.0
    assert all(torch.isfinite(v) for v in losses.values())
    assert model.roi_heads.last_stats["ious"][0].numel() == 0
    with pytest.raises(ValueError, match="x2 > x1"):
        bad = dict(empty, boxes=torch.tensor([[5.0, 5.0, 5.0, 9.0]]), labels=torch.tensor([1]))
        model([torch.rand(3, 96, 96)], [bad])


def test_full_size_state_dict_layout() -> None:
    with torch.device("meta"):
        r50 = MaskRCNN(get_config("mask_rcnn_r50_fpn"))
        r101 = MaskRCNN(get_config("mask_rcnn_r101_fpn"))
        tv = torchvision.models.detection.maskrcnn_resnet50_fpn(
            weights=None, weights_backbone=None, num_classes=81
        )
    count = sum(p.numel() for p in r50.parameters())
    assert count == sum(p.numel() for p in tv.parameters()) and 44.3e6 < count < 44.5e6
    ours = {k: v.shape for k, v in r50.state_dict().items()}
    theirs = {k: v.shape for k, v in convert_torchvision_state(tv.state_dict()).items()}
    assert ours == theirs
    s = r101.state_dict()
    assert s["fpn.lat_layers.0.weight"].shape == (256, 2048, 1, 1)  # C5 first, as YOLACT's
    assert s["fpn.lat_layers.3.weight"].shape == (256, 256, 1, 1)
    assert "backbone.layers.2.22.conv3.weight" in s and not any("downsample_layers" in k for k in s)
    assert s["roi_heads.box_head.fc6.weight"].shape == (1024, 256 * 7 * 7)
    assert s["roi_heads.mask_predictor.mask_fcn_logits.weight"].shape == (81, 256, 1, 1)
    assert s["rpn.head.cls_logits.weight"].shape == (3, 256, 1, 1)
    assert 62e6 < sum(p.numel() for p in r101.parameters()) < 64e6
    # detectron2's FREEZE_AT=2 and frozen BN: the stem and res2 get no gradient.
    assert not r50.backbone.conv1.weight.requires_grad
    assert not r50.backbone.layers[0][0].conv1.weight.requires_grad
    assert r50.backbone.layers[1][0].conv1.weight.requires_grad
    assert not r50.backbone.layers[3][0].bn1.weight.requires_grad
    r50.train()
    assert not r50.backbone.layers[3][0].bn1.training and r50.rpn.training


# ----------------------------------------------------------------------------- hooks


def test_dynamic_rcnn_and_mask_loss_hooks() -> None:
    model = tiny().train()
    heads = model.roi_heads
    heads.fg_iou_thresh, heads.bg_iou_thresh = 0.6, 0.6
    assert heads.proposal_matcher.high_threshold == 0.6 == heads.proposal_matcher.low_threshold
    images, targets = [torch.rand(3, 128, 160)], [targets_for(128, 160)]
    seen = []

    def extra(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        seen.append((logits.shape, float(target.min()), float(target.max())))
        return torch.tensor(0.25)

    results = {}
    for beta, hook in ((0.0, None), (1.0, None), (1.0, extra)):
        heads.box_loss_beta, heads.mask_loss_extra = beta, hook
        torch.manual_seed(3)
        results[(beta, hook is not None)] = {k: v.item() for k, v in model(images, targets).items()}
    l1, smooth, hooked = results[(0.0, False)], results[(1.0, False)], results[(1.0, True)]
    assert 0 < smooth["loss_box_reg"] < l1["loss_box_reg"]  # |d| >= smooth-L1(|d|, beta=1)
    assert hooked["loss_mask"] == pytest.approx(smooth["loss_mask"] + 0.25, abs=1e-6)
    (shape, lo, hi), = seen  # fmt: skip
    assert shape[1:] == (28, 28) and 0.0 <= lo < hi <= 1.0


def test_nms_fn_replaces_test_time_nms() -> None:
    model = tiny(box_score_thresh=0.0).eval()
    x = [torch.rand(3, 128, 160)]
    calls = []

    def keep_two_halved(boxes, scores, labels, *, iou_thresh):
        calls.append(iou_thresh)
        keep, kept_scores = batched_nms_fn(boxes, scores, labels, iou_thresh=iou_thresh)
        return keep[:2].flip(0), kept_scores[:2].flip(0) / 2  # out of order on purpose

    with torch.no_grad():
        plain = model(x)[0]
        model.roi_heads.nms_fn = keep_two_halved
        hooked = model(x)[0]
    assert calls == [0.5]
    assert torch.allclose(hooked["scores"], plain["scores"][:2] / 2)  # re-sorted by new score
    assert torch.equal(hooked["boxes"], plain["boxes"][:2])
    soft = MaskRCNN(get_config("mask_rcnn_tiny").replace(soft_nms="linear", soft_nms_sigma=0.3))
    fn = soft.roi_heads.nms_fn
    assert fn.keywords == {"method": "linear", "sigma": 0.3, "score_thresh": 0.001}
    # Linear Soft-NMS: the second box (IoU 0.8 with the first) keeps 0.8 * (1 - 0.8).
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 8.0], [20.0, 0, 30, 10]])
    keep, scores = fn(boxes, torch.tensor([0.9, 0.8, 0.5]), torch.tensor([1, 1, 1]), iou_thresh=0.5)
    assert keep.tolist() == [0, 2, 1] and torch.allclose(scores, torch.tensor([0.9, 0.5, 0.16]))


# ----------------------------------------------------------------------------- RoIAlignV2


def test_roi_align_v2_single_level_by_hand() -> None:
    # On f(y, x) = x + 10 y bilinear sampling is exact, so a bin's average is f at the
    # bin centre. aligned=True shifts the box by -0.5 feature pixel.
    H, W, stride = 20, 24, 8
    ys, xs = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    feat = (xs + 10 * ys)[None, None]  # [1, 1, H, W]
    box = torch.tensor([[40.0, 32.0, 120.0, 96.0]])  # 10x8 feature pixels, well inside
    pooler = MultiScaleRoIAlignV2(["p3"], 2, 2, [stride])
    out = pooler({"p3": feat}, [box], [(H * stride, W * stride)])[0, 0]  # [2, 2]
    x1, y1, x2, y2 = (box[0] / stride).tolist()
    cx = [x1 - 0.5 + (j + 0.5) * (x2 - x1) / 2 for j in range(2)]  # 7.0, 12.0
    cy = [y1 - 0.5 + (i + 0.5) * (y2 - y1) / 2 for i in range(2)]  # 5.5, 9.5
    expected = torch.tensor([[cx[j] + 10 * cy[i] for j in range(2)] for i in range(2)])
    assert torch.allclose(out, expected, atol=1e-4)
    assert expected.tolist() == [[62.0, 67.0], [102.0, 107.0]]
    ref = roi_align(feat, [box], 2, 1 / stride, sampling_ratio=2, aligned=True)[0, 0]
    assert torch.allclose(out, ref)
    unaligned = roi_align(feat, [box], 2, 1 / stride, sampling_ratio=2, aligned=False)[0, 0]
    assert torch.allclose(unaligned - out, torch.full((2, 2), 5.5), atol=1e-4)  # 0.5 + 10 * 0.5


def test_roi_align_v2_levels() -> None:
    torch.manual_seed(0)
    strides = [4, 8, 16, 32]
    feats = {str(i): torch.rand(2, 3, 512 // s, 512 // s) for i, s in enumerate(strides)}
    pooler = MultiScaleRoIAlignV2(list(feats), 7, 0, strides)
    # FPN eq. 1: level floor(4 + log2(sqrt(area) / 224)) clamped to 2..5.
    sides = {10.0: 0, 112.0: 1, 224.0: 2, 300.0: 2, 448.0: 3, 500.0: 3}
    first = torch.tensor([[4.0, 6.0, 4.0 + s, 6.0 + s] for s in sides])
    boxes = [first, first[:2] + 1.0]
    out = pooler(feats, boxes, [(512, 512)] * 2)
    assert out.shape == (len(sides) + 2, 3, 7, 7)
    levels = list(sides.values()) + [0, 1]
    images = [0] * len(sides) + [1, 1]
    rows = torch.cat(boxes)
    for r, (level, image) in enumerate(zip(levels, images)):
        ref = roi_align(feats[str(level)][image : image + 1], [rows[r : r + 1]], 7,
                        1 / strides[level], sampling_ratio=0, aligned=True)  # fmt: skip
        assert torch.allclose(out[r], ref[0]), r
    assert pooler(feats, [torch.zeros(0, 4)], [(512, 512)]).shape == (0, 3, 7, 7)


# ----------------------------------------------------------------------------- torchvision


@pytest.fixture(scope="module")
def torchvision_file(tmp_path_factory) -> dict:
    """A seeded torchvision maskrcnn_resnet50_fpn saved as a plain state dict (BatchNorm
    statistics randomised, counters dropped as in torchvision's FrozenBatchNorm2d files),
    with its own detections on a generated image."""
    torch.manual_seed(0)
    tv = torchvision.models.detection.maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=91, min_size=TV_SIZE, max_size=TV_SIZE
    ).eval()
    g = torch.Generator().manual_seed(1)
    for name, buf in tv.named_buffers():
        if name.endswith("running_mean"):
            buf.copy_(torch.randn(buf.shape, generator=g) * 0.1)
        elif name.endswith("running_var"):
            buf.copy_(torch.rand(buf.shape, generator=g) * 0.5 + 0.75)
    state = {k: v for k, v in tv.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path_factory.mktemp("tv") / "maskrcnn_resnet50_fpn_test.pth"
    torch.save(state, path)
    image = scene(192, 256, seed=3)  # 192x256: no resize at min = max = 256
    with torch.no_grad():
        expected = tv([rgb(image)])[0]
    return {"path": str(path), "state": state, "image": image, "expected": expected}


def test_torchvision_weights_give_torchvision_detections(torchvision_file, caplog) -> None:
    cfg = get_config("mask_rcnn_r50_fpn").replace(min_size=TV_SIZE, max_size=TV_SIZE)
    model = build_rcnn(cfg, torchvision_file["state"], "tv.pth").eval()
    assert "torchvision's settings" in caplog.text and len(caplog.records) == 1
    used = model.cfg
    assert not used.roi_align_aligned and used.roi_sampling_ratio == 2 and used.num_classes == 91
    assert type(model.roi_heads.box_roi_pool) is torchvision.ops.MultiScaleRoIAlign
    with torch.no_grad():
        got = model([rgb(torchvision_file["image"])])[0]
    want = torchvision_file["expected"]
    assert 20 <= len(want["scores"]) <= 100  # random weights still give scores above 0.05
    assert torch.equal(got["labels"], want["labels"])
    for key in ("boxes", "scores", "masks"):
        assert torch.allclose(got[key], want[key], atol=1e-4), key


def test_eval_py_on_torchvision_file(torchvision_file, tmp_path, capsys, monkeypatch) -> None:
    small = get_config("mask_rcnn_r50_fpn").replace(
        name="mask_rcnn_r50_small", min_size=TV_SIZE, max_size=TV_SIZE
    )
    monkeypatch.setitem(RCNN_CONFIGS, small.name, lambda: small)
    src, out, js = tmp_path / "in.png", tmp_path / "out.png", tmp_path / "d.json"
    cv2.imwrite(str(src), torchvision_file["image"])
    code = main(["--no_bar", "--cuda=False", f"--trained_model={torchvision_file['path']}",
                 f"--config={small.name}", f"--image={src}:{out}", f"--output_json={js}",
                 "--fast_nms=False", "--cross_class_nms=True"])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 0, err
    assert cv2.imread(str(out)).shape == torchvision_file["image"].shape
    dets = json.loads(js.read_text())
    want = torchvision_file["expected"]
    keep = torch.isin(want["labels"], torch.tensor(COCO_CATEGORY_IDS))  # "N/A" has no class
    assert 0 < len(dets) == int(keep.sum()) < len(want["labels"])
    boxes = want["boxes"][keep]
    masks = (want["masks"][keep, 0] > 0.5).numpy()
    assert [d["category_id"] for d in dets] == want["labels"][keep].tolist()
    assert np.allclose([d["score"] for d in dets], want["scores"][keep].numpy(), atol=1e-5)
    xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    assert np.allclose([d["bbox"] for d in dets], xywh.numpy(), atol=1e-3)
    decoded = np.stack([mask_utils.decode(d["segmentation"]) for d in dets]).astype(bool)
    assert (decoded != masks).mean() < 1e-4


def test_torchvision_file_layout_and_old_key_names(torchvision_file) -> None:
    state = torchvision_file["state"]
    assert torchvision_config_name(state) == "mask_rcnn_r50_fpn"
    cfg, _ = resolve_config(torchvision_file["path"], None)  # no config in the file or its name
    assert cfg.name == "mask_rcnn_r50_fpn"
    new = convert_torchvision_state(state)
    assert new["fpn.lat_layers.0.weight"] is state["backbone.fpn.inner_blocks.3.0.weight"]
    assert new["fpn.pred_layers.3.bias"] is state["backbone.fpn.layer_blocks.0.0.bias"]
    var = "running_var"
    assert new[f"backbone.layers.3.2.bn3.{var}"] is state[f"backbone.body.layer4.2.bn3.{var}"]
    # torchvision < 0.13 names (the published COCO file): the same tensors land in the same places.
    old = {}
    for k, v in state.items():
        k = k.replace("rpn.head.conv.0.0.", "rpn.head.conv.")
        for i in range(4):
            k = k.replace(f"mask_head.{i}.0.", f"mask_head.mask_fcn{i + 1}.")
            k = k.replace(f"inner_blocks.{i}.0.", f"inner_blocks.{i}.")
            k = k.replace(f"layer_blocks.{i}.0.", f"layer_blocks.{i}.")
        old[k] = v
    assert len(old) == len(state) and old.keys() != state.keys()
    converted = convert_torchvision_state(old)
    assert converted.keys() == new.keys()
    assert all(converted[k] is new[k] for k in new)


# ----------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def tiny_rcnn_ckpt(tmp_path_factory) -> str:
    """This project's own checkpoint layout: model state and config."""
    model = tiny()
    path = tmp_path_factory.mktemp("w") / "mask_rcnn_tiny_1_10.pth"
    torch.save({"model": model.state_dict(), "config": model.cfg.to_dict()}, path)
    return str(path)


def test_own_checkpoint_round_trip(tiny_rcnn_ckpt, caplog) -> None:
    ckpt = read_checkpoint(tiny_rcnn_ckpt)
    assert isinstance(ckpt.config, MaskRCNNConfig) and ckpt.config.name == "mask_rcnn_tiny"
    model = build_rcnn(ckpt.config, ckpt, tiny_rcnn_ckpt).eval()
    assert caplog.text == ""  # no torchvision switch for own files
    assert model.cfg.roi_align_aligned  # detectron2's default stays
    ref = tiny().eval()
    x = [torch.rand(3, 100, 140)]
    with torch.no_grad():
        a, b = model(x)[0], ref(x)[0]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cross_kind_checkpoints_fail_clearly(tiny_rcnn_ckpt, tmp_path, capsys) -> None:
    yolact_path = tmp_path / "yolact_tiny_1_1.pth"
    torch.save(build_model(get_config("yolact_tiny")).state_dict(), yolact_path)
    with pytest.raises(CheckpointError, match="holds a YOLACT model, not Mask R-CNN"):
        build_rcnn(get_config("mask_rcnn_tiny"), read_checkpoint(str(yolact_path)), "y.pth")
    with pytest.raises(CheckpointError, match="holds a 'mask_rcnn_tiny' model, not 'yolact_tiny'"):
        load_weights(build_model(get_config("yolact_tiny")), read_checkpoint(tiny_rcnn_ckpt))
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), scene())
    for path, config, needle in (
        (tiny_rcnn_ckpt, "yolact_tiny", "holds a 'mask_rcnn_tiny' model, not 'yolact_tiny'"),
        (str(yolact_path), "mask_rcnn_tiny", "holds a YOLACT model"),
    ):
        code = main(["--no_bar", "--cuda=False", f"--trained_model={path}", f"--config={config}",
                     f"--image={img}:{tmp_path / 'o.png'}"])  # fmt: skip
        err = capsys.readouterr().err
        lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
        assert code == 1 and len(lines) == 1 and needle in lines[0], err
        assert "Traceback" not in err
    # Another class count: named, with the two counts.
    other = tiny(class_names=("a", "b"))
    with pytest.raises(CheckpointError, match=r"predicts 3 classes .* the config 81") as e:
        load_rcnn_weights(tiny(), other.state_dict(), "two.pth")
    assert "\n" not in str(e.value) and "mask_rcnn_tiny" in str(e.value)


def test_named_config_takes_the_classes_of_the_file(tmp_path, capsys) -> None:
    """--config=mask_rcnn_tiny with a file that stores other classes, or a plain state
    dict whose classifier has another size: the architecture from the config, the
    classes from the file."""
    from yolact.data.synthetic import SYNTHETIC_CLASSES
    from yolact.predictor import Predictor

    model = tiny(class_names=SYNTHETIC_CLASSES)
    own = tmp_path / "shapes_rcnn.pth"
    torch.save({"model": model.state_dict(), "config": model.cfg.to_dict()}, own)
    for build in (RCNNPredictor.from_checkpoint, Predictor.from_checkpoint):
        predictor = build(str(own), config="mask_rcnn_tiny", device="cpu")
        assert isinstance(predictor, RCNNPredictor)
        assert tuple(predictor.class_names) == SYNTHETIC_CLASSES
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), scene())
    code = main(["--no_bar", "--cuda=False", f"--trained_model={own}", "--config=mask_rcnn_tiny",
                 f"--image={img}:{tmp_path / 'o.png'}"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    plain = tmp_path / "two_classes.pth"
    torch.save(tiny(class_names=("a", "b")).state_dict(), plain)
    cfg, _ = resolve_config(str(plain), "mask_rcnn_tiny")
    assert cfg.name == "mask_rcnn_tiny" and cfg.class_names == ("class_1", "class_2")
    named = RCNNPredictor.from_checkpoint(
        str(plain), config="mask_rcnn_tiny", class_names=("x", "y")
    )
    assert named.class_names == ("x", "y") and named.label_of_output.tolist() == [-1, 0, 1]


def test_fine_tuned_torchvision_file_takes_its_classes_from_the_weights(torchvision_file):
    """A torchvision Mask R-CNN fine-tuned to 2 classes (3 outputs): no category-id layout."""
    state = dict(torchvision_file["state"])
    head = "roi_heads.box_predictor."
    state[f"{head}cls_score.weight"] = state[f"{head}cls_score.weight"][:3]
    state[f"{head}cls_score.bias"] = state[f"{head}cls_score.bias"][:3]
    state[f"{head}bbox_pred.weight"] = state[f"{head}bbox_pred.weight"][:12]
    state[f"{head}bbox_pred.bias"] = state[f"{head}bbox_pred.bias"][:12]
    logits = "roi_heads.mask_predictor.mask_fcn_logits."
    state[f"{logits}weight"] = state[f"{logits}weight"][:3]
    state[f"{logits}bias"] = state[f"{logits}bias"][:3]
    path = torchvision_file["path"].replace(".pth", "_2cls.pth")
    torch.save(state, path)
    cfg, ckpt = resolve_config(path, None, ("cat", "dog"))
    assert cfg.name == "mask_rcnn_r50_fpn" and cfg.class_names == ("cat", "dog")
    model = build_rcnn(cfg, ckpt, path)
    assert model.cfg.output_ids is None and model.cfg.num_classes == 3
    assert torch.equal(
        model.state_dict()[f"{head}cls_score.weight"], state[f"{head}cls_score.weight"]
    )
    # The COCO file keeps COCO's names and torchvision's category-id outputs.
    coco_cfg, _ = resolve_config(torchvision_file["path"], None)
    assert len(coco_cfg.class_names) == 80 and coco_cfg.class_names[0] == "person"


# ----------------------------------------------------------------------------- predictor, eval.py


def test_predictor_detections(tiny_rcnn_ckpt) -> None:
    from yolact.predictor import Predictor

    predictor = Predictor.from_checkpoint(tiny_rcnn_ckpt, device="cpu", crop=False)
    assert isinstance(predictor, RCNNPredictor)
    predictor.model.roi_heads.score_thresh = 0.0  # random weights: keep every candidate
    image = scene()
    det = predictor(image)
    N = len(det)
    assert N > 0 and det.boxes.shape == (N, 4) and det.masks.shape == (N, 128, 160)
    assert det.masks.dtype == torch.bool and det.labels.min() >= 0 and det.labels.max() < 80
    assert torch.equal(det.box_scores, det.scores) and torch.equal(det.mask_scores, det.scores)
    assert det.names[0] in predictor.class_names
    # The same as the model on the RGB image, labels shifted to 0-based.
    with torch.no_grad():
        raw = predictor.model([rgb(image)])[0]
    assert torch.equal(det.labels, raw["labels"] - 1) and torch.allclose(det.boxes, raw["boxes"])
    assert torch.equal(det.masks, raw["masks"][:, 0] > 0.5)
    two = predictor([image, scene(90, 120, seed=1)])
    assert [d.image_size for d in two] == [(128, 160), (90, 120)]
    predictor.top_k, predictor.score_threshold, predictor.masks = 3, 0.0, False
    capped = predictor(image)
    assert len(capped) == 3 and capped.masks is None
    predictor.score_threshold = 1.0
    assert len(predictor(image)) == 0


def test_eval_py_folder_video_benchmark(tiny_rcnn_ckpt, tmp_path, capsys) -> None:
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(2):
        cv2.imwrite(str(src / f"{i}.png"), scene(seed=i))
    js = tmp_path / "d.json"
    code = main(["--no_bar", "--cuda=False", f"--trained_model={tiny_rcnn_ckpt}",
                 f"--images={src}:{dst}", f"--output_json={js}"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert sorted(p.name for p in dst.iterdir()) == ["0.png", "1.png"]
    assert "processed 2 images" in out and isinstance(json.loads(js.read_text()), list)
    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (160, 128))
    for i in range(3):
        writer.write(scene(seed=i))
    writer.release()
    code = main(["--no_bar", "--cuda=False", f"--trained_model={tiny_rcnn_ckpt}",
                 f"--video={video}:{tmp_path / 'o.avi'}"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "processed 3 frames" in out
    code = main(["--no_bar", "--cuda=False", "--config=mask_rcnn_tiny", "--benchmark",
                 "--max_images=2", "--benchmark_warmup=1"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "mask_rcnn_tiny" in out and "random weights" in err


def test_eval_py_dataset_mode(tmp_path, capsys) -> None:
    from yolact.data.synthetic import SYNTHETIC_CLASSES, write_coco_dataset

    data = write_coco_dataset(str(tmp_path / "d"), num_train=1, num_val=2, size=(96, 96))
    model = tiny(class_names=SYNTHETIC_CLASSES, box_score_thresh=0.0)
    path = tmp_path / "mask_rcnn_tiny_1_1.pth"
    torch.save({"model": model.state_dict(), "config": model.cfg.to_dict()}, path)
    metrics, bbox = tmp_path / "m.json", tmp_path / "b.json"
    code = main(["--no_bar", "--cuda=False", f"--trained_model={path}",
                 "--val_ann", data["val_ann_file"], "--val_images", data["val_image_dir"],
                 f"--metrics_json={metrics}", "--output_coco_json", f"--bbox_det_file={bbox}",
                 f"--mask_det_file={tmp_path / 's.json'}", "--score_threshold=0.9", "--top_k=1",
                 ])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "box" in out and "mask" in out
    saved = json.loads(metrics.read_text())
    assert all(-1.0 <= v <= 1.0 for t in ("bbox", "segm") for v in saved[t].values())
    results = json.loads(bbox.read_text())  # every detection, up to 100 per image
    counts = np.bincount([r["image_id"] for r in results])
    assert counts.max() == 100 and {r["category_id"] for r in results} <= set(range(1, 6))
