"""Click simulation: named hand-computed scenes (box lesions with known centres, hot spots outside
them), an independent oracle (autoPET IV's simulator as its script runs on NIfTI files read by
nibabel, on the CPU, re-implemented here from lab-midas/autoPETCTIV ``clicks/simulate_clicks.py``)
and the grand-challenge click file's round trip and rejections.

Every volume is non-cubic and every expected point is written (x, y, z), so a swapped axis order
fails.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import cc3d
import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from evaluator.prompts.clicks import (
    MAX_POINTS,
    Clicks,
    at_budget,
    click_mask,
    corrective_clicks,
    from_grand_challenge,
    simulate_clicks,
    to_grand_challenge,
)

#: (z, y, x): every axis a different length.
SHAPE = (16, 24, 40)

# ----------------------------------------------------------------------------------------------
# Named scenes
# ----------------------------------------------------------------------------------------------


def _cube(vol: np.ndarray, centre_xyz: tuple[int, int, int], side: int, value: float = 1) -> None:
    """An odd-sided cube centred at ``centre_xyz`` (its unique distance-transform maximum)."""
    x, y, z = centre_xyz
    h = side // 2
    vol[z - h : z + h + 1, y - h : y + h + 1, x - h : x + h + 1] = value


#: Three cube lesions (sides 5, 3, 3) and their centres.
LESION_CENTRES = {(6, 5, 4): 5, (31, 16, 11): 3, (21, 18, 4): 3}
#: Hot spots outside the lesions: a 3-voxel cube and two single voxels (29 voxels, fewer than
#: 0.25 % of the non-tumour voxels, so exactly these are above the 99.75th percentile).
HOT_CENTRES = {(13, 4, 12): 3, (36, 20, 2): 1, (2, 12, 14): 1}


@pytest.fixture
def scene() -> tuple[np.ndarray, np.ndarray]:
    """Label and PET (z, y, x): three cube lesions (uptake 20) and three hot spots (8) on zero."""
    label = np.zeros(SHAPE, np.uint8)
    pet = np.zeros(SHAPE, np.float32)
    for centre, side in LESION_CENTRES.items():
        _cube(label, centre, side)
        _cube(pet, centre, side, 20.0)
    for centre, side in HOT_CENTRES.items():
        _cube(pet, centre, side, 8.0)
    return label, pet


def _two_cubes() -> np.ndarray:
    """One 26-connected lesion: two 3-voxel cubes joined by a diagonal chain of voxels.

    Both cube centres, (x, y, z) = (3, 6, 11) and (11, 6, 3), have the largest distance (2
    voxels); the first in (x, y, z) index order is (3, 6, 11), the first in (z, y, x) order
    would be (11, 6, 3).
    """
    label = np.zeros(SHAPE, np.uint8)
    _cube(label, (3, 6, 11), 3)
    _cube(label, (11, 6, 3), 3)
    for t in range(5):
        label[9 - t, 6, 5 + t] = 1
    assert ndimage.label(label, structure=np.ones((3, 3, 3)))[1] == 1
    return label


def _at(mask: np.ndarray, point: tuple[int, int, int]) -> bool:
    x, y, z = point
    return bool(mask[z, y, x])


def _components(mask: np.ndarray) -> np.ndarray:
    return ndimage.label(mask, structure=np.ones((3, 3, 3)))[0]


def _on_boundary(mask: np.ndarray, point: tuple[int, int, int]) -> bool:
    """A voxel of ``mask`` with a face neighbour outside it."""
    x, y, z = point
    return any(
        not mask[z + dz, y + dy, x + dx]
        for dz, dy, dx in [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]
    )


# ----------------------------------------------------------------------------------------------
# simulate_clicks on the named scene
# ----------------------------------------------------------------------------------------------


def test_tumour_centre_clicks_then_boundary_clicks_cycling_the_drawn_lesions(scene):
    label, pet = scene
    clicks = simulate_clicks(label, pet)
    assert len(clicks.tumor) == 10
    assert set(clicks.tumor[:3]) == set(LESION_CENTRES)
    comps = _components(label)
    for i, point in enumerate(clicks.tumor[3:]):
        assert _at(label, point)
        assert _on_boundary(label != 0, point), point
        owner = clicks.tumor[i % 3]
        assert comps[point[::-1]] == comps[owner[::-1]]


def test_background_clicks_at_hot_spot_centres_then_inside_them(scene):
    label, pet = scene
    clicks = simulate_clicks(label, pet)
    assert len(clicks.background) == 10
    assert set(clicks.background[:3]) == set(HOT_CENTRES)
    hot = pet > np.percentile(pet[label == 0], 99.75)
    hot &= label == 0
    comps = _components(hot)
    for i, point in enumerate(clicks.background):
        assert _at(hot, point) and not _at(label, point)
        owner = clicks.background[i % 3]
        assert comps[point[::-1]] == comps[owner[::-1]]


def test_budget_below_the_components_gives_distinct_centres(scene):
    label, pet = scene
    clicks = simulate_clicks(label, pet, budget=2)
    assert len(clicks.tumor) == len(set(clicks.tumor)) == 2
    assert set(clicks.tumor) <= set(LESION_CENTRES)
    assert len(clicks.background) == len(set(clicks.background)) == 2
    assert set(clicks.background) <= set(HOT_CENTRES)


def test_budget_zero_gives_no_clicks(scene):
    assert simulate_clicks(*scene, budget=0) == Clicks(tumor=[], background=[])


def test_same_seed_same_clicks_and_other_seeds_other_choices(scene):
    label, pet = scene
    assert simulate_clicks(label, pet, seed=3) == simulate_clicks(label, pet, seed=3)
    chosen = {tuple(simulate_clicks(label, pet, budget=1, seed=s).tumor) for s in range(12)}
    assert len(chosen) > 1
    hot_chosen = {
        tuple(simulate_clicks(label, pet, budget=1, seed=s).background) for s in range(12)
    }
    assert len(hot_chosen) > 1


def test_official_seed_is_the_default(scene):
    assert simulate_clicks(*scene) == simulate_clicks(*scene, budget=10, seed=42)


def test_tie_goes_to_the_first_maximum_in_xyz_order():
    label = _two_cubes()
    pet = np.zeros(SHAPE)
    assert simulate_clicks(label, pet, budget=1).tumor == [(3, 6, 11)]


def test_tumour_clicks_of_a_smaller_budget_are_a_prefix(scene):
    """The draw is one permutation of the components: a smaller budget takes its head."""
    label, pet = scene
    full = simulate_clicks(label, pet, budget=10)
    for k in range(11):
        assert simulate_clicks(label, pet, budget=k).tumor == full.tumor[:k]


def test_empty_label_gives_background_clicks_only(scene):
    label, pet = scene
    pet[label > 0] = 0  # else the lesions' uptake (179 voxels) sets the threshold to 20
    clicks = simulate_clicks(np.zeros(SHAPE, bool), pet, budget=4)
    assert clicks.tumor == []
    assert len(clicks.background) == 4
    assert all(pet[p[::-1]] > 0 for p in clicks.background)


def test_no_high_uptake_voxel_gives_no_background_click(scene):
    label, _ = scene
    clicks = simulate_clicks(label, np.ones(SHAPE), budget=3)
    assert len(clicks.tumor) == 3
    assert clicks.background == []


def test_label_covering_the_image_gives_no_background_click():
    clicks = simulate_clicks(np.ones(SHAPE, np.int16), np.ones(SHAPE), budget=2)
    assert len(clicks.tumor) == 2
    assert clicks.background == []


def test_background_fill_of_one_voxel_hot_spots_stays_on_them():
    """The official code draws these fill clicks anywhere outside the spot (documented)."""
    label = np.zeros(SHAPE, np.uint8)
    _cube(label, (20, 12, 8), 3)
    pet = np.zeros(SHAPE)
    pet[2, 3, 4] = pet[12, 20, 30] = 5.0
    clicks = simulate_clicks(label, pet, budget=5)
    assert set(clicks.background) == {(4, 3, 2), (30, 20, 12)}
    assert len(clicks.background) == 5
    assert clicks.background[2:] == [*clicks.background[:2], clicks.background[0]]


def test_any_nonzero_label_value_is_lesion(scene):
    label, pet = scene
    relabelled = label.astype(np.int32) * 7
    relabelled[label == 0] = 0
    assert simulate_clicks(relabelled, pet) == simulate_clicks(label != 0, pet)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"label": np.zeros((4, 5))}, "3D"),
        ({"pet": np.zeros((4, 5))}, "3D"),
        ({"label": np.zeros(SHAPE, np.float32)}, "integer"),
        ({"pet": np.zeros((16, 24, 39))}, "shape"),
        ({"pet": np.full(SHAPE, np.nan)}, "NaN"),
        ({"budget": -1}, "budget"),
        ({"budget": True}, "budget"),
        ({"budget": 2.0}, "budget"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
    ],
)
def test_bad_input_is_refused(scene, kwargs, message):
    label, pet = scene
    args: dict[str, Any] = {"label": label, "pet": pet, **kwargs}
    with pytest.raises(ValueError, match=message):
        simulate_clicks(args.pop("label"), args.pop("pet"), **args)


# ----------------------------------------------------------------------------------------------
# Oracle: the official simulator as it runs on NIfTI files
# ----------------------------------------------------------------------------------------------


def _official_kind(
    volume: np.ndarray, budget: int, *, tumour: bool
) -> tuple[list[tuple[int, ...]], int | None]:
    comps = cc3d.connected_components(volume, connectivity=26)
    ids = np.unique(comps)[1:]
    drawn = np.random.choice(ids, size=min(budget, len(ids)), replace=False)
    clicks: list[Any] = []
    quirk = None
    for c in drawn:
        edt = ndimage.distance_transform_edt(comps == c)
        clicks.append(np.unravel_index(np.argmax(edt), edt.shape))
    while len(clicks) < budget and len(drawn):  # (the official loops forever on none)
        for c in drawn:
            mask = comps == c
            edt = ndimage.distance_transform_edt(mask)
            inverted = (edt.max() - edt) * (edt > 0)
            if tumour:
                candidates = np.argwhere((inverted == inverted.max()) & mask)
            else:
                candidates = np.argwhere((inverted == inverted.max()) & ~mask)
                if len(candidates) == 0:
                    candidates = np.argwhere(mask)
                elif quirk is None:
                    quirk = len(clicks)
            clicks.append(candidates[np.random.choice(candidates.shape[0])])
            if len(clicks) == budget:
                break
    return [tuple(int(v) for v in c) for c in clicks], quirk


def _official(
    label_file: Path, pet_file: Path, budget: int, seed: int
) -> tuple[Clicks, int | None]:
    """autoPET IV's simulator on NIfTI files read by nibabel: numpy's global RNG seeded once,
    cc3d on the label values, scipy's distance transform on the whole volume (the official CPU
    path). Also returns the index of the first background fill click drawn outside its
    component (the official quirk, see the module doc), or None."""
    saved = np.random.get_state()
    try:
        np.random.seed(seed)
        label = nib.load(label_file).get_fdata()
        pet = nib.load(pet_file).get_fdata()
        tumour: list[Any] = []
        if np.sum(label) != 0:
            tumour, _ = _official_kind(label, budget, tumour=True)
        non_tumour = label == 0
        threshold = np.percentile(pet[non_tumour], 99.75)
        background, quirk = _official_kind((pet > threshold) * non_tumour, budget, tumour=False)
        return Clicks(tumor=tumour, background=background), quirk
    finally:
        np.random.set_state(saved)


#: Per scene seed: smoothing of the lesion noise (more: fewer, larger lesions) and of the PET
#: (0: scattered one-voxel hot spots; more: small flat hot blobs; None: zero PET with three
#: seven-voxel "plus" hot spots, whose distance transform is not constant).
SCENES: list[tuple[float, float | None]] = [
    (1.2, 0.0),
    (1.2, 1.0),
    (2.5, 0.0),
    (2.5, 1.0),
    (3.0, 2.0),
    (3.0, None),
]


def _random_scene(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Irregular lesions (thresholded smooth noise) and a PET with high uptake outside them."""
    lesion_sigma, pet_sigma = SCENES[seed]
    rs = np.random.RandomState(seed)
    shape = (14, 22, 30)
    noise = ndimage.gaussian_filter(rs.rand(*shape), lesion_sigma)
    label = (noise > np.quantile(noise, 0.94)).astype(np.uint8)
    if pet_sigma is None:
        pet = np.zeros(shape)
        plus = ndimage.generate_binary_structure(3, 1)
        placed = 0
        while placed < 3:
            z, y, x = (rs.randint(1, n - 1) for n in shape)
            window = (slice(z - 1, z + 2), slice(y - 1, y + 2), slice(x - 1, x + 2))
            near = ndimage.binary_dilation(label + (pet > 0), iterations=1)[window]
            if not near.any():
                pet[window][plus] = 5.0
                placed += 1
    else:
        pet = rs.rand(*shape)
        if pet_sigma:
            pet = ndimage.gaussian_filter(pet, pet_sigma)
    pet[label > 0] += 2.0
    return label, pet.astype(np.float32)


