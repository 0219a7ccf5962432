"""python -m yolact.demo end to end at a reduced size (tiny dataset, a few iterations)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import pytest
import torch
from conftest import REPO

from yolact.data.synthetic import SYNTHETIC_CLASSES
from yolact.demo import DemoResult, main, run_demo
from yolact.registry import read_checkpoint


def frame_count(path: str) -> int:
    cap = cv2.VideoCapture(path)
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    return count


@pytest.fixture(scope="module")
def trained_demo(tmp_path_factory) -> tuple[dict[str, Path], DemoResult, str]:
    """One demo run that trains its model (3 iterations), shared by the tests that need
    one: its folders, its result and what it printed."""
    root = tmp_path_factory.mktemp("demo")
    d = {"data": root / "data", "weights": root / "w" / "tiny.pth", "out": root / "out"}
    torch.manual_seed(0)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")  # the autouse pin is function-scoped
        result = run_demo(
            out=str(d["out"]), data_dir=str(d["data"]), weights=str(d["weights"]),
            iterations=3, num_train=8, num_val=3, image_size=96, video_frames=6,
            batch_size=4, progress=False, amp=True,
        )  # fmt: skip
    return d, result, printed.getvalue()


def test_demo_trains_evaluates_and_draws(trained_demo) -> None:
    d, result, printed = trained_demo
    assert result.trained and d["weights"].is_file()
    assert (d["data"] / "annotations" / "train.json").is_file()
    for name in ("metrics.json", "demo_input.mp4", "demo_masks.mp4"):
        assert (d["out"] / name).is_file(), name
    assert frame_count(result.output_video) == frame_count(result.input_video) == 6
    for iou_type in ("bbox", "segm"):
        ap = result.metrics[iou_type]["AP"]
        assert isinstance(ap, float) and 0.0 <= ap <= 1.0
    stored = json.loads((d["out"] / "metrics.json").read_text())
    assert stored["segm"]["AP"] == pytest.approx(result.metrics["segm"]["AP"])
    # The cached file is slim and self-describing: weights, config, class names.
    ckpt = read_checkpoint(str(d["weights"]))
    assert ckpt.config is not None and ckpt.config.name == "yolact_tiny"
    assert tuple(ckpt.config.class_names) == SYNTHETIC_CLASSES
    assert ckpt.meta["iteration"] == 3 and "optimizer" not in ckpt.meta
    assert "python train.py --config=yolact_tiny" in printed and " --amp" in printed
    # 3 iterations: the config's steps (1800 and 2250 of 2400) at the same fractions.
    assert " --max_iter=3 --lr_steps=2,3" in printed
    box, mask = result.metrics["bbox"]["AP"], result.metrics["segm"]["AP"]
    assert f"box AP {box:.4f}, mask AP {mask:.4f} (0-1) on 3 images" in printed


def test_demo_reuses_the_cached_model(trained_demo, tmp_path, capsys) -> None:
    d, _, _ = trained_demo
    before = d["weights"].stat().st_mtime_ns
    out = tmp_path / "out"  # its own outputs: the trained run's stay as they were
    argv = [f"--out={out}", f"--data_dir={d['data']}", f"--weights={d['weights']}",
            "--size=96", "--frames=4", "--num_val=3", "--no_bar"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "using the trained model" in printed and "using the synthetic dataset" in printed
    assert "python train.py" not in printed
    assert d["weights"].stat().st_mtime_ns == before
    assert frame_count(str(out / "demo_masks.mp4")) == 4


def test_prepare_dataset_writes_only_what_the_run_needs(tmp_path, capsys) -> None:
    from yolact.demo import prepare_dataset

    root = tmp_path / "syn"
    paths = prepare_dataset(str(root), 0, 2, 48)  # evaluation only: no training split
    assert not (root / "train").exists() and len(list((root / "val").iterdir())) == 2
    assert not (root / "annotations" / "train.json").exists()
    val = (root / "annotations" / "val.json").read_text()
    paths = prepare_dataset(str(root), 3, 2, 48)  # training needs them: written now
    assert len(list((root / "train").iterdir())) == 3
    assert (root / "annotations" / "val.json").read_text() == val  # the same val split
    prepare_dataset(str(root), 1, 2, 48)  # enough already there
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(" ")[1] for line in printed] == ["writing", "writing", "using"]
    assert paths["train_image_dir"] == str(root / "train")


SHIPPED = REPO / "weights" / "yolact_tiny_synthetic.pth"


def test_shipped_demo_model_reaches_half_mask_ap(tmp_path) -> None:
    """The checkpoint in the repository scores mask AP >= 0.50 on the demo's val split."""
    from yolact.data.coco import CocoDataset
    from yolact.demo import IMAGE_SIZE, NUM_VAL, prepare_dataset
    from yolact.engine.evaluate import evaluate_dataset
    from yolact.predictor import Predictor

    assert SHIPPED.is_file() and SHIPPED.stat().st_size < 8 * 2**20  # a few MB, float16
    paths = prepare_dataset(str(tmp_path / "syn"), 0, NUM_VAL, IMAGE_SIZE)
    predictor = Predictor.from_checkpoint(str(SHIPPED), device="cpu")
    assert predictor.class_names == SYNTHETIC_CLASSES
    val = CocoDataset(
        paths["val_ann_file"], paths["val_image_dir"], class_names=predictor.class_names
    )
    metrics = evaluate_dataset(predictor, val, progress=False).metrics
    assert metrics["segm"]["AP"] >= 0.50, metrics
    assert metrics["bbox"]["AP"] >= 0.40, metrics


