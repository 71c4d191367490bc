"""``ccbench submit --nnunet-results DIR``: a trained nnU-Net v2 model as a ccbench entry.

The packing half of ``ccbench submit --nnunet-results DIR``
(:func:`evaluator.runner.baselines.submit_nnunet_results` builds and registers the image).
A results folder is nnU-Net's ``nnUNet_results/Dataset<NNN>_<Name>/<Trainer>__<Plans>__<Configuration>``
(``dataset.json``, ``plans.json``, ``fold_<k>/checkpoint_final.pth``); ``DIR`` may also be the
dataset folder above it, with ``--configuration`` choosing among its trainings. The folder is
checked against each task (the channels of ``dataset.json`` match the task's by name, else by
position; every label value the model writes is one of the task's; the configuration is 3D),
packed with the network weights only (optimizer state, logs and the other checkpoints are left
out) and built, with the container half of :mod:`evaluator.learn`, into an image on the local
nnU-Net base image (``ccbench/python-nnunet:bookworm``) whose program
(:func:`evaluator.learn.nnunet_predict.run_nnunet`) follows the container contract in both
interfaces. Test-time augmentation (nnU-Net's mirroring) is on unless ``--no-tta``; the choice is
the ``--tta``/``--no-tta`` argument of the manifest's ``command``, so it can be changed there.

Checkpoints are read with ``torch.load(weights_only=True)`` (tensors, plain containers and numpy
scalars only), so a results folder cannot run code on the host.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluator.errors import SubmissionError

if TYPE_CHECKING:
    from evaluator.datasets.registry import TaskSpec

__all__ = [
    "CHECKPOINT",
    "NnunetResults",
    "open_results",
    "pack_results",
    "read_checkpoint",
    "task_channels",
]

#: The checkpoint nnU-Net predicts with by default.
CHECKPOINT = "checkpoint_final.pth"
#: What a packed checkpoint keeps (enough for ``nnUNetv2_predict`` too).
_KEEP = ("network_weights", "trainer_name", "inference_allowed_mirroring_axes", "current_epoch")


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's content, unpickled with ``weights_only=True`` (numpy scalars allowed).

    Raises
    ------
    SubmissionError
        Unreadable, or holding anything but tensors, plain containers and numpy scalars.
    """
    import numpy as np
    import torch
    from numpy._core.multiarray import scalar  # numpy scalars as nnU-Net logs them

    allowed: list[Any] = [np.dtype, scalar, *(type(np.dtype(c)) for c in "?bhilqBHILQefdg")]
    try:
        with torch.serialization.safe_globals(allowed):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        text = str(err).strip()
        unsupported = re.search(r"unsupported (?:global: )?GLOBAL ([\w.]+)", text, re.IGNORECASE)
        first = (
            f"it would call {unsupported[1]}"
            if unsupported
            else (text.splitlines()[-1] if text else type(err).__name__)
        )
        raise SubmissionError(
            f"{path}: not a loadable nnU-Net checkpoint ({first[:300]})"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("network_weights"), dict):
        raise SubmissionError(f"{path}: not an nnU-Net checkpoint (no network_weights)")
    return data


#: Largest dataset.json / plans.json read, bytes.
_MAX_JSON = 16 << 20


def _regular_file(path: Path) -> Path:
    """``path`` when it is a regular file, not a link (a link could pull host files in)."""
    if path.is_symlink() or not path.is_file():
        what = "a link" if path.is_symlink() else "not a regular file"
        raise SubmissionError(f"{path}: {what}; a results folder holds plain files only")
    return path


def _json(path: Path) -> dict[str, Any]:
    _regular_file(path)
    if path.stat().st_size > _MAX_JSON:
        raise SubmissionError(f"{path}: larger than {_MAX_JSON >> 20} MB")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise SubmissionError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(data, dict):
        raise SubmissionError(f"{path}: expected a JSON object")
    return data


