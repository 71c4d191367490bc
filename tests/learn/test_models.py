"""The learned baselines' registry: every network builds and runs a patch; the container half of
evaluator.learn imports nothing of ccbench outside it (it is copied into the images alone)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import evaluator.learn
from evaluator.learn.models import MODELS, PROFILES, Profile, build_network

LEARN = Path(evaluator.learn.__file__).parent
#: What the container images provide besides the standard library.
IMAGE_PACKAGES = {"numpy", "SimpleITK", "torch", "monai"}
#: What only the nnU-Net image adds, and the module allowed to use it.
NNUNET_PACKAGES = {"nnunetv2": "nnunet_predict"}


def test_every_model_has_every_profile() -> None:
    for spec in MODELS.values():
        assert set(spec.profiles) == set(PROFILES), spec.name


@pytest.mark.parametrize("module", evaluator.learn.CONTAINER_MODULES)
def test_container_modules_import_only_what_the_images_hold(module: str) -> None:
    tree = ast.parse((LEARN / f"{module}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: must be another container module
                target = (node.module or "").split(".")[0]
                assert not target or target in evaluator.learn.CONTAINER_MODULES, (module, target)
                continue
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            allowed = top in IMAGE_PACKAGES or NNUNET_PACKAGES.get(top) == module
            assert top == "__future__" or top in sys.stdlib_module_names or allowed, (module, name)


@pytest.mark.parametrize("name", list(MODELS))
def test_quick_networks_build_and_map_a_patch_to_class_scores(name: str) -> None:
    spec = MODELS[name]
    profile = spec.profiles["quick"]
    channels = 3 if spec.anatomy else 2
    torch.manual_seed(0)
    net = build_network(spec.network, profile, dims=spec.dims, in_channels=channels, out_channels=4)
    x = torch.from_numpy(np.zeros((1, channels, *profile.patch), np.float32))
    with torch.no_grad():
        y = net(x)
    assert tuple(y.shape) == (1, 4, *profile.patch)


def test_full_profiles_are_the_published_sizes() -> None:
    full = {n: MODELS[n].profiles["full"] for n in ("monai-unetr", "monai-swinunetr")}
    assert full["monai-unetr"].network["hidden_size"] == 768
    assert full["monai-swinunetr"].network["feature_size"] == 48
    assert all(p.patch == (96, 96, 96) for p in full.values())
    # a profile survives the trip through config.json
    for spec in MODELS.values():
        for profile in spec.profiles.values():
            assert Profile.from_json(profile.to_json()).to_json() == profile.to_json()


def test_unknown_network_is_named() -> None:
    profile = MODELS["monai-unet"].profiles["quick"]
    with pytest.raises(ValueError, match="unknown network 'vnet'"):
        build_network("vnet", profile, dims=3, in_channels=1, out_channels=2)