def test_demo_cli_picks_the_shipped_weights_unless_training(monkeypatch, tmp_path) -> None:
    import yolact.demo as demo

    calls = []

    def fake_run(out, data_dir, weights, iterations, train, *rest, **kw):
        calls.append((weights, train, iterations, kw["amp"]))
        return demo.DemoResult({}, weights, train, "in.mp4", "out.mp4")

    monkeypatch.setattr(demo, "run_demo", fake_run)
    out = str(tmp_path / "o")
    assert demo.main([f"--out={out}"]) == 0
    assert demo.main([f"--out={out}", "--train", "--iterations=7", "--amp=False"]) == 0
    assert demo.main([f"--out={out}", "--force", "--weights=w.pth", "--amp=True"]) == 0
    assert calls == [
        (demo.WEIGHTS, False, None, None),
        (str(tmp_path / "o" / "yolact_tiny_synthetic.pth"), True, 7, False),
        ("w.pth", True, None, True),
    ]


def test_demo_trains_in_mixed_precision_where_it_is_fast(monkeypatch, tmp_path) -> None:
    """Mixed precision on CUDA or a CPU with bfloat16, and then 3200 iterations by
    default; float32 keeps the config's schedule (training stubbed out)."""
    import yolact.demo as demo

    seen: list[tuple] = []

    def fake_train(paths, weights, work_dir, iterations, *rest):
        seen.append((iterations, rest[-1]))
        raise SystemExit("stop")

    monkeypatch.setattr(demo, "train_model", fake_train)
    monkeypatch.setattr(demo, "prepare_dataset", lambda *a: {})
    for amp in (True, False):
        with pytest.raises(SystemExit):
            run_demo(out=str(tmp_path), weights=str(tmp_path / "w.pth"), force=True, amp=amp)
    with pytest.raises(SystemExit):
        run_demo(out=str(tmp_path), weights=str(tmp_path / "w.pth"), iterations=5, amp=True)
    assert seen == [(demo.AMP_ITERATIONS, True), (None, False), (5, True)]

    for cuda, bf16, expected in ((False, False, False), (False, True, True), (True, False, True)):
        monkeypatch.setattr(demo.torch.cuda, "is_available", lambda c=cuda: c)
        monkeypatch.setattr(demo, "cpu_has_bf16", lambda b=bf16: b)
        assert demo.default_amp() is expected


def _train(ann: Path, images: Path, save: Path, config: str = "yolact_tiny") -> int:
    from yolact.cli import train_cli

    argv = [f"--config={config}", f"--train_ann={ann}", f"--train_images={images}",
            f"--save_folder={save}", "--batch_size=2", "--max_iter=1", "--num_workers=0",
            "--no_bar", "--validation_epoch=-1", "--save_interval=0", "--device=cpu"]  # fmt: skip
    return train_cli.main(argv)


def test_the_documented_synthetic_command_writes_splits_that_train(tmp_path, capsys) -> None:
    from yolact.data.synthetic import main as synthetic

    out = tmp_path / "syn"
    argv = ["--out", str(out), "--train", "4", "--val", "2", "--varied", "--sizes", "64", "96"]
    assert synthetic(argv) == 0
    for config in ("yolact_tiny", "mask_rcnn_tiny"):
        code = _train(out / "annotations" / "train.json", out / "train", tmp_path / config, config)
        assert code == 0, capsys.readouterr().err
        assert (tmp_path / config / f"{config}_0_1.pth").is_file()


def test_training_on_a_missing_or_empty_split_is_one_clear_error(tmp_path, capsys) -> None:
    from yolact.demo import prepare_dataset

    root = tmp_path / "syn"
    prepare_dataset(str(root), 0, 2, 48)  # what the demo leaves without --train
    missing = root / "annotations" / "train.json"
    val = json.loads((root / "annotations" / "val.json").read_text())
    empty, listing = tmp_path / "empty.json", tmp_path / "list.json"
    empty.write_text(json.dumps({**val, "images": [], "annotations": []}))
    listing.write_text(json.dumps({"images": val["images"]}))
    cases = {
        missing: f"error: annotation file not found: {missing}",
        empty: f"error: the training set has no images: {empty}",
        listing: "error: no 'annotations' list (an image list, for inference only): "
        f"cannot train on {listing}",
    }
    capsys.readouterr()
    for ann_file, expected in cases.items():
        assert _train(ann_file, root / "val", tmp_path / "w") == 1
        err = capsys.readouterr().err
        assert [line for line in err.splitlines() if "error" in line.lower()] == [expected]
        assert "Traceback" not in err
