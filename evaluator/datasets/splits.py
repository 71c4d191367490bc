"""Held-out test set plus k-fold cross-validation, written as nnU-Net ``splits_final.json``.

Files (``TaskSpec.split_file``, e.g. ``<workspace>/splits/autopet.json``):

* ``<name>.json``: exactly nnU-Net v2's ``splits_final.json``, a list of ``folds`` dicts
  ``{"train": [...], "val": [...]}`` over the development cases (every case not in the test set);
  nnU-Net reads it unchanged (copy it to ``nnUNet_preprocessed/<dataset>/splits_final.json``).
* ``<name>.test.json``: ``{"task", "scheme", "seed", "test_fraction", "stratify", "test": [...]}``,
  the held-out test ids and how they were drawn; with ``ccbench data split --shots 1,5`` also
  the few-shot training subsets (below).

Split names understood by :func:`resolve_split`: ``test``; ``fold0`` ... ``fold{k-1}`` (the
validation cases of that fold); ``train`` (every development case, i.e. the union of the folds'
validation cases); ``all`` (every case of the dataset, no split file needed); ``shots<k>`` and
``shots<k>:<target>`` (few-shot subsets, below).

Few-shot subsets (``make_split(..., shots=[1, 5])``): for each target (a foreground label of
the task, by name: BTCV's ``spleen``, ``liver``, ...; AutoPET's ``lesion``; HECKTOR's ``GTVp``
and ``GTVn``; ChestXDet's findings) the eligible cases are the development cases whose reference
contains that target (label images are read one case at a time; ChestXDet's annotation lists
are read, not rasterised). They are ordered by a permutation seeded by the split's seed and the
target's name (so it does not depend on the other targets), and the ``k``-shot subset is the
first ``k``: subsets are nested (``k1 < k2`` gives ``subset(k1) ⊂ subset(k2)``) and never hold a
test case. The test-set file gains two keys::

    "shots": {"1": {"spleen": ["0007"], ...}, "5": {"spleen": ["0007", "0012", ...], ...}},
    "shots_short": {"5": {"gallbladder": 3}}

``shots`` lists, per ``k`` and target (in label order), the chosen ids in draw order (each list
is a prefix of the next larger ``k``'s); ``shots_short`` names, per ``k``, the targets with fewer
than ``k`` eligible cases and how many they have (their list holds all of them). A split made
without ``shots`` has neither key, byte for byte as before. ``shots5`` is the union over
targets of the 5-shot subsets, ``shots5:liver`` one target's (the name exactly as in
``datasets.yaml``, e.g. ``shots1:right kidney``); :func:`shots_of` gives the ``k`` of such a
name, so a run can record which subset a model was adapted on.

Schemes (``TaskSpec.split.scheme``), following the thesis, appendix E.1.2:

* ``stratified_kfold``: cases are grouped by the metadata fields in ``split.stratify`` (AutoPET:
  diagnosis and sex; HECKTOR: sex and centre). A group smaller than ``folds`` is merged with the
  other small groups that agree on all but the last field, then all but the last two, ... and
  finally into one remainder group, so tiny groups never break the split. Within a group the
  ids are shuffled (seeded) and then ordered by their full key, so that the members of a merged
  stratum stay together and are still spread over the folds. The test set is a systematic
  sample of ``test_fraction`` of the concatenated groups (so each group gives its share,
  rounded), and the remaining cases are dealt round-robin into the folds (each group's cases
  spread over the folds within one case).
* ``kfold``: the same with a single group (BTCV).
* ``official``: the test set is the dataset's official test subset (``metadata["subset"] ==
  "test"``, ChestXDet); the official training cases are dealt into the folds.

The same cases, metadata and seed give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evaluator.datasets.base import Case, DatasetAdapter, open_dataset, resolve_task
from evaluator.datasets.imageio import read_json
from evaluator.datasets.labels import label_array
from evaluator.datasets.registry import Registry, TaskSpec
from evaluator.datasets.slices import AxialSliceAdapter
from evaluator.errors import DatasetNotFoundError, ImageReadError, SplitError
from evaluator.workspace import Workspace

__all__ = [
    "SplitResult",
    "assign_split",
    "case_listing",
    "case_set_id",
    "check_fold_cases",
    "draw_shots",
    "heldout_path",
    "make_split",
    "read_shots",
    "read_split",
    "resolve_split",
    "shots_of",
    "split_id",
    "split_names",
]

_UNKNOWN = "unknown"
_REMAINDER = "(other)"
#: ``shots<k>`` or ``shots<k>:<target>``; ``k`` >= 1 without a leading zero (one name per split).
_SHOTS_NAME = re.compile(r"shots([1-9][0-9]*)(?::(.+))?")
#: Tag of the few-shot random streams (the fold assignment uses the bare seed).
_SHOTS_STREAM = 5


@dataclass(frozen=True)
class SplitResult:
    """What :func:`make_split` wrote.

    Attributes
    ----------
    task
        Task name.
    path, test_path
        The nnU-Net splits file and the test-set file.
    folds
        ``[{"train": [...], "val": [...]}, ...]`` as written.
    test
        Held-out test ids, sorted.
    scheme, stratify, seed
        How the split was drawn.
    strata
        Stratum (``"MELANOMA/M"``; ``"all"`` when unstratified) -> part (``"test"``,
        ``"fold0"``, ...) -> number of cases.
    merged
        Strata too small for their own group and merged into a coarser one.
    shots
        ``k`` -> target -> the ``k``-shot training subset in draw order (empty without
        ``shots``); see the module docstring.
    shots_short
        ``k`` -> target -> its number of eligible cases, for the targets with fewer than ``k``.
    shots_eligible
        Target -> number of development cases whose reference contains it.
    """

    task: str
    path: Path
    test_path: Path
    folds: list[dict[str, list[str]]]
    test: list[str]
    scheme: str
    stratify: tuple[str, ...]
    seed: int
    strata: dict[str, dict[str, int]] = field(default_factory=dict)
    merged: list[str] = field(default_factory=list)
    shots: dict[int, dict[str, list[str]]] = field(default_factory=dict)
    shots_short: dict[int, dict[str, int]] = field(default_factory=dict)
    shots_eligible: dict[str, int] = field(default_factory=dict)

    @property
    def n_cases(self) -> int:
        """Test plus development cases."""
        return len(self.test) + len(self.folds[0]["train"]) + len(self.folds[0]["val"])


def split_id(split_path: Path) -> str | None:
    """The identity of a split: a hash of the splits file and its test-set file; None if absent.

    Runs record it, so a leaderboard never mixes runs scored on different splits, and
    ``ccbench data split`` can refuse to overwrite a split that runs refer to.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "s.json"
    >>> split_id(path) is None
    True
    >>> _ = path.write_text("[]")
    >>> split_id(path)
    'sha256:...'
    """
    if not split_path.is_file():
        return None
    digest = hashlib.sha256(split_path.read_bytes())
    test_path = heldout_path(split_path)
    digest.update(b"\0" + (test_path.read_bytes() if test_path.is_file() else b""))
    return "sha256:" + digest.hexdigest()[:16]


def _parts_id(folds: Sequence[Mapping[str, Sequence[str]]], test: Sequence[str]) -> str:
    """A hash of which cases are in which part (each fold's validation cases, the test set):
    what a derived split follows; few-shot subsets and settings are not part of it."""
    parts = {"folds": [sorted(map(str, f["val"])) for f in folds], "test": sorted(map(str, test))}
    return "sha256:" + hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def case_set_id(case_ids: Sequence[str]) -> str:
    """A hash of a set of case ids (order does not matter).

    Examples
    --------
    >>> case_set_id(["b", "a"]) == case_set_id(["a", "b"]) != case_set_id(["a"])
    True
    """
    return "sha256:" + hashlib.sha256("\n".join(sorted(case_ids)).encode()).hexdigest()[:16]


def heldout_path(split_path: Path) -> Path:
    """The test-set file next to a splits file: ``x.json`` -> ``x.test.json``.

    Examples
    --------
    >>> heldout_path(Path("splits/autopet.json"))
    PosixPath('splits/autopet.test.json')
    """
    stem = (
        split_path.name[: -len(".json")] if split_path.name.endswith(".json") else split_path.name
    )
    return split_path.with_name(f"{stem}.test.json")


def _groups(
    keys: Mapping[str, tuple[str, ...]], min_size: int
) -> tuple[dict[str, list[str]], list[str]]:
    """Group ids by key; small groups fall back to shorter key prefixes (see module docstring)."""
    current = dict(keys)
    width = max((len(k) for k in keys.values()), default=0)
    for level in range(width, 0, -1):
        counts = Counter(current.values())
        for cid, key in current.items():
            if len(key) == level and counts[key] < min_size:
                current[cid] = key[:-1]
    groups: dict[str, list[str]] = defaultdict(list)
    for cid, key in current.items():
        groups["/".join(key) if key else _REMAINDER].append(cid)
    merged = {"/".join(keys[cid]) for cid in keys if current[cid] != keys[cid]}
    return dict(groups), sorted(merged)


def assign_split(
    keys: Mapping[str, tuple[str, ...]],
    *,
    folds: int,
    test_fraction: float,
    seed: int,
    fixed_test: Sequence[str] | None = None,
) -> tuple[list[str], list[list[str]], list[str]]:
    """Draw a stratified test set and k folds from case ids and their stratum keys.

    Parameters
    ----------
    keys
        Case id -> stratum key (one string per stratification field; ``()`` unstratified).
    folds
        Number of cross-validation folds (>= 2).
    test_fraction
        Share of cases held out, in ``[0, 1)``; the test set has ``floor`` or ``ceil`` of
        ``test_fraction * n`` cases, fewer when that would leave fewer development cases than
        folds. Ignored when ``fixed_test`` is given.
    seed
        Seed of every random choice.
    fixed_test
        An official test set; those ids are held out and the rest dealt into folds.

    Returns
    -------
    test, fold_val, merged
        Sorted test ids; for each fold its sorted validation ids; merged small strata.

    Raises
    ------
    SplitError
        When fewer development cases than folds remain.

    Examples
    --------
    >>> keys = {f"c{i}": ("M" if i % 2 else "F",) for i in range(10)}
    >>> test, val, merged = assign_split(keys, folds=2, test_fraction=0.2, seed=0)
    >>> len(test), [len(v) for v in val], merged
    (2, [4, 4], [])
    >>> sorted(keys[c][0] for c in test)
    ['F', 'M']
    """
    rng = np.random.default_rng(seed)
    groups, merged = _groups(keys, folds)
    ordered: list[str] = []
    for name in sorted(groups):
        ids = sorted(groups[name])
        shuffled = [ids[i] for i in rng.permutation(len(ids))]
        # Stable sort by the full key: merged strata stay contiguous, so they are spread too.
        ordered += sorted(shuffled, key=lambda cid: keys[cid])
    if fixed_test is not None:
        test_set = set(fixed_test) & set(keys)
        offset_u = 0.0
    else:
        offset_u = float(rng.random())
        test_set = {
            cid
            for i, cid in enumerate(ordered)
            if math.floor((i + 1) * test_fraction + offset_u)
            > math.floor(i * test_fraction + offset_u)
        }
        if len(keys) - len(test_set) < folds < len(keys):  # a small set: every fold keeps one
            test_set = set([cid for cid in ordered if cid in test_set][: len(keys) - folds])
    development = [cid for cid in ordered if cid not in test_set]
    if len(development) < folds:
        raise SplitError(
            f"only {len(development)} development cases for {folds}-fold cross-validation "
            f"({len(keys)} cases, {len(test_set)} held out); need at least {folds}"
        )
    start = int(rng.integers(folds))
    val: list[list[str]] = [[] for _ in range(folds)]
    for j, cid in enumerate(development):
        val[(j + start) % folds].append(cid)
    return sorted(test_set), [sorted(v) for v in val], merged


def _stratum_key(metadata: Mapping[str, Any], fields: Sequence[str]) -> tuple[str, ...]:
    return tuple(str(metadata.get(f) or _UNKNOWN) for f in fields)


def shots_of(split_name: str) -> int | None:
    """The ``k`` of a few-shot split name, None for every other split name.

    ``shots<k>`` (the union over targets of the ``k``-shot subsets) and ``shots<k>:<target>``
    (one target's) are the few-shot names :func:`resolve_split` understands; ``k`` is written
    without a leading zero. A run adapted on such a subset records ``k`` with its parameters.

    Examples
    --------
    >>> shots_of("shots5"), shots_of("shots5:liver"), shots_of("shots1:right kidney")
    (5, 5, 1)
    >>> shots_of("fold0"), shots_of("test"), shots_of("shots"), shots_of("shots05")
    (None, None, None, None)
    """
    match = _SHOTS_NAME.fullmatch(split_name)
    return int(match.group(1)) if match else None


def _target_rng(seed: int, target: str) -> np.random.Generator:
    """The random stream of one target: from the seed and the target's name only."""
    key = int.from_bytes(hashlib.sha256(target.encode()).digest()[:8], "big")
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_SHOTS_STREAM, key)))


