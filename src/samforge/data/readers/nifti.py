"""NIfTI volumes and masks (nibabel), on the file's own voxel grid.

nibabel returns the file's array indexed (i, j, k); samforge's ``Case.image`` is that array
with its axes reversed, (k, j, i) = (D, H, W): ``case.image[z, y, x] == nifti[x, y, z]``. The
transpose is its own inverse and copies nothing. Volumes are never reoriented (to RAS or
anything else): a mask written with :func:`write_nifti_mask` reuses the reference's header,
affine, qform and sform, so viewers overlay it on the original without resampling.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel import orientations

from ...errors import DataError, InputImageError
from ..record import Case
from ._common import as_label_map, check_finite, check_image_size, reading

# Two grids are the same when their affines agree to 0.01 mm: far below any voxel size,
# far above the float32 rounding of header fields.
AFFINE_ATOL = 1e-2


def to_case_axes(array: np.ndarray) -> np.ndarray:
    """File array (i, j[, k]) → samforge axes ([k,] j, i); also the inverse mapping."""
    return array.transpose(tuple(range(array.ndim))[::-1])


to_file_axes = to_case_axes


def load_nifti(path: Path) -> nib.Nifti1Image:
    """The image object (header read, data not yet), as a 2D or 3D image.

    Trailing singleton axes, as in (X, Y, Z, 1), are dropped; anything truly 4D is refused.
    """
    with reading(path, "NIfTI"):
        image = nib.load(path)
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):
        raise DataError(f"{path} is a {type(image).__name__}, not a NIfTI-1/2 image.")
    shape = image.shape
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) > 3:
        raise InputImageError(
            f"{path} is {len(shape)}D with shape {image.shape} (a time series or several "
            "channels): samforge reads one 2D or 3D image per file. Split it first, e.g. "
            "nib.load(path).slicer[..., 0] for the first volume, or fslsplit."
        )
    if len(shape) < 2:
        raise InputImageError(f"{path} has shape {image.shape}: not an image.")
    _check_size(path, image)
    if shape != image.shape:
        image = image.slicer[(slice(None),) * len(shape) + (0,) * (len(image.shape) - len(shape))]
    return image


# Deflate expands at most 1032-fold (zlib's technical notes), so a .nii.gz smaller than
# its claimed data / 1032 cannot hold it.
_DEFLATE_MAX_RATIO = 1032


def _check_size(path: Path, image: nib.Nifti1Image) -> None:
    """Refuse a header whose shape exceeds the voxel cap, or whose data cannot fit in the
    file, before nibabel allocates the array."""
    check_image_size(path, image.shape, (image.shape[0], image.shape[1]))
    header = image.header
    needed = (
        int(header.get_data_offset()) + math.prod(image.shape) * header.get_data_dtype().itemsize
    )
    size = path.stat().st_size
    compressed = str(path).lower().endswith(".gz")
    if size * (_DEFLATE_MAX_RATIO if compressed else 1) < needed:
        raise DataError(
            f"{path} is truncated: its header claims shape {image.shape} "
            f"({header.get_data_dtype()}), {needed:,} bytes, but the file holds {size:,} bytes"
            f"{' compressed' if compressed else ''}. Re-export or re-download it."
        )


def read_nifti(path: Path, fill_nan: float | None = None) -> tuple[np.ndarray, nib.Nifti1Image]:
    """(D, H, W) or (H, W) image in samforge axes, and the nibabel image it came from."""
    image = load_nifti(path)
    with reading(path, "NIfTI"):
        data = np.asanyarray(image.dataobj)
    if data.dtype == np.float64 and image.get_data_dtype() != np.float64:
        data = data.astype(np.float32)  # float64 only from scl_slope/inter: halve the memory
    data = check_finite(data, path, fill_nan)
    return to_case_axes(data), image


def spacing_of(image: nib.Nifti1Image) -> tuple[float, ...]:
    """Voxel sizes from the header in samforge axis order; unset (≤ 0) sizes count as 1."""
    zooms = image.header.get_zooms()[: len(image.shape)]
    return tuple(float(z) if z > 0 else 1.0 for z in zooms)[::-1]


def read_nifti_label(
    path: Path, affine: np.ndarray | None, file_shape: tuple[int, ...], image_path: Path
) -> np.ndarray:
    """A NIfTI label map on the image's grid, in samforge axes.

    Args:
        affine: the image's file affine, or None for images without geometry (PNG).
        file_shape: the image's file-array shape (i, j[, k]).

    A label stored in another orientation of the same grid (axes flipped or permuted, as
    dcm2niix does to DICOM rows) is brought onto the image's voxel order; a label on a
    different grid is refused.
    """
    image = load_nifti(path)
    with reading(path, "a NIfTI label map"):
        data = as_label_map(np.asanyarray(image.dataobj), path)
    if affine is None or _has_no_geometry(image):
        if affine is not None:
            warnings.warn(
                f"{path} has no geometry (qform and sform unset); assuming the "
                f"grid of {image_path}.",
                stacklevel=3,
            )
        return _checked(to_case_axes(data), file_shape[::-1], path, image_path)
    if data.shape == tuple(file_shape) and np.allclose(image.affine, affine, atol=AFFINE_ATOL):
        return to_case_axes(data)
    moved, moved_affine = _reorient(data, image.affine, affine)
    if moved.shape == tuple(file_shape) and np.allclose(moved_affine, affine, atol=AFFINE_ATOL):
        return to_case_axes(moved)
    raise DataError(
        f"label {path} (shape {image.shape}) is not on the voxel grid of {image_path} "
        f"(shape {tuple(file_shape)}): their affines differ beyond axis flips and "
        f"permutations.\nlabel affine:\n{np.round(image.affine, 3)}\nimage affine:\n"
        f"{np.round(affine, 3)}\nResample the label onto the image first (nearest neighbour)."
    )


def write_nifti_mask(path: Path, mask: np.ndarray, reference: Case) -> None:
    """Write ``mask`` (samforge axes) to ``path`` with the reference's geometry.

    With a NIfTI reference its header is reused (qform, sform, codes, units), so the mask is
    voxel for voxel aligned with the original file; a DICOM reference's affine becomes qform
    and sform with code 1 (scanner); a plain 2D image gets a diagonal affine of its spacing.
    """
    data = np.ascontiguousarray(to_file_axes(mask))
    header = reference.meta.get("nifti_header")
    if reference.affine is not None and header is not None:
        image = nib.Nifti1Image(data, reference.affine, header=header.copy())
    else:
        affine = reference.affine
        if affine is None:
            affine = np.diag([*reference.spacing[::-1], *[1.0] * (4 - mask.ndim)])
        image = nib.Nifti1Image(data, affine)
        image.header.set_qform(affine, code=1)
        image.header.set_sform(affine, code=1)
        image.header.set_xyzt_units("mm")
    image.set_data_dtype(data.dtype)
    image.header.set_slope_inter(1.0, 0.0)
    image.header["cal_min"], image.header["cal_max"] = 0, float(data.max(initial=0))
    image.header["descrip"] = b"samforge mask"
    nib.save(image, path)


def _has_no_geometry(image: nib.Nifti1Image) -> bool:
    header = image.header
    return int(header["qform_code"]) == 0 and int(header["sform_code"]) == 0


def _reorient(
    data: np.ndarray, affine: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``data`` with axes flipped/permuted to follow ``target``'s orientation, and its affine."""
    squeeze = data.ndim == 2
    if squeeze:
        data = data[..., None]
    transform = orientations.ornt_transform(
        orientations.io_orientation(affine), orientations.io_orientation(target)
    )
    moved = orientations.apply_orientation(data, transform)
    moved_affine = affine @ orientations.inv_ornt_aff(transform, data.shape)
    return (moved[..., 0] if squeeze else moved), moved_affine


def _checked(label: np.ndarray, shape: tuple[int, ...], path: Path, image_path: Path) -> np.ndarray:
    if label.shape != tuple(shape):
        raise DataError(
            f"label {path} has shape {label.shape} but image {image_path} has spatial shape "
            f"{tuple(shape)} (in samforge's axis order); they do not belong together."
        )
    return label
