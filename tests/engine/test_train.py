"""Training: schedule, checkpoints, exact resume, interruption, bad steps, DDP, CLI."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from conftest import free_port

from yolact.core.config import BackboneConfig, TrainConfig
from yolact.core.weights import CheckpointError
from yolact.data.coco import CocoDataset
from yolact.data.synthetic import SYNTHETIC_CLASSES, write_coco_dataset
from yolact.engine.checkpoint_names import CheckpointName, atomic_save, find_latest, prune
from yolact.engine.data import EpochSampler
from yolact.engine.schedule import make_schedule
from yolact.engine.trainer import Trainer, TrainingError, TrainOptions, train
from yolact.registry import get_config, read_checkpoint


def small_cfg():
    """A 96 px model small enough for a few CPU iterations per test."""
    return get_config("yolact_tiny").replace(
        name="yolact_tiny",
        class_names=SYNTHETIC_CLASSES,
        backbone=get_config("yolact_tiny").backbone,
        max_size=96,
        fpn_channels=32,
        proto_channels=32,
        head_channels=32,
        num_prototypes=8,
        scales=((8,), (16,), (32,), (64,), (96,)),
        train=TrainConfig(lr=2e-3, warmup_until=2, warmup_init=1e-3, lr_steps=(100,),
                          max_iter=4, batch_size=4),
    )  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    paths = write_coco_dataset(str(root), num_train=8, num_val=4, size=(96, 96), seed=1)
    return paths


def datasets(paths):
    train_set = CocoDataset(paths["train_ann_file"], paths["train_image_dir"])
    val_set = CocoDataset(paths["val_ann_file"], paths["val_image_dir"])
    return train_set, val_set


def opts(tmp_path, **kw) -> TrainOptions:
    base = dict(batch_size=4, num_workers=0, save_folder=str(tmp_path), save_interval=0,
                validation_epoch=-1, progress=False, log_interval=1)  # fmt: skip
    base.update(kw)
    return TrainOptions(**base)


pytestmark = pytest.mark.usefixtures("one_thread")


# ---- pieces ------------------------------------------------------------------------------


def test_schedule_warmup_steps_and_autoscale():
    tc = TrainConfig(lr=1e-3, warmup_init=1e-4, warmup_until=500, lr_steps=(1000, 2000),
                     max_iter=3000, gamma=0.1, batch_size=8)  # fmt: skip
    s = make_schedule(tc, batch_size=8)
    assert s.lr_at(0) == pytest.approx(1e-4)
    assert s.lr_at(250) == pytest.approx(1e-4 + 0.5 * 9e-4)
    assert s.lr_at(500) == pytest.approx(1e-3)
    assert s.lr_at(999) == pytest.approx(1e-3)
    assert s.lr_at(1000) == pytest.approx(1e-4)
    assert s.lr_at(2500) == pytest.approx(1e-5)
    # Batch 4 with autoscale: half the lr, twice the iterations (the original's rule).
    s4 = make_schedule(tc, batch_size=4)
    assert (s4.lr, s4.steps, s4.max_iter) == (pytest.approx(5e-4), (2000, 4000), 6000)
    # Explicit overrides are taken as given.
    s2 = make_schedule(tc, batch_size=16, lr=0.5, max_iter=7)
    assert (s2.lr, s2.max_iter, s2.steps) == (0.5, 7, (500, 1000))
    assert make_schedule(tc, batch_size=4, autoscale=False).max_iter == 3000
    # Explicit steps (--lr_steps) are sorted and not scaled.
    s3 = make_schedule(tc, batch_size=16, lr_steps=(900, 300))
    assert s3.steps == (300, 900) and s3.lr_at(1000) == pytest.approx(2e-5)


@pytest.mark.parametrize("bad", ["10,x", "-5", "1.5"])
def test_lr_steps_flag_parses_and_rejects(bad, capsys):
    from yolact.cli.train_cli import build_parser

    assert build_parser().parse_args(["--lr_steps=7500,9300"]).lr_steps == (7500, 9300)
    with pytest.raises(SystemExit):
        build_parser().parse_args([f"--lr_steps={bad}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("train.py: error: argument --lr_steps:"), err


def test_checkpoint_names_latest_and_prune(tmp_path):
    assert CheckpointName.parse("yolact_base_54_800000.pth") == CheckpointName(
        "yolact_base", 54, 800000
    )
    n = CheckpointName.parse("/x/yolact_plus_base_3_1200_interrupt.pth")
    assert n == CheckpointName("yolact_plus_base", 3, 1200, True)
    assert n.file_name == "yolact_plus_base_3_1200_interrupt.pth"
    assert CheckpointName.parse("weights.pth") is None
    for f in ("cfg_0_10.pth", "cfg_1_200.pth", "cfg_0_150_interrupt.pth", "other_9_999.pth"):
        atomic_save({"x": torch.zeros(1)}, str(tmp_path / f))
    assert find_latest(str(tmp_path), "cfg").endswith("cfg_1_200.pth")
    assert find_latest(str(tmp_path), "cfg", interrupt=True).endswith("cfg_0_150_interrupt.pth")
    prune(str(tmp_path), "cfg", keep=str(tmp_path / "cfg_1_200.pth"))
    assert sorted(os.listdir(tmp_path)) == [
        "cfg_0_150_interrupt.pth", "cfg_1_200.pth", "other_9_999.pth"
    ]  # fmt: skip


def test_atomic_save_keeps_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = str(tmp_path / "cfg_0_1.pth")
    atomic_save({"a": torch.ones(2)}, path)

    def broken(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError):
        atomic_save({"a": torch.zeros(2)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))
    assert os.listdir(tmp_path) == ["cfg_0_1.pth"]


def test_epoch_sampler_shards_and_skips():
    full = list(EpochSampler(10, seed=3, epoch=2))
    assert sorted(full) == list(range(10))
    assert full == list(EpochSampler(10, seed=3, epoch=2))
    assert full != list(EpochSampler(10, seed=3, epoch=3))
    shards = [list(EpochSampler(10, seed=3, rank=r, world_size=3, epoch=2)) for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]
    assert set(sum(shards, [])) == set(range(10))
    s = EpochSampler(10, seed=3, epoch=2)
    s.set_epoch(2, skip=4)
    assert list(s) == full[4:] and len(s) == 6


# ---- the loop ----------------------------------------------------------------------------


def test_loss_goes_down_and_logs(tmp_path, data):
    train_set, _ = datasets(data)
    seen = []
    cfg = small_cfg().with_train(max_iter=30)
    t = Trainer(
        cfg, opts(tmp_path), train_set, on_iteration=lambda i, losses: seen.append(losses["total"])
    )
    # One fixed batch: shrink the data to 4 images so every epoch is the same batch.
    t.data.base = torch.utils.data.Subset(train_set, [0, 1, 2, 3])
    t.sampler.size = 4
    t.epoch_size = 1
    result = t.run()
    assert result.iteration == 30 and not result.interrupted
    assert np.mean(seen[-5:]) < 0.7 * np.mean(seen[:3]), seen
    ckpt = read_checkpoint(result.last_checkpoint)
    assert os.path.basename(result.last_checkpoint) == "yolact_tiny_29_30.pth"
    assert ckpt.config.max_size == 96 and ckpt.meta["iteration"] == 30
    assert ckpt.meta["class_names"] == list(SYNTHETIC_CLASSES)
    log = (tmp_path / "yolact_tiny_train_log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,iteration,lr,B,C,M,S")
    assert len(log) == 31


def test_resume_gives_the_same_weights(tmp_path, data):
    """4 iterations in one go == 2 iterations, stop, resume to 4 (model and optimizer)."""
    train_set, _ = datasets(data)
    cfg = small_cfg()
    straight = train(cfg, opts(tmp_path / "a"), train_set)
    first = train(cfg, opts(tmp_path / "b", max_iter=2), train_set)
    assert first.iteration == 2
    resumed = train(cfg, opts(tmp_path / "b", resume=first.last_checkpoint), train_set)
    assert resumed.iteration == 4
    a = read_checkpoint(straight.last_checkpoint)
    b = read_checkpoint(resumed.last_checkpoint)
    assert os.path.basename(straight.last_checkpoint) == os.path.basename(resumed.last_checkpoint)
    for key, value in a.state_dict.items():
        assert torch.equal(value, b.state_dict[key]), key
    mom_a = [s["momentum_buffer"] for s in a.meta["optimizer"]["state"].values()]
    mom_b = [s["momentum_buffer"] for s in b.meta["optimizer"]["state"].values()]
    assert all(torch.equal(x, y) for x, y in zip(mom_a, mom_b))


def test_sigterm_saves_interrupt_checkpoint_and_resume_interrupt(tmp_path, data):
    train_set, _ = datasets(data)
    cfg = small_cfg().with_train(max_iter=6)

    def send(i, losses):
        if i == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    t = Trainer(cfg, opts(tmp_path), train_set, on_iteration=send)
    result = t.run()
    assert result.interrupted and result.iteration == 3
    assert os.path.basename(result.last_checkpoint) == "yolact_tiny_1_3_interrupt.pth"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored
    done = train(cfg, opts(tmp_path, resume="interrupt"), train_set)
    assert done.iteration == 6 and not done.interrupted
    # The interrupt file is superseded by the newer regular checkpoint.
    assert not [f for f in os.listdir(tmp_path) if f.endswith("_interrupt.pth")]


def test_non_finite_losses_are_skipped_then_stop(tmp_path, data, monkeypatch, caplog):
    train_set, _ = datasets(data)
    from yolact.models.yolact.loss import YolactLoss

    real = YolactLoss.forward
    calls = {"n": 0}

    def flaky(self, outputs, targets, maskiou_net=None):
        calls["n"] += 1
        out = real(self, outputs, targets, maskiou_net)
        if calls["n"] in (2, 3) or calls["n"] >= 5:
            out["B"] = out["B"] * float("nan")
        return out

    monkeypatch.setattr(YolactLoss, "forward", flaky)
    t = Trainer(small_cfg().with_train(max_iter=50), opts(tmp_path, max_bad_steps=4), train_set)
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    with pytest.raises(TrainingError, match="4 non-finite losses in a row at iteration 8"):
        t.run()
    assert "non-finite loss at iteration 2: step skipped" in caplog.text
    assert all(torch.isfinite(v.float()).all() for v in t.model.state_dict().values())
    assert any(not torch.equal(before[k], v) for k, v in t.model.state_dict().items())


def test_init_from_another_checkpoint_with_other_classes(tmp_path, data, caplog):
    train_set, _ = datasets(data)
    from yolact.models.yolact.model import build_model

    other = small_cfg().replace(class_names=("a", "b"))
    src = tmp_path / "src_1_1.pth"
    torch.save(build_model(other).state_dict(), src)
    t = Trainer(small_cfg(), opts(tmp_path, init_weights=str(src)), train_set)
    assert "conf_layer" in caplog.text
    src_sd = torch.load(src, weights_only=True)
    key = "fpn.lat_layers.0.weight"
    assert torch.equal(t.model.state_dict()[key], src_sd[key])


def test_init_from_torchvision_backbone(tmp_path, data):
    import torchvision

    train_set, _ = datasets(data)
    tv = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(tv.state_dict(), path)
    full_width = small_cfg().replace(backbone=BackboneConfig(depth=18))
    t = Trainer(full_width, opts(tmp_path, init_weights=str(path)), train_set)
    assert torch.equal(t.model.backbone.layers[2][1].conv2.weight, tv.layer3[1].conv2.weight)
    assert torch.equal(t.model.backbone.conv1.weight, tv.conv1.weight)
    # yolact_tiny's half-width backbone cannot take ImageNet ResNet-18 weights: one clear error.
    with pytest.raises(CheckpointError, match="first mismatching keys conv1.weight"):
        Trainer(small_cfg(), opts(tmp_path, init_weights=str(path)), train_set)


def _no_positive_targets(kind: str, size: int) -> list[dict[str, torch.Tensor]]:
    """Two images' targets: no annotation, only a crowd region, or one mask too small
    for the mask IoU net (``discard_mask_area``)."""
    targets = []
    for _ in range(2):
        t = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long),
             "masks": torch.zeros(0, size, size, dtype=torch.uint8)}  # fmt: skip
        if kind == "crowd":
            t["crowd_boxes"] = torch.tensor([[0.1, 0.1, 0.9, 0.9]])
        elif kind == "tiny_mask":
            t["boxes"] = torch.tensor([[0.1, 0.1, 0.15, 0.15]])
            t["labels"] = torch.tensor([0])
            t["masks"] = torch.zeros(1, size, size, dtype=torch.uint8)
            t["masks"][0, 10:14, 10:14] = 1
        targets.append(t)
    return targets


@pytest.mark.parametrize("kind", ["empty", "crowd", "tiny_mask"])
@pytest.mark.parametrize("family", ["yolact_tiny", "yolact_tiny_maskiou", "mask_rcnn_tiny"])
def test_every_parameter_gets_a_gradient_without_positives(family, kind):
    """DDP without unused-parameter search needs every trainable parameter in every
    backward pass, also for batches that cannot train some of them."""
    from yolact.models.mask_rcnn.training import RCNNWithLoss
    from yolact.models.yolact.training import NetWithLoss, build_criterion
    from yolact.registry import family_of

    torch.manual_seed(0)
    size = 96
    if family == "mask_rcnn_tiny":
        cfg = get_config(family).replace(class_names=SYNTHETIC_CLASSES, min_size=size,
                                         max_size=size, edge_loss_weight=0.5)  # fmt: skip
        net = RCNNWithLoss(family_of(cfg).build_train_model(cfg), None)
    else:
        cfg = small_cfg()
        if family == "yolact_tiny_maskiou":
            cfg = cfg.replace(use_maskiou=True, maskiou_channels=(8, 16, 32))
        net = NetWithLoss(family_of(cfg).build_train_model(cfg), build_criterion(cfg), None)
    net.train()
    losses = net(torch.randn(2, 3, size, size), _no_positive_targets(kind, size))
    sum(losses.values()).backward()
    trainable = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    assert len(trainable) > 20
    assert [n for n, p in trainable if p.grad is None] == []
    assert all(torch.isfinite(v) for v in losses.values())


def _ddp_worker(rank: int, world: int, port: int, paths: dict, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip
    torch.set_num_threads(1)
    train_set, _ = datasets(paths)
    t = Trainer(small_cfg().with_train(max_iter=3), opts(out), train_set)
    result = t.run()
    torch.save(
        {k: v for k, v in t.model.state_dict().items() if "num_batches" not in k},
        os.path.join(out, f"rank{rank}.pt"),
    )
    assert result.iteration == 3
    torch.distributed.destroy_process_group()


def test_two_process_gloo_ddp(tmp_path, data):
    mp.spawn(_ddp_worker, args=(2, free_port(), data, str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    params = [k for k in r0 if "running" not in k]
    assert all(torch.equal(r0[k], r1[k]) for k in params)  # replicas stay in sync
    files = sorted(os.listdir(tmp_path))
    assert "yolact_tiny_1_3.pth" in files  # 8 images / batch 4: iteration 3 is in epoch 1
    assert read_checkpoint(str(tmp_path / "yolact_tiny_1_3.pth")).meta["iteration"] == 3


# ---- train.py ----------------------------------------------------------------------------


def test_train_cli_end_to_end_and_plots(tmp_path, data, capsys, monkeypatch, caplog):
    from yolact.cli.train_cli import main
    from yolact.engine.plots import main as plot_main

    monkeypatch.setattr("yolact.cli.train_cli.get_config", lambda name: small_cfg())
    caplog.set_level("INFO", logger="yolact")
    code = main([
        "--config=yolact_tiny", f"--train_ann={data['train_ann_file']}",
        f"--train_images={data['train_image_dir']}", f"--val_ann={data['val_ann_file']}",
        f"--val_images={data['val_image_dir']}", "--batch_size=4", "--max_iter=4",
        "--num_workers=0", f"--save_folder={tmp_path}", "--validation_epoch=1",
        "--validation_size=2", "--no_bar", "--device=cpu",
    ])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "finished at iteration 4" in out
    assert (tmp_path / "yolact_tiny_1_4.pth").exists()
    val = (tmp_path / "yolact_tiny_val_log.csv").read_text().splitlines()
    assert len(val) == 3 and val[0].startswith("epoch,iteration,box_AP")
    logged = [r.getMessage() for r in caplog.records if "validation at" in r.getMessage()]
    assert len(logged) == 2 and all(m.endswith(" (0-1)") and ": box AP 0." in m for m in logged)
    assert plot_main([str(tmp_path)]) == 0
    assert (tmp_path / "yolact_tiny_loss.png").stat().st_size > 1000
    assert (tmp_path / "yolact_tiny_ap.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--train_ann=/nope.json", "--train_images=/nope"], "/nope.json"),
        (["--config=yolact_bas"], "unknown config"),
        (["--batch_size=64"], "fewer than the batch"),
        (["--resume=latest"], "no yolact_tiny checkpoint"),
        (["--resume=/no/file_1_2.pth"], "checkpoint not found"),
    ],
)
def test_train_cli_bad_input(tmp_path, data, capsys, extra, needle):
    from yolact.cli.train_cli import main

    args = [
        "--config=yolact_tiny", f"--train_ann={data['train_ann_file']}",
        f"--train_images={data['train_image_dir']}", "--max_iter=1", "--num_workers=0",
        f"--save_folder={tmp_path}", "--no_bar", "--device=cpu",
    ]  # fmt: skip
    code = main(args + extra)
    err = capsys.readouterr().err
    assert code == 1
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err


def test_plots_without_logs(tmp_path, capsys):
    from yolact.engine.plots import main as plot_main

    assert plot_main([str(tmp_path)]) == 1
    assert "no training log" in capsys.readouterr().err


def test_sync_bn_needs_cuda(tmp_path, data, monkeypatch):
    from yolact.engine import trainer as trainer_mod
    from yolact.engine.distributed import DistInfo

    monkeypatch.setattr(trainer_mod, "init_distributed", lambda device_type: DistInfo(0, 2, 0))
    train_set, _ = datasets(data)
    with pytest.raises(TrainingError, match="--sync_bn needs CUDA"):
        Trainer(small_cfg(), opts(tmp_path, sync_bn=True, device="cpu"), train_set)


def test_mask_rcnn_reference_trains_with_dynamic_rcnn_and_edge_loss(tmp_path, data):
    """train.py's loop drives the reference too: torchvision's loss terms are logged,
    Dynamic R-CNN moves the RoI head's threshold and beta, and the edge loss is added."""
    from yolact.models.mask_rcnn.predictor import RCNNPredictor

    train_set, val_set = datasets(data)
    cfg = get_config("mask_rcnn_tiny").replace(
        class_names=SYNTHETIC_CLASSES, min_size=96, max_size=96, dynamic_rcnn=True,
        dynamic_interval=1, dynamic_k_iou=5, dynamic_k_beta=2, edge_loss_weight=0.5,
    ).with_train(lr=2e-3, warmup_until=1, max_iter=2, lr_steps=(100,), batch_size=4)  # fmt: skip
    t = Trainer(cfg, opts(tmp_path), train_set)
    heads = t.model.roi_heads
    assert heads.mask_loss_extra is not None
    assert (heads.fg_iou_thresh, heads.box_loss_beta) == (0.4, 1.0)
    result = t.run()
    assert result.iteration == 2 and np.isfinite(result.losses["total"])
    assert set(result.losses) >= {"loss_classifier", "loss_box_reg", "loss_mask"}
    # interval 1: updated after every step, and the head follows the updater
    assert heads.fg_iou_thresh == heads.bg_iou_thresh == pytest.approx(t.hooks.dynamic.iou_thresh)
    assert heads.box_loss_beta == pytest.approx(t.hooks.dynamic.beta) and t.hooks.dynamic.beta < 1.0
    ckpt = read_checkpoint(result.last_checkpoint)
    assert "dynamic_rcnn" in ckpt.meta and ckpt.config.name == "mask_rcnn_tiny"
    header = (tmp_path / "mask_rcnn_tiny_train_log.csv").read_text().splitlines()[0]
    assert header.startswith("epoch,iteration,lr,loss_classifier")
    predictor = RCNNPredictor(t.model, device="cpu")
    det = predictor(val_set[0]["image"])
    assert det.masks is not None and det.masks.shape[1:] == (96, 96)


