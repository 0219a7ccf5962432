"""Plot training curves from the CSV logs: ``python -m yolact.engine.plots SAVE_FOLDER``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from yolact.engine.csvlog import METRIC_KEYS, read_csv

LOSS_TERMS = ("B", "C", "M", "S", "I", "total")


def _series(rows: list[dict[str, str]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for r in rows:
        if r.get(key):
            xs.append(int(r["iteration"]))
            ys.append(float(r[key]))
    return xs, ys


class PlotWriteError(OSError):
    """A plot could not be written; the message is one line."""


def _write(fig: Any, path: str) -> None:
    try:
        _save_figure(fig, path)
    except OSError as e:
        kept = "; the earlier plot is kept" if os.path.exists(path) else ""
        raise PlotWriteError(f"could not write {path}: {e.strerror or e}{kept}") from None


def _save_figure(fig: Any, path: str) -> None:
    """Write ``fig`` as a PNG beside ``path`` and rename it into place: a failed write
    leaves an earlier plot as it was."""
    tmp = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def plot_logs(folder: str, config: str | None = None) -> list[str]:
    """Write ``<config>_loss.png`` and, when validation ran, ``<config>_ap.png``.

    Args:
        folder: the training save folder holding ``<config>_train_log.csv``.
        config: which config's logs; default every config with a log there.

    Returns:
        The PNG paths written.

    Raises:
        FileNotFoundError: no training log in the folder.
        PlotWriteError: a PNG could not be written (the earlier one is kept).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if config is None:
        names = sorted(
            f[: -len("_train_log.csv")] for f in os.listdir(folder) if f.endswith("_train_log.csv")
        ) if os.path.isdir(folder) else []  # fmt: skip
    else:
        names = [config]
    if not names or not os.path.exists(os.path.join(folder, f"{names[0]}_train_log.csv")):
        raise FileNotFoundError(f"no training log (*_train_log.csv) in {folder}")
    written = []
    for name in names:
        rows = read_csv(os.path.join(folder, f"{name}_train_log.csv"))
        fig, ax = plt.subplots(figsize=(8, 4.5))
        extra = [k for k in (rows[0] if rows else {}) if k.startswith("loss_")]
        for term in (*LOSS_TERMS, *extra):
            xs, ys = _series(rows, term)
            if xs:
                ax.plot(xs, ys, label=term, linewidth=2.0 if term == "total" else 1.0)
        ax.set(xlabel="iteration", ylabel="loss", title=f"{name}: training loss")
        ax.grid(alpha=0.3)
        ax.legend()
        path = os.path.join(folder, f"{name}_loss.png")
        _write(fig, path)
        plt.close(fig)
        written.append(path)
        val = read_csv(os.path.join(folder, f"{name}_val_log.csv"))
        if val:
            fig, ax = plt.subplots(figsize=(8, 4.5))
            for tag in ("box", "mask"):
                for k in METRIC_KEYS[:3]:
                    xs, ys = _series(val, f"{tag}_{k}")
                    style = "-" if tag == "mask" else "--"
                    ax.plot(xs, ys, style, marker="o", label=f"{tag} {k}")
            ax.set(xlabel="iteration", ylabel="AP", title=f"{name}: validation AP", ylim=(0, 1))
            ax.grid(alpha=0.3)
            ax.legend()
            path = os.path.join(folder, f"{name}_ap.png")
            _write(fig, path)
            plt.close(fig)
            written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m yolact.engine.plots", description=__doc__)
    p.add_argument("folder", help="training save folder (holds *_train_log.csv)")
    p.add_argument("--config", default=None, help="only this config's logs")
    args = p.parse_args(argv)
    try:
        for path in plot_logs(args.folder, args.config):
            print(f"wrote {path}")
    except (FileNotFoundError, PlotWriteError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