def draw_shots(
    eligible: Mapping[str, Iterable[str]], shots: Iterable[int], *, seed: int
) -> tuple[dict[int, dict[str, list[str]]], dict[int, dict[str, int]]]:
    """Nested few-shot subsets: per target, the first ``k`` of a seeded permutation of its cases.

    Parameters
    ----------
    eligible
        Target name -> the ids of the cases that contain it (any order; duplicates ignored).
        The output lists targets in this mapping's order.
    shots
        The ``k`` values (>= 1; duplicates ignored).
    seed
        Seed; target ``t`` draws from ``SeedSequence(seed, spawn_key=(5, hash(t)))``, so its
        subsets depend on the seed, its name and its eligible ids only.

    Returns
    -------
    subsets, short
        ``k`` (ascending) -> target -> ids in draw order, ``subsets[k1][t]`` a prefix of
        ``subsets[k2][t]`` for ``k1 < k2``; ``k`` -> target -> number of eligible cases for the
        targets with fewer than ``k`` (only the ``k`` that have such targets).

    Raises
    ------
    SplitError
        For ``k < 1``.

    Examples
    --------
    >>> subsets, short = draw_shots({"a": ["c1", "c2", "c3"], "b": ["c2"]}, [1, 2], seed=0)
    >>> subsets[2]["a"][:1] == subsets[1]["a"], subsets[2]["b"], short
    (True, ['c2'], {2: {'b': 1}})
    """
    ks = sorted(set(shots))
    bad = [k for k in ks if k < 1]
    if bad:
        raise SplitError(f"few-shot sizes must be at least 1, got {bad}")
    order: dict[str, list[str]] = {}
    for target, ids in eligible.items():
        pool = sorted(set(ids))
        order[target] = [pool[i] for i in _target_rng(seed, target).permutation(len(pool))]
    subsets = {k: {t: ids[:k] for t, ids in order.items()} for k in ks}
    short = {k: {t: len(ids) for t, ids in order.items() if len(ids) < k} for k in ks}
    return subsets, {k: v for k, v in short.items() if v}


