"""HC18 at a quarter of its resolution, split by subject, for the small semantic comparison.

HC18's 800×540 frames shrink to 200×135 (bilinear; masks, the filled head outlines that
samforge's HC18 reader makes, by nearest neighbour), about the scale at which samforge_nano
saw them (longest side 256). Subjects 000–199 train, 200–249 validate, 250–299 test (the
issue's split; samforge_nano never saw 250–299). Written as ``images/`` + ``masks/`` PNG
folders, one per split (``000-HC.png``: HC18's own names would make samforge read the
folders as HC18's layout, whose outlines they do not hold).

    python experiments/semantic/prepare_hc18.py [--data ../shared/data/hc18] [--out hc18_quarter]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from PIL import Image

from samforge.data import open_dataset
from samforge.data.writers import write_image
from samforge.workflows.subjects import SubjectRange

SPLITS = {"train": "000-199", "val": "200-249", "test": "250-299"}
SCALE = 4


def shrink(array: np.ndarray, resample: Image.Resampling) -> np.ndarray:
    height, width = array.shape[:2]
    size = (round(width / SCALE), round(height / SCALE))
    return np.asarray(Image.fromarray(array).resize(size, resample))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = Path(os.environ.get("SAMFORGE_SHARED_DATA", "../shared/data"))
    parser.add_argument("--data", type=Path, default=shared / "hc18")
    parser.add_argument("--out", type=Path, default=Path("hc18_quarter"))
    args = parser.parse_args()
    cases = open_dataset(args.data)
    for split, subjects in SPLITS.items():
        chosen = SubjectRange.parse(subjects).select(cases)
        for case in chosen:
            assert case.label is not None
            image = shrink(np.asarray(case.image, np.uint8), Image.Resampling.BILINEAR)
            mask = shrink(case.label.astype(np.uint8), Image.Resampling.NEAREST)
            name = case.name.replace("_", "-")  # 000-HC: not taken for HC18's own layout
            write_image(args.out / split / "images" / f"{name}.png", image)
            write_image(args.out / split / "masks" / f"{name}.png", mask)
        print(f"{split}: {len(chosen)} images of subjects {subjects}")


if __name__ == "__main__":
    main()
