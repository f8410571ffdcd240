"""The 12 image corruptions of RobustMedSAM, each with a five-level severity ladder.

RobustMedSAM fine-tunes SAM's mask decoder on pairs of clean and degraded images. The
degradations come in four groups: modality-agnostic (Gaussian noise, Gaussian blur, contrast,
brightness), ultrasound (speckle, salt-and-pepper), MRI (Rician, Rayleigh, step motion) and
CT/X-ray (Poisson); JPEG compression and colour jitter complete the twelve (we file them under
``image_pipeline``: they happen after acquisition, to any modality). The paper uses one fixed
setting per type; we add a ladder of five severities around it.

**Severity 3 is the paper's setting** (and the default)::

    name             ladder parameter      1        2        3 = paper   4        5
    gaussian_noise   noise std σ           6        10       16          24       32
    gaussian_blur    kernel sizes k        3        5        7/9/11/13   15/17    19/21/23
    contrast         range of f            1.2–1.3  1.4–1.5  1.6–1.7     1.8–1.9  2.0–2.2
    brightness       range of f            .85–.95  .75–.85  0.6–0.8     .45–.55  0.3–0.4
    jpeg             quality range         25–35    12–20    5–10        3–4      1–2
    color_jitter     scale of the ranges   0.25     0.5      1           1.2      1.4
    poisson          photons λ             200      80       25          10       4
    speckle          noise std σ           0.15     0.3      0.5         0.7      0.9
    salt_and_pepper  pixel fraction p      0.02     0.05     0.10        0.20     0.30
    rician           noise std σ           8        15       25          35       50
    rayleigh         scale s               12       25       40          55       70
    step_motion      shift d (pixels)      1.5      3        5           8        12

(colour jitter: brightness, contrast, saturation and hue ranges are scaled together; the hue
range stays capped at 0.5, a full half turn of the colour wheel.)

Formulas (x: clean image on 0–255; n: standard normal; all results clipped to [0, 255]):

- gaussian_noise: x + σ·n, per pixel and channel.
- gaussian_blur: Gaussian kernel of size k and OpenCV's default σ = 0.3·((k−1)/2 − 1) + 0.8
  (the reference calls ``cv2.GaussianBlur(img, (k, k), 0)``), mirrored borders.
- contrast / brightness: the formulas above with one factor f per image.
- jpeg: encode and decode with Pillow (libjpeg, 4:2:0 chroma subsampling for colour).
- color_jitter: torchvision's ``ColorJitter`` semantics: brightness factor uniform in
  [1−b, 1+b], contrast in [1−c, 1+c] (blend with the mean grey level), saturation in [1−s, 1+s]
  (blend with the grey image), hue shift uniform in [−h, h] turns (in HSV), applied in a random
  order, clamping to the valid range after each step. Grey images (H, W) get brightness and
  contrast only, as torchvision does for one-channel images.
- poisson: Poisson(x/255·λ)/λ·255, so the expected value is x and the variance 255·x/λ
  (the reference's Poisson(x/255·25)/25, rescaled back to 0–255).
- speckle: x + x·σ·n (variance ∝ x²).
- salt_and_pepper: each pixel (all its channels) is replaced with probability p, by 255 or 0
  with equal odds.
- rician: √((x + σ·n₁)² + (σ·n₂)²), the magnitude of a complex signal with Gaussian noise in both
  channels; biased upwards in dark areas.
- rayleigh: x + s·(R − √(π/2)), R standard Rayleigh: additive noise with zero mean.
- step_motion: the object moves by d pixels halfway through the acquisition: the k-space rows of
  non-negative phase-encoding frequency (half of them, the rows after the centre, as in the
  reference) get the phase ramp of that shift; the image is the magnitude of the inverse FFT.
  Ghosts spread along the phase-encoding axis (axis 0: up and down the image).

Randomness: ``np.random.default_rng(seed)``. Every level draws the same random numbers in the
same order and only scales them ("common random numbers"), so for one seed a higher level is a
stronger version of the same degradation, and the ladder is monotone image by image, not just
on average (except for Poisson and JPEG, whose randomness cannot be shared that way).

Where we differ from the reference code (RobustMedSAM ``data/augment.py``), on purpose:

- uint8 results are rounded to nearest; the reference truncates (``astype(np.uint8)``), which
  darkens every corrupted image by half a grey level on average.
- salt-and-pepper hits exactly a fraction p of the pixels in expectation; the reference draws
  positions with replacement, so slightly fewer distinct pixels.
- step motion uses the centred frequencies for the phase ramp; the reference's ramp on the
  shifted spectrum adds a constant phase of π·d (a sign flip for odd d) to the moved half, which
  is not a translation. The direction of the motion is drawn per seed; the reference always
  moves along x.
- colour jitter follows torchvision (hue ≤ 0.5) where the reference calls albumentations with
  hue 0.7 (which albumentations clips to 0.5).
- JPEG through Pillow instead of OpenCV: both use libjpeg's quality scaling.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from scipy import ndimage
from skimage import color

from ..errors import ConfigError, InputImageError

__all__ = [
    "CORRUPTIONS",
    "CORRUPTION_GROUPS",
    "PAPER_SEVERITY",
    "SEVERITIES",
    "Corruption",
    "corrupt",
    "corrupt_volume",
    "corrupt_with_params",
    "corruptions_for_modality",
    "get_corruption",
    "resolve_corruption_names",
]

FloatImage = NDArray[np.float64]
Params = dict[str, Any]
Seed = int | np.random.Generator
# (image as float64 on 0–255, this level's ladder value, rng) -> (unclipped image, parameters)
ApplyFn = Callable[[FloatImage, Any, np.random.Generator], tuple[FloatImage, Params]]

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
PAPER_SEVERITY = 3

# torchvision's rgb_to_grayscale weights (ITU-R 601-2 luma).
_LUMA = np.array([0.2989, 0.587, 0.114])


@dataclass(frozen=True)
class Corruption:
    """One corruption type: its group, its severity ladder and the function that applies it.

    Attributes:
        name: The type's name, e.g. ``"gaussian_noise"``.
        group: ``modality_agnostic``, ``image_pipeline``, ``ultrasound``, ``mri`` or ``ct_xray``.
        parameter: What the ladder values mean.
        ladder: The parameter at severities 1..5; ``ladder[PAPER_SEVERITY - 1]`` is the paper's.
        apply: ``(image, ladder value, rng) -> (image, drawn parameters)`` on float64 images
            with values in [0, 255]; the result is clipped by the caller.
    """

    name: str
    group: str
    parameter: str
    ladder: tuple[Any, Any, Any, Any, Any]
    apply: ApplyFn

    @property
    def paper(self) -> Any:
        """The paper's parameter (the ladder's value at :data:`PAPER_SEVERITY`)."""
        return self.ladder[PAPER_SEVERITY - 1]

    def level(self, severity: int) -> Any:
        """The ladder value of a severity in 1..5; ConfigError otherwise."""
        if isinstance(severity, bool) or not isinstance(severity, int | np.integer):
            raise ConfigError(f"severity must be an integer 1–5; got {severity!r}.")
        if severity not in SEVERITIES:
            raise ConfigError(f"severity must be 1–5 (3 = the paper's setting); got {severity}.")
        return self.ladder[int(severity) - 1]


# --------------------------------------------------------------------------------------------
# The twelve corruptions. Each draws its random numbers independently of the level.
# --------------------------------------------------------------------------------------------


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

CORRUPTION_GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        group: tuple(name for name, c in CORRUPTIONS.items() if c.group == group)
        for group in ("modality_agnostic", "image_pipeline", "ultrasound", "mri", "ct_xray")
    }
)
"""Names per group: the paper's four groups plus ``image_pipeline`` (JPEG, colour jitter)."""

