"""Cases, the dataset adapter protocol, :func:`open_dataset` and the image I/O helpers.

Geometry contract (every adapter, every loader): images are :class:`SimpleITK.Image` objects as
read from disk. Numpy arrays taken from them follow ``SimpleITK.GetArrayFromImage``, i.e. axis order
``(z, y, x)`` in 3D and ``(y, x)`` in 2D. :class:`ImageGeometry` keeps SimpleITK's own order
``(x, y, z)`` for size, spacing (millimetres), origin (millimetres) and direction (row-major
cosines); :attr:`ImageGeometry.array_spacing` gives the spacing in array order, as the metrics
expect it.

Listing a dataset (``case_ids()``, ``cases()``) only lists files and reads small tables; pixel data
is read when a loader (``Case.read_channel``, ``Case.read_label``, ``Case.read_instances``) is called.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import SimpleITK as sitk

from evaluator.datasets.registry import Registry, TaskSpec, load_registry
from evaluator.errors import (
    DatasetNotFoundError,
    GeometryMismatchError,
    ImageReadError,
    InvalidLabelError,
)
from evaluator.typing import BoolArray, LabelArray, Spacing
from evaluator.workspace import Workspace

__all__ = [
    "ADAPTERS",
    "Annotation",
    "Case",
    "DatasetAdapter",
    "FolderAdapter",
    "ImageGeometry",
    "Instance",
    "check_same_geometry",
    "image_geometry",
    "label_array",
    "open_dataset",
    "rasterise_polygon",
    "read_image",
    "read_json",
    "read_table",
    "resolve_task",
]

#: Adapter name (``TaskSpec.adapter``) -> ``"module:Class"`` inside :mod:`evaluator.datasets`.
ADAPTERS: dict[str, str] = {
    "autopet": "autopet:AutoPETAdapter",
    "autopet_nnunet": "autopet:AutoPETNnunetAdapter",
    "hecktor": "hecktor:HecktorAdapter",
    "btcv": "btcv:BTCVAdapter",
    "chestxdet": "chestxdet:ChestXDetAdapter",
    "nnunet": "nnunet:NnunetAdapter",
}

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


# --------------------------------------------------------------------------------------------
# image I/O helpers
# --------------------------------------------------------------------------------------------


def read_image(path: str | Path) -> sitk.Image:
    """Read one image file (NIfTI, MHA, PNG, ...) with SimpleITK.

    Parameters
    ----------
    path
        The file. Its pixel data is read completely, so truncation is detected here.

    Returns
    -------
    SimpleITK.Image
        As stored: pixel type, size, spacing (mm), origin and direction unchanged.

    Raises
    ------
    ImageReadError
        Naming the file when it is missing, is a folder, is truncated or cannot be decoded.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "img.nii.gz"
    >>> sitk.WriteImage(sitk.Image([4, 3, 2], sitk.sitkUInt8), str(path))
    >>> read_image(path).GetSize()
    (4, 3, 2)
    >>> read_image(path.with_name("missing.nii.gz"))
    Traceback (most recent call last):
    ...
    evaluator.errors.ImageReadError: .../missing.nii.gz: file does not exist
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: file does not exist")
    if not path.is_file():
        raise ImageReadError(f"{path}: is not a file")
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        detail = lines[-1] if lines else "unknown reader error"
        raise ImageReadError(
            f"{path}: cannot be decoded (truncated or corrupt file): {detail}"
        ) from err
    if path.name.endswith((".nii", ".nii.gz")):
        _check_nifti_complete(path)
    return img


def _nifti_expected_bytes(path: Path) -> int:
    """Header offset plus pixel bytes of a NIfTI file (nibabel reads the header only)."""
    import nibabel as nib

    try:
        image: Any = nib.load(str(path))
        proxy = image.dataobj  # ArrayProxy: header only, data offset as stored in the file
        n_bytes = int(np.prod(proxy.shape, dtype=np.int64)) * np.dtype(proxy.dtype).itemsize
        return int(proxy.offset) + n_bytes
    except Exception as err:  # nibabel raises many types for a bad header
        raise ImageReadError(f"{path}: cannot be decoded (corrupt NIfTI header): {err}") from err


