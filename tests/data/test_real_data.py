"""Readers on the real data in ../shared/data (skipped when it is absent)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel import orientations
from PIL import Image
from scipy import ndimage
from skimage.morphology import convex_hull_image

from samforge.data import open_dataset, read_case, split_by_subject, write_mask

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def hc18(shared_data):
    return open_dataset(shared_data / "hc18")


def test_hc18_layout_subjects_and_splits(hc18):
    assert len(hc18) == 373 and len(set(hc18.subjects)) == 300
    assert hc18.subjects[hc18.names.index("010_2HC")] == "010"
    parts = split_by_subject(hc18, seed=0)
    groups = [set(p.subjects) for p in parts.values()]
    assert sum(len(p) for p in parts.values()) == 373
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])


@pytest.mark.parametrize("name", ["000_HC", "010_2HC", "186_HC", "299_HC"])
def test_hc18_rings_become_filled_ellipses(hc18, shared_data, name):
    case = hc18[hc18.names.index(name)]
    assert case.image.shape == (540, 800) and case.image.dtype == np.uint8
    assert case.modality == "us" and case.label.dtype == np.uint8
    ring = np.asarray(Image.open(shared_data / "hc18" / "annotations" / f"{name}_Annotation.png"))
    ring = ring > 0
    mask = case.label > 0
    assert mask.sum() > 8 * ring.sum()  # a region, not an outline
    assert np.all(mask[ring])  # the outline is part of the region
    assert mask.sum() / convex_hull_image(mask).sum() > 0.98  # convex, as an ellipse is
    edge = mask & ~ndimage.binary_erosion(mask)
    assert ndimage.distance_transform_edt(~edge)[ring].max() < 3  # the outline is its edge
    assert ndimage.label(mask)[1] == 1


@pytest.mark.parametrize(
    ("image", "label", "shape", "modality"),
    [
        ("example_ct_sm.nii.gz", "example_seg.nii.gz", (122, 101, 30), "ct"),
        ("example_mr_sm.nii.gz", "example_seg_mr.nii.gz", (117, 91, 20), "mr"),
    ],
)
def test_totalsegmentator_nifti(shared_data, image, label, shape, modality):
    folder = shared_data / "totalsegmentator"
    case = read_case(folder / image, folder / label)
    reference = nib.load(folder / image)
    assert reference.shape == shape and case.image.shape == shape[::-1]
    assert case.spacing == tuple(float(z) for z in reference.header.get_zooms()[::-1]) == (3, 3, 3)
    np.testing.assert_allclose(case.affine, reference.affine)
    assert case.modality == modality and case.label.max() > 10
    np.testing.assert_array_equal(case.label, np.asanyarray(nib.load(folder / label).dataobj).T)


def _seg_in_dicom_orientation(seg: nib.Nifti1Image, target_affine: np.ndarray):
    """The segmentation reoriented by nibabel alone (not by samforge) onto the DICOM axes."""
    transform = orientations.ornt_transform(
        orientations.io_orientation(seg.affine), orientations.io_orientation(target_affine)
    )
    return seg.as_reoriented(transform)


def test_dicom_series_matches_its_nifti_segmentation(shared_data, tmp_path):
    folder = shared_data / "totalsegmentator"
    ct = read_case(folder / "example_ct_dicom")
    seg = nib.load(folder / "example_seg_dicom.nii.gz")
    assert ct.image.shape == seg.shape[::-1] == (20, 512, 512)
    assert ct.spacing == pytest.approx((2.0, 0.9765625, 0.9765625))
    assert ct.modality == "ct" and ct.image.dtype == np.int16 and ct.image.min() >= -1024
    moved = _seg_in_dicom_orientation(seg, ct.affine)
    np.testing.assert_allclose(moved.affine, ct.affine, atol=1e-3)  # same grid, voxel for voxel
    labels = np.asanyarray(moved.dataobj).T  # (slice, row, column), as ct.image
    assert labels.shape == ct.image.shape
    _check_labels_fit_the_anatomy(ct.image, labels)
    # samforge does the same reorientation itself when given the label
    with_label = read_case(folder / "example_ct_dicom", folder / "example_seg_dicom.nii.gz")
    np.testing.assert_array_equal(with_label.label, labels)
    # and a mask written for the DICOM series lands on the segmentation's voxels
    write_mask(tmp_path / "mask.nii.gz", with_label.label, ct)
    written = nib.load(tmp_path / "mask.nii.gz")
    back = _seg_in_dicom_orientation(written, seg.affine)
    np.testing.assert_allclose(back.affine, seg.affine, atol=1e-3)
    np.testing.assert_array_equal(np.asanyarray(back.dataobj), np.asanyarray(seg.dataobj))


def _check_labels_fit_the_anatomy(hu: np.ndarray, labels: np.ndarray) -> None:
    foreground = labels > 0
    assert (hu[foreground] > -200).mean() > 0.95  # organs and bones are not air
    flipped = labels[:, ::-1, :] > 0  # a control: rows upside down
    assert (hu[flipped] > -200).mean() < 0.85
    ribs = (labels >= 92) & (labels <= 115)  # TotalSegmentator v2 rib classes
    humeri = (labels == 69) | (labels == 70)
    assert hu[ribs].mean() > 250 and hu[humeri].mean() > 400


def test_inspect_counts_objects_of_the_real_volumes(shared_data: Path):
    case = read_case(
        shared_data / "totalsegmentator" / "example_ct_sm.nii.gz",
        shared_data / "totalsegmentator" / "example_seg.nii.gz",
    )
    from samforge.data import count_objects, instances_from_labels

    counts = count_objects(case.label, 20)
    objects = instances_from_labels(case.label, 20)
    assert sum(len(v) for v in counts.values()) == len(objects) > 30
    for obj in objects[:5]:
        x0, y0, z0, x1, y1, z1 = obj.box
        assert obj.mask[z0:z1, y0:y1, x0:x1].sum() == obj.area
