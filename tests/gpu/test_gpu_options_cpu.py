"""The GPU options where no GPU is needed to check them: flags, one-line refusals on
the CPU, the fp16 and channels_last networks (on the CPU, which runs both), and the
fixed-batch runner that CUDA graphs replay through."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from conftest import REPO, mask_iou
from conftest import demo_scene as scene

from yolact import registry
from yolact.cli import predictors as cli_predictors
from yolact.cli.eval_args import parse_args
from yolact.core import gpu
from yolact.core import predictor as core_predictor
from yolact.core.gpu import (
    CudaGraphRunner,
    FixedBatchRunner,
    GpuOptionError,
    HalfNetwork,
    to_float32,
    use_channels_last,
)
from yolact.core.preprocess import SquarePreprocessor, upload

DEMO = str(REPO / "weights" / "yolact_tiny_synthetic.pth")

pytestmark = pytest.mark.usefixtures("one_thread")


def eval_main(argv: list[str]) -> int:
    """eval.py, imported on use: it reads COCO files with pycocotools, which the GPU
    machine's ``pytest -m gpu tests/gpu`` must collect this file without."""
    from yolact.cli.eval_cli import main

    return main(argv)


# Flags and how they reach the predictor.


def test_gpu_flags_parse() -> None:
    args = parse_args(["--half", "--cuda_graph", "--channels_last=False"])
    assert (args.half, args.cuda_graph, args.channels_last, args.tensorrt) == (
        True, True, False, None,
    )  # fmt: skip
    args = parse_args([])
    assert (args.half, args.cuda_graph, args.channels_last) == (False, False, None)


def test_gpu_flags_reach_the_predictor(monkeypatch) -> None:
    """eval.py's flags become the predictor's options (the CUDA check stubbed out)."""
    seen: dict = {}

    def fake_build(cfg, ckpt, **options):
        seen.update(options)
        return "predictor"

    monkeypatch.setattr(cli_predictors, "check_gpu_options", lambda *a, **k: None)
    monkeypatch.setattr(cli_predictors, "build_family_predictor", fake_build)
    args = parse_args([f"--trained_model={DEMO}", "--half", "--cuda_graph", "--cuda=False"])
    assert cli_predictors.build_predictor(args) == "predictor"
    assert (seen["half"], seen["cuda_graph"], seen["channels_last"]) == (True, True, None)
    assert "tensorrt" not in seen  # a checkpoint: no runtime to choose


NO_BF16 = (
    "--half on the CPU runs bfloat16, and this CPU has no bfloat16 instructions "
    "(AVX512-BF16 or AMX); run without --half"
)


@pytest.mark.parametrize(
    ("flag", "line"),
    [
        ("--half", f"error: {NO_BF16}"),
        ("--cuda_graph", "error: --cuda_graph needs a CUDA device; this run is on cpu"),
    ],
)
@pytest.mark.parametrize("config", ["yolact_tiny", "mask_rcnn_tiny"])
def test_gpu_flags_on_cpu_are_one_error_line(
    flag: str, line: str, config: str, capsys, monkeypatch
) -> None:
    """On a CPU without bfloat16 (stood in for: this one may have it) --half is one line."""
    monkeypatch.setattr(gpu, "cpu_has_bf16", lambda: False)
    code = eval_main(["--benchmark", f"--config={config}", flag, "--cuda=False", "--max_images=1"])
    out, err = capsys.readouterr()
    assert code == 1 and err == line + "\n" and out == ""


@pytest.mark.parametrize(
    ("option", "message"),
    [("half", NO_BF16), ("cuda_graph", "--cuda_graph needs a CUDA device; this run is on cpu")],
)
@pytest.mark.parametrize("config", ["yolact_tiny", "mask_rcnn_tiny"])
def test_api_refuses_gpu_options_on_cpu(
    option: str, message: str, config: str, monkeypatch
) -> None:
    monkeypatch.setattr(gpu, "cpu_has_bf16", lambda: False)
    cfg = registry.get_config(config)
    with pytest.raises(GpuOptionError, match=f"^{re.escape(message)}$"):
        registry.build_predictor(cfg, device="cpu", **{option: True})


