"""Reading images for the corruptions (:mod:`samforge.data.corrupted_copies`)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from samforge.data.corrupted_copies import read_image
from samforge.errors import InputImageError


def test_read_image_modes(tmp_path):
    rgba = np.zeros((6, 7, 4), np.uint8)
    rgba[..., 0] = 200
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    assert read_image(tmp_path / "rgba.png").shape == (6, 7, 3)
    Image.fromarray(np.full((6, 7), 3, np.uint8)).convert("P").save(tmp_path / "pal.png")
    assert read_image(tmp_path / "pal.png").shape == (6, 7, 3)
    Image.fromarray(np.full((6, 7), 200, np.uint16)).save(tmp_path / "small16.png")
    eight = read_image(tmp_path / "small16.png")
    assert eight.dtype == np.uint8 and eight.max() == 200  # 16-bit files with 8-bit values
    tifffile.imwrite(tmp_path / "nan.tif", np.full((4, 4), np.nan, np.float32))
    with pytest.raises(InputImageError, match=r"nan\.tif"):
        read_image(tmp_path / "nan.tif")
