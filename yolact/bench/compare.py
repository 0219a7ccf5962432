"""Side-by-side speed/accuracy comparison of two models on the same frames.

Each model is timed stage by stage (:mod:`yolact.bench.benchmark`) at batch 1 and at
a larger batch, on the same frames, device and precision, with its peak
memory; with a dataset, each model's box and mask AP are measured too. The
result is written as a printed table, a markdown file, a CSV and a PNG plot
of FPS against mask AP.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from yolact.backends.writes import write_file
from yolact.bench.benchmark import BenchmarkResult, run_benchmark
from yolact.core.predictor import Predictor
from yolact.engine.evaluate import AP_UNIT

# Printed and markdown column titles where they differ from the CSV keys: AP carries its unit.
TITLES = {"box_ap": f"box AP ({AP_UNIT})", "mask_ap": f"mask AP ({AP_UNIT})"}


@dataclass
class ModelReport:
    """Everything measured for one model."""

    name: str
    timings: list[BenchmarkResult]
    peak_memory_mb: dict[int, float]
    params_m: float  # NaN where unknown (an exported graph)
    metrics: dict | None = None

    def ap(self, kind: str) -> float | None:
        if self.metrics is None:
            return None
        return float(self.metrics[kind]["AP"])


@dataclass
class Comparison:
    reports: list[ModelReport]
    device: str
    precision: str
    frames: int
    image_size: tuple[int, int]
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, object]]:
        out = []
        for r in self.reports:
            for t in r.timings:
                box, mask = r.ap("bbox"), r.ap("segm")
                out.append(
                    {
                        "model": r.name,
                        "batch": t.batch_size,
                        "pre_ms": round(t.pre_ms, 2),
                        "network_ms": round(t.network_ms, 2),
                        "post_ms": round(t.post_ms, 2),
                        "total_ms": round(t.total_ms, 2),
                        "fps": round(t.fps, 2),
                        "peak_mem_mb": round(r.peak_memory_mb.get(t.batch_size, float("nan")), 1),
                        "params_m": round(r.params_m, 2),
                        "box_ap": "" if box is None else round(box, 4),
                        "mask_ap": "" if mask is None else round(mask, 4),
                    }
                )
        return out

    def markdown(self) -> str:
        rows = self.rows()
        H, W = self.image_size
        head = (
            f"Device: {self.device}, precision: {self.precision}, {self.frames} frames of "
            f"{W}x{H}, warm-up excluded; ms per frame.\n\n"
        )
        cols = list(rows[0]) if rows else []
        titles = [TITLES.get(c, c) for c in cols]
        lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
        notes = "".join(f"\n- {n}" for n in self.notes)
        return head + "\n".join(lines) + ("\n" + notes if notes else "") + "\n"

    def table(self) -> str:
        rows = self.rows()
        cols = ["model", "batch", "pre_ms", "network_ms", "post_ms", "total_ms", "fps",
                "peak_mem_mb", "box_ap", "mask_ap"]  # fmt: skip
        titles = {c: TITLES.get(c, c) for c in cols}
        widths = {c: max(len(titles[c]), *(len(str(r[c])) for r in rows)) for c in cols}
        fmt = "  ".join(f"{{{c}:>{widths[c]}}}" for c in cols)
        lines = [fmt.format(**titles)]
        lines += [fmt.format(**{c: str(r[c]) for c in cols}) for r in rows]
        return "\n".join(lines)

    def write(self, folder: str) -> list[str]:
        """Write comparison.md, comparison.csv and comparison.png into ``folder``
        (made if missing), each beside its place first, then moved over an earlier one.

        Raises:
            WriteError: the folder or a file cannot be written, in one line.
        """
        md = os.path.join(folder, "comparison.md")
        write_file(md, lambda tmp: self._write_text(tmp, self.markdown()))
        path_csv = os.path.join(folder, "comparison.csv")
        write_file(path_csv, self._write_csv)
        png = os.path.join(folder, "comparison.png")
        write_file(png, self.plot)
        return [md, path_csv, png]

    @staticmethod
    def _write_text(path: str, text: str) -> None:
        with open(path, "w") as f:
            f.write(text)

    def _write_csv(self, path: str) -> None:
        rows = self.rows()
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    def plot(self, path: str) -> None:
        """FPS (batch 1) against mask AP; without AP, FPS per model as bars."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        have_ap = all(r.metrics is not None for r in self.reports)
        for r in self.reports:
            fps = r.timings[0].fps
            if have_ap:
                ap = r.ap("segm")
                assert ap is not None
                ax.scatter([fps], [ap], s=60)
                ax.annotate(r.name, (fps, ap), textcoords="offset points", xytext=(6, 6))
            else:
                ax.bar([r.name], [fps])
        if have_ap:
            ax.set(xlabel="FPS (batch 1)", ylabel=f"mask AP ({AP_UNIT})")
            ax.set_xlim(left=0)
        else:
            ax.set(ylabel="FPS (batch 1)")
        ax.set_title(f"speed vs accuracy on {self.device} ({self.precision})")
        ax.grid(alpha=0.3)
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)


def _rss_peak_mb() -> float:
    """Peak resident memory of this process (VmHWM), in MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _reset_rss_peak() -> bool:
    """Reset VmHWM (Linux: write 5 to clear_refs); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure_peak_memory(device: torch.device, fn: Callable[[], object]) -> float:
    """Peak memory in MiB while ``fn`` runs: allocated CUDA memory on a GPU, the
    process's peak resident memory on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    _reset_rss_peak()
    fn()
    return _rss_peak_mb()


def _timed(
    predictor: Predictor, frames: Sequence[np.ndarray], warmup: int, batch_size: int
) -> tuple[BenchmarkResult, float]:
    """``run_benchmark`` of a predictor of either family, and its peak memory in MiB."""
    out: list[BenchmarkResult] = []
    peak = measure_peak_memory(
        predictor.device, lambda: out.append(run_benchmark(predictor, frames, warmup, batch_size))
    )
    return out[0], peak


def compare_models(
    predictors: Sequence[tuple[str, Predictor]],
    frames: Sequence[np.ndarray],
    *,
    batch_sizes: Sequence[int] = (1, 4),
    warmup: int = 3,
    evaluate: Callable[[Predictor], dict | None] | None = None,
    precision: str = "fp32",
) -> Comparison:
    """Benchmark each ``(name, predictor)`` on the same frames and batch sizes.

    Args:
        predictors: named predictors with run_pre / run_network / run_post.
        frames: BGR uint8 frames, the same for every model.
        batch_sizes: batch sizes to time (each model, each size).
        warmup: untimed batches before each timing.
        evaluate: optional ``predictor -> metrics`` (COCOeval dict) for AP.
        precision: label for the report.
    """
    reports = []
    device = None
    for name, predictor in predictors:
        device = predictor.device
        timings, memory = [], {}
        for bs in batch_sizes:
            timing, memory[bs] = _timed(predictor, frames, warmup, bs)
            timings.append(timing)
        model = getattr(predictor, "model", None)  # an exported graph has no torch model
        params = (
            sum(p.numel() for p in model.parameters()) / 1e6
            if isinstance(model, torch.nn.Module)
            else float("nan")
        )
        metrics = evaluate(predictor) if evaluate is not None else None
        reports.append(ModelReport(name, timings, memory, params, metrics))
    notes = []
    if device is not None and device.type != "cuda":
        notes.append("peak memory on the CPU is the process's peak resident set (VmHWM)")
    return Comparison(
        reports=reports,
        device=str(device),
        precision=precision,
        frames=len(frames),
        image_size=tuple(frames[0].shape[:2]),
        notes=notes,
    )