# ---- optimiser, clipping, augmentation presets ------------------------------------------


def test_build_optimizer_sgd_and_adamw_groups():
    from yolact.engine.trainer import build_optimizer

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    sgd = build_optimizer(model, TrainConfig(), 0.01)
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.param_groups[0]["momentum"] == 0.9 and sgd.param_groups[0]["weight_decay"] == 5e-4
    adamw = build_optimizer(model, TrainConfig(optimizer="adamw", weight_decay=0.05), 0.002)
    assert isinstance(adamw, torch.optim.AdamW)
    decayed, plain = adamw.param_groups
    # Only the conv weight is decayed; conv bias and BatchNorm weight/bias are not.
    assert [p.shape for p in decayed["params"]] == [torch.Size([4, 3, 3, 3])]
    assert len(plain["params"]) == 3 and plain["weight_decay"] == 0.0
    assert decayed["weight_decay"] == 0.05 and decayed["betas"] == (0.9, 0.999)
    assert decayed["lr"] == plain["lr"] == 0.002


def test_grad_clip_bounds_the_update(tmp_path, data):
    """Plain SGD with lr 1: each step moves the weights by exactly the clipped gradient."""
    train_set, _ = datasets(data)
    cfg = small_cfg().with_train(max_iter=1, momentum=0.0, weight_decay=0.0, warmup_until=0)
    moved = {}
    for clip in (0.0, 1e-3):
        o = opts(tmp_path / str(clip), lr=1.0, grad_clip=clip)
        t = Trainer(cfg, o, train_set)
        before = [p.detach().clone() for p in t.model.parameters()]
        t.run()
        after = list(t.model.parameters())
        moved[clip] = float(
            torch.sqrt(sum(((a.detach() - b) ** 2).sum() for a, b in zip(after, before)))
        )
    assert moved[0.0] > 1e-2  # the raw gradient norm is far above the clip value
    assert float(moved[1e-3]) == pytest.approx(1e-3, rel=1e-3)


