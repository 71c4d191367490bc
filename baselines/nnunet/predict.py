"""nnunet: nnU-Net v2 inference with the packed model of the staged task.

The program is :func:`evaluator.learn.nnunet_predict.run_nnunet`; the packed models are in
``weights/<task>/`` beside this file (baked in by ``ccbench baselines build --model nnunet`` or
``ccbench submit --nnunet-results``). ``--tta``/``--no-tta`` switches nnU-Net's test-time
mirroring (default: the packed model's ``config.json``).
"""

import sys
from pathlib import Path

from evaluator.learn.nnunet_predict import run_nnunet

if __name__ == "__main__":
    weights = Path(__file__).resolve().parent / "weights"
    sys.exit(run_nnunet(["--weights", str(weights), *sys.argv[1:]]))
