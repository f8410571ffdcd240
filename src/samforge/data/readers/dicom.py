"""DICOM series (a folder of single-frame files) and single DICOM images, with pydicom.

A series becomes a (D, H, W) volume: slices sorted by their position along the slice normal
(ImagePositionPatient · (row cosine × column cosine)), not by file name or InstanceNumber;
H = Rows, W = Columns as stored. RescaleSlope/Intercept (the modality LUT) is applied, so CT
comes out in Hounsfield units. ``Case.affine`` maps the array (column, row, slice) — the
volume transposed to (W, H, D), exactly what a NIfTI file of it would hold — to RAS
millimetres (DICOM's LPS with x and y negated), as dcm2niix and nibabel do. A mask written
as NIfTI with this affine therefore lies on the DICOM series in any viewer.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut
from pydicom.pixels.utils import get_expected_length

from ...errors import DataError
from ._common import DICOM_SUFFIXES, is_dicom_file, reading

_MODALITIES = {
    "CT": "ct",
    "MR": "mr",
    "US": "us",
    "CR": "xray",
    "DX": "xray",
    "MG": "xray",
    "XA": "xray",
    "RF": "xray",
    "RG": "xray",
    "IO": "xray",
    "PX": "xray",
}
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def dicom_files(folder: Path) -> list[Path]:
    """DICOM files under ``folder`` (recursively), by name; DICOMDIR indexes excluded."""
    files = [
        path
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        and path.name.upper() != "DICOMDIR"
        and not path.name.startswith(".")
        and (path.suffix.lower() in DICOM_SUFFIXES or is_dicom_file(path))
    ]
    return files


def series_key(dataset: Dataset) -> tuple:
    """Files with the same key form one volume: series UID, size and orientation."""
    orientation = tuple(np.round(_floats(dataset, "ImageOrientationPatient", 6), 4))
    return (
        str(dataset.get("SeriesInstanceUID", "")),
        int(dataset.get("Rows", 0)),
        int(dataset.get("Columns", 0)),
        orientation,
    )


def group_series(files: Iterable[Path]) -> dict[tuple, list[Path]]:
    """Files grouped into series (headers only, no pixel data read)."""
    groups: dict[tuple, list[Path]] = defaultdict(list)
    for path in files:
        with reading(path, "DICOM"):
            header = pydicom.dcmread(path, stop_before_pixels=True)
        if "Rows" not in header:
            continue  # structured reports, presentation states: no image
        groups[series_key(header)].append(path)
    return dict(groups)


def patient_id(path: Path) -> str:
    """PatientID of a DICOM file ('' when unset)."""
    with reading(path, "DICOM"):
        header = pydicom.dcmread(path, stop_before_pixels=True)
    return str(header.get("PatientID", "") or "")


def modality_of(dataset: Dataset) -> str:
    return _MODALITIES.get(str(dataset.get("Modality", "")).upper(), "other")


def read_series(files: Sequence[Path], origin: Path) -> tuple[np.ndarray, dict]:
    """(D, H, W) volume of one series, with ``spacing``, ``affine``, ``modality``, ``meta``.

    Raises:
        DataError: files of several series, two slices at one position, unreadable pixels.
    """
    datasets: list[Dataset] = []
    for path in files:
        with reading(path, "DICOM"):
            datasets.append(pydicom.dcmread(path))
    datasets = [d for d in datasets if "Rows" in d]
    if not datasets:
        raise DataError(f"{origin} holds no DICOM images.")
    keys = {series_key(d) for d in datasets}
    if len(keys) > 1:
        raise DataError(
            f"{origin} mixes {len(keys)} DICOM series (different series UIDs, sizes or "
            "orientations). Point samforge at a folder with one series, or open the parent "
            "folder with open_dataset() to get one case per series."
        )
    for path, dataset in zip(files, datasets, strict=False):
        if int(dataset.get("NumberOfFrames", 1) or 1) > 1:
            raise DataError(
                f"{path} is a multi-frame DICOM, which samforge does not read yet; convert "
                "it to NIfTI first (e.g. dcm2niix)."
            )
    datasets, positions = _sorted_by_position(datasets, origin)
    with reading(origin, "DICOM pixel data"):
        volume = np.stack([_pixels(d) for d in datasets])
    geometry = _geometry(datasets, positions, origin)
    first = datasets[0]
    geometry["modality"] = modality_of(first)
    geometry["meta"].update(
        {
            "source": str(origin),
            "patient_id": str(first.get("PatientID", "")),
            "series_uid": str(first.get("SeriesInstanceUID", "")),
            "series_description": str(first.get("SeriesDescription", "")),
        }
    )
    return _compact(volume), geometry


def read_single(path: Path) -> tuple[np.ndarray, dict]:
    """One single-frame DICOM file as a 2D image (H, W) or (H, W, 3)."""
    with reading(path, "DICOM"):
        dataset = pydicom.dcmread(path)
        if int(dataset.get("NumberOfFrames", 1) or 1) > 1:
            raise DataError(
                f"{path} is a multi-frame DICOM, which samforge does not read yet; convert it "
                "to NIfTI first (e.g. dcm2niix)."
            )
        image = _pixels(dataset)
    spacing = _floats(dataset, "PixelSpacing", 2) or _floats(dataset, "ImagerPixelSpacing", 2)
    info = {
        "spacing": tuple(spacing) if spacing else (1.0, 1.0),
        "affine": None,
        "modality": modality_of(dataset),
        "meta": {"source": str(path), "patient_id": str(dataset.get("PatientID", ""))},
    }
    return _compact(image), info


def _pixels(dataset: Dataset) -> np.ndarray:
    """Pixel data with the modality LUT (rescale slope/intercept) applied."""
    _check_pixel_length(dataset)
    pixels = dataset.pixel_array
    if int(dataset.get("SamplesPerPixel", 1)) > 1:
        return pixels  # colour (ultrasound, photographs): no modality LUT
    values = apply_modality_lut(pixels, dataset)
    if str(dataset.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        values = values.max() + values.min() - values  # bright = dense, like MONOCHROME2
    return values


def _check_pixel_length(dataset: Dataset) -> None:
    """Refuse uncompressed pixel data shorter than Rows × Columns × samples × bits says
    (a truncated file), which pydicom would pad with garbage after a warning."""
    syntax = getattr(dataset.get("file_meta"), "TransferSyntaxUID", None)
    if "PixelData" not in dataset or syntax is None or syntax.is_compressed:
        return  # compressed data fails in its decoder instead
    with reading(Path(str(dataset.filename or "")), "DICOM"):
        expected = get_expected_length(dataset)
    found = len(dataset.PixelData)
    if found < expected:
        raise DataError(
            f"{dataset.filename}: its pixel data holds {found:,} bytes where Rows × Columns × "
            f"samples × bits needs {expected:,}: the file is truncated. Re-export or "
            "re-copy the series."
        )


def _compact(values: np.ndarray) -> np.ndarray:
    """Integers in int16/int32 when every value is whole, else float32."""
    if np.issubdtype(values.dtype, np.integer) or values.dtype == bool:
        return values
    if values.size and np.array_equal(values, np.rint(values)):
        low, high = values.min(), values.max()
        for dtype in (np.int16, np.int32):
            info = np.iinfo(dtype)
            if info.min <= low and high <= info.max:
                return values.astype(dtype)
    return values.astype(np.float32)


def _sorted_by_position(datasets: list[Dataset], origin: Path) -> tuple[list[Dataset], list]:
    if any("ImagePositionPatient" not in d for d in datasets):
        warnings.warn(
            f"{origin}: slices without ImagePositionPatient; ordering by "
            "InstanceNumber, geometry unknown.",
            stacklevel=3,
        )
        datasets = sorted(datasets, key=lambda d: int(d.get("InstanceNumber", 0) or 0))
        return datasets, []
    normal = _normal(datasets[0])
    positions = [float(np.dot(_floats(d, "ImagePositionPatient", 3), normal)) for d in datasets]
    order = np.argsort(positions, kind="stable")
    positions = [positions[i] for i in order]
    if len(positions) > 1 and np.min(np.diff(positions)) < 1e-3:
        raise DataError(
            f"{origin}: two slices lie at the same position; the folder mixes acquisitions "
            "(e.g. several echoes or time points). Keep one per folder."
        )
    return [datasets[i] for i in order], positions


def _geometry(datasets: list[Dataset], positions: list[float], origin: Path) -> dict:
    first = datasets[0]
    dy, dx = _floats(first, "PixelSpacing", 2) or [1.0, 1.0]
    if len(positions) > 1:
        steps = np.diff(positions)
        dz = float((positions[-1] - positions[0]) / (len(positions) - 1))
        if np.ptp(steps) > 1e-2 * dz + 1e-3:
            warnings.warn(
                f"{origin}: uneven slice spacing ({steps.min():.3f}–{steps.max():.3f} "
                f"mm); using the mean, {dz:.3f} mm.",
                stacklevel=3,
            )
    else:
        dz = float(first.get("SpacingBetweenSlices", 0) or first.get("SliceThickness", 0) or 1.0)
    meta: dict = {"slice_positions": positions}
    if not positions:
        return {"spacing": (dz, dy, dx), "affine": None, "meta": meta}
    row_cos, col_cos = np.reshape(_floats(first, "ImageOrientationPatient", 6), (2, 3))
    lps = np.eye(4)
    lps[:3, 0] = row_cos * dx  # along a row: the column index i grows
    lps[:3, 1] = col_cos * dy  # down a column: the row index j grows
    lps[:3, 2] = _normal(first) * dz
    lps[:3, 3] = _floats(first, "ImagePositionPatient", 3)
    return {"spacing": (abs(dz), dy, dx), "affine": _LPS_TO_RAS @ lps, "meta": meta}


def _normal(dataset: Dataset) -> np.ndarray:
    row_cos, col_cos = np.reshape(_floats(dataset, "ImageOrientationPatient", 6), (2, 3))
    return np.cross(row_cos, col_cos)


def _floats(dataset: Dataset, keyword: str, count: int) -> list[float]:
    value = dataset.get(keyword)
    if value is None or len(value) != count:
        return [1.0, 0.0, 0.0, 0.0, 1.0, 0.0] if keyword == "ImageOrientationPatient" else []
    return [float(v) for v in value]
