"""Layout of the toy-study table: written by :mod:`~evaluator.simulate.toy`, read by plots.

:mod:`evaluator.simulate.toy` builds the table and calls :mod:`evaluator.simulate.plots` to draw
it; both import the layout from here, so ``plots`` never imports ``toy`` (no import cycle).
``toy`` re-exports both names.
"""

from __future__ import annotations

__all__ = ["PRED_COMPONENTS", "TOY_COLUMNS"]

#: Columns of the toy-study table (one row per study, variant, step and metric).
TOY_COLUMNS = ("study", "variant", "step", "amount", "metric", "component", "value")
#: Pseudo-metric of the toy table: number of connected components of the prediction.
PRED_COMPONENTS = "pred_components"
