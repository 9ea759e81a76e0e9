"""``python -m bench run --scale 10k``: see :mod:`bench`."""

from __future__ import annotations

import sys

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
