"""The programs inside the baselines' images (``predict.py`` of each build context calls one).

``run_learned``: a trained network per task under ``--weights`` (default
``/opt/algorithm/weights``, one folder per task holding ``config.json`` and ``model.pt``); the
task comes from ``cases.json`` (batch) or, for the grand-challenge interface, from the output
folder the harness made (each config records its task's output slug). A 3D model writes one
label image per case; a 2D model (an instance task, ChestXDet) writes one COCO results list,
``/output/predictions.json``, with each class's connected components as scored instances.

``run_suv_threshold``: :func:`~.suv_threshold.segment_suv` on every case.

``run_click_grow``: :func:`~.click_grow.grow_from_clicks` from each case's clicks
(``/input/prompts.json``; an interactive entry).

A prompted case (``targets`` in its prompt: a text-prompted entry) gets only the structures
asked for, each written with the label value the prompt gives (:func:`answer_targets`).

Both print one line per case and return the process's exit status: 0, or 2 with a message on
stderr when the input cannot be used (no weights for the task, a missing channel).

This module is copied into the baselines' images.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["answer_targets", "choose_model", "run_click_grow", "run_learned", "run_suv_threshold"]

DEFAULT_WEIGHTS = Path("/opt/algorithm/weights")
#: What a 2D (instance) model writes into ``/output``: COCO results of every case.
INSTANCES_FILE = "predictions.json"


def choose_model(
    weights: Path, task: str | None, slug: str | None, *, fold: int | None = None
) -> Path:
    """The model folder ``weights/<task>`` for a task, or for a grand-challenge output slug.

    A fold run (``fold``, from the case's prompt) takes ``weights/<task>/fold<k>``: the model
    trained on that fold's training cases, never another fold's (which was trained on the
    cases it would be scored on).

    Raises
    ------
    LookupError
        No model, none for the task, an output slug that matches no model, or no model of the
        fold.
    """
    if fold is not None:
        folder = choose_model(weights, task, slug)
        if not (folder / f"fold{fold}" / "config.json").is_file():
            raise LookupError(f"no model of fold {fold} under {folder}")
        return folder / f"fold{fold}"
    configs = {p.parent.name: p.parent for p in sorted(weights.glob("*/config.json"))}
    if not configs:
        raise LookupError(f"no trained model under {weights} (expected <task>/config.json)")
    if task is not None:
        if task not in configs:
            raise LookupError(f"no model for task '{task}' (trained for: {', '.join(configs)})")
        return configs[task]
    by_slug = {
        json.loads((folder / "config.json").read_text()).get("gc_output"): folder
        for folder in configs.values()
    }
    if slug in by_slug:
        return by_slug[slug]
    if len(configs) == 1:
        return next(iter(configs.values()))
    raise LookupError(
        f"output folder '{slug}' matches no model (known: {sorted(map(str, by_slug))})"
    )


def answer_targets(
    labels: npt.NDArray[Any], model_labels: Mapping[str, str], targets: Sequence[Mapping[str, Any]]
) -> npt.NDArray[np.uint8]:
    """Keep the structures a text prompt asks for, each with the label value it asks for.

    Parameters
    ----------
    labels
        The network's label map (the model's own values).
    model_labels
        The model's label value (as text) -> structure name.
    targets
        The prompt's ``[{"name": ..., "label": ...}]``; a name the model does not know is left
        empty (printed).

    Examples
    --------
    >>> seg = np.array([0, 1, 2, 6, 6])
    >>> answer_targets(seg, {"1": "spleen", "6": "liver"}, [{"name": "liver", "label": 3}])
    array([0, 0, 0, 3, 3], dtype=uint8)
    """
    by_name = {name: int(value) for value, name in model_labels.items()}
    out = np.zeros(labels.shape, dtype=np.uint8)
    for target in targets:
        value = by_name.get(str(target.get("name")))
        if value is None:
            print(f"target {target.get('name')!r} is not a structure of this model", flush=True)
            continue
        out[labels == value] = int(target["label"])
    return out


def run_learned(argv: Sequence[str] | None = None) -> int:
    """Segment every staged case with the trained network of its task."""
    import SimpleITK as sitk

    from .infer import load_model, predict_with_confidence
    from .instances import label_instances
    from .layouts import find_inputs, io_folders, write_label
    from .preprocess import stack_channels

    parser = argparse.ArgumentParser(description="ccbench learned baseline")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    args = parser.parse_args(argv)
    inp, out = io_folders()
    try:
        inputs = find_inputs(inp, out)
        fold = next((c.prompt.get("fold") for c in inputs.cases if "fold" in c.prompt), None)
        folder = choose_model(args.weights, inputs.task, inputs.output_slug, fold=fold)
        model = load_model(folder)
        if inputs.interface == "grand-challenge":  # the model's own folder -> channel names
            inputs = find_inputs(
                inp,
                out,
                gc_channels=model.config.get("gc_inputs") or {},
                gc_output=model.config.get("gc_output") or "segmentation",
            )
    except (LookupError, FileNotFoundError, ValueError) as err:
        print(f"cannot start: {err}", file=sys.stderr)
        return 2
    print(f"model {folder.relative_to(args.weights)} on {model.device}", flush=True)
    instances: list[dict[str, object]] = []
    writes_instances = bool(model.config.get("instances", int(model.config["dims"]) == 2))
    for case in inputs.cases:
        start = time.perf_counter()
        images = {name: sitk.ReadImage(str(path)) for name, path in case.channels.items()}
        arrays = {name: sitk.GetArrayFromImage(img) for name, img in images.items()}
        try:
            x = stack_channels(arrays, model.config["channels"], model.config["normalisation"])
        except KeyError as err:  # this case only: the others are still segmented
            print(f"{case.key}: skipped: {err.args[0]}", file=sys.stderr, flush=True)
            continue
        labels, confidence = predict_with_confidence(model, x)
        if "targets" in case.prompt:  # a text prompt: only the structures asked for
            labels = answer_targets(labels, model.config["labels"], case.prompt["targets"])
        if writes_instances:
            instances += label_instances(labels, confidence, image_id=case.key)
        else:
            write_label(labels, images[model.config["channels"][0]], case.output)
        print(f"{case.key}: done in {time.perf_counter() - start:.1f} s", flush=True)
    if writes_instances:  # one COCO results list for the split (instance tasks: batch interface)
        (out / INSTANCES_FILE).write_text(json.dumps(instances))
        print(f"{len(instances)} instances written to {INSTANCES_FILE}", flush=True)
    return 0


def _staged(gc_output: str) -> Any | None:
    """The staged inputs (:class:`.layouts.Inputs`); None (said on stderr) when nothing is."""
    from .layouts import find_inputs, io_folders

    inp, out = io_folders()
    try:
        return find_inputs(inp, out, gc_output=gc_output)
    except FileNotFoundError as err:
        print(f"cannot start: {err}", file=sys.stderr)
        return None


def _pet(case: Any) -> Path | None:
    """The case's PET channel (``PET`` or ``PT``); None (said on stderr) when it has none."""
    pet: Path | None = case.channels.get("PET") or case.channels.get("PT")
    if pet is None:
        print(f"{case.key}: no PET channel (have {', '.join(case.channels)})", file=sys.stderr)
    return pet


