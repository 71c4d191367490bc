"""Interactive entries: one container run per click budget, each scored as its own run.

An entry with ``prompts: clicks`` is run ``budgets + 1`` times on the split, with budget
``k = 0, 1, ..., budgets`` clicks of each kind (``k`` lesion clicks and ``k`` background clicks),
as autoPET IV evaluates interactive models (its ``evaluation_metrics.py``: predictions ``0..N``,
the metrics per budget and the area under each metric-vs-clicks curve). The clicks are drawn by
the harness from the reference and the PET image (:mod:`evaluator.prompts.clicks`):

* ``autopet-iv`` (default): the official simulator, seeded; all clicks are drawn once, budget
  ``k`` gives the first ``k`` of each kind, so the runs do not depend on one another;
* ``corrective``: budget ``k`` adds, to budget ``k - 1``'s clicks, one lesion click at the centre
  of the largest region the previous prediction missed and one background click at the centre of
  its largest false-positive region (none of a kind when there is no such error).

Budget ``k`` is stored as the run ``<series>__clicks<k>`` with ``protocol`` parameters (``budget``,
``budgets``, ``click_mode``, ``click_seed``, ``series``) and each case's click file in the store's
``prompts`` table; :mod:`leaderboards.protocols` draws the curves and ranks by their area.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluator.choices import ClickMode
from evaluator.errors import SubmissionError

if TYPE_CHECKING:
    from evaluator.datasets.base import Case
    from evaluator.datasets.registry import TaskSpec
    from evaluator.prompts.clicks import Clicks
    from evaluator.prompts.contract import Prompt

__all__ = [
    "ClickProtocol",
    "ClickSeries",
    "budget_run_name",
    "pet_channel",
    "previous_prediction",
]

#: Budget of autoPET IV's interactive evaluation (10 clicks of each kind).
DEFAULT_BUDGETS = 10
#: The simulator's seed in autoPET IV's code.
DEFAULT_SEED = 42


def budget_run_name(series: str, budget: int) -> str:
    """The stored run of one budget of a series.

    Examples
    --------
    >>> budget_run_name("click-grow__autopet-phantom__test__20261202", 3)
    'click-grow__autopet-phantom__test__20261202__clicks03'
    """
    return f"{series}__clicks{budget:02d}"


def pet_channel(task: TaskSpec) -> str:
    """The task's PET channel (``PET`` or ``PT``), which the background clicks need.

    Raises
    ------
    SubmissionError
        The task has no PET channel, or more than one foreground label (the clicks say
        "lesion" or "background", not which label: HECKTOR's GTVp and GTVn cannot be told
        apart by them): clicks are simulated for PET/CT tasks of one lesion label (AutoPET).
    """
    if len(task.labels) != 1:
        raise SubmissionError(
            f"task '{task.name}' has {len(task.labels)} labels ({', '.join(task.labels.values())}):"
            " clicks mark lesion or background only, so interactive entries (prompts: clicks) "
            "run on tasks of one lesion label (AutoPET)"
        )
    for name in ("PET", "PT"):
        if name in task.channels:
            return name
    raise SubmissionError(
        f"task '{task.name}' has no PET channel (channels: {', '.join(task.channels)}): "
        "interactive entries (prompts: clicks) run on PET/CT lesion tasks (AutoPET)"
    )


@dataclass(frozen=True)
class ClickProtocol:
    """How the clicks of a series are drawn.

    Attributes
    ----------
    budgets
        The largest budget ``N``; the series runs budgets ``0..N``.
    mode
        ``autopet-iv`` or ``corrective`` (module doc).
    seed
        The simulator's seed (``autopet-iv``; recorded, unused by ``corrective``, whose clicks
        are deterministic).
    """

    budgets: int = DEFAULT_BUDGETS
    mode: ClickMode = "autopet-iv"
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if not 0 <= self.budgets <= 100:
            raise SubmissionError(f"click budget {self.budgets}: give 0 to 100 clicks")

    def parameters(self, series: str, budget: int) -> dict[str, Any]:
        """The ``protocol`` parameters of budget ``budget``'s run."""
        return {
            "prompts": ["clicks"],
            "budget": budget,
            "budgets": self.budgets,
            "click_mode": self.mode,
            "click_seed": self.seed,
            "series": series,
        }


