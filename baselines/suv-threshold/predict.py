"""suv-threshold: SUV threshold, minimum component volume, brain and bladder suppressed.

The algorithm is :mod:`evaluator.learn.suv_threshold` (staged next to this file at build time).
"""

import sys

from evaluator.learn.entry import run_suv_threshold

if __name__ == "__main__":
    sys.exit(run_suv_threshold(sys.argv[1:]))
