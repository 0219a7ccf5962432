"""``yolact predict``: a model over many images, to JSON lines; resumable and shardable.

::

    yolact predict --trained_model=weights/yolact_base_54_800000.pth \\
        --source="photos/**/*.jpg" --out=results.jsonl --shard=0/4

``--source`` is a glob, a folder, a ``.txt`` list or a COCO JSON
(:mod:`yolact.batch.sources`). One line per image is appended to ``--out`` and
flushed (:mod:`yolact.batch.records`, :mod:`yolact.batch.jsonl`); a second run
skips the images already there, so a stopped or crashed run is simply run
again. ``--shard=i/N`` processes one of N disjoint parts of the list, so N jobs
on N machines split the work without talking to each other; their outputs,
concatenated, hold the records one run would write.

SIGINT and SIGTERM finish the batch in flight and keep every line written. An
unreadable image is skipped with one line on stderr and counted (and tried
again by the next run).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from yolact.batch.fixed import FixedBatchPredictor
from yolact.batch.jsonl import LineWriter, resume
from yolact.batch.records import dump_line, make_record
from yolact.batch.sources import ImageEntry, Shard, list_source
from yolact.io.outputs import FileSet, OutputError
from yolact.io.stop import StopSignals


@dataclass
class Counts:
    """What a run did."""

    written: int = 0
    detections: int = 0
    skipped: int = 0
    already: int = 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="yolact predict",
        description="Run a model over many images; write one JSON line per image "
        "(COCO RLE masks). Resumable; --shard=i/N splits the work between N jobs.",
    )
    p.add_argument("--trained_model", required=True,
                   help="a checkpoint, an .onnx file or an OpenVINO model folder")  # fmt: skip
    p.add_argument("--source", required=True,
                   help="a glob ('photos/**/*.jpg'), a folder, a .txt list of paths "
                   "or a COCO .json")  # fmt: skip
    p.add_argument("--out", required=True, help="the JSON-lines file (appended to)")
    p.add_argument("--image_dir", default=None,
                   help="the folder of a COCO JSON's file_names (default: the JSON's)")  # fmt: skip
    p.add_argument("--shard", default="0/1", help="process part i of N (default 0/1: all)")
    p.add_argument("--batch_size", type=int, default=1,
                   help="images per network call (default 1: an image's results depend on "
                   "nothing else, so shards and resumed runs merge byte for byte)")  # fmt: skip
    p.add_argument("--score_threshold", type=float, default=0.0,
                   help="keep detections scoring above this (default 0: all)")  # fmt: skip
    p.add_argument("--config", default=None, help="a registered config (default: from the file)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA if any)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: idle cores)")
    return p.parse_args(argv)


def check_out(out: str, inputs: Sequence[str]) -> None:
    """Refuse an ``--out`` that is one of the run's inputs (any spelling, any link)."""
    hit = FileSet(inputs).find(out)
    if hit is not None:
        raise OutputError(f"--out {out} is the input {hit} (the same file); give another --out")


def run(args: argparse.Namespace, stop: StopSignals) -> int:
    """Do the run the flags ask for; returns the exit code."""
    from yolact.cli.predictors import UsageError
    from yolact.inference.sources import ImageFiles
    from yolact.inference.stream import stream
    from yolact.runtime.device import select_device

    if args.batch_size < 1:
        raise UsageError(f"--batch_size must be at least 1, got {args.batch_size}")
    try:
        select_device(args.device)
    except ValueError as e:
        raise UsageError(str(e)) from None
    shard = Shard.parse(args.shard)
    entries = list_source(args.source, args.image_dir)
    check_out(args.out, [args.source, args.trained_model, *(e.path for e in entries)])
    done, dropped = resume(args.out)
    if dropped:
        print(f"note: dropped the unfinished last line of {args.out} ({dropped} bytes) "
              "left by an interrupted run", file=sys.stderr)  # fmt: skip
    mine = shard.select(entries)
    todo = [e for e in mine if e.path not in done]
    counts = Counts(already=len(mine) - len(todo))
    if not todo:
        with LineWriter(args.out):  # an empty shard's output exists too
            pass
    else:
        fixed = FixedBatchPredictor.load(
            args.trained_model, args.batch_size, score_threshold=args.score_threshold,
            device=args.device, threads=args.threads, config=args.config,
        )  # fmt: skip
        files = ImageFiles([e.path for e in todo], args.source, skip_unreadable=True)

        def skip(path: str, err: Exception) -> None:
            counts.skipped += 1
            print(f"skipping: {err}", file=sys.stderr)

        with stop.polling(), LineWriter(args.out) as writer:
            s = stream(fixed, files, batch_size=args.batch_size, stop=stop.event, on_skip=skip)
            with s:
                for r in s:
                    entry: ImageEntry = todo[r.frame_index]
                    record = make_record(
                        r.detections, image_id=entry.image_id, file_name=entry.file_name,
                        path=entry.path, class_names=fixed.class_names,
                    )  # fmt: skip
                    writer.write(dump_line(record))
                    counts.written += 1
                    counts.detections += len(record["detections"])
    part = f"shard {shard.index}/{shard.count}: " if shard.count > 1 else ""
    print(f"{part}wrote {counts.written} images ({counts.detections} detections) to {args.out}; "
          f"{counts.already} already there, {counts.skipped} unreadable skipped, "
          f"{len(mine)} of {len(entries)} images in this shard")  # fmt: skip
    if stop.requested:
        print(f"stopped by {stop.name}; kept {counts.written} lines, run again to resume",
              file=sys.stderr)  # fmt: skip
        return stop.exit_code
    if todo and counts.skipped == len(todo):
        print(f"error: none of the {len(todo)} images could be read", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``yolact predict``; returns the exit code (1 with one line on
    stderr for bad input)."""
    from yolact.cli.eval_cli import ERRORS

    args = parse_args(argv)
    with StopSignals() as stop:
        try:
            return run(args, stop)
        except ERRORS as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"interrupted ({stop.name})", file=sys.stderr)
            return stop.exit_code


if __name__ == "__main__":
    sys.exit(main())
