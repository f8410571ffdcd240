"""The entry points: corrupt an image (:func:`corrupt`, :func:`corrupt_with_params`) or a
volume slice by slice (:func:`corrupt_volume`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import InputImageError
from .record import PAPER_SEVERITY, FloatImage, Params
from .selection import get_corruption

Seed = int | np.random.Generator


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
