"""Shared pieces of the readers: file kinds, error wrapping, label checks."""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ...errors import DataError, InputImageError, SamforgeError
from ...files import suffix_of

NIFTI_SUFFIXES = (".nii.gz", ".nii")
PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
TIFF_SUFFIXES = (".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
IMAGE_SUFFIXES = NIFTI_SUFFIXES + PIL_SUFFIXES + TIFF_SUFFIXES + DICOM_SUFFIXES
SUPPORTED_TEXT = (
    "NIfTI (.nii, .nii.gz), PNG, JPEG, BMP, TIFF (.tif, .tiff), DICOM files (.dcm or no "
    "extension) and DICOM series folders"
)


def is_dicom_file(path: Path) -> bool:
    """True for files with the DICOM preamble (``DICM`` at byte 128)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def file_kind(path: Path) -> str:
    """``"nifti"``, ``"pil"``, ``"tiff"``, ``"dicom"`` (one file) or ``"dicom_series"`` (a folder).

    Raises:
        DataError: the path does not exist or its format is not supported.
    """
    if not path.exists():
        raise DataError(f"{path} does not exist; check the path.")
    if path.is_dir():
        return "dicom_series"
    check_regular_file(path)
    suffix = suffix_of(path)
    if suffix in NIFTI_SUFFIXES:
        return "nifti"
    if suffix in PIL_SUFFIXES:
        return "pil"
    if suffix in TIFF_SUFFIXES:
        return "tiff"
    if suffix in DICOM_SUFFIXES or is_dicom_file(path):
        return "dicom"
    raise DataError(
        f"{path}: unsupported file type {suffix or '(no extension)'!r}. samforge reads "
        f"{SUPPORTED_TEXT}. Convert other formats (e.g. .mha, .nrrd) to NIfTI first, for "
        "instance with SimpleITK: sitk.WriteImage(sitk.ReadImage(src), 'out.nii.gz')."
    )


def check_regular_file(path: Path) -> None:
    """Refuse what is not a regular file (a FIFO, socket or device named like an image):
    opening a FIFO blocks until someone writes into it, a device never ends."""
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        kind = (
            "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        )
        raise DataError(f"{path} is {kind}, not a regular file; samforge reads only files.")


# Caps checked against what a header claims, before anything is allocated (a header can
# claim any size). Volumes: 2**30 voxels, 2 GiB as int16 (a 1024³ CT), far above clinical
# scans. Planes (a 2D image, or one slice): 2**26 pixels (8192 × 8192); segmenting one
# costs about 20 bytes per pixel (docs/reliability.md), so the cap bounds memory near
# 2 GB. Both are raised with environment variables for larger images.
DEFAULT_MAX_VOXELS = 2**30
DEFAULT_MAX_PIXELS = 2**26


def _cap(variable: str, default: int) -> int:
    value = os.environ.get(variable, "")
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise DataError(f"{variable} must be a positive whole number, not {value!r}.")
    return int(value)


def max_voxels() -> int:
    """The voxel cap of a whole image: ``SAMFORGE_MAX_VOXELS``, else :data:`DEFAULT_MAX_VOXELS`."""
    return _cap("SAMFORGE_MAX_VOXELS", DEFAULT_MAX_VOXELS)


def max_pixels() -> int:
    """The pixel cap of one plane: ``SAMFORGE_MAX_PIXELS``, else :data:`DEFAULT_MAX_PIXELS`."""
    return _cap("SAMFORGE_MAX_PIXELS", DEFAULT_MAX_PIXELS)


def check_image_size(path: Path, shape: tuple[int, ...], plane: tuple[int, int]) -> None:
    """Refuse an image whose claimed ``shape`` (any axis order, channels included) exceeds
    :func:`max_voxels`, or whose (H, W) ``plane`` exceeds :func:`max_pixels`, before reading."""
    voxels, pixels = math.prod(int(n) for n in shape), int(plane[0]) * int(plane[1])
    for count, cap, variable, what in (
        (voxels, max_voxels(), "SAMFORGE_MAX_VOXELS", "voxels"),
        (pixels, max_pixels(), "SAMFORGE_MAX_PIXELS", "pixels in a plane"),
    ):
        if count > cap:
            raise InputImageError(
                f"{path} claims shape {tuple(shape)}, {count:,} {what}, above samforge's cap "
                f"of {cap:,} (memory would run out). If the image really is that large, raise "
                f"the cap: {variable}=<{what.split()[0]}>."
            )


@contextmanager
def reading(path: Path, what: str) -> Iterator[None]:
    """Turn any library error raised while reading ``path`` into a :class:`DataError`."""
    try:
        yield
    except SamforgeError:
        raise
    except MemoryError:
        raise
    except Exception as error:
        raise DataError(
            f"cannot read {path} as {what}: {type(error).__name__}: {error}. The file may be "
            "truncated or corrupt, or not really a file of that type; re-export or re-download it."
        ) from error


_NAME_MODALITIES = {
    "ct": "ct",
    "mr": "mr",
    "mri": "mr",
    "t1": "mr",
    "t1w": "mr",
    "t2": "mr",
    "t2w": "mr",
    "flair": "mr",
    "dwi": "mr",
    "adc": "mr",
    "us": "us",
    "ultrasound": "us",
    "xray": "xray",
    "cxr": "xray",
}


def modality_from_name(name: str) -> str | None:
    """Modality named by a token of a file name (``example_ct_sm`` → ``ct``), else None."""
    for token in re.split(r"[^a-z0-9]+", name.lower()):
        if token in _NAME_MODALITIES:
            return _NAME_MODALITIES[token]
    return None


def guess_modality(image: np.ndarray, name: str, is_volume: bool) -> tuple[str, str]:
    """(modality, how it was found) for files that do not say: the file name, then HU.

    Only volumes are judged by intensity: integer data reaching −900 or below is air in
    Hounsfield units, which no MR or ultrasound produces.
    """
    from_name = modality_from_name(name)
    if from_name is not None:
        return from_name, "file name"
    if is_volume and image.size and np.issubdtype(image.dtype, np.number):
        if float(image.min()) <= -900.0:
            return "ct", "intensities (air at −1000 HU)"
    return "other", "default"


def check_finite(image: np.ndarray, path: Path, fill_nan: float | None) -> np.ndarray:
    """Refuse NaN/inf voxels with a message naming the file, or fill them if asked."""
    if not np.issubdtype(image.dtype, np.floating):
        return image
    finite = np.isfinite(image)
    if finite.all():
        return image
    if fill_nan is not None:
        return np.where(finite, image, np.asarray(fill_nan, dtype=image.dtype))
    count = int(image.size - finite.sum())
    raise InputImageError(
        f"{path} has {count} NaN or infinite voxels. Fill them first (e.g. "
        "np.nan_to_num(image, nan=0.0)) or read with fill_nan=0."
    )


def as_label_map(array: np.ndarray, path: Path) -> np.ndarray:
    """Integer label map from any numeric array; float files must hold whole numbers."""
    if array.dtype == bool:
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise DataError(f"{path}: a label map must be numeric; got dtype {array.dtype}.")
    rounded = np.rint(array)
    if not np.isfinite(array).all() or np.abs(array - rounded).max(initial=0.0) > 1e-3:
        raise DataError(
            f"{path} holds non-integer values, so it is not a label map (a probability map?). "
            "Threshold or argmax it into integer classes first."
        )
    return rounded.astype(smallest_label_dtype(rounded))


def smallest_label_dtype(label: np.ndarray) -> type[np.integer]:
    """uint8 when it fits, then uint16, else int32."""
    low = float(label.min()) if label.size else 0.0
    high = float(label.max()) if label.size else 0.0
    if low >= 0 and high <= 255:
        return np.uint8
    if low >= 0 and high <= 65535:
        return np.uint16
    return np.int32


def check_same_shape(label: np.ndarray, shape: tuple[int, ...], image: Path, label_path: Path):
    """Refuse a label whose spatial shape differs from the image's."""
    if label.shape != tuple(shape):
        raise DataError(
            f"label {label_path} has shape {label.shape} but image {image} has spatial shape "
            f"{tuple(shape)} (in samforge's axis order). Make sure the label belongs to this "
            "image and has not been resampled or cropped."
        )
