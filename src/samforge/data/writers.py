"""Writing images and volumes that are data, not masks (masks: :func:`~.readers.write_mask`).

Every file is written to a temporary name beside its target and renamed into place
(:mod:`samforge.files`), so an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files import atomic_path, suffix_of


def write_image(path: str | Path, array: np.ndarray) -> Path:
    """Write a 2D image as PNG (uint8/uint16, grey or RGB) or TIFF (any dtype, values kept).

    Args:
        path: ``.png``, ``.tif`` or ``.tiff``.
        array: (H, W) or (H, W, 3).

    Raises:
        DataError: another suffix, or a PNG of a dtype PNG cannot hold.
    """
    path = Path(path)
    suffix = suffix_of(path)
    if suffix in (".tif", ".tiff"):
        import tifffile

        with atomic_path(path) as temporary:
            tifffile.imwrite(temporary, array)
        return path
    if suffix != ".png":
        raise DataError(
            f"cannot write an image as {suffix or 'no suffix'} ({path}): use .png or .tif."
        )
    if array.dtype not in (np.uint8, np.uint16):
        raise DataError(
            f"a PNG holds 8- or 16-bit integers, not {array.dtype} ({path}); write .tif to "
            "keep the values, or convert them to uint8 first."
        )
    from PIL import Image

    with atomic_path(path) as temporary:
        Image.fromarray(array).save(temporary, format="PNG")
    return path


def write_volume_nifti(path: str | Path, volume: np.ndarray, affine: np.ndarray) -> Path:
    """Write a (D, H, W) volume as NIfTI: stored as (x, y, z) = (W, H, D), the inverse of the
    readers' axis rule; ``affine`` maps (column, row, slice) to RAS mm (qform and sform,
    code 1, units mm)."""
    import nibabel as nib

    image = nib.Nifti1Image(np.ascontiguousarray(volume.transpose(2, 1, 0)), affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    path = Path(path)
    with atomic_path(path) as temporary:
        nib.save(image, temporary)
    return path