def run_suv_threshold(argv: Sequence[str] | None = None) -> int:
    """Segment every staged case with the SUV threshold (see :mod:`.suv_threshold`)."""
    import SimpleITK as sitk

    from .layouts import write_label
    from .suv_threshold import segment_suv

    inputs = _staged("automated-petct-lesion-segmentation")
    if inputs is None:
        return 2
    head_and_neck = (inputs.task or "").startswith("hecktor") or inputs.output_slug == (
        "gtv-segmentation"
    )
    for case in inputs.cases:
        pet = _pet(case)
        if pet is None:
            return 2
        suv = sitk.ReadImage(str(pet))
        ct = sitk.ReadImage(str(case.channels["CT"])) if "CT" in case.channels else None
        seg = segment_suv(suv, ct, suppress=not head_and_neck)
        write_label(sitk.GetArrayViewFromImage(seg), suv, case.output)
        print(f"{case.key}: done", flush=True)
    return 0


def run_click_grow(argv: Sequence[str] | None = None) -> int:
    """Segment every staged case by growing regions from its clicks (:mod:`.click_grow`)."""
    import SimpleITK as sitk

    from .click_grow import click_lists, grow_from_clicks
    from .layouts import write_label

    inputs = _staged("tumor-lesion-segmentation")
    if inputs is None:
        return 2
    for case in inputs.cases:
        pet = _pet(case)
        if pet is None:
            return 2
        tumor, background = click_lists(case.prompt)
        suv = sitk.ReadImage(str(pet))
        seg = grow_from_clicks(suv, tumor, background)
        write_label(sitk.GetArrayViewFromImage(seg), suv, case.output)
        print(
            f"{case.key}: {len(tumor)} lesion and {len(background)} background clicks", flush=True
        )
    return 0
