"""Each corruption does what its formula says: statistical checks against closed forms.

Float inputs are used where rounding to uint8 would blur a statistic; images are 256² or
larger so that sample statistics sit well inside the tolerances (a few standard errors).
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage, stats

from samforge.data import corruptions
from samforge.data.corruptions import corrupt, corrupt_with_params, kinds

N = 256


def flat(value: float, shape: tuple[int, ...] = (N, N)) -> np.ndarray:
    return np.full(shape, float(value))


def smooth_image(size: int = 128) -> np.ndarray:
    """uint8, smooth shading only: JPEG's block edges stand out against it."""
    y, x = np.mgrid[:size, :size]
    image = 60 + 40 * np.sin(x / 11.0) + 30 * np.cos(y / 7.0) + 0.3 * x
    return np.clip(image, 0, 255).astype(np.uint8)


def high_frequency_energy(image: np.ndarray, cutoff: float = 0.25) -> float:
    """Spectral energy above ``cutoff`` cycles/pixel (mean removed)."""
    spectrum = np.abs(np.fft.fft2(image - image.mean())) ** 2
    fy = np.fft.fftfreq(image.shape[0])[:, None]
    fx = np.fft.fftfreq(image.shape[1])[None, :]
    return float(spectrum[np.hypot(fy, fx) > cutoff].sum())


# --- modality agnostic ------------------------------------------------------------------------


def test_gaussian_noise_has_std_16_on_mid_grey():
    clean = flat(128)
    residual = corrupt(clean, "gaussian_noise", 3, seed=0) - clean
    assert abs(residual.std() - 16.0) < 0.3
    assert abs(residual.mean()) < 0.3
    assert abs(stats.skew(residual.ravel())) < 0.05  # symmetric, Gaussian
    # uint8 rounding adds only 1/12 to the variance.
    residual8 = corrupt(clean.astype(np.uint8), "gaussian_noise", 3, seed=1).astype(float) - 128
    assert abs(residual8.std() - 16.0) < 0.3


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_gaussian_noise_ladder(severity):
    sigma = corruptions.CORRUPTIONS["gaussian_noise"].level(severity)
    residual = corrupt(flat(128), "gaussian_noise", severity, seed=severity) - 128
    assert abs(residual.std() / sigma - 1.0) < 0.03