# Modality names (DICOM codes and common words, lower case) -> modality-specific group.
_MODALITY_GROUP = {
    **dict.fromkeys(("us", "ultrasound", "echo", "echocardiography"), "ultrasound"),
    **dict.fromkeys(("mr", "mri", "t1", "t2", "flair", "dwi"), "mri"),
    **dict.fromkeys(
        (
            "ct",
            "xray",
            "x-ray",
            "x_ray",
            "cr",
            "dx",
            "mg",
            "mammography",
            "xa",
            "rf",
            "fluoroscopy",
            "pet",
            "pt",
            "nm",
            "spect",
            "microscopy",
        ),
        "ct_xray",
    ),
}


def corruptions_for_modality(modality: str | None) -> tuple[str, ...]:
    """The corruption types that make sense for a modality.

    The modality-agnostic and image-pipeline types apply to everything; ultrasound adds
    speckle and salt-and-pepper, MR adds Rician, Rayleigh and step motion, and photon-counting
    modalities (CT, X-ray, mammography, PET, ...) add Poisson. Unknown modalities (endoscopy,
    dermoscopy, ``None``) get the generic types only.

    Args:
        modality: ``"ct"``, ``"mr"``, ``"us"``, ``"xray"``, a DICOM modality code or ``None``;
            case-insensitive.

    Returns:
        Names in the order of :data:`CORRUPTIONS`.
    """
    groups = {"modality_agnostic", "image_pipeline"}
    if modality is not None:
        specific = _MODALITY_GROUP.get(modality.strip().lower())
        if specific is not None:
            groups.add(specific)
    return tuple(name for name, c in CORRUPTIONS.items() if c.group in groups)