def _target_names(spec: TaskSpec) -> dict[str, int]:
    """Target name -> label value, in label order; two labels of one name are refused."""
    names: dict[str, int] = {}
    for value in sorted(spec.labels):
        name = spec.labels[value]
        if name in names:
            raise SplitError(
                f"task '{spec.name}': labels {names[name]} and {value} are both called "
                f"'{name}'; few-shot subsets are per target name"
            )
        names[name] = value
    return names


def _present_labels(case: Case, spec: TaskSpec) -> set[int]:
    """The task's label values that occur in a case's reference (read once, then dropped)."""
    if case.annotations is not None:  # instance lists (ChestXDet): no rasterising needed
        value_of = {name: value for value, name in spec.labels.items()}
        return {value_of[a.class_name] for a in case.annotations if a.class_name in value_of}
    if case.label is None:
        raise SplitError(
            f"task '{spec.name}': case {case.case_id} has no reference label; few-shot subsets "
            "are drawn among the cases that contain each target"
        )
    arr = label_array(case.read_label(), labels=spec.labels, what=f"reference {case.label}")
    return {value for value in spec.labels if bool((arr == value).any())}


def _eligible_cases(
    adapter: DatasetAdapter, spec: TaskSpec, case_ids: Sequence[str]
) -> dict[str, list[str]]:
    """Target name -> the cases of ``case_ids`` whose reference contains it (one case at a time)."""
    targets = _target_names(spec)
    eligible: dict[str, list[str]] = {name: [] for name in targets}
    for case_id in sorted(case_ids):
        present = _present_labels(adapter.case(case_id), spec)
        for name, value in targets.items():
            if value in present:
                eligible[name].append(case_id)
    return eligible