def test_gaussian_blur_matches_opencv_kernel_and_removes_high_frequencies():
    rng = np.random.default_rng(0)
    clean = rng.uniform(0, 255, (N, N))
    out, params = corrupt_with_params(clean, "gaussian_blur", 3, seed=4)
    k, sigma = params["kernel_size"], params["sigma"]
    assert k in (7, 9, 11, 13)
    assert sigma == pytest.approx(0.3 * ((k - 1) / 2 - 1) + 0.8)  # cv2.getGaussianKernel(k, 0)
    # Independent reference: separable normalised k-tap kernel, reflect-101 borders.
    taps = np.exp(-((np.arange(k) - k // 2) ** 2) / (2 * sigma**2))
    taps /= taps.sum()
    padded = np.pad(clean, k // 2, mode="reflect")  # numpy "reflect" == OpenCV REFLECT_101
    rows = np.apply_along_axis(lambda v: np.convolve(v, taps, mode="valid"), 0, padded)
    expected = np.apply_along_axis(lambda v: np.convolve(v, taps, mode="valid"), 1, rows)
    np.testing.assert_allclose(out, expected, atol=1e-9)
    assert high_frequency_energy(out) < 0.01 * high_frequency_energy(clean)


def test_contrast_follows_its_formula_before_clipping():
    clean = np.tile(np.arange(256, dtype=np.uint8), (16, 1))
    factors = []
    for seed in range(40):
        out, params = corrupt_with_params(clean, "contrast", 3, seed)
        f = params["factor"]
        factors.append(f)
        expected = np.clip(np.rint((clean.astype(float) - 128) * f + 128), 0, 255)
        np.testing.assert_array_equal(out, expected)
    assert 1.6 <= min(factors) < 1.62 and 1.68 < max(factors) <= 1.7
    # The factor can be read back from the unclipped pixels of a float image.
    x = np.linspace(60, 190, 200)[None, :].repeat(4, 0)
    out, params = corrupt_with_params(x, "contrast", 3, seed=3)
    slope = np.polyfit(x.ravel(), out.ravel(), 1)[0]
    assert slope == pytest.approx(params["factor"], abs=1e-9)


def test_brightness_follows_its_formula():
    clean = np.tile(np.arange(256, dtype=np.uint8), (16, 1))
    factors = []
    for seed in range(40):
        out, params = corrupt_with_params(clean, "brightness", 3, seed)
        factors.append(params["factor"])
        expected = np.clip(np.rint(clean.astype(float) * params["factor"]), 0, 255)
        np.testing.assert_array_equal(out, expected)
    assert 0.6 <= min(factors) < 0.63 and 0.77 < max(factors) <= 0.8


# --- JPEG and colour jitter -------------------------------------------------------------------


def blockiness(image: np.ndarray) -> float:
    """Mean step across 8×8 block borders over the mean step inside blocks (1 = no blocks)."""
    a = image.astype(np.float64)
    ratios = []
    for axis in (0, 1):
        steps = np.abs(np.diff(a, axis=axis))
        border = np.take(steps, np.arange(7, steps.shape[axis], 8), axis=axis).mean()
        inside = np.delete(steps, np.s_[7::8], axis=axis).mean()
        ratios.append(border / inside)
    return float(np.mean(ratios))


def test_jpeg_is_pillow_at_the_drawn_quality_with_8x8_blocks():
    clean = smooth_image()
    assert blockiness(clean) < 1.1
    for seed in range(4):
        out, params = corrupt_with_params(clean, "jpeg", 3, seed)
        assert 5 <= params["quality"] <= 10
        buffer = io.BytesIO()
        Image.fromarray(clean).save(buffer, format="JPEG", quality=params["quality"])
        np.testing.assert_array_equal(out, np.asarray(Image.open(buffer)))
        assert not np.array_equal(out, clean)
        assert blockiness(out) > 1.5


def test_jpeg_on_colour_uses_chroma_subsampling():
    clean = np.stack([smooth_image(), smooth_image()[::-1], smooth_image().T], axis=-1)
    out = corrupt(clean, "jpeg", 3, seed=0)
    assert out.shape == clean.shape and blockiness(out[..., 0]) > 1.2


def test_color_jitter_factor_ranges_and_random_order():
    image = np.stack([smooth_image()] * 3, axis=-1)
    seen = {"brightness": [], "contrast": [], "saturation": [], "hue": []}
    orders = set()
    for seed in range(60):
        _, params = corrupt_with_params(image, "color_jitter", 3, seed)
        for name in seen:
            seen[name].append(params[name])
        orders.add(tuple(params["order"]))
        assert sorted(params["order"]) == sorted(seen)
    expected = {
        "brightness": (0.3, 1.7),
        "contrast": (0.7, 1.3),
        "saturation": (0.3, 1.7),
        "hue": (-0.5, 0.5),
    }
    for name, (low, high) in expected.items():
        values = np.array(seen[name])
        assert values.min() >= low and values.max() <= high, name
        assert values.min() < low + 0.15 * (high - low) and values.max() > high - 0.15 * (
            high - low
        )
    assert len(orders) > 10  # torchvision draws a random permutation per call


def test_color_jitter_keeps_grey_images_grey():
    grey = smooth_image()
    for seed in range(10):
        rgb = corrupt(np.stack([grey] * 3, axis=-1), "color_jitter", 3, seed)
        spread = rgb.max(axis=-1).astype(int) - rgb.min(axis=-1)
        assert spread.max() <= 1  # saturation and hue cannot colour a grey pixel
        two_d = corrupt(grey, "color_jitter", 3, seed)
        assert two_d.ndim == 2


def test_color_jitter_on_a_grey_2d_image_is_brightness_then_contrast_in_order():
    grey = smooth_image().astype(np.float64)
    for seed in range(10):
        out, params = corrupt_with_params(grey, "color_jitter", 3, seed)
        img = grey / 255
        for op in params["order"]:
            if op == "brightness":
                img = np.clip(img * params["brightness"], 0, 1)
            elif op == "contrast":
                c = params["contrast"]
                img = np.clip(c * img + (1 - c) * img.mean(), 0, 1)
        np.testing.assert_allclose(out, img * 255, atol=1e-9)


def test_colour_operations_follow_torchvision():
    red = np.zeros((2, 2, 3))
    red[..., 0] = 1.0
    green = kinds._adjust_hue(red, 1 / 3)
    np.testing.assert_allclose(green[0, 0], [0, 1, 0], atol=1e-9)
    grey = kinds._adjust_saturation(red, 0.0)
    np.testing.assert_allclose(grey[0, 0], [0.2989] * 3, atol=1e-9)
    half = kinds._adjust_contrast(np.array([[0.2, 0.6]]), 0.5)
    np.testing.assert_allclose(half, [[0.3, 0.5]])


# --- CT / X-ray, ultrasound, MRI --------------------------------------------------------------


def test_poisson_keeps_the_mean_and_has_variance_proportional_to_x():
    photons = corruptions.CORRUPTIONS["poisson"].paper
    variances = {}
    for x in (50.0, 100.0):
        out = corrupt(flat(x), "poisson", 3, seed=int(x))
        assert abs(out.mean() - x) < 5 * math.sqrt(255 * x / photons) / N  # 5 standard errors
        variances[x] = out.var()
        assert variances[x] == pytest.approx(255 * x / photons, rel=0.05)
        levels = out * photons / 255  # counts: whole numbers of photons
        np.testing.assert_allclose(levels, np.rint(levels), atol=1e-9)
    assert variances[100.0] / variances[50.0] == pytest.approx(2.0, rel=0.06)


def test_speckle_variance_is_proportional_to_x_squared():
    sigma_1 = corruptions.CORRUPTIONS["speckle"].level(1)
    for x in (40.0, 120.0):  # level 1: no clipping, the closed form holds exactly
        out = corrupt(flat(x), "speckle", 1, seed=int(x))
        assert out.std() / x == pytest.approx(sigma_1, rel=0.03)
        assert abs(out.mean() - x) < 0.1 * x * sigma_1
    # Paper level: clipping at 0 scales with x too, so variance still goes with x².
    low = corrupt(flat(30.0), "speckle", 3, seed=1).var()
    high = corrupt(flat(60.0), "speckle", 3, seed=2).var()
    assert high / low == pytest.approx(4.0, rel=0.06)


def test_salt_and_pepper_hits_ten_percent_of_pixels():
    clean = np.full((N, N, 3), 128, np.uint8)
    out = corrupt(clean, "salt_and_pepper", 3, seed=0)
    changed = (out != 128).any(axis=-1)
    assert changed.mean() == pytest.approx(0.10, abs=0.006)
    salt = (out == 255).all(axis=-1)
    pepper = (out == 0).all(axis=-1)
    np.testing.assert_array_equal(changed, salt | pepper)  # whole pixels, all channels
    assert salt.mean() == pytest.approx(0.05, abs=0.004)
    assert pepper.mean() == pytest.approx(0.05, abs=0.004)
    # Higher levels add pixels and keep the ones already hit.
    more = corrupt(clean, "salt_and_pepper", 4, seed=0)
    assert ((more != 128).any(axis=-1) >= changed).all()


@pytest.mark.parametrize("x", [0.0, 20.0, 60.0, 150.0])
def test_rician_mean_matches_the_rice_distribution(x):
    sigma = corruptions.CORRUPTIONS["rician"].paper
    out = corrupt(flat(x), "rician", 3, seed=int(x))
    expected = stats.rice.mean(x / sigma, scale=sigma)
    assert out.mean() == pytest.approx(expected, abs=0.6)
    bias = out.mean() - x
    if x == 0.0:
        assert bias == pytest.approx(sigma * math.sqrt(math.pi / 2), abs=0.6)
    assert bias > 0  # positive bias, largest in dark areas
    if x == 150.0:
        assert bias < 4.0


def test_rayleigh_noise_is_zero_mean_and_right_skewed():
    scale = corruptions.CORRUPTIONS["rayleigh"].paper
    residual = corrupt(flat(128), "rayleigh", 3, seed=0) - 128
    assert abs(residual.mean()) < 0.4
    assert residual.std() == pytest.approx(scale * math.sqrt((4 - math.pi) / 2), rel=0.02)
    assert stats.skew(residual.ravel()) == pytest.approx(0.631, abs=0.05)


def test_step_motion_preserves_energy_and_ghosts_along_the_phase_axis():
    clean = np.zeros((128, 128))
    clean[48:80, 56:72] = 150.0
    for seed in range(4):
        out, params = corrupt_with_params(clean, "step_motion", 3, seed)
        assert params["shift_px"] == 5.0
        # Parseval: the phase ramp keeps |k-space|, so the magnitude image keeps the energy.
        assert (out**2).sum() == pytest.approx((clean**2).sum(), rel=1e-9)
        error = (out - clean) ** 2
        along_columns = error[:40, 48:80].sum() + error[88:, 48:80].sum()  # above / below
        along_rows = error[44:84, :40].sum() + error[44:84, 88:].sum()  # left / right
        assert along_columns > 50 * along_rows
        assert along_columns > 0.002 * (clean**2).sum()  # visible ghosts, not numerical dust


def test_step_motion_is_a_translation_of_half_of_k_space():
    rng = np.random.default_rng(0)
    clean = ndimage.gaussian_filter(rng.uniform(0, 200, (64, 64)), 2)
    out, params = corrupt_with_params(clean, "step_motion", 3, seed=2)
    angle = math.radians(params["angle_deg"])
    dy, dx = 5 * math.sin(angle), 5 * math.cos(angle)
    spectrum = np.fft.fft2(clean)
    fy, fx = np.fft.fftfreq(64)[:, None], np.fft.fftfreq(64)[None, :]
    moved = np.exp(-2j * np.pi * (fy * dy + fx * dx)) * spectrum
    mixed = np.where(fy >= 0, moved, spectrum)  # the rows acquired after the motion
    np.testing.assert_allclose(out, np.clip(np.abs(np.fft.ifft2(mixed)), 0, 255), atol=1e-9)
