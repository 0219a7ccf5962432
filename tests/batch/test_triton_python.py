"""Issue 20 item 4: the python-backend flavour of the Triton repository (onnxruntime
inside Triton's Python backend), served by PyTriton's bundled tritonserver where
one is present."""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import subprocess
import sys
import types
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from conftest import REPO, free_port

from yolact.batch import triton

WEIGHTS = str(REPO / "weights" / "yolact_tiny_synthetic.pth")
MODEL_PY = REPO / "yolact" / "batch" / "triton_model.py"


@pytest.fixture(scope="module")
def dynamic_onnx(tmp_path_factory) -> str:
    """The demo model exported with a dynamic batch dimension."""
    from yolact.export import export

    root = tmp_path_factory.mktemp("pydyn")
    return export(WEIGHTS, str(root / "yolact_demo"), "onnx", dynamic_batch=True, check=False,
                  log=False)  # fmt: skip


def inputs(onnx_path: str, count: int) -> np.ndarray:
    """``count`` drawn scenes as the graph takes them: [count, 3, side, side] float32."""
    import cv2
    from conftest import demo_scene

    from yolact.backends.meta import read_meta

    meta = read_meta(onnx_path)
    side = meta.input_size
    out = []
    for i in range(count):
        image = cv2.resize(demo_scene(40 + i), (side, side)).astype(np.float32)
        image = (image - np.float32(meta.pixel_mean)) / np.float32(meta.pixel_std)
        out.append((image[..., ::-1] if meta.channels == "rgb" else image).transpose(2, 0, 1))
    return np.ascontiguousarray(np.stack(out), dtype=np.float32)


def reference(onnx_path: str, images: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"images": images})))


def test_layout_and_config(dynamic_onnx, tmp_path):
    repo = tmp_path / "models"
    target = triton.write_repository(dynamic_onnx, str(repo), backend="python", max_batch=4)
    files = sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file())
    assert files == ["yolact_demo/1/model.onnx", "yolact_demo/1/model.py",
                     "yolact_demo/config.pbtxt", "yolact_demo/yolact_meta.json"]  # fmt: skip
    assert (repo / "yolact_demo/1/model.onnx").read_bytes() == Path(dynamic_onnx).read_bytes()
    assert (repo / "yolact_demo/1/model.py").read_bytes() == MODEL_PY.read_bytes()
    config = (repo / "yolact_demo/config.pbtxt").read_text()
    onnx_config = tmp_path / "ort" / "yolact_demo/config.pbtxt"
    triton.write_repository(dynamic_onnx, str(tmp_path / "ort"), max_batch=4)
    # The same tensors and batching as the onnxruntime backend's entry; only the backend.
    assert config == onnx_config.read_text().replace('backend: "onnxruntime"', 'backend: "python"')
    # Written again over itself (model.py is one of the writer's files).
    assert triton.write_repository(dynamic_onnx, str(repo), backend="python") == target


def test_model_py_answers_each_request_with_its_rows(dynamic_onnx, tmp_path, monkeypatch):
    """model.py run with a stand-in for Triton's utilities module: two requests of one
    dynamic batch (1 and 2 images) get exactly onnxruntime's rows of the 3-image call."""
    repo = tmp_path / "models"
    triton.write_repository(dynamic_onnx, str(repo), backend="python", max_batch=4)

    class Tensor:
        def __init__(self, name: str, value: np.ndarray) -> None:
            self.name, self.value = name, value

        def as_numpy(self) -> np.ndarray:
            return self.value

    class Request:
        def __init__(self, images: np.ndarray) -> None:
            self.images = images

    fake = types.ModuleType("triton_python_backend_utils")
    fake.Tensor = Tensor  # type: ignore[attr-defined]
    fake.InferenceResponse = lambda output_tensors: output_tensors  # type: ignore[attr-defined]
    fake.get_input_tensor_by_name = lambda r, name: Tensor(name, r.images)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", fake)
    monkeypatch.syspath_prepend(str(repo / "yolact_demo/1"))
    monkeypatch.delitem(sys.modules, "model", raising=False)
    import model  # type: ignore[import-not-found]

    config = {"input": [{"name": "images"}],
              "output": [{"name": n} for n in ("boxes", "scores", "box_scores", "classes",
                                               "masks", "count")]}  # fmt: skip
    instance = model.TritonPythonModel()
    instance.initialize({"model_config": json.dumps(config), "model_version": "1",
                         "model_repository": str(repo / "yolact_demo")})  # fmt: skip
    images = inputs(dynamic_onnx, 3)
    answers = instance.execute([Request(images[:1]), Request(images[1:])])
    expected = reference(dynamic_onnx, images)
    assert [[t.name for t in a] for a in answers] == [list(expected)] * 2
    for answer, rows in zip(answers, (slice(0, 1), slice(1, 3))):
        for tensor in answer:
            np.testing.assert_array_equal(tensor.value, expected[tensor.name][rows])
    assert int(expected["count"].sum()) > 0