@dataclass(frozen=True)
class NnunetResults:
    """A checked nnU-Net results folder (see :func:`open_results`)."""

    folder: Path
    trainer: str
    plans_name: str
    configuration: str
    folds: tuple[str, ...]
    checkpoint: str
    dataset_json: dict[str, Any]
    plans: dict[str, Any]

    @property
    def output_labels(self) -> list[int]:
        """Label values the model writes (regions: ``regions_class_order``), background left out."""
        if self.dataset_json.get("regions_class_order"):
            return [int(v) for v in self.dataset_json["regions_class_order"]]
        values = self.dataset_json.get("labels", {}).values()
        return sorted({int(v) for v in values if not isinstance(v, list | tuple) and int(v) != 0})


def _check_layout(
    plans: dict[str, Any], dataset_json: dict[str, Any], configuration: str, folder: Path
) -> None:
    """The fields ccbench reads have nnU-Net's types (a malformed file is named, not a crash)."""

    def label_value(v: Any) -> bool:
        if isinstance(v, list):
            return bool(v) and all(type(i) is int for i in v)
        return type(v) is int

    configurations = plans.get("configurations")
    problems = []
    if not isinstance(configurations, dict) or not all(
        isinstance(c, dict) for c in configurations.values()
    ):
        problems.append((folder / "plans.json", "configurations is not a mapping of mappings"))
    elif not isinstance(configurations.get(configuration, {}).get("patch_size", []), list):
        problems.append((folder / "plans.json", f"{configuration}.patch_size is not a list"))
    labels = dataset_json.get("labels")
    if not isinstance(labels, dict) or not all(label_value(v) for v in labels.values()):
        problems.append((folder / "dataset.json", "labels is not a mapping of name -> label(s)"))
    names = dataset_json.get("channel_names") or dataset_json.get("modality") or {}
    if not isinstance(names, dict):
        problems.append((folder / "dataset.json", "channel_names is not a mapping"))
    order = dataset_json.get("regions_class_order", [])
    if not isinstance(order, list) or not all(type(v) is int for v in order):
        problems.append((folder / "dataset.json", "regions_class_order is not a list of labels"))
    if problems:
        path, what = problems[0]
        raise SubmissionError(f"{path}: not usable nnU-Net metadata ({what})")


def _find_folder(path: Path, configuration: str) -> Path:
    if (path / "plans.json").is_file() and (path / "dataset.json").is_file():
        return path
    found = sorted(
        p.parent
        for p in path.glob("*/plans.json")
        if p.parent.name.endswith(f"__{configuration}") and (p.parent / "dataset.json").is_file()
    )
    if len(found) == 1:
        return found[0]
    if not found:
        raise SubmissionError(
            f"{path}: not an nnU-Net results folder (expected plans.json and dataset.json, or "
            f"one <Trainer>__<Plans>__{configuration} folder holding them)"
        )
    names = ", ".join(p.name for p in found)
    raise SubmissionError(f"{path}: several trainings of {configuration} ({names}); pass one")


