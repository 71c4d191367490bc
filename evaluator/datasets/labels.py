"""Label validation: the one check of a label image's values, used by every command.

References, predictions (after :mod:`evaluator.ingest`), the simulations and the leaderboard's
slice gallery all turn a label image into an array through :func:`label_array`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from evaluator.errors import InvalidLabelError
from evaluator.typing import LabelArray

__all__ = ["declared_labels", "label_array", "parse_label_option"]

_INTEGER_PIXEL_IDS = frozenset(
    {
        sitk.sitkUInt8,
        sitk.sitkInt8,
        sitk.sitkUInt16,
        sitk.sitkInt16,
        sitk.sitkUInt32,
        sitk.sitkInt32,
        sitk.sitkUInt64,
        sitk.sitkInt64,
    }
)


def _list_values(values: Iterable[Any], limit: int = 10) -> str:
    items = [repr(v) for v in values]
    more = f", ... ({len(items)} in all)" if len(items) > limit else ""
    return "[" + ", ".join(items[:limit]) + more + "]"


def label_array(img: sitk.Image, *, labels: Iterable[int], what: str) -> LabelArray:
    """The integer array of a label image, after checking its values.

    Parameters
    ----------
    img
        A scalar label image; integer pixel types are returned as stored, float pixel types are
        accepted when every value is a whole number (nnU-Net writes some labels as float).
    labels
        Allowed foreground values (``TaskSpec.labels`` keys); 0 (background) is always allowed.
    what
        Names the image in messages, e.g. ``"reference /data/labelsTr/CHUM-001.nii.gz"``.

    Returns
    -------
    numpy.ndarray
        Shape ``(z, y, x)`` or ``(y, x)``; the stored integer dtype, or ``uint8`` (``int32`` if a
        label exceeds 255) for float input.

    Raises
    ------
    InvalidLabelError
        For multi-component images, NaN or non-whole values, and values outside the label map
        (the message lists the bad values).

    Examples
    --------
    >>> img = sitk.GetImageFromArray(np.array([[0, 1], [2, 1]], dtype=np.uint8))
    >>> label_array(img, labels=[1, 2], what="label a.nii.gz").tolist()
    [[0, 1], [2, 1]]
    >>> label_array(img, labels=[1], what="label a.nii.gz")
    Traceback (most recent call last):
    ...
    evaluator.errors.InvalidLabelError: label a.nii.gz: values [2] are not in the label map {0, 1}
    """
    allowed = {0, *(int(v) for v in labels)}
    allowed_text = "{" + ", ".join(str(v) for v in sorted(allowed)) + "}"
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InvalidLabelError(
            f"{what}: has {img.GetNumberOfComponentsPerPixel()} components per pixel, "
            "expected a scalar label image"
        )
    arr = sitk.GetArrayFromImage(img)
    if img.GetPixelID() not in _INTEGER_PIXEL_IDS:
        if not np.issubdtype(arr.dtype, np.floating):
            raise InvalidLabelError(
                f"{what}: pixel type {img.GetPixelIDTypeAsString()} is not an integer type"
            )
        if np.isnan(arr).any():
            raise InvalidLabelError(f"{what}: contains NaN values (labels must be integers)")
        rounded = np.rint(arr)
        fractional = arr != rounded
        if fractional.any():
            raise InvalidLabelError(
                f"{what}: contains non-integer values, e.g. "
                f"{_list_values(np.unique(arr[fractional])[:5].tolist())}"
            )
        dtype = np.uint8 if max(allowed) <= 255 else np.int32
        if arr.size and (rounded.min() < 0 or rounded.max() > max(allowed)):
            _check_label_values(rounded, allowed, what=what, allowed_text=allowed_text)
        arr = rounded.astype(dtype)
    if arr.size == 0:
        return arr
    _check_label_values(arr, allowed, what=what, allowed_text=allowed_text)
    return arr


def _check_label_values(
    arr: np.ndarray, allowed: set[int], *, what: str, allowed_text: str
) -> None:
    """Raise unless every value of ``arr`` is in ``allowed``.

    Memory is bounded by the image and the largest *allowed* label, never by a stored value: an
    int32 image holding ``2**31 - 1`` costs one boolean mask, not a set of two billion numbers.
    """
    top = max(allowed)
    table = np.zeros(top + 1, dtype=bool)
    table[sorted(allowed)] = True
    lo, hi = arr.min(), arr.max()
    if lo >= 0 and hi <= top and table[int(lo) : int(hi) + 1].all():
        return
    bad_mask = (arr < 0) | (arr > top) | ~table[np.clip(arr, 0, top).astype(np.intp)]
    bad = np.unique(arr[bad_mask])
    more = f" (and {bad.size - 20} more)" if bad.size > 20 else ""
    shown = [int(v) if float(v).is_integer() else float(v) for v in bad[:20].tolist()]
    raise InvalidLabelError(
        f"{what}: values {_list_values(shown)}{more} are not in the label map {allowed_text}"
    )


def declared_labels(
    labels: Mapping[int, str], given: Sequence[int | str], *, what: str
) -> tuple[int, ...] | None:
    """The label values an entry declares it predicts, from names or values.

    Parameters
    ----------
    labels
        The task's label map (value -> name, ``datasets.yaml``).
    given
        Label names (matched exactly, then ignoring case) or values (``int``, or a string of
        digits as a command line gives them); duplicates are dropped.
    what
        Names the declaration in an error message (the manifest file and task).

    Returns
    -------
    tuple of int or None
        The declared values, sorted; None when they are every label of the task (nothing is
        left out: scored as an entry without a declaration).

    Raises
    ------
    InvalidLabelError
        No label given, or one that is neither a name nor a value of the task.

    Examples
    --------
    >>> organs = {1: "spleen", 2: "right kidney", 3: "liver"}
    >>> declared_labels(organs, ["liver", 1, "Right Kidney"], what="x")
    >>> declared_labels(organs, ["spleen", "3", 3], what="x")
    (1, 3)
    """
    if not given:
        raise InvalidLabelError(f"{what}: declares no label (known: {_known(labels)})")
    by_name = {name: value for value, name in labels.items()}
    by_folded = {name.casefold(): value for value, name in labels.items()}
    found: set[int] = set()
    for item in given:
        text = str(item).strip()
        value: int | None
        if isinstance(item, int) and not isinstance(item, bool):
            value = item if item in labels else None
        elif text.isdigit():
            value = int(text) if int(text) in labels else None
        else:
            value = by_name.get(text, by_folded.get(text.casefold()))
        if value is None:
            raise InvalidLabelError(
                f"{what}: label {item!r} is not a label of the task (known: {_known(labels)})"
            )
        found.add(value)
    return None if found == set(labels) else tuple(sorted(found))


def parse_label_option(text: str) -> tuple[str, list[str]]:
    """``TASK=name,name,...`` (the ``--labels`` option) -> ``(task, [names])``.

    Raises
    ------
    ValueError
        No ``=`` or no task.

    Examples
    --------
    >>> parse_label_option("btcv-phantom=spleen, liver,2")
    ('btcv-phantom', ['spleen', 'liver', '2'])
    """
    task, sep, names = text.partition("=")
    if not sep or not task.strip():
        raise ValueError(f"--labels {text!r}: expected TASK=name,name,... (e.g. btcv=spleen,liver)")
    return task.strip(), [n.strip() for n in names.split(",") if n.strip()]


def _known(labels: Mapping[int, str]) -> str:
    return ", ".join(f"{value}={name}" for value, name in sorted(labels.items()))
