"""PNG, JPEG and TIFF images, label images and masks; bad 2D inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from samforge.data import read_case, read_label_array, write_mask
from samforge.errors import DataError, InputImageError

RNG = np.random.default_rng(0)


def _png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


@pytest.mark.parametrize(
    "array",
    [
        RNG.integers(0, 256, (12, 17), dtype=np.uint8),
        RNG.integers(0, 65536, (12, 17), dtype=np.uint16),
        RNG.integers(0, 256, (12, 17, 3), dtype=np.uint8),
        RNG.integers(0, 256, (12, 17, 4), dtype=np.uint8),
    ],
    ids=["gray8", "gray16", "rgb", "rgba"],
)
def test_png_pixels_come_back_exactly(tmp_path, array):
    case = read_case(_png(tmp_path / "img.png", array))
    np.testing.assert_array_equal(case.image, array)
    assert case.image.dtype == array.dtype and case.spacing == (1.0, 1.0)
    assert case.affine is None and not case.is_volume and case.name == "img"


def test_jpeg_and_palette_images(tmp_path):
    rgb = RNG.integers(0, 256, (16, 20, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.jpg", quality=95)
    assert read_case(tmp_path / "photo.jpg").image.shape == (16, 20, 3)
    palette = Image.fromarray(RNG.integers(0, 4, (16, 20), dtype=np.uint8), mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    palette.save(tmp_path / "pal.png")
    assert read_case(tmp_path / "pal.png").image.shape == (16, 20, 3)  # colours, as an image


def test_label_images_give_class_ids(tmp_path):
    image = _png(tmp_path / "img.png", np.zeros((6, 8), np.uint8))
    ids = RNG.integers(0, 5, (6, 8), dtype=np.uint8)
    palette = Image.fromarray(ids, mode="P")
    palette.putpalette(list(RNG.integers(0, 256, 768, dtype=np.uint8)))
    palette.save(tmp_path / "pal_label.png")
    np.testing.assert_array_equal(read_case(image, tmp_path / "pal_label.png").label, ids)
    binary = np.zeros((6, 8), np.uint8)
    binary[2:4, 3:6] = 255
    label = read_case(image, _png(tmp_path / "bin.png", binary)).label
    assert set(np.unique(label)) == {0, 1} and label.sum() == 6  # 0/255 → 0/1
    grey_rgb = np.repeat(ids[..., None], 3, axis=-1)
    np.testing.assert_array_equal(read_case(image, _png(tmp_path / "g.png", grey_rgb)).label, ids)
    colour = RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    with pytest.raises(DataError, match=r"colour.png is a colour image, not a label map"):
        read_case(image, _png(tmp_path / "colour.png", colour))


def test_tiff_images_stacks_and_colour(tmp_path):
    flat = RNG.normal(size=(9, 11)).astype(np.float32)
    tifffile.imwrite(tmp_path / "f.tif", flat)
    case = read_case(tmp_path / "f.tif")
    np.testing.assert_array_equal(case.image, flat)
    assert not case.is_volume
    stack = RNG.integers(0, 4000, (4, 9, 11), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "s.tiff", stack, photometric="minisblack", metadata={"axes": "ZYX"})
    volume = read_case(tmp_path / "s.tiff")
    assert volume.is_volume and volume.spacing == (1.0, 1.0, 1.0)
    np.testing.assert_array_equal(volume.image, stack)
    rgb = RNG.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "c.tif", rgb, photometric="rgb")
    colour = read_case(tmp_path / "c.tif")
    assert colour.image.shape == (9, 11, 3) and not colour.is_volume


def test_tiff_with_more_than_three_axes_is_refused(tmp_path):
    data = np.zeros((2, 3, 9, 11), np.uint16)
    tifffile.imwrite(tmp_path / "t.tif", data, photometric="minisblack", metadata={"axes": "TZYX"})
    with pytest.raises(InputImageError, match=r"t.tif has axes 'TZYX'.*one image or one volume"):
        read_case(tmp_path / "t.tif")


def test_png_and_tiff_masks_round_trip(tmp_path):
    reference = read_case(_png(tmp_path / "img.png", np.zeros((6, 8, 3), np.uint8)))
    mask = RNG.integers(0, 3, (6, 8)).astype(np.int64)
    write_mask(tmp_path / "m.png", mask, reference)
    written = np.asarray(Image.open(tmp_path / "m.png"))
    assert written.dtype == np.uint8
    np.testing.assert_array_equal(written, mask)
    many = mask * 300  # ids above 255 need 16 bits
    write_mask(tmp_path / "m16.png", many, reference)
    np.testing.assert_array_equal(read_label_array(tmp_path / "m16.png"), many)
    write_mask(tmp_path / "m.tif", mask.astype(bool), reference)
    np.testing.assert_array_equal(read_label_array(tmp_path / "m.tif"), mask > 0)


def test_volume_masks_need_a_volume_format(tmp_path):
    stack = np.zeros((3, 6, 8), np.uint16)
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="minisblack", metadata={"axes": "ZYX"})
    volume = read_case(tmp_path / "s.tif")
    mask = np.zeros((3, 6, 8), np.uint8)
    mask[2, 1, 7] = 1
    with pytest.raises(DataError, match=r"a PNG holds one 2D image.*nii.gz"):
        write_mask(tmp_path / "m.png", mask, volume)
    write_mask(tmp_path / "m.tif", mask, volume)
    np.testing.assert_array_equal(read_label_array(tmp_path / "m.tif"), mask)
    write_mask(tmp_path / "m.nii.gz", mask, volume)  # no geometry: spacing on the diagonal
    np.testing.assert_array_equal(read_case(tmp_path / "s.tif", tmp_path / "m.nii.gz").label, mask)


def test_unwritable_mask_formats(tmp_path):
    reference = read_case(_png(tmp_path / "img.png", np.zeros((6, 8), np.uint8)))
    for name in ("m.jpg", "m.mha", "m"):
        with pytest.raises(DataError, match="cannot write a mask"):
            write_mask(tmp_path / name, np.zeros((6, 8), np.uint8), reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png"]


def test_missing_unsupported_and_truncated_files(tmp_path):
    with pytest.raises(DataError, match=r"nowhere.png does not exist"):
        read_case(tmp_path / "nowhere.png")
    (tmp_path / "scan.mha").write_bytes(b"ObjectType = Image")
    with pytest.raises(DataError, match=r"scan.mha: unsupported file type '.mha'.*NIfTI"):
        read_case(tmp_path / "scan.mha")
    png = _png(tmp_path / "full.png", RNG.integers(0, 256, (64, 64), dtype=np.uint8))
    (tmp_path / "cut.png").write_bytes(png.read_bytes()[:200])
    with pytest.raises(DataError, match=r"cannot read .*cut.png as an image.*truncated"):
        read_case(tmp_path / "cut.png")


def test_mismatched_label_names_both_files(tmp_path):
    image = _png(tmp_path / "img.png", np.zeros((6, 8), np.uint8))
    label = _png(tmp_path / "lab.png", np.zeros((6, 9), np.uint8))
    with pytest.raises(DataError, match=r"label .*lab.png has shape \(6, 9\).*img.png"):
        read_case(image, label)


def test_nan_pixels_in_a_float_tiff(tmp_path):
    data = np.ones((5, 5), np.float32)
    data[2, 2] = np.inf
    tifffile.imwrite(tmp_path / "inf.tif", data)
    with pytest.raises(InputImageError, match=r"inf.tif has 1 NaN or infinite"):
        read_case(tmp_path / "inf.tif")
