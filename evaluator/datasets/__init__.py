"""Dataset adapters (one per on-disk format), phantom generators, splits and checks.

The public entry points live in their modules and are imported from there, e.g.
``from evaluator.datasets.base import open_dataset, read_image`` or
``from evaluator.datasets.splits import make_split, resolve_split``; importing this package
loads nothing else (no SimpleITK, no numpy).
"""

__all__: list[str] = []