def test_optimizer_and_augment_flags_reach_the_run(tmp_path, data):
    from yolact.cli.train_cli import main

    args = [
        "--config=yolact_tiny", f"--train_ann={data['train_ann_file']}",
        f"--train_images={data['train_image_dir']}", "--max_iter=1", "--num_workers=0",
        f"--save_folder={tmp_path}", "--no_bar", "--device=cpu", "--batch_size=4",
        "--optimizer=adamw", "--augment=light", "--grad_clip=5",
    ]  # fmt: skip
    assert main(args) == 0
    ckpt = read_checkpoint(find_latest(str(tmp_path), "yolact_tiny"))
    t = ckpt.config.train
    assert (t.optimizer, t.augment, t.grad_clip) == ("adamw", "light", 5.0)
    assert "exp_avg" in next(iter(ckpt.meta["optimizer"]["state"].values()))


def test_resume_with_another_optimizer_is_a_clear_error(tmp_path, data):
    train_set, _ = datasets(data)
    first = train(small_cfg().with_train(max_iter=1), opts(tmp_path), train_set)
    cfg = small_cfg().with_train(max_iter=2, optimizer="adamw")
    with pytest.raises(TrainingError, match="resume with the optimizer it was trained with"):
        train(cfg, opts(tmp_path, resume=first.last_checkpoint), train_set)


