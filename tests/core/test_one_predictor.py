"""Issue 17, item 2: one predictor class for every family and file kind, its options in
one dataclass, runners beneath it, and pad-and-chunk to a fixed batch in one place."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
from collections.abc import Sequence

import numpy as np
import pytest
import torch
from conftest import REPO
from torch import Tensor

import yolact
from yolact import registry
from yolact.core.family import Family
from yolact.core.options import PredictorOptions
from yolact.core.padded import PaddedDetections, select, to_detections
from yolact.core.predictor import Predictor as CorePredictor
from yolact.data.scenes import make_scene
from yolact.runtime.batching import FixedBatchRunner

DEMO = str(REPO / "weights" / "yolact_tiny_synthetic.pth")

pytestmark = pytest.mark.usefixtures("one_thread")


def scenes(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    return [make_scene(rng, (72, 96))["image"] for _ in range(n)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, str]:
    """The demo model as ONNX (fixed batch 2) and as an OpenVINO folder."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    from yolact.export import main as export_main

    root = tmp_path_factory.mktemp("one_predictor")
    runs = [
        [f"--trained_model={DEMO}", f"--output={root / 'demo.onnx'}", "--batch=2"],
        [f"--trained_model={DEMO}", "--format=openvino", f"--output={root / 'demo'}"],
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        for argv in runs:
            assert export_main(argv) == 0
    return {"onnx": str(root / "demo.onnx"), "openvino": str(root / "demo_openvino_model")}


def test_yolact_predictor_is_the_core_class() -> None:
    assert yolact.Predictor is CorePredictor
    from yolact.predictor import Predictor as ApiPredictor

    assert ApiPredictor is CorePredictor


def test_checkpoints_of_every_family_give_instances_of_the_one_class(tmp_path) -> None:
    yolact_tiny = yolact.Predictor.from_checkpoint(DEMO, device="cpu")
    assert isinstance(yolact_tiny, yolact.Predictor)
    assert yolact_tiny.family is registry.family_of(registry.get_config("yolact_tiny"))
    torch.manual_seed(0)
    cfg = registry.get_config("mask_rcnn_tiny")
    family = registry.family_of(cfg)
    path = tmp_path / "reference.pth"
    torch.save({"model": family.build_model(cfg).state_dict(), "config": cfg.to_dict()}, path)
    rcnn = yolact.Predictor.from_checkpoint(str(path), device="cpu")
    assert isinstance(rcnn, yolact.Predictor) and isinstance(rcnn, family.predictor_class)
    assert rcnn.family is family and type(rcnn).family is family


@pytest.mark.parametrize("kind", ["onnx", "openvino"])
def test_exported_files_give_instances_of_the_one_class(exported, kind) -> None:
    predictor = yolact.Predictor.from_checkpoint(exported[kind], device="cpu")
    assert isinstance(predictor, yolact.Predictor)
    # The same family as the checkpoint it was exported from; the graph is its runner.
    assert predictor.family is registry.family_of(registry.get_config("yolact_tiny"))
    assert predictor.runner.name == kind.replace("onnx", "onnxruntime")
    assert isinstance(registry.load_predictor(exported[kind]), yolact.Predictor)


def test_a_family_sets_nothing_on_its_predictor_class() -> None:
    class Mine(CorePredictor):
        pass

    class MineFamily(Family):
        kind = "mine"
        predictor_class = Mine

    # Abstract methods aside, constructing a family must not touch its predictor class.
    MineFamily.__abstractmethods__ = frozenset()
    MineFamily()
    assert "family" not in vars(Mine)
    with pytest.raises(AttributeError, match="^Mine is the predictor of no registered family$"):
        _ = Mine.family


# ---- PredictorOptions -----------------------------------------------------------------


def test_options_are_one_frozen_dataclass_with_todays_defaults() -> None:
    options = PredictorOptions()
    assert dataclasses.asdict(options) == {
        "device": None, "score_threshold": 0.0, "top_k": None, "nms_method": None,
        "crop": True, "masks": True, "half": False, "cuda_graph": False,
        "channels_last": None, "threads": None, "tensorrt": None,
    }  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.top_k = 3  # type: ignore[misc]
    assert options.replace(top_k=3).top_k == 3 and options.top_k is None
    message = "nms_method must be None or one of 'fast', 'cross_class', 'standard'; got 'soft'"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        PredictorOptions(nms_method="soft")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        options.replace(nms_method="soft")


UNKNOWN = (
    "unknown predictor option 'topk'; the options are device, score_threshold, top_k, "
    "nms_method, crop, masks, half, cuda_graph, channels_last, threads, tensorrt"
)


def test_an_unknown_option_is_one_type_error_everywhere() -> None:
    cfg = registry.get_config("yolact_tiny")
    calls = [
        lambda: yolact.Predictor.from_checkpoint(DEMO, device="cpu", topk=5),
        lambda: registry.load_predictor(DEMO, device="cpu", topk=5),
        lambda: registry.build_predictor(cfg, device="cpu", topk=5),
        lambda: yolact.Predictor.from_config(cfg, device="cpu", topk=5),
        lambda: PredictorOptions.from_kwargs(topk=5),
    ]
    for call in calls:
        with pytest.raises(TypeError, match=f"^{re.escape(UNKNOWN)}$"):
            call()
    with pytest.raises(TypeError, match="^unknown predictor options 'a', 'b'; "):
        PredictorOptions.from_kwargs(b=1, a=2)


def test_options_reach_the_predictor() -> None:
    predictor = yolact.Predictor.from_checkpoint(
        DEMO, device="cpu", top_k=3, score_threshold=0.2, masks=False, nms_method="cross_class"
    )
    o = predictor.options
    assert (o.top_k, o.score_threshold, o.masks, o.nms_method) == (3, 0.2, False, "cross_class")
    assert (predictor.top_k, predictor.score_threshold, predictor.masks) == (3, 0.2, False)
    det = predictor(scenes(1)[0])
    assert len(det) <= 3 and det.masks is None


# ---- pad-and-chunk ---------------------------------------------------------------------


def _fixed_batch_fn(batch: int, seen: list[int]):
    """A function that only runs batches of exactly ``batch``: item i -> (2 * x_i, sum x_i)."""

    def fn(x: Tensor) -> tuple[Tensor, ...]:
        assert x.shape[0] == batch
        seen.append(x.shape[0])
        return x * 2, x.flatten(1).sum(1)

    return fn


@pytest.mark.parametrize("n", [1, 3, 4, 6, 9])
def test_pad_and_chunk_gives_each_items_own_outputs(n: int) -> None:
    seen: list[int] = []
    x = torch.arange(n * 6, dtype=torch.float32).reshape(n, 1, 2, 3) + 1
    doubled, sums = FixedBatchRunner(_fixed_batch_fn(4, seen), batch=4)(x)
    assert torch.equal(doubled, x * 2) and torch.equal(sums, x.flatten(1).sum(1))
    assert seen == [4] * -(-n // 4)  # ceil(n / 4) runs, every one of exactly 4


class _FakeRuntime:
    """An exported graph of fixed batch 4 stood in for: outputs as numpy, like a runtime."""

    name = "onnxruntime"
    device = "cpu"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        assert batch.shape[0] == 4 and batch.dtype == np.float32
        self.batches.append(batch.shape[0])
        return [batch * 2, batch.reshape(4, -1).sum(1)]


@pytest.mark.parametrize("n", [1, 3, 4, 6, 9])
def test_exported_runner_pads_and_chunks_with_the_same_runner(n: int) -> None:
    from yolact.backends.runners import ExportedRunner

    meta = type("Meta", (), {"half": False, "batch": 4})()
    runtime = _FakeRuntime()
    runner = ExportedRunner(runtime, meta)  # type: ignore[arg-type]
    assert isinstance(runner.fixed, FixedBatchRunner)
    x = torch.rand(n, 3, 2, 2)
    doubled, sums = runner(x)
    assert torch.equal(doubled, x * 2)
    assert torch.allclose(sums, x.reshape(n, -1).sum(1))
    assert runtime.batches == [4] * -(-n // 4)


# ---- the exported predictor gives today's results --------------------------------------


def _legacy_exported(predictor, images: Sequence[np.ndarray]) -> list:
    """The exported predictor's stages as they were written before the runners: the
    graph run by hand in chunks of its batch, the last one padded with zeros."""
    runtime, meta = predictor.runner.runtime, predictor.meta
    x = predictor.preprocess(images).numpy().astype(np.float32)
    step = meta.batch or len(x)
    parts = []
    for start in range(0, len(x), step):
        chunk = x[start : start + step]
        k = len(chunk)
        if k < step:
            chunk = np.concatenate([chunk, np.zeros((step - k, *chunk.shape[1:]), chunk.dtype)])
        parts.append([o[:k] for o in runtime.run(np.ascontiguousarray(chunk))])
    outputs = [torch.from_numpy(np.concatenate(p)) for p in zip(*parts)]
    det = PaddedDetections.from_tuple([o.float() if o.is_floating_point() else o for o in outputs])
    det = select(det, predictor.score_threshold, predictor.top_k)
    return to_detections(
        det, [im.shape[:2] for im in images], predictor.class_names, masks=predictor.masks,
        crop=predictor.crop, crop_padding=meta.crop_padding,
    )  # fmt: skip


@pytest.mark.parametrize("n", [1, 3])
def test_exported_predictor_gives_todays_results(exported, n: int) -> None:
    predictor = yolact.Predictor.from_checkpoint(exported["onnx"], device="cpu", top_k=10)
    images = scenes(n)
    got, ref = predictor(images), _legacy_exported(predictor, images)
    assert len(got) == len(ref) == n
    for g, r in zip(got, ref):
        assert torch.equal(g.boxes, r.boxes) and torch.equal(g.labels, r.labels)
        assert torch.equal(g.scores, r.scores) and torch.equal(g.masks, r.masks)


def test_runtime_policy_is_its_own_package_below_the_families() -> None:
    """yolact/runtime imports only itself and the shared core's interfaces; the old
    module paths are gone."""
    from test_layout import import_graph

    graph = import_graph()
    runtime = {m for m in graph if m.startswith("yolact.runtime")}
    assert {"yolact.runtime.device", "yolact.runtime.gpu", "yolact.runtime.threads"} <= runtime
    for module in runtime:
        outside = {t for t in graph[module] if not t.startswith(("yolact.runtime", "yolact.core"))}
        assert not outside, f"{module} imports {outside}"
    assert not {"yolact.core.device", "yolact.core.gpu", "yolact.core.threads"} & set(graph)
