"""Intensity normalisation: closed-form values for every mode, shapes, dtypes, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from samforge.data import WINDOWS, Case, IntensitySettings, normalize_intensity, volume_normalizer
from samforge.errors import ConfigError, InputImageError


def _gray(rgb: np.ndarray) -> np.ndarray:
    assert rgb.dtype == np.float32 and rgb.shape[-1] == 3
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 1])
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])
    return rgb[..., 0]


@pytest.mark.parametrize("window", list(WINDOWS))
def test_ct_ramp_through_each_preset(window):
    ramp = np.linspace(-1500, 1500, 301, dtype=np.float32).reshape(1, -1).repeat(2, axis=0)
    level, width = WINDOWS[window]
    out = _gray(normalize_intensity(ramp.astype(np.int16), mode="ct", window=window))
    expected = np.clip((ramp - (level - width / 2)) / width * 255, 0, 255)
    np.testing.assert_allclose(out, expected, atol=1e-3)


def test_soft_tissue_values_and_explicit_window():
    hu = np.array([[-1000, -160, 40, 240, 3000]], dtype=np.int16)
    out = _gray(normalize_intensity(hu, mode="ct"))  # soft tissue by default: [−160, 240]
    np.testing.assert_allclose(out[0], [0, 0, 127.5, 255, 255])
    out = _gray(normalize_intensity(hu, mode="ct", window=(0, 2000)))  # [−1000, 1000]
    np.testing.assert_allclose(out[0], [0, 107.1, 132.6, 158.1, 255], atol=1e-4)
    assert WINDOWS == {
        "soft_tissue": (40, 400),
        "lung": (-600, 1500),
        "bone": (400, 1800),
        "brain": (40, 80),
    }


def test_auto_uses_a_ct_window_for_ct_and_percentiles_otherwise():
    hu = np.array([[-160.0, 40.0, 240.0, 1000.0]], dtype=np.float32)
    np.testing.assert_allclose(
        _gray(normalize_intensity(hu, modality="CT"))[0], [0, 127.5, 255, 255]
    )
    bone = _gray(normalize_intensity(hu, window="bone"))  # auto + a window: CT, [−500, 1300]
    np.testing.assert_allclose(bone[0][-1], 1500 / 1800 * 255, atol=1e-3)
    generic = _gray(normalize_intensity(hu))  # percentile mode: ends map to 0 and 255
    assert generic.min() == 0 and generic.max() == 255


def test_percentile_mode_maps_the_percentiles_to_0_and_255():
    values = np.random.default_rng(0).permutation(10_000).astype(np.float64).reshape(100, 100)
    p1, p99 = np.percentile(values, [1, 99])
    out = _gray(normalize_intensity(values, mode="percentile"))
    expected = np.clip((values - p1) / (p99 - p1) * 255, 0, 255)
    np.testing.assert_allclose(out, expected, atol=1e-3)
    assert out[values <= p1].max() == 0 and out[values >= p99].min() == 255
    custom = _gray(normalize_intensity(values, mode="percentile", percentiles=(10, 90)))
    p10, p90 = np.percentile(values, [10, 90])
    np.testing.assert_allclose(
        custom, np.clip((values - p10) / (p90 - p10) * 255, 0, 255), atol=1e-3
    )


def test_mr_mode_uses_nonzero_voxels_and_keeps_background_black():
    rng = np.random.default_rng(1)
    values = np.zeros((60, 60), np.int16)
    values[10:50, 10:50] = rng.integers(-20, 2000, (40, 40))  # a few negative voxels
    nonzero = values[values != 0]
    low, high = np.percentile(nonzero, [0.5, 99.5])
    out = _gray(normalize_intensity(values, mode="mr"))
    expected = np.clip((values - low) / (high - low) * 255, 0, 255)
    expected[values == 0] = 0
    np.testing.assert_allclose(out, expected, atol=1e-3)
    assert out[0, 0] == 0 and low < 0  # zero voxels stay 0 even though 0 > low


def test_uint8_passes_through_unchanged():
    rng = np.random.default_rng(2)
    gray = rng.integers(0, 256, (7, 9), dtype=np.uint8)
    np.testing.assert_array_equal(_gray(normalize_intensity(gray)), gray)
    rgb = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    np.testing.assert_array_equal(normalize_intensity(rgb), rgb)
    rgba = rng.integers(0, 256, (7, 9, 4), dtype=np.uint8)
    np.testing.assert_array_equal(normalize_intensity(rgba), rgba[..., :3])  # alpha dropped
    np.testing.assert_array_equal(_gray(normalize_intensity(gray[..., None])), gray)
    floats = gray.astype(np.float32)
    np.testing.assert_array_equal(_gray(normalize_intensity(floats, mode="none")), floats)
    np.testing.assert_array_equal(_gray(normalize_intensity(floats, mode="uint8")), floats)


@pytest.mark.parametrize("mode", ["auto", "percentile", "mr", "ct"])
@pytest.mark.parametrize("value", [0, 7, -3])
def test_constant_images_map_to_zero_without_nan(mode, value):
    out = normalize_intensity(np.full((5, 6), value, dtype=np.float32), mode=mode)
    assert np.isfinite(out).all() and out.shape == (5, 6, 3)
    if mode != "ct":
        assert out.max() == 0


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64])
def test_every_dtype_gives_float32_in_range(dtype):
    values = (np.random.default_rng(3).random((11, 13)) * 200).astype(dtype)
    for mode in ("auto", "percentile", "mr", "ct"):
        out = normalize_intensity(values, mode=mode)
        assert out.dtype == np.float32 and out.shape == (11, 13, 3)
        assert 0 <= out.min() and out.max() <= 255


def test_mostly_constant_image_falls_back_to_the_full_range():
    values = np.zeros((100, 100), np.float32)
    values[0, 0] = 10.0  # 1st and 99th percentiles are both 0
    out = _gray(normalize_intensity(values, mode="percentile"))
    assert out[0, 0] == 255 and out[5, 5] == 0


@pytest.mark.parametrize(
    ("image", "mode", "message"),
    [
        (np.full((4, 4), np.nan, np.float32), "auto", "16 NaN or infinite values.*nan_to_num"),
        (np.zeros((2, 4, 4, 3)), "auto", "expected \\(H, W\\), \\(H, W, 1\\)"),
        (np.zeros((10, 64, 64)), "auto", "pass one slice"),
        (np.zeros((4, 4, 2)), "auto", "expected \\(H, W\\)"),
        (np.zeros((0, 4)), "auto", "empty"),
        (np.zeros((4, 4), bool), "auto", "dtype bool"),
        (np.full((4, 4), 300.0), "none", "mode 'none' needs values in \\[0, 255\\]"),
    ],
)
def test_bad_images(image, mode, message):
    with pytest.raises(InputImageError, match=message):
        normalize_intensity(image, mode=mode)


def test_bad_settings():
    image = np.zeros((4, 4), np.int16)
    with pytest.raises(ConfigError, match="unknown intensity mode 'zscore'"):
        normalize_intensity(image, mode="zscore")
    with pytest.raises(ConfigError, match=r"unknown CT window 'liver'.*soft_tissue"):
        normalize_intensity(image, mode="ct", window="liver")
    with pytest.raises(ConfigError, match="width must be positive"):
        normalize_intensity(image, mode="ct", window=(40, 0))
    assert normalize_intensity(image, mode="ct", window="Soft-Tissue").shape == (4, 4, 3)


def test_volume_normalizer_shares_one_mapping_across_slices():
    volume = np.stack(
        [np.full((4, 4), 100.0), np.full((4, 4), 200.0), np.linspace(0, 300, 16).reshape(4, 4)]
    ).astype(np.float32)
    mapping = volume_normalizer(volume, mode="percentile")
    low, high = np.percentile(volume, [1, 99])
    assert (mapping.low, mapping.high) == pytest.approx((low, high))
    first = _gray(mapping(volume[0]))
    np.testing.assert_allclose(first, (100 - low) / (high - low) * 255, atol=1e-3)
    assert first.max() > 0  # per-slice percentiles would have made this constant slice black
    with pytest.raises(InputImageError, match=r"\(D, H, W\)"):
        volume_normalizer(np.zeros((2, 2, 2, 2)))


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.float32, np.int16, np.uint16]),
        shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
        elements={"allow_nan": False, "allow_infinity": False},
    ),
    st.sampled_from(["auto", "percentile", "mr", "ct"]),
)
def test_any_finite_image_maps_into_range(image, mode):
    out = normalize_intensity(image, mode=mode)
    assert out.shape == (*image.shape, 3) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 255


def test_a_range_of_subnormal_floats_maps_onto_the_full_range():
    """Found by the property test above: 255 / 1e-45 overflows float32, and 0 · inf made
    the darkest pixel NaN."""
    image = np.array([[1e-45, 0.0]], dtype=np.float32)
    out = normalize_intensity(image, mode="auto")
    assert np.isfinite(out).all()
    assert out[0, 0].tolist() == [255.0] * 3 and out[0, 1].tolist() == [0.0] * 3


def test_intensity_settings_check_mode_and_window_when_made():
    with pytest.raises(ConfigError, match="unknown intensity mode"):
        IntensitySettings("zscore")
    with pytest.raises(ConfigError, match="unknown CT window"):
        IntensitySettings("ct", "liver")
    with pytest.raises(ConfigError, match="unknown CT window"):
        IntensitySettings("percentile", "lvier")  # a typo fails even where it would be unused
    assert IntensitySettings("ct", (40, 400)).window == (40, 400)


def test_intensity_settings_give_a_volume_one_mapping_and_an_image_its_own():
    hu = np.linspace(-1000, 1000, 3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    bone = IntensitySettings(window="bone")  # auto with a window: CT
    volume = Case(hu, None, (2.0, 1.0, 1.0), None, "other", "v")
    mapping = bone.case_mapping(volume)
    assert mapping == volume_normalizer(hu, window="bone")
    assert (mapping.low, mapping.high) == (-500.0, 1300.0)
    ct_volume = Case(hu, None, (2.0, 1.0, 1.0), None, "ct", "c")
    assert IntensitySettings().case_mapping(ct_volume) == IntensitySettings("ct").volume_mapping(hu)
    image = Case(hu[1], None, (1.0, 1.0), None, "us", "i")  # a 2D image: its own range
    np.testing.assert_array_equal(
        IntensitySettings().case_mapping(image)(hu[1]), normalize_intensity(hu[1])
    )
    assert IntensitySettings().case_mapping(image) != IntensitySettings().volume_mapping(hu)
