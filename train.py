"""Train YOLACT on COCO or a COCO-format dataset: ``python train.py --help``.

Several GPUs or machines: ``torchrun --nproc_per_node=N train.py ...``.
"""

import os
import sys

# Set before torch loads its OpenMP runtime: idle pool threads sleep instead of spinning,
# so that a run beside another busy process does not collapse (see yolact/core/threads.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from yolact.cli.train_cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
