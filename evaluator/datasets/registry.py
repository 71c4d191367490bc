"""The task registry: ``datasets.yaml`` loaded into frozen, validated objects.

The registry file is looked up, in order: an explicit path, ``CCBENCH_REGISTRY``, the copy shipped
inside the installed package (``evaluator/datasets.yaml``), then ``datasets.yaml`` at the root of a
source checkout. A malformed file raises :class:`~evaluator.errors.RegistryError` naming the entry
and the field.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evaluator.choices import CCMode, LesionMatch
from evaluator.errors import DatasetNotFoundError, RegistryError
from evaluator.workspace import Workspace

__all__ = [
    "ADAPTERS",
    "ENV_REGISTRY",
    "RUN_AGGREGATES",
    "MetricParams",
    "MetricProfile",
    "OfficialSpec",
    "RankingSpec",
    "Registry",
    "SliceSpec",
    "SplitSpec",
    "TaskSpec",
    "find_registry_file",
    "load_registry",
]

ENV_REGISTRY = "CCBENCH_REGISTRY"

#: The on-disk formats ccbench reads: adapter name (``adapter:`` of a task in datasets.yaml) ->
#: ``"module:Class"`` inside :mod:`evaluator.datasets` (or ``"package.module:Class"`` for an adapter
#: outside ccbench). The one list of adapters.
ADAPTERS: dict[str, str] = {
    "autopet": "autopet:AutoPETAdapter",
    "autopet_nnunet": "autopet:AutoPETNnunetAdapter",
    "hecktor": "hecktor:HecktorAdapter",
    "btcv": "btcv:BTCVAdapter",
    "chestxdet": "chestxdet:ChestXDetAdapter",
    "nnunet": "nnunet:NnunetAdapter",
    "axial_slices": "slices:AxialSliceAdapter",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SplitSpec(_Frozen):
    """How ``ccbench data split`` splits a task: held-out test set plus k folds."""

    scheme: Literal["stratified_kfold", "kfold", "official"]
    folds: int = Field(5, ge=2)
    test_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    stratify: tuple[str, ...] = ()
    #: Metadata field naming the subject (AutoPET: ``patient``): cases with the same value, a
    #: patient's studies, always land in the same part (test set or one fold).
    group_by: str | None = None


class SliceSpec(_Frozen):
    """How a derived 2D task cuts its source task's volumes into axial slices (APEX's choices).

    Attributes
    ----------
    exclude_negative_patients
        Leave out the patients whose reference has no foreground at all (APEX: cancer patients
        only).
    slices
        ``lesion``: the slices with foreground, plus ``negative_share`` of the others drawn at
        random; ``all``: every slice.
    negative_share
        With ``slices: lesion``, the fraction (0..1) of each patient's slices without
        foreground that are kept, drawn with ``seed`` (rounded to whole slices).
    seed
        Seed of that draw; the same volumes and seed give the same slices.
    """

    exclude_negative_patients: bool = True
    slices: Literal["lesion", "all"] = "lesion"
    negative_share: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int = 0


class RankingSpec(_Frozen):
    """How a leaderboard orders entries (``ranking:`` of a metric profile).

    Either one ``primary`` metric, or ``weights``: the weighted mean of per-metric ranks (the
    autoPET scheme: ``{dice: 0.5, fp_volume_ml: 0.25, fn_volume_ml: 0.25}``); ties are broken by
    the aggregate of ``tiebreak``. Each metric is aggregated over cases with ``aggregate``; the
    ranking direction of every metric comes from :data:`evaluator.metrics.METRICS`.
    """

    primary: str | None = None
    weights: dict[str, float] = Field(default_factory=dict)
    tiebreak: str | None = None
    aggregate: Literal["mean", "median"] = "mean"

    @model_validator(mode="after")
    def _primary_or_weights(self) -> RankingSpec:
        if (self.primary is None) == (not self.weights):
            raise ValueError("give either 'primary' (one metric) or 'weights' (metric: weight)")
        if any(w <= 0 for w in self.weights.values()):
            raise ValueError(f"weights must be positive, got {self.weights}")
        return self

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric the ranking reads (weighted or primary, then the tie-break)."""
        names = list(self.weights) if self.weights else [str(self.primary)]
        if self.tiebreak is not None and self.tiebreak not in names:
            names.append(self.tiebreak)
        return tuple(names)


class MetricParams(_Frozen):
    """Parameters of a metric profile (``params:``); an unknown key is refused, not ignored.

    Examples
    --------
    >>> MetricParams(nsd_tolerance_mm=2.0).nsd_tolerance_mm
    2.0
    >>> MetricParams(nsd_tolerance=2.0)
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for MetricParams
    nsd_tolerance
      Extra inputs are not permitted ...
    """

    nsd_tolerance_mm: float = Field(1.0, gt=0)
    lesion_match: LesionMatch = "any_overlap"
    cc_mode: CCMode = "mm"
    cc_worst_distance_mm: float = Field(50.0, gt=0)


