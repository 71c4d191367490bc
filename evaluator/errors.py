"""Named errors of ccbench.

Library code raises these; only :mod:`evaluator.cli` turns them into a red one-line message and an
exit code. Messages say what was checked, which rule failed, and what was got, e.g.
``prediction CHUM-001: spacing (1.0, 1.0, 3.0) mm does not match reference (0.98, 0.98, 3.27) mm``.
"""

from __future__ import annotations

__all__ = [
    "CCBenchError",
    "DataCheckError",
    "DatasetNotFoundError",
    "DockerUnavailableError",
    "ExecutorError",
    "GeometryMismatchError",
    "ImageReadError",
    "InvalidLabelError",
    "InvalidNameError",
    "InvalidPredictionError",
    "MetricInputError",
    "PhantomError",
    "RegistryError",
    "SimulationError",
    "SplitError",
    "StoreError",
    "SubmissionError",
    "TrainingError",
    "UnknownMetricError",
    "UserMetricError",
]


class CCBenchError(Exception):
    """Base class of every error ccbench raises on purpose."""


class RegistryError(CCBenchError):
    """``datasets.yaml`` (or another registry file) is malformed; names the entry and field."""


class DatasetNotFoundError(CCBenchError):
    """A task's data root does not exist or holds no cases; says what to do next."""


class ImageReadError(CCBenchError):
    """A file is missing, truncated or cannot be decoded."""


class GeometryMismatchError(CCBenchError):
    """Two images that must share a grid differ in size, spacing, origin or direction."""


class InvalidLabelError(CCBenchError):
    """A label image holds values outside the task's label map, non-integers or NaN."""


class SplitError(CCBenchError):
    """A split cannot be made (too few cases) or resolved (no split file, unknown split name)."""


class DataCheckError(CCBenchError):
    """``ccbench data check`` found problems (the report lists each one)."""


class MetricInputError(CCBenchError):
    """Arrays handed to a metric are unusable: shape mismatch, NaN, non-integer labels."""


class UnknownMetricError(CCBenchError):
    """A metric name is not in :data:`evaluator.metrics.METRICS`."""


class InvalidNameError(CCBenchError):
    """A name that would become part of a path (run, entry, slug) breaks the naming pattern."""


class InvalidPredictionError(CCBenchError):
    """A prediction exists but cannot be scored (decode, geometry, labels, NaN)."""


class StoreError(CCBenchError):
    """The results store cannot be opened or written."""


class DockerUnavailableError(CCBenchError):
    """No Docker engine answers; says how to start one or to use ``--backend local``."""


class ExecutorError(CCBenchError):
    """Scoring workers cannot start or return a result, or the Dask scheduler is unreachable."""


class PhantomError(CCBenchError):
    """``ccbench data phantoms`` cannot write: unknown task, bad size or case count, or an
    output folder that holds other data."""


class SimulationError(CCBenchError):
    """A degradation operator or study got unusable input (too few components, bad spacing)."""


class SubmissionError(CCBenchError):
    """An entry (``submissions/<name>.yaml``) is missing, malformed or asks for too much."""


class TrainingError(CCBenchError):
    """``ccbench baselines train`` cannot train: unknown model or task, no training cases, or
    torch/MONAI not installed."""


class UserMetricError(CCBenchError):
    """A user metric (:mod:`evaluator.metrics.plugins`) cannot be loaded, is declared wrongly,
    or failed on a case; names the metric and its reference."""
