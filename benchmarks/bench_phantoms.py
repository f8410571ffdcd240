"""Phantom generation speed, against reading an image of the same size from disk.

Phantoms feed tests, the demo and training, so generating one should cost about what
reading a real image costs. Baseline, measured in the same run: writing each phantom as a
PNG (2D) or NIfTI (3D) once (``samforge data phantom``'s layout), then timing
``samforge.data.read_case`` of that file.

    python benchmarks/bench_phantoms.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path

from samforge.data import read_case
from samforge.data.phantom_datasets import write_phantom_dataset
from samforge.data.phantoms import make_phantom

CASES = [(m, (256, 256)) for m in ("ct", "mr", "us", "xray")] + [
    (m, (32, 128, 128)) for m in ("ct", "mr", "us")
]


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def written(folder: Path, modality: str, shape: tuple[int, ...]) -> Path:
    """One phantom written as ``samforge data phantom`` writes it: its image file."""
    dataset = write_phantom_dataset(folder / modality, modality, shape, count=1, seed=1)
    (name,) = dataset.names
    if len(shape) == 2:
        return dataset.folder / "images" / f"{name}.png"
    return dataset.folder / "imagesTr" / f"{name}_0000.nii.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'phantom':<22}{'generate ms':>12}{'read ms':>10}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as temp:
        for modality, shape in CASES:
            path = written(Path(temp), modality, shape)
            generate = best_of(args.repeats, partial(make_phantom, modality, shape=shape, seed=1))
            read = best_of(args.repeats, partial(read_case, path))
            name = f"{modality} {'×'.join(map(str, shape))}"
            print(f"{name:<22}{generate * 1e3:>12.1f}{read * 1e3:>10.1f}{generate / read:>8.2f}")


if __name__ == "__main__":
    main()
