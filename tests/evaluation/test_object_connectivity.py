"""Objects are 8-connected (26 in 3D) everywhere by default, as in medico-sam, which turns
semantic labels into objects with ``skimage.measure.label`` (full connectivity by default):
the 2D and 3D protocols, the training Dataset and the training config. The shape: two
squares (cubes) of one class that touch only at a corner, one object under the default and
two under face connectivity."""

from __future__ import annotations

import numpy as np
from skimage import measure

from samforge.data import Case, ObjectSegmentationDataset
from samforge.evaluation.interactive2d import InteractiveSettings, object_masks
from samforge.evaluation.interactive3d import Protocol3D, case_objects
from samforge.training.config import DataConfig


def corner_touching_squares() -> np.ndarray:
    label = np.zeros((24, 24), np.uint8)
    label[2:12, 2:12] = 1
    label[12:22, 12:22] = 1
    return label


def test_the_2d_protocol_and_training_see_one_object_by_default():
    label = corner_touching_squares()
    assert measure.label(label).max() == 1  # the reference
    masks, _ = object_masks(label, connectivity=InteractiveSettings().connectivity)
    assert masks.shape[0] == 1 and int(masks.sum()) == 200
    assert object_masks(label, connectivity=1)[0].shape[0] == 2

    image = np.full(label.shape, 100, np.uint8)
    case = Case(image, label, (1.0, 1.0), None, "other", "corner")
    configured = DataConfig(train=[{"image": "x.png", "label": "y.png"}]).connectivity
    for data in (
        ObjectSegmentationDataset([case], image_size=32),
        ObjectSegmentationDataset([case], image_size=32, connectivity=configured),
    ):
        assert len(data[0]["masks"]) == 1
    assert len(ObjectSegmentationDataset([case], image_size=32, connectivity=1)[0]["masks"]) == 2


def test_the_3d_protocol_sees_one_object_by_default():
    label = np.zeros((12, 12, 12), np.uint8)
    label[1:6, 1:6, 1:6] = 1
    label[6:11, 6:11, 6:11] = 1
    assert measure.label(label).max() == 1  # the reference: 26-connected
    case = Case(np.zeros(label.shape, np.int16), label, (1.0, 1.0, 1.0), np.eye(4), "ct", "v")
    assert [o.area for o in case_objects(case, Protocol3D())] == [250]
    assert [o.area for o in case_objects(case, Protocol3D(connectivity=1))] == [125, 125]
