"""click-grow: region growing in SUV from each lesion click, stopped at background clicks.

An interactive entry (``prompts: clicks``): ``ccbench run`` gives it the clicks of each budget in
``/input/prompts.json``. The algorithm is :mod:`evaluator.learn.click_grow` (staged next to this
file at build time).
"""

import sys

from evaluator.learn.entry import run_click_grow

if __name__ == "__main__":
    sys.exit(run_click_grow(sys.argv[1:]))
