"""DDP over two gloo processes survives batches without positives on every family.

COCO train2017 holds images without annotations and images with only crowd regions;
any rank may draw a batch of them while the other rank draws ordinary ones. Every
parameter must still take part in every backward pass, and every collective must be
called equally often with equal shapes on both ranks.
"""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from conftest import free_port
from pycocotools import mask as mask_utils
from test_train import opts, small_cfg

from yolact.data.coco import CocoDataset
from yolact.data.synthetic import SYNTHETIC_CLASSES
from yolact.engine.data import EpochSampler
from yolact.engine.trainer import Trainer
from yolact.models.mask_rcnn.config import MaskRCNNConfig
from yolact.models.yolact.config import YolactConfig
from yolact.registry import get_config, read_checkpoint

SIZE = 96
NUM_IMAGES = 16  # batch 4 over 2 ranks: 4 iterations per epoch, the whole test in epoch 0
SEED = 0


def write_rank_split_set(root: str, iscrowd: int = 1) -> dict[str, str]:
    """A COCO-format set whose epoch-0 shard of rank 0 (seed ``SEED``) holds only images
    without annotations and whose shard of rank 1 holds one region per image: a crowd
    (``iscrowd`` 1) or an object (0).

    Returns:
        ``ann_file`` and ``image_dir``.
    """
    rank1 = set(EpochSampler(NUM_IMAGES, SEED, rank=1, world_size=2)._indices())
    rng = np.random.default_rng(0)
    image_dir = os.path.join(root, "images")
    os.makedirs(image_dir)
    images, annotations = [], []
    for index in range(NUM_IMAGES):
        image_id, file_name = index + 1, f"{index + 1:04d}.png"
        cv2.imwrite(
            os.path.join(image_dir, file_name),
            rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8),
        )
        images.append({"id": image_id, "file_name": file_name, "height": SIZE, "width": SIZE})
        if index not in rank1:
            continue
        mask = np.zeros((SIZE, SIZE), np.uint8)
        mask[10:80, 20:90] = 1
        rle = mask_utils.encode(np.asfortranarray(mask))
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": 1,
                "segmentation": {"size": [SIZE, SIZE], "counts": rle["counts"].decode("ascii")},
                "area": float(mask.sum()),
                "bbox": [20.0, 10.0, 70.0, 70.0],
                "iscrowd": iscrowd,
            }
        )
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(SYNTHETIC_CLASSES)]
    ann_file = os.path.join(root, "train.json")
    with open(ann_file, "w", encoding="utf-8") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
    return {"ann_file": ann_file, "image_dir": image_dir}


def family_config(family: str) -> YolactConfig | MaskRCNNConfig:
    """The three families under test, small enough for a few CPU iterations."""
    if family == "mask_rcnn_tiny":
        return (
            get_config("mask_rcnn_tiny")
            .replace(class_names=SYNTHETIC_CLASSES, min_size=SIZE, max_size=SIZE)
            .with_train(lr=2e-3, warmup_until=1, lr_steps=(100,), batch_size=4, augment="none")
        )
    cfg = small_cfg().with_train(augment="none")
    if family == "yolact_tiny_maskiou":  # three convs fit its 24 px prototypes
        cfg = cfg.replace(use_maskiou=True, maskiou_channels=(8, 16, 32))
    return cfg


def _worker(rank: int, port: int, family: str, paths: dict[str, str], out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip
    torch.set_num_threads(1)
    data = CocoDataset(paths["ann_file"], paths["image_dir"])
    cfg = family_config(family)
    first = Trainer(cfg, opts(out, max_iter=2, seed=SEED), data).run()
    resume = os.path.join(out, f"{cfg.name}_0_2.pth")
    # Validation at the end of the epoch: its gather runs on both ranks.
    second = Trainer(
        cfg, opts(out, max_iter=4, seed=SEED, resume=resume, validation_epoch=1,
                  validation_size=4), data, val_set=data,
    )  # fmt: skip
    result = second.run()
    state = {k: v for k, v in second.model.state_dict().items() if "num_batches" not in k}
    torch.save(
        {"state": state, "iterations": (first.iteration, result.iteration),
         "losses": result.losses},
        os.path.join(out, f"rank{rank}.pt"),
    )  # fmt: skip
    torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def split_set(tmp_path_factory) -> dict[str, str]:
    return write_rank_split_set(str(tmp_path_factory.mktemp("split")))


@pytest.fixture(scope="module")
def mixed_set(tmp_path_factory) -> dict[str, str]:
    return write_rank_split_set(str(tmp_path_factory.mktemp("mixed")), iscrowd=0)


def test_rank_split_set_gives_each_rank_its_kind(split_set):
    data = CocoDataset(split_set["ann_file"], split_set["image_dir"])
    for rank, crowds in ((0, 0), (1, 1)):
        for index in EpochSampler(NUM_IMAGES, SEED, rank=rank, world_size=2):
            sample = data[index]
            assert len(sample["boxes"]) == 0 and len(sample["crowd_boxes"]) == crowds


@pytest.mark.parametrize(
    "family, rank1",
    [
        ("yolact_tiny", "crowd"),
        ("yolact_tiny_maskiou", "crowd"),
        ("mask_rcnn_tiny", "crowd"),
        # The reported crash: gloo's "Received data size doesn't match expected size".
        ("yolact_tiny", "objects"),
    ],
)
def test_ddp_survives_batches_without_positives(tmp_path, split_set, mixed_set, family, rank1):
    """Rank 0 sees only empty images, rank 1 only crowds (or objects): the run and its
    resume end, and both ranks hold the same weights."""
    paths = split_set if rank1 == "crowd" else mixed_set
    mp.spawn(_worker, args=(free_port(), family, paths, str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["iterations"] == r1["iterations"] == (2, 4)
    # Both ranks report the same loss terms, averaged over the ranks.
    assert list(r0["losses"]) == list(r1["losses"]) and "total" in r0["losses"]
    assert r0["losses"] == pytest.approx(r1["losses"], rel=1e-6)
    params = [k for k in r0["state"] if "running" not in k]
    assert params and all(torch.equal(r0["state"][k], r1["state"][k]) for k in params)
    name = family_config(family).name
    ckpt = read_checkpoint(str(tmp_path / f"{name}_0_4.pth"))
    assert ckpt.meta["iteration"] == 4
    # The end-of-epoch validation ran on both ranks' shards and rank 0 logged it.
    assert len((tmp_path / f"{name}_val_log.csv").read_text().splitlines()) == 2
    for key in params:
        assert torch.equal(ckpt.state_dict[key], r0["state"][key]), key
