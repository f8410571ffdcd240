"""``read_case`` and ``write_mask``: one image file (or DICOM series) in, one mask file out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import DataError, InputImageError
from ...files import atomic_path, stem_of, suffix_of
from ..record import Case
from . import dicom, image2d, nifti
from ._common import (
    as_label_map,
    check_finite,
    check_same_shape,
    file_kind,
    guess_modality,
    reading,
    smallest_label_dtype,
)


@dataclass
class _Loaded:
    """What a format reader found, before it becomes a Case."""

    image: np.ndarray
    spacing: tuple[float, ...]
    affine: np.ndarray | None = None
    modality: str | None = None  # the file says (DICOM), else None
    meta: dict = field(default_factory=dict)
    file_shape: tuple[int, ...] | None = None  # NIfTI/DICOM: shape of the (i, j, k) array


def read_case(
    image_path: str | Path,
    label_path: str | Path | None = None,
    modality: str | None = None,
    *,
    name: str | None = None,
    subject: str | None = None,
    fill_nan: float | None = None,
) -> Case:
    """Read one image (and optionally its label map) into a :class:`Case`.

    Args:
        image_path: a PNG/JPEG/BMP/TIFF image, a NIfTI file (2D or 3D), a DICOM file, or a
            folder holding one DICOM series.
        label_path: integer label map on the same grid (PNG/TIFF for 2D, NIfTI for any; a
            NIfTI label in another orientation of the same grid is reoriented to the image).
        modality: "ct", "mr", "us", "xray" or "other". Default: DICOM's Modality tag, else a
            token of the file name (``..._ct...``), else "ct" for volumes reaching −900 HU,
            else "other"; ``meta["modality_from"]`` says which.
        name, subject: case and subject ids (default: the file name without extension).
        fill_nan: replace NaN/inf voxels by this value instead of refusing the file.

    Raises:
        DataError: missing, unsupported, truncated or corrupt files; a label that does not fit.
        InputImageError: NaN voxels (without ``fill_nan``), 4D files.
    """
    path = Path(image_path)
    loaded = _read_image(path, fill_nan)
    label = None if label_path is None else _read_label(Path(label_path), loaded, path)
    case_name = name or stem_of(path)
    is_volume = len(loaded.spacing) == 3
    if modality is not None:
        found, how = modality, "argument"
    elif loaded.modality is not None:
        found, how = loaded.modality, "DICOM header"
    else:
        found, how = guess_modality(loaded.image, path.name, is_volume)
    meta = {"source": str(path), "modality_from": how, **loaded.meta}
    if label_path is not None:
        meta["label_source"] = str(label_path)
    subject = subject or str(meta.get("patient_id") or "") or case_name
    return Case(loaded.image, label, loaded.spacing, loaded.affine, found, case_name, subject, meta)


def write_mask(path: str | Path, mask: np.ndarray, reference: Case) -> None:
    """Write a mask with the geometry of ``reference``, atomically.

    The format follows the extension: ``.nii``/``.nii.gz`` (reference header and affine, so
    the mask overlays the original file voxel for voxel; also for DICOM references),
    ``.png`` (2D, 8- or 16-bit class ids), ``.tif``/``.tiff`` (2D or a 3D stack).

    Args:
        mask: integer or bool array of ``reference.spatial_shape`` ((H, W) or (D, H, W)).

    Raises:
        InputImageError: wrong shape or non-integer values.
        DataError: a format that cannot hold the mask (JPEG, PNG for a volume, ...).
    """
    path = Path(path)
    mask = _as_mask(np.asarray(mask), reference, path)
    suffix = suffix_of(path)
    writer: Callable[..., None]  # called with the path and args
    if suffix in (".nii", ".nii.gz"):
        writer = nifti.write_nifti_mask
        args: tuple = (mask, reference)
    elif suffix == ".png":
        writer, args = image2d.write_png, (mask,)
    elif suffix in (".tif", ".tiff"):
        writer, args = image2d.write_tiff, (mask,)
    else:
        raise DataError(
            f"cannot write a mask as {suffix or 'a file without extension'} ({path}): use "
            ".nii.gz (any image, keeps the geometry), .png (2D) or .tif (2D or 3D). JPEG is "
            "lossy and would change the labels."
        )
    with atomic_path(path) as temporary:
        writer(temporary, *args)


def _read_image(path: Path, fill_nan: float | None) -> _Loaded:
    kind = file_kind(path)
    if kind == "nifti":
        image, source = nifti.read_nifti(path, fill_nan)
        meta = {"nifti_header": source.header.copy()}
        shape = tuple(source.shape)
        return _Loaded(image, nifti.spacing_of(source), source.affine, None, meta, shape)
    if kind == "dicom_series":
        files = dicom.dicom_files(path)
        if not files:
            raise DataError(
                f"{path} is a folder without DICOM files; give an image file or a "
                "DICOM series folder."
            )
        image, info = dicom.read_series(files, path)
        image = check_finite(image, path, fill_nan)
        return _Loaded(
            image,
            info["spacing"],
            info["affine"],
            info["modality"],
            info["meta"],
            image.shape[::-1],
        )
    if kind == "dicom":
        image, info = dicom.read_single(path)
        return _Loaded(image, info["spacing"], None, info["modality"], info["meta"])
    if kind == "tiff":
        image, stack = image2d.read_tiff(path)
        image = check_finite(image, path, fill_nan)
        return _Loaded(image, (1.0, 1.0, 1.0) if stack else (1.0, 1.0))
    image = check_finite(image2d.read_pil(path), path, fill_nan)
    return _Loaded(image, (1.0, 1.0))


def read_label_array(path: str | Path) -> np.ndarray:
    """A label file's integer array in samforge axes, without any grid check."""
    path = Path(path)
    kind = file_kind(path)
    if kind == "nifti":
        image = nifti.load_nifti(path)
        with reading(path, "a NIfTI label map"):
            data = as_label_map(np.asanyarray(image.dataobj), path)
        return nifti.to_case_axes(data)
    if kind == "tiff":
        return image2d.read_tiff_label(path)
    if kind == "pil":
        return image2d.read_pil_label(path)
    raise DataError(f"{path}: labels are read from NIfTI, PNG, BMP or TIFF files.")


