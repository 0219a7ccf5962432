"""``python -m yolact.demo``: the no-download demo of :mod:`yolact.apps.demo`."""

import sys

from yolact.apps.demo import main

if __name__ == "__main__":
    sys.exit(main())