def _write(array: np.ndarray, path: Path) -> Path:
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    return path


@pytest.mark.parametrize("seed", [42, 7])
@pytest.mark.parametrize("budget", [1, 3, 10])
@pytest.mark.parametrize("scene_seed", range(len(SCENES)))
def test_equals_the_official_simulator(tmp_path, scene_seed, budget, seed):
    label, pet = _random_scene(scene_seed)
    want, quirk = _official(
        _write(label, tmp_path / "l.nii.gz"), _write(pet, tmp_path / "p.nii.gz"), budget, seed
    )
    got = simulate_clicks(label, pet, budget=budget, seed=seed)
    assert got.tumor == want.tumor
    same = len(want.background) if quirk is None else quirk
    assert got.background[:same] == want.background[:same]
    assert len(got.background) == len(want.background)


def test_equals_the_official_simulator_on_the_named_scenes(tmp_path, scene):
    for i, (label, pet) in enumerate([scene, (_two_cubes(), scene[1])]):
        lf, pf = _write(label, tmp_path / f"l{i}.nii.gz"), _write(pet, tmp_path / f"p{i}.nii.gz")
        for budget in (1, 2, 10):
            want, quirk = _official(lf, pf, budget, 42)
            got = simulate_clicks(label, pet, budget=budget)
            assert got.tumor == want.tumor
            same = len(want.background) if quirk is None else quirk
            assert got.background[:same] == want.background[:same]


