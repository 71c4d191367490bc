"""Degradation operators: hand-computed cases, brute-force distance oracles, 2D/3D, anisotropy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import cdist

from evaluator.errors import SimulationError
from evaluator.simulate.operators import (
    OPERATORS,
    dilate_all,
    drop_components,
    enlarge_components,
    erode_all,
    erode_components,
    insert_components,
    label_components,
    select_components,
    shift_components,
)


def _three_cubes_3d() -> np.ndarray:
    """Cubes of 1, 8 and 27 voxels, far apart."""
    m = np.zeros((12, 12, 12), bool)
    m[1, 1, 1] = True
    m[5:7, 5:7, 1:3] = True
    m[8:11, 1:4, 7:10] = True
    return m


def _sizes(mask: np.ndarray) -> list[int]:
    """Component sizes by an independent labeller (scipy, full connectivity)."""
    lab, n = ndimage.label(mask, structure=np.ones((3,) * mask.ndim))
    return sorted(np.bincount(lab.ravel())[1:].tolist()) if n else []


def _coords_mm(mask: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    return np.argwhere(mask) * np.asarray(spacing)


# ---- selection and drop ---------------------------------------------------------------------


def test_drop_smallest_and_largest_three_cubes() -> None:
    m = _three_cubes_3d()
    assert _sizes(drop_components(m, 1)) == [8, 27]
    assert _sizes(drop_components(m, 2)) == [27]
    assert _sizes(drop_components(m, 1, order="largest")) == [1, 8]
    assert _sizes(drop_components(m, 3)) == []
    assert _sizes(drop_components(m, 0)) == [1, 8, 27]


def test_drop_does_not_modify_input() -> None:
    m = _three_cubes_3d()
    before = m.copy()
    drop_components(m, 2)
    np.testing.assert_array_equal(m, before)


def test_select_ties_are_deterministic() -> None:
    lab = np.array([[1, 0, 2, 0, 3, 3]])
    assert select_components(lab, 3, order="smallest", count=2) == [1, 2]
    assert select_components(lab, 3, order="largest", count=2) == [3, 1]


def test_connectivity_changes_the_components() -> None:
    m = np.zeros((3, 3, 3), bool)
    m[0, 0, 0] = m[1, 1, 1] = True
    assert label_components(m)[1] == 1
    assert label_components(m, connectivity=6)[1] == 2
    assert _sizes(drop_components(m, 1, connectivity=6)) == [1]


@pytest.mark.parametrize("n", [4, -1])
def test_too_many_components_raise(n: int) -> None:
    with pytest.raises(SimulationError, match="3 connected components"):
        drop_components(_three_cubes_3d(), n)


def test_bad_inputs_raise() -> None:
    m = _three_cubes_3d()
    with pytest.raises(SimulationError, match="connectivity 8"):
        label_components(m, connectivity=8)
    with pytest.raises(SimulationError, match="order"):
        drop_components(m, 1, order="middle")  # type: ignore[arg-type]
    with pytest.raises(SimulationError, match="spacing"):
        erode_all(m, margin_mm=1.0)
    with pytest.raises(SimulationError, match="spacing"):
        erode_all(m, margin_mm=1.0, spacing=(1.0, 1.0))
    with pytest.raises(SimulationError, match="2D or 3D"):
        drop_components(np.zeros(5, bool), 0)


# ---- morphology: hand-computed and brute-force oracles ----------------------------------------


def test_erode_cube_full_and_cross() -> None:
    m = np.zeros((9, 9, 9), bool)
    m[2:7, 2:7, 2:7] = True
    assert int(erode_all(m).sum()) == 27
    assert int(erode_all(m, structure="cross").sum()) == 27
    assert int(erode_all(m, iterations=2).sum()) == 1
    assert int(erode_all(m, iterations=3).sum()) == 0


def test_dilate_point_full_cross_and_anisotropic_margin() -> None:
    m = np.zeros((7, 7, 7), bool)
    m[3, 3, 3] = True
    assert int(dilate_all(m).sum()) == 27
    assert int(dilate_all(m, structure="cross").sum()) == 7
    # 3 mm slices, 2 mm margin: only the in-plane disc of radius 2 voxels (13 voxels)
    grown = dilate_all(m, margin_mm=2.0, spacing=(3.0, 1.0, 1.0))
    assert int(grown.sum()) == 13
    assert grown[3].sum() == 13


def test_erode_box_anisotropic_margin_keeps_thick_axis() -> None:
    m = np.zeros((9, 9, 9), bool)
    m[2:7, 2:7, 2:7] = True
    out = erode_all(m, margin_mm=1.5, spacing=(2.0, 1.0, 1.0))
    zs, ys, xs = np.nonzero(out)
    assert (zs.min(), zs.max(), ys.min(), ys.max(), xs.min(), xs.max()) == (2, 6, 3, 5, 3, 5)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("spacing", [(1.0, 1.0), (2.5, 0.8), (3.0, 1.0, 1.2)])
def test_margin_morphology_matches_brute_force_cdist(seed: int, spacing: tuple[float, ...]) -> None:
    rng = np.random.default_rng(seed)
    shape = (9, 11) if len(spacing) == 2 else (6, 8, 7)
    m = rng.random(shape) < 0.3
    margin = 2.2
    grid = np.ones(shape, bool)
    d_to_mask = cdist(_coords_mm(grid, spacing), _coords_mm(m, spacing)).min(axis=1)
    expected_dilated = (d_to_mask <= margin).reshape(shape)
    np.testing.assert_array_equal(
        dilate_all(m, margin_mm=margin, spacing=spacing), expected_dilated
    )
    # erosion: distance to the background, the outside of the image counting as background
    padded = np.pad(m, 1)
    bg = _coords_mm(~padded, spacing)
    inside = np.argwhere(m) + 1
    d_to_bg = cdist(inside * np.asarray(spacing), bg).min(axis=1)
    expected_eroded = np.zeros(shape, bool)
    keep = inside[d_to_bg > margin] - 1
    expected_eroded[tuple(keep.T)] = True
    np.testing.assert_array_equal(erode_all(m, margin_mm=margin, spacing=spacing), expected_eroded)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("structure", ["full", "cross"])
@pytest.mark.parametrize("shape", [(13, 17), (9, 10, 11)])
def test_voxel_steps_equal_iterated_scipy_morphology(
    seed: int, structure: str, shape: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(seed)
    m = ndimage.binary_closing(rng.random(shape) < 0.5)
    element = ndimage.generate_binary_structure(
        len(shape), len(shape) if structure == "full" else 1
    )
    for k in (1, 2, 3, 5):
        np.testing.assert_array_equal(
            erode_all(m, iterations=k, structure=structure),  # type: ignore[arg-type]
            ndimage.binary_erosion(m, structure=element, iterations=k),
        )
        np.testing.assert_array_equal(
            dilate_all(m, iterations=k, structure=structure),  # type: ignore[arg-type]
            ndimage.binary_dilation(m, structure=element, iterations=k),
        )


def test_enlarge_and_erode_touch_only_the_chosen_components() -> None:
    m = _three_cubes_3d()
    big = enlarge_components(m, 1, order="largest")
    lab, _ = label_components(m)
    largest = lab == np.argmax(np.bincount(lab.ravel())[1:]) + 1
    np.testing.assert_array_equal(
        big & ~ndimage.binary_dilation(largest, np.ones((3, 3, 3))), m & ~largest
    )
    assert _sizes(big)[-1] == 5**3
    eroded = erode_components(m, 2, order="largest")
    assert _sizes(eroded) == [1, 1]  # 27 -> 1; the 2x2x2 cube vanishes; the single voxel stays
    assert _sizes(erode_components(m, 1)) == [8, 27]


def test_operators_work_in_2d() -> None:
    m = np.zeros((20, 20), bool)
    m[2:4, 2:4] = True  # 4
    m[10:15, 10:15] = True  # 25
    assert _sizes(drop_components(m, 1)) == [25]
    assert _sizes(enlarge_components(m, 1)) == [16, 25]
    assert _sizes(erode_components(m, 1, order="largest")) == [4, 9]
    assert _sizes(shift_components(m, 1, offset=(0, 5))) == [4, 25]


def test_shift_moves_only_the_chosen_component_and_clips_at_border() -> None:
    m = _three_cubes_3d()
    moved = shift_components(m, 1, order="largest", offset=(0, 2, 0))
    lab, _ = label_components(m)
    largest = lab == 3
    np.testing.assert_array_equal(moved & ~np.roll(largest, 2, axis=1), m & ~largest)
    np.testing.assert_array_equal(moved[:, 3:6, 7:10], m[:, 1:4, 7:10])
    # pushed 2 voxels past the last slice: 2 of 3 slabs are lost
    out = shift_components(m, 1, order="largest", offset=(3, 0, 0))
    assert int(out.sum()) == 1 + 8 + 9
    with pytest.raises(SimulationError, match="offset"):
        shift_components(m, 1, offset=(1, 1))


# ---- insertion -------------------------------------------------------------------------------


def _brute_voronoi(mask: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Nearest reference component (in mm) of every voxel, by exhaustive distances."""
    lab, n = label_components(mask)
    grid = _coords_mm(np.ones(mask.shape, bool), spacing)
    dists = np.stack(
        [cdist(grid, _coords_mm(lab == c, spacing)).min(axis=1) for c in range(1, n + 1)]
    )
    return (np.argmin(dists, axis=0) + 1).reshape(mask.shape), dists.min(axis=0).reshape(mask.shape)


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("order", ["smallest", "largest"])
def test_insert_volume_location_and_separation_3d_anisotropic(seed: int, order: str) -> None:
    spacing = (2.0, 1.0, 1.0)
    m = np.zeros((16, 30, 30), bool)
    m[2:4, 2:4, 2:4] = True  # 8
    m[10:13, 20:26, 3:8] = True  # 90
    m[3:7, 18:26, 18:26] = True  # 256
    m[12:14, 2:5, 22:26] = True  # 24
    out = insert_components(m, 2, spacing=spacing, order=order, seed=seed)  # type: ignore[arg-type]
    np.testing.assert_array_equal(out & m, m)
    added = out & ~m
    vols = np.array([8, 24, 90, 256])
    expected_volume = round(float(np.quantile(vols, 0.25)))
    assert expected_volume == round(8 + 0.75 * 16)
    lab_added, n_added = label_components(added)
    assert n_added == 2
    assert np.bincount(lab_added.ravel())[1:].tolist() == [expected_volume] * 2
    # the new components do not touch any lesion: six components in the result
    assert label_components(out)[1] == 6
    # each lies in the Voronoi region of one chosen component, a different one each
    lab_ref, _ = label_components(m)
    chosen = select_components(lab_ref, 4, order=order, count=2)  # type: ignore[arg-type]
    regions, _ = _brute_voronoi(m, spacing)
    owners = sorted(
        int(np.bincount(regions[lab_added == k]).argmax()) for k in range(1, n_added + 1)
    )
    assert owners == sorted(chosen)


