"""The learned baselines' networks and training profiles, as data.

Each :class:`ModelSpec` names a MONAI network, the tasks it is trained for and two
:class:`Profile` s: ``quick`` (sized to train in minutes on 2 CPU cores, the default) and
``full`` (the published configuration, for a GPU). A profile is plain data, written into the
trained model's ``config.json``, so the container rebuilds exactly the network that was trained.

This module is copied into the learned baselines' images (with :mod:`.preprocess`,
:mod:`.infer` and :mod:`.layouts`): it imports nothing from ccbench outside
``evaluator.learn``, and torch and MONAI only inside :func:`build_network`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "MODELS",
    "NNUNET_MODEL",
    "PROFILES",
    "TRAINABLE",
    "ModelSpec",
    "Profile",
    "build_network",
    "model_spec",
]

NetworkName = Literal["unet", "unetr", "swinunetr"]
#: Profile names: ``quick`` trains in minutes on a CPU, ``full`` is the paper recipe for a GPU.
PROFILES: tuple[str, ...] = ("quick", "full")


@dataclass(frozen=True)
class Profile:
    """How one model is trained and run.

    Attributes
    ----------
    patch
        Training patch and sliding-window size, array order (``z, y, x`` or ``y, x``), voxels.
    batch
        Patches per iteration.
    iterations
        Optimiser steps (the cosine schedule runs over them).
    learning_rate
        AdamW's initial learning rate (weight decay 1e-5).
    foreground
        Share of patches centred on a random foreground voxel (the rest: uniform centres).
    validate_every
        Iterations between validations on the fold's validation cases (and at the end).
    time_budget_s
        Wall-clock cap of the training loop, seconds (None: none). A run stopped by it is marked
        ``stopped_by_time_budget`` in its log and config: its weights depend on the machine.
    network
        Keyword arguments of the MONAI network.
    """

    patch: tuple[int, ...]
    batch: int
    iterations: int
    learning_rate: float
    network: Mapping[str, Any]
    foreground: float = 0.67
    validate_every: int = 100
    time_budget_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values (for ``config.json``)."""
        out = asdict(self)
        out["patch"] = list(self.patch)
        out["network"] = dict(self.network)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Profile:
        """The inverse of :meth:`to_json`.

        Examples
        --------
        >>> p = MODELS["monai-unet"].profiles["quick"]
        >>> Profile.from_json(p.to_json()) == p
        True
        """
        values = dict(data)
        values["patch"] = tuple(int(v) for v in values["patch"])
        values["network"] = dict(values["network"])
        return cls(**values)


@dataclass(frozen=True)
class ModelSpec:
    """One learned baseline.

    Attributes
    ----------
    name
        The baseline's name (``baselines/<name>/``, ``--model``).
    network
        MONAI network: ``unet`` (``monai.networks.nets.UNet``), ``unetr``, ``swinunetr``.
    dims
        2 or 3 (spatial dimensions).
    tasks
        Tasks it is trained and registered for (datasets.yaml names).
    anatomy
        Takes the task's optional organ map (``ORGANS``) as an extra input channel.
    profiles
        ``quick`` and ``full``.
    """

    name: str
    network: NetworkName
    dims: int
    tasks: tuple[str, ...]
    profiles: Mapping[str, Profile]
    anatomy: bool = False
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


_UNET_QUICK = {"channels": (16, 32, 64, 128), "strides": (2, 2, 2), "num_res_units": 1}
_UNET_FULL = {
    "channels": (32, 64, 128, 256, 320),
    "strides": (2, 2, 2, 2),
    "num_res_units": 2,
}
_UNET = {
    "quick": Profile(
        patch=(32, 64, 64),
        batch=2,
        iterations=500,
        learning_rate=3e-3,
        network=_UNET_QUICK,
        time_budget_s=900.0,
    ),
    "full": Profile(
        patch=(128, 128, 128),
        batch=2,
        iterations=250_000,
        learning_rate=1e-3,
        network=_UNET_FULL,
        validate_every=2500,
    ),
}