class OfficialSpec(_Frozen):
    """A challenge's own score and ranking (``official:`` of a metric profile).

    Attributes
    ----------
    name
        E.g. ``"HECKTOR 2022"``; the task page leads with this score.
    source
        Where the rule comes from (the official evaluation code or paper).
    metrics
        Columns of the official table: per-case metrics (averaged over cases) or run-level
        aggregates (``aggregated_dice``, ``coco_ap`` ...).
    per_label
        Also a table per label (organ, class) of ``metrics``.
    rank_by
        ``"ranking"``: the profile's ``ranking`` (e.g. autoPET's weighted ranks); or one metric
        of ``metrics`` (a run-level aggregate is ranked on its run value, higher is better).
    secondary
        Metric -> how it is aggregated over cases (``mean`` or ``median``), shown after the
        official score and used to break ties.
    """

    name: str
    source: str
    metrics: tuple[str, ...] = Field(min_length=1)
    per_label: bool = False
    rank_by: str = "ranking"
    secondary: dict[str, Literal["mean", "median"]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _rank_by_is_known(self) -> OfficialSpec:
        if self.rank_by != "ranking" and self.rank_by not in self.metrics:
            raise ValueError(f"rank_by '{self.rank_by}' is not 'ranking' or one of {self.metrics}")
        return self


#: Run-level aggregates an official score may name (computed by ``ccbench evaluate``).
RUN_AGGREGATES = ("aggregated_dice", "coco_ap", "coco_ap50", "coco_ap75")


class MetricProfile(_Frozen):
    """The metrics a task is scored with, their parameters and the task's scoring conventions.

    ``negative_case_metrics``: when set, a case whose reference is empty is scored with these
    metrics only and every other metric is NaN (left out of means), as in autoPET III/IV.
    ``resample_extent``: a prediction with the reference spacing but another extent is resampled
    onto the reference grid (nearest neighbour); another spacing is still rejected (HECKTOR).
    ``aggregates``: run-level numbers besides per-case means (``aggregated_dice``: HECKTOR 2022's
    2 * sum |P ∩ R| / sum (|P| + |R|) over all cases, per label).
    ``ranking``: how the task's leaderboard orders entries (:class:`RankingSpec`); default: the
    first metric of ``metrics``.
    ``worst``: metric -> the value a case counts with in means, intervals and ranks when its
    value is worse (an infinite distance: one side empty); the raw value is still stored.
    Distance metrics (mm) without an entry use 50 mm, as the thesis does.
    ``official``: the challenge's own score and ranking (:class:`OfficialSpec`).
    (:func:`evaluator.evaluate.ranking_worst` applies ``worst``.)
    ``params`` are checked by :class:`MetricParams`: a misspelt key is an error.
    ``regions``: name -> labels whose union is also reported (nnU-Net's region-based labels,
    e.g. HECKTOR's GTVp ∪ GTVn), in ``ccbench evaluate --format nnunet``.
    """

    name: str
    metrics: tuple[str, ...] = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    negative_case_metrics: tuple[str, ...] | None = None
    resample_extent: bool = False
    aggregates: tuple[Literal["aggregated_dice"], ...] = ()
    ranking: RankingSpec | None = None
    worst: dict[str, float] = Field(default_factory=dict)
    official: OfficialSpec | None = None
    regions: dict[str, tuple[int, ...]] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _known_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        return MetricParams(**value).model_dump(exclude_unset=True)

    @model_validator(mode="after")
    def _ranking_uses_profile_metrics(self) -> MetricProfile:
        unknown = [
            m for m in (self.ranking.metrics if self.ranking else ()) if m not in self.metrics
        ]
        if unknown:
            raise ValueError(f"ranking metrics {unknown} are not among the profile's metrics")
        if self.official is not None:
            known = set(self.metrics) | set(RUN_AGGREGATES)
            bad = [m for m in (*self.official.metrics, *self.official.secondary) if m not in known]
            if bad:
                raise ValueError(f"official metrics {bad} are not scored by the profile")
        return self


class TaskSpec(_Frozen):
    """One task of the registry.

    Examples
    --------
    >>> task = load_registry().task("hecktor")
    >>> task.labels[2], task.connectivity, task.channels
    ('GTVn', 26, ('CT', 'PT'))
    """

    name: str
    dataset: str
    adapter: str
    root: str
    root_env: str | None = None
    dims: Literal[2, 3]
    channels: tuple[str, ...] = Field(min_length=1)
    #: Input channels a case may have besides ``channels`` (e.g. an organ map): staged for the
    #: containers when a case has them, never required.
    optional_channels: tuple[str, ...] = ()
    labels: dict[int, str] = Field(min_length=1)
    connectivity: Literal[4, 6, 8, 18, 26]
    metric_profile: str
    split_file: str
    split: SplitSpec
    phantom_of: str | None = None
    #: ``label-image``: one label image per case; ``instances``: per-case instance annotations
    #: (ChestXDet), predicted as one COCO results file.
    reference: Literal["label-image", "instances"] = "label-image"
    #: A derived task (``adapter: axial_slices``): the task whose volumes it is cut from, read
    #: lazily (its data root, ``--data-root`` and split apply); ``root`` is then the folder of
    #: the slice cache in the workspace.
    derived_from: str | None = None
    #: How the slices are chosen (derived tasks only).
    slices: SliceSpec | None = None

    @field_validator("adapter")
    @classmethod
    def _known_adapter(cls, value: str) -> str:
        if value not in ADAPTERS:
            raise ValueError(f"unknown adapter '{value}' (known: {', '.join(ADAPTERS)})")
        return value

    @field_validator("labels")
    @classmethod
    def _foreground_labels(cls, value: dict[int, str]) -> dict[int, str]:
        bad = [k for k in value if k <= 0]
        if bad:
            raise ValueError(f"label values must be positive (0 is background), got {bad}")
        return value

    @model_validator(mode="after")
    def _derived_has_source(self) -> TaskSpec:
        if (self.adapter == "axial_slices") != (self.derived_from is not None):
            raise ValueError("adapter 'axial_slices' and 'derived_from' go together")
        if self.derived_from is not None and self.dims != 2:
            raise ValueError("a task derived as axial slices is 2D (dims: 2)")
        return self

    @model_validator(mode="after")
    def _connectivity_fits_dims(self) -> TaskSpec:
        allowed = (4, 8) if self.dims == 2 else (6, 18, 26)
        if self.connectivity not in allowed:
            raise ValueError(
                f"connectivity {self.connectivity} is not valid in {self.dims}D (use one of {allowed})"
            )
        return self

    def present_channels(self, available: Iterable[str]) -> tuple[str, ...]:
        """``channels``, then the optional channels among ``available`` (a case's channels).

        Examples
        --------
        >>> task = load_registry().task("autopet-phantom")
        >>> task.present_channels(["CT", "PET"]), task.present_channels(["CT", "PET", "ORGANS"])
        (('CT', 'PET'), ('CT', 'PET', 'ORGANS'))
        """
        have = set(available)
        return (*self.channels, *(c for c in self.optional_channels if c in have))

    @property
    def instances(self) -> bool:
        """True when references and predictions are instance lists (ChestXDet), not images.

        Examples
        --------
        >>> reg = load_registry()
        >>> reg.task("chestxdet").instances, reg.task("autopet-2d").instances
        (True, False)
        """
        return self.reference == "instances"

    @property
    def is_phantom(self) -> bool:
        """True for the synthetic entries written by ``ccbench data phantoms``."""
        return self.phantom_of is not None

    def data_root(
        self, workspace: Workspace, override: str | os.PathLike[str] | None = None
    ) -> Path:
        """Where this task's data lives: ``override``, then ``root_env``, then ``root``.

        A relative ``root`` is taken relative to the workspace.
        """
        if override is not None:
            return Path(override).expanduser().absolute()
        if self.root_env and os.environ.get(self.root_env):
            return Path(os.environ[self.root_env]).expanduser().absolute()
        root = Path(self.root).expanduser()
        return root if root.is_absolute() else workspace.root / root

    @property
    def phantom_layout(self) -> str:
        """``nnunet`` for a task read with an nnU-Net adapter, else ``native``.

        Examples
        --------
        >>> load_registry().task("autopet-nnunet-phantom").phantom_layout
        'nnunet'
        """
        return "nnunet" if self.adapter.endswith("nnunet") else "native"

    def split_path(self, workspace: Workspace) -> Path:
        """The split file (nnU-Net ``splits_final.json`` compatible) in the workspace."""
        path = Path(self.split_file)
        return path if path.is_absolute() else workspace.root / path

    def missing_data_hint(self) -> str:
        """What a user should do when the data root is empty."""
        if self.is_phantom:
            layout = " --layout nnunet" if self.phantom_layout == "nnunet" else ""
            return f"run `ccbench data phantoms --task {self.phantom_of}{layout}`"
        env = f" (or set {self.root_env})" if self.root_env else ""
        return f"set `root:` for '{self.name}' in datasets.yaml, pass --data-root{env}"


class Registry(_Frozen):
    """All tasks and metric profiles of a registry file."""

    path: Path
    tasks: dict[str, TaskSpec]
    profiles: dict[str, MetricProfile]

    def task(self, name: str) -> TaskSpec:
        """Return the task called ``name``; a clear error lists the known tasks."""
        try:
            return self.tasks[name]
        except KeyError:
            known = ", ".join(sorted(self.tasks))
            raise DatasetNotFoundError(
                f"unknown task '{name}' in {self.path} (known tasks: {known})"
            ) from None

    def profile(self, task: str | TaskSpec) -> MetricProfile:
        """The metric profile a task is scored with."""
        spec = self.task(task) if isinstance(task, str) else task
        return self.profiles[spec.metric_profile]


def find_registry_file(path: str | os.PathLike[str] | None = None) -> Path:
    """Locate ``datasets.yaml`` (see the module docstring for the order)."""
    candidates: list[Path] = []
    if path is not None:
        candidates.append(Path(path))
    elif os.environ.get(ENV_REGISTRY):
        candidates.append(Path(os.environ[ENV_REGISTRY]))
    else:
        here = Path(__file__).resolve().parent.parent
        candidates += [here / "datasets.yaml", here.parent / "datasets.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise RegistryError(f"no task registry found (looked at {', '.join(map(str, candidates))})")


def _format_validation_error(where: str, err: ValidationError) -> str:
    parts = []
    for item in err.errors():
        field = ".".join(str(p) for p in item["loc"]) or "(entry)"
        parts.append(f"{where}, field '{field}': {item['msg']}")
    return "; ".join(parts)


def load_registry(path: str | os.PathLike[str] | None = None) -> Registry:
    """Load and validate the task registry.

    Parameters
    ----------
    path
        Registry file; default: see :func:`find_registry_file`.

    Returns
    -------
    Registry
        Frozen; every task's ``metric_profile`` and ``phantom_of`` refer to known entries.

    Raises
    ------
    RegistryError
        Naming the file, the entry and the field that is wrong.

    Examples
    --------
    >>> reg = load_registry()
    >>> sorted(t for t in reg.tasks if not reg.tasks[t].is_phantom)
    ['autopet', 'autopet-2d', 'autopet-nnunet', 'btcv', 'chestxdet', 'hecktor']
    """
    file = find_registry_file(path)
    try:
        raw = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise RegistryError(f"{file}: cannot be read as YAML: {err}") from err
    if not isinstance(raw, Mapping) or not isinstance(raw.get("tasks"), Mapping):
        raise RegistryError(f"{file}: expected a mapping with a 'tasks' section")
    profiles: dict[str, MetricProfile] = {}
    for name, body in (raw.get("profiles") or {}).items():
        try:
            profiles[str(name)] = MetricProfile(name=str(name), **(body or {}))
        except (ValidationError, TypeError) as err:
            msg = (
                _format_validation_error(f"profile '{name}'", err)
                if isinstance(err, ValidationError)
                else f"profile '{name}': {err}"
            )
            raise RegistryError(f"{file}: {msg}") from err
    tasks: dict[str, TaskSpec] = {}
    for name, body in raw["tasks"].items():
        if not isinstance(body, Mapping):
            raise RegistryError(f"{file}: task '{name}': expected a mapping of fields")
        try:
            task = TaskSpec(name=str(name), **body)
        except ValidationError as err:
            raise RegistryError(
                f"{file}: {_format_validation_error(f'task {name!r}', err)}"
            ) from err
        if task.metric_profile not in profiles:
            raise RegistryError(
                f"{file}: task '{name}', field 'metric_profile': unknown profile "
                f"'{task.metric_profile}' (known: {', '.join(sorted(profiles)) or 'none'})"
            )
        for region, members in profiles[task.metric_profile].regions.items():
            if not members or set(members) - set(task.labels):
                raise RegistryError(
                    f"{file}: profile '{task.metric_profile}', region '{region}': labels "
                    f"{list(members)} are not all labels of task '{name}' ({sorted(task.labels)})"
                )
        tasks[str(name)] = task
    for task in tasks.values():
        for field_name in ("phantom_of", "derived_from"):
            other = getattr(task, field_name)
            if other is not None and other not in tasks:
                raise RegistryError(
                    f"{file}: task '{task.name}', field '{field_name}': unknown task '{other}'"
                )
        source = tasks.get(task.derived_from or "")
        if source is not None and (source.dims != 3 or source.derived_from is not None):
            raise RegistryError(
                f"{file}: task '{task.name}': derived from '{source.name}', which is not a 3D "
                "task read from its own files"
            )
    return Registry(path=file, tasks=tasks, profiles=profiles)
