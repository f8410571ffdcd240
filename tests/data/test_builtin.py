"""The real MRI that ships with nilearn: MNI152 T1 with grey/white-matter labels."""

from __future__ import annotations

import numpy as np
import pytest

from samforge.data.builtin import MNI152_LABELS, mni152_case, mni152_structures
from samforge.errors import DataError


def test_mni152_labels_lie_on_the_matching_tissue():
    case = mni152_case(step=3)
    assert case.is_volume and case.modality == "mr"
    assert case.spacing == (3.0, 3.0, 3.0)
    assert set(np.unique(case.label)) == {0, *MNI152_LABELS}
    grey = case.image[case.label == 1].astype(float)
    white = case.image[case.label == 2].astype(float)
    background = case.image[case.label == 0].astype(float)
    # T1 contrast: white matter brighter than grey matter, both brighter than the mean of
    # everything else (air, CSF, skull). Labels on the wrong grid would break this.
    assert np.median(white) > np.median(grey) + 20
    assert np.median(grey) > background.mean()
    # Axial slices first, (z, y, x): the MNI152 box is longest front to back (y).
    assert case.image.shape[1] == max(case.image.shape)


def test_step_below_one_is_refused():
    with pytest.raises(DataError, match="step"):
        mni152_case(step=0)


def test_the_brain_and_lateral_ventricles_are_where_anatomy_puts_them():
    """Checked against anatomy, not against the derivation: the brain with the CSF it
    encloses is close to the intracranial volume, 1.2–2.0 L in adults (the MNI152 template
    is larger than the average head); each lateral ventricle holds a few to ~20 mL,
    the two mirror each other across the midline, sit inside the brain, and are CSF (dark
    on T1, darker than grey matter)."""
    brain, ventricles = mni152_structures(step=2)
    voxel_ml = np.prod(brain.spacing) / 1000
    assert 1.2 < brain.label.sum() * voxel_ml / 1000 < 2.0  # litres
    assert set(np.unique(ventricles.label)) == {0, 1, 2}
    grey = mni152_case(step=2).label == 1
    centre_x = np.argwhere(brain.label > 0)[:, 2].mean()
    sides = [np.argwhere(ventricles.label == side) for side in (1, 2)]
    for side, voxels in zip((1, 2), sides, strict=True):
        assert 2 < len(voxels) * voxel_ml < 25
        assert brain.label[ventricles.label == side].all()
        assert np.median(brain.image[ventricles.label == side]) < np.median(brain.image[grey])
    left, right = (voxels.mean(axis=0) for voxels in sides)
    assert left[2] < centre_x < right[2]
    assert abs((centre_x - left[2]) - (right[2] - centre_x)) < 2  # mirrored, in voxels
    assert np.allclose(left[:2], right[:2], atol=2)
