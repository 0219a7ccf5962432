"""``yolact``: one command for everything users run, as subcommands.

::

    yolact eval ...        # exactly `python eval.py ...`
    yolact benchmark ...   # exactly `python eval.py --benchmark ...`
    yolact train ...       # exactly `python train.py ...`
    yolact export ...      # exactly `python -m yolact.export ...`
    yolact slim ...        # exactly `python -m yolact.slim ...`
    yolact demo ...        # exactly `python -m yolact.demo ...`
    yolact synthetic ...   # exactly `python -m yolact.data.synthetic ...`
    yolact plots ...       # exactly `python -m yolact.engine.plots ...`
    yolact predict ...     # exactly `python -m yolact.batch.predict ...`

Every argument after the subcommand goes unchanged to the module that does the
work, so a subcommand and its older spelling are one code path. Installed by
``[project.scripts]``; ``python -m yolact.cli.main`` is the same command.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

PROG = "yolact"


@dataclass(frozen=True)
class Subcommand:
    """A subcommand: the module whose ``main(argv)`` runs it, and arguments put first."""

    module: str
    summary: str
    leading: tuple[str, ...] = ()

    def entry(self) -> Callable[[Sequence[str] | None], int]:
        """The module's ``main``; imported only when the subcommand runs."""
        main: Callable[[Sequence[str] | None], int] = importlib.import_module(self.module).main
        return main


SUBCOMMANDS: dict[str, Subcommand] = {
    "eval": Subcommand(
        "yolact.cli.eval_cli",
        "run a model on images, folders, videos, webcams, streams or a dataset (eval.py)",
    ),
    "train": Subcommand("yolact.cli.train_cli", "train a model (train.py)"),
    "export": Subcommand(
        "yolact.export", "export a checkpoint to ONNX or OpenVINO (python -m yolact.export)"
    ),
    "slim": Subcommand(
        "yolact.slim", "slim a training checkpoint for inference (python -m yolact.slim)"
    ),
    "demo": Subcommand("yolact.demo", "the no-download demo: synthetic data, AP, masks on a video"),
    "benchmark": Subcommand(
        "yolact.cli.eval_cli",
        "time a model stage by stage, or compare --backends (eval.py --benchmark)",
        ("--benchmark",),
    ),
    "synthetic": Subcommand(
        "yolact.data.synthetic",
        "write a synthetic COCO-format dataset (python -m yolact.data.synthetic)",
    ),
    "plots": Subcommand(
        "yolact.engine.plots", "plot a training run's logs (python -m yolact.engine.plots)"
    ),
    "predict": Subcommand(
        "yolact.batch.predict",
        "a model over many images to JSON lines, resumable and sharded (python -m "
        "yolact.batch.predict)",
    ),
}


def usage() -> str:
    """The text of ``yolact --help``: the usage line and one line per subcommand."""
    width = max(map(len, SUBCOMMANDS))
    lines = [
        f"usage: {PROG} <command> [arguments]",
        "",
        "commands:",
        *(f"  {name:<{width}}  {sub.summary}" for name, sub in SUBCOMMANDS.items()),
        "",
        f"`{PROG} <command> --help` lists a command's arguments.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the subcommand named by ``argv[0]`` (default ``sys.argv[1:]``).

    Returns:
        The subcommand's exit code; 0 for ``--help``; 2, with one line on stderr,
        for no or an unknown subcommand.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        sys.stdout.write(usage())
        return 0
    if not args:
        print(f"{PROG}: error: give a command ({', '.join(SUBCOMMANDS)}); see {PROG} --help",
              file=sys.stderr)  # fmt: skip
        return 2
    sub = SUBCOMMANDS.get(args[0])
    if sub is None:
        print(f"{PROG}: error: unknown command '{args[0]}'; choose from "
              f"{', '.join(SUBCOMMANDS)}", file=sys.stderr)  # fmt: skip
        return 2
    return sub.entry()([*sub.leading, *args[1:]])


if __name__ == "__main__":
    sys.exit(main())