def _read_label(path: Path, loaded: _Loaded, image_path: Path) -> np.ndarray:
    kind = file_kind(path)
    shape = loaded.image.shape[: len(loaded.spacing)]
    if kind == "nifti":
        file_shape = loaded.file_shape or shape[::-1]
        label = nifti.read_nifti_label(path, loaded.affine, file_shape, image_path)
    elif kind == "tiff":
        label = image2d.read_tiff_label(path)
    elif kind == "pil":
        label = image2d.read_pil_label(path)
    else:
        raise DataError(
            f"{path}: labels are read from NIfTI, PNG, BMP or TIFF files; convert DICOM SEG "
            "or RT-STRUCT labels to NIfTI first (e.g. with dcmqi or rt-utils)."
        )
    check_same_shape(label, shape, image_path, path)
    return label


def _as_mask(mask: np.ndarray, reference: Case, path: Path) -> np.ndarray:
    if mask.shape != reference.spatial_shape:
        raise InputImageError(
            f"mask for {path} has shape {mask.shape} but the reference image "
            f"{reference.name!r} has spatial shape {reference.spatial_shape}."
        )
    if mask.dtype == bool:
        return mask.astype(np.uint8)
    if not np.issubdtype(mask.dtype, np.integer):
        if not np.issubdtype(mask.dtype, np.floating) or not np.array_equal(mask, np.rint(mask)):
            raise InputImageError(
                f"mask for {path} has non-integer values ({mask.dtype}); threshold the "
                "logits or probabilities into class ids first."
            )
    return mask.astype(smallest_label_dtype(mask))
