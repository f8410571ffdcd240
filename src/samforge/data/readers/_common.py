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


# Images larger than this many voxels (pixels × channels) are refused before anything is
# allocated: a header can claim any size. 2**30 voxels is 2 GiB as int16 (a 1024×1024×1024
# CT), far above clinical images; raise it with SAMFORGE_MAX_VOXELS for larger ones.
DEFAULT_MAX_VOXELS = 2**30


def max_voxels() -> int:
    """The voxel cap: ``SAMFORGE_MAX_VOXELS`` when set, else :data:`DEFAULT_MAX_VOXELS`."""
    value = os.environ.get("SAMFORGE_MAX_VOXELS", "")
    if not value:
        return DEFAULT_MAX_VOXELS
    if not value.isdigit() or int(value) < 1:
        raise DataError(f"SAMFORGE_MAX_VOXELS must be a positive whole number, not {value!r}.")
    return int(value)


def check_voxel_count(path: Path, shape: tuple[int, ...]) -> None:
    """Refuse an image whose (claimed) shape exceeds :func:`max_voxels`, before reading it."""
    count = math.prod(int(n) for n in shape)
    cap = max_voxels()
    if count > cap:
        raise InputImageError(
            f"{path} claims shape {tuple(shape)}, {count:,} voxels, above samforge's cap of "
            f"{cap:,} (memory would run out). If the image really is that large, raise the "
            "cap: SAMFORGE_MAX_VOXELS=<voxels>."
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