def get_corruption(kind: str) -> Corruption:
    """The :class:`Corruption` called ``kind``; ConfigError listing the valid names otherwise."""
    try:
        return CORRUPTIONS[kind]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown corruption {kind!r}; choose one of: {', '.join(CORRUPTIONS)}."
        ) from None


def resolve_corruption_names(names: str | Sequence[str] | None) -> tuple[str, ...]:
    """Expand a user's selection into corruption names.

    Accepts names, group names (``mri``, ``ultrasound``, ...), ``all``, comma-separated
    strings, or ``None`` (all twelve). Duplicates are dropped; the order is that of
    :data:`CORRUPTIONS`.
    """
    if names is None:
        return tuple(CORRUPTIONS)
    items = [names] if isinstance(names, str) else list(names)
    tokens = [t.strip() for item in items for t in str(item).split(",") if t.strip()]
    chosen: set[str] = set()
    for token in tokens:
        key = token.lower().replace("-", "_")
        if key == "all":
            chosen.update(CORRUPTIONS)
        elif key in CORRUPTION_GROUPS:
            chosen.update(CORRUPTION_GROUPS[key])
        elif key in CORRUPTIONS:
            chosen.add(key)
        else:
            raise ConfigError(
                f"unknown corruption {token!r}; choose names ({', '.join(CORRUPTIONS)}), "
                f"groups ({', '.join(CORRUPTION_GROUPS)}) or 'all'."
            )
    if not chosen:
        raise ConfigError("no corruption selected; give names, groups or 'all'.")
    return tuple(name for name in CORRUPTIONS if name in chosen)


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def _validated(image: Any, what: str = "image") -> tuple[FloatImage, np.dtype]:
    """A float64 copy of a (H, W) or (H, W, 3) image on 0–255, and its original dtype."""
    array = np.asarray(image)
    if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
        raise InputImageError(
            f"corruptions take uint8 images or floats in [0, 255]; the {what} has dtype "
            f"{array.dtype}. Map its intensities to 0–255 first (e.g. a CT window or a "
            "percentile normalisation)."
        )
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise InputImageError(
            f"corruptions take (H, W) or (H, W, 3) images; the {what} has shape {array.shape}. "
            "Squeeze a (H, W, 1) image, drop an alpha channel, or use corrupt_volume for "
            "(D, H, W) volumes."
        )
    if array.size == 0:
        raise InputImageError(f"the {what} is empty (shape {array.shape}).")
    if array.dtype != np.uint8:
        if not np.isfinite(array).all():
            raise InputImageError(
                f"the {what} contains NaN or infinite values; replace them (e.g. with "
                "np.nan_to_num) before corrupting it."
            )
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 255.0:
            raise InputImageError(
                f"float {what}s must lie in [0, 255]; this one spans [{low:g}, {high:g}]. "
                "Normalise it to 0–255 first."
            )
    return array.astype(np.float64), array.dtype


