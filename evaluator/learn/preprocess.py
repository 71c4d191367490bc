"""Intensity normalisation of the learned baselines, shared by training and the containers.

Each input channel is mapped to a float32 network input by one rule, chosen at training time
and written into the model's ``config.json`` (so inference applies exactly the same rule):

``window``
    CT in HU and PET in SUV: clipped to ``[low, high]`` and scaled linearly to ``[-1, 1]``
    (whole-body CT -1000..1000 HU; abdominal CT, as the BTCV recipes, -175..250 HU; SUV 0..20).
``zscore``
    Other images (X-ray): zero mean and unit variance over the image.
``organs``
    An organ map (``ORGANS``, integer organ ids): 1 inside the organs listed in the rule's
    ``ids`` (those with high physiological FDG uptake: brain, bladder, heart, kidneys; the ids
    come from the phantom's organ table when the model is trained), else 0. This is the anatomy
    prior of the anatomy-guided baseline.

This module is copied into the baselines' images: numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "channel_rule",
    "normalise",
    "stack_channels",
]

#: Default rule per channel name; ``TASK_WINDOWS`` overrides the window per dataset family.
_DEFAULT_RULES: dict[str, dict[str, Any]] = {
    "CT": {"kind": "window", "low": -1000.0, "high": 1000.0},
    "PET": {"kind": "window", "low": 0.0, "high": 20.0},
    "PT": {"kind": "window", "low": 0.0, "high": 20.0},
}
#: Dataset family -> channel -> rule (abdominal soft-tissue window for BTCV).
TASK_WINDOWS: dict[str, dict[str, dict[str, Any]]] = {
    "btcv": {"CT": {"kind": "window", "low": -175.0, "high": 250.0}},
}


def channel_rule(channel: str, family: str, *, organ_ids: Sequence[int] = ()) -> dict[str, Any]:
    """The normalisation rule of a channel of a dataset family (``zscore`` when none is known).

    ``ORGANS`` becomes an ``organs`` rule with ``organ_ids`` (the uptake organs' ids).

    Examples
    --------
    >>> channel_rule("CT", "btcv")["low"], channel_rule("CT", "autopet")["low"]
    (-175.0, -1000.0)
    >>> channel_rule("XR", "chestxdet")
    {'kind': 'zscore'}
    """
    if channel == "ORGANS":
        return {"kind": "organs", "ids": [int(i) for i in organ_ids]}
    rule = TASK_WINDOWS.get(family, {}).get(channel) or _DEFAULT_RULES.get(channel)
    return dict(rule or {"kind": "zscore"})


def normalise(array: npt.ArrayLike, rule: Mapping[str, Any]) -> npt.NDArray[np.float32]:
    """Apply one rule of :func:`channel_rule` to an image array.

    Examples
    --------
    >>> normalise([-2000.0, 0.0, 500.0], {"kind": "window", "low": -1000, "high": 1000}).tolist()
    [-1.0, 0.0, 0.5]
    >>> normalise([0, 1, 3, 12], {"kind": "organs", "ids": [1, 2, 3]}).tolist()
    [0.0, 1.0, 1.0, 0.0]
    >>> normalise([1.0, 3.0], {"kind": "zscore"}).tolist()
    [-1.0, 1.0]
    """
    arr = np.asarray(array, dtype=np.float32)
    kind = rule.get("kind")
    if kind == "window":
        low, high = float(rule["low"]), float(rule["high"])
        return np.asarray((np.clip(arr, low, high) - low) / (high - low) * 2.0 - 1.0, np.float32)
    if kind == "organs":
        ids = [int(i) for i in rule["ids"]]
        return np.isin(np.rint(arr).astype(np.int64), ids).astype(np.float32)
    if kind == "zscore":
        std = float(arr.std())
        return np.asarray((arr - float(arr.mean())) / (std if std > 0 else 1.0), np.float32)
    raise ValueError(f"unknown normalisation rule {kind!r} (window, organs, zscore)")


def stack_channels(
    arrays: Mapping[str, npt.ArrayLike],
    channels: Sequence[str],
    rules: Mapping[str, Mapping[str, Any]],
) -> npt.NDArray[np.float32]:
    """The network input: each channel normalised, stacked on a new first axis.

    Raises
    ------
    KeyError
        A channel the model needs is missing (named).

    Examples
    --------
    >>> x = stack_channels({"CT": [[0.0]], "PET": [[10.0]]}, ["CT", "PET"],
    ...                    {"CT": {"kind": "window", "low": -1000, "high": 1000},
    ...                     "PET": {"kind": "window", "low": 0, "high": 20}})
    >>> x.shape, x[:, 0, 0].tolist()
    ((2, 1, 1), [0.0, 0.0])
    """
    missing = [c for c in channels if c not in arrays]
    if missing:
        raise KeyError(f"input channel(s) {', '.join(missing)} missing (have: {', '.join(arrays)})")
    return np.stack([normalise(arrays[c], rules[c]) for c in channels])
