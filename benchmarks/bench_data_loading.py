"""How fast samforge's data layer feeds a model: slices/s from NIfTI, images/s from PNG folders.

Writes its own synthetic data to a temporary folder (phantom-like blobs with labels), then
times, for each source:

- ``read``: ``read_case`` of every file (decompression, parsing, axis mapping);
- ``dataset``: ``ObjectSegmentationDataset`` items at the model's input size (read + intensity
  normalisation + object sampling + resize/pad), single process, as one DataLoader worker
  sees it.

Run: ``python benchmarks/bench_data_loading.py [--quick] [--image-size 1024]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from PIL import Image

from samforge.data import ObjectSegmentationDataset, open_dataset
from samforge.testing.timing import machine_description


def blobs(shape: tuple[int, ...], rng: np.random.Generator, count: int = 6) -> np.ndarray:
    """An integer label map with ``count`` ellipsoids (classes 1..3) of random size."""
    grid = np.indices(shape, dtype=np.float32)
    label = np.zeros(shape, np.uint8)
    for index in range(count):
        centre = [rng.uniform(0.2, 0.8) * n for n in shape]
        radii = [rng.uniform(0.05, 0.15) * n + 2 for n in shape]
        inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True)) <= 1
        label[inside] = 1 + index % 3
    return label


def write_nifti(folder: Path, volumes: int, depth: int, size: int, compress: bool) -> list[Path]:
    rng = np.random.default_rng(0)
    suffix = ".nii.gz" if compress else ".nii"
    paths = []
    for index in range(volumes):
        label = blobs((depth, size, size), rng)
        hu = (-1000 + 1040 * (label > 0) + rng.normal(0, 20, label.shape)).astype(np.int16)
        affine = np.diag([0.8, 0.8, 2.5, 1.0])
        path = folder / f"ct_{index:03d}{suffix}"
        nib.save(nib.Nifti1Image(hu.transpose(2, 1, 0), affine), path)
        nib.save(
            nib.Nifti1Image(label.transpose(2, 1, 0), affine),
            folder / f"ct_{index:03d}_seg{suffix}",
        )
        paths.append(path)
    return paths


def write_png_folder(folder: Path, images: int, size: int) -> Path:
    rng = np.random.default_rng(1)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for index in range(images):
        label = blobs((size, size), rng)
        image = np.clip(60 + 120 * (label > 0) + rng.normal(0, 25, label.shape), 0, 255)
        Image.fromarray(image.astype(np.uint8)).save(folder / "images" / f"img_{index:04d}.png")
        Image.fromarray(label).save(folder / "masks" / f"img_{index:04d}.png")
    return folder


def timed(work: Callable[[], int]) -> tuple[int, float]:
    start = time.perf_counter()
    count = work()
    return count, time.perf_counter() - start


def bench_nifti(folder: Path, args, compress: bool) -> list[tuple[str, str, float]]:
    write_nifti(folder, args.volumes, args.depth, args.size, compress)
    cases = open_dataset(folder, layout="nifti")
    kind = "NIfTI .nii.gz" if compress else "NIfTI .nii"
    count, seconds = timed(lambda: sum(case.image.shape[0] for case in cases))
    rows = [(kind, "read_case (slices)", count / seconds)]
    data = ObjectSegmentationDataset(cases, n_obj=5, image_size=args.image_size, cache_size=1)
    count, seconds = timed(lambda: sum(1 for _ in (data[i] for i in range(len(data)))))
    rows.append((kind, f"dataset items @ {args.image_size} (slices)", count / seconds))
    return rows


def bench_png(folder: Path, args) -> list[tuple[str, str, float]]:
    write_png_folder(folder, args.images, args.size)
    cases = open_dataset(folder)
    count, seconds = timed(lambda: sum(1 for case in cases if case.label is not None))
    rows = [("PNG folders", "read_case (images)", count / seconds)]
    data = ObjectSegmentationDataset(cases, n_obj=5, image_size=args.image_size)
    count, seconds = timed(lambda: sum(1 for _ in (data[i] for i in range(len(data)))))
    rows.append(("PNG folders", f"dataset items @ {args.image_size} (images)", count / seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=4)
    parser.add_argument("--depth", type=int, default=64)
    parser.add_argument("--size", type=int, default=512, help="in-plane size (pixels)")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--image-size", type=int, default=1024, help="model input size S")
    parser.add_argument("--quick", action="store_true", help="small data, for a smoke test")
    args = parser.parse_args()
    if args.quick:
        args.volumes, args.depth, args.size, args.images = 2, 16, 128, 10
    torch.set_num_threads(os.cpu_count() or 1)
    rows = []
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        for compress in (True, False):
            folder = root / ("gz" if compress else "raw")
            folder.mkdir()
            rows += bench_nifti(folder, args, compress)
        rows += bench_png(root / "png", args)
    print(f"machine: {machine_description()}")
    print(
        f"data: {args.volumes} volumes of {args.depth}×{args.size}×{args.size} int16; "
        f"{args.images} PNG images of {args.size}×{args.size} with masks"
    )
    width = max(len(r[0]) + len(r[1]) for r in rows) + 3
    for source, what, rate in rows:
        print(f"{source} — {what}".ljust(width), f"{rate:9.1f} /s")


if __name__ == "__main__":
    main()
