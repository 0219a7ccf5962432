"""Ray Serve: detections over HTTP, requests batched dynamically (``serve.batch``).

::

    import ray
    from ray import serve
    from yolact.batch.serve import yolact_app

    ray.init(address="auto")                      # or ray.init() for this machine
    serve.start(http_options={"host": "0.0.0.0", "port": 8000})
    serve.run(yolact_app("yolact_base_54_800000.pth", batch_size=4), route_prefix="/detect")
    # CPUs: one single-threaded replica per core, e.g. yolact_app(path, num_replicas=8)

    curl --data-binary @photo.jpg http://HOST:8000/detect

A request's body is an encoded image (JPEG, PNG, any format OpenCV reads: the
file's bytes, no base64); the answer is the compact JSON record of
:mod:`yolact.batch.records` (``height``, ``width``, ``detections`` with COCO RLE
masks), or status 400 and ``{"error": ...}`` for a body that is no image (from
Python, a deployment handle's ``predict`` gives the same record without HTTP).
Requests that arrive together are run as one batch of up to ``batch_size``
images (waiting at most ``max_wait_s`` for it to fill); every network call is
padded to ``batch_size`` so that an answer does not depend on the requests it
was batched with: it equals ``yolact predict --batch_size`` on the same file,
byte for byte. The network runs on a worker thread.

Throughput: a padded call costs a full batch, so batches should be full. By
default a replica takes ``batch_size`` requests at a time
(``max_ongoing_requests``) and Serve's router queues the rest and spreads them
over the replicas, so every batch fills as soon as enough requests are waiting;
each replica's torch threads default to its ``num_cpus``. On a CPU machine, one
replica per core with one thread each (``num_replicas=cores, num_cpus=1``) uses
the cores better than one replica with several threads, whose threads wait for
each other whenever the proxy or another process takes a core
(docs/benchmarks.md, "Batch inference and serving").
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from yolact.batch.fixed import FixedBatchPredictor
from yolact.batch.ray_data import decode
from yolact.batch.records import detection_entries
from yolact.core.images import InputError
from yolact.io.coco_json import category_ids_for


class YolactServer:
    """The deployment's class: one predictor per replica.

    Args:
        model_path: a checkpoint, an ``.onnx`` file or an OpenVINO folder.
        batch_size: the largest batch (and the size every call is padded to).
        max_wait_s: how long a batch waits for more requests.
        score_threshold, device, threads, config: as ``yolact predict``.
    """

    def __init__(
        self,
        model_path: str,
        *,
        batch_size: int = 4,
        max_wait_s: float = 0.05,
        score_threshold: float = 0.0,
        device: str | None = None,
        threads: int | None = None,
        config: str | None = None,
    ) -> None:
        self.predictor = FixedBatchPredictor.load(
            model_path, batch_size, score_threshold=score_threshold, device=device,
            threads=threads, config=config,
        )  # fmt: skip
        self.category_ids = category_ids_for(self.predictor.class_names)
        batched: Any = self.detect  # serve.batch's wrapper: its settings per replica
        batched.set_max_batch_size(batch_size)
        batched.set_batch_wait_timeout_s(max_wait_s)
        self.batches = self.images = 0

    def batch_stats(self) -> dict[str, Any]:
        """This replica's id, the network calls it ran and the real images in them
        (each call costs a full batch, so ``images / batches`` below ``batch_size``
        is work spent on padding: a longer ``max_wait_s`` or more concurrent
        requests fills the batches)."""
        replica = serve.get_replica_context().replica_id.unique_id
        return {"replica": replica, "batches": self.batches, "images": self.images}

    def run(self, bodies: list[bytes]) -> list[dict[str, Any]]:
        """The record (or ``{"error": ...}``) of each encoded image."""
        images: list[Any] = []
        for body in bodies:
            try:
                images.append(decode(body))
            except InputError as e:
                images.append(str(e))
        good = [im for im in images if not isinstance(im, str)]
        dets = iter(self.predictor(good) if good else [])
        self.batches += -(-len(good) // self.predictor.batch_size)
        self.images += len(good)
        out: list[dict[str, Any]] = []
        for im in images:
            if isinstance(im, str):
                out.append({"error": im})
                continue
            height, width = im.shape[:2]
            entries = detection_entries(next(dets), self.category_ids)
            out.append({"height": int(height), "width": int(width), "detections": entries})
        return out

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.01)
    async def detect(self, bodies: list[bytes]) -> list[dict[str, Any]]:
        """One batch of requests, run on a worker thread."""
        return await asyncio.to_thread(self.run, bodies)

    async def predict(self, body: bytes) -> dict[str, Any]:
        """The record of one encoded image, for Python callers holding a handle
        (``serve.get_app_handle("yolact").predict.remote(data).result()``); batched
        with the HTTP requests."""
        record: dict[str, Any] = await self.detect(body)
        return record

    async def __call__(self, request: Request) -> Response:
        """POST an encoded image; the JSON record (400 for a body that is no image)."""
        record: dict[str, Any] = await self.detect(await request.body())
        body = json.dumps(record, separators=(",", ":"))
        status = 400 if "error" in record else 200
        return Response(body, status_code=status, media_type="application/json")


def yolact_app(
    model_path: str,
    *,
    batch_size: int = 4,
    num_replicas: int = 1,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    max_ongoing_requests: int | None = None,
    threads: int | None = None,
    **options: Any,
) -> Any:
    """The Serve application of :class:`YolactServer` (give it to ``serve.run``).

    Args:
        batch_size: the dynamic batch size.
        num_replicas, num_cpus, num_gpus: replicas and each one's resources.
        max_ongoing_requests: requests a replica holds at a time (default
            ``batch_size``: one batch; the router queues the others).
        threads: each replica's torch threads (default: ``num_cpus``, at least 1;
            None on a GPU replica).
        options: the other arguments of :class:`YolactServer`.
    """
    if threads is None and not num_gpus:
        threads = max(1, int(num_cpus))
    deployment = serve.deployment(
        name="yolact", num_replicas=num_replicas,
        max_ongoing_requests=max_ongoing_requests or batch_size,
        ray_actor_options={"num_cpus": num_cpus, "num_gpus": num_gpus},
    )(YolactServer)  # fmt: skip
    return deployment.bind(model_path, batch_size=batch_size, threads=threads, **options)
