"""Phantoms: reproducible, every class present, plausible intensities per modality, fast."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from samforge.data.phantoms import MIN_SIZE, MODALITIES, make_phantom, phantom_cases
from samforge.errors import ConfigError

DTYPES = {"ct": np.int16, "mr": np.uint16, "us": np.uint8, "xray": np.uint16}
VOLUME_MODALITIES = ("ct", "mr", "us")


def class_of(info: dict, name: str) -> int:
    return next(k for k, v in info["labels"].items() if v == name)


def touching(label: np.ndarray, a: int, b: int) -> bool:
    """Whether classes a and b share a face (6/4-connectivity)."""
    return bool((ndimage.binary_dilation(label == a) & (label == b)).any())


# --- contract ---------------------------------------------------------------------------------


@pytest.mark.parametrize("modality", MODALITIES)
def test_2d_phantom_contract(modality):
    image, label, info = make_phantom(modality, shape=(160, 192), seed=3)
    assert image.shape == label.shape == (160, 192)
    assert image.dtype == DTYPES[modality] and label.dtype == np.uint8
    assert info["modality"] == modality
    classes = sorted(info["labels"])
    assert classes == list(range(1, len(classes) + 1)) and len(classes) >= 4
    assert set(np.unique(label)) == {0, *classes}  # every class present, nothing else
    assert len(info["spacing"]) == 2 and all(s > 0 for s in info["spacing"])
    assert info["affine"].shape == (4, 4)
    low, high = info["display_range"]
    assert low < high


@pytest.mark.parametrize("modality", MODALITIES)
def test_deterministic_for_a_seed_and_different_across_seeds(modality):
    a = make_phantom(modality, shape=(96, 96), seed=11)
    b = make_phantom(modality, shape=(96, 96), seed=11)
    c = make_phantom(modality, shape=(96, 96), seed=12)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2]["spacing"] == b[2]["spacing"]
    assert not np.array_equal(a[1], c[1])  # different anatomy, not only different noise
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("modality", VOLUME_MODALITIES)
def test_3d_phantom_contract(modality):
    image, label, info = make_phantom(modality, shape=(24, 96, 112), seed=5)
    assert image.shape == label.shape == (24, 96, 112)
    assert image.dtype == DTYPES[modality]
    assert set(np.unique(label)) == {0, *info["labels"]}
    dz, dy, dx = info["spacing"]
    affine = info["affine"]
    np.testing.assert_allclose(np.diag(affine)[:3], [-dx, -dy, dz])
    assert nib.aff2axcodes(affine) == ("L", "P", "S")
    # The affine maps the volume's centre voxel to the origin of the phantom's frame.
    centre = affine @ np.array([(112 - 1) / 2, (96 - 1) / 2, (24 - 1) / 2, 1.0])
    np.testing.assert_allclose(centre[:3], 0.0, atol=1e-9)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    modality=st.sampled_from(MODALITIES),
    height=st.integers(MIN_SIZE, 120),
    width=st.integers(MIN_SIZE, 120),
    seed=st.integers(0, 2**31 - 1),
)
def test_any_size_and_seed_has_every_class(modality, height, width, seed):
    image, label, info = make_phantom(modality, shape=(height, width), seed=seed)
    assert image.shape == label.shape == (height, width)
    assert set(np.unique(label)) == {0, *info["labels"]}


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    modality=st.sampled_from(VOLUME_MODALITIES),
    depth=st.integers(1, 20),
    size=st.integers(MIN_SIZE, 80),
    seed=st.integers(0, 2**31 - 1),
)
def test_any_volume_has_every_class(modality, depth, size, seed):
    image, label, info = make_phantom(modality, shape=(depth, size, size), seed=seed)
    assert image.shape == (depth, size, size)
    assert set(np.unique(label)) == {0, *info["labels"]}


@pytest.mark.parametrize(
    ("modality", "shape", "match"),
    [
        ("pet", (64, 64), "unknown phantom modality 'pet'"),
        ("xray", (8, 64, 64), "2D projections"),
        ("ct", (16, 64), "at least 32"),
        ("ct", (0, 64, 64), "at least 32 pixels .* one slice"),
        ("mr", (2, 2, 64, 64), r"\(H, W\) or \(D, H, W\)"),
        ("us", (64.0, 64), "integers"),
    ],
)
def test_bad_requests_raise_config_error(modality, shape, match):
    with pytest.raises(ConfigError, match=match):
        make_phantom(modality, shape=shape)


def test_phantom_cases():
    cases = list(phantom_cases("us", 3, shape=(64, 64), seed=1))
    assert len(cases) == 3
    seeds = [info["seed"] for _, _, info in cases]
    assert len(set(seeds)) == 3
    again = list(phantom_cases("ultrasound", 3, shape=(64, 64), seed=1))
    for (a, la, _), (b, lb, _) in zip(cases, again, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    image, _, _ = make_phantom("us", shape=(64, 64), seed=seeds[1])
    np.testing.assert_array_equal(image, cases[1][0])
    with pytest.raises(ConfigError):
        phantom_cases("pet", 2)  # eager: fails before iterating
    with pytest.raises(ConfigError):
        phantom_cases("ct", -1)


# --- modality realism -------------------------------------------------------------------------


def test_ct_hounsfield_units_are_plausible():
    image, label, info = make_phantom("ct", shape=(256, 256), seed=0)
    hu = image.astype(np.float64)
    assert info["units"] == "HU" and hu.min() >= -1024
    corners = np.concatenate([hu[:20, :20].ravel(), hu[-20:, -20:].ravel()])
    assert -1010 < corners.mean() < -985  # air
    sigma = info["noise"]["sigma"]
    assert 10 <= sigma <= 20
    fat = (hu > -150) & (hu < -50)
    assert fat.mean() > 0.05  # subcutaneous and visceral fat around -100 HU

    def interior(name: str) -> np.ndarray:
        return hu[ndimage.binary_erosion(label == class_of(info, name), iterations=2)]

    liver = interior("liver")
    assert 80 < liver.mean() < 140 and 0.6 * sigma < liver.std() < 3 * sigma
    assert interior("liver_lesion").mean() < liver.mean() - 30  # hypodense lesion
    assert interior("kidney_left").mean() > liver.mean()  # enhancing cortex
    assert hu[label == class_of(info, "vertebra")].max() > 700  # cortical bone
    assert 100 < interior("aorta").mean() < 250  # contrast-enhanced blood


def test_ct_anatomy_touching_nested_and_separate():
    for seed in range(3):
        _, label, info = make_phantom("ct", shape=(192, 192), seed=seed)
        liver, lesion = class_of(info, "liver"), class_of(info, "liver_lesion")
        # Lesions lie inside the liver: their surroundings are liver.
        ring = ndimage.binary_dilation(label == lesion, iterations=2) & (label != lesion)
        assert np.isin(label[ring], (liver, 0)).mean() > 0.8
        assert not touching(label, class_of(info, "kidney_left"), class_of(info, "kidney_right"))


def test_ct_volume_has_bending_aorta_and_separate_vertebrae():
    _, label, info = make_phantom("ct", shape=(32, 128, 128), seed=2)
    aorta = label == class_of(info, "aorta")
    centres = np.array([ndimage.center_of_mass(s) for s in aorta if s.any()])
    assert len(centres) == 32
    assert np.ptp(centres[:, 1]) * info["spacing"][2] > 3.0  # it bends (mm)
    _, count = ndimage.label(label == class_of(info, "vertebra"))
    assert count >= 3  # bodies separated by discs


def test_mr_has_bias_field_and_rician_background():
    image, label, info = make_phantom("mr", shape=(256, 256), seed=0)
    assert info["noise"]["type"] == "rician"
    sigma = info["noise"]["sigma"]
    corners = np.concatenate([image[:24, :24].ravel(), image[-24:, -24:].ravel()]).astype(float)
    # Background magnitude is Rayleigh: mean σ·√(π/2) (within rounding).
    assert corners.mean() == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.1)
    liver = image[ndimage.binary_erosion(label == class_of(info, "liver"), iterations=2)]
    fat_like = image > np.percentile(image, 97)
    assert liver.mean() < image[fat_like].mean()  # T1: fat brighter than liver
    # The coil bias makes the same tissue brighter on one side than on the other.
    body = image > 0.5 * liver.mean()
    left = image[:, :128][body[:, :128]].mean()
    right = image[:, 128:][body[:, 128:]].mean()
    assert abs(left - right) / max(left, right) > 0.02


def test_ultrasound_sector_speckle_rim_and_shadow():
    image, label, info = make_phantom("us", shape=(256, 256), seed=0)
    assert image[0, 0] == image[0, -1] == image[-1, 0] == 0  # outside the fan
    zeros, _ = ndimage.label(image == 0)
    outside = np.isin(zeros, [zeros[0, 0], zeros[0, -1]])
    assert outside.mean() > 0.2 and (label[outside] == 0).mean() > 0.9  # labels stay in the fan
    assert (image[:3, 128] == 0).all()  # the fan starts below the probe's curved face
    head = label == class_of(info, "fetal_head")
    rim = head & ~ndimage.binary_erosion(head, iterations=3)
    brain = ndimage.binary_erosion(head, iterations=8)
    assert image[rim].mean() > 1.8 * image[brain].mean()  # bright skull
    fluid = image[ndimage.binary_erosion(label == class_of(info, "amniotic_fluid"), iterations=2)]
    tissue = image[(label == 0) & ndimage.binary_erosion(image > 0, iterations=10)]
    assert fluid.mean() < 0.3 * tissue.mean()  # anechoic
    # Fully developed speckle: high contrast (std/mean) in homogeneous tissue.
    assert tissue.std() / tissue.mean() > 0.3
    assert not touching(label, class_of(info, "cyst"), class_of(info, "fetal_head"))


def test_ultrasound_shadow_behind_the_skull():
    """Distal to the head (further from the probe, same columns) the image is darker."""
    ratios = []
    for seed in range(6):
        image, label, info = make_phantom("us", shape=(256, 256), seed=seed)
        head = label == class_of(info, "fetal_head")
        rows, cols = np.nonzero(head)
        band = slice(rows.max() + 4, rows.max() + 24)
        centre = int(cols.mean())
        below = image[band, centre - 6 : centre + 6].astype(float)
        depth = image[band].astype(float)
        if below.shape[0] == 20 and (depth > 0).sum() > 10 * below.size:
            ratios.append(below.mean() / depth[depth > 0].mean())
    assert len(ratios) >= 2
    assert np.median(ratios) < 0.8


def test_xray_projection():
    image, label, info = make_phantom("xray", shape=(256, 256), seed=0)
    assert image.dtype == np.uint16 and image.max() <= 4095
    lungs = np.isin(label, (class_of(info, "lung_right"), class_of(info, "lung_left")))
    heart = label == class_of(info, "heart")
    assert image[lungs].mean() < 0.8 * image[heart].mean()  # air is dark, tissue bright
    assert not touching(label, class_of(info, "lung_right"), class_of(info, "lung_left"))
    assert touching(label, class_of(info, "heart"), class_of(info, "lung_left"))
    _, clavicles = ndimage.label(label == class_of(info, "clavicle"))
    assert clavicles == 2
    # Smooth: neighbouring pixels are strongly correlated (no salt-like noise).
    a = image.astype(float)
    correlation = np.corrcoef(a[:, :-1].ravel(), a[:, 1:].ravel())[0, 1]
    assert correlation > 0.98
