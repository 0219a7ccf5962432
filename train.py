"""Train YOLACT on COCO or a COCO-format dataset: ``python train.py --help``.

Several GPUs or machines: ``torchrun --nproc_per_node=N train.py ...``.
"""

import sys

from yolact.cli.train_cli import main

if __name__ == "__main__":
    sys.exit(main())