def test_the_oracle_scenes_cover_draws_and_fills(tmp_path):
    """The random scenes have more and fewer lesions and hot spots than the budget of 10, so
    the comparison above covers the draw, tumour fills and background fills."""
    lesions, hot, fills = [], [], 0
    for s in range(len(SCENES)):
        label, pet = _random_scene(s)
        lesions.append(int(_components(label).max()))
        non_tumour = label == 0
        hot.append(
            int(_components((pet > np.percentile(pet[non_tumour], 99.75)) & non_tumour).max())
        )
        _, quirk = _official(
            _write(label, tmp_path / "l.nii.gz"), _write(pet, tmp_path / "p.nii.gz"), 10, 42
        )
        fills += hot[-1] < 10 and (quirk is None or quirk > hot[-1])
    assert min(lesions) < 10 < max(lesions), lesions
    assert min(hot) < 10 < max(hot), hot
    assert fills >= 1


# ----------------------------------------------------------------------------------------------
# corrective_clicks
# ----------------------------------------------------------------------------------------------


def test_corrective_clicks_at_the_centres_of_the_largest_errors():
    label = np.zeros(SHAPE, np.uint8)
    _cube(label, (8, 8, 8), 5)  # missed, 125 voxels
    _cube(label, (30, 16, 4), 3)  # missed, 27 voxels
    _cube(label, (20, 18, 10), 3)  # found
    prediction = np.zeros(SHAPE, np.uint8)
    _cube(prediction, (20, 18, 10), 3)
    _cube(prediction, (33, 5, 12), 3)  # false positive, 27 voxels
    prediction[2, 20, 2] = 1  # false positive, 1 voxel
    clicks = corrective_clicks(label, prediction, spacing=(1.0, 1.0, 1.0))
    assert clicks == Clicks(tumor=[(8, 8, 8)], background=[(33, 5, 12)])


