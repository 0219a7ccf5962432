"""Dataset evaluation with COCOeval: perfect, empty and partial predictions, result and
metrics files, test-dev style data, eval.py's dataset mode and a 2-process gloo run."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import free_port
from pycocotools.coco import COCO

from yolact.core.structures import Detections
from yolact.data.coco import CocoDataset, DatasetError
from yolact.data.synthetic import SYNTHETIC_CLASSES, write_coco_dataset
from yolact.engine.evaluate import (
    STAT_NAMES,
    evaluate_dataset,
    match_classes,
    write_metrics,
    write_results,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("synthetic")
    return write_coco_dataset(str(root), num_train=2, num_val=6, size=(96, 96))


def val_dataset(data: dict[str, str]) -> CocoDataset:
    return CocoDataset(data["val_ann_file"], data["val_image_dir"])


def _key(image: np.ndarray) -> str:
    return hashlib.sha1(image.tobytes()).hexdigest()


class GroundTruthPredictor:
    """Returns each image's ground truth as detections (score 1), for the images
    whose dataset index passes ``keep``; nothing for the others."""

    def __init__(self, dataset: CocoDataset, keep=lambda index: True) -> None:
        self.samples = {}
        for i in range(len(dataset)):
            sample = dataset[i]
            self.samples[_key(sample["image"])] = (i, sample)
        self.keep = keep
        self.class_names = dataset.class_names
        self.calls = 0

    def __call__(self, image: np.ndarray) -> Detections:
        self.calls += 1
        index, s = self.samples[_key(image)]
        if not self.keep(index):
            return Detections.empty(image.shape[:2], self.class_names)
        n = len(s["labels"])
        ones = torch.ones(n)
        return Detections(
            boxes=torch.from_numpy(s["boxes"]),
            labels=torch.from_numpy(s["labels"]),
            scores=ones, box_scores=ones, mask_scores=ones,
            masks=torch.from_numpy(s["masks"]).bool(),
            image_size=image.shape[:2], class_names=self.class_names,
        )  # fmt: skip


class NothingPredictor:
    def __call__(self, image: np.ndarray) -> Detections:
        return Detections.empty(image.shape[:2], SYNTHETIC_CLASSES)


def classes_with_gt(dataset: CocoDataset) -> set[str]:
    cats = {a["category_id"] for a in dataset.coco.dataset["annotations"]}
    return {n for n, c in zip(dataset.class_names, dataset.label_to_category_id) if c in cats}


def test_ground_truth_scores_ap_one(data):
    dataset = val_dataset(data)
    predictor = GroundTruthPredictor(dataset)
    result = evaluate_dataset(predictor, dataset, progress=False)
    assert result.num_images == 6 and predictor.calls == 6
    n_gt = len(dataset.coco.dataset["annotations"])
    assert len(result.bbox_results) == len(result.segm_results) == n_gt
    present = classes_with_gt(dataset)
    for iou_type in ("bbox", "segm"):
        m = result.metrics[iou_type]
        assert list(m) == list(STAT_NAMES)
        for name in ("AP", "AP50", "AP75"):
            assert m[name] == pytest.approx(1.0, abs=1e-9)
        for name in ("APs", "APm", "APl"):  # 1, or -1 where no object has that size
            assert m[name] == pytest.approx(1.0, abs=1e-9) or m[name] == -1.0
        assert result.per_iou[iou_type] == pytest.approx([1.0] * 10, abs=1e-9)
        for name, ap in result.per_class[iou_type].items():
            assert ap == (pytest.approx(1.0, abs=1e-9) if name in present else -1.0)
    assert present and set(result.per_class["bbox"]) == set(SYNTHETIC_CLASSES)
    # Results in the original's layout: boxes without masks, masks without boxes.
    assert set(result.bbox_results[0]) == {"image_id", "category_id", "bbox", "score"}
    assert set(result.segm_results[0]) == {"image_id", "category_id", "segmentation", "score"}
    assert isinstance(result.segm_results[0]["segmentation"]["counts"], str)
    assert "Average Precision" in result.summary["segm"]
    table = result.table()
    for word in ("box", "mask", ".50", ".95", "AP50", "1.0000", *present):
        assert word in table


def test_no_detections_scores_zero(data):
    dataset = val_dataset(data)
    result = evaluate_dataset(NothingPredictor(), dataset, progress=False)
    assert result.bbox_results == [] and result.segm_results == []
    for iou_type in ("bbox", "segm"):
        m = result.metrics[iou_type]
        assert m["AP"] == m["AP50"] == m["AP75"] == 0.0
        assert all(v in (0.0, -1.0) for v in m.values())
        present = classes_with_gt(dataset)
        assert all(ap == (0.0 if n in present else -1.0)
                   for n, ap in result.per_class[iou_type].items())  # fmt: skip


def test_half_the_images_scores_between(data, tmp_path):
    dataset = val_dataset(data)
    result = evaluate_dataset(
        GroundTruthPredictor(dataset, keep=lambda i: i % 2 == 0), dataset, progress=False
    )
    for iou_type in ("bbox", "segm"):
        assert 0.0 < result.metrics[iou_type]["AP"] < 1.0
    # max_images: only the first images are predicted and scored.
    two = evaluate_dataset(GroundTruthPredictor(dataset), dataset, max_images=2, progress=False)
    assert two.num_images == 2 and two.metrics["segm"]["AP"] == pytest.approx(1.0, abs=1e-9)
    assert {r["image_id"] for r in two.bbox_results} <= set(dataset.image_ids[:2])


def test_metrics_and_result_files(data, tmp_path):
    dataset = val_dataset(data)
    result = evaluate_dataset(GroundTruthPredictor(dataset), dataset, progress=False)
    saved = read_json(write_metrics(result, str(tmp_path / "out" / "metrics.json")))
    assert set(saved) >= {"bbox", "segm", "per_class"}
    for iou_type in ("bbox", "segm"):
        assert list(saved[iou_type]) == list(STAT_NAMES)
        assert saved[iou_type]["AP"] == pytest.approx(1.0, abs=1e-9)
        assert set(saved["per_class"][iou_type]) == set(SYNTHETIC_CLASSES)
    assert saved["num_images"] == 6
    bbox_path, mask_path = str(tmp_path / "r" / "bbox.json"), str(tmp_path / "r" / "mask.json")
    write_results(result, bbox_path, mask_path)
    assert not [n for n in os.listdir(tmp_path / "r") if n.endswith(".tmp")]
    gt = COCO(data["val_ann_file"])
    for path, n in ((bbox_path, len(result.bbox_results)), (mask_path, len(result.segm_results))):
        loaded = gt.loadRes(path)
        assert len(loaded.getAnnIds()) == n == len(dataset.coco.dataset["annotations"])


def test_dataset_without_annotations(data, tmp_path, capsys):
    with open(data["val_ann_file"], encoding="utf-8") as f:
        info = json.load(f)
    del info["annotations"]
    ann = tmp_path / "image_info_test.json"
    ann.write_text(json.dumps(info), encoding="utf-8")
    dataset = CocoDataset(str(ann), data["val_image_dir"])
    gt_dataset = val_dataset(data)  # the predictor still knows the true objects
    result = evaluate_dataset(GroundTruthPredictor(gt_dataset), dataset, progress=False)
    assert result.metrics is None and result.per_class is None
    assert len(result.bbox_results) == len(gt_dataset.coco.dataset["annotations"])
    assert "no metrics" in result.table()
    write_results(result, str(tmp_path / "b.json"), str(tmp_path / "m.json"))
    assert len(json.loads((tmp_path / "m.json").read_text())) == len(result.segm_results)
    saved = read_json(write_metrics(result, str(tmp_path / "metrics.json")))
    assert saved["bbox"] is None and saved["segm"] is None and saved["per_class"] is None


def read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def test_dataset_with_transform_is_refused(data):
    dataset = CocoDataset(data["val_ann_file"], data["val_image_dir"], transform=lambda s: s)
    with pytest.raises(ValueError, match="transform"):
        evaluate_dataset(NothingPredictor(), dataset, progress=False)


def main(argv: list[str]) -> int:
    """eval.py's entry point (imported here: the spawned workers need not load it)."""
    from yolact.cli.eval_cli import main as eval_main

    return eval_main(argv)


