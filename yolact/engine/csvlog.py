"""Loss and metric logs as CSV files in the save folder (appended across resumes)."""

from __future__ import annotations

import contextlib
import csv
import os

TRAIN_FIELDS = ["epoch", "iteration", "lr", "B", "C", "M", "S", "I", "total", "seconds"]
METRIC_KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl"]
VAL_FIELDS = ["epoch", "iteration"] + [f"{t}_{k}" for t in ("box", "mask") for k in METRIC_KEYS]


class CsvLog:
    """``<config>_train_log.csv`` and ``<config>_val_log.csv`` in ``folder``."""

    def __init__(self, folder: str, config_name: str) -> None:
        os.makedirs(folder, exist_ok=True)
        self.train_path = os.path.join(folder, f"{config_name}_train_log.csv")
        self.val_path = os.path.join(folder, f"{config_name}_val_log.csv")

    @staticmethod
    def _append(path: str, fields: list[str], row: dict) -> None:
        """Append ``row``; a failed write (a full disk) is cut back off the file, so
        no partial row is left, and raised."""
        size = os.path.getsize(path) if os.path.exists(path) else 0
        new = size == 0
        if not new:
            with open(path, newline="") as f:
                fields = next(csv.reader(f), fields)  # keep the file's own columns
        try:
            with open(path, "a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
                if new:
                    writer.writeheader()
                writer.writerow(row)
        except OSError:
            with contextlib.suppress(OSError), open(path, "r+b") as g:
                g.truncate(size)
            raise

    def train(
        self, epoch: int, iteration: int, lr: float, losses: dict[str, float], seconds: float
    ) -> None:
        row = {
            "epoch": epoch,
            "iteration": iteration,
            "lr": f"{lr:.6g}",
            "seconds": f"{seconds:.4f}",
        }
        row.update({k: f"{v:.6f}" for k, v in losses.items()})
        terms = [k for k in losses if k != "total"]
        fields = TRAIN_FIELDS
        if not set(terms) <= set(TRAIN_FIELDS):  # the Mask R-CNN reference's loss names
            fields = ["epoch", "iteration", "lr", *terms, "total", "seconds"]
        self._append(self.train_path, fields, row)

    def validation(self, epoch: int, iteration: int, metrics: dict[str, dict[str, float]]) -> None:
        row: dict = {"epoch": epoch, "iteration": iteration}
        for tag, key in (("box", "bbox"), ("mask", "segm")):
            for k in METRIC_KEYS:
                row[f"{tag}_{k}"] = f"{metrics[key][k]:.6f}"
        self._append(self.val_path, VAL_FIELDS, row)


def read_csv(path: str) -> list[dict[str, str]]:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