def test_corrective_centre_is_in_millimetres():
    """A 3 x 7 x 7 box (z, y, x) at 3 x 1 x 1 mm: its centre is 4 mm deep, every other voxel
    less. In voxels the middle slice has 25 voxels 2 deep and the first is (x, y) = (5, 8)."""
    label = np.zeros(SHAPE, np.uint8)
    prediction = np.zeros(SHAPE, np.uint8)
    prediction[6:9, 7:14, 4:11] = 1
    clicks = corrective_clicks(label, prediction, spacing=(3.0, 1.0, 1.0))
    assert clicks == Clicks(tumor=[], background=[(7, 10, 7)])
    in_voxels = corrective_clicks(label, prediction, spacing=(1.0, 1.0, 1.0))
    assert in_voxels.background == [(5, 8, 7)]


def test_corrective_clicks_none_for_a_perfect_prediction(scene):
    label, _ = scene
    assert corrective_clicks(label, label.astype(bool), spacing=(3.0, 2.0, 2.0)) == Clicks(
        tumor=[], background=[]
    )


def test_corrective_clicks_of_one_kind_only(scene):
    label, _ = scene
    missed = corrective_clicks(label, np.zeros(SHAPE, bool), spacing=(1.0, 1.0, 1.0))
    assert missed.tumor == [(6, 5, 4)] and missed.background == []
    extra = corrective_clicks(np.zeros(SHAPE, bool), label, spacing=(1.0, 1.0, 1.0))
    assert extra.tumor == [] and extra.background == [(6, 5, 4)]


