"""Issue 20 item 4: the Ray Serve deployment on a local cluster (loopback HTTP)
answers with exactly the predictor's detections, batching concurrent requests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from conftest import REPO, demo_scene, free_port, kept_signal_handlers

from yolact.batch.fixed import FixedBatchPredictor
from yolact.batch.records import detection_entries
from yolact.core.predictor import Predictor
from yolact.io.coco_json import category_ids_for

WEIGHTS = str(REPO / "weights" / "yolact_tiny_synthetic.pth")
BATCH = 4


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """The deployment served on 127.0.0.1 by a local Ray cluster of 2 CPUs."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.serve")
    from ray import serve

    from yolact.batch.serve import yolact_app

    port = free_port()
    with kept_signal_handlers():
        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                 configure_logging=False, log_to_driver=False)  # fmt: skip
        try:
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            app = yolact_app(WEIGHTS, batch_size=BATCH, device="cpu", threads=1,
                             max_wait_s=0.05)  # fmt: skip
            serve.run(app, name="yolact", route_prefix="/detect")
            yield f"http://127.0.0.1:{port}/detect"
        finally:
            serve.shutdown()
            ray.shutdown()


def post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_concurrent_requests_get_the_predictors_detections(url):
    images = [demo_scene(20 + i) for i in range(6)]
    bodies = [cv2.imencode(".png" if i % 2 else ".jpg", im)[1].tobytes()
              for i, im in enumerate(images)]  # fmt: skip
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda b: post(url, b), bodies))
    predictor = Predictor.from_checkpoint(WEIGHTS, device="cpu", top_k=None)
    decoded = [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b in bodies]
    dets = FixedBatchPredictor(predictor, BATCH)(decoded)
    ids = category_ids_for(predictor.class_names)
    expected = [(200, {"height": 120, "width": 160, "detections": detection_entries(d, ids)})
                for d in dets]  # fmt: skip
    assert sum(len(r["detections"]) for _, r in expected) > len(images)
    # Exactly: every call is padded to the batch size, whichever requests it held.
    assert answers == expected


def test_a_body_that_is_no_image_gets_400_and_one_reason(url):
    assert post(url, b"not an image") == (
        400, {"error": "cannot decode image (corrupt or not an image)"}
    )  # fmt: skip


def test_a_handle_gets_the_same_record_as_http(url):
    from ray import serve

    body = cv2.imencode(".png", demo_scene(30))[1].tobytes()
    record = serve.get_app_handle("yolact").predict.remote(body).result(timeout_s=120)
    assert post(url, body) == (200, record)
    assert record["height"] == 120 and len(record["detections"]) > 0


def test_batch_stats_count_the_network_calls_and_their_images(url):
    """Four concurrent requests: one replica holds four at a time (one batch), so they
    make 1 to 4 padded network calls; the real images are counted once each."""
    from ray import serve

    handle = serve.get_app_handle("yolact")
    before = handle.batch_stats.remote().result(timeout_s=120)
    bodies = [cv2.imencode(".jpg", demo_scene(50 + i))[1].tobytes() for i in range(4)]
    with ThreadPoolExecutor(len(bodies)) as pool:
        statuses = [status for status, _ in pool.map(lambda b: post(url, b), bodies)]
    post(url, b"not an image")  # counted nowhere: no network call
    after = handle.batch_stats.remote().result(timeout_s=120)
    assert statuses == [200] * 4 and after["replica"] == before["replica"]
    assert after["images"] - before["images"] == 4
    assert 1 <= after["batches"] - before["batches"] <= 4
