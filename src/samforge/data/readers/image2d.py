"""PNG, JPEG, BMP (Pillow) and TIFF (tifffile) images, label maps and masks.

Arrays keep the file's pixel grid exactly: row 0 is the file's first row, no EXIF rotation is
applied, so a mask written back lies on the image pixel for pixel. Label images are read as
class ids: palette PNGs give their palette indices, and 0/255 binary masks become 0/1.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from ...errors import DataError, InputImageError
from ._common import as_label_map, check_image_size, reading

# Pillow modes whose pixels are not intensities as they stand: convert them for images.
_IMAGE_CONVERSIONS = {
    "P": "RGB",
    "PA": "RGBA",
    "LA": "L",
    "1": "L",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "LAB": "RGB",
    "HSV": "RGB",
}
_DEPTH_AXES = "ZQITC"  # tifffile's names for an axis that stacks 2D planes


@contextmanager
def _open_pil(path: Path) -> Iterator[Image.Image]:
    """Pillow's lazy open, its size then checked against samforge's caps (which replace
    Pillow's decompression-bomb warning; its error, at twice 89 M pixels, stays)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        opened = Image.open(path)
    with opened:
        check_image_size(path, (opened.height, opened.width, len(opened.getbands())), opened.size)
        yield opened


def read_pil(path: Path) -> np.ndarray:
    """(H, W) or (H, W, C) array of a PNG/JPEG/BMP image."""
    with reading(path, "an image (Pillow)"), _open_pil(path) as opened:
        image: Image.Image = opened
        mode = image.mode
        if mode == "P" and "transparency" in image.info:
            image = image.convert("RGBA")
        elif mode in _IMAGE_CONVERSIONS:
            image = image.convert(_IMAGE_CONVERSIONS[mode])
        array = np.asarray(image)
    return _native(array)


def read_pil_label(path: Path) -> np.ndarray:
    """(H, W) integer label map of a PNG/BMP label image (palette indices kept)."""
    with reading(path, "a label image (Pillow)"), _open_pil(path) as opened:
        image: Image.Image = opened
        if image.mode == "LA":
            image = image.getchannel("L")
        array = np.asarray(image)
    array = _native(array)
    return _label_from_pixels(array, path, colour=array.ndim == 3)


def read_tiff(path: Path) -> tuple[np.ndarray, bool]:
    """A TIFF's first series as (H, W), (H, W, C) or a (D, H, W) stack; and whether a stack.

    Axes come from tifffile's series metadata: samples ('S', or a colour axis 'C' of 3–4)
    become the channel axis; one other axis (Z, Q, I, T, C) stacks planes into a volume.
    """
    with reading(path, "a TIFF image"), tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        check_image_size(path, series.shape, _plane(series))
        axes, data = series.axes, series.asarray()
    keep = [i for i, n in enumerate(data.shape) if n > 1 or axes[i] in "YX"]
    data = data.reshape([data.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    channel = [i for i, a in enumerate(axes) if a == "S" or (a == "C" and data.shape[i] in (3, 4))]
    if channel:
        data = np.moveaxis(data, channel[0], -1)
        axes = axes.replace(axes[channel[0]], "") + "S"
    depth = [a for a in axes if a in _DEPTH_AXES]
    if axes in ("YX", "YXS"):
        return _native(data), False
    if len(depth) == 1 and axes == depth[0] + "YX":
        return _native(data), True
    raise InputImageError(
        f"{path} has axes {series.axes!r} and shape {series.shape}: samforge reads 2D images, "
        "2D colour images and one stack of 2D planes (3D). Save one image or one volume per "
        "file (e.g. split time points or channels into separate files)."
    )


def _plane(series: tifffile.TiffPageSeries) -> tuple[int, int]:
    """(H, W) of a TIFF series' planes: its Y and X axes."""
    sizes = dict(zip(series.axes, series.shape, strict=True))
    return sizes.get("Y", 1), sizes.get("X", 1)


def read_tiff_label(path: Path) -> np.ndarray:
    """(H, W) or (D, H, W) integer label map of a TIFF label file."""
    data, stack = read_tiff(path)
    return _label_from_pixels(data, path, colour=data.ndim == 3 and not stack)


def write_png(path: Path, mask: np.ndarray) -> None:
    """An (H, W) label map as 8-bit (ids ≤ 255) or 16-bit PNG; values are the class ids."""
    if mask.ndim != 2:
        raise DataError(
            f"cannot write a mask of shape {mask.shape} to {path}: a PNG holds one 2D image. "
            "Write volumes as .nii.gz (or .tif)."
        )
    dtype = np.uint8 if mask.max(initial=0) <= 255 else np.uint16
    if mask.min(initial=0) < 0 or mask.max(initial=0) > 65535:
        raise DataError(f"cannot write labels outside 0–65535 to {path}; use .nii.gz or .tif.")
    Image.fromarray(np.ascontiguousarray(mask.astype(dtype))).save(path, format="PNG")


def write_tiff(path: Path, mask: np.ndarray) -> None:
    """An (H, W) label map or a (D, H, W) stack of them as a zlib-compressed TIFF."""
    axes = "ZYX" if mask.ndim == 3 else "YX"
    tifffile.imwrite(
        path,
        np.ascontiguousarray(mask),
        photometric="minisblack",
        compression="zlib",
        metadata={"axes": axes},
    )


def _native(array: np.ndarray) -> np.ndarray:
    """Native byte order (16-bit PNGs can come big-endian), writable."""
    return np.array(array, dtype=array.dtype.newbyteorder("="))


def _label_from_pixels(array: np.ndarray, path: Path, colour: bool) -> np.ndarray:
    if colour:
        rgb = array[..., :3]
        grey = np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
        if not grey:
            raise DataError(
                f"{path} is a colour image, not a label map. Save labels as one channel of "
                "class ids (0 background, 1, 2, ...), e.g. a greyscale or palette PNG."
            )
        array = rgb[..., 0]
    label = as_label_map(array, path)
    values = np.unique(label)
    if values.size == 2 and values[0] == 0 and values[1] == 255:
        label = (label > 0).astype(np.uint8)  # a binary mask saved as 0/255
    return label
