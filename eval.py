"""Run YOLACT on images, folders, videos, webcams and streams: ``python eval.py --help``."""

import sys

from yolact.cli.eval_cli import main

if __name__ == "__main__":
    sys.exit(main())
