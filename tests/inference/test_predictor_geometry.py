"""Geometry of the Predictor, independent of any trained network.

A test double replaces the mask decoder with an oracle that "segments" exactly the box
(or a disk around the point) it receives in the model frame. Whatever the image's shape,
the mask that comes back at the original resolution must then cover that box or disk in
original pixels: this pins down x/y order, orientation, padding and both resize paths.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers.fake_models import BoxSam
from samforge.inference import Predictor
from samforge.models.config import VIT_TEST


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def box_mask(shape, box) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    return mask


@pytest.fixture(params=["sam", "medsam"])
def predictor(request) -> Predictor:
    config = VIT_TEST.with_changes(preprocessing=request.param)
    return Predictor(BoxSam(config).eval())


@pytest.mark.parametrize("shape", [(300, 200), (200, 300), (256, 256), (97, 413)])
def test_box_comes_back_where_it_was_drawn(predictor, shape):
    rng = np.random.default_rng(0)
    predictor.set_image(rng.integers(0, 255, size=shape, dtype=np.uint8))
    height, width = shape
    box = (width // 5, height // 3, width // 2, height * 3 // 4)  # x0, y0, x1, y1
    result = predictor.predict(boxes=box)
    assert result.masks.shape == (1, 1, height, width)
    expected = box_mask(shape, box)
    assert iou(result.masks[0, 0], expected) > 0.9
    # x and y swapped would put the mask elsewhere on a non-square image.
    assert result.masks[0, 0][expected].mean() > 0.9


def test_point_disk_is_centred_on_the_point(predictor):
    shape = (240, 400)
    predictor.set_image(np.zeros(shape, dtype=np.uint8))
    x, y = 300.0, 60.0
    result = predictor.predict(points=[[x, y]], labels=[1])
    ys, xs = np.nonzero(result.masks[0, 0])
    assert abs(xs.mean() - x) < 3 and abs(ys.mean() - y) < 3


def test_batched_boxes_equal_one_at_a_time(predictor):
    shape = (180, 260)
    predictor.set_image(np.full(shape, 100, dtype=np.uint8))
    boxes = np.array([[10, 10, 60, 90], [100, 20, 250, 170], [0, 0, 260, 180]])
    together = predictor.predict(boxes=boxes)
    for index, box in enumerate(boxes):
        alone = predictor.predict(boxes=box)
        np.testing.assert_array_equal(together.masks[index], alone.masks[0])
