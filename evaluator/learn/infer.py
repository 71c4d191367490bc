"""Inference of a trained baseline: load ``model.pt`` + ``config.json``, sliding-window predict.

A trained model is a folder with ``config.json`` (model, task, input channels and their
normalisation rules, label values, profile) and ``model.pt`` (the network's ``state_dict``).
The same code predicts the validation cases while training and the test cases inside the
container. The GPU is used when there is one (``CCBENCH_DEVICE`` overrides the choice).

This module is copied into the baselines' images: numpy, torch and MONAI only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .models import Profile, build_network

__all__ = [
    "LoadedModel",
    "load_model",
    "pick_device",
    "predict_normalised",
    "predict_with_confidence",
]

CONFIG = "config.json"
WEIGHTS = "model.pt"


def pick_device() -> Any:
    """``torch.device``: ``CCBENCH_DEVICE`` when set, else CUDA when available, else CPU."""
    import torch

    wanted = os.environ.get("CCBENCH_DEVICE")
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class LoadedModel:
    """A network with its config, ready to predict."""

    network: Any
    config: dict[str, Any]
    device: Any

    @property
    def profile(self) -> Profile:
        """The training profile (patch = sliding-window size)."""
        return Profile.from_json(self.config["profile"])


def network_for(config: Mapping[str, Any]) -> Any:
    """The (untrained) network a config describes."""
    return build_network(
        config["network"],
        Profile.from_json(config["profile"]),
        dims=int(config["dims"]),
        in_channels=len(config["channels"]),
        out_channels=len(config["label_values"]),
    )


def load_model(folder: Path, device: Any = None) -> LoadedModel:
    """Load ``folder/config.json`` and ``folder/model.pt`` (weights only, no pickled code).

    Raises
    ------
    FileNotFoundError
        Either file is missing.
    """
    import torch

    config = json.loads((folder / CONFIG).read_text())
    device = pick_device() if device is None else device
    net = network_for(config)
    state = torch.load(folder / WEIGHTS, map_location=device, weights_only=True)
    net.load_state_dict(state)
    net.to(device).eval()
    return LoadedModel(network=net, config=config, device=device)


def _probabilities(model: LoadedModel, x: npt.NDArray[np.float32], overlap: float) -> Any:
    """Softmax class probabilities ``(classes, *spatial)`` of a normalised input (a tensor)."""
    import torch
    from monai.inferers import sliding_window_inference

    tensor = torch.from_numpy(x)[None].to(model.device)
    with torch.no_grad():
        logits = sliding_window_inference(
            tensor,
            roi_size=tuple(model.config["profile"]["patch"]),
            sw_batch_size=4,
            predictor=model.network,
            overlap=overlap,
            mode="gaussian",
        )
    assert isinstance(logits, torch.Tensor)
    return torch.softmax(logits[0], dim=0)


def predict_normalised(
    model: LoadedModel, x: npt.NDArray[np.float32], *, overlap: float = 0.25
) -> npt.NDArray[np.uint8]:
    """Labels (array order, the config's label values) of a normalised input, channels first.

    Sliding-window inference (MONAI, Gaussian-weighted overlap) with the training patch size;
    images smaller than a patch are padded by MONAI and cropped back.
    """
    return predict_with_confidence(model, x, overlap=overlap)[0]


def predict_with_confidence(
    model: LoadedModel, x: npt.NDArray[np.float32], *, overlap: float = 0.25
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """Labels and the winning class's softmax probability per voxel (the instances' scores)."""
    probs = _probabilities(model, x, overlap)
    confidence, index = probs.max(dim=0)
    values = np.asarray(model.config["label_values"], dtype=np.uint8)
    labels = np.asarray(values[index.cpu().numpy()], dtype=np.uint8)
    return labels, np.asarray(confidence.cpu().numpy(), dtype=np.float32)
