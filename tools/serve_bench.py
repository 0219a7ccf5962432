"""Served throughput of the Ray Serve deployment beside offline batch inference.

::

    python tools/serve_bench.py --requests=640                  # yolact_tiny, 240x320
    python tools/serve_bench.py --size=480x640 --requests=320
    python tools/serve_bench.py --replicas=1 --replica_threads=2  # one 2-thread replica
    python tools/serve_bench.py --ingress=direct                 # no proxy: replicas' ports
    python tools/serve_bench.py --client=handle                  # DeploymentHandle calls

Offline: the predictor on batches of ``--batch_size`` files read and decoded in
one process with ``--threads`` torch threads, timed twice: the network alone,
and with each image's record (COCO RLE masks) made and written as JSON, the work
``yolact predict`` and the server do per image. Served: ``--clients`` concurrent
loopback clients (threads of a separate process, one keep-alive HTTP connection
each; or, with ``--client=handle``, threads of this process calling the
deployment handle) send ``--requests`` encoded files (at most ``--time_limit``
seconds) to a local Ray cluster of ``--threads`` CPUs (by default as many
replicas with one torch thread each, each holding one batch of requests: the
deployment's defaults). Every answer is compared
with the offline record of its file (``mismatches``). The CPU seconds each
process (replica, proxy, clients, Ray's own) spent during the served run show
where the time goes; the rate per quarter of the run shows whether it falls.
Figures are printed, never checked.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def offline(model: str, bodies: list[bytes], batch: int, threads: int, config: str | None):
    """([images/s network only, with records as JSON], [CPU ms per image, the same],
    the records)."""
    from yolact.batch.fixed import FixedBatchPredictor
    from yolact.batch.ray_data import decode
    from yolact.batch.records import detection_entries
    from yolact.io.coco_json import category_ids_for

    predictor = FixedBatchPredictor.load(model, batch, device="cpu", threads=threads,
                                         config=config)  # fmt: skip
    ids = category_ids_for(predictor.class_names)
    predictor([decode(bodies[0])] * batch)  # warm-up
    rates, cpu, records = [], [], []
    me = psutil.Process()
    for with_records in (False, True):
        start, cpu0 = time.perf_counter(), sum(me.cpu_times()[:2])
        for i in range(0, len(bodies), batch):
            images = [decode(b) for b in bodies[i : i + batch]]
            dets = predictor(images)
            if with_records:
                for im, det in zip(images, dets):
                    record = {"height": im.shape[0], "width": im.shape[1],
                              "detections": detection_entries(det, ids)}  # fmt: skip
                    json.dumps(record, separators=(",", ":"))
                    records.append(record)
        rates.append(len(bodies) / (time.perf_counter() - start))
        cpu.append(1000 * (sum(me.cpu_times()[:2]) - cpu0) / len(bodies))
    return rates, cpu, records


def http_clients(ports: list[int], bodies: list[bytes], order: list[int], clients: int,
                 limit_s: float, out: Any) -> None:  # fmt: skip
    """Post ``bodies[order[k]]`` from ``clients`` threads, one keep-alive connection
    each (client i to ``ports[i % len(ports)]``); put [(k, status, answer bytes,
    seconds from the start)] and the run's seconds on ``out``."""
    lock = threading.Lock()
    nxt = iter(range(len(order)))
    results: list[tuple[int, int, bytes, float]] = []
    start = time.perf_counter()

    def worker(port: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while time.perf_counter() - start < limit_s:
            with lock:
                k = next(nxt, None)
            if k is None:
                break
            try:
                conn.request("POST", "/detect", body=bodies[order[k]],
                             headers={"Content-Type": "application/octet-stream"})  # fmt: skip
                answer = conn.getresponse()
                status, data = answer.status, answer.read()
            except (OSError, http.client.HTTPException) as e:
                status, data = -1, repr(e).encode()
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            with lock:
                results.append((k, status, data, time.perf_counter() - start))
        conn.close()

    threads = [threading.Thread(target=worker, args=(ports[i % len(ports)],))
               for i in range(clients)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((results, time.perf_counter() - start))


def handle_clients(bodies: list[bytes], order: list[int], clients: int, limit_s: float):
    """As :func:`http_clients`, through the deployment handle from this process."""
    from ray import serve

    handle = serve.get_app_handle("yolact")
    lock = threading.Lock()
    nxt = iter(range(len(order)))
    results: list[tuple[int, int, bytes, float]] = []
    start = time.perf_counter()

    def worker() -> None:
        while time.perf_counter() - start < limit_s:
            with lock:
                k = next(nxt, None)
            if k is None:
                break
            try:
                record = handle.predict.remote(bodies[order[k]]).result(timeout_s=120)
                status, data = (400 if "error" in record else 200), json.dumps(record).encode()
            except Exception as e:  # noqa: BLE001 (counted: any failed request is an error)
                status, data = -1, repr(e).encode()
            with lock:
                results.append((k, status, data, time.perf_counter() - start))

    with ThreadPoolExecutor(clients) as pool:
        for _ in range(clients):
            pool.submit(worker)
    return results, time.perf_counter() - start


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """{pid: (role, user+system CPU seconds)} of this process and all its descendants."""
    out = {}
    me = psutil.Process()
    for proc in [me, *me.children(recursive=True)]:
        try:
            cmd = " ".join(proc.cmdline())
            times = proc.cpu_times()
        except psutil.Error:
            continue
        role = "driver (benchmark)" if proc.pid == me.pid else cmd.split(" ")[0]
        for key, name in (("ServeReplica", "replica"), ("ProxyActor", "proxy"),
                          ("ServeController", "controller"), ("gcs_server", "gcs_server"),
                          ("raylet", "raylet"), ("multiprocessing", "clients process"),
                          ("dashboard", "dashboard/agents"), ("agent", "dashboard/agents"),
                          ("log_monitor", "log_monitor"), ("IDLE", "idle workers")):  # fmt: skip
            if key in cmd:
                role = name
                break
        out[proc.pid] = (role, times.user + times.system)
    return out


def serve_run(a: argparse.Namespace, bodies: list[bytes], order: list[int]):
    """(results, seconds, {role: CPU seconds during the run}) of the served side."""
    if a.ingress == "direct":  # Serve's throughput-optimized mode: replicas take HTTP
        os.environ["RAY_SERVE_THROUGHPUT_OPTIMIZED"] = "1"
        os.environ["RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP"] = "1"  # handles from threads
    import ray
    from ray import serve

    from yolact.batch.serve import yolact_app

    ray.init(num_cpus=a.threads, include_dashboard=False, _node_ip_address="127.0.0.1",
             configure_logging=False, log_to_driver=False)  # fmt: skip
    serve.start(http_options={"host": "127.0.0.1", "port": a.port})
    extra = {} if a.max_wait_s is None else {"max_wait_s": a.max_wait_s}
    app = yolact_app(a.trained_model, batch_size=a.batch_size, device="cpu",
                     threads=a.replica_threads, num_replicas=a.replicas,
                     num_cpus=a.threads / a.replicas, config=a.config,
                     max_ongoing_requests=a.max_ongoing, **extra)  # fmt: skip
    serve.run(app, name="yolact", route_prefix="/detect")
    ctx = multiprocessing.get_context("spawn")

    def clients(count: int) -> tuple[list, float]:
        if a.client == "handle":
            return handle_clients(bodies, order[:count], a.clients, a.time_limit)
        queue = ctx.Queue()
        ports = [a.port] if a.ingress == "proxy" else [30000 + i for i in range(a.replicas)]
        proc = ctx.Process(target=http_clients, args=(ports, bodies, order[:count], a.clients,
                                                      a.time_limit, queue))  # fmt: skip
        proc.start()
        got = queue.get()
        proc.join()
        return got

    clients(4 * a.clients)  # warm-up: connections, first batches
    ctx_cpu: dict[int, tuple[str, float]] = {}
    stop = threading.Event()

    def sample() -> None:  # the clients' process lives only during the run
        while not stop.is_set():
            ctx_cpu.update(cpu_seconds())
            stop.wait(0.5)

    before = cpu_seconds()
    sampler = threading.Thread(target=sample)
    sampler.start()
    results, seconds = clients(len(order))
    stop.set()
    sampler.join()
    handle = serve.get_app_handle("yolact")
    stats: dict[str, dict] = {}
    for _ in range(10 * a.replicas):  # requests reach every replica
        got = handle.batch_stats.remote().result(timeout_s=60)
        stats[got["replica"]] = got
    roles: dict[str, float] = {"batches": sum(s["batches"] for s in stats.values()),
                               "images": sum(s["images"] for s in stats.values())}  # fmt: skip
    for pid, (role, total) in ctx_cpu.items():
        roles[role] = roles.get(role, 0.0) + total - before.get(pid, (role, 0.0))[1]
    serve.shutdown()
    ray.shutdown()
    return results, seconds, roles


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tools/serve_bench.py",
                                description=(__doc__ or "").split("\n")[0])  # fmt: skip
    p.add_argument("--trained_model", default=str(REPO / "weights" / "yolact_tiny_synthetic.pth"))
    p.add_argument("--config", default=None, help="config name for a checkpoint")
    p.add_argument("--images", type=int, default=40, help="distinct files")
    p.add_argument("--size", default="240x320", help="HxW of the drawn scenes")
    p.add_argument("--batch_size", type=int, default=4)
    p.add_argument("--threads", type=int, default=2, help="cores: offline torch threads, Ray CPUs")
    p.add_argument("--replicas", type=int, default=None, help="default: --threads")
    p.add_argument("--replica_threads", type=int, default=None, help="default: threads/replicas")
    p.add_argument("--max_wait_s", type=float, default=None, help="serve.batch wait "
                   "(default: the deployment's)")  # fmt: skip
    p.add_argument("--max_ongoing", type=int, default=None, help="requests a replica holds "
                   "(default: the deployment's, one batch)")  # fmt: skip
    p.add_argument("--ingress", choices=["proxy", "direct"], default="proxy",
                   help="direct: RAY_SERVE_THROUGHPUT_OPTIMIZED=1, clients spread over the "
                   "replicas' own ports (30000...)")  # fmt: skip
    p.add_argument("--client", choices=["http", "handle"], default="http")
    p.add_argument("--requests", type=int, default=320)
    p.add_argument("--offline_images", type=int, default=None,
                   help="images per offline pass (default: half the requests, <= 160)")  # fmt: skip
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--time_limit", type=float, default=300.0)
    p.add_argument("--port", type=int, default=18000)
    a = p.parse_args(argv)
    a.replicas = a.replicas or a.threads
    a.replica_threads = a.replica_threads or max(1, a.threads // a.replicas)
    h, w = (int(v) for v in a.size.split("x"))
    import cv2
    import numpy as np

    from yolact.data.scenes import make_scene

    with tempfile.TemporaryDirectory():
        bodies = [cv2.imencode(".jpg", make_scene(np.random.default_rng(i), size=(h, w),
                                                  max_objects=6)["image"])[1].tobytes()
                  for i in range(a.images)]  # fmt: skip
    order = [k % len(bodies) for k in range(a.requests)]
    print(f"{len(bodies)} JPEG files {h}x{w}, {Path(a.trained_model).name}, batch "
          f"{a.batch_size}, {a.threads} cores; load average {os.getloadavg()[0]:.1f} "
          "at start")  # fmt: skip
    count = a.offline_images or max(len(bodies), min(160, a.requests // 2))
    offline_bodies = [bodies[k % len(bodies)] for k in range(max(count, len(bodies)))]
    rates, cpus, records = offline(a.trained_model, offline_bodies, a.batch_size, a.threads,
                                   a.config)  # fmt: skip
    (net_fps, rec_fps), (net_cpu, rec_cpu) = rates, cpus
    expected = records[: len(bodies)]
    one = None
    if a.threads > 1:  # one thread per process: what each of `threads` processes would give
        one = offline(a.trained_model, offline_bodies, a.batch_size, 1, a.config)
    if a.replica_threads != a.threads:  # results move in the last bits with the threads
        expected = (
            one[2]
            if one and a.replica_threads == 1
            else offline(a.trained_model, bodies, a.batch_size, a.replica_threads, a.config)[2]
        )[: len(bodies)]
    results, seconds, roles = serve_run(a, bodies, order)
    ok = sum(1 for _, status, _, _ in results if status == 200)
    errors = len(results) - ok
    mismatches = sum(1 for k, status, data, _ in results
                     if status == 200 and json.loads(data) != expected[order[k]])  # fmt: skip
    fps = ok / seconds
    print(f"offline batch-{a.batch_size} ({a.threads} threads): network {net_fps:.1f} images/s, "
          f"with records as JSON {rec_fps:.1f} images/s; CPU per image {net_cpu:.1f} ms, "
          f"{rec_cpu:.1f} ms")  # fmt: skip
    if one:
        print(f"offline batch-{a.batch_size} (1 thread): network {one[0][0]:.1f} images/s, with "
              f"records {one[0][1]:.1f} images/s; CPU per image {one[1][0]:.1f} ms, "
              f"{one[1][1]:.1f} ms; {a.threads} such processes: at most "
              f"{a.threads * one[0][1]:.1f} images/s with records")  # fmt: skip
    print(
        f"served ({a.client}, {a.ingress}, {a.clients} clients, {a.replicas} replica(s) x "
        f"{a.replica_threads} threads, wait {a.max_wait_s or 'default'}): {fps:.1f} answers/s "
        f"({ok} of {a.requests} in {seconds:.1f} s, {errors} errors, {mismatches} mismatches)"
    )
    quarters = [0] * 4
    for _, _, _, t in results:
        quarters[min(3, int(4 * t / seconds))] += 1
    print("answers/s per quarter of the run: " +
          " ".join(f"{4 * q / seconds:.1f}" for q in quarters))  # fmt: skip
    batches, images = roles.pop("batches"), roles.pop("images")
    print(f"network calls (warm-up included): {batches:.0f}, {images / max(batches, 1):.2f} "
          f"real images of {a.batch_size} per call")  # fmt: skip
    total = sum(roles.values())
    print(f"CPU seconds during the served run ({total:.1f} in {seconds:.1f} s on {a.threads} "
          f"cores; per answer {1000 * total / max(ok, 1):.1f} ms):")  # fmt: skip
    for role, cpu in sorted(roles.items(), key=lambda kv: -kv[1]):
        if cpu >= 0.05:
            print(f"  {role}: {cpu:.1f} s ({1000 * cpu / max(ok, 1):.1f} ms per answer)")
    print(f"served / offline: {fps / net_fps:.2f}x of the network alone, "
          f"{fps / rec_fps:.2f}x of the network with records; CPU per image offline / served "
          f"{rec_cpu / (1000 * total / max(ok, 1)):.2f}")  # fmt: skip
    if one:
        print(f"served / {a.threads} 1-thread processes with records (at most): "
              f"{fps / (a.threads * one[0][1]):.2f}x; CPU per image offline (1 thread) / served "
              f"{one[1][1] / (1000 * total / max(ok, 1)):.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