def python_backend_server(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """(the tritonserver command's start, its environment) for a server with the Python
    backend, or skip saying what is missing."""
    from test_triton import tritonserver

    server = tritonserver()
    if server is None:
        pytest.skip("no tritonserver (set YOLACT_TRITONSERVER, or pip install nvidia-pytriton)")
    root = Path(server).resolve().parents[1]
    library = root / "backends" / "python" / "libtriton_python.so"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stubs = [root / "backends" / "python" / "triton_python_backend_stub",
             root / "python_backend_stubs" / version / "triton_python_backend_stub"]  # fmt: skip
    stub = next((s for s in stubs if s.is_file()), None)
    if not library.is_file() or stub is None:
        pytest.skip(f"{server} has no Python backend for Python {version}")
    if ctypes.util.find_library(f"python{version}") is None:
        pytest.skip(f"the Python backend's stub needs libpython{version}.so, not installed")
    paths = [os.environ.get("YOLACT_TRITON_PYTHONPATH", ""), *sys.path]
    if int(np.__version__.split(".")[0]) >= 2 and not os.environ.get("YOLACT_TRITON_PYTHONPATH"):
        pytest.skip("the Python backend's stub reads numpy 1.x arrays; set "
                    "YOLACT_TRITON_PYTHONPATH to a folder with numpy<2 "
                    "(pip install --target=DIR 'numpy<2')")  # fmt: skip
    backends = tmp_path / "backends"
    shutil.copytree(library.parent, backends / "python")
    shutil.copy(stub, backends / "python" / "triton_python_backend_stub")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    libs = root.parents[1] / "nvidia_pytriton.libs"  # PyTriton's wheel: site/pytriton/...
    if libs.is_dir():
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (str(libs), os.environ.get("LD_LIBRARY_PATH", "")) if p
        )
    return [server, f"--backend-directory={backends}"], env


def test_a_triton_server_with_only_the_python_backend_serves_it(dynamic_onnx, tmp_path):
    start, env = python_backend_server(tmp_path)
    repo = tmp_path / "models"
    triton.write_repository(dynamic_onnx, str(repo), backend="python", max_batch=4)
    port = free_port()
    proc = subprocess.Popen(
        [*start, f"--model-repository={repo}", f"--http-port={port}", "--allow-grpc=false",
         "--allow-metrics=false", "--exit-on-error=true"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
        env=env,
    )  # fmt: skip
    log = []
    try:
        for line in proc.stdout:  # ends when the server exits (it does on a failed load)
            log.append(line)
            if "Started HTTPService" in line:
                break
        assert "successfully loaded 'yolact_demo'" in "".join(log), "".join(log)[-3000:]
        images = inputs(dynamic_onnx, 2)
        body = {"inputs": [{"name": "images", "shape": [2, 3, 160, 160], "datatype": "FP32",
                            "data": images.ravel().tolist()}]}  # fmt: skip
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v2/models/yolact_demo/infer",
            data=json.dumps(body).encode(), method="POST",
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                outputs = json.loads(answer.read())["outputs"]
        except urllib.error.HTTPError as e:
            pytest.fail(f"HTTP {e.code}: {e.read()[:2000]!r}")
    finally:
        proc.terminate()
        proc.wait(timeout=120)
        proc.stdout.close()
    expected = reference(dynamic_onnx, images)
    assert sorted(o["name"] for o in outputs) == sorted(expected)
    for o in outputs:
        want = expected[o["name"]]
        got = np.array(o["data"], dtype=want.dtype).reshape(o["shape"])
        np.testing.assert_array_equal(got.reshape(want.shape), want)
    assert int(expected["count"].sum()) > 0
