"""``/input/prompts.json``: what a prompted entry is given besides the images.

An entry declares ``prompts: text`` and/or ``prompts: clicks`` in its manifest
(:class:`evaluator.runner.contract.Manifest`). ``ccbench run`` then writes, next to the staged
images, one JSON file (version 1) in either interface:

* batch interface: ``{"version": 1, "cases": {"<case id>": PROMPT, ...}}`` for the cases of the
  container run (the same ids as ``cases.json``);
* grand-challenge interface: ``{"version": 1, **PROMPT}`` for its one case (the case id is not
  revealed, as in ``inputs.json``), and, when the prompt has clicks, ``/input/lesion-clicks.json``
  in grand-challenge's "Multiple points" format, as the autoPET IV algorithms read it.

``PROMPT`` holds ``targets`` (text: ``[{"name": "liver", "label": 6}, ...]``, the structures to
segment and the label value to write for each) and/or ``clicks`` (``{"budget": k, "version":
{...}, "type": "Multiple points", "points": [{"point": [x, y, z], "name": "tumor" |
"background"}, ...]}``, voxel indices in (x, y, z) order; see :mod:`evaluator.prompts.clicks`).

The prompts are derived by the harness alone: text targets from the task's label names, clicks
from the reference and the PET image with a recorded seed; nothing else of the reference is
written. Every prompt given is stored with the run (:meth:`evaluator.store.Store.record_prompts`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evaluator.datasets.registry import TaskSpec

__all__ = [
    "GC_CLICKS_FILE",
    "PROMPTS_FILE",
    "PROMPTS_VERSION",
    "Prompt",
    "text_targets",
    "write_prompts",
]

#: The file every prompted container finds in ``/input``.
PROMPTS_FILE = "prompts.json"
#: The click file of the grand-challenge interface (autoPET IV's name).
GC_CLICKS_FILE = "lesion-clicks.json"
PROMPTS_VERSION = 1

#: One case's prompt: ``targets`` and/or ``clicks`` (module doc).
Prompt = Mapping[str, Any]


def text_targets(task: TaskSpec, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The text prompt of a task: each foreground label's name and value, in label order.

    Parameters
    ----------
    task
        The task (its ``labels``).
    names
        Ask only for these targets [default: every label of the task].

    Raises
    ------
    ValueError
        A name that is not one of the task's labels.

    Examples
    --------
    >>> from evaluator.datasets.registry import load_registry
    >>> text_targets(load_registry().task("btcv-phantom"), ["liver", "spleen"])
    [{'name': 'spleen', 'label': 1}, {'name': 'liver', 'label': 6}]
    """
    known = {name: value for value, name in sorted(task.labels.items())}
    wanted = list(known) if names is None else list(names)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(
            f"task '{task.name}' has no target(s) {unknown} (its targets: {', '.join(known)})"
        )
    return [{"name": n, "label": v} for n, v in known.items() if n in wanted]


def write_prompts(
    input_dir: Path, *, layout: str, case_ids: Sequence[str], prompts: Mapping[str, Prompt]
) -> None:
    """Write ``prompts.json`` (and the grand-challenge click file) of one staged unit.

    Parameters
    ----------
    input_dir
        The unit's staged ``/input``.
    layout
        ``"gc"`` for the grand-challenge interface (one case), else the batch layout.
    case_ids
        The unit's cases (those staged).
    prompts
        Case id -> its prompt; cases without one get none.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_prompts(folder, layout="batch", case_ids=["c1"],
    ...               prompts={"c1": {"targets": [{"name": "liver", "label": 6}]}})
    >>> json.loads((folder / PROMPTS_FILE).read_text())["cases"]["c1"]["targets"][0]["name"]
    'liver'
    """
    given = {c: dict(prompts[c]) for c in case_ids if c in prompts}
    if not given:
        return
    if layout != "gc":
        doc: dict[str, Any] = {"version": PROMPTS_VERSION, "cases": given}
        (input_dir / PROMPTS_FILE).write_text(json.dumps(doc, sort_keys=True))
        return
    (prompt,) = given.values()
    (input_dir / PROMPTS_FILE).write_text(
        json.dumps({"version": PROMPTS_VERSION, **prompt}, sort_keys=True)
    )
    clicks = prompt.get("clicks")
    if clicks is not None:
        points = {k: v for k, v in clicks.items() if k != "budget"}
        (input_dir / GC_CLICKS_FILE).write_text(json.dumps(points))