def make_split(
    task: str | TaskSpec,
    *,
    workspace: Workspace,
    data_root: Path | None = None,
    seed: int = 12345,
    out: Path | None = None,
    registry: Registry | None = None,
    force: bool = False,
    used_by: Callable[[str], Sequence[str]] | None = None,
    shots: Sequence[int] = (),
) -> SplitResult:
    """Make and write the test set, cross-validation folds and few-shot subsets of a task.

    Parameters
    ----------
    task
        Task name or spec; ``task.split`` gives scheme, folds, test fraction and strata.
    workspace
        Workspace (data root and default split file).
    data_root
        Overrides the task's data root.
    seed
        Seed; the same dataset and seed give byte-identical files.
    out
        Splits file; default ``task.split_file`` in the workspace. The test set goes to
        :func:`heldout_path` of it.
    registry
        Registry to resolve a task name in.
    force
        Overwrite an existing split even when runs refer to it.
    used_by
        ``used_by(split_id)`` -> names of the runs scored on that split (the CLI asks the
        results store). An existing split that would change is refused while runs use it.
    shots
        Few-shot sizes ``k`` (e.g. ``[1, 5]``): also write, per target, a ``k``-case training
        subset of the development cases that contain it (module docstring). Reads every
        development case's reference once. Without it the files are as they always were.

    Returns
    -------
    SplitResult

    Raises
    ------
    DatasetNotFoundError
        When the data root is missing or empty.
    SplitError
        Too few cases, an ``official`` scheme without an official test subset, a split that
        runs refer to would change (without ``force``), a ``k < 1``, or (with ``shots``) a
        case without a reference.
    InvalidLabelError, ImageReadError
        With ``shots``: a reference that cannot be read or holds values outside the label map.
    """
    spec = resolve_task(task, registry)
    if any(k < 1 for k in shots):
        raise SplitError(
            f"task '{spec.name}': few-shot sizes must be at least 1, got {list(shots)}"
        )
    adapter = open_dataset(spec, workspace=workspace, data_root=data_root, registry=registry)
    # a derived task is split by its source's patients: its slices are not listed one by one
    cases = list(adapter.cases()) if spec.derived_from is None else []
    settings = spec.split
    stratify = tuple(settings.stratify) if settings.scheme == "stratified_kfold" else ()
    keys = {c.case_id: _stratum_key(c.metadata, stratify) for c in cases}
    if isinstance(adapter, AxialSliceAdapter):  # a slice's stratum is its patient's
        source = adapter.source
        for patient, ids in adapter.patients().items():
            key = _stratum_key(source.case(patient).metadata, stratify)
            keys.update(dict.fromkeys(ids, key))
    fixed_test = None
    if settings.scheme == "official":
        fixed_test = [c.case_id for c in cases if c.metadata.get("subset") == "test"]
        if not fixed_test:
            raise SplitError(
                f"task '{spec.name}': scheme 'official' needs an official test subset, but no "
                f"case of {adapter.root} is marked as test"
            )
    source_split: dict[str, str] = {}
    if spec.derived_from is not None:  # by patient: the source task's split, slice by slice
        test, val, source_split = _derived_parts(spec, adapter, workspace, registry)
        merged: list[str] = []
    else:
        # a subject's cases are dealt as one: the group is named by its first case id, so a
        # dataset of one case per subject is split exactly as without grouping
        members: dict[str, list[str]] = defaultdict(list)
        for c in cases:
            subject = c.metadata.get(settings.group_by) if settings.group_by else None
            members[str(subject) if subject not in (None, "") else f"\0{c.case_id}"].append(
                c.case_id
            )
        first = {sorted(ids)[0]: sorted(ids) for ids in members.values()}
        group_of = {cid: name for name, ids in first.items() for cid in ids}
        official = set(fixed_test or ())
        for ids in first.values():  # an official test set is not moved to keep a group together
            held = [c for c in ids if c in official]
            if held and len(held) < len(ids):
                raise SplitError(
                    f"task '{spec.name}': the official test set holds {held[0]} but not "
                    f"{next(c for c in ids if c not in held)}, of the same {settings.group_by}; "
                    f"split.group_by cannot keep them together"
                )
        try:
            test, val, merged = assign_split(
                {name: keys[name] for name in first},
                folds=settings.folds,
                test_fraction=settings.test_fraction,
                seed=seed,
                fixed_test=None
                if fixed_test is None
                else sorted({group_of[c] for c in fixed_test}),
            )
        except SplitError as err:
            unit = (
                f" (counted by {settings.group_by}: its cases are one unit)"
                if settings.group_by
                else ""
            )
            raise SplitError(f"task '{spec.name}' at {adapter.root}: {err}{unit}") from None
        test = sorted(c for name in test for c in first[name])
        val = [sorted(c for name in v for c in first[name]) for v in val]
    development = sorted(cid for v in val for cid in v)
    folds = [{"train": sorted(set(development) - set(v)), "val": v} for v in val]
    path = Path(out) if out is not None else spec.split_path(workspace)
    test_path = heldout_path(path)
    test_doc = {
        "task": spec.name,
        "scheme": settings.scheme,
        "seed": seed,
        "folds": settings.folds,
        "test_fraction": settings.test_fraction,
        "stratify": list(stratify),
        **({"group_by": settings.group_by} if settings.group_by else {}),
        **source_split,
        "test": test,
    }
    subsets: dict[int, dict[str, list[str]]] = {}
    short: dict[int, dict[str, int]] = {}
    eligible: dict[str, list[str]] = {}
    if shots:
        eligible = _eligible_cases(adapter, spec, development)
        subsets, short = draw_shots(eligible, shots, seed=seed)
        test_doc["shots"] = {str(k): v for k, v in subsets.items()}
        test_doc["shots_short"] = {str(k): v for k, v in short.items()}
    new_folds, new_test = json.dumps(folds, indent=4) + "\n", json.dumps(test_doc, indent=4) + "\n"
    current = split_id(path)
    changes = current is not None and (
        path.read_text() != new_folds
        or not test_path.is_file()
        or test_path.read_text() != new_test
    )
    if changes and not force and used_by is not None:
        runs = list(used_by(current or ""))
        if runs:
            shown = ", ".join(runs[:5]) + (f" and {len(runs) - 5} more" if len(runs) > 5 else "")
            only_shots = path.read_text() == new_folds and _without_shots(test_path) == {
                k: v for k, v in test_doc.items() if not k.startswith("shots")
            }
            harm = (
                "only its few-shot subsets would change, but so would the split id those runs "
                "recorded"
                if only_shots
                else "their leaderboard would mix test sets"
            )
            raise SplitError(
                f"task '{spec.name}': {path} would change, but {len(runs)} run(s) were scored "
                f"on it ({shown}); {harm}. Pass --force to overwrite it anyway, or --out to "
                "write another split"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new_folds)
    test_path.write_text(new_test)
    part_of = {cid: "test" for cid in test}
    part_of.update({cid: f"fold{k}" for k, v in enumerate(val) for cid in v})
    strata: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for cid, key in keys.items():
        strata["/".join(key) or "all"][part_of[cid]] += 1
    return SplitResult(
        task=spec.name,
        path=path,
        test_path=test_path,
        folds=folds,
        test=test,
        scheme=settings.scheme,
        stratify=stratify,
        seed=seed,
        strata={k: dict(v) for k, v in sorted(strata.items())},
        merged=merged,
        shots=subsets,
        shots_short=short,
        shots_eligible={t: len(ids) for t, ids in eligible.items()},
    )


