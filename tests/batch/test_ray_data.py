"""Issue 20 item 3: the Ray Data mapper on a local Ray cluster (2 CPUs, loopback)
gives exactly the detections of ``eval.py --output_json`` and ``yolact predict``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, demo_scene, kept_signal_handlers, run_main

from yolact.batch import predict
from yolact.batch.jsonl import read_records
from yolact.batch.ray_data import YolactMapper, row_record
from yolact.batch.records import to_coco_results

WEIGHTS = str(REPO / "weights" / "yolact_tiny_synthetic.pth")
N_IMAGES = 5


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for i in range(N_IMAGES):
        cv2.imwrite(str(folder / f"scene_{i}.png"), demo_scene(i + 10))
    return folder


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[object]:
    """One local Ray cluster of 2 CPUs on the loopback address for the whole module."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    with kept_signal_handlers():
        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                 configure_logging=False, log_to_driver=False)  # fmt: skip
        ray.data.DataContext.get_current().enable_progress_bars = False
        try:
            yield ray
        finally:
            ray.shutdown()


def map_with_ray(ray, ds, batch_size: int) -> list[dict]:
    """The records of ``ds`` mapped by 2 actors (0.75 CPU each: the reads get the rest)."""
    out = ds.map_batches(
        YolactMapper,
        fn_constructor_kwargs={"model_path": WEIGHTS, "device": "cpu", "threads": 1,
                               "batch_size": batch_size},
        compute=ray.data.ActorPoolStrategy(size=2), num_cpus=0.75, batch_size=4,
    )  # fmt: skip
    records = [row_record(row) for row in out.take_all()]
    return sorted(records, key=lambda r: r["path"])


def test_files_read_as_bytes_give_eval_output_json_exactly(ray_cluster, images, tmp_path, capsys):
    ray = ray_cluster
    code, _, err = run_main(capsys, f"--trained_model={WEIGHTS}",
                            f"--images={images}:{tmp_path / 'drawn'}",
                            f"--output_json={tmp_path / 'eval.json'}")  # fmt: skip
    assert code == 0, err
    ds = ray.data.read_binary_files(str(images), include_paths=True, num_cpus=0.25)
    records = map_with_ray(ray, ds, batch_size=1)
    assert [r["file_name"] for r in records] == [f"scene_{i}.png" for i in range(N_IMAGES)]
    for i, r in enumerate(records):
        r["image_id"] = i  # eval.py numbers a folder's images in name order
    expected = json.loads((tmp_path / "eval.json").read_text())
    assert len(expected) > N_IMAGES
    # Exactly (every float and every RLE string): one image a network call, as eval.py.
    assert to_coco_results(records) == expected


def test_read_images_batches_equal_predict_with_the_same_batch_size(
    ray_cluster, images, tmp_path, capsys
):
    ray = ray_cluster
    out = tmp_path / "p.jsonl"
    assert predict.main([f"--trained_model={WEIGHTS}", "--device=cpu", f"--source={images}",
                         f"--out={out}", "--batch_size=4"]) == 0  # fmt: skip
    expected = [{k: v for k, v in r.items() if k != "image_id"} for r in read_records(str(out))]
    ds = ray.data.read_images(str(images), include_paths=True, mode="RGB", num_cpus=0.25)
    records = map_with_ray(ray, ds, batch_size=4)
    for r in records:
        r["path"] = str(Path(r["path"]))
    # Exactly: PNG pixels decode alike in PIL and OpenCV, every call is 4 images.
    assert records == expected


def test_mapper_without_ray_reports_unusable_rows_in_their_column(images):
    mapper = YolactMapper(WEIGHTS, device="cpu", batch_size=2)
    good = (images / "scene_0.png").read_bytes()
    out = mapper({"bytes": np.array([good, b"junk"], dtype=object),
                  "path": np.array(["a/scene_0.png", "b/junk.png"], dtype=object)})  # fmt: skip
    assert list(out["file_name"]) == ["scene_0.png", "junk.png"]
    assert list(out["error"]) == ["", "cannot decode image (corrupt or not an image)"]
    assert (out["height"].tolist(), out["width"].tolist()) == ([120, 0], [160, 0])
    assert json.loads(out["detections"][1]) == [] and out["num_detections"][1] == 0
    assert len(json.loads(out["detections"][0])) == out["num_detections"][0] > 0
    rgb = cv2.cvtColor(demo_scene(10), cv2.COLOR_BGR2RGB)
    same = mapper({"image": np.array([rgb])})
    direct = mapper({"bytes": np.array([(images / "scene_0.png").read_bytes()], dtype=object)})
    assert same["detections"][0] == direct["detections"][0]
    with pytest.raises(KeyError, match="a batch needs an 'image' or a 'bytes' column"):
        mapper({"pixels": np.zeros(1)})
