"""The real MRI that ships with nilearn: MNI152 T1 with grey/white-matter labels."""

from __future__ import annotations

import numpy as np
import pytest

from samforge.data.builtin import MNI152_LABELS, mni152_case
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
