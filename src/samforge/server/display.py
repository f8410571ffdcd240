"""What the page needs to draw a case: planes as raw bytes, a default window, orientation.

Planes travel as little-endian binary (float32 intensities, uint8 RGB for colour images,
uint16 label maps), never pickled; their shape goes in the ``X-Shape`` header.
"""

from __future__ import annotations

import numpy as np

from ..data import Case, IntensityMapping
from ..errors import InputImageError

AXES = (0, 1, 2)


def plane_of(case: Case, axis: int, index: int) -> np.ndarray:
    """Plane ``index`` across ``axis`` of a volume ((H, W), (D, W) or (D, H)), or the 2D
    image itself (axis 0, index 0)."""
    if not case.is_volume:
        if (axis, index) != (0, 0):
            raise InputImageError(
                f"a 2D image has only plane (axis 0, index 0); got {axis, index}."
            )
        return case.image
    if axis not in AXES:
        raise InputImageError(f"axis must be 0, 1 or 2; got {axis}.")
    size = case.image.shape[axis]
    if not 0 <= index < size:
        raise InputImageError(f"index {index} is outside [0, {size}) on axis {axis}.")
    return np.take(case.image, index, axis=axis)


def plane_bytes(case: Case, axis: int, index: int) -> tuple[bytes, tuple[int, ...], str]:
    """(bytes, shape, dtype name) of a plane: float32 grey values, or uint8 RGB for colour
    images (other colour dtypes scaled to 0–255 by their range)."""
    plane = plane_of(case, axis, index)
    if plane.ndim == 3:  # a colour 2D image: drop alpha, show as 8-bit RGB
        rgb = plane[..., :3]
        if rgb.dtype != np.uint8:
            low, high = float(rgb.min()), float(rgb.max())
            rgb = np.clip((rgb - low) * (255.0 / max(high - low, 1e-12)), 0, 255)
        data = np.ascontiguousarray(rgb, dtype=np.uint8)
        return data.tobytes(), data.shape, "uint8"
    data = np.ascontiguousarray(plane, dtype="<f4")
    return data.tobytes(), data.shape, "float32"


def label_bytes(labels: np.ndarray) -> tuple[bytes, tuple[int, ...], str]:
    data = np.ascontiguousarray(labels, dtype="<u2")
    return data.tobytes(), data.shape, "uint16"


def display_info(case: Case, mapping: IntensityMapping) -> dict:
    """The default window (what the model sees), the value range, and per view whether to
    flip rows and columns so that anterior/superior are up and the patient's right is on
    the left (radiological), as far as the affine tells."""
    image = case.image
    low, high = float(image.min()), float(image.max())
    window = (
        (low, high) if mapping.low is None or mapping.high is None else (mapping.low, mapping.high)
    )
    return {
        "range": [low, high],
        "window": [float(window[0]), float(window[1])],
        "flips": view_flips(case),
    }


def view_flips(case: Case) -> list[list[bool]]:
    """[flip rows, flip columns] of the views across axes 0, 1 and 2.

    A view across axis 0 shows (rows, columns) = file axes (j, i); across axis 1 (k, i);
    across axis 2 (k, j), with the file axes (i, j, k) of :attr:`Case.affine`. An axis is
    flipped when its dominant world direction is positive (R, A or S), which puts A and S
    up and R on the left.
    """
    if case.affine is None or not case.is_volume:
        return [[False, False] for _ in AXES]
    directions = np.asarray(case.affine, dtype=float)[:3, :3]

    def positive(file_axis: int) -> bool:
        column = directions[:, file_axis]
        return bool(column[np.argmax(np.abs(column))] > 0)

    views = ((1, 0), (2, 0), (2, 1))
    return [[positive(rows), positive(cols)] for rows, cols in views]
