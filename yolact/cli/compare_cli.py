"""``eval.py --benchmark --compare OTHER``: two models side by side on the same frames."""

from __future__ import annotations

import argparse
import copy
import os
import sys

from yolact.apps.compare import compare_models
from yolact.cli.predictors import UsageError, benchmark_frames, build_predictor
from yolact.data.coco import CocoDataset, named_dataset
from yolact.engine.evaluate import evaluate_dataset, match_classes


def _other_args(args: argparse.Namespace) -> argparse.Namespace:
    """The flags of the second model: --compare names a checkpoint or a config."""
    other = copy.copy(args)
    spec = args.compare
    if spec.endswith((".pth", ".pt")) or os.path.isfile(spec):
        other.trained_model, other.config = spec, None
    else:
        other.trained_model, other.config = None, spec
    return other


def run_compare(args: argparse.Namespace) -> int:
    """Time both models at batch 1 and ``--benchmark_batch``; with a dataset
    (``--dataset`` or ``--val_ann/--val_images``) also measure their AP."""
    if args.benchmark_batch < 1:
        raise UsageError("--benchmark_batch must be at least 1")
    dataset = None
    if args.dataset or args.val_ann or args.val_images:
        if not args.dataset and not (args.val_ann and args.val_images):
            raise UsageError("--val_ann and --val_images go together")
        files = named_dataset(args.dataset) if args.dataset else (args.val_ann, args.val_images)
        dataset = CocoDataset(*files)
    # Both models keep every detection, as for AP, so they do the same work.
    classes = dataset.class_names if dataset is not None else None
    source = os.path.basename(dataset.ann_file) if dataset is not None else "the dataset"
    first = build_predictor(args, keep_all=True, class_names=classes, class_source=source)
    second = build_predictor(_other_args(args), keep_all=True, class_names=classes,
                             class_source=source)  # fmt: skip
    names = [first.cfg.name, second.cfg.name]
    if names[0] == names[1]:
        names = [f"{names[0]} (1)", f"{names[1]} (2)"]
    default = 50 if first.device.type == "cuda" else 8
    count = args.max_images if args.max_images > 0 else default
    frames = benchmark_frames(args, count)
    evaluate = None
    if dataset is not None:

        def evaluate(predictor):
            matched, note = match_classes(dataset, predictor.class_names)
            if note:
                print(note, file=sys.stderr)
            result = evaluate_dataset(predictor, matched, max_images=args.max_images,
                                      progress=not args.no_bar)  # fmt: skip
            return result.metrics

    sizes = (1,) if args.benchmark_batch == 1 else (1, args.benchmark_batch)
    comparison = compare_models(
        list(zip(names, (first, second))), frames, batch_sizes=sizes,
        warmup=args.benchmark_warmup, evaluate=evaluate,
    )  # fmt: skip
    print(comparison.table())
    for path in comparison.write(args.benchmark_dir):
        print(f"wrote {path}")
    return 0