def test_cuda_graph_refusals_past_the_device_check(monkeypatch) -> None:
    """Models that cannot be captured say why in one line (the CUDA check stubbed out)."""
    monkeypatch.setattr(core_predictor, "check_gpu_options", lambda *a, **k: None)
    rcnn = registry.get_config("mask_rcnn_tiny")
    with pytest.raises(GpuOptionError, match="^--cuda_graph needs fixed-shape post-processing"):
        registry.build_predictor(rcnn, device="cpu", cuda_graph=True)
    tiny = registry.get_config("yolact_tiny")
    message = (
        "--cuda_graph needs fast or cross-class NMS (standard NMS has data-dependent shapes); "
        "drop --fast_nms=False"
    )
    with pytest.raises(GpuOptionError, match=f"^{re.escape(message)}$"):
        registry.build_predictor(tiny, device="cpu", cuda_graph=True, nms_method="standard")
    predictor = registry.build_predictor(tiny, device="cpu", cuda_graph=True)
    message = "^CUDA graphs need CUDA tensors; the input is on cpu$"
    with pytest.raises(GpuOptionError, match=message):
        predictor(scene(1))


# The fp16 and channels_last networks, run on the CPU.


def test_channels_last_default_follows_half() -> None:
    assert use_channels_last(None, True) and not use_channels_last(None, False)
    assert use_channels_last(True, False) and not use_channels_last(False, True)
    p = registry.load_predictor(DEMO, device="cpu")
    assert not p.channels_last and not p.half and p.graph is None


def test_half_network_matches_float32_on_cpu() -> None:
    """The demo model's network in float16 (CPU kernels) with the float32 post-processing:
    the same classes, boxes within 2 px, mask IoU >= 0.95; its outputs are float32."""
    ref = registry.load_predictor(DEMO, device="cpu", score_threshold=0.3)
    fp16 = registry.load_predictor(DEMO, device="cpu", score_threshold=0.3)
    fp16.network_module = HalfNetwork(fp16.model, keep_float32=("maskiou_net",))
    fp16.preprocess.dtype = torch.float16
    batch = fp16.run_pre([scene(1)])
    assert batch.dtype == torch.float16
    assert next(fp16.model.parameters()).dtype == torch.float16
    assert all(v.dtype == torch.float32 for v in fp16.network(batch).values())
    for seed in (1, 6):
        a, b = ref(scene(seed)), fp16(scene(seed))
        assert len(a) >= 3 and a.labels.tolist() == b.labels.tolist()
        assert (a.boxes - b.boxes).abs().max() <= 2
        assert (a.scores - b.scores).abs().max() < 0.02
        assert mask_iou(a.masks, b.masks).min() >= 0.95


def test_half_network_keeps_named_parts_float32() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.Conv2d(4, 2, 1))
    half = HalfNetwork(net, keep_float32=("1", "missing"))
    assert net[0].weight.dtype == torch.float16 and net[1].weight.dtype == torch.float32
    nested = to_float32({"a": [torch.ones(2, dtype=torch.float16), torch.ones(1).long()]})
    assert nested["a"][0].dtype == torch.float32 and nested["a"][1].dtype == torch.int64
    assert half.net is net


