"""Sizing a process's thread pools to the cores it may use.

PyTorch, OpenCV and the ONNX runtimes each start as many threads as the machine
has cores; a pipeline that runs several of them at once, a data loader with
worker processes, or a second busy process on the same cores then makes them
fight, and a 2-core machine runs many times slower than with one thread each.
:func:`configure_threads` is called once at the start of ``eval.py``,
``train.py`` and the demo (and again before the demo evaluates): it decides every
pool's size with :func:`plan_threads` and applies it. The Python API sizes them
with :func:`size_threads_once` when it creates a predictor, unless the program
set them itself. Other backends read the decision from :func:`current_plan`
(``current_plan().runtime`` for onnxruntime's and OpenVINO's thread counts).

The budget is, in order of precedence: ``--threads N``; then the cores the
process may run on (``os.sched_getaffinity``), less those that other processes
keep busy right now (``/proc/stat`` sampled for 0.1 s at start, rounded to whole
cores, at least 1). An explicit ``OMP_NUM_THREADS`` (unless ``--threads`` is
given) fixes the network's own thread count and skips the sampling.

Why the idle cores: OpenMP threads spin while they wait at the end of a
parallel region. Two threads on two cores are fastest on an idle machine, but
as soon as another process takes one core every region waits for the
descheduled thread while its sibling spins, and the rate collapses. Sizing to
the idle cores keeps both: all cores when they are free, fewer beside a busy
process. Load that starts after the process started is not followed.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import torch

OMP_ENV = "OMP_NUM_THREADS"


class ThreadsError(ValueError):
    """A thread count that cannot be used (the message is one line)."""


@dataclass(frozen=True)
class ThreadPlan:
    """The size of every thread pool of one process.

    Attributes:
        cores: cores the process may run on.
        budget: threads the process means to keep busy (``--threads`` or ``cores``).
        intra_op: torch intra-op threads, used by the network (and by the ONNX
            runtimes: ``runtime``).
        inter_op: torch inter-op threads.
        opencv: OpenCV's worker threads (``cv2.setNumThreads``).
        reserved: threads kept busy beside the network (pipeline stages, data
            loader workers).
        source: what set the budget: "--threads", "OMP_NUM_THREADS", "cores", or
            "N of M cores idle" (other processes keep the rest busy).
    """

    cores: int
    budget: int
    intra_op: int
    inter_op: int
    opencv: int
    reserved: int
    source: str

    @property
    def runtime(self) -> int:
        """Intra-op threads for onnxruntime and OpenVINO (the network's share)."""
        return self.intra_op

    def loader_workers(self, requested: int) -> int:
        """Data loader processes: at most ``requested``, leaving one of the budget's
        threads to the training process itself (0 on one core)."""
        return max(0, min(int(requested), self.budget - 1))

    def describe(self) -> str:
        """One line: ``threads: torch 1 (+1 inter-op), opencv 1; 2 cores, budget 2 (cores)``."""
        return (
            f"threads: torch {self.intra_op} (+{self.inter_op} inter-op), opencv {self.opencv}; "
            f"{self.cores} cores, budget {self.budget} ({self.source})"
        )


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity; ``os.cpu_count()`` where the
    platform has no affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all CPUs from ``/proc/stat``; None where unreadable."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 5:
        return None
    values = [int(v) for v in fields[1:9]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return idle, sum(values)


def idle_cores(cores: int, sample_s: float = 0.1) -> int | None:
    """Whole cores that no other process keeps busy, out of ``cores``: the machine's
    idle share over ``sample_s`` seconds times its CPU count, rounded, at least 1.
    None where ``/proc/stat`` cannot be read."""
    first = _cpu_times()
    if first is None:
        return None
    time.sleep(sample_s)
    second = _cpu_times()
    if second is None or second[1] <= first[1]:
        return None
    share = (second[0] - first[0]) / (second[1] - first[1])
    machine = os.cpu_count() or cores
    return max(1, min(cores, round(share * machine)))


def _env_threads(environ: Mapping[str, str]) -> int | None:
    text = environ.get(OMP_ENV, "").strip()
    if not text:
        return None
    try:
        value = int(text.split(",")[0])  # "4,2" (nested levels): the outer level
    except ValueError:
        raise ThreadsError(f"{OMP_ENV} must be a positive integer, got '{text}'") from None
    if value < 1:
        raise ThreadsError(f"{OMP_ENV} must be a positive integer, got '{text}'")
    return value


def plan_threads(
    cores: int,
    *,
    requested: int | None = None,
    environ: Mapping[str, str] | None = None,
    reserved: int = 0,
    idle: int | None = None,
) -> ThreadPlan:
    """Decide every pool's size (nothing is applied).

    Rules: the budget is ``requested`` (``--threads``), else ``idle`` (the cores
    other processes leave free) when given, else ``cores``. The
    network gets the budget less the ``reserved`` threads that run beside it (at
    least 1); an explicit ``OMP_NUM_THREADS`` replaces that number when
    ``requested`` is None. OpenCV gets the reserved threads (it draws and
    encodes beside the network), or the whole budget when nothing runs beside
    the network. Inter-op parallelism is not used: 1 thread.

    Args:
        cores: cores the process may use (>= 1).
        requested: ``--threads N`` (>= 1), or None.
        environ: the environment to read ``OMP_NUM_THREADS`` from (default
            ``os.environ``).
        reserved: busy threads beside the network: 1 for the video pipeline's
            drawing and writing thread, the data loader workers in training.
        idle: cores that other processes leave free (:func:`idle_cores`), or None.

    Raises:
        ThreadsError: ``requested`` or ``OMP_NUM_THREADS`` below 1 or not a number.
    """
    environ = os.environ if environ is None else environ
    if requested is not None and requested < 1:
        raise ThreadsError(f"--threads must be at least 1, got {requested}")
    cores = max(1, int(cores))
    reserved = max(0, int(reserved))
    env = _env_threads(environ)
    free = cores if idle is None else max(1, min(cores, int(idle)))
    budget = requested if requested is not None else free
    if requested is not None:
        source = "--threads"
        intra = max(1, budget - reserved)
    elif env is not None:
        source = OMP_ENV
        intra = env
    else:
        source = "cores" if free == cores else f"{free} of {cores} cores idle"
        intra = max(1, budget - reserved)
    opencv = max(1, min(budget, reserved)) if reserved else budget
    return ThreadPlan(cores, budget, intra, 1, opencv, reserved, source)


_current: ThreadPlan | None = None


def apply_threads(plan: ThreadPlan) -> None:
    """Set torch's and OpenCV's pools to ``plan``'s sizes; :func:`current_plan` returns it.

    torch's inter-op pool can be sized only before its first use; a later call
    leaves it as it is.
    """
    global _current
    torch.set_num_threads(plan.intra_op)
    if torch.get_num_interop_threads() != plan.inter_op:
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(plan.inter_op)
    cv2.setNumThreads(plan.opencv)
    _current = plan


def configure_threads(requested: int | None = None, *, reserved: int = 0) -> ThreadPlan:
    """Plan the pools for this process's cores and apply them; see :func:`plan_threads`.

    Raises:
        ThreadsError: a bad ``requested`` or ``OMP_NUM_THREADS``.
    """
    cores = available_cores()
    idle = None
    if requested is None and _env_threads(os.environ) is None and cores > 1:
        idle = idle_cores(cores)
    plan = plan_threads(cores, requested=requested, reserved=reserved, idle=idle)
    apply_threads(plan)
    return plan


# torch's own thread count when this module was first imported: a different count
# later means the program called torch.set_num_threads itself.
_TORCH_THREADS_AT_IMPORT = torch.get_num_threads()


def size_threads_once(requested: int | None = None) -> ThreadPlan | None:
    """Size the pools for the Python API (a predictor being created), unless the
    program has decided them already.

    The rule: ``requested`` (a ``threads=N`` argument) always sizes them. Otherwise
    they are sized as :func:`configure_threads` does (the cores idle now) the first
    time only, and never when the program set them itself: when a plan was applied
    already in this process (an entry point such as eval.py, or an earlier
    predictor), when ``OMP_NUM_THREADS`` is set (torch started with it), or when
    torch's thread count differs from the one it had when yolact was imported
    (``torch.set_num_threads`` was called).

    Returns:
        The plan applied now, or None when the pools were left as they are.

    Raises:
        ThreadsError: a bad ``requested`` or ``OMP_NUM_THREADS``.
    """
    if requested is not None:
        return configure_threads(requested)
    if _current is not None or _env_threads(os.environ) is not None:
        return None
    if torch.get_num_threads() != _TORCH_THREADS_AT_IMPORT:
        return None
    return configure_threads()


def current_plan() -> ThreadPlan:
    """The plan last applied, or (before any) the plan for this process's cores."""
    return _current if _current is not None else plan_threads(available_cores())
