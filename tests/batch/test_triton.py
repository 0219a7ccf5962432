"""Issue 20 item 4: a Triton model repository for an exported model: Triton's layout,
and a config.pbtxt whose tensors are the graph's own (read back with onnx)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import onnx
import pytest
from conftest import REPO, one_line, snapshot

from yolact.batch import triton

WEIGHTS = str(REPO / "weights" / "yolact_tiny_synthetic.pth")
TRITON_TYPES = {"FLOAT": "TYPE_FP32", "FLOAT16": "TYPE_FP16", "INT64": "TYPE_INT64"}
BLOCK = re.compile(r'name: "([^"]+)"\s+data_type: (\w+)\s+dims: \[ ([^\]]*)\]\s*(reshape)?')


@pytest.fixture(scope="module")
def dynamic_onnx(tmp_path_factory) -> str:
    """The demo model exported with a dynamic batch dimension."""
    from yolact.export import export

    root = tmp_path_factory.mktemp("dyn")
    return export(WEIGHTS, str(root / "yolact_demo"), "onnx", dynamic_batch=True, check=False,
                  log=False)  # fmt: skip


def graph_tensors(path: str) -> tuple[list[tuple], list[tuple]]:
    """(name, Triton type, dims) of each input and output, read with onnx; the
    batch dimension (symbolic) as None."""
    graph = onnx.load(path).graph

    def row(v: onnx.ValueInfoProto) -> tuple:
        t = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        return v.name, TRITON_TYPES[onnx.TensorProto.DataType.Name(t.elem_type)], dims

    return [row(v) for v in graph.input], [row(v) for v in graph.output]


def config_tensors(text: str, section: str) -> list[tuple]:
    """(name, type, dims, reshaped) of the blocks of ``input [...]`` or ``output [...]``."""
    body = re.search(rf"^{section} \[\n(.*?)\n\]", text, re.M | re.S).group(1)
    return [(n, t, [int(d) for d in dims.replace(",", " ").split()], bool(r))
            for n, t, dims, r in BLOCK.findall(body)]  # fmt: skip


def expected_blocks(rows: list[tuple]) -> list[tuple]:
    """What a batched config says of each tensor: dims after the batch one, -1 for
    symbolic sizes, and a [batch] tensor as dims [1] reshaped to a scalar."""
    out = []
    for name, kind, dims in rows:
        assert dims[0] is None  # the batch dimension is dynamic
        rest = [-1 if d is None else d for d in dims[1:]]
        out.append((name, kind, rest or [1], not rest))
    return out


def test_onnxruntime_layout_and_config(dynamic_onnx, tmp_path, capsys):
    repo = tmp_path / "models"
    assert triton.main([f"--model={dynamic_onnx}", f"--repo={repo}", "--max_batch=16"]) == 0
    assert capsys.readouterr().out == (f"wrote {repo}/yolact_demo (onnxruntime backend); serve "
                                       f"it: tritonserver --model-repository={repo}\n")  # fmt: skip
    files = sorted(str(p.relative_to(repo)) for p in repo.rglob("*"))
    assert files == ["yolact_demo", "yolact_demo/1", "yolact_demo/1/model.onnx",
                     "yolact_demo/config.pbtxt", "yolact_demo/yolact_meta.json"]  # fmt: skip
    assert (repo / "yolact_demo/1/model.onnx").read_bytes() == Path(dynamic_onnx).read_bytes()
    text = (repo / "yolact_demo/config.pbtxt").read_text()
    inputs, outputs = graph_tensors(dynamic_onnx)
    assert [n for n, *_ in inputs] == ["images"]
    assert [n for n, *_ in outputs] == ["boxes", "scores", "box_scores", "classes", "masks",
                                        "count"]  # fmt: skip
    assert config_tensors(text, "input") == expected_blocks(inputs)
    assert config_tensors(text, "output") == expected_blocks(outputs)
    assert config_tensors(text, "input")[0][2] == [3, 160, 160]  # yolact_tiny's input
    head = text.split("input [")[0]
    assert head == 'name: "yolact_demo"\nbackend: "onnxruntime"\nmax_batch_size: 16\n'
    assert "dynamic_batching {\n  max_queue_delay_microseconds: 1000\n}" in text
    assert text.endswith("instance_group [\n  {\n    count: 1\n    kind: KIND_CPU\n  }\n]\n")


def test_openvino_backend_from_the_onnx_file(dynamic_onnx, tmp_path):
    ov = pytest.importorskip("openvino")
    repo = tmp_path / "models"
    target = triton.write_repository(dynamic_onnx, str(repo), backend="openvino", name="ov",
                                     instances=2, gpu=True)  # fmt: skip
    assert sorted(os.listdir(target)) == ["1", "config.pbtxt", "yolact_meta.json"]
    assert sorted(os.listdir(f"{target}/1")) == ["model.bin", "model.xml"]
    text = Path(target, "config.pbtxt").read_text()
    assert text.startswith('name: "ov"\nbackend: "openvino"\nmax_batch_size: 8\n'
                           'default_model_filename: "model.xml"\n')  # fmt: skip
    assert "    count: 2\n    kind: KIND_GPU\n" in text
    model = ov.Core().read_model(f"{target}/1/model.xml")
    names = [n for n, *_ in config_tensors(text, "input") + config_tensors(text, "output")]
    assert names == [p.get_any_name() for p in [*model.inputs, *model.outputs]]
    assert config_tensors(text, "input") == expected_blocks(graph_tensors(dynamic_onnx)[0])


def test_fixed_batch_export_needs_max_batch_0(exported, tmp_path, capsys):
    repo = tmp_path / "models"
    code, err = run_cli(capsys, f"--model={exported['onnx']}", f"--repo={repo}")
    assert code == 1 and one_line(err) == (
        f"error: {exported['onnx']} has a fixed batch size (images); export it with "
        "--dynamic_batch for Triton's dynamic batching, or give --max_batch=0"
    )
    assert not repo.exists()
    target = triton.write_repository(exported["openvino"], str(repo), backend="openvino",
                                     max_batch=0)  # fmt: skip
    text = Path(target, "config.pbtxt").read_text()
    assert os.path.basename(target) == "m" and "max_batch_size: 0\n" in text
    assert "dynamic_batching" not in text
    assert config_tensors(text, "input") == [("images", "TYPE_FP32", [1, 3, 160, 160], False)]


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = triton.main(list(argv))
    return code, capsys.readouterr().err


def test_bad_input_is_one_line_and_changes_nothing(dynamic_onnx, exported, tmp_path, capsys):
    repo = tmp_path / "models"
    (repo / "yolact_demo").mkdir(parents=True)
    (repo / "yolact_demo" / "notes.txt").write_text("mine")
    before = snapshot(repo)
    cases = [
        ([f"--model={dynamic_onnx}"],
         f"{repo}/yolact_demo holds other files than a model folder (notes.txt); remove them "
         "or give another --name"),
        ([f"--model={WEIGHTS}"],
         f"{WEIGHTS} is not an exported model (an .onnx file or an *_openvino_model folder "
         "written by python -m yolact.export)"),
        ([f"--model={exported['openvino']}"],
         f"{exported['openvino']} is an OpenVINO model; give --backend=openvino or the .onnx"),
        ([f"--model={dynamic_onnx}", "--backend=tensorrt"],
         "--backend must be onnxruntime, openvino or python, got 'tensorrt'"),
        ([f"--model={dynamic_onnx}", "--max_batch=-1"],
         "--max_batch must be 0 (no batching) or more, got -1"),
    ]  # fmt: skip
    for args, message in cases:
        code, err = run_cli(capsys, *args, f"--repo={repo}")
        assert code == 1 and one_line(err) == f"error: {message}"
        assert snapshot(repo) == before


def test_an_earlier_repository_entry_is_replaced(dynamic_onnx, tmp_path):
    repo = tmp_path / "models"
    triton.write_repository(dynamic_onnx, str(repo), max_batch=4)
    triton.write_repository(dynamic_onnx, str(repo), max_batch=2)
    assert "max_batch_size: 2\n" in (repo / "yolact_demo/config.pbtxt").read_text()
    assert sorted(os.listdir(repo)) == ["yolact_demo"]  # no temporary folder left


def tritonserver() -> str | None:
    """A tritonserver binary: $YOLACT_TRITONSERVER, on the PATH, or PyTriton's bundled one."""
    found = os.environ.get("YOLACT_TRITONSERVER") or shutil.which("tritonserver")
    if found:
        return found
    try:
        import pytriton  # type: ignore[import-not-found]
    except ImportError:
        return None
    bundled = Path(pytriton.__file__).parent / "tritonserver" / "bin" / "tritonserver"
    return str(bundled) if bundled.is_file() else None