def _restored(image: FloatImage, dtype: np.dtype) -> np.ndarray:
    """Clip to [0, 255] and return in the input's dtype (uint8 rounded to nearest)."""
    image = np.clip(image, 0.0, 255.0)
    if dtype == np.uint8:
        return np.rint(image).astype(np.uint8)
    return image.astype(dtype)


def corrupt_with_params(
    image: np.ndarray, kind: str, severity: int = PAPER_SEVERITY, seed: Seed = 0
) -> tuple[np.ndarray, Params]:
    """Like :func:`corrupt`, and also return the parameters that were drawn.

    Returns:
        The corrupted image and a dict with ``kind``, ``severity`` and the type's drawn
        parameters (e.g. ``{"factor": 1.63}`` for contrast, ``{"quality": 7}`` for JPEG).
    """
    spec = get_corruption(kind)
    value = spec.level(severity)
    clean, dtype = _validated(image)
    rng = np.random.default_rng(seed)
    degraded, params = spec.apply(clean, value, rng)
    return _restored(degraded, dtype), {"kind": kind, "severity": int(severity), **params}


def corrupt(
    image: np.ndarray, kind: str, severity: int = PAPER_SEVERITY, seed: Seed = 0
) -> np.ndarray:
    """Degrade an image with one of the 12 RobustMedSAM corruptions.

    Args:
        image: (H, W) or (H, W, 3), uint8, or float with values in [0, 255]. Not modified.
        kind: A name from :data:`CORRUPTIONS`.
        severity: 1–5; 3 is the paper's setting (see the table in the module docstring).
        seed: An int (deterministic) or a ``numpy.random.Generator`` (consumed).

    Returns:
        The corrupted image: same shape and dtype, values clipped to [0, 255] (uint8 rounded).

    Raises:
        ConfigError: unknown ``kind`` or severity outside 1–5.
        InputImageError: wrong shape or dtype, NaN, or float values outside [0, 255].
    """
    return corrupt_with_params(image, kind, severity, seed)[0]


def corrupt_volume(
    volume: np.ndarray, kind: str, severity: int = PAPER_SEVERITY, seed: Seed = 0
) -> np.ndarray:
    """Corrupt a volume slice by slice along its first axis.

    Every slice gets its own random stream, spawned from ``seed``: different per slice,
    the same on every run.

    Args:
        volume: (D, H, W) or (D, H, W, 3), uint8 or float in [0, 255].
        kind, severity, seed: as for :func:`corrupt`.

    Returns:
        The corrupted volume, same shape and dtype.
    """
    array = np.asarray(volume)
    if not (array.ndim == 3 or (array.ndim == 4 and array.shape[3] == 3)):
        raise InputImageError(
            f"corrupt_volume takes (D, H, W) or (D, H, W, 3) volumes; got shape {array.shape}. "
            "Use corrupt for 2D images."
        )
    if array.shape[0] == 0:
        raise InputImageError(f"the volume has no slices (shape {array.shape}).")
    spec = get_corruption(kind)
    spec.level(severity)  # fail on a bad severity before any work
    streams = np.random.default_rng(seed).spawn(array.shape[0])
    out = np.empty_like(array)
    for index, (plane, stream) in enumerate(zip(array, streams, strict=True)):
        try:
            out[index] = corrupt(plane, kind, severity, stream)
        except InputImageError as error:
            raise InputImageError(f"slice {index} of the volume: {error}") from None
    return out
