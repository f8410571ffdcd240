"""Named splits of each layout (issue 14, item 3), and which one a role opens.

Layouts as published: a MedSegBench ``{name}_{size}.npz`` holds ``{split}_images`` /
``{split}_label`` arrays; an nnU-Net v2 raw folder holds ``imagesTr``/``labelsTr`` and, for
a labelled test split, ``imagesTs``/``labelsTs``; other layouts have no named splits.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from samforge.data import choose_split, dataset_splits
from samforge.errors import DataError


def _nii(path: Path, data: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)


def test_medsegbench_splits_are_its_arrays(tmp_path):
    path = tmp_path / "kvasir_128.npz"
    arrays = {
        f"{s}_{k}": np.zeros((1, 4, 4), np.uint8)
        for s in ("train", "test")
        for k in ("images", "label")
    }
    np.savez(path, **arrays)
    assert dataset_splits(path) == ("train", "test")
    assert choose_split(path, "auto", None, "train") == "train"
    assert choose_split(path, "auto", None, "val") is None  # no val arrays: the whole file
    with pytest.raises(DataError, match=r"no split 'val'.*train, test"):
        choose_split(path, "auto", "val", "train")


def test_nnunet_has_a_test_split_only_with_labels(tmp_path):
    root = tmp_path / "Dataset001_Liver"
    root.mkdir()
    info = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1},
            "numTraining": 1, "file_ending": ".nii.gz"}  # fmt: skip
    (root / "dataset.json").write_text(json.dumps(info))
    _nii(root / "imagesTr" / "liver_000_0000.nii.gz", np.zeros((4, 4, 4), np.int16))
    _nii(root / "labelsTr" / "liver_000.nii.gz", np.ones((4, 4, 4), np.uint8))
    _nii(root / "imagesTs" / "liver_900_0000.nii.gz", np.zeros((4, 4, 4), np.int16))
    assert dataset_splits(root) == ("train",)
    assert choose_split(root, "auto", None, "test") is None  # unlabelled: imagesTr, as before
    _nii(root / "labelsTs" / "liver_900.nii.gz", np.ones((4, 4, 4), np.uint8))
    assert dataset_splits(root) == ("train", "test")
    assert choose_split(root, "auto", None, "test") == "test"


def test_folders_have_no_named_splits(tmp_path):
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / folder / "a.png")
    assert dataset_splits(tmp_path) == ()
    assert choose_split(tmp_path, "auto", None, "test") is None
    with pytest.raises(DataError, match=r"no named splits.*subjects"):
        choose_split(tmp_path, "auto", "test", None)