def test_single_process_step_takes_one_reduction_and_no_stop_flag_collective(
    tmp_path, data, monkeypatch
):
    """Alone, each step hands the host one tensor (finiteness and loss values
    together); the stop flag is read on the host without a device round trip."""
    from yolact.engine import trainer as trainer_mod

    calls: list[int] = []
    real = trainer_mod.all_reduce_sum

    def counting(t: torch.Tensor) -> torch.Tensor:
        calls.append(t.numel())
        return real(t)

    monkeypatch.setattr(trainer_mod, "all_reduce_sum", counting)
    train_set, _ = datasets(data)
    result = Trainer(small_cfg(), opts(tmp_path, max_iter=3), train_set).run()
    assert result.iteration == 3
    assert calls == [1 + len(result.losses)] * 3  # flag, the loss terms and their total


def test_cosine_schedule_by_hand():
    tc = TrainConfig(lr=1e-3, warmup_init=1e-4, warmup_until=100, lr_steps=(150,),
                     max_iter=500, lr_schedule="cosine")  # fmt: skip
    s = make_schedule(tc, batch_size=8)
    assert s.lr_at(50) == pytest.approx(5.5e-4)  # the warm-up is unchanged
    assert s.lr_at(100) == pytest.approx(1e-3)
    assert s.lr_at(200) == pytest.approx(1e-3 * 0.5 * (1 + np.cos(np.pi * 0.25)))  # no step at 150
    assert s.lr_at(300) == pytest.approx(5e-4)
    assert s.lr_at(500) == pytest.approx(0.0, abs=1e-12)
    # The cosine spans the run actually made: --max_iter moves its end.
    short = make_schedule(tc, batch_size=8, max_iter=300)
    assert short.lr_at(200) == pytest.approx(5e-4)
    assert short.lr_at(300) == pytest.approx(0, abs=1e-12)