def save_tiny(path, class_names: tuple[str, ...] | None = None, plain: bool = False) -> str:
    """A yolact_tiny checkpoint: this project's format, or a plain state dict."""
    from yolact.models.yolact.model import build_model
    from yolact.registry import get_config

    torch.manual_seed(0)
    cfg = get_config("yolact_tiny")
    cfg = cfg.replace(class_names=class_names) if class_names else cfg
    state = build_model(cfg).state_dict()
    torch.save(state if plain else {"model": state, "config": cfg.to_dict()}, path)
    return str(path)


@pytest.fixture(scope="module")
def synthetic_ckpt(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("w") / "yolact_tiny_1_1.pth"
    return save_tiny(path, SYNTHETIC_CLASSES)


def test_eval_py_dataset_mode(data, tmp_path, capsys, synthetic_ckpt):
    metrics, bbox, mask = (tmp_path / "m.json", tmp_path / "res" / "b.json",
                           tmp_path / "res" / "m.json")  # fmt: skip
    code = main([
        f"--trained_model={synthetic_ckpt}", "--val_ann", data["val_ann_file"],
        "--val_images", data["val_image_dir"], "--metrics_json", str(metrics),
        "--output_coco_json", f"--bbox_det_file={bbox}", f"--mask_det_file={mask}",
        "--score_threshold=0.9", "--top_k=1", "--cuda=False", "--no_bar",
    ])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "box" in out and "mask" in out and ".95" in out
    saved = json.loads(metrics.read_text())
    # The printed tables carry the unit and the same 0-1 numbers as --metrics_json.
    corners = [ln.split("|")[0].strip() for ln in out.splitlines() if "(0-1) |" in ln]
    assert corners == ["AP (0-1)", "AP (0-1)", "class AP (0-1)"]
    for row, iou_type in (("box", "bbox"), ("mask", "segm")):
        printed = next(ln for ln in out.splitlines() if ln.strip().startswith(f"{row} |"))
        ap = saved[iou_type]["AP"]
        assert printed.split("|")[1].strip() == (f"{ap:.4f}" if ap > -1 else "-")
    for iou_type in ("bbox", "segm"):
        for name in STAT_NAMES:
            assert saved[iou_type][name] == -1.0 or 0.0 <= saved[iou_type][name] <= 1.0
    # The display flags are ignored: every detection (up to the config's 100) is kept.
    results = json.loads(bbox.read_text())
    per_image = np.bincount([r["image_id"] for r in results])
    assert per_image.max() > 1 and per_image.max() <= 100
    assert len(json.loads(mask.read_text())) == len(results)


def test_eval_py_class_count_mismatch(data, tmp_path, capsys):
    path = save_tiny(tmp_path / "yolact_tiny_1_1.pth", plain=True)  # 80 classes, dataset 5
    code = main([f"--trained_model={path}", "--val_ann", data["val_ann_file"],
                 "--val_images", data["val_image_dir"], "--cuda=False", "--no_bar"])  # fmt: skip
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 1 and len(errors) == 1 and "80 classes" in errors[0] and "5 " in errors[0]


def test_eval_py_only_val_ann(data, capsys, synthetic_ckpt):
    code = main([f"--trained_model={synthetic_ckpt}", "--val_ann", data["val_ann_file"]])
    assert code == 1 and "--val_images" in capsys.readouterr().err


def test_eval_py_named_dataset_missing(tmp_path, capsys, monkeypatch, synthetic_ckpt):
    monkeypatch.chdir(tmp_path)  # no data/coco here
    code = main([f"--trained_model={synthetic_ckpt}", "--dataset=coco2017_val", "--no_bar"])
    err = capsys.readouterr().err
    assert code == 1 and "instances_val2017.json" in err and "Traceback" not in err


def test_eval_py_test_dev_writes_results_only(data, tmp_path, capsys, synthetic_ckpt):
    info = read_json(data["val_ann_file"])
    del info["annotations"]
    ann = tmp_path / "image_info_test-dev.json"
    ann.write_text(json.dumps(info), encoding="utf-8")
    bbox, mask, metrics = tmp_path / "b.json", tmp_path / "m.json", tmp_path / "metrics.json"
    code = main([
        f"--trained_model={synthetic_ckpt}", f"--val_ann={ann}",
        f"--val_images={data['val_image_dir']}", f"--bbox_det_file={bbox}",
        f"--mask_det_file={mask}", f"--metrics_json={metrics}", "--max_images=2",
        "--cuda=False", "--no_bar",
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0 and "no annotations" in err
    results = read_json(str(mask))
    assert results and {r["image_id"] for r in results} <= {1, 2}
    assert len(read_json(str(bbox))) == len(results)
    assert read_json(str(metrics))["segm"] is None


def test_match_classes(data, tmp_path):
    dataset = val_dataset(data)
    same, note = match_classes(dataset, SYNTHETIC_CLASSES)
    assert same is dataset and note is None
    reordered, note = match_classes(dataset, SYNTHETIC_CLASSES[::-1])
    assert note is None and reordered.class_names == SYNTHETIC_CLASSES[::-1]
    assert reordered.label_to_category_id == [5, 4, 3, 2, 1]
    renamed, note = match_classes(dataset, ("a", "b", "c", "d", "e"))
    assert renamed.class_names == SYNTHETIC_CLASSES and "differ" in note
    with pytest.raises(DatasetError, match="predicts 3 classes.*has 5 categories"):
        match_classes(dataset, ("a", "b", "c"))


def _worker(rank: int, world_size: int, port: int, data: dict[str, str], out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        dataset = val_dataset(data)
        predictor = GroundTruthPredictor(dataset, keep=lambda i: i % 2 == 0)
        result = evaluate_dataset(
            predictor, dataset, progress=False, rank=rank, world_size=world_size
        )
        if rank == 0:
            write_metrics(result, out)
            write_results(result, out + ".bbox", out + ".segm")
        else:
            assert result.metrics is None and result.num_images == 3
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_matches_one_process(data, tmp_path):
    dataset = val_dataset(data)
    single = evaluate_dataset(
        GroundTruthPredictor(dataset, keep=lambda i: i % 2 == 0), dataset, progress=False
    )
    out = str(tmp_path / "dist_metrics.json")
    mp.spawn(_worker, args=(2, free_port(), data, out), nprocs=2, join=True)
    saved = read_json(out)
    assert saved["bbox"] == single.metrics["bbox"] and saved["segm"] == single.metrics["segm"]
    assert saved["per_class"] == single.per_class and saved["num_images"] == 6
    assert read_json(out + ".segm") == single.segm_results


def test_tables_and_summary_line_print_ap_from_0_to_1():
    """One unit everywhere: the 0-1 fractions of COCOeval and --metrics_json, labelled."""
    from yolact.engine.evaluate import EvalResult, format_aps

    metrics = {
        "bbox": dict(zip(STAT_NAMES, [0.5, 1.0, 0.25, -1.0, 0.123456, 0.9])),
        "segm": dict(zip(STAT_NAMES, [0.4, 0.8, 0.2, -1.0, 0.1, 0.7])),
    }
    per_class = {"bbox": {"circle": 0.5, "square": -1.0}, "segm": {"circle": 0.4, "square": -1.0}}
    per_iou = {"bbox": [0.5] * 10, "segm": [0.4] * 10}
    result = EvalResult(metrics, per_class, [], [], 2, per_iou)
    lines = result.table().splitlines()
    assert lines[:5] == [
        "AP (0-1) |   AP   |  AP50  |  AP75  |  APs   |  APm   |  APl   |",
        "---------+--------+--------+--------+--------+--------+--------+",
        "     box | 0.5000 | 1.0000 | 0.2500 |   -    | 0.1235 | 0.9000 |",
        "    mask | 0.4000 | 0.8000 | 0.2000 |   -    | 0.1000 | 0.7000 |",
        "---------+--------+--------+--------+--------+--------+--------+",
    ]
    assert lines[6].startswith("AP (0-1) |  all   |  .50   |  .55   |")
    assert lines[8].startswith("     box | 0.5000 | 0.5000 |")
    assert lines[12:16] == [
        "class AP (0-1) |  box   |  mask  |",
        "---------------+--------+--------+",
        "        circle | 0.5000 | 0.4000 |",
        "        square |   -    |   -    |",
    ]
    assert format_aps(metrics) == "box AP 0.5000, mask AP 0.4000 (0-1)"