def _gunzip_size(path: Path) -> int:
    """Uncompressed size of a gzip file; ImageReadError when the stream is cut or corrupt."""
    import gzip
    import zlib

    total = 0
    try:
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(1 << 24):
                total += len(chunk)
    except (EOFError, OSError, zlib.error) as err:
        raise ImageReadError(
            f"{path}: cannot be decoded (truncated or corrupt file): gzip stream: {err}"
        ) from err
    return total


def _check_nifti_complete(path: Path) -> None:
    """SimpleITK reads a cut NIfTI file without complaint; compare sizes with the header.

    ``.nii``: the file must hold header offset + pixel bytes. ``.nii.gz``: the gzip trailer
    (uncompressed size mod 2**32) is compared first; only when it differs is the stream
    decompressed to find the true size (multi-member files, extra trailing bytes).
    """
    expected = _nifti_expected_bytes(path)
    if path.name.endswith(".nii"):
        actual = path.stat().st_size
    else:
        with path.open("rb") as fh:
            fh.seek(-4, 2)
            trailer = int.from_bytes(fh.read(4), "little")
        if trailer == expected % (1 << 32):
            return
        actual = _gunzip_size(path)
    if actual < expected:
        raise ImageReadError(
            f"{path}: cannot be decoded (truncated file): {actual} bytes, the header "
            f"promises {expected}"
        )