@pytest.mark.parametrize("config", ["yolact_tiny", "mask_rcnn_tiny"])
def test_channels_last_gives_the_same_detections(config: str) -> None:
    torch.manual_seed(0)
    cfg = registry.get_config(config)
    ref = registry.build_predictor(cfg, device="cpu", top_k=10)
    nhwc = registry.build_predictor(cfg, device="cpu", top_k=10, channels_last=True)
    nhwc.model.load_state_dict(ref.model.state_dict())
    conv = next(m for m in nhwc.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    image = scene(6)
    a, b = ref(image), nhwc(image)
    assert len(a) == len(b) and a.labels.tolist() == b.labels.tolist()
    assert torch.allclose(a.boxes, b.boxes, atol=1.0)
    assert torch.allclose(a.scores, b.scores, atol=1e-4)


def test_preprocessor_dtype_and_layout() -> None:
    pre = SquarePreprocessor(32, (100.0, 110.0, 120.0), (50.0, 55.0, 60.0))
    image = scene(1)
    ref = pre([image])
    pre.dtype, pre.channels_last = torch.float16, True
    got = pre([image])
    assert got.dtype == torch.float16 and got.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(got.float(), ref, atol=1e-2)
    up = upload(image, torch.device("cpu"))
    assert up.dtype == torch.uint8 and np.array_equal(up.numpy(), image)


# The runner CUDA graphs replay through.


def _fn_recording(calls: list[int]):
    def fn(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        calls.append(x.shape[0])
        return x.sum(dim=(1, 2, 3)), x * 2

    return fn


@pytest.mark.parametrize("n", [1, 3, 4, 6, 9])
def test_fixed_batch_runner_pads_and_chunks(n: int) -> None:
    x = torch.arange(n * 12, dtype=torch.float32).reshape(n, 3, 2, 2)
    calls: list[int] = []
    runner = FixedBatchRunner(_fn_recording(calls), batch=4)
    total, doubled = runner(x)
    assert torch.equal(total, x.sum(dim=(1, 2, 3))) and torch.equal(doubled, x * 2)
    assert calls == [4] * (-(-n // 4))  # only ever the fixed batch


def test_fixed_batch_runner_keeps_channels_last() -> None:
    seen: list[bool] = []

    def fn(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        seen.append(x.is_contiguous(memory_format=torch.channels_last))
        return (x,)

    x = torch.rand(3, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    (out,) = FixedBatchRunner(fn, batch=4)(x)
    assert seen == [True] and torch.equal(out, x)
    with pytest.raises(ValueError, match="^batch must be at least 1, got 0$"):
        FixedBatchRunner(fn, batch=0)


def test_cuda_graph_runner_takes_the_first_batch_size() -> None:
    runner = CudaGraphRunner(_fn_recording([]))
    with pytest.raises(GpuOptionError, match="^CUDA graphs need CUDA tensors"):
        runner(torch.zeros(5, 3, 2, 2))
    assert runner.batch == 5 and runner.graph is None
    fixed = CudaGraphRunner(_fn_recording([]), batch=8)
    with pytest.raises(GpuOptionError):
        fixed(torch.zeros(5, 3, 2, 2))
    assert fixed.batch == 8


def test_compare_report_states_the_precision(tmp_path, monkeypatch) -> None:
    """``--backends ... --half --cuda_graph`` labels the comparison with its precision (run
    on the CPU with the CUDA checks stubbed out and the graph replaced by eager runs)."""
    monkeypatch.setattr(cli_predictors, "check_gpu_options", lambda *a, **k: None)
    monkeypatch.setattr(core_predictor, "check_gpu_options", lambda *a, **k: None)
    monkeypatch.setattr(CudaGraphRunner, "run_fixed", FixedBatchRunner.run_fixed)
    code = eval_main([
        "--benchmark", f"--trained_model={DEMO}", "--backends=pytorch", "--half",
        "--cuda_graph", "--max_images=1", "--benchmark_batch=1", "--benchmark_warmup=0",
        f"--benchmark_dir={tmp_path}", "--cuda=False",
    ])  # fmt: skip
    assert code == 0
    # On the CPU --half is bfloat16, and the table says so.
    assert "precision: bf16, CUDA graph," in (tmp_path / "comparison.md").read_text()


def test_upload_to_cuda_pins_and_copies_without_blocking(monkeypatch) -> None:
    """The host image goes to pinned memory, then to the device with ``non_blocking``
    (CUDA's calls recorded by stand-ins, as this machine may have no GPU)."""
    calls: list[tuple] = []

    def pin(self):
        calls.append(("pin",))
        return self

    def to(self, device, non_blocking=False):
        calls.append(("to", str(device), non_blocking))
        return self

    monkeypatch.setattr(torch.Tensor, "pin_memory", pin)
    monkeypatch.setattr(torch.Tensor, "to", to)
    upload(scene(1), torch.device("cuda"))
    assert calls == [("pin",), ("to", "cuda", True)]
    calls.clear()
    upload(scene(1), torch.device("cpu"))
    assert calls == [("to", "cpu", True)]  # no pinning for the CPU
