"""The baselines' own algorithms: learned networks (MONAI) and the SUV threshold.

Two halves:

* the container side, copied into the baselines' images and run there (numpy, SimpleITK,
  torch and MONAI only; nothing else of ccbench): :mod:`.models` (networks and training
  profiles as data), :mod:`.preprocess` (intensity rules), :mod:`.infer` (sliding-window
  inference), :mod:`.instances` (2D components as scored COCO instances), :mod:`.layouts` (the container contract's input and output folders),
  :mod:`.suv_threshold` and :mod:`.entry` (the programs ``predict.py`` calls);
* the host side: :mod:`.train` (``ccbench baselines train``), which reads the task's data
  through the dataset adapters and records the training in the store.

Nothing is imported here, so ``import evaluator.learn`` costs nothing.
"""

#: Modules copied into the baselines' images (see :func:`evaluator.runner.baselines.stage_context`).
CONTAINER_MODULES: tuple[str, ...] = (
    "__init__",
    "click_grow",
    "entry",
    "infer",
    "instances",
    "layouts",
    "models",
    "nnunet_predict",
    "preprocess",
    "suv_threshold",
)

__all__ = ["CONTAINER_MODULES"]
