"""Files that are not what they claim: a FIFO named like an image (item 6), NIfTI headers
that claim more than the file holds (item 7), a DICOM series with a truncated slice
(item 10)."""

from __future__ import annotations

import gzip
import os
import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from helpers.hostile import BOX, run_measured

# A memory bomb in a child process fails fast against this address-space cap (virtual
# memory: torch and its libraries map about 2 GB) instead of taking the machine.
ADDRESS_SPACE = 6 * 2**30


def test_a_fifo_named_like_an_image_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    outcome, _ = run_measured(
        "segment",
        fifo,
        *BOX,
        "-m",
        "samforge_random_tiny",
        "-o",
        tmp_path / "mask.png",
        timeout=120,
    )
    outcome.refused(str(fifo), "not a regular file")


def test_a_fifo_inside_a_dataset_is_refused_without_hanging(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    os.mkfifo(tmp_path / "images" / "case.png")
    os.mkfifo(tmp_path / "masks" / "case.png")
    outcome, _ = run_measured("data", "inspect", tmp_path, timeout=120)
    outcome.refused("holds no images")  # a folder scan passes over what is not a file


def nifti_header_claiming(shape: tuple[int, ...], path, data_bytes: int = 1024) -> None:
    """A NIfTI-1 file whose header (nibabel's, 352 bytes) claims ``shape`` of int16, followed
    by ``data_bytes`` bytes of data: the published header layout, only the data is cut."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.int16)
    header.set_qform(np.eye(4), code=1)
    header["vox_offset"] = 352
    content = header.binaryblock + b"\x00" * 4 + b"\x01" * data_bytes
    if str(path).endswith(".gz"):
        content = gzip.compress(content)
    path.write_bytes(content)


SEGMENT_SLICE = ("segment", "{volume}", "--slice", 0, *BOX, "-m", "samforge_random_tiny", "-o")


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize(
    ("shape", "command", "complaint"),
    [
        # 4000³ int16, 128 GB: above the voxel cap, in segment (the audit's case).
        ((4000, 4000, 4000), SEGMENT_SLICE, "SAMFORGE_MAX_VOXELS"),
        # 512×512×400 int16, 200 MB: under the caps, but not in a 1 KB file.
        ((512, 512, 400), ("data", "inspect", "{volume}"), "truncated"),
    ],
)
def test_a_nifti_header_claiming_more_than_its_file_is_refused_before_allocating(
    tmp_path, suffix, shape, command, complaint
):
    volume = tmp_path / f"bomb{suffix}"
    nifti_header_claiming(shape, volume)
    arguments = [str(part).format(volume=volume) for part in command]
    if command[0] == "segment":
        arguments.append(str(tmp_path / "mask.nii.gz"))
    outcome, peak = run_measured(*arguments, address_space=ADDRESS_SPACE)
    outcome.refused(str(volume), complaint)
    assert peak < 2**30


def test_the_voxel_cap_is_configurable(tmp_path):
    volume = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((40, 30, 8), np.int16), np.eye(4)), volume)
    env = {**os.environ, "SAMFORGE_MAX_VOXELS": "5000"}
    capped, _ = run_measured("data", "inspect", volume, env=env)
    capped.refused("9,600 voxels", "SAMFORGE_MAX_VOXELS")
    allowed, _ = run_measured("data", "inspect", volume)
    assert allowed.code == 0, allowed.stderr


def test_a_dicom_series_with_one_truncated_slice_is_refused_naming_it(samforge, tmp_path):
    """Four slices of pydicom's CT_small.dcm (a real 128×128 CT image, explicit VR little
    endian) at 5 mm steps; the third file is cut in its pixel data, as a failed copy is."""
    folder = tmp_path / "series"
    folder.mkdir()
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    series = generate_uid()
    for k in range(4):
        source.SeriesInstanceUID = series
        source.SOPInstanceUID = source.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        source.ImagePositionPatient = [-158.1, -179.0, -75.7 + 5.0 * k]
        source.InstanceNumber = k + 1
        source.save_as(folder / f"IM{k:04d}.dcm")
    cut = folder / "IM0002.dcm"
    cut.write_bytes(cut.read_bytes()[:-10_000])
    outcome = samforge("data", "inspect", folder)
    outcome.refused(str(cut), "truncated")
    whole = tmp_path / "whole"
    shutil.copytree(folder, whole)
    (whole / "IM0002.dcm").unlink()
    assert samforge("data", "inspect", whole).code == 0