def read_json(path: Path, *, what: str) -> Any:
    """Parse a JSON file, raising :class:`ImageReadError` naming ``what`` and the file.

    Examples
    --------
    >>> read_json(Path("/nonexistent.json"), what="annotation list")
    Traceback (most recent call last):
    ...
    evaluator.errors.ImageReadError: annotation list /nonexistent.json: cannot be read: ...
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ImageReadError(f"{what} {path}: cannot be read: {err}") from err
    except json.JSONDecodeError as err:
        raise ImageReadError(f"{what} {path}: is not valid JSON: {err}") from err


@dataclass(frozen=True)
class ImageGeometry:
    """The grid of an image, in SimpleITK order ``(x, y[, z])``.

    Attributes
    ----------
    size
        Voxels per axis.
    spacing
        Voxel size per axis, millimetres.
    origin
        Physical position of the first voxel centre, millimetres.
    direction
        Direction cosines, row-major, ``dim * dim`` values.
    """

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    @property
    def dimension(self) -> int:
        """Number of axes (2 or 3)."""
        return len(self.size)

    @property
    def array_spacing(self) -> Spacing:
        """Spacing in numpy array order ``(z, y, x)`` / ``(y, x)``, millimetres."""
        return tuple(reversed(self.spacing))

    @property
    def array_shape(self) -> tuple[int, ...]:
        """Shape of ``GetArrayFromImage`` for a scalar image."""
        return tuple(reversed(self.size))


def image_geometry(img: sitk.Image) -> ImageGeometry:
    """Size, spacing, origin and direction of an image.

    Examples
    --------
    >>> img = sitk.Image([4, 3], sitk.sitkUInt8)
    >>> img.SetSpacing((0.5, 2.0))
    >>> geo = image_geometry(img)
    >>> geo.size, geo.spacing, geo.array_spacing, geo.array_shape
    ((4, 3), (0.5, 2.0), (2.0, 0.5), (3, 4))
    """
    return ImageGeometry(
        size=tuple(int(v) for v in img.GetSize()),
        spacing=tuple(float(v) for v in img.GetSpacing()),
        origin=tuple(float(v) for v in img.GetOrigin()),
        direction=tuple(float(v) for v in img.GetDirection()),
    )


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(repr(round(float(v), 4)) for v in values) + ")"


def check_same_geometry(
    a: sitk.Image | ImageGeometry,
    b: sitk.Image | ImageGeometry,
    *,
    what: str,
    reference: str = "reference",
    tolerance: float = 1e-3,
    direction_tolerance: float = 1e-4,
) -> None:
    """Raise unless ``a`` lies on the grid of ``b``.

    Parameters
    ----------
    a, b
        The image to check and the reference image (or their :class:`ImageGeometry`).
    what
        Names ``a`` in the message, e.g. ``"prediction CHUM-001"`` or a file path.
    reference
        Names ``b`` in the message.
    tolerance
        Largest accepted absolute difference of spacing and origin values, millimetres.
        Sizes must be equal.
    direction_tolerance
        Largest accepted absolute difference of a direction cosine.

    Raises
    ------
    GeometryMismatchError
        Naming the first differing property (dimension, size, spacing, origin, direction) with
        both values, in SimpleITK ``(x, y, z)`` order.

    Examples
    --------
    >>> a = sitk.Image([4, 4, 4], sitk.sitkUInt8)
    >>> b = sitk.Image([4, 4, 4], sitk.sitkUInt8)
    >>> a.SetSpacing((1.0, 1.0, 3.0))
    >>> b.SetSpacing((0.98, 0.98, 3.27))
    >>> check_same_geometry(a, b, what="prediction CHUM-001")
    Traceback (most recent call last):
    ...
    evaluator.errors.GeometryMismatchError: prediction CHUM-001: spacing (1.0, 1.0, 3.0) mm does not match reference (0.98, 0.98, 3.27) mm
    >>> b.SetSpacing((1.0, 1.0, 3.0002))
    >>> check_same_geometry(a, b, what="prediction CHUM-001")
    """
    ga = a if isinstance(a, ImageGeometry) else image_geometry(a)
    gb = b if isinstance(b, ImageGeometry) else image_geometry(b)
    if ga.dimension != gb.dimension:
        raise GeometryMismatchError(
            f"{what}: {ga.dimension}D image does not match {gb.dimension}D {reference}"
        )
    if ga.size != gb.size:
        raise GeometryMismatchError(
            f"{what}: size {ga.size} voxels does not match {reference} {gb.size} voxels"
        )
    for name, tol, unit in (
        ("spacing", tolerance, " mm"),
        ("origin", tolerance, " mm"),
        ("direction", direction_tolerance, ""),
    ):
        va, vb = getattr(ga, name), getattr(gb, name)
        if not np.allclose(va, vb, rtol=0.0, atol=tol):
            raise GeometryMismatchError(
                f"{what}: {name} {_fmt(va)}{unit} does not match {reference} {_fmt(vb)}{unit}"
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


# --------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Annotation:
    """One annotated instance as stored (ChestXDet): class, box and polygon in pixel units.

    Attributes
    ----------
    class_name
        The finding as written in ``syms``.
    box
        ``(x1, y1, x2, y2)``: left, top, right, bottom, pixels.
    polygon
        Contour vertices ``((x, y), ...)`` in pixels (x = column, y = row).
    """

    class_name: str
    box: tuple[float, ...]
    polygon: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Instance:
    """One instance of a 2D image: class, polygon and its rasterised mask.

    Attributes
    ----------
    class_id
        Label value from the task's label map.
    class_name
        Name of that label.
    box
        ``(x1, y1, x2, y2)`` in pixels.
    polygon
        Contour ``((x, y), ...)`` in pixels.
    mask
        Boolean array of shape ``(height, width)``: the filled polygon.
    """

    class_id: int
    class_name: str
    box: tuple[float, ...]
    polygon: tuple[tuple[float, float], ...]
    mask: BoolArray = field(repr=False, compare=False)


def rasterise_polygon(polygon: Sequence[Sequence[float]], *, height: int, width: int) -> BoolArray:
    """Fill a polygon given in pixel coordinates ``(x, y)``; COCO's rule (pycocotools).

    Parameters
    ----------
    polygon
        At least three vertices ``(x, y)``; x is the column, y the row, in pixels.
    height, width
        Shape of the output mask.

    Returns
    -------
    numpy.ndarray
        Boolean, shape ``(height, width)``; pixels outside the image are clipped.

    Examples
    --------
    >>> m = rasterise_polygon([(1, 1), (5, 1), (5, 3), (1, 3)], height=6, width=8)
    >>> int(m.sum()), m.shape
    (8, (6, 8))
    """
    from pycocotools import mask as mask_utils

    flat = [float(c) for xy in polygon for c in xy]
    if len(flat) < 6:
        return np.zeros((height, width), dtype=bool)
    import warnings

    rles = mask_utils.frPyObjects([flat], height, width)
    with warnings.catch_warnings():  # pycocotools' __array__ predates numpy 2's copy keyword
        warnings.simplefilter("ignore", DeprecationWarning)
        decoded = mask_utils.decode(mask_utils.merge(rles))
    return np.asarray(decoded, dtype=bool)


@dataclass(frozen=True)
class Case:
    """One case of a dataset: file paths and metadata; pixels are read only by the loaders.

    Attributes
    ----------
    case_id
        E.g. ``"PETCT_0af7ffe12a_0"``, ``"CHUM-001"``, ``"0001"``, ``"36199"``.
    channels
        Channel name (``TaskSpec.channels``) -> image file.
    label
        Label image (3D tasks) or the annotation list it comes from (ChestXDet); None if absent.
    metadata
        Diagnosis, sex, centre, subset, ... (used for stratification); plain JSON values.
    reference_channel
        When set, :meth:`read_channel` resamples every other channel onto this channel's grid
        with a 3rd-order B-spline (HECKTOR: PT onto CT).
    annotations
        Instances of a 2D case as stored (ChestXDet); None for label-image datasets.
    label_map
        Class name -> label value, used to turn ``annotations`` into masks.
    """

    case_id: str
    channels: Mapping[str, Path]
    label: Path | None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    reference_channel: str | None = None
    annotations: tuple[Annotation, ...] | None = None
    label_map: Mapping[str, int] = field(default_factory=dict)

    def read_raw_channel(self, name: str) -> sitk.Image:
        """The channel image exactly as stored, without resampling."""
        if name not in self.channels:
            raise ImageReadError(
                f"case {self.case_id}: no channel '{name}' (channels: {', '.join(self.channels)})"
            )
        return read_image(self.channels[name])

    def read_channel(self, name: str) -> sitk.Image:
        """Read one channel; resampled onto ``reference_channel`` when that is set.

        The resampling is a 3rd-order B-spline (``sitk.sitkBSpline3``) with the identity
        transform in physical space; voxels outside the source image become 0. The result has
        pixel type float32 and the reference channel's size, spacing, origin and direction.
        """
        img = self.read_raw_channel(name)
        if self.reference_channel is None or name == self.reference_channel:
            return img
        ref = self.read_raw_channel(self.reference_channel)
        return sitk.Resample(
            sitk.Cast(img, sitk.sitkFloat32),
            ref,
            sitk.Transform(),
            sitk.sitkBSpline3,
            0.0,
            sitk.sitkFloat32,
        )

    def read_label(self) -> sitk.Image:
        """The integer label map (0 = background).

        For annotated 2D cases the instances are painted in file order onto the grid of the
        first channel (later instances overwrite earlier ones), as uint8.
        """
        if self.annotations is not None:
            ref = self.read_raw_channel(next(iter(self.channels)))
            height, width = ref.GetSize()[1], ref.GetSize()[0]
            arr = np.zeros((height, width), dtype=np.uint8)
            for inst in self._instances(height, width):
                arr[inst.mask] = inst.class_id
            out = sitk.GetImageFromArray(arr)
            out.CopyInformation(ref)
            return out
        if self.label is None:
            raise ImageReadError(f"case {self.case_id}: has no label file")
        return read_image(self.label)

    def read_instances(self) -> list[Instance]:
        """The instances of an annotated 2D case, masks on the first channel's grid.

        Raises
        ------
        ImageReadError
            When the case has no instance annotations (3D label-image datasets).
        InvalidLabelError
            When a class name is not in the task's label map.
        """
        if self.annotations is None:
            raise ImageReadError(
                f"case {self.case_id}: has no instance annotations (label image {self.label})"
            )
        ref = self.read_raw_channel(next(iter(self.channels)))
        return self._instances(ref.GetSize()[1], ref.GetSize()[0])

    def _instances(self, height: int, width: int) -> list[Instance]:
        out = []
        for ann in self.annotations or ():
            if ann.class_name not in self.label_map:
                raise InvalidLabelError(
                    f"{self.label} ({self.case_id}): class '{ann.class_name}' is not in the "
                    f"label map ({', '.join(self.label_map)})"
                )
            out.append(
                Instance(
                    class_id=self.label_map[ann.class_name],
                    class_name=ann.class_name,
                    box=ann.box,
                    polygon=ann.polygon,
                    mask=rasterise_polygon(ann.polygon, height=height, width=width),
                )
            )
        return out


@runtime_checkable
class DatasetAdapter(Protocol):
    """Reads one on-disk dataset format; lists cases cheaply and loads them lazily.

    Geometry contract: loaders return :class:`SimpleITK.Image` with spacing and origin in
    millimetres; arrays from them are ``(z, y, x)`` / ``(y, x)``; label images share size,
    spacing, origin and direction with every channel (HECKTOR PT after resampling onto CT).
    """

    task: TaskSpec
    root: Path

    def case_ids(self) -> list[str]:
        """Sorted case ids (file listing only)."""
        ...

    def case(self, case_id: str) -> Case:
        """One case by id."""
        ...

    def cases(self) -> Iterator[Case]:
        """Every case in ``case_ids()`` order."""
        ...


class FolderAdapter:
    """Shared part of the adapters: an index ``case_id -> Case`` built once from a listing.

    Subclasses implement :meth:`_scan`, returning the cases found under ``root``.
    """

    def __init__(self, task: TaskSpec, root: Path) -> None:
        self.task = task
        self.root = Path(root)

    def _scan(self) -> list[Case]:
        raise NotImplementedError

    @cached_property
    def _index(self) -> dict[str, Case]:
        return {c.case_id: c for c in sorted(self._scan(), key=lambda c: c.case_id)}

    def case_ids(self) -> list[str]:
        """Sorted case ids."""
        return list(self._index)

    def case(self, case_id: str) -> Case:
        """One case by id; :class:`DatasetNotFoundError` for an unknown id."""
        try:
            return self._index[case_id]
        except KeyError:
            raise DatasetNotFoundError(
                f"case '{case_id}' is not in task '{self.task.name}' at {self.root} "
                f"({len(self._index)} cases)"
            ) from None

    def cases(self) -> Iterator[Case]:
        """Every case, sorted by id."""
        yield from self._index.values()

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task.name!r}, root={str(self.root)!r})"


def resolve_task(task: str | TaskSpec, registry: Registry | None = None) -> TaskSpec:
    """A :class:`TaskSpec` from a name (looked up in ``registry`` or the default registry)."""
    if isinstance(task, TaskSpec):
        return task
    return (registry or load_registry()).task(task)


def open_dataset(
    task: str | TaskSpec,
    *,
    workspace: Workspace,
    data_root: Path | None = None,
    registry: Registry | None = None,
) -> DatasetAdapter:
    """The adapter of a task, reading from its data root.

    Parameters
    ----------
    task
        Task name from ``datasets.yaml`` or a :class:`TaskSpec`.
    workspace
        Resolves a relative ``root:``.
    data_root
        Overrides the task's root (``--data-root``).
    registry
        Registry to look the task up in; default: :func:`load_registry`.

    Raises
    ------
    DatasetNotFoundError
        When the root does not exist or holds no case; the message says what to do next.

    Examples
    --------
    >>> import tempfile
    >>> ws = Workspace(Path(tempfile.mkdtemp()))
    >>> open_dataset("btcv-phantom", workspace=ws)
    Traceback (most recent call last):
    ...
    evaluator.errors.DatasetNotFoundError: task 'btcv-phantom': no data at .../phantoms/btcv (folder does not exist); run `ccbench data phantoms --task btcv`
    """
    spec = resolve_task(task, registry)
    root = spec.data_root(workspace, data_root)
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"task '{spec.name}': no data at {root} (folder does not exist); "
            f"{spec.missing_data_hint()}"
        )
    module_name, class_name = ADAPTERS[spec.adapter].split(":")
    module = importlib.import_module(f"evaluator.datasets.{module_name}")
    adapter: DatasetAdapter = getattr(module, class_name)(spec, root)
    if not adapter.case_ids():
        raise DatasetNotFoundError(
            f"task '{spec.name}': no cases found at {root} (expected the {spec.adapter} layout); "
            f"{spec.missing_data_hint()}"
        )
    return adapter


def read_table(path: Path, *, what: str) -> list[dict[str, str]]:
    """Rows of a CSV table as dicts of stripped strings (UTF-8, optional BOM).

    Raises
    ------
    ImageReadError
        Naming ``what`` and the file when it cannot be read.
    """
    import csv

    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return [
                {str(k).strip(): (v or "").strip() for k, v in row.items() if k is not None}
                for row in csv.DictReader(fh)
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ImageReadError(f"{what} {path}: cannot be read: {err}") from err
