"""Size caps, checked from file headers before any pixel is read: an image opened from the
data folder or uploaded may hold at most ``max_voxels`` voxels, an upload at most
``max_upload_bytes`` bytes in at most ``max_files`` files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..data.readers._common import file_kind, reading
from ..errors import LimitError
from .settings import MIB, ServerSettings


def count_voxels(path: Path) -> int:
    """The number of voxels (channels included) of an image file or DICOM series folder,
    from its header(s) alone."""
    kind = file_kind(path)
    if kind == "nifti":
        import nibabel as nib

        with reading(path, "NIfTI"):
            image: Any = nib.load(path)  # the header alone: no voxel is read
            return math.prod(image.shape)
    if kind == "pil":
        from PIL import Image

        with reading(path, "an image (Pillow)"), Image.open(path) as image:
            return image.width * image.height * len(image.getbands())
    if kind == "tiff":
        import tifffile

        with reading(path, "TIFF"), tifffile.TiffFile(path) as tiff:
            return sum(math.prod(series.shape) for series in tiff.series)
    files = [path] if kind == "dicom" else _dicom_files(path)
    return sum(_dicom_voxels(file) for file in files)


def check_voxels(path: Path, settings: ServerSettings, name: str) -> None:
    voxels = count_voxels(path)
    if voxels > settings.max_voxels:
        raise LimitError(
            f"{name} has {voxels:,} voxels; this annotator opens at most "
            f"{settings.max_voxels:,} (start samforge serve with a larger --max-voxels, or "
            "crop or downsample the image first)."
        )


def check_upload_size(length: int | None, settings: ServerSettings) -> None:
    if length is None:
        raise LimitError(
            "an upload needs a Content-Length header (send the files as one multipart form)."
        )
    if length > settings.max_upload_bytes:
        raise LimitError(
            f"the upload is {length / MIB:.1f} MiB; this annotator accepts at most "
            f"{settings.max_upload_bytes / MIB:.1f} MiB (start samforge serve with a larger "
            "--max-upload-mb, or put the file in its data folder)."
        )


def _dicom_files(folder: Path) -> list[Path]:
    from ..data.readers.dicom import dicom_files

    return dicom_files(folder)


def _dicom_voxels(path: Path) -> int:
    import pydicom

    with reading(path, "DICOM"):
        header = pydicom.dcmread(path, stop_before_pixels=True)
    frames = int(header.get("NumberOfFrames", 1) or 1)
    samples = int(header.get("SamplesPerPixel", 1) or 1)
    return int(header.get("Rows", 0)) * int(header.get("Columns", 0)) * frames * samples
