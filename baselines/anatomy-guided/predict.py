"""anatomy-guided: sliding-window inference with the trained network of the staged task.

The program is :func:`evaluator.learn.entry.run_learned`; the weights are in ``weights/<task>/``
beside this file (baked in by ``ccbench baselines build``).
"""

import sys
from pathlib import Path

from evaluator.learn.entry import run_learned

if __name__ == "__main__":
    weights = Path(__file__).resolve().parent / "weights"
    sys.exit(run_learned(["--weights", str(weights), *sys.argv[1:]]))