def test_insert_is_seeded_and_works_in_2d() -> None:
    m = np.zeros((40, 40), bool)
    m[2:6, 2:6] = True
    m[25:35, 25:35] = True
    m[30:32, 2:4] = True
    a = insert_components(m, 3, spacing=(1.0, 1.0), seed=3)
    b = insert_components(m, 3, spacing=(1.0, 1.0), seed=3)
    c = insert_components(m, 3, spacing=(1.0, 1.0), seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert label_components(a)[1] == 6
    assert int(a.sum() - m.sum()) == 3 * round(float(np.quantile([4, 16, 100], 0.25)))


def test_operator_table_names_the_dataset_operators() -> None:
    m = _three_cubes_3d()
    assert sorted(OPERATORS) == ["drop", "enlarge", "erode", "insert"]
    for name, op in OPERATORS.items():
        out = op(m, 1, order="smallest", spacing=(1.0, 1.0, 1.0), seed=0, margin_mm=None)
        assert out.shape == m.shape and out.dtype == bool, name


@pytest.mark.parametrize("seed", range(3))
def test_component_volumes_equals_a_dense_bincount(seed: int) -> None:
    from evaluator.simulate.operators import component_volumes

    labels = np.random.default_rng(seed).integers(0, 6, size=(7, 8, 9)).astype(np.int32)
    expected = np.bincount(labels.ravel().astype(np.int64), minlength=6)[1:5]
    np.testing.assert_array_equal(component_volumes(labels, 4), expected)
