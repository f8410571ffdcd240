"""open_dataset over every layout, written by the tests; MedSegBench download (offline)."""

from __future__ import annotations

import hashlib
import io
import json
import urllib.error
import urllib.request
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from skimage import draw

from samforge.data import CaseList, detect_layout, download_medsegbench, open_dataset
from samforge.data.readers import medsegbench
from samforge.errors import DataError

RNG = np.random.default_rng(0)


def _png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _nii(path: Path, data: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.diag([1.5, 1.5, 3.0, 1.0])), path)
    return path


def _square(shape=(20, 24), box=(2, 3, 9, 11), value=1) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    y0, x0, y1, x1 = box
    mask[y0:y1, x0:x1] = value
    return mask


def test_image_mask_folders_with_label_maps(tmp_path):
    for name in ("case1", "case10", "case2"):
        _png(tmp_path / "images" / f"{name}.png", RNG.integers(0, 255, (20, 24), dtype=np.uint8))
    _png(tmp_path / "masks" / "case1.png", _square(value=2))
    _png(tmp_path / "masks" / "case10_mask.png", _square(box=(5, 5, 15, 15)))
    cases = open_dataset(tmp_path, subject_pattern=r"case(\d)")
    assert detect_layout(tmp_path) == "folders" and isinstance(cases, CaseList)
    assert cases.names == ["case1", "case10", "case2"]
    assert cases.subjects == ["1", "1", "2"]
    assert cases[0].label.max() == 2 and cases[1].label.sum() == 100
    assert cases[2].label is None  # an image without mask stays unlabelled


def test_one_binary_mask_per_object(tmp_path):
    _png(tmp_path / "images" / "scan.png", np.zeros((20, 24), np.uint8))
    _png(tmp_path / "images" / "scan_2.png", np.zeros((20, 24), np.uint8))
    _png(tmp_path / "labels" / "scan_liver.png", _square(value=255))
    _png(tmp_path / "labels" / "scan_tumour.png", _square(box=(5, 8, 7, 10), value=255))
    _png(tmp_path / "labels" / "scan_2_kidney.png", _square(box=(0, 0, 4, 4), value=255))
    cases = open_dataset(tmp_path)
    scan = cases[0]
    assert scan.meta["label_names"] == {1: "scan_liver", 2: "scan_tumour"}
    assert (scan.label == 2).sum() == 4 and (scan.label == 1).sum() == 7 * 8 - 4
    assert scan.meta["overlap_pixels"] == 4
    assert cases[1].meta["label_names"] == {1: "scan_2_kidney"}  # the longest name wins


def test_nnunet_v2_raw_dataset(tmp_path):
    root = tmp_path / "Dataset042_Test"
    info = {
        "channel_names": {"0": "CT"},
        "labels": {"background": 0, "liver": 1},
        "numTraining": 2,
        "file_ending": ".nii.gz",
    }
    root.mkdir()
    (root / "dataset.json").write_text(json.dumps(info))
    for case in ("liver_000", "liver_001"):
        _nii(root / "imagesTr" / f"{case}_0000.nii.gz", np.full((6, 5, 4), -900, np.int16))
        label = np.zeros((6, 5, 4), np.uint8)
        label[1:3, 1:3, 1:3] = 1
        _nii(root / "labelsTr" / f"{case}.nii.gz", label)
    _nii(root / "imagesTs" / "liver_900_0000.nii.gz", np.zeros((6, 5, 4), np.int16))
    cases = open_dataset(root)
    assert detect_layout(root) == "nnunet" and cases.names == ["liver_000", "liver_001"]
    case = cases[1]
    assert case.modality == "ct" and case.image.shape == (4, 5, 6)
    assert case.meta["label_names"] == {1: "liver"} and case.label.sum() == 8
    test = open_dataset(root, split="test")
    assert test.names == ["liver_900"] and test[0].label is None
    (root / "labelsTr" / "liver_001.nii.gz").unlink()
    with pytest.raises(DataError, match=r"training cases without a label.*liver_001"):
        open_dataset(root)


def test_nifti_folder_pairs_seg_files(tmp_path):
    _nii(tmp_path / "a.nii.gz", np.zeros((6, 5, 4), np.int16))
    _nii(tmp_path / "a_seg.nii.gz", np.ones((6, 5, 4), np.uint8))
    _nii(tmp_path / "b.nii", np.zeros((6, 5, 4), np.int16))
    cases = open_dataset(tmp_path)
    assert cases.names == ["a", "b"]
    assert cases[0].label.sum() == 120 and cases[1].label is None


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed], ids=["stored", "deflated"])
def test_medsegbench_npz(tmp_path, save):
    arrays = {
        "train_images": RNG.integers(0, 255, (3, 16, 16), dtype=np.uint8),
        "train_label": RNG.integers(0, 2, (3, 16, 16), dtype=np.uint8),
        "test_images": RNG.integers(0, 255, (2, 16, 16), dtype=np.uint8),
        "test_label": RNG.integers(0, 2, (2, 16, 16), dtype=np.uint8),
    }
    path = tmp_path / "busi_128.npz"
    save(path, **arrays)
    cases = open_dataset(path)
    assert detect_layout(path) == "medsegbench"
    assert cases.names == [f"busi_train_0000{i}" for i in range(3)] + [
        f"busi_test_0000{i}" for i in range(2)
    ]
    case = cases[4]
    np.testing.assert_array_equal(case.image, arrays["test_images"][1])
    np.testing.assert_array_equal(case.label, arrays["test_label"][1])
    assert case.modality == "us" and case.meta["split"] == "test"
    mapped = isinstance(medsegbench._member(path, "test_images.npy"), np.memmap)
    assert mapped == (save is np.savez)  # uncompressed members are memory-mapped
    assert open_dataset(path, split="test").names == ["busi_test_00000", "busi_test_00001"]
    with pytest.raises(DataError, match="no arrays val_images"):
        open_dataset(path, split="val")