def test_corrective_missed_part_of_a_lesion():
    """The prediction covers the lesion's x < 8 part: the rest is a 5 x 5 x 3 (z, y, x) slab,
    2 voxels deep on x = 9 for y in 4..6 and z in 3..5; the first of these in (x, y, z) order."""
    label = np.zeros(SHAPE, np.uint8)
    label[2:7, 3:8, 4:11] = 1
    prediction = np.zeros(SHAPE, np.uint8)
    prediction[2:7, 3:8, 4:8] = 1
    clicks = corrective_clicks(label, prediction, spacing=(1.0, 1.0, 1.0))
    assert clicks == Clicks(tumor=[(9, 4, 3)], background=[])


def test_corrective_ties_go_to_the_first_in_xyz_order():
    label = _two_cubes()
    clicks = corrective_clicks(label, np.zeros(SHAPE, bool), spacing=(1.0, 1.0, 1.0))
    assert clicks.tumor == [(3, 6, 11)]


def test_corrective_equal_sized_regions_go_to_the_first_in_xyz_order():
    """Two 27-voxel false positives: the one with the smaller x wins, though its z is larger."""
    prediction = np.zeros(SHAPE, np.uint8)
    _cube(prediction, (5, 10, 12), 3)
    _cube(prediction, (30, 10, 3), 3)
    clicks = corrective_clicks(np.zeros(SHAPE, bool), prediction, spacing=(1.0, 1.0, 1.0))
    assert clicks.background == [(5, 10, 12)]


