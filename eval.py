"""Run YOLACT on images, folders, videos, webcams and streams: ``python eval.py --help``."""

import os
import sys

# Set before torch loads its OpenMP runtime: idle pool threads sleep instead of spinning,
# so that a run beside another busy process does not collapse (see yolact/core/threads.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from yolact.cli.eval_cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