def _derived_parts(
    spec: TaskSpec, adapter: DatasetAdapter, workspace: Workspace, registry: Registry | None
) -> tuple[list[str], list[list[str]], dict[str, str]]:
    """Test ids and fold validation ids of a derived task: each patient's slices go where the
    source task's split puts the patient (no patient in two parts); and the source split's
    task and id, recorded in the test-set file."""
    source = resolve_task(str(spec.derived_from), registry)
    path = source.split_path(workspace)
    if not path.is_file():
        raise SplitError(
            f"task '{spec.name}' is cut from '{source.name}' and split by its patients: no split "
            f"file {path}; run `ccbench data split --task {source.name}` first"
        )
    folds, test = read_split(path)
    patients = adapter.patients() if isinstance(adapter, AxialSliceAdapter) else {}
    slices_of = lambda ids: sorted(c for p in ids for c in patients.get(str(p), []))  # noqa: E731
    parts = [slices_of(f["val"]) for f in folds]
    return (
        slices_of(test),
        parts,
        {"derived_from": source.name, "source_parts": _parts_id(folds, test)},
    )


def _without_shots(test_path: Path) -> dict[str, Any] | None:
    """A test-set file's document without its few-shot keys; None when unreadable."""
    try:
        doc = json.loads(test_path.read_text())
    except (OSError, ValueError):
        return None
    return (
        {k: v for k, v in doc.items() if not k.startswith("shots")}
        if isinstance(doc, dict)
        else None
    )


