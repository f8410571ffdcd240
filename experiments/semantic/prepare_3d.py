"""The 3D data of the small semantic comparison, as NIfTI folders that any config can name.

Two real volumes sets, split so that no test voxel was trained on:

- ``mni152/{train,test}/``: the MNI152 2009c T1 template at 2 mm with grey (1) and white
  (2) matter (nilearn's, via :func:`samforge.data.builtin.mni152_case`). One brain, so it
  is cut across: the inferior axial slabs train, the superior ones test, 8 mm apart.
- ``totalseg/{train,test}/``: TotalSegmentator's 20-slice CT DICOM series (resampled to
  3 mm) and its small MR example train; its small CT example (3 mm) tests, a volume that
  samforge_nano never saw (its pretraining used the DICOM series). Five organs both label
  sets number alike (spleen, right and left kidney, liver, stomach) become classes 1–5;
  every other structure is background. The DICOM series shows no kidney, so the kidneys
  are learnt from the MR alone. The labels are TotalSegmentator's predictions, so scores
  on them measure agreement with TotalSegmentator.

    python experiments/semantic/prepare_3d.py [--data ../shared/data] [--out data3d]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from samforge.data import Case, read_case
from samforge.data.builtin import mni152_case
from samforge.data.writers import write_volume_nifti

ORGANS = {1: "spleen", 2: "kidney_right", 3: "kidney_left", 5: "liver", 6: "stomach"}
MNI_TRAIN_SLABS = slice(0, 40)  # 2 mm slices: 80 mm of inferior brain
MNI_TEST_SLABS = slice(44, None)


def write_case(folder: Path, name: str, image: np.ndarray, label: np.ndarray, spacing) -> None:
    """``folder/name.nii.gz`` and ``folder/name_seg.nii.gz`` (the NIfTI folder layout)."""
    affine = np.diag([*reversed([float(s) for s in spacing]), 1.0])
    write_volume_nifti(folder / f"{name}.nii.gz", image, affine)
    write_volume_nifti(folder / f"{name}_seg.nii.gz", label.astype(np.uint8), affine)


def organs_only(label: np.ndarray) -> np.ndarray:
    """TotalSegmentator's labels -> the five organs as 1–5, everything else 0."""
    out = np.zeros(label.shape, np.uint8)
    for new, old in enumerate(ORGANS, start=1):
        out[label == old] = new
    return out


def resampled(case: Case, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """(image, label) of a volume at isotropic ``spacing`` mm (linear / nearest)."""
    assert case.label is not None
    factors = [s / spacing for s in case.spacing]
    image = ndimage.zoom(case.image.astype(np.float32), factors, order=1)
    label = ndimage.zoom(case.label, factors, order=0)
    return image.round().astype(np.int16), label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = Path(os.environ.get("SAMFORGE_SHARED_DATA", "../shared/data"))
    parser.add_argument("--data", type=Path, default=shared)
    parser.add_argument("--out", type=Path, default=Path("data3d"))
    args = parser.parse_args()

    brain = mni152_case(step=2)
    assert brain.label is not None
    for split, slabs in (("train", MNI_TRAIN_SLABS), ("test", MNI_TEST_SLABS)):
        name = f"mni152_{split}"
        image, label = brain.image[slabs], brain.label[slabs]
        write_case(args.out / "mni152" / split, name, image, label, brain.spacing)

    total = args.data / "totalsegmentator"
    train, test = args.out / "totalseg" / "train", args.out / "totalseg" / "test"
    dicom = read_case(total / "example_ct_dicom", total / "example_seg_dicom.nii.gz")
    image, label = resampled(dicom, 3.0)
    write_case(train, "ct_dicom", image, organs_only(label), (3.0,) * 3)
    for folder, name, image_file, label_file in (
        (train, "mr", "example_mr_sm.nii.gz", "example_seg_mr.nii.gz"),
        (test, "ct", "example_ct_sm.nii.gz", "example_seg.nii.gz"),
    ):
        case = read_case(total / image_file, total / label_file)
        assert case.label is not None
        write_case(folder, name, case.image, organs_only(case.label), case.spacing)
    print(f"wrote {args.out}/mni152/{{train,test}} and {args.out}/totalseg/{{train,test}}")


if __name__ == "__main__":
    main()