def open_results(
    path: Path,
    *,
    configuration: str = "3d_fullres",
    folds: Sequence[str] | None = None,
    checkpoint: str = CHECKPOINT,
) -> NnunetResults:
    """Find and check an nnU-Net results folder (see the module docstring).

    Parameters
    ----------
    path
        ``<Trainer>__<Plans>__<Configuration>`` or the ``Dataset<NNN>_<Name>`` folder above.
    configuration
        nnU-Net configuration (``3d_fullres``, ``3d_lowres``...); must be in ``plans.json``.
    folds
        Folds to ensemble (``"0"``, ``"all"``...); default: every ``fold_<k>`` with the checkpoint.
    checkpoint
        Checkpoint file name in each fold folder.

    Raises
    ------
    SubmissionError
        No such folder, unreadable JSON, an unknown configuration, a missing fold or checkpoint.
    """
    path = Path(path)
    if not path.is_dir():
        raise SubmissionError(f"{path}: no such folder")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.pth", checkpoint):
        raise SubmissionError(f"--checkpoint: a file name ending in .pth, not {checkpoint!r}")
    folder = _find_folder(path, configuration)
    plans, dataset_json = _json(folder / "plans.json"), _json(folder / "dataset.json")
    configurations = plans.get("configurations") or {}
    _check_layout(plans, dataset_json, configuration, folder)
    if configuration not in configurations:
        raise SubmissionError(
            f"{folder / 'plans.json'}: no configuration '{configuration}' "
            f"(has {', '.join(configurations) or 'none'})"
        )
    parts = folder.name.split("__")
    if len(parts) == 3 and parts[2] != configuration:
        raise SubmissionError(f"{folder}: trained with {parts[2]}, not {configuration}")
    if folder.is_symlink():
        raise SubmissionError(f"{folder}: a link; pass the folder itself")
    available = sorted(
        p.parent.name.removeprefix("fold_")
        for p in folder.glob(f"fold_*/{checkpoint}")
        if not p.parent.is_symlink()
    )
    chosen = tuple(dict.fromkeys(str(f) for f in folds)) if folds else tuple(available)
    missing = [f for f in chosen if f not in available]
    if missing or not chosen:
        raise SubmissionError(
            f"{folder}: no {checkpoint} for fold(s) {', '.join(missing) or 'any'} "
            f"(found: {', '.join(available) or 'none'})"
        )
    return NnunetResults(
        folder=folder,
        trainer=parts[0] if len(parts) == 3 else "nnUNetTrainer",
        plans_name=str(plans.get("plans_name", parts[1] if len(parts) == 3 else "nnUNetPlans")),
        configuration=configuration,
        folds=chosen,
        checkpoint=checkpoint,
        dataset_json=dataset_json,
        plans=plans,
    )


def task_channels(results: NnunetResults, task: TaskSpec) -> list[str]:
    """The task's channel names in the model's channel order; checks labels and dimensions.

    Raises
    ------
    SubmissionError
        Channels that do not match the task's, a label value the task does not have, or a 2D
        configuration for a 3D task (and the reverse).
    """
    from evaluator.datasets.nnunet import match_channels
    from evaluator.errors import RegistryError

    where = str(results.folder / "dataset.json")
    names = results.dataset_json.get("channel_names") or results.dataset_json.get("modality")
    if not names:  # no names: the task's channels, in order
        names = {str(i): channel for i, channel in enumerate(task.channels)}
    try:
        mapping = match_channels(names, task, where=where)
    except RegistryError as err:
        raise SubmissionError(str(err)) from None
    count = len(names)
    by_index = {int(suffix): channel for channel, suffix in mapping.items()}
    if sorted(by_index) != list(range(count)):
        raise SubmissionError(f"{where}: channels {by_index} do not cover 0..{count - 1}")
    unknown = sorted(set(results.output_labels) - set(task.labels))
    if unknown:
        raise SubmissionError(
            f"{where}: the model writes label value(s) {unknown} that task '{task.name}' does not "
            f"have (its labels: {dict(task.labels)})"
        )
    patch = results.plans["configurations"][results.configuration].get("patch_size") or []
    if patch and len(patch) != task.dims:
        raise SubmissionError(
            f"{results.folder}: configuration {results.configuration} is {len(patch)}D, "
            f"task '{task.name}' is {task.dims}D"
        )
    return [by_index[i] for i in range(count)]


#: What plans.json may name for nnU-Net to import and call: its network library's classes and
#: torch.nn's layers (checked before nnU-Net resolves the names on the host).
_IMPORTABLE = {
    "network": re.compile(r"dynamic_network_architectures(\.[A-Za-z_][A-Za-z0-9_]*)+"),
    "op": re.compile(r"torch\.nn(\.[A-Za-z_][A-Za-z0-9_]*)+"),
}