def read_split(path: Path) -> tuple[list[dict[str, list[str]]], list[str]]:
    """Read a splits file and its test-set file.

    Returns
    -------
    folds, test
        The nnU-Net fold list and the test ids (empty when the test file is absent).

    Raises
    ------
    SplitError
        When the splits file is missing or not a list of ``{"train", "val"}`` dicts.
    """
    if not path.is_file():
        raise SplitError(f"no split file {path}")
    try:
        folds = read_json(path, what="split file")
        test_path = heldout_path(path)
        test_doc = read_json(test_path, what="test-set file") if test_path.is_file() else {}
    except ImageReadError as err:
        raise SplitError(str(err)) from err
    if not isinstance(folds, list) or not all(
        isinstance(f, dict) and isinstance(f.get("train"), list) and isinstance(f.get("val"), list)
        for f in folds
    ):
        raise SplitError(f"{path}: expected a list of {{'train': [...], 'val': [...]}} folds")
    test = test_doc.get("test", []) if isinstance(test_doc, dict) else []
    return folds, [str(t) for t in test]


def _test_doc(path: Path) -> dict[str, Any]:
    """The test-set file of a splits file as a dict; empty when absent or not a dict."""
    test_path = heldout_path(path)
    if not test_path.is_file():
        return {}
    try:
        doc = read_json(test_path, what="test-set file")
    except ImageReadError as err:
        raise SplitError(str(err)) from err
    return doc if isinstance(doc, dict) else {}


def read_shots(path: Path) -> dict[int, dict[str, list[str]]]:
    """The few-shot subsets written with a splits file (in its test-set file).

    Parameters
    ----------
    path
        The splits file (``<name>.json``); the subsets are read from :func:`heldout_path` of it.

    Returns
    -------
    dict
        ``k`` (ascending) -> target -> case ids in draw order; empty when the split was made
        without ``--shots`` (or has no test-set file).

    Raises
    ------
    SplitError
        When the test-set file cannot be read or its ``shots`` are not
        ``{"<k>": {"<target>": [ids]}}``.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "s.json"
    >>> read_shots(path)
    {}
    >>> _ = heldout_path(path).write_text('{"test": [], "shots": {"2": {"liver": ["b", "a"]}}}')
    >>> read_shots(path)
    {2: {'liver': ['b', 'a']}}
    """
    test_path = heldout_path(path)
    raw = _test_doc(path).get("shots", {})
    shape = 'expected \'shots\' as {"<k>": {"<target>": [case ids]}}'
    if not isinstance(raw, dict):
        raise SplitError(f"{test_path}: {shape}")
    out: dict[int, dict[str, list[str]]] = {}
    for key, targets in raw.items():
        k = shots_of(f"shots{key}")
        if k is None or str(k) != key or not isinstance(targets, dict):
            raise SplitError(f"{test_path}: {shape}, got key {key!r}")
        if not all(isinstance(ids, list) for ids in targets.values()):
            raise SplitError(f"{test_path}: {shape}, got a non-list under {key!r}")
        out[k] = {str(t): [str(c) for c in ids] for t, ids in targets.items()}
    return dict(sorted(out.items()))


def split_names(folds: int, *, shots: Iterable[int] = ()) -> list[str]:
    """Names :func:`resolve_split` understands for a split with ``folds`` folds.

    ``shots``: the ``k`` of the few-shot subsets written with it; each gives ``shots<k>`` and
    ``shots<k>:<target>`` (the latter, one per target, is not listed).

    Examples
    --------
    >>> split_names(2)
    ['all', 'train', 'test', 'fold0', 'fold1']
    >>> split_names(2, shots=[5, 1])[-2:]
    ['shots1', 'shots5']
    """
    return [
        "all",
        "train",
        "test",
        *(f"fold{k}" for k in range(folds)),
        *(f"shots{k}" for k in sorted(set(shots))),
    ]