@pytest.mark.parametrize(
    ("prediction", "spacing", "message"),
    [
        (np.zeros((16, 24, 41), bool), (1.0, 1.0, 1.0), "shape"),
        (np.zeros(SHAPE, np.float64), (1.0, 1.0, 1.0), "integer"),
        (np.zeros(SHAPE[1:], bool), (1.0, 1.0), "3D"),
        (np.zeros(SHAPE, bool), (1.0, 1.0), "spacing"),
        (np.zeros(SHAPE, bool), (1.0, 0.0, 1.0), "spacing"),
        (np.zeros(SHAPE, bool), (1.0, float("nan"), 1.0), "spacing"),
        (np.zeros(SHAPE, bool), "abc", "spacing"),
    ],
)
def test_corrective_bad_input_is_refused(prediction, spacing, message):
    with pytest.raises(ValueError, match=message):
        corrective_clicks(np.zeros(SHAPE, np.uint8), prediction, spacing=spacing)


# ----------------------------------------------------------------------------------------------
# at_budget and click_mask
# ----------------------------------------------------------------------------------------------


def test_at_budget_is_the_first_k_of_each_kind(scene):
    clicks = simulate_clicks(*scene)
    for k in range(13):
        part = at_budget(clicks, k)
        assert part.tumor == clicks.tumor[:k]
        assert part.background == clicks.background[:k]
        assert len(part.tumor) == min(k, 10)
    assert at_budget(clicks, 12) == clicks
    uneven = Clicks(tumor=[(1, 2, 3)], background=[(4, 5, 6), (7, 8, 9)])
    assert at_budget(uneven, 2) == uneven
    with pytest.raises(ValueError, match="budget"):
        at_budget(clicks, -1)


def test_click_mask_marks_array_z_y_x():
    clicks = Clicks(tumor=[(39, 0, 15)], background=[(0, 23, 0)])
    tumour = click_mask(clicks, SHAPE, kind="tumor")
    assert tumour.shape == SHAPE and tumour[15, 0, 39] and tumour.sum() == 1
    assert click_mask(clicks, SHAPE, kind="background")[0, 23, 0]
    with pytest.raises(ValueError, match="outside"):
        click_mask(Clicks(tumor=[(15, 0, 39)], background=[]), SHAPE, kind="tumor")
    with pytest.raises(ValueError, match="kind"):
        click_mask(clicks, SHAPE, kind="lesion")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# The grand-challenge click file
# ----------------------------------------------------------------------------------------------

#: Two points of autoPET IV's Task1/test/input click file, byte for byte as the official
#: simulator writes them (``json.dumps`` of its dictionary).
OFFICIAL_FILE = (
    '{"version": {"major": 1, "minor": 0}, "type": "Multiple points", "points": '
    '[{"point": [109, 103, 353], "name": "tumor"}, {"point": [84, 84, 264], "name": "background"}]}'
)


def test_official_file_round_trips_byte_for_byte():
    clicks = from_grand_challenge(json.loads(OFFICIAL_FILE), shape=(400, 200, 200))
    assert clicks == Clicks(tumor=[(109, 103, 353)], background=[(84, 84, 264)])
    assert json.dumps(to_grand_challenge(clicks)) == OFFICIAL_FILE


def test_simulated_clicks_round_trip(scene):
    clicks = simulate_clicks(*scene)
    doc = json.loads(json.dumps(to_grand_challenge(clicks)))
    assert [p["name"] for p in doc["points"]] == ["tumor"] * 10 + ["background"] * 10
    assert from_grand_challenge(doc, shape=SHAPE) == clicks


def test_interleaved_points_keep_their_order_per_kind():
    doc = to_grand_challenge(Clicks(tumor=[], background=[]))
    doc["points"] = [
        {"point": [1, 1, 1], "name": "background"},
        {"point": [2, 2, 2], "name": "tumor"},
        {"point": [3, 3, 3], "name": "background"},
    ]
    assert from_grand_challenge(doc, shape=SHAPE) == Clicks(
        tumor=[(2, 2, 2)], background=[(1, 1, 1), (3, 3, 3)]
    )


def test_points_are_x_y_z_against_a_z_y_x_shape():
    doc = to_grand_challenge(Clicks(tumor=[(39, 23, 15)], background=[]))
    assert from_grand_challenge(doc, shape=SHAPE).tumor == [(39, 23, 15)]
    with pytest.raises(ValueError, match="outside"):
        from_grand_challenge(doc, shape=SHAPE[::-1])


