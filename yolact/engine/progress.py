"""What training prints: the start-up summary, the loss legend and the progress.

On a terminal the progress is a tqdm bar. Where the output is a file or a pipe (a
log, a scheduler's capture) a bar's carriage-return updates would fill it, so a
plain line is printed every ``interval`` iterations instead.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

# The YOLACT loss terms, as train.py prints and logs them.
LOSS_NAMES = {
    "B": "box regression",
    "C": "class confidence",
    "M": "mask",
    "S": "semantic segmentation",
    "I": "mask IoU",
}


def loss_legend(keys: list[str]) -> str | None:
    """One line naming the loss letters among ``keys`` (None when there are none,
    e.g. the Mask R-CNN reference's self-describing ``loss_*`` names)."""
    named = [f"{k} {LOSS_NAMES[k]}" for k in keys if k in LOSS_NAMES]
    if not named:
        return None
    tail = ", total their weighted sum" if "total" in keys else ""
    return "losses: " + ", ".join(named) + tail


def is_terminal(*streams: TextIO) -> bool:
    """Whether every stream is an interactive terminal."""
    for stream in streams:
        isatty = getattr(stream, "isatty", None)
        if isatty is None or not isatty():
            return False
    return True


def format_losses(losses: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.3f}" for k, v in losses.items())


class Progress:
    """The training progress of rank 0: a bar on a terminal, else plain lines.

    Args:
        total: the last iteration.
        initial: the iteration the run starts at (a resume).
        interval: iterations between plain lines (the last iteration is always printed).
        bar: allow a bar (``--no_bar`` clears it); it is used only when stdout and
            stderr are both terminals.
        stream: where plain lines go (default: stdout).
    """

    def __init__(
        self,
        total: int,
        initial: int,
        interval: int,
        bar: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.total, self.interval = total, max(1, int(interval))
        self.stream = stream if stream is not None else sys.stdout
        self.bar: Any = None
        self._legend_done = False
        self._last = (initial, time.perf_counter())
        if bar and is_terminal(sys.stdout, sys.stderr):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="it", dynamic_ncols=True)

    def _write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=self.stream, flush=True)

    def update(self, iteration: int, epoch: int, losses: dict[str, float], lr: float) -> None:
        """Report the iteration just done and its (rank-averaged) losses."""
        if not self._legend_done:
            self._legend_done = True
            legend = loss_legend(list(losses))
            if legend is not None:
                self._write(legend)
        if self.bar is not None:
            self.bar.update(iteration - self.bar.n)
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
            return
        if iteration % self.interval != 0 and iteration != self.total:
            return
        start, tic = self._last
        now = time.perf_counter()
        per_it = (now - tic) / max(1, iteration - start)
        self._last = (iteration, now)
        self._write(
            f"iteration {iteration}/{self.total}  epoch {epoch}  {format_losses(losses)}  "
            f"lr {lr:.3g}  {per_it:.2f} s/it"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def startup_summary(
    config: str,
    train_images: int,
    classes: int,
    val_images: int | None,
    device: str,
    batch: int,
    world: int,
    lr: float,
    start: int,
    end: int,
    save_folder: str,
    workers: int,
) -> str:
    """One line stating what the run is about to do."""
    val = f", validation {val_images} images" if val_images is not None else ""
    per = f" ({batch // world} per process x {world})" if world > 1 else ""
    iters = f"iterations {start} -> {end}" if start else f"iterations {end}"
    return (
        f"training {config}: {train_images} images, {classes} classes{val}; device {device}; "
        f"batch {batch}{per}; lr {lr:.3g}; {iters}; save folder {save_folder}; "
        f"{workers} data worker{'' if workers == 1 else 's'}"
    )
