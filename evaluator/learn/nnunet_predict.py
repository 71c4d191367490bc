"""nnU-Net v2 inference inside an image (``predict.py`` of ``ccbench submit --nnunet-results``).

``run_nnunet`` segments every staged case, in either interface, with a packed nnU-Net results
folder per task under ``--weights`` (default ``/opt/algorithm/weights``)::

    weights/<task>/config.json      channels (task channel names in nnU-Net's channel order),
                                    configuration, folds, checkpoint, tta, gc_inputs, gc_output
    weights/<task>/model/           dataset.json, plans.json, fold_<k>/<checkpoint> (weights only)

It does what ``nnUNetv2_predict -c CONFIGURATION -f FOLDS [--disable_tta]`` does for one case at
a time: the plans' image reader, nnU-Net's preprocessing, sliding-window prediction (Gaussian,
step 0.5) averaged over the folds, mirroring on the plans' axes when test-time augmentation is on,
and nnU-Net's export back to the input grid. The network is built from the plans by
``nnUNetTrainer.build_network_architecture``, so no trainer lookup runs (the packed trainer's
architecture must be the plans' one, as for nnU-Net's own trainers). A channel on another grid
than the first (HECKTOR's PT) is resampled onto it (linear) first, as for training.

Test-time augmentation: ``--tta``/``--no-tta`` (the manifest's ``command``), else ``config.json``.

This module is copied into the nnU-Net images (numpy, SimpleITK, torch and nnU-Net v2).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["load_predictor", "run_nnunet"]


def _load_weights(path: Path) -> dict[str, Any]:
    """The network weights of a packed checkpoint (tensors only: nothing is unpickled)."""
    import torch

    data = torch.load(path, map_location="cpu", weights_only=True)
    weights: dict[str, Any] = data["network_weights"]
    return weights


def load_predictor(folder: Path, *, tta: bool | None = None) -> tuple[Any, dict[str, Any]]:
    """An initialised ``nnUNetPredictor`` for the packed model in ``folder`` and its config.

    Raises
    ------
    FileNotFoundError
        A file of the packed model is missing.
    """
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from .infer import pick_device

    config = json.loads((folder / "config.json").read_text())
    model = folder / "model"
    dataset_json = json.loads((model / "dataset.json").read_text())
    plans = PlansManager(json.loads((model / "plans.json").read_text()))
    configuration = plans.get_configuration(config["configuration"])
    parameters = [
        _load_weights(model / f"fold_{fold}" / config["checkpoint"]) for fold in config["folds"]
    ]
    network = nnUNetTrainer.build_network_architecture(
        plans,
        configuration,
        determine_num_input_channels(plans, configuration, dataset_json),
        plans.get_label_manager(dataset_json).num_segmentation_heads,
        enable_deep_supervision=False,
    )
    network.load_state_dict(parameters[0])
    device = pick_device()
    predictor = nnUNetPredictor(
        tile_step_size=0.5,
        use_gaussian=True,
        use_mirroring=bool(config.get("tta", True) if tta is None else tta),
        perform_everything_on_device=device.type == "cuda",
        device=device,
        verbose=False,
        allow_tqdm=False,
    )
    mirror_axes = config.get("mirror_axes")
    predictor.manual_initialization(
        network, plans, configuration, parameters, dataset_json, config.get("trainer", ""),
        tuple(mirror_axes) if mirror_axes is not None else None,
    )  # fmt: skip
    return predictor, config


def _stage_channels(files: Sequence[Path], scratch: Path, convert: bool) -> list[str]:
    """The channel files as the plans' reader must get them: one grid (the first channel's).

    A channel on another grid is resampled (linear) onto the first; with ``convert`` every
    channel is rewritten as NIfTI (for readers that take only NIfTI).
    """
    import SimpleITK as sitk

    def header(path: Path) -> sitk.ImageFileReader:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()  # the geometry only: nnU-Net's reader reads the pixels
        return reader

    first = header(files[0])
    grid: sitk.Image | None = None  # the first channel's image, read when one is resampled
    out = []
    for index, path in enumerate(files):
        info = first if index == 0 else header(path)
        same = (
            info.GetSize() == first.GetSize()
            and all(
                abs(a - b) < 1e-4
                for a, b in zip(info.GetSpacing(), first.GetSpacing(), strict=True)
            )
            and all(
                abs(a - b) < 1e-3 for a, b in zip(info.GetOrigin(), first.GetOrigin(), strict=True)
            )
        )
        if same and not convert:
            out.append(str(path))
            continue
        image = sitk.ReadImage(str(path))
        if not same:
            grid = grid if grid is not None else sitk.ReadImage(str(files[0]))
            image = sitk.Resample(image, grid, sitk.Transform(), sitk.sitkLinear, 0.0)
        target = scratch / f"channel_{index:04d}.nii.gz"
        sitk.WriteImage(image, str(target))
        out.append(str(target))
    return out


def run_nnunet(argv: Sequence[str] | None = None) -> int:
    """Segment every staged case with the packed nnU-Net model of its task."""
    import SimpleITK as sitk

    from .entry import choose_model
    from .layouts import find_inputs, io_folders

    parser = argparse.ArgumentParser(description="ccbench nnU-Net v2 entry")
    parser.add_argument("--weights", type=Path, default=Path("/opt/algorithm/weights"))
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args(argv)
    inp, out = io_folders()
    try:
        inputs = find_inputs(inp, out)
        folder = choose_model(args.weights, inputs.task, inputs.output_slug)
        config = json.loads((folder / "config.json").read_text())
        if inputs.interface == "grand-challenge":
            inputs = find_inputs(
                inp, out, gc_channels=config.get("gc_inputs") or {},
                gc_output=config.get("gc_output") or "segmentation",
            )  # fmt: skip
        predictor, config = load_predictor(folder, tta=args.tta)
    except (LookupError, FileNotFoundError, ValueError, KeyError) as err:
        print(f"cannot start: {err}", file=sys.stderr)
        return 2
    reader = predictor.plans_manager.image_reader_writer_class()
    simpleitk = type(reader).__name__ == "SimpleITKIO"
    print(
        f"nnU-Net {config['configuration']} folds {config['folds']} on {predictor.device}, "
        f"test-time augmentation {'on' if predictor.use_mirroring else 'off'}",
        flush=True,
    )
    for case in inputs.cases:
        start = time.perf_counter()
        missing = [c for c in config["channels"] if c not in case.channels]
        if missing:  # this case only: the others are still segmented
            print(f"{case.key}: skipped: no {', '.join(missing)} channel", file=sys.stderr)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            scratch = Path(tmp)
            files = _stage_channels(
                [case.channels[c] for c in config["channels"]], scratch, convert=not simpleitk
            )
            image, properties = reader.read_images(files)
            seg = predictor.predict_single_npy_array(image, properties, None, None, False)
            direct = simpleitk or case.output.name.endswith(".nii.gz")
            target = case.output if direct else scratch / "seg.nii.gz"
            target.parent.mkdir(parents=True, exist_ok=True)
            reader.write_seg(seg, str(target), properties)
            if not direct:  # e.g. .mha from a NIfTI-only writer
                sitk.WriteImage(sitk.ReadImage(str(target)), str(case.output), True)
        print(f"{case.key}: done in {time.perf_counter() - start:.1f} s", flush=True)
    return 0