def test_a_triton_server_reads_the_config(dynamic_onnx, tmp_path):
    """Triton parses config.pbtxt with its own ModelConfig schema: a server whose
    onnxruntime backend is missing (PyTriton bundles only the Python backend) still
    gets past the config to the backend; a full server loads the model."""
    server = tritonserver()
    if server is None:
        pytest.skip("no tritonserver (set YOLACT_TRITONSERVER, or pip install nvidia-pytriton)")
    repo = tmp_path / "models"
    triton.write_repository(dynamic_onnx, str(repo))
    backends = Path(server).parents[1] / "backends"
    proc = subprocess.Popen(
        [server, f"--model-repository={repo}", f"--backend-directory={backends}",
         "--model-control-mode=explicit", "--load-model=yolact_demo", "--exit-on-error=true",
         "--allow-http=false", "--allow-grpc=false", "--allow-metrics=false"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    log = []
    try:
        for line in proc.stdout:  # ends when the server exits (it does on a failed load)
            log.append(line)
            if "successfully loaded 'yolact_demo'" in line or "failed to load" in line:
                break
    finally:
        proc.terminate()
        proc.wait(timeout=120)
        proc.stdout.close()
    text = "".join(log)
    assert "Error parsing text-format" not in text and "failed to read text proto" not in text
    assert '"loading: yolact_demo:1"' in text, text[-2000:]
    missing = "unable to find backend library for backend 'onnxruntime'" in text
    assert missing or "successfully loaded 'yolact_demo'" in text, text[-2000:]
