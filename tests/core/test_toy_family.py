"""A third model family defined here only: registered, it runs through the predictor,
the trainer and ``eval.py --benchmark`` with no edit to the package."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from yolact import registry
from yolact.cli.eval_cli import main as eval_main
from yolact.core.config import BackboneConfig, TrainConfig
from yolact.core.family import Family, TrainTransform
from yolact.core.predictor import Predictor
from yolact.core.structures import Detections
from yolact.core.weights import Checkpoint, CheckpointError
from yolact.data.coco import CocoDataset
from yolact.data.synthetic import SYNTHETIC_CLASSES, write_coco_dataset
from yolact.data.transforms import train_transform
from yolact.engine.trainer import Trainer, TrainOptions
from yolact.models.yolact.predictor import YolactPredictor
from yolact.predictor import Predictor as ApiPredictor

KIND = "toy_box"


@dataclass(frozen=True)
class ToyConfig:
    """One box per image from one convolution."""

    name: str
    class_names: tuple[str, ...] = SYNTHETIC_CLASSES
    size: int = 64
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(optimizer="adamw", lr=1e-2, warmup_until=0,
                                            augment="none", lr_steps=(), max_iter=2)
    )  # fmt: skip

    @property
    def num_classes(self) -> int:
        return len(self.class_names) + 1

    def replace(self, **changes: Any) -> ToyConfig:
        return dataclasses.replace(self, **changes)

    def with_train(self, **changes: Any) -> ToyConfig:
        return dataclasses.replace(self, train=dataclasses.replace(self.train, **changes))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": KIND, **dataclasses.asdict(self)}


class ToyModel(nn.Module):
    """A 3x3 conv to 5 channels, averaged over the image: a box (relative xyxy) and a score."""

    def __init__(self, cfg: ToyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.conv = nn.Conv2d(3, 5, 3, padding=1)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Args: images [B, 3, S, S]. Returns boxes [B, 4] relative xyxy, score logits [B]."""
        out = self.conv(images).mean(dim=(2, 3))  # [B, 5]
        a, b = out[:, :2].sigmoid(), out[:, 2:4].sigmoid()
        return torch.cat([torch.minimum(a, b), torch.maximum(a, b)], dim=1), out[:, 4]


