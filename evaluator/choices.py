"""The fixed choices of ccbench, each written once as a ``Literal``.

The modules that own a concept re-export its choice (``evaluator.metrics.cc.CCMode``,
``evaluator.runner.contract.Interface``...); the CLI builds its option types from them with
``typing.get_args``, so ``--help`` lists the same values the library accepts. This module
imports nothing, so the CLI starts without loading scipy, SQLAlchemy or pydantic.

Examples
--------
>>> from typing import get_args
>>> get_args(Interface)
('batch', 'grand-challenge')
"""

from __future__ import annotations

from typing import Literal, TypeAlias

__all__ = [
    "BackendName",
    "BaseImageName",
    "CCMode",
    "ClickMode",
    "Filesystem",
    "Interface",
    "LesionMatch",
    "Operation",
    "Order",
    "PhantomLayout",
    "PromptKind",
    "ResultFormat",
    "Staging",
    "StudyOperation",
    "StudyOrder",
    "ToyStudyName",
]

#: Units of the CC-Metrics' regions and distances: millimetres, or voxels as ``ccmetrics``.
CCMode: TypeAlias = Literal["mm", "voxel"]
#: Matching rule of the lesion-level metrics: any overlap, or IoU above 0.5.
LesionMatch: TypeAlias = Literal["any_overlap", "iou_0.5"]
#: How a container is run: once per split (``batch``) or once per case (``grand-challenge``).
Interface: TypeAlias = Literal["batch", "grand-challenge"]
#: The container's root file system: grand-challenge's throw-away layer, or read-only.
Filesystem: TypeAlias = Literal["ephemeral", "read-only"]
#: Where ``ccbench run`` runs containers: the Docker engine, or plain processes (development).
BackendName: TypeAlias = Literal["docker", "local"]
#: How ``ccbench run --scheduler`` gets a job's inputs to a worker: with the job, or through a
#: file system every worker mounts.
Staging: TypeAlias = Literal["transfer", "shared"]
#: What a prompted entry receives in ``/input/prompts.json`` besides the images: the names of
#: the targets to segment (universal, text-prompted models), or simulated clicks (interactive
#: models).
PromptKind: TypeAlias = Literal["text", "clicks"]
#: How ``ccbench run`` simulates the clicks of an interactive entry: autoPET IV's official
#: simulator (all clicks drawn from the reference before the first run; budget k gives the
#: first k of each kind), or corrective clicks drawn from the previous budget's errors.
ClickMode: TypeAlias = Literal["autopet-iv", "corrective"]
#: Degradations of the dataset studies, in the order of the thesis figures.
Operation: TypeAlias = Literal["drop", "enlarge", "insert", "erode"]
#: Which components a degradation edits first.
Order: TypeAlias = Literal["smallest", "largest"]
#: ``ccbench simulate dataset --op``: one degradation, or all four.
StudyOperation: TypeAlias = Literal["drop", "enlarge", "insert", "erode", "all"]
#: ``ccbench simulate dataset --order``: one order, or both.
StudyOrder: TypeAlias = Literal["smallest", "largest", "both"]
#: On-disk layouts of ``ccbench data phantoms --layout``: the dataset's own, or nnU-Net v2 raw.
PhantomLayout: TypeAlias = Literal["native", "nnunet"]
#: Further result layouts of ``ccbench evaluate --format``: nnU-Net's ``summary.json``.
ResultFormat: TypeAlias = Literal["nnunet"]
#: The local base images (keys of ``evaluator.runner.images.BASE_IMAGES``).
BaseImageName: TypeAlias = Literal["python", "sci", "torch", "nnunet"]
#: The toy-sphere studies (keys of ``evaluator.simulate.toy.TOY_STUDIES``).
ToyStudyName: TypeAlias = Literal[
    "erode_all", "erode_smallest", "dilate_merge", "lesion_dice_pitfall", "hd95_erode", "nsd_shift"
]
