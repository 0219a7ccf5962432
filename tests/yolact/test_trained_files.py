"""Files train.py writes, the demo model and plain state dicts, evaluated with a named
config: the architecture from the config, the classes from the file; --resume without
the dataset flags."""

from __future__ import annotations

import json
import logging
import os
import shutil

import cv2
import pytest
import torch
from conftest import REPO

from yolact.cli.eval_cli import main as eval_main
from yolact.cli.train_cli import main as train_main
from yolact.core.weights import CheckpointError
from yolact.data.synthetic import SYNTHETIC_CLASSES, write_coco_dataset
from yolact.models.yolact.model import Yolact, build_model
from yolact.predictor import Predictor
from yolact.registry import get_config, read_checkpoint, resolve_config

DEMO = str(REPO / "weights" / "yolact_tiny_synthetic.pth")
THREE = SYNTHETIC_CLASSES[:3]


pytestmark = pytest.mark.usefixtures("one_thread")


def _keep_classes(ann_file: str, count: int, out_file: str) -> None:
    """Write ``ann_file`` with only its first ``count`` categories and their annotations."""
    with open(ann_file) as f:
        data = json.load(f)
    data["categories"] = [c for c in data["categories"] if c["id"] <= count]
    data["annotations"] = [a for a in data["annotations"] if a["category_id"] <= count]
    with open(out_file, "w") as f:
        json.dump(data, f)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    """The synthetic shapes at 96 px (5 classes), and the same images with 3 classes."""
    root = tmp_path_factory.mktemp("shapes")
    paths = write_coco_dataset(str(root), num_train=4, num_val=2, size=(96, 96), max_objects=3)
    for split in ("train", "val"):
        three = str(root / "annotations" / f"{split}3.json")
        _keep_classes(paths[f"{split}_ann_file"], 3, three)
        paths[f"{split}3_ann_file"] = three
    return paths


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> str:
    """A yolact_tiny checkpoint of a 2-iteration train.py run on the 3-class dataset."""
    folder = tmp_path_factory.mktemp("run")
    code = train_main([
        "--config=yolact_tiny", f"--train_ann={data['train3_ann_file']}",
        f"--train_images={data['train_image_dir']}", f"--val_ann={data['val3_ann_file']}",
        f"--val_images={data['val_image_dir']}", "--batch_size=2", "--max_iter=2",
        "--num_workers=0", f"--save_folder={folder}", "--validation_epoch=-1", "--no_bar",
        "--device=cpu",
    ])  # fmt: skip
    assert code == 0
    (path,) = [str(p) for p in folder.glob("yolact_tiny_*_2.pth")]
    return path


def _image(data: dict[str, str]):
    return cv2.imread(os.path.join(data["val_image_dir"], "000001.png"))


def _same_detections(a: Predictor, b: Predictor, image) -> None:
    da, db = a(image), b(image)
    assert len(da) == len(db)
    for key in ("boxes", "scores", "labels", "masks"):
        assert torch.equal(getattr(da, key), getattr(db, key)), key


def _error_lines(err: str) -> list[str]:
    assert "Traceback" not in err
    return [ln for ln in err.strip().splitlines() if ln.startswith("error:")]