class ToyPredictor(Predictor):
    """BGR images resized to S x S; one detection of class 0 per image."""

    def run_pre(self, images: Sequence[np.ndarray]) -> Tensor:
        S = self.cfg.size
        batch = [cv2.resize(im, (S, S)) for im in images]
        x = torch.from_numpy(np.stack(batch)).to(self.device)  # [B, S, S, 3]
        return x.permute(0, 3, 1, 2).float() / 255.0  # [B, 3, S, S]

    @torch.no_grad()
    def run_network(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        return self.model(batch)

    def run_post(
        self, raw: tuple[Tensor, Tensor], image_sizes: Sequence[tuple[int, int]]
    ) -> list[Detections]:
        dets = []
        for box, logit, (H, W) in zip(raw[0], raw[1], image_sizes):
            boxes = (box * torch.tensor([W, H, W, H], device=box.device))[None]  # [1, 4]
            score = logit.sigmoid()[None]  # [1]
            masks = None
            if self.masks:
                x1, y1, x2, y2 = (int(v) for v in boxes[0].round().tolist())
                masks = torch.zeros((1, H, W), dtype=torch.bool, device=box.device)
                masks[0, y1:y2, x1:x2] = True
            dets.append(
                Detections(boxes, torch.zeros(1, dtype=torch.long, device=box.device), score,
                           score, score, masks, (H, W), tuple(self.cfg.class_names))
            )  # fmt: skip
        return dets


class ToyWithLoss(nn.Module):
    """L1 to the first ground-truth box and BCE on the score (1 with a box, else 0)."""

    def __init__(self, model: ToyModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor, targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        boxes, logits = self.model(images)
        has = torch.tensor([len(t["boxes"]) > 0 for t in targets], device=images.device)
        first = torch.stack(
            [t["boxes"][0] if len(t["boxes"]) else torch.zeros(4, device=images.device)
             for t in targets]
        ).float()  # fmt: skip
        box_loss = ((boxes - first).abs().sum(dim=1) * has).sum() / has.sum().clamp(min=1)
        score_loss = F.binary_cross_entropy_with_logits(logits, has.float())
        return {"box": box_loss, "score": score_loss}


class ToyFamily(Family):
    kind = KIND
    title = "toy"
    configs = {"toy_one_box": lambda: ToyConfig(name="toy_one_box")}
    predictor_class = ToyPredictor

    def owns_config(self, cfg: object) -> bool:
        return isinstance(cfg, ToyConfig)

    def config_from_dict(self, d: dict[str, Any]) -> ToyConfig:
        d = {k: v for k, v in d.items() if k != "kind"}
        d["class_names"] = tuple(d["class_names"])
        d["backbone"] = BackboneConfig(**{k: tuple(v) if isinstance(v, list) else v
                                          for k, v in d["backbone"].items()})  # fmt: skip
        d["train"] = TrainConfig.from_dict(d["train"])
        return ToyConfig(**d)

    def holds_weights(self, state: dict[str, Tensor]) -> bool:
        return set(state) == {"conv.weight", "conv.bias"}

    def build_model(
        self, cfg: Any, checkpoint: Checkpoint | None = None, source: str = "checkpoint"
    ) -> ToyModel:
        model = ToyModel(cfg)
        if checkpoint is not None:
            self.load_weights(model, checkpoint, source)
        return model

    def load_weights(
        self, model: nn.Module, checkpoint: Checkpoint, source: str = "checkpoint",
        allow_class_change: bool = False,
    ) -> list[str]:  # fmt: skip
        if not self.holds_weights(checkpoint.state_dict):
            raise CheckpointError(f"{source} is not a toy model")
        model.load_state_dict(checkpoint.state_dict)
        return []

    def training_module(self, model: nn.Module, cfg: Any, amp_dtype: Any = None) -> nn.Module:
        assert isinstance(model, ToyModel)
        return ToyWithLoss(model)

    def train_transform(self, cfg: Any) -> TrainTransform:
        return train_transform(cfg.size, mean=(0, 0, 0), std=(255, 255, 255), augment="none")


@pytest.fixture
def toy() -> Iterator[ToyFamily]:
    family = ToyFamily()
    registry.register(family)
    yield family
    registry.unregister(family)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("toy_data")
    return write_coco_dataset(str(root), num_train=4, num_val=2, size=(64, 64))


def test_registering_checks_names_and_unregisters(toy) -> None:
    assert registry.get_config("toy_one_box") == ToyConfig(name="toy_one_box")
    assert registry.family_of(ToyConfig(name="x")) is toy
    with pytest.raises(ValueError, match="kind 'toy_box' is registered already"):
        registry.register(ToyFamily())
    registry.unregister(toy)
    with pytest.raises(registry.ConfigError, match="unknown config 'toy_one_box'"):
        registry.get_config("toy_one_box")
    registry.register(toy)


def test_toy_family_predicts_trains_and_benchmarks(toy, shapes, tmp_path, capsys) -> None:
    torch.manual_seed(0)
    image = np.full((40, 50, 3), 128, np.uint8)
    predictor = registry.build_predictor(registry.get_config("toy_one_box"), device="cpu")
    assert isinstance(predictor, ToyPredictor) and predictor.family is toy
    det = predictor(image)
    assert len(det) == 1 and det.image_size == (40, 50) and det.masks.shape == (1, 40, 50)
    x1, y1, x2, y2 = det.boxes[0].tolist()
    assert 0 <= x1 <= x2 <= 50 and 0 <= y1 <= y2 <= 40

    # Two training iterations through the family-agnostic trainer.
    train_set = CocoDataset(shapes["train_ann_file"], shapes["train_image_dir"])
    opts = TrainOptions(batch_size=2, max_iter=2, num_workers=0, save_folder=str(tmp_path),
                        save_interval=0, validation_epoch=-1, progress=False)  # fmt: skip
    cfg = registry.get_config("toy_one_box").replace(class_names=train_set.class_names)
    trainer = Trainer(cfg, opts, train_set)
    before = trainer.model.conv.weight.detach().clone()
    result = trainer.run()
    assert result.iteration == 2 and not result.interrupted
    assert set(result.losses) == {"box", "score", "total"}
    assert np.isfinite(result.losses["total"])
    assert not torch.equal(before, trainer.model.conv.weight)
    assert result.last_checkpoint.endswith("toy_one_box_0_2.pth")

    # The file says which family it holds; the Python API builds that family's predictor.
    ckpt = registry.read_checkpoint(result.last_checkpoint)
    assert registry.family_of_checkpoint(ckpt) is toy and ckpt.config == cfg
    loaded = ApiPredictor.from_checkpoint(result.last_checkpoint, device="cpu", top_k=1)
    assert isinstance(loaded, ToyPredictor)
    assert torch.equal(loaded.model.conv.weight, trainer.model.conv.weight)
    assert torch.allclose(loaded(image).boxes, trainer.family.predictor_class(
        trainer.model.eval(), device="cpu")(image).boxes)  # fmt: skip

    # eval.py --benchmark with the toy config name.
    capsys.readouterr()
    code = eval_main(["--config=toy_one_box", "--benchmark", "--max_images=2", "--cuda=False",
                      "--benchmark_warmup=1"])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "toy_one_box on cpu, batch 1, 2 frames" in out.out
    for stage in ("pre-processing", "network", "post-processing", "total", "FPS"):
        assert stage in out.out
    assert "note: toy_one_box with random weights (timing only)" in out.err


def test_a_family_predictor_reads_only_its_own_family(toy, tmp_path) -> None:
    path = tmp_path / "toy_one_box_0_1.pth"
    model = ToyModel(registry.get_config("toy_one_box"))
    torch.save({"model": model.state_dict(), "config": model.cfg.to_dict()}, path)
    assert isinstance(ToyPredictor.from_checkpoint(str(path), device="cpu"), ToyPredictor)
    with pytest.raises(CheckpointError, match="unknown config kind 'toy_box'"):
        YolactPredictor.from_checkpoint(str(path), device="cpu")


def test_init_weights_of_a_family_without_a_resnet_backbone(toy, tmp_path) -> None:
    """``--init_weights``: a whole toy checkpoint loads; a backbone file cannot, in one line."""
    import logging

    from yolact.engine.init_weights import initialise

    model = ToyModel(registry.get_config("toy_one_box"))
    log = logging.getLogger("test")
    own = Checkpoint({k: torch.ones_like(v) for k, v in model.state_dict().items()})
    assert initialise(model, own, "toy.pth", log, toy) == "full"
    assert torch.equal(model.conv.bias, torch.ones(5))
    resnet = Checkpoint({"conv1.weight": torch.zeros(64, 3, 7, 7)})
    message = (
        "resnet18.pth is not a toy checkpoint, and toy_one_box has no ResNet backbone "
        "to load a backbone file into"
    )
    with pytest.raises(CheckpointError, match=f"^{message}$"):
        initialise(model, resnet, "resnet18.pth", log, toy)
