"""The installed environment: nnU-Net v2 beside the CPU torch, no CUDA build pulled in, and no
torchvision (the only build pulled in is a CUDA one that cannot load with the CPU torch)."""

from __future__ import annotations

from importlib.metadata import distributions, version
from importlib.util import find_spec

import torch


def test_nnunet_sits_beside_the_cpu_torch() -> None:
    names = {(d.metadata["Name"] or "").lower() for d in distributions()}
    assert "nnunetv2" in names
    assert not torch.version.cuda and version("torch") == "2.13.0+cpu"
    assert not sorted(n for n in names if n.startswith("nvidia-")), "a CUDA build was pulled in"
    assert find_spec("torchvision") is None, "scripts/bootstrap.sh removes torchvision"