def _shots_ids(spec: TaskSpec, path: Path, split_name: str, test: Sequence[str]) -> list[str]:
    """The cases of ``shots<k>`` or ``shots<k>:<target>`` from the split's test-set file."""
    match = _SHOTS_NAME.fullmatch(split_name)
    if match is None:  # pragma: no cover - callers check shots_of first
        raise SplitError(f"task '{spec.name}': '{split_name}' is not a few-shot split name")
    k, target = int(match.group(1)), match.group(2)
    shots = read_shots(path)
    test_path = heldout_path(path)
    if k not in shots:
        written = ", ".join(str(v) for v in shots) or "none"
        wanted = ",".join(str(v) for v in sorted({*shots, k}))
        seed = _test_doc(path).get("seed")
        again = f" --seed {seed}" if isinstance(seed, int) else ""
        raise SplitError(
            f"task '{spec.name}': split '{split_name}': {test_path} has no {k}-shot subsets "
            f"(written: {written}); run `ccbench data split --task {spec.name}{again} "
            f"--shots {wanted}`"
        )
    if target is None:
        ids = sorted({cid for subset in shots[k].values() for cid in subset})
    elif target in shots[k]:
        ids = sorted(shots[k][target])
    else:
        raise SplitError(
            f"task '{spec.name}': split '{split_name}': no target '{target}' in the {k}-shot "
            f"subsets of {test_path} (targets: {', '.join(shots[k])})"
        )
    leaked = sorted(set(ids) & set(test))
    if leaked:
        raise SplitError(
            f"task '{spec.name}': split '{split_name}' in {test_path} holds test case(s) "
            f"{', '.join(leaked[:5])}; few-shot subsets are drawn from the development cases. "
            f"Run `ccbench data split --task {spec.name}` again"
        )
    return ids


def check_fold_cases(
    spec: TaskSpec, fold: int, case_ids: Sequence[str], *, split: str, workspace: Workspace
) -> None:
    """Refuse a fold run whose cases the fold's model was trained on.

    Fold ``k``'s model (``--fold k``) is scored on its own validation cases (``fold<k>``) or on
    cases none of its training cases (``test``); another fold's validation cases, or ``all``,
    hold cases it learned from, and its scores there would flatter it.

    Raises
    ------
    SplitError
        When the split file lacks fold ``k`` or the cases overlap its training cases (the
        message names how many and one of them).
    """
    path = spec.split_path(workspace)
    if not path.is_file():
        raise SplitError(
            f"task '{spec.name}': no split file {path}; run `ccbench data split --task {spec.name}`"
        )
    folds, _ = read_split(path)
    if not 0 <= fold < len(folds):
        raise SplitError(f"task '{spec.name}': {path} has folds 0..{len(folds) - 1}, not {fold}")
    trained = set(map(str, folds[fold]["train"]))
    seen = sorted(c for c in case_ids if c in trained)
    if seen:
        raise SplitError(
            f"fold {fold}'s model was trained on {len(seen)} of the {len(case_ids)} cases of "
            f"split '{split}' (e.g. {seen[0]}): score a fold's model on its own validation "
            f"cases (split 'fold{fold}') or on held-out cases ('test')"
        )


def resolve_split(
    task: str | TaskSpec,
    split_name: str,
    *,
    workspace: Workspace,
    data_root: Path | None = None,
    registry: Registry | None = None,
) -> list[str]:
    """The sorted case ids of a named split.

    Parameters
    ----------
    task
        Task name or spec.
    split_name
        ``all``, ``train``, ``test``, ``fold0`` ... ``fold4``; ``shots5`` (the union over
        targets of the 5-shot subsets) or ``shots5:liver`` (one target's), when the split was
        made with ``--shots`` (see the module docstring).
    workspace, data_root, registry
        As for :func:`open_dataset`; the split file is ``task.split_file`` in the workspace.

    Raises
    ------
    SplitError
        No split file (says to run ``ccbench data split``), an unknown split name (lists the
        known ones), a ``k`` or target without few-shot subsets (names the file), or a split
        file naming cases that the dataset does not have.
    DatasetNotFoundError
        When the data root is missing or empty.
    """
    spec = resolve_task(task, registry)
    adapter = open_dataset(spec, workspace=workspace, data_root=data_root, registry=registry)
    available = adapter.case_ids()
    if split_name == "all":
        return available
    path = spec.split_path(workspace)
    if not path.is_file():
        raise SplitError(
            f"task '{spec.name}': no split file {path}; run `ccbench data split --task {spec.name}`"
        )
    folds, test = read_split(path)
    if spec.derived_from is not None:
        _check_source_split(spec, path, workspace, registry)
    elif spec.split.group_by and "group_by" not in _test_doc(path):
        _check_groups(spec, adapter, path, folds, test)
    if shots_of(split_name) is not None:
        ids = _shots_ids(spec, path, split_name, test)
    elif split_name not in (names := split_names(len(folds), shots=read_shots(path))):
        shots_hint = (
            ", shots<k>[:<target>] after `ccbench data split --shots`"
            if not any(n.startswith("shots") for n in names)
            else ", shots<k>:<target>"
        )
        raise SplitError(
            f"task '{spec.name}': unknown split '{split_name}' (known: {', '.join(names)}"
            f"{shots_hint})"
        )
    elif split_name == "test":
        ids = test
    elif split_name == "train":
        ids = sorted({cid for f in folds for cid in f["val"]})
    else:
        ids = [str(c) for c in folds[int(split_name[len("fold") :])]["val"]]
    missing = sorted(set(ids) - set(available))
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise SplitError(
            f"task '{spec.name}': split file {path} lists {len(missing)} case(s) of split "
            f"'{split_name}' that are not in the dataset at {adapter.root} ({shown}); "
            f"run `ccbench data split --task {spec.name}` again"
        )
    return sorted(ids)