def test_medsegbench_download_offline_says_where_to_put_the_file(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    url, md5 = medsegbench.medsegbench_url("kvasir", 256)
    assert url == "https://zenodo.org/records/13358372/files/kvasir_256.npz?download=1"
    with pytest.raises(DataError) as error:
        download_medsegbench("kvasir", 256, tmp_path)
    message = str(error.value)
    assert url in message and md5 in message and str(tmp_path / "kvasir_256.npz") in message
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DataError, match="unknown MedSegBench dataset 'kvasirr'"):
        download_medsegbench("kvasirr", 256, tmp_path)
    with pytest.raises(DataError, match=r"sizes \(128, 256, 512\)"):
        download_medsegbench("kvasir", 300, tmp_path)


def test_medsegbench_download_checks_md5(tmp_path, monkeypatch):
    payload = b"pretend npz bytes" * 1000
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: io.BytesIO(payload))
    good = hashlib.md5(payload).hexdigest()
    entry = medsegbench.MEDSEGBENCH["busi"]
    monkeypatch.setitem(medsegbench.MEDSEGBENCH, "busi", (entry[0], good, good, good, "us"))
    path = download_medsegbench("busi", 128, tmp_path)
    assert path == tmp_path / "busi_128.npz" and path.read_bytes() == payload
    monkeypatch.setitem(medsegbench.MEDSEGBENCH, "busi", (entry[0], "0" * 32, "0" * 32, "0", "us"))
    with pytest.raises(DataError, match=r"has MD5 .*expected 0{32}"):
        download_medsegbench("busi", 256, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busi_128.npz"]


def test_samed2d_json_index(tmp_path):
    stem = "ct_00--AbdomenCT1K--Case_00001--x_0042"
    _png(tmp_path / "images" / f"{stem}.png", RNG.integers(0, 255, (20, 24, 3), dtype=np.uint8))
    _png(tmp_path / "masks" / f"{stem}--liver_000.png", _square(value=255))
    _png(tmp_path / "masks" / f"{stem}--spleen_000.png", _square(box=(12, 12, 18, 20), value=255))
    other = "mr_00--ACDC--patient001--x_0001"
    _png(tmp_path / "images" / f"{other}.png", np.zeros((20, 24), np.uint8))
    index = {
        f"./images/{stem}.png": [
            f"./masks/{stem}--liver_000.png",
            f"./masks/{stem}--spleen_000.png",
        ],
        f"./images/{other}.png": [],
    }
    (tmp_path / "image2label_train.json").write_text(json.dumps(index))
    for where in (tmp_path, tmp_path / "image2label_train.json"):
        cases = open_dataset(where)
        assert cases.names == [stem, other]
        assert cases.subjects == ["AbdomenCT1K--Case_00001", "ACDC--patient001"]
    case = cases[0]
    assert case.modality == "ct" and cases[1].modality == "mr"
    assert (case.label == 1).sum() == 56 and (case.label == 2).sum() == 48


def _hc18(root: Path) -> None:
    shape = (120, 160)
    specs = {"001_HC": (60, 80, 30, 45), "001_2HC": (62, 78, 28, 44), "002_HC": (100, 80, 40, 50)}
    for name, (row, col, r_radius, c_radius) in specs.items():
        _png(root / "images" / f"{name}.png", RNG.integers(0, 255, shape, dtype=np.uint8))
        ring = np.zeros(shape, np.uint8)
        rr, cc = draw.ellipse_perimeter(row, col, r_radius, c_radius, shape=shape)
        ring[rr, cc] = 255
        _png(root / "annotations" / f"{name}_Annotation.png", ring)


def test_hc18_fills_rings_and_groups_frames_by_subject(tmp_path):
    _hc18(tmp_path)
    cases = open_dataset(tmp_path)
    assert detect_layout(tmp_path) == "hc18"
    assert cases.names == ["001_2HC", "001_HC", "002_HC"]
    assert cases.subjects == ["001", "001", "002"]
    closed = cases[1]
    assert closed.modality == "us" and closed.meta["label_names"] == {1: "fetal_head"}
    area = np.pi * 30 * 45
    assert abs(int(closed.label.sum()) - area) < 0.05 * area
    open_at_edge = cases[2]  # the ellipse runs off the bottom edge: ring not closed
    rows = np.arange(120)[:, None]
    inside = ((rows - 100) / 40.0) ** 2 + ((np.arange(160)[None] - 80) / 50.0) ** 2 <= 1
    overlap = (open_at_edge.label.astype(bool) & inside).sum() / inside.sum()
    assert overlap > 0.95 and open_at_edge.label.sum() < 1.08 * inside.sum()


def test_layout_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        open_dataset(tmp_path / "missing")
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(DataError, match=r"cannot tell the dataset layout.*nnU-Net.*layout="):
        open_dataset(tmp_path)
    with pytest.raises(DataError, match="unknown layout 'zarr'"):
        open_dataset(tmp_path, layout="zarr")
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        open_dataset(tmp_path)


def test_single_file_layout(tmp_path):
    path = _png(tmp_path / "one.png", np.zeros((5, 6), np.uint8))
    cases = open_dataset(path)
    assert cases.names == ["one"] and cases[0].image.shape == (5, 6)
