"""The one intensity normalisation: any image → SAM's 0–255, three-channel float input.

Used by the Predictor, training and evaluation alike. Every mode is a clipped linear map of a
range [low, high] onto [0, 255] (or the identity for 8-bit data):

==============  ============================================================================
mode            range mapped to 0–255
==============  ============================================================================
``auto``        uint8 input: unchanged. ``modality="ct"`` (or a ``window`` given): a CT
                window, soft tissue by default. Anything else: ``percentile``.
``percentile``  the ``percentiles`` (default 1st and 99th) of all values, clipped
                (MedicoSAM's training normalisation).
``ct``          window level L, width W: [L − W/2, L + W/2] in HU. Presets (L/W): soft_tissue
                40/400, lung −600/1500, bone 400/1800, brain 40/80; or ``(level, width)``.
``mr``          the 0.5th–99.5th percentiles of the NONZERO voxels, clipped; voxels that
                were 0 stay 0 (MedSAM's MR pre-processing).
``none``        unchanged; values must already lie in [0, 255] (alias ``uint8``).
==============  ============================================================================

Degenerate ranges: when the two percentiles coincide (an image that is mostly one value)
the full min–max range is used instead; a constant image maps to 0 everywhere, never NaN.

Volumes get one mapping for all their slices (per-slice percentiles would make the same
tissue look different from slice to slice): :func:`volume_normalizer` computes it over the
whole (D, H, W) volume. :func:`normalize_intensity` on a single slice computes the range from
that slice alone. :class:`IntensitySettings` holds a user's choice (mode and CT window) and
gives the mapping of a volume, an image or a case; every path that feeds images to a model
(``samforge segment``, the Predictor, propagation, the evaluation runs, the 3D protocol and
the training Dataset) takes its mapping from there, so none forgets the window or the
modality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, InputImageError
from .record import Case

WINDOWS: dict[str, tuple[float, float]] = {
    "soft_tissue": (40.0, 400.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}
MODES: tuple[str, ...] = ("auto", "percentile", "ct", "mr", "none", "uint8")
MR_PERCENTILES = (0.5, 99.5)
ACCEPTED_SHAPES = "(H, W), (H, W, 1), (H, W, 3) or (H, W, 4)"


@dataclass(frozen=True)
class IntensityMapping:
    """A clipped linear map of [low, high] onto [0, 255]; ``low is None`` means identity.

    ``keep_zero``: pixels that are exactly 0 in the input stay 0 (MR background).
    """

    low: float | None
    high: float | None
    keep_zero: bool = False

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(H, W[, 1|3|4]) image → (H, W, 3) float32 in [0, 255]."""
        return _to_rgb(self.apply(validate_image(image)))

    def apply(self, values: np.ndarray) -> np.ndarray:
        """The map on an array of any shape (no channel handling), float32 in [0, 255]."""
        if self.low is None or self.high is None:
            return values.astype(np.float32, copy=False)
        if self.high <= self.low:
            return np.zeros(values.shape, dtype=np.float32)
        scale = 255.0 / (self.high - self.low)
        if np.isfinite(np.float32(scale)):
            out = (values.astype(np.float32) - np.float32(self.low)) * np.float32(scale)
        else:  # a span of subnormal floats: 255 / span overflows float32 (0 · inf = NaN)
            out = ((values.astype(np.float64) - self.low) * scale).astype(np.float32)
        np.clip(out, 0.0, 255.0, out=out)
        if self.keep_zero:
            out[values == 0] = 0.0
        return out


@dataclass(frozen=True)
class IntensitySettings:
    """How intensities map to SAM's input, as a user chose it: ``mode`` (see the module
    table) and the CT ``window`` (a preset name or (level, width)). Both are checked when
    the settings are made, so a typo fails before any image is read.
    """

    mode: str = "auto"
    window: str | tuple[float, float] | None = None

    def __post_init__(self) -> None:
        _mode(self.mode)
        if self.window is not None:
            ct_window(self.window)

    def volume_mapping(self, volume: np.ndarray, modality: str | None = None) -> IntensityMapping:
        """The one mapping of every slice of a (D, H, W) volume (see :func:`volume_normalizer`)."""
        return volume_normalizer(volume, mode=self.mode, window=self.window, modality=modality)

    def image_mapping(self, image: np.ndarray, modality: str | None = None) -> IntensityMapping:
        """The mapping of one (H, W[, C]) image, from that image's values alone."""
        return intensity_mapping(validate_image(image), self.mode, self.window, modality=modality)

    def case_mapping(self, case: Case) -> IntensityMapping:
        """A volume's one mapping or a 2D image's own, for the case's modality."""
        if case.is_volume:
            return self.volume_mapping(case.image, case.modality)
        return self.image_mapping(case.image, case.modality)