class ClickSeries:
    """The clicks of every case of a series, budget after budget.

    Reads each case's reference (and PET) when its clicks are needed, never all cases at once.

    Parameters
    ----------
    task
        The task (its PET channel).
    cases
        The cases of the split.
    protocol
        How the clicks are drawn.
    """

    def __init__(self, task: TaskSpec, cases: Sequence[Case], protocol: ClickProtocol) -> None:
        self.pet = pet_channel(task)
        self.cases = {c.case_id: c for c in cases}
        self.protocol = protocol
        self._drawn: dict[str, Clicks] = {}
        self._given: dict[str, Clicks] = {}

    def _reference(self, case: Case) -> tuple[np.ndarray, Any]:
        import SimpleITK as sitk

        label = case.read_label()
        return sitk.GetArrayFromImage(label), label

    def prompts(
        self, budget: int, previous: Callable[[str, Any], np.ndarray | None]
    ) -> dict[str, Prompt]:
        """Each case's prompt at ``budget``.

        Parameters
        ----------
        budget
            ``0..budgets``, called in order.
        previous
            ``previous(case_id, reference_image)``: the case's prediction at ``budget - 1`` as
            an array on the reference's grid, or None when there is none usable (corrective
            mode only).
        """
        import SimpleITK as sitk

        from evaluator.prompts.clicks import (
            Clicks,
            at_budget,
            corrective_clicks,
            simulate_clicks,
            to_grand_challenge,
        )

        out: dict[str, Prompt] = {}
        for cid, case in self.cases.items():
            if self.protocol.mode == "autopet-iv":
                if cid not in self._drawn:
                    label, _ = self._reference(case)
                    pet = sitk.GetArrayFromImage(case.read_channel(self.pet))
                    self._drawn[cid] = simulate_clicks(
                        label, pet, budget=self.protocol.budgets, seed=self.protocol.seed
                    )
                clicks = at_budget(self._drawn[cid], budget)
            else:
                clicks = self._given.get(cid, Clicks(tumor=[], background=[]))
                if budget > 0:
                    label, image = self._reference(case)
                    pred = previous(cid, image)
                    found = corrective_clicks(
                        label,
                        np.zeros_like(label) if pred is None else pred,
                        spacing=tuple(reversed(image.GetSpacing())),
                    )
                    clicks = Clicks(
                        tumor=[*clicks.tumor, *found.tumor],
                        background=[*clicks.background, *found.background],
                    )
                self._given[cid] = clicks
            out[cid] = {"clicks": {"budget": budget, **to_grand_challenge(clicks)}}
        return out


def previous_prediction(
    predictions: Path, task: TaskSpec, case_ids: Sequence[str]
) -> Callable[[str, Any], np.ndarray | None]:
    """A reader of the previous budget's predictions, with scoring's checks.

    The folder is matched to ``case_ids`` once (:func:`evaluator.evaluate.predictions.
    find_predictions`, on the first read). A prediction is read exactly as scoring reads it
    (:func:`evaluator.scoring.read_scored_prediction`: header, grid, labels); one that is
    missing or that scoring would refuse counts as empty.
    """
    from evaluator.datasets.registry import load_registry

    resample = load_registry().profile(task).resample_extent
    found: dict[str, Any] = {}

    def read(case_id: str, reference: Any) -> np.ndarray | None:
        from evaluator.evaluate.predictions import find_predictions
        from evaluator.ingest import RejectedPrediction
        from evaluator.scoring import read_scored_prediction

        if not predictions.is_dir():
            return None
        if not found:
            found.update(find_predictions(predictions, case_ids))
        path = found.get(case_id)
        if not isinstance(path, Path):  # missing, or refused by name (format, link)
            return None
        try:
            labels = read_scored_prediction(
                path,
                reference,
                labels=task.labels,
                resample_extent=resample,
                what=f"prediction {case_id}",
            )
        except RejectedPrediction:  # refused by scoring's checks: counted as empty
            return None
        return np.asarray(labels) != 0

    return read