def test_set_flag_reaches_the_run_and_resume_keeps_it(tmp_path, data, capsys):
    from yolact.cli.train_cli import main

    args = [
        "--config=yolact_tiny", f"--train_ann={data['train_ann_file']}",
        f"--train_images={data['train_image_dir']}", "--num_workers=0",
        f"--save_folder={tmp_path}", "--no_bar", "--device=cpu", "--batch_size=4",
    ]  # fmt: skip
    sets = ["--set", "train.assigner=atss", "train.lr_schedule=cosine", "--set", "max_size=96"]
    assert main([*args, "--max_iter=1", *sets]) == 0
    first = read_checkpoint(find_latest(str(tmp_path), "yolact_tiny")).config
    assert (first.train.assigner, first.train.lr_schedule, first.max_size) == ("atss", "cosine", 96)
    # Resuming by name continues with the stored settings, --set not repeated.
    assert main([*args, "--max_iter=2", "--resume=latest"]) == 0
    second = read_checkpoint(find_latest(str(tmp_path), "yolact_tiny"))
    assert second.meta["iteration"] == 2
    assert (second.config.train.assigner, second.config.max_size) == ("atss", 96)
    capsys.readouterr()
    assert main([*args, "--max_iter=1", "--set", "train.assigner=nearest"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: train.assigner must be one of 'max_iou', 'atss'; got 'nearest'"]
