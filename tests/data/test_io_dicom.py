"""DICOM series: position sorting, rescale to HU, geometry, NIfTI masks that line up."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from samforge.data import open_dataset, read_case, write_mask
from samforge.errors import DataError

ROWS, COLS, SLICES = 8, 10, 6
ORIGIN = np.array([-120.0, -80.0, 10.0])  # LPS mm of the first voxel of the lowest slice
DY, DX, DZ = 0.8, 0.6, 2.5
SLOPE, INTERCEPT = 2.0, -1024.0


def _raw(k: int) -> np.ndarray:
    """Stored values of slice k (distinct everywhere, so any mix-up shows)."""
    rows, cols = np.mgrid[:ROWS, :COLS]
    return (k * 100 + rows * 10 + cols + 500).astype(np.uint16)


def _slice(k: int, series: str, position: np.ndarray, study: str = "1") -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.StudyInstanceUID = "CT", "patient-7", study
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = series, 3, SLICES - k
    ds.Rows, ds.Columns = ROWS, COLS
    ds.PixelSpacing = [DY, DX]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.RescaleSlope, ds.RescaleIntercept = SLOPE, INTERCEPT
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = _raw(k).tobytes()
    return ds


def write_series(folder: Path, series: str | None = None, seed: int = 0) -> Path:
    """Six slices in shuffled, meaningless file names, plus a stray text file."""
    folder.mkdir(parents=True, exist_ok=True)
    series = series or generate_uid()
    order = np.random.default_rng(seed).permutation(SLICES)
    for k in range(SLICES):
        position = ORIGIN + np.array([0.0, 0.0, k * DZ])
        _slice(k, series, position).save_as(folder / f"IM{order[k]:04d}", enforce_file_format=True)
    (folder / "notes.txt").write_text("not DICOM")
    return folder


@pytest.fixture
def series(tmp_path) -> Path:
    return write_series(tmp_path / "series")


def test_slices_sorted_by_position_with_hounsfield_units(series):
    case = read_case(series)
    assert case.image.shape == (SLICES, ROWS, COLS) and case.is_volume
    for k in range(SLICES):
        np.testing.assert_array_equal(case.image[k], SLOPE * _raw(k) + INTERCEPT)
    assert case.image.dtype == np.int16
    assert case.spacing == pytest.approx((DZ, DY, DX))
    assert case.modality == "ct" and case.subject == "patient-7"


def test_affine_maps_column_row_slice_to_ras(series):
    case = read_case(series)
    for i, j, k in [(0, 0, 0), (9, 0, 0), (0, 7, 0), (4, 3, 5)]:
        lps = ORIGIN + i * DX * np.array([1, 0, 0]) + j * DY * np.array([0, 1, 0])
        lps = lps + np.array([0, 0, k * DZ])
        ras = case.affine @ [i, j, k, 1]
        np.testing.assert_allclose(ras[:3], lps * [-1, -1, 1], atol=1e-9)


def test_nifti_mask_of_a_dicom_series_carries_its_geometry(series, tmp_path):
    case = read_case(series)
    mask = np.zeros(case.image.shape, np.uint8)
    mask[4, 3, 2] = 1  # slice 4, row 3, column 2
    write_mask(tmp_path / "mask.nii.gz", mask, case)
    written = nib.load(tmp_path / "mask.nii.gz")
    assert written.shape == (COLS, ROWS, SLICES)
    np.testing.assert_allclose(written.affine, case.affine, atol=1e-5)
    assert int(written.header["qform_code"]) == 1 and int(written.header["sform_code"]) == 1
    data = np.asanyarray(written.dataobj)
    assert data[2, 3, 4] == 1 and data.sum() == 1
    world = written.affine @ [2, 3, 4, 1]  # where a viewer puts that voxel
    expected = (ORIGIN + np.array([2 * DX, 3 * DY, 4 * DZ])) * [-1, -1, 1]
    np.testing.assert_allclose(world[:3], expected, atol=1e-4)
    again = read_case(series, tmp_path / "mask.nii.gz")
    np.testing.assert_array_equal(again.label, mask)


def test_descending_positions_are_still_sorted(tmp_path):
    folder = tmp_path / "down"
    folder.mkdir()
    series = generate_uid()
    for k in range(SLICES):  # written top to bottom, instance numbers reversed
        ds = _slice(k, series, ORIGIN + np.array([0, 0, k * DZ]))
        ds.InstanceNumber = k + 1
        ds.save_as(folder / f"{SLICES - k}.dcm", enforce_file_format=True)
    case = read_case(folder)
    assert [int(case.image[k, 0, 0]) for k in range(SLICES)] == [
        int(SLOPE * _raw(k)[0, 0] + INTERCEPT) for k in range(SLICES)
    ]


def test_two_series_in_one_folder(tmp_path):
    write_series(tmp_path / "both", series="1.2.3", seed=1)
    other = tmp_path / "both" / "second"
    write_series(other, series="1.2.4", seed=2)
    with pytest.raises(DataError, match=r"mixes 2 DICOM series.*open_dataset"):
        read_case(tmp_path / "both")
    cases = open_dataset(tmp_path / "both")
    assert len(cases) == 2 and all(c.image.shape == (SLICES, ROWS, COLS) for c in cases)


def test_two_slices_at_one_position_are_refused(tmp_path):
    folder = tmp_path / "dup"
    folder.mkdir()
    series = generate_uid()
    for k in range(3):
        _slice(k, series, ORIGIN).save_as(folder / f"{k}.dcm", enforce_file_format=True)
    with pytest.raises(DataError, match="same position"):
        read_case(folder)


def test_single_file_is_a_2d_image(series):
    one = next(p for p in sorted(series.iterdir()) if p.name.startswith("IM"))
    case = read_case(one)
    assert case.image.shape == (ROWS, COLS) and not case.is_volume
    assert case.spacing == pytest.approx((DY, DX)) and case.modality == "ct"


def test_bad_dicom_inputs(tmp_path, series):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="without DICOM files"):
        read_case(empty)
    one = next(p for p in sorted(series.iterdir()) if p.name.startswith("IM"))
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(one.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"cut.dcm"):
        read_case(cut)
