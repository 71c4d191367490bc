"""The container side of the contract, for the baselines: find the cases, write the outputs.

Reads ``$CCBENCH_INPUT`` (default ``/input``) in either layout of
:mod:`evaluator.runner.contract` and tells where each case's output goes in
``$CCBENCH_OUTPUT`` (default ``/output``):

* batch: ``/input/cases.json`` lists the task and every case's channel files; the output of
  case ``C`` is ``/output/C.nii.gz``;
* grand-challenge: one case, ``/input/images/<slug>/<uuid>.mha`` per channel; the output is
  ``/output/images/<output-slug>/<uuid>.mha`` (``CCBENCH_GC_OUTPUT``, else the only folder the
  harness made under ``/output/images``, else the caller's default).

A prompted entry also finds ``/input/prompts.json`` (:mod:`evaluator.prompts.contract`): each
case's prompt (``targets``, ``clicks``) is in :attr:`CaseInput.prompt`.

This module is copied into the baselines' images: numpy and SimpleITK only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

__all__ = ["CaseInput", "Inputs", "find_inputs", "io_folders", "write_label"]

#: grand-challenge input folders -> channel names, when the caller gives none.
DEFAULT_GC_CHANNELS: dict[str, str] = {"ct": "CT", "pet": "PET", "organs": "ORGANS"}


@dataclass(frozen=True)
class CaseInput:
    """One case to segment: its key (case id or uuid), channel files and output file."""

    key: str
    channels: Mapping[str, Path]
    output: Path
    #: The case's prompt from ``prompts.json`` (``targets`` and/or ``clicks``); empty if none.
    prompt: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Inputs:
    """What the harness staged: the task (batch layout only) and the cases."""

    task: str | None
    cases: list[CaseInput]
    interface: str
    output_slug: str | None = None


def io_folders() -> tuple[Path, Path]:
    """``($CCBENCH_INPUT or /input, $CCBENCH_OUTPUT or /output)``."""
    return (
        Path(os.environ.get("CCBENCH_INPUT", "/input")),
        Path(os.environ.get("CCBENCH_OUTPUT", "/output")),
    )


def _gc_output_slug(out: Path, default: str) -> str:
    if os.environ.get("CCBENCH_GC_OUTPUT"):
        return os.environ["CCBENCH_GC_OUTPUT"]
    made = [p.name for p in (out / "images").glob("*") if p.is_dir()]
    return made[0] if len(made) == 1 else default


def find_inputs(
    inp: Path,
    out: Path,
    *,
    gc_channels: Mapping[str, str] | None = None,
    gc_output: str = "segmentation",
) -> Inputs:
    """The staged cases of either layout.

    Parameters
    ----------
    inp, out
        The input and output folders.
    gc_channels
        grand-challenge input folder -> channel name (default :data:`DEFAULT_GC_CHANNELS`;
        other folders keep their name in upper case).
    gc_output
        Output folder when the harness made none and ``CCBENCH_GC_OUTPUT`` is unset.

    Raises
    ------
    FileNotFoundError
        Neither ``cases.json`` nor ``images/`` is there.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "in" / "c1").mkdir(parents=True)
    >>> _ = (root / "in" / "cases.json").write_text(
    ...     '{"task": "t", "cases": [{"case_id": "c1", "channels": {"CT": "c1/CT.nii.gz"}}]}')
    >>> found = find_inputs(root / "in", root / "out")
    >>> found.task, found.cases[0].channels["CT"].name, found.cases[0].output.name
    ('t', 'CT.nii.gz', 'c1.nii.gz')
    """
    listing = inp / "cases.json"
    prompts = (
        json.loads((inp / "prompts.json").read_text()) if (inp / "prompts.json").is_file() else {}
    )
    if listing.is_file():
        doc = json.loads(listing.read_text())
        given = prompts.get("cases", {})
        cases = [
            CaseInput(
                key=str(case["case_id"]),
                channels={name: inp / rel for name, rel in case["channels"].items()},
                output=out / f"{case['case_id']}.nii.gz",
                prompt=given.get(str(case["case_id"]), {}),
            )
            for case in doc["cases"]
        ]
        return Inputs(task=doc.get("task"), cases=cases, interface="batch")
    images = inp / "images"
    if images.is_dir():
        names = {**DEFAULT_GC_CHANNELS, **(gc_channels or {})}
        channels: dict[str, Path] = {}
        for folder in sorted(p for p in images.iterdir() if p.is_dir()):
            files = sorted(folder.glob("*.mha"))
            if files:
                channels[names.get(folder.name, folder.name.upper())] = files[0]
        if not channels:
            raise FileNotFoundError(f"no .mha image under {images}/<slug>/")
        key = next(iter(channels.values())).name.removesuffix(".mha")
        slug = _gc_output_slug(out, gc_output)
        output = out / "images" / slug / f"{key}.mha"
        return Inputs(
            task=None,
            cases=[
                CaseInput(
                    key=key,
                    channels=channels,
                    output=output,
                    prompt={k: v for k, v in prompts.items() if k != "version"},
                )
            ],
            interface="grand-challenge",
            output_slug=slug,
        )
    raise FileNotFoundError(f"neither {inp}/cases.json nor {inp}/images/ exists")


def write_label(labels: npt.ArrayLike, like: sitk.Image, path: Path) -> None:
    """Write a label array (array order) on the grid of ``like``, compressed, as uint8."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = sitk.GetImageFromArray(np.asarray(labels, dtype=np.uint8))
    out.CopyInformation(like)
    sitk.WriteImage(out, str(path), True)
