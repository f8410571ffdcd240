"""The corruption API: names, groups, ladders, validation, and the contract every type keeps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from samforge.data.corruptions import (
    CORRUPTION_GROUPS,
    CORRUPTIONS,
    PAPER_SEVERITY,
    SEVERITIES,
    corrupt,
    corrupt_volume,
    corrupt_with_params,
    corruptions_for_modality,
    get_corruption,
    resolve_corruption_names,
)
from samforge.errors import ConfigError, InputImageError, SamforgeError

KINDS = tuple(CORRUPTIONS)


def textured(shape: tuple[int, ...] = (96, 96), seed: int = 0) -> np.ndarray:
    """A uint8 image with edges, smooth shading and fine texture, kept away from 0 and 255."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]]
    base = 120 + 50 * np.sin(x / 9.0) * np.cos(y / 13.0) + 25 * ((x // 24 + y // 24) % 2)
    base = base + ndimage.gaussian_filter(rng.standard_normal(shape[:2]), 1.5) * 25
    if len(shape) == 3:
        base = np.stack([base, 0.8 * base + 20, 0.6 * base + 40], axis=-1)
    return np.clip(base, 20, 235).astype(np.uint8)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


# --- names, groups, ladders ------------------------------------------------------------------


def test_the_twelve_types_in_their_groups():
    assert set(KINDS) == {
        "gaussian_noise", "gaussian_blur", "contrast", "brightness", "jpeg", "color_jitter",
        "poisson", "speckle", "salt_and_pepper", "rician", "rayleigh", "step_motion",
    }  # fmt: skip
    assert CORRUPTION_GROUPS["modality_agnostic"] == (
        "gaussian_noise", "gaussian_blur", "contrast", "brightness",
    )  # fmt: skip
    assert CORRUPTION_GROUPS["ultrasound"] == ("speckle", "salt_and_pepper")
    assert CORRUPTION_GROUPS["mri"] == ("rician", "rayleigh", "step_motion")
    assert CORRUPTION_GROUPS["ct_xray"] == ("poisson",)
    grouped = [name for names in CORRUPTION_GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(KINDS)  # every type in exactly one group


def test_severity_three_holds_the_papers_parameters():
    paper = {
        "gaussian_noise": 16.0,
        "gaussian_blur": (7, 9, 11, 13),
        "contrast": (1.6, 1.7),
        "brightness": (0.6, 0.8),
        "jpeg": (5, 10),
        "color_jitter": 1.0,
        "poisson": 25.0,
        "speckle": 0.5,
        "salt_and_pepper": 0.10,
        "rician": 25.0,
        "rayleigh": 40.0,
        "step_motion": 5.0,
    }
    assert PAPER_SEVERITY == 3
    for name, value in paper.items():
        assert CORRUPTIONS[name].paper == value == CORRUPTIONS[name].level(3)
        assert len(CORRUPTIONS[name].ladder) == len(SEVERITIES) == 5


def test_corruptions_for_modality():
    generic = set(CORRUPTION_GROUPS["modality_agnostic"] + CORRUPTION_GROUPS["image_pipeline"])
    assert set(corruptions_for_modality("us")) == generic | {"speckle", "salt_and_pepper"}
    assert set(corruptions_for_modality("MR")) == generic | {"rician", "rayleigh", "step_motion"}
    assert set(corruptions_for_modality("ct")) == generic | {"poisson"}
    assert set(corruptions_for_modality("xray")) == generic | {"poisson"}
    assert set(corruptions_for_modality("dermoscopy")) == generic
    assert set(corruptions_for_modality(None)) == generic
    names = corruptions_for_modality("ultrasound")
    assert list(names) == [k for k in KINDS if k in names]  # registry order


def test_resolve_names_and_groups():
    assert resolve_corruption_names(None) == KINDS
    assert resolve_corruption_names("all") == KINDS
    assert resolve_corruption_names(["mri,jpeg"]) == ("jpeg", "rician", "rayleigh", "step_motion")
    assert resolve_corruption_names(["speckle", "Salt-and-Pepper", "speckle"]) == (
        "speckle",
        "salt_and_pepper",
    )
    with pytest.raises(ConfigError, match="unknown corruption 'fog'"):
        resolve_corruption_names(["fog"])
    with pytest.raises(ConfigError, match="no corruption selected"):
        resolve_corruption_names([" , "])


def test_unknown_kind_lists_the_valid_names():
    with pytest.raises(ConfigError) as info:
        corrupt(textured(), "motion_blur")
    message = str(info.value)
    assert "motion_blur" in message
    assert all(name in message for name in KINDS)
    assert isinstance(info.value, SamforgeError)
    with pytest.raises(ConfigError):
        get_corruption(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("severity", [0, 6, -1, 2.5, True, "3"])
def test_bad_severity(severity):
    with pytest.raises(ConfigError, match="severity"):
        corrupt(textured(), "gaussian_noise", severity)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((8, 8), np.int16), "dtype int16"),
        (np.zeros((8, 8), np.uint16), "dtype uint16"),
        (np.zeros((8, 8), bool), "dtype bool"),
        (np.zeros((8, 8, 4), np.uint8), r"shape \(8, 8, 4\)"),
        (np.zeros((8, 8, 1), np.uint8), r"shape \(8, 8, 1\)"),
        (np.zeros((4, 8, 8), np.float32), r"shape \(4, 8, 8\)"),
        (np.zeros(8, np.uint8), r"shape \(8,\)"),
        (np.zeros((0, 8), np.uint8), "empty"),
        (np.full((8, 8), np.nan, np.float32), "NaN"),
        (np.full((8, 8), 256.0), r"\[256, 256\]"),
        (np.full((8, 8), -1.0), r"\[-1, -1\]"),
    ],
)
def test_bad_images_raise_input_image_error(image, match):
    with pytest.raises(InputImageError, match=match):
        corrupt(image, "gaussian_noise")


# --- the contract of every type ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("channels", [None, 3])
def test_contract_uint8(kind, channels):
    shape = (64, 80) if channels is None else (64, 80, channels)
    image = textured(shape)
    before = image.copy()
    out = corrupt(image, kind, 3, seed=7)
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(image, before)  # input untouched
    np.testing.assert_array_equal(out, corrupt(image, kind, 3, seed=7))  # deterministic
    assert not np.array_equal(out, image)  # it degrades


# Blur and JPEG draw from a few discrete settings (4 kernels, 6 qualities); the others are
# continuous, so every seed gives a different image.
DISCRETE = {"gaussian_blur": 3, "jpeg": 3}


@pytest.mark.parametrize("kind", KINDS)
def test_different_seeds_give_different_images(kind):
    image = textured((48, 48, 3))
    outputs = {corrupt(image, kind, 3, seed=s).tobytes() for s in range(8)}
    assert len(outputs) >= DISCRETE.get(kind, 8)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_contract_float(kind, dtype):
    image = textured((48, 40, 3)).astype(dtype) + dtype(0.25)
    out = corrupt(image, kind, 3, seed=1)
    assert out.dtype == dtype and out.shape == image.shape
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 255
    np.testing.assert_array_equal(out, corrupt(image, kind, 3, seed=1))


@pytest.mark.parametrize("kind", KINDS)
def test_generator_seed_is_accepted(kind):
    image = textured((32, 32))
    a = corrupt(image, kind, 2, seed=np.random.default_rng(5))
    b = corrupt(image, kind, 2, seed=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", KINDS)
def test_params_are_reported(kind):
    _, params = corrupt_with_params(textured((32, 32, 3)), kind, 4, seed=3)
    assert params["kind"] == kind and params["severity"] == 4
    assert len(params) > 2


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("channels", [None, 3])
def test_severity_is_monotone(kind, channels):
    """For a fixed seed, the distance from the clean image grows with the severity."""
    shape = (96, 96) if channels is None else (96, 96, channels)
    image = textured(shape, seed=1)
    for seed in (0, 1, 2):
        distances = [distance(corrupt(image, kind, s, seed), image) for s in SEVERITIES]
        assert all(a < b for a, b in itertools.pairwise(distances)), (
            kind,
            seed,
            distances,
        )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(KINDS),
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    rgb=st.booleans(),
    dtype=st.sampled_from([np.uint8, np.float32, np.float64]),
    severity=st.sampled_from(SEVERITIES),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_image_keeps_shape_dtype_and_range(kind, height, width, rgb, dtype, severity, seed):
    shape = (height, width, 3) if rgb else (height, width)
    image = (np.random.default_rng(seed).random(shape) * 255).astype(dtype)
    image.flat[0], image.flat[-1] = 255, 0  # the range's ends are valid inputs
    before = image.copy()
    out = corrupt(image, kind, severity, seed)
    assert out.shape == shape and out.dtype == dtype
    assert np.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 255
    np.testing.assert_array_equal(image, before)


# --- volumes ----------------------------------------------------------------------------------


def test_volume_is_corrupted_slice_by_slice_with_different_streams():
    volume = np.full((4, 32, 32), 128, dtype=np.uint8)
    out = corrupt_volume(volume, "gaussian_noise", 3, seed=0)
    assert out.shape == volume.shape and out.dtype == np.uint8
    residuals = out.astype(np.int16) - 128
    for i in range(3):
        assert not np.array_equal(residuals[i], residuals[i + 1])
    np.testing.assert_array_equal(out, corrupt_volume(volume, "gaussian_noise", 3, seed=0))
    assert not np.array_equal(out, corrupt_volume(volume, "gaussian_noise", 3, seed=1))
    # A slice-wise type acts within slices only: blur never mixes neighbouring slices.
    stack = np.stack([np.zeros((16, 16)), np.full((16, 16), 200.0)]).astype(np.uint8)
    blurred = corrupt_volume(stack, "gaussian_blur", 5, seed=0)
    np.testing.assert_array_equal(blurred, stack)


def test_rgb_volume_and_bad_volumes():
    out = corrupt_volume(np.zeros((2, 16, 16, 3), np.uint8), "color_jitter", 3, 0)
    assert out.shape == (2, 16, 16, 3)
    with pytest.raises(InputImageError, match="corrupt_volume"):
        corrupt_volume(np.zeros((16, 16), np.uint8), "jpeg")
    with pytest.raises(InputImageError, match="no slices"):
        corrupt_volume(np.zeros((0, 16, 16), np.uint8), "jpeg")
    volume = np.zeros((3, 8, 8), np.float32)
    volume[2, 1, 1] = np.nan
    with pytest.raises(InputImageError, match="slice 2"):
        corrupt_volume(volume, "gaussian_noise")
    with pytest.raises(ConfigError):
        corrupt_volume(np.zeros((2, 8, 8), np.uint8), "gaussian_noise", 9)
