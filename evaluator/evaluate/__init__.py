"""``ccbench evaluate``: score a folder of predictions against a split, into the results store.

Pipeline: the split's case ids -> prediction files matched by case id -> one :class:`CaseJob`
per case -> scored in parallel (a local process pool, or an existing Dask cluster) -> each case
written to the store in ONE transaction as soon as it is scored -> run-level aggregates ->
``results.csv`` and ``summary.json``. A killed run is resumed by running the same command again:
only the cases missing from the store are scored. A finished run is a no-op unless ``force``.

Prediction layouts (3D tasks), tried in this order for each case id ``C``:

1. ``<pred>/C.nii.gz`` (or ``.nii``, ``.mha``): the nnU-Net / batch layout. Files are read
   through :mod:`evaluator.ingest` (single-file formats only, no links, header checked first).
2. ``<pred>/mapping.json``: ``{"C": "images/<slug>/<uuid>.mha", ...}``, paths relative to
   ``<pred>``, for grand-challenge style output folders (``<pred>/images/<slug>/<uuid>.mha``).
3. ``<pred>/C/``: a per-case folder (the grand-challenge "one container run per case" output)
   holding exactly one image file at any depth, e.g. ``<pred>/C/images/<slug>/<uuid>.mha``.

ChestXDet (2D instance task): ``<pred>`` is a JSON file, or a folder holding exactly one. Either
the standard COCO results list ``[{"image_id", "category_id", "segmentation" (RLE), "score"}]``,
where ``image_id`` is the case id (the image file stem, string or integer), or the ChestXDet
style ``[{"file_name", "syms": [class names], "polygons": [[[x, y], ...]], "scores": [...]}]``
(scores default to 1). An image with no instance is an empty prediction; a missing or unreadable
JSON file makes every case ``missing`` / ``undecodable``.

Bad predictions (:data:`ERROR_CLASSES`): a missing file, an undecodable file, wrong geometry, NaN,
a label outside the map are recorded as a per-case error and scored with the worst value of every
metric (:attr:`MetricSpec.worst`; for CC distances the profile's ``cc_worst_distance_mm``), so a
team cannot skip hard cases. An empty prediction is scored normally by the metrics' edge-case
rules (:data:`~evaluator.metrics.registry.EDGE_CASES`) and is noted as an ``empty`` case error.
"""

from evaluator.evaluate.pipeline import EvaluationResult, evaluate_run
from evaluator.evaluate.plan import (
    DEFAULT_WORST_DISTANCE_MM,
    ERROR_CLASSES,
    make_plan,
    ranking_worst,
)
from evaluator.evaluate.predictions import IMAGE_EXTENSIONS, find_predictions
from evaluator.evaluate.summary import summarize_run

__all__ = [
    "DEFAULT_WORST_DISTANCE_MM",
    "ERROR_CLASSES",
    "IMAGE_EXTENSIONS",
    "EvaluationResult",
    "evaluate_run",
    "find_predictions",
    "make_plan",
    "ranking_worst",
    "summarize_run",
]
