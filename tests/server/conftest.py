"""A data folder as users have one (a NIfTI volume, a PNG, a DICOM series, a link that leads
out of it) and the annotator app over it, with the real samforge_nano model."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from samforge.data.phantoms import phantom_case
from samforge.models import load_model

VOLUME_SHAPE = (20, 96, 96)  # (D, H, W): small, so embedding the volume takes seconds
BASE_URL = "http://127.0.0.1:8000"


def write_phantom_volume(path: Path) -> None:
    """The CT phantom as a NIfTI file in the usual (i, j, k) = (x, y, z) layout, int16 HU."""
    case = phantom_case("ct", shape=VOLUME_SHAPE, seed=3)
    data = np.transpose(case.image, (2, 1, 0)).astype(np.int16)
    nib.save(nib.Nifti1Image(data, case.affine), path)


def write_data_folder(root: Path) -> Path:
    from data.test_io_dicom import write_series

    data = root / "data"
    (data / "ct").mkdir(parents=True)
    write_phantom_volume(data / "ct" / "phantom.nii.gz")
    rows, cols = np.mgrid[:64, :80]
    disc = ((rows - 30) ** 2 + (cols - 40) ** 2 < 15**2).astype(np.uint8)
    Image.fromarray(40 + 160 * disc).save(data / "disc.png")
    write_series(data / "series")
    (root / "secret.txt").write_text("outside the data folder")
    (data / "leak").symlink_to(root / "secret.txt")
    (data / "leak_dir").symlink_to(root)
    return data


@pytest.fixture(scope="session")
def nano():
    return load_model("samforge_nano")


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory) -> Path:
    return write_data_folder(tmp_path_factory.mktemp("serve"))