def _check_imports(configuration: Any, where: Path) -> None:
    """Every name the plans make nnU-Net import is a ``torch.nn.Module`` class of an allowed
    package (a dotted path could otherwise reach any callable, e.g. through a module's
    imports)."""
    import pydoc

    import torch

    names = [("network", configuration.network_arch_class_name)]
    kwargs = configuration.network_arch_init_kwargs
    names += [
        ("op", kwargs.get(key))
        for key in configuration.network_arch_init_kwargs_req_import
        if kwargs.get(key) is not None
    ]
    for kind, name in names:
        located = None
        if _IMPORTABLE[kind].fullmatch(str(name)):
            try:
                located = pydoc.locate(str(name))
            except Exception:  # pydoc.ErrorDuringImport: a module that does not import here
                located = None
        prefix = str(name).split(".")[0]
        if not (
            isinstance(located, type)
            and issubclass(located, torch.nn.Module)
            and located.__module__.split(".")[0] == prefix
        ):
            raise SubmissionError(
                f"{where}: the plans name {str(name)[:200]!r} for nnU-Net to import; only "
                "network classes of dynamic_network_architectures and torch.nn layers are run"
            )


def _check_architecture(results: NnunetResults, weights: dict[str, Any]) -> None:
    """The plans' network must take the weights (the image builds it from the plans)."""
    try:
        from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
        from nnunetv2.utilities.label_handling.label_handling import (
            determine_num_input_channels,
        )
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    except ImportError:
        return  # checked when the image starts
    try:
        plans = PlansManager(results.plans)
        configuration = plans.get_configuration(results.configuration)
        configuration.network_arch_class_name  # noqa: B018 (old plans are converted here)
    except Exception as err:  # malformed plans: KeyError, TypeError, ValueError, ...
        raise SubmissionError(
            f"{results.folder / 'plans.json'}: not usable nnU-Net plans ({type(err).__name__}: "
            f"{str(err)[:200]})"
        ) from None
    _check_imports(configuration, results.folder / "plans.json")
    try:
        network = nnUNetTrainer.build_network_architecture(
            plans, configuration,
            determine_num_input_channels(plans, configuration, results.dataset_json),
            plans.get_label_manager(results.dataset_json).num_segmentation_heads,
            enable_deep_supervision=False,
        )  # fmt: skip
        network.load_state_dict(weights)
    except Exception as err:  # nnU-Net and torch raise many kinds
        raise SubmissionError(
            f"{results.folder}: the weights do not fit the network of plans.json "
            f"({results.configuration}; trainer {results.trainer} may build another "
            f"architecture): {str(err).splitlines()[0][:300]}"
        ) from None


def pack_results(results: NnunetResults, task: TaskSpec, dest: Path, *, tta: bool = True) -> Path:
    """Write the packed model of ``task`` into ``dest`` (``config.json`` + ``model/``).

    ``model/`` holds ``dataset.json``, ``plans.json`` and ``fold_<k>/<checkpoint>`` with the
    network weights only (and the few keys nnU-Net's predictor reads), in the layout of a
    results folder.
    """
    import torch

    channels = task_channels(results, task)
    shutil.rmtree(dest, ignore_errors=True)
    model = dest / "model"
    model.mkdir(parents=True)
    trainer, mirror_axes = results.trainer, None
    for fold in results.folds:
        data = read_checkpoint(_regular_file(results.folder / f"fold_{fold}" / results.checkpoint))
        if fold == results.folds[0]:
            _check_architecture(results, data["network_weights"])
            trainer = str(data.get("trainer_name") or trainer)
            mirror_axes = data.get("inference_allowed_mirroring_axes")
        slim = {k: data[k] for k in _KEEP if k in data}
        slim["init_args"] = {"configuration": results.configuration}
        (model / f"fold_{fold}").mkdir()
        torch.save(slim, model / f"fold_{fold}" / results.checkpoint)
    for name in ("dataset.json", "plans.json"):
        shutil.copyfile(results.folder / name, model / name)
    config = {
        "kind": "nnunet",
        "task": task.name,
        "channels": channels,
        "configuration": results.configuration,
        "folds": list(results.folds),
        "checkpoint": results.checkpoint,
        "tta": bool(tta),
        "trainer": trainer,
        "plans": results.plans_name,
        "mirror_axes": list(mirror_axes) if mirror_axes is not None else None,
        "source": results.folder.name,
    }
    (dest / "config.json").write_text(json.dumps(config, indent=1))
    return dest