def normalize_intensity(
    image: np.ndarray,
    *,
    mode: str = "auto",
    window: str | tuple[float, float] | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
    modality: str | None = None,
) -> np.ndarray:
    """Map a 2D image to SAM's input range.

    Args:
        image: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) (alpha dropped) of any integer or
            float dtype.
        mode: see the module table.
        window: CT window preset name or (level, width), for ``mode="ct"`` (or "auto").
        percentiles: (low, high) percentiles for ``mode="percentile"``.
        modality: the image's modality; "ct" makes ``auto`` use a CT window.

    Returns:
        (H, W, 3) float32 array with values in [0, 255].

    Raises:
        InputImageError: wrong shape or dtype, NaN/inf values, out-of-range ``none`` input.
        ConfigError: unknown mode or window.
    """
    image = validate_image(image)
    return _to_rgb(intensity_mapping(image, mode, window, percentiles, modality).apply(image))


def volume_normalizer(
    volume: np.ndarray,
    *,
    mode: str = "auto",
    window: str | tuple[float, float] | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
    modality: str | None = None,
) -> IntensityMapping:
    """One mapping for a whole (D, H, W) volume (also accepts a 2D image).

    ``volume_normalizer(vol, modality="mr")(vol[12])`` is slice 12 as (H, W, 3) float32.
    """
    volume = np.asarray(volume)
    if volume.ndim not in (2, 3):
        raise InputImageError(f"a volume must be (D, H, W); got shape {volume.shape}.")
    _check_values(volume)
    return intensity_mapping(volume, mode, window, percentiles, modality)


def intensity_mapping(
    values: np.ndarray,
    mode: str = "auto",
    window: str | tuple[float, float] | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
    modality: str | None = None,
) -> IntensityMapping:
    """The :class:`IntensityMapping` that ``mode`` chooses for ``values`` (already checked)."""
    mode = _mode(mode)
    if mode == "auto":
        mode = _auto_mode(values, window, modality)
    if mode == "none":
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if low < 0 or high > 255:
            raise InputImageError(
                f"intensity mode 'none' needs values in [0, 255]; these span [{low:g}, "
                f"{high:g}]. Use mode='percentile', 'ct' or 'mr' to map them."
            )
        return IntensityMapping(None, None)
    if mode == "ct":
        level, width = ct_window(window)
        return IntensityMapping(level - width / 2, level + width / 2)
    if mode == "mr":
        nonzero = values[values != 0]
        low, high = _robust_range(nonzero, MR_PERCENTILES) if nonzero.size else (0.0, 0.0)
        return IntensityMapping(low, high, keep_zero=True)
    return IntensityMapping(*_robust_range(values, percentiles))


def ct_window(window: str | tuple[float, float] | None) -> tuple[float, float]:
    """(level, width) of a preset name or an explicit pair; None is soft tissue."""
    if window is None:
        return WINDOWS["soft_tissue"]
    if isinstance(window, str):
        key = window.strip().lower().replace("-", "_").replace(" ", "_")
        if key not in WINDOWS:
            raise ConfigError(
                f"unknown CT window {window!r}; use one of {', '.join(WINDOWS)} or (level, width)."
            )
        return WINDOWS[key]
    try:
        level, width = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ConfigError(
            f"a CT window is a preset name or (level, width); got {window!r}."
        ) from None
    if not width > 0:
        raise ConfigError(f"the CT window width must be positive; got {width}.")
    return level, width


def _mode(mode: str) -> str:
    key = str(mode).strip().lower()
    if key not in MODES:
        raise ConfigError(f"unknown intensity mode {mode!r}; use one of {', '.join(MODES)}.")
    return "none" if key == "uint8" else key


def _auto_mode(values: np.ndarray, window, modality: str | None) -> str:
    if values.dtype == np.uint8:
        return "none"
    if window is not None or str(modality).strip().lower() == "ct":
        return "ct"
    return "percentile"


def _robust_range(values: np.ndarray, percentiles: tuple[float, float]) -> tuple[float, float]:
    if values.size == 0:
        return 0.0, 0.0
    low, high = (float(v) for v in np.percentile(values, percentiles))
    if high <= low:  # mostly one value: fall back to the full range
        low, high = float(values.min()), float(values.max())
    return low, high


def validate_image(image: np.ndarray) -> np.ndarray:
    """A 2D image as (H, W) or (H, W, 3): checked, (H, W, 1) squeezed, alpha dropped.

    Raises:
        InputImageError: another shape, an empty image, a non-numeric or bool dtype, NaN/inf.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] in (1, 3, 4):
        image = image[..., 0] if image.shape[-1] == 1 else image[..., :3]
    elif image.ndim != 2:
        hint = " For a volume, pass one slice, e.g. volume[12]." if image.ndim == 3 else ""
        raise InputImageError(f"image has shape {image.shape}; expected {ACCEPTED_SHAPES}.{hint}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputImageError(f"image has shape {image.shape}: it is empty.")
    _check_values(image)
    return image


def _check_values(image: np.ndarray) -> None:
    if image.dtype == bool or not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
        raise InputImageError(
            f"image has dtype {image.dtype}; expected an integer or float intensity image."
        )
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        count = int(image.size - np.isfinite(image).sum())
        raise InputImageError(
            f"image has {count} NaN or infinite values; fill them first, e.g. "
            "np.nan_to_num(image, nan=0.0)."
        )


def _to_rgb(values: np.ndarray) -> np.ndarray:
    if values.ndim == 3:
        return np.ascontiguousarray(values, dtype=np.float32)
    return np.repeat(values[..., None], 3, axis=-1)
