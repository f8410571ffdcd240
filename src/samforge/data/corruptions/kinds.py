"""The twelve RobustMedSAM corruptions, one function each, and their table
(:data:`CORRUPTIONS`). Formulas and the differences from the reference code are in
:mod:`samforge.data.corruptions`.

Each function draws its random numbers independently of the level: the same seed gives the
same draws at every severity, scaled by the ladder value.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage import color

from .record import ApplyFn, Corruption, FloatImage

# torchvision's rgb_to_grayscale weights (ITU-R 601-2 luma).
_LUMA = np.array([0.2989, 0.587, 0.114])


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    return float(lo + rng.random() * (hi - lo))


def _gaussian_noise(x: FloatImage, sigma: float, rng: np.random.Generator):
    return x + sigma * rng.standard_normal(x.shape), {"sigma": sigma}


def _opencv_sigma(kernel_size: int) -> float:
    """σ that ``cv2.GaussianBlur`` derives from a kernel size when given σ = 0."""
    return 0.3 * ((kernel_size - 1) * 0.5 - 1) + 0.8


def _gaussian_blur(x: FloatImage, kernel_sizes: tuple[int, ...], rng: np.random.Generator):
    # Index by one uniform draw: the same seed picks the same position in every level's list.
    k = kernel_sizes[min(int(rng.random() * len(kernel_sizes)), len(kernel_sizes) - 1)]
    sigma = _opencv_sigma(k)
    # "mirror" is OpenCV's default BORDER_REFLECT_101; radius fixes the kernel size at k.
    out = ndimage.gaussian_filter(x, sigma, radius=(k - 1) // 2, mode="mirror", axes=(0, 1))
    return out, {"kernel_size": k, "sigma": sigma}


def _contrast(x: FloatImage, bounds: tuple[float, float], rng: np.random.Generator):
    factor = _uniform(rng, bounds)
    return (x - 128.0) * factor + 128.0, {"factor": factor}


def _brightness(x: FloatImage, bounds: tuple[float, float], rng: np.random.Generator):
    factor = _uniform(rng, bounds)
    return x * factor, {"factor": factor}


def _jpeg(x: FloatImage, bounds: tuple[int, int], rng: np.random.Generator):
    lo, hi = bounds
    quality = min(lo + int(rng.random() * (hi - lo + 1)), hi)
    pixels = np.rint(x).astype(np.uint8)  # JPEG stores 8-bit samples
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        out = np.asarray(decoded, dtype=np.float64)
    return out, {"quality": quality}


def _grey(img: FloatImage) -> FloatImage:
    """(H, W) grey levels of an (H, W) or (H, W, 3) image."""
    return img if img.ndim == 2 else img @ _LUMA


def _adjust_brightness(img: FloatImage, factor: float) -> FloatImage:
    return np.clip(img * factor, 0.0, 1.0)


def _adjust_contrast(img: FloatImage, factor: float) -> FloatImage:
    mean = _grey(img).mean()
    return np.clip(factor * img + (1.0 - factor) * mean, 0.0, 1.0)


def _adjust_saturation(img: FloatImage, factor: float) -> FloatImage:
    if img.ndim == 2:  # torchvision leaves one-channel images unchanged
        return img
    grey = _grey(img)[..., None]
    return np.clip(factor * img + (1.0 - factor) * grey, 0.0, 1.0)


def _adjust_hue(img: FloatImage, shift: float) -> FloatImage:
    if img.ndim == 2:
        return img
    hsv = color.rgb2hsv(img)
    hsv[..., 0] = (hsv[..., 0] + shift) % 1.0
    return np.clip(color.hsv2rgb(hsv), 0.0, 1.0)


_JITTER_BASE = {"brightness": 0.7, "contrast": 0.3, "saturation": 0.7, "hue": 0.5}
_JITTER_OPS = ("brightness", "contrast", "saturation", "hue")


def _color_jitter(x: FloatImage, scale: float, rng: np.random.Generator):
    # As torchvision: draw the order first, then one factor per operation.
    order = [_JITTER_OPS[i] for i in rng.permutation(4)]
    unit = rng.random(4) * 2.0 - 1.0  # one draw in [-1, 1) per operation
    spread = {name: _JITTER_BASE[name] * scale for name in _JITTER_OPS}
    spread["hue"] = min(spread["hue"], 0.5)
    factors = {
        "brightness": float(1.0 + spread["brightness"] * unit[0]),
        "contrast": float(1.0 + spread["contrast"] * unit[1]),
        "saturation": float(1.0 + spread["saturation"] * unit[2]),
        "hue": float(spread["hue"] * unit[3]),
    }
    ops = {
        "brightness": _adjust_brightness,
        "contrast": _adjust_contrast,
        "saturation": _adjust_saturation,
        "hue": _adjust_hue,
    }
    img = x / 255.0
    for name in order:
        img = ops[name](img, factors[name])
    return img * 255.0, {**factors, "order": order}


def _poisson(x: FloatImage, photons: float, rng: np.random.Generator):
    counts = rng.poisson(x / 255.0 * photons)
    return counts / photons * 255.0, {"photons": photons}


def _speckle(x: FloatImage, sigma: float, rng: np.random.Generator):
    return x + x * sigma * rng.standard_normal(x.shape), {"sigma": sigma}


def _salt_and_pepper(x: FloatImage, fraction: float, rng: np.random.Generator):
    # Two draws per pixel, independent of the level: which pixels (nested sets as the fraction
    # grows) and salt or pepper (fixed per pixel), so a higher level only adds pixels.
    hit = rng.random(x.shape[:2]) < fraction
    salt = rng.random(x.shape[:2]) < 0.5
    out = x.copy()
    out[hit & salt] = 255.0
    out[hit & ~salt] = 0.0
    return out, {"fraction": fraction}


def _rician(x: FloatImage, sigma: float, rng: np.random.Generator):
    n1, n2 = rng.standard_normal((2, *x.shape))
    return np.hypot(x + sigma * n1, sigma * n2), {"sigma": sigma}


def _rayleigh(x: FloatImage, scale: float, rng: np.random.Generator):
    noise = rng.rayleigh(1.0, x.shape) - math.sqrt(math.pi / 2.0)  # zero mean
    return x + scale * noise, {"scale": scale}


def _step_motion(x: FloatImage, shift: float, rng: np.random.Generator):
    angle = rng.random() * 2.0 * math.pi
    dy, dx = shift * math.sin(angle), shift * math.cos(angle)
    height, width = x.shape[:2]
    fy = np.fft.fftfreq(height)[:, None]  # cycles per pixel, centred: -0.5 ... 0.5
    fx = np.fft.fftfreq(width)[None, :]
    ramp = np.exp(-2j * np.pi * (fy * dy + fx * dx))
    moved = np.broadcast_to(fy >= 0, ramp.shape)  # rows acquired after the motion
    ramp = np.where(moved, ramp, 1.0)
    if x.ndim == 3:
        ramp = ramp[..., None]
    spectrum = np.fft.fft2(x, axes=(0, 1)) * ramp
    out = np.abs(np.fft.ifft2(spectrum, axes=(0, 1)))
    return out, {"shift_px": shift, "angle_deg": math.degrees(angle)}


def _spec(name: str, group: str, parameter: str, ladder: tuple, apply: ApplyFn) -> Corruption:
    return Corruption(name, group, parameter, ladder, apply)


CORRUPTIONS: Mapping[str, Corruption] = MappingProxyType(
    {
        c.name: c
        for c in (
            _spec(
                "gaussian_noise",
                "modality_agnostic",
                "noise std σ (grey levels)",
                (6.0, 10.0, 16.0, 24.0, 32.0),
                _gaussian_noise,
            ),
            _spec(
                "gaussian_blur",
                "modality_agnostic",
                "kernel sizes to draw from",
                ((3,), (5,), (7, 9, 11, 13), (15, 17), (19, 21, 23)),
                _gaussian_blur,
            ),
            _spec(
                "contrast",
                "modality_agnostic",
                "range of f in (x−128)·f+128",
                ((1.2, 1.3), (1.4, 1.5), (1.6, 1.7), (1.8, 1.9), (2.0, 2.2)),
                _contrast,
            ),
            _spec(
                "brightness",
                "modality_agnostic",
                "range of f in x·f",
                ((0.85, 0.95), (0.75, 0.85), (0.6, 0.8), (0.45, 0.55), (0.3, 0.4)),
                _brightness,
            ),
            _spec(
                "jpeg",
                "image_pipeline",
                "JPEG quality range",
                ((25, 35), (12, 20), (5, 10), (3, 4), (1, 2)),
                _jpeg,
            ),
            _spec(
                "color_jitter",
                "image_pipeline",
                "scale of (brightness 0.7, contrast 0.3, saturation 0.7, hue 0.5)",
                (0.25, 0.5, 1.0, 1.2, 1.4),
                _color_jitter,
            ),
            _spec(
                "poisson",
                "ct_xray",
                "photons at full scale λ",
                (200.0, 80.0, 25.0, 10.0, 4.0),
                _poisson,
            ),
            _spec(
                "speckle",
                "ultrasound",
                "std σ of the multiplicative noise",
                (0.15, 0.3, 0.5, 0.7, 0.9),
                _speckle,
            ),
            _spec(
                "salt_and_pepper",
                "ultrasound",
                "fraction of pixels replaced",
                (0.02, 0.05, 0.10, 0.20, 0.30),
                _salt_and_pepper,
            ),
            _spec(
                "rician",
                "mri",
                "std σ of each Gaussian component",
                (8.0, 15.0, 25.0, 35.0, 50.0),
                _rician,
            ),
            _spec("rayleigh", "mri", "Rayleigh scale s", (12.0, 25.0, 40.0, 55.0, 70.0), _rayleigh),
            _spec(
                "step_motion",
                "mri",
                "shift (pixels) of the half acquired after the motion",
                (1.5, 3.0, 5.0, 8.0, 12.0),
                _step_motion,
            ),
        )
    }
)
"""The 12 RobustMedSAM corruption types by name, in the paper's order."""
