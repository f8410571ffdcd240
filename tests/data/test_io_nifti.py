"""NIfTI: axis convention, header geometry, label alignment, mask round trips, bad files."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from samforge.data import read_case, write_mask
from samforge.data.readers import case as case_module
from samforge.errors import DataError, InputImageError

# An LPS-like grid with a translation: not the identity, so mix-ups show.
AFFINE = np.array(
    [[-0.5, 0.0, 0.0, 90.0], [0.0, -0.7, 0.0, 120.0], [0.0, 0.0, 2.0, -50.0], [0, 0, 0, 1]]
)
SHAPE = (7, 6, 5)  # (i, j, k) = (x, y, z) in the file


def _save(path: Path, data: np.ndarray, affine=AFFINE, codes=(1, 1)) -> Path:
    image = nib.Nifti1Image(data, affine)
    image.header.set_qform(affine, code=codes[0])
    image.header.set_sform(affine, code=codes[1])
    nib.save(image, path)
    return path


@pytest.fixture
def volume(tmp_path) -> tuple[Path, np.ndarray]:
    data = np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE) - 100
    return _save(tmp_path / "scan.nii.gz", data), data


def test_axes_are_reversed_and_geometry_comes_from_the_header(volume):
    path, data = volume
    case = read_case(path)
    assert case.image.shape == (5, 6, 7) and case.is_volume
    for x, y, z in [(0, 0, 0), (6, 1, 2), (3, 5, 4)]:
        assert case.image[z, y, x] == data[x, y, z]
    np.testing.assert_array_equal(case.image.transpose(2, 1, 0), data)  # exactly invertible
    assert case.spacing == pytest.approx((2.0, 0.7, 0.5))  # (dz, dy, dx)
    np.testing.assert_allclose(case.affine, AFFINE)
    assert case.image.dtype == np.int16 and case.meta["source"] == str(path)


def test_write_mask_keeps_affine_codes_and_voxel_positions(volume, tmp_path):
    path, _ = volume
    case = read_case(path)
    mask = np.zeros(case.image.shape, dtype=np.uint8)
    mask[3, 2, 5] = 1  # case.image[z, y, x]
    mask[1, 4, 0] = 7
    out = tmp_path / "out" / "mask.nii.gz"
    write_mask(out, mask, case)
    written = nib.load(out)
    original = nib.load(path)
    assert written.shape == original.shape == SHAPE
    np.testing.assert_allclose(written.affine, original.affine)
    np.testing.assert_allclose(written.header.get_qform(), original.header.get_qform())
    np.testing.assert_allclose(written.header.get_sform(), original.header.get_sform())
    assert int(written.header["qform_code"]) == 1 and int(written.header["sform_code"]) == 1
    data = np.asanyarray(written.dataobj)
    assert data.dtype == np.uint8 and data[5, 2, 3] == 1 and data[0, 4, 1] == 7
    assert data.sum() == 8
    assert [p.name for p in out.parent.iterdir()] == ["mask.nii.gz"]  # no temporary left
    again = read_case(path, out)
    np.testing.assert_array_equal(again.label, mask)


def test_2d_nifti_and_uncompressed_output(tmp_path):
    data = np.arange(8 * 6, dtype=np.float32).reshape(8, 6)  # (i=x, j=y)
    path = _save(tmp_path / "slice.nii", data)
    case = read_case(path)
    assert case.image.shape == (6, 8) and not case.is_volume
    assert case.image[2, 5] == data[5, 2]
    mask = (case.image > 20).astype(np.uint8)
    write_mask(tmp_path / "m.nii", mask, case)
    np.testing.assert_array_equal(np.asanyarray(nib.load(tmp_path / "m.nii").dataobj), mask.T)


def test_trailing_singleton_axis_is_dropped(tmp_path):
    data = np.ones((*SHAPE, 1), dtype=np.uint8)
    assert read_case(_save(tmp_path / "v.nii.gz", data)).image.shape == (5, 6, 7)


def test_scaled_data_are_rescaled(tmp_path):
    image = nib.Nifti1Image(np.full(SHAPE, 10, dtype=np.int16), AFFINE)
    image.header.set_slope_inter(2.0, -5.0)
    nib.save(image, tmp_path / "scaled.nii.gz")
    case = read_case(tmp_path / "scaled.nii.gz")
    assert case.image.dtype == np.float32 and np.all(case.image == 15.0)


def test_label_in_another_orientation_is_brought_onto_the_image_grid(volume, tmp_path):
    path, _ = volume
    label = np.zeros(SHAPE, dtype=np.uint8)
    label[1, 2, 3] = 4
    # Store the label with j flipped (as dcm2niix does to DICOM rows): same voxels in space.
    flip = np.diag([1.0, -1.0, 1.0, 1.0])
    flip[1, 3] = SHAPE[1] - 1
    _save(tmp_path / "flipped.nii.gz", label[:, ::-1, :].copy(), AFFINE @ flip)
    case = read_case(path, tmp_path / "flipped.nii.gz")
    assert case.label[3, 2, 1] == 4 and case.label.sum() == 4


def test_label_on_another_grid_is_refused(volume, tmp_path):
    path, _ = volume
    shifted = AFFINE.copy()
    shifted[0, 3] += 5.0
    _save(tmp_path / "shifted.nii.gz", np.zeros(SHAPE, np.uint8), shifted)
    with pytest.raises(DataError, match=r"(?s)not on the voxel grid.*Resample"):
        read_case(path, tmp_path / "shifted.nii.gz")


def test_label_of_another_shape_is_refused(volume, tmp_path):
    path, _ = volume
    other = _save(tmp_path / "small_seg.nii.gz", np.zeros((7, 6, 4), np.uint8))
    with pytest.raises(DataError, match=r"small_seg.nii.gz"):
        read_case(path, other)


def test_non_integer_label_is_refused(volume, tmp_path):
    path, _ = volume
    probabilities = _save(tmp_path / "prob.nii.gz", np.full(SHAPE, 0.4, np.float32))
    with pytest.raises(DataError, match=r"prob.nii.gz holds non-integer values"):
        read_case(path, probabilities)


def test_nan_voxels_are_refused_with_the_file_name(tmp_path):
    data = np.zeros(SHAPE, np.float32)
    data[1, 1, 1] = np.nan
    path = _save(tmp_path / "holes.nii.gz", data)
    with pytest.raises(InputImageError, match=r"holes.nii.gz has 1 NaN.*fill_nan"):
        read_case(path)
    assert np.isfinite(read_case(path, fill_nan=0.0).image).all()


def test_4d_files_are_refused(tmp_path):
    path = _save(tmp_path / "fmri.nii.gz", np.zeros((*SHAPE, 3), np.int16))
    with pytest.raises(InputImageError, match=r"fmri.nii.gz is 4D.*one 2D or 3D image"):
        read_case(path)


def test_truncated_and_garbage_files_name_the_file(volume, tmp_path):
    path, _ = volume
    raw = gzip.decompress(path.read_bytes())
    truncated = tmp_path / "cut.nii.gz"
    truncated.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    with pytest.raises(DataError, match=r"(?s)cannot read .*cut.nii.gz as NIfTI.*truncated"):
        read_case(truncated)
    garbage = tmp_path / "junk.nii"
    garbage.write_bytes(b"not a nifti file at all" * 20)
    with pytest.raises(DataError, match=r"junk.nii"):
        read_case(garbage)


def test_modality_from_argument_file_name_or_hounsfield_units(tmp_path):
    air = np.full(SHAPE, -1000, np.int16)
    assert read_case(_save(tmp_path / "vol.nii.gz", air)).modality == "ct"
    assert read_case(_save(tmp_path / "brain_t1.nii.gz", air)).modality == "mr"
    calm = np.zeros(SHAPE, np.int16)
    case = read_case(_save(tmp_path / "plain.nii.gz", calm))
    assert case.modality == "other" and case.meta["modality_from"] == "default"
    assert read_case(tmp_path / "plain.nii.gz", modality="us").modality == "us"


def test_failed_write_leaves_nothing_behind(volume, tmp_path, monkeypatch):
    path, _ = volume
    case = read_case(path)

    def broken(temporary, *args):
        Path(temporary).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(case_module.nifti, "write_nifti_mask", broken)
    out = tmp_path / "never" / "mask.nii.gz"
    with pytest.raises(OSError, match="disk full"):
        write_mask(out, np.zeros(case.image.shape, np.uint8), case)
    assert list(out.parent.iterdir()) == []


def test_write_mask_refuses_wrong_shapes_and_fractions(volume, tmp_path):
    case = read_case(volume[0])
    with pytest.raises(InputImageError, match=r"shape \(5, 6\).*\(5, 6, 7\)"):
        write_mask(tmp_path / "m.nii.gz", np.zeros((5, 6), np.uint8), case)
    with pytest.raises(InputImageError, match="non-integer"):
        write_mask(tmp_path / "m.nii.gz", np.full(case.image.shape, 0.5), case)
    assert not (tmp_path / "m.nii.gz").exists()
