"""The programs inside the baselines' images (``predict.py`` of each build context calls one).

``run_learned``: a trained network per task under ``--weights`` (default
``/opt/algorithm/weights``, one folder per task holding ``config.json`` and ``model.pt``); the
task comes from ``cases.json`` (batch) or, for the grand-challenge interface, from the output
folder the harness made (each config records its task's output slug). A 3D model writes one
label image per case; a 2D model (an instance task, ChestXDet) writes one COCO results list,
``/output/predictions.json``, with each class's connected components as scored instances.

``run_suv_threshold``: :func:`~.suv_threshold.segment_suv` on every case.

Both print one line per case and return the process's exit status: 0, or 2 with a message on
stderr when the input cannot be used (no weights for the task, a missing channel).

This module is copied into the baselines' images.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["choose_model", "run_learned", "run_suv_threshold"]

DEFAULT_WEIGHTS = Path("/opt/algorithm/weights")
#: What a 2D (instance) model writes into ``/output``: COCO results of every case.
INSTANCES_FILE = "predictions.json"


def choose_model(weights: Path, task: str | None, slug: str | None) -> Path:
    """The model folder ``weights/<task>`` for a task, or for a grand-challenge output slug.

    Raises
    ------
    LookupError
        No model, none for the task, or an output slug that matches no model.
    """
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
        folder = choose_model(args.weights, inputs.task, inputs.output_slug)
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
    print(f"model {folder.name} on {model.device}", flush=True)
    instances: list[dict[str, object]] = []
    two_d = int(model.config["dims"]) == 2
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
        if two_d:
            instances += label_instances(labels, confidence, image_id=case.key)
        else:
            write_label(labels, images[model.config["channels"][0]], case.output)
        print(f"{case.key}: done in {time.perf_counter() - start:.1f} s", flush=True)
    if two_d:  # one COCO results list for the split (instance tasks: batch interface)
        (out / INSTANCES_FILE).write_text(json.dumps(instances))
        print(f"{len(instances)} instances written to {INSTANCES_FILE}", flush=True)
    return 0


def run_suv_threshold(argv: Sequence[str] | None = None) -> int:
    """Segment every staged case with the SUV threshold (see :mod:`.suv_threshold`)."""
    import SimpleITK as sitk

    from .layouts import find_inputs, io_folders, write_label
    from .suv_threshold import segment_suv

    inp, out = io_folders()
    try:
        inputs = find_inputs(inp, out, gc_output="automated-petct-lesion-segmentation")
    except FileNotFoundError as err:
        print(f"cannot start: {err}", file=sys.stderr)
        return 2
    head_and_neck = (inputs.task or "").startswith("hecktor") or inputs.output_slug == (
        "gtv-segmentation"
    )
    for case in inputs.cases:
        pet = case.channels.get("PET") or case.channels.get("PT")
        if pet is None:
            print(f"{case.key}: no PET channel (have {', '.join(case.channels)})", file=sys.stderr)
            return 2
        suv = sitk.ReadImage(str(pet))
        ct = sitk.ReadImage(str(case.channels["CT"])) if "CT" in case.channels else None
        seg = segment_suv(suv, ct, suppress=not head_and_neck)
        write_label(sitk.GetArrayViewFromImage(seg), suv, case.output)
        print(f"{case.key}: done", flush=True)
    return 0