#: The learned baselines, by name.
MODELS: dict[str, ModelSpec] = {
    "monai-unet": ModelSpec(
        name="monai-unet",
        network="unet",
        dims=3,
        tasks=("autopet-phantom", "hecktor-phantom", "btcv-phantom"),
        profiles=_UNET,
        description="3D U-Net (MONAI UNet, residual units), DiceCE, AdamW + cosine schedule",
    ),
    "anatomy-guided": ModelSpec(
        name="anatomy-guided",
        network="unet",
        dims=3,
        tasks=("autopet-phantom",),
        profiles=_UNET,
        anatomy=True,
        description="monai-unet with the organ map as an extra input channel (APEX idea)",
    ),
    "monai-unet-2d": ModelSpec(
        name="monai-unet-2d",
        network="unet",
        dims=2,
        tasks=("chestxdet-phantom", "autopet-2d-phantom"),
        profiles={
            "quick": Profile(
                patch=(256, 256),
                batch=4,
                iterations=400,
                learning_rate=3e-3,
                network=_UNET_QUICK,
                time_budget_s=900.0,
            ),
            "full": Profile(
                patch=(512, 512),
                batch=8,
                iterations=50_000,
                learning_rate=1e-3,
                network=_UNET_FULL,
                validate_every=1000,
            ),
        },
        description="2D multi-class U-Net; connected components of each class become instances",
    ),
    "monai-unetr": ModelSpec(
        name="monai-unetr",
        network="unetr",
        dims=3,
        tasks=("btcv-phantom", "autopet-phantom"),
        profiles={
            "quick": Profile(  # measured: lr 3e-4 learns nothing in 600 iterations
                patch=(32, 64, 64),
                batch=2,
                iterations=600,
                learning_rate=2e-3,
                foreground=0.9,
                network={
                    "feature_size": 8,
                    "hidden_size": 96,
                    "mlp_dim": 192,
                    "num_heads": 4,
                },
                time_budget_s=900.0,
            ),
            "full": Profile(
                patch=(96, 96, 96),
                batch=2,
                iterations=25_000,
                learning_rate=1e-4,
                network={
                    "feature_size": 16,
                    "hidden_size": 768,
                    "mlp_dim": 3072,
                    "num_heads": 12,
                },
                validate_every=500,
            ),
        },
        description="UNETR (ViT encoder, 16^3 patches), same recipe",
    ),
    "monai-swinunetr": ModelSpec(
        name="monai-swinunetr",
        network="swinunetr",
        dims=3,
        tasks=("btcv-phantom", "autopet-phantom"),
        profiles={
            "quick": Profile(  # 4^3 attention windows: half the time of 7^3 on a CPU
                patch=(32, 64, 64),
                batch=2,
                iterations=400,
                learning_rate=2e-3,
                foreground=0.9,
                network={"feature_size": 12, "depths": (1, 1, 1, 1), "window_size": 4},
                time_budget_s=900.0,
            ),
            "full": Profile(
                patch=(96, 96, 96),
                batch=2,
                iterations=25_000,
                learning_rate=1e-4,
                network={"feature_size": 48, "depths": (2, 2, 2, 2)},
                validate_every=500,
            ),
        },
        description="Swin UNETR (shifted-window transformer encoder), same recipe",
    ),
}

#: nnU-Net v2, trained by nnU-Net's own pipeline (:mod:`evaluator.learn.nnunet_train`).
NNUNET_MODEL = "nnunet"
#: Every model ``ccbench baselines train --model`` takes: :data:`MODELS` and nnU-Net.
TRAINABLE: tuple[str, ...] = (*MODELS, NNUNET_MODEL)


def model_spec(name: str) -> ModelSpec:
    """The spec of a learned baseline; ``KeyError`` naming the known ones otherwise.

    Examples
    --------
    >>> model_spec("monai-unet").network
    'unet'
    """
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model '{name}' (known: {', '.join(MODELS)})") from None


def build_network(
    network: str, profile: Profile, *, dims: int, in_channels: int, out_channels: int
) -> Any:
    """The MONAI network of a profile (a ``torch.nn.Module``).

    Examples
    --------
    >>> p = MODELS["monai-unet"].profiles["quick"]
    >>> net = build_network("unet", p, dims=3, in_channels=2, out_channels=2)
    >>> sum(t.numel() for t in net.parameters()) > 100_000
    True
    """
    kwargs = dict(profile.network)
    if network == "unet":
        from monai.networks.nets import UNet

        return UNet(
            spatial_dims=dims,
            in_channels=in_channels,
            out_channels=out_channels,
            channels=tuple(kwargs["channels"]),
            strides=tuple(kwargs["strides"]),
            num_res_units=int(kwargs.get("num_res_units", 1)),
        )
    if network == "unetr":
        from monai.networks.nets import UNETR

        return UNETR(
            in_channels=in_channels,
            out_channels=out_channels,
            img_size=profile.patch,
            spatial_dims=dims,
            **kwargs,
        )
    if network == "swinunetr":
        from monai.networks.nets import SwinUNETR

        kwargs["depths"] = tuple(kwargs.get("depths", (2, 2, 2, 2)))
        return SwinUNETR(
            in_channels=in_channels, out_channels=out_channels, spatial_dims=dims, **kwargs
        )
    raise ValueError(f"unknown network '{network}' (unet, unetr, swinunetr)")