def _check_groups(
    spec: TaskSpec,
    adapter: DatasetAdapter,
    path: Path,
    folds: Sequence[Mapping[str, Sequence[str]]],
    test: Sequence[str],
) -> None:
    """Refuse a split file made before its task grouped cases (``split.group_by``) when it puts
    one subject's cases (a patient's studies) in two parts: a fold would train on a patient it
    validates or tests."""
    field = str(spec.split.group_by)
    part = {str(c): "test" for c in test}
    part.update({str(c): f"fold{k}" for k, f in enumerate(folds) for c in f["val"]})
    seen: dict[str, tuple[str, str]] = {}
    for cid in sorted(part):
        try:
            subject = adapter.case(cid).metadata.get(field)
        except DatasetNotFoundError:
            continue  # named by resolve_split's own check
        if subject in (None, ""):
            continue
        first = seen.setdefault(str(subject), (cid, part[cid]))
        if first[1] != part[cid]:
            raise SplitError(
                f"task '{spec.name}': split file {path} puts cases of {field} {subject} in "
                f"{first[1]} ({first[0]}) and {part[cid]} ({cid}), so a fold trains on cases "
                f"of a {field} it scores (made before ccbench kept them together); run `ccbench "
                f"data split --task {spec.name} --force`"
            )


def _check_source_split(
    spec: TaskSpec, path: Path, workspace: Workspace, registry: Registry | None
) -> None:
    """Refuse a derived task's split made from other parts of its source task than today's.

    The derived split follows the source's split patient by patient; when the source's split is
    made again with other parts, a patient may have moved from the test set to a training fold
    of the source while the derived split still tests it. Only the parts count (each fold's
    validation cases and the test set): a source split made again with the same parts, or with
    few-shot subsets added, is fine.
    """
    recorded = _test_doc(path).get("source_parts")
    if not recorded:
        return
    source = resolve_task(str(spec.derived_from), registry)
    source_path = source.split_path(workspace)
    current = _parts_id(*read_split(source_path)) if source_path.is_file() else None
    if current != recorded:
        raise SplitError(
            f"task '{spec.name}': its split {path} follows a split of '{source.name}' that is "
            f"no longer in {source.split_path(workspace)} (made again since); run `ccbench data "
            f"split --task {spec.name}` again"
        )


def case_listing(
    task: str | TaskSpec,
    split_name: str,
    *,
    workspace: Workspace,
    data_root: Path | None = None,
) -> dict[str, Any]:
    """The cases of a split as an entry sees them: ``cases.json`` of the batch interface.

    The same layout as the ``/input/cases.json`` a batch container gets, with absolute paths to
    the dataset's own files (a model can run on it outside a container) and, per case, the
    name its prediction file must have in a predictions folder (``ccbench evaluate --pred``).

    Returns
    -------
    dict
        ``{"task", "split", "cases": [{"case_id", "channels": {name: path}, "prediction"}]}``;
        ``prediction`` is ``<case_id>.nii.gz`` for 3D tasks (``.nii`` and ``.mha`` are read
        too; see :mod:`evaluator.evaluate` for the other layouts) and, for the 2D instance
        tasks, ``predictions.json`` (one COCO results file for all cases, ``image_id`` = case
        id).

    Raises
    ------
    SplitError, DatasetNotFoundError
        As :func:`resolve_split`.
    """
    spec = resolve_task(task)
    dataset = open_dataset(spec, workspace=workspace, data_root=data_root)
    cases = []
    for case_id in resolve_split(spec, split_name, workspace=workspace, data_root=data_root):
        case = dataset.case(case_id)
        channels = {
            name: str(Path(case.channels[name]).absolute())
            for name in spec.present_channels(case.channels)
        }
        prediction = "predictions.json" if spec.instances else f"{case_id}.nii.gz"
        cases.append({"case_id": case_id, "channels": channels, "prediction": prediction})
    return {"task": spec.name, "split": split_name, "cases": cases}