def test_train_py_file_with_the_config_it_was_trained_with(trained, data, tmp_path, capsys):
    ckpt = read_checkpoint(trained)
    assert ckpt.config.name == "yolact_tiny" and ckpt.config.class_names == THREE
    predictor = Predictor.from_checkpoint(trained, config="yolact_tiny", device="cpu")
    assert tuple(predictor.class_names) == THREE
    _same_detections(predictor, Predictor.from_checkpoint(trained, device="cpu"), _image(data))
    metrics = tmp_path / "m.json"
    code = eval_main(["--no_bar", "--cuda=False", f"--trained_model={trained}",
                      "--config=yolact_tiny", f"--val_ann={data['val3_ann_file']}",
                      f"--val_images={data['val_image_dir']}",
                      f"--metrics_json={metrics}"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = [ln.split("|")[0].strip() for ln in out.splitlines() if "|" in ln]
    assert [r for r in rows if r in SYNTHETIC_CLASSES] == list(THREE)
    assert list(json.loads(metrics.read_text())["per_class"]["segm"]) == list(THREE)


def test_demo_model_with_config_yolact_tiny(data, tmp_path, capsys):
    named = Predictor.from_checkpoint(DEMO, config="yolact_tiny", device="cpu")
    assert named.cfg.name == "yolact_tiny" and tuple(named.class_names) == SYNTHETIC_CLASSES
    _same_detections(named, Predictor.from_checkpoint(DEMO, device="cpu"), _image(data))
    src = os.path.join(data["val_image_dir"], "000001.png")
    code = eval_main(["--no_bar", "--cuda=False", f"--trained_model={DEMO}",
                      "--config=yolact_tiny", f"--image={src}:{tmp_path / 'o.png'}"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith(f"{src}: ") and any(f": {n} " in first for n in SYNTHETIC_CLASSES)


def test_val_ann_categories_must_agree_with_the_file(trained, data, capsys):
    val3 = os.path.basename(data["val3_ann_file"])
    code = eval_main(["--no_bar", "--cuda=False", f"--trained_model={DEMO}",
                      "--config=yolact_tiny", f"--val_ann={data['val3_ann_file']}",
                      f"--val_images={data['val_image_dir']}"])  # fmt: skip
    assert code == 1
    assert _error_lines(capsys.readouterr().err) == [
        f"error: {val3} does not fit {DEMO}: its 3 categories (circle, square, triangle) are "
        "not the 5 classes the model was trained on (circle, square, triangle, star, cross)"
    ]
    with pytest.raises(CheckpointError, match="its 5 categories .* not the 3 classes"):
        Predictor.from_checkpoint(trained, config="yolact_tiny", class_names=SYNTHETIC_CLASSES)
    # The same names in another order are the same classes.
    cfg, _ = resolve_config(trained, "yolact_tiny", THREE[::-1])
    assert cfg.class_names == THREE


def test_another_architecture_is_still_an_error(tmp_path, capsys):
    """A yolact_base file (stored config and plain) is no yolact_tiny model."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in Yolact(get_config("yolact_base")).state_dict().items()}
    state = {k: torch.zeros(()).expand(s) for k, s in shapes.items()}
    own, plain = tmp_path / "base_own.pth", tmp_path / "yolact_base_54_800000.pth"
    torch.save({"model": state, "config": get_config("yolact_base").to_dict()}, own)
    torch.save(state, plain)
    short = f"{own} holds a 'yolact_base' model, not 'yolact_tiny'; use --config=yolact_base"
    for path in (own, plain):
        match = "does not fit config 'yolact_tiny'" if path == plain else short
        with pytest.raises(CheckpointError, match=match):
            Predictor.from_checkpoint(str(path), config="yolact_tiny")
        code = eval_main(["--no_bar", "--cuda=False", f"--trained_model={path}",
                          "--config=yolact_tiny", f"--image={tmp_path / 'a.png'}"])  # fmt: skip
        lines = _error_lines(capsys.readouterr().err)
        assert code == 1 and len(lines) == 1
        if path == own:  # the file names its config: one short line, no key lists
            assert lines[0] == f"error: {short} or leave it out", lines[0]
            continue
        assert lines[0].startswith(
            f"error: {path} does not fit config 'yolact_tiny': missing keys: "
            "prediction_layers.0.bbox_extra.0.weight, "
        ), lines[0]
        assert "; unexpected keys: backbone.layers.0.0.conv3.weight, " in lines[0]
        assert "shape mismatch (file vs model): backbone.conv1.weight (64, 3, 7, 7) vs " in lines[0]


@pytest.fixture(scope="module")
def plain_three(tmp_path_factory) -> tuple[str, dict[str, torch.Tensor]]:
    """A 3-class yolact_tiny in the original layout (a plain state dict, no names)."""
    torch.manual_seed(5)
    state = build_model(get_config("yolact_tiny").replace(class_names=("a", "b", "c"))).state_dict()
    path = tmp_path_factory.mktemp("plain") / "shapes_model.pth"
    torch.save(state, path)
    return str(path), state


def test_plain_state_dict_takes_its_class_count_from_the_weights(plain_three, caplog):
    path, state = plain_three
    with caplog.at_level(logging.WARNING):
        cfg, _ = resolve_config(path, "yolact_tiny")
    assert cfg.name == "yolact_tiny" and cfg.class_names == ("class_1", "class_2", "class_3")
    assert [r.getMessage() for r in caplog.records] == [
        f"{path} predicts 3 classes and stores no class names: calling them class_1..class_3 "
        "(give --val_ann to name them)"
    ]
    caplog.clear()
    predictor = Predictor.from_checkpoint(path, config="yolact_tiny", class_names=THREE)
    assert tuple(predictor.class_names) == THREE and not caplog.records
    loaded = predictor.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    with pytest.raises(CheckpointError) as err:
        resolve_config(path, "yolact_tiny", SYNTHETIC_CLASSES, "val.json")
    assert str(err.value) == (
        f"val.json does not fit {path}: it has 5 categories, the model's class layer "
        "predicts 3 classes"
    )


def test_plain_state_dict_named_by_val_ann_in_eval_py(plain_three, data, capsys):
    path, _ = plain_three
    code = eval_main(["--no_bar", "--cuda=False", f"--trained_model={path}",
                      "--config=yolact_tiny", f"--val_ann={data['val3_ann_file']}",
                      f"--val_images={data['val_image_dir']}"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = [ln.split("|")[0].strip() for ln in out.splitlines() if "|" in ln]
    assert [r for r in rows if r in SYNTHETIC_CLASSES] == list(THREE)
    assert "class_1" not in out + err


def test_resume_without_dataset_flags(trained, data, tmp_path, capsys):
    stored = read_checkpoint(trained).meta["data"]
    assert stored == {
        "train_ann": os.path.abspath(data["train3_ann_file"]),
        "train_images": os.path.abspath(data["train_image_dir"]),
        "val_ann": os.path.abspath(data["val3_ann_file"]),
        "val_images": os.path.abspath(data["val_image_dir"]),
    }
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(trained, folder)
    common = ["--config=yolact_tiny", "--resume=latest", f"--save_folder={folder}",
              "--batch_size=2", "--num_workers=0", "--no_bar", "--device=cpu",
              "--validation_epoch=-1"]  # fmt: skip
    assert train_main([*common, "--max_iter=3"]) == 0
    out = capsys.readouterr().out
    assert "finished at iteration 3" in out
    (last,) = folder.glob("yolact_tiny_*_3.pth")
    resumed = read_checkpoint(str(last))
    assert resumed.meta["data"] == stored and resumed.config.class_names == THREE
    # Explicit flags win over the stored paths.
    code = train_main([*common, "--max_iter=4", "--train_ann=/nope.json", "--train_images=/nope"])
    assert code == 1 and "annotation file not found: /nope.json" in capsys.readouterr().err
    # Stored paths that are gone: said so, with the flags to use instead.
    gone = dict(torch.load(last, weights_only=True))
    gone["data"] = {**stored, "train_ann": str(tmp_path / "moved.json")}
    torch.save(gone, folder / "yolact_tiny_9_9.pth")
    assert train_main([*common, "--max_iter=10"]) == 1
    assert _error_lines(capsys.readouterr().err) == [
        f"error: annotation file not found: {tmp_path / 'moved.json'} (a path stored in "
        f"{folder / 'yolact_tiny_9_9.pth'}; give --train_ann/--train_images and "
        "--val_ann/--val_images)"
    ]


def test_resume_by_path_takes_the_config_stored_in_the_file(trained, tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    start = read_checkpoint(trained)
    args = ["--resume", str(trained), f"--save_folder={folder}", "--batch_size=2",
            "--num_workers=0", "--no_bar", "--device=cpu", "--validation_epoch=-1",
            f"--max_iter={start.meta['iteration'] + 1}"]  # fmt: skip
    assert train_main(args) == 0
    (last,) = folder.glob("yolact_tiny_*.pth")
    resumed = read_checkpoint(str(last))
    assert resumed.meta["iteration"] == start.meta["iteration"] + 1
    assert resumed.config.name == "yolact_tiny" and resumed.config.class_names == THREE
    assert resumed.config.backbone == start.config.backbone


def test_named_config_decodes_a_file_as_it_was_trained(data, tmp_path):
    # Trained with other anchors and input size than today's yolact_tiny (--set):
    # naming the config must not swap its priors for the named config's.
    code = train_main([
        "--config=yolact_tiny", f"--train_ann={data['train_ann_file']}",
        f"--train_images={data['train_image_dir']}", "--batch_size=2", "--max_iter=1",
        "--num_workers=0", f"--save_folder={tmp_path}", "--validation_epoch=-1", "--no_bar",
        "--device=cpu", "--set", "max_size=128", "scales=((12,), (24,), (48,), (96,), (192,))",
    ])  # fmt: skip
    assert code == 0
    (path,) = [str(p) for p in tmp_path.glob("yolact_tiny_*_1.pth")]
    named = Predictor.from_checkpoint(path, config="yolact_tiny", device="cpu")
    assert named.cfg.max_size == 128 and named.cfg.scales[0] == (12,)
    _same_detections(named, Predictor.from_checkpoint(path, device="cpu"), _image(data))
    # Another config name still means that config's architecture.
    with pytest.raises(CheckpointError):
        Predictor.from_checkpoint(path, config="yolact_base", device="cpu")
