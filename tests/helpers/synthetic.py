"""Synthetic label maps and volumes with known objects, for the fake models of
:mod:`helpers.fake_models` and the protocols and propagation they test.

- 2D: :func:`synthetic_label` (64×64, two classes, four objects) and :func:`components`,
  its objects found independently of samforge.
- 3D: a ball, a bending tube and an object that ends where another begins, as bool masks
  or label maps; :func:`image_of` turns one into the volume that
  :class:`~helpers.fake_models.ObjectOracleSam` reads, :func:`expected_run` says what an
  ideal propagation keeps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

SIZE = 64  # side of the 2D label map: one low-resolution pixel of VIT_TEST per pixel
OBJECT_VALUE = 200  # uint8 intensity of every object voxel in image_of; the background is 0–39


def synthetic_label() -> np.ndarray:
    """(64, 64) label map: class 1 = two rectangles and a disk, class 2 = a diagonal band."""
    label = np.zeros((SIZE, SIZE), dtype=np.uint8)
    label[4:14, 5:25] = 1
    label[40:60, 44:52] = 1
    yy, xx = np.mgrid[:SIZE, :SIZE]
    label[(yy - 24) ** 2 + (xx - 46) ** 2 <= 7**2] = 1
    band = (np.abs(yy - xx - 10) <= 2) & (yy >= 20) & (yy < 55)
    label[band] = 2
    return label


def components(label: np.ndarray) -> list[np.ndarray]:
    """The label map's objects, found independently of samforge: face-connected components
    of each class with at least 20 pixels."""
    objects = []
    for class_id in np.unique(label[label > 0]):
        parts, count = ndimage.label(label == class_id)
        objects += [parts == i for i in range(1, count + 1) if (parts == i).sum() >= 20]
    return objects


def disc(shape: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    """(H, W) bool disc; ``centre`` is (x, y) in pixels."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius**2


def sphere(depth: int = 32, size: int = 64, radius: float = 10.0) -> np.ndarray:
    """(D, size, size) bool ball centred in the volume."""
    zz, yy, xx = np.mgrid[:depth, :size, :size]
    centre = (depth // 2, size // 2, size // 2)
    return (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= radius**2


def bent_tube(depth: int = 30, size: int = 64, radius: float = 6.0) -> np.ndarray:
    """A tube through every slice whose centre drifts along x on a parabola (≤ 2 px/slice)."""
    shape = (size, size)
    centres = 14 + 0.04 * np.arange(depth) ** 2  # x from 14 to ~48; the step grows to 2.3
    return np.stack([disc(shape, (x, size / 2), radius) for x in centres])


def ending_object(depth: int = 30, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A thick cylinder (radius 8) on slices 5–19, then a thin one (radius 3) in the same
    place on slices 20–29: where the first ends, the next slice shows another structure.

    Returns (label map with 1 = thick, 2 = thin, the thick cylinder alone as bool).
    """
    shape = (size, size)
    label = np.zeros((depth, size, size), dtype=np.uint8)
    label[5:20][:, disc(shape, (32, 32), 8)] = 1
    label[20:][:, disc(shape, (32, 32), 3)] = 2
    return label, label == 1


def blocky_rgb(height: int, width: int, seed: int, block: int = 8, noise: int = 20) -> np.ndarray:
    """(H, W, 3) uint8: random ``block``-pixel squares plus ±``noise`` grey levels, so a
    resize changes values (unlike a flat image) and parity tests see every interpolation."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(height // block + 1, width // block + 1, 3))
    image = np.kron(coarse, np.ones((block, block, 1)))[:height, :width]
    jitter = rng.integers(-noise, noise + 1, size=(height, width, 3))
    return np.clip(image + jitter, 0, 255).astype(np.uint8)


def image_of(mask: np.ndarray) -> np.ndarray:
    """The uint8 volume ObjectOracleSam reads: objects bright, background dark, a different
    background value per slice (0–39) so that no two slices share an embedding."""
    background = (np.arange(mask.shape[0]) % 40)[:, None, None]
    return np.where(mask > 0, OBJECT_VALUE, background).astype(np.uint8)


def expected_run(mask: np.ndarray, start: int, iou_threshold: float) -> np.ndarray:
    """What an ideal propagation from slice ``start`` of ``mask`` (D, H, W) keeps: the
    slices reached before the first consecutive pair with IoU below the threshold (or an
    empty slice), in both directions."""
    keep = np.zeros(mask.shape[0], dtype=bool)
    keep[start] = True
    for step in (-1, 1):
        index = start
        while 0 <= index + step < mask.shape[0]:
            a, b = mask[index], mask[index + step]
            union = (a | b).sum()
            if not b.any() or (a & b).sum() / union < iou_threshold:
                break
            index += step
            keep[index] = True
    return mask & keep[:, None, None]


def write_phantom_folder(root: Path, count: int = 3) -> Path:
    """An images/ + masks/ dataset of ``count`` 96×96 ultrasound phantoms (uint8 PNG)."""
    from PIL import Image

    from samforge.data.phantoms import make_phantom

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for seed in range(count):
        image, label, _ = make_phantom("us", shape=(96, 96), seed=seed)
        Image.fromarray(image).save(root / "images" / f"case{seed:03d}.png")
        Image.fromarray(label.astype(np.uint8)).save(root / "masks" / f"case{seed:03d}.png")
    return root