def _valid() -> dict[str, Any]:
    return to_grand_challenge(Clicks(tumor=[(1, 2, 3)], background=[(4, 5, 6)]))


def _edit(path: str, value: Any, *, delete: bool = False) -> dict[str, Any]:
    """A copy of the valid document with ``path`` (dot-separated; digits index lists) changed."""
    doc = copy.deepcopy(_valid())
    *parents, last = path.split(".")
    node: Any = doc
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    index: Any = int(last) if last.isdigit() else last
    if delete:
        del node[index]
    else:
        node[index] = value
    return doc


MALFORMED: dict[str, tuple[Any, str]] = {
    "not-an-object": ([], "the document must be an object"),
    "json-text": (OFFICIAL_FILE, "must be an object"),
    "missing-points": (_edit("points", None, delete=True), r"missing \['points'\]"),
    "missing-version": (_edit("version", None, delete=True), "missing"),
    "extra-key": ({**_valid(), "name": "clicks"}, "unknown"),
    "wrong-type": (_edit("type", "Multiple point"), "type must be"),
    "type-not-text": (_edit("type", 3), "type must be"),
    "version-2": (_edit("version.major", 2), "version"),
    "version-text": (_edit("version.minor", "0"), "version"),
    "version-bool": (_edit("version.major", True), "version"),
    "version-not-object": (_edit("version", "1.0"), "version must be an object"),
    "points-object": (_edit("points", {"0": {}}), "points must be a list"),
    "point-not-object": (_edit("points.0", [1, 2, 3]), r"points\[0\] must be an object"),
    "point-missing-name": (_edit("points.1.name", None, delete=True), r"points\[1\].*missing"),
    "point-extra-key": (_edit("points.0.probability", 1.0), "unknown"),
    "unknown-name": (_edit("points.0.name", "lesion"), "'tumor' or 'background'"),
    "name-null": (_edit("points.0.name", None), "'tumor' or 'background'"),
    "float-integral": (_edit("points.0.point.0", 1.0), "three integers"),
    "float": (_edit("points.0.point.1", 2.5), "three integers"),
    "bool": (_edit("points.0.point.2", True), "three integers"),
    "text": (_edit("points.0.point", "1,2,3"), "three integers"),
    "two-coords": (_edit("points.0.point", [1, 2]), "three integers"),
    "four-coords": (_edit("points.0.point", [1, 2, 3, 4]), "three integers"),
    "negative": (_edit("points.1.point.0", -1), "outside"),
    "x-out-of-range": (_edit("points.0.point.0", 40), "outside"),
    "y-out-of-range": (_edit("points.0.point.1", 24), "outside"),
    "z-out-of-range": (_edit("points.0.point.2", 16), "outside"),
    "huge-int": (_edit("points.0.point.0", 10**30), "outside"),
    "too-many": (
        _edit("points", [{"point": [0, 0, 0], "name": "tumor"}] * (MAX_POINTS + 1)),
        "more than",
    ),
}


@pytest.mark.parametrize(("doc", "message"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_click_files_are_refused(doc, message):
    with pytest.raises(ValueError, match=message):
        from_grand_challenge(doc, shape=SHAPE)


def test_the_largest_allowed_file_is_accepted_and_messages_stay_short():
    doc = _edit("points", [{"point": [0, 0, 0], "name": "tumor"}] * MAX_POINTS)
    assert len(from_grand_challenge(doc, shape=SHAPE).tumor) == MAX_POINTS
    with pytest.raises(ValueError) as err:
        from_grand_challenge(_edit("points.0.name", "x" * 10**6), shape=SHAPE)
    assert len(str(err.value)) < 300


@pytest.mark.parametrize("shape", [(16, 24), (16, 24, 0), (16.0, 24, 40), None])
def test_bad_shape_is_refused(shape):
    with pytest.raises(ValueError, match="shape"):
        from_grand_challenge(_valid(), shape=shape)
