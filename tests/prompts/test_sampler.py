"""Contracts of the prompt sampler, as properties over random masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from samforge.errors import PromptError
from samforge.prompts import (
    box_from_masks,
    center_points,
    correction_points,
    jitter_boxes,
    positive_points,
    ring_around,
)

shapes = st.tuples(st.integers(1, 3), st.integers(1, 12), st.integers(1, 12))
mask_batches = shapes.flatmap(lambda shape: arrays(bool, shape))
mask_pairs = shapes.flatmap(lambda shape: st.tuples(arrays(bool, shape), arrays(bool, shape)))
seeds = st.integers(0, 2**31 - 1)
fast = settings(max_examples=60, deadline=None)


def nonempty(masks: np.ndarray) -> np.ndarray:
    """Give every empty mask one pixel, so that it has an inside."""
    masks = masks.copy()
    for mask in masks:
        if not mask.any():
            mask[0, 0] = True
    return masks


def at(mask: np.ndarray, point: torch.Tensor) -> bool:
    x, y = point.tolist()
    assert float(x).is_integer() and float(y).is_integer()
    return bool(mask[int(y), int(x)])


@fast
@given(mask_batches)
def test_box_is_min_and_max_plus_one(masks):
    boxes = box_from_masks(torch.from_numpy(masks))
    assert boxes.dtype == torch.float32 and boxes.shape == (len(masks), 4)
    for mask, box in zip(masks, boxes, strict=True):
        if not mask.any():
            assert box.tolist() == [0, 0, 0, 0]
            continue
        ys, xs = np.nonzero(mask)
        assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


@fast
@given(mask_batches)
def test_center_point_is_a_deepest_pixel(masks):
    masks = nonempty(masks)
    centers = center_points(torch.from_numpy(masks))
    assert centers.dtype == torch.float32 and centers.shape == (len(masks), 2)
    for mask, center in zip(masks, centers, strict=True):
        assert at(mask, center)
        # Distance to the nearest background pixel, the image outside counting as background.
        depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
        x, y = center.long().tolist()
        assert depth[y, x] == depth.max()


def test_center_of_a_rectangle_is_its_middle():
    mask = torch.zeros(1, 20, 30, dtype=torch.bool)
    mask[0, 5:14, 3:28] = True  # rows 5..13 (middle 9), cols 3..27
    x, y = center_points(mask)[0].tolist()
    assert y == 9 and 7 <= x <= 23  # every pixel of the middle row's inner span is deepest


def test_center_of_an_empty_mask_is_refused():
    with pytest.raises(PromptError, match="empty"):
        center_points(torch.zeros(2, 4, 4, dtype=torch.bool))


@fast
@given(mask_batches, st.floats(0.0, 0.5), seeds)
def test_jittered_boxes_contain_the_box_and_stay_in_the_image(masks, fraction, seed):
    masks = nonempty(masks)
    _, height, width = masks.shape
    exact = box_from_masks(torch.from_numpy(masks))
    generator = torch.Generator().manual_seed(seed)
    jittered = jitter_boxes(exact, (height, width), fraction, generator)
    assert jittered.shape == exact.shape
    assert (jittered[:, :2] <= exact[:, :2]).all() and (jittered[:, 2:] >= exact[:, 2:]).all()
    assert (jittered >= 0).all() and (jittered[:, [0, 2]] <= width).all()
    assert (jittered[:, [1, 3]] <= height).all()
    size = (exact[:, 2:] - exact[:, :2]).repeat(1, 2)
    assert ((jittered - exact).abs() <= fraction * size + 1e-5).all()


def test_jitter_actually_moves_boxes_and_is_seeded():
    boxes = torch.tensor([[100.0, 100.0, 200.0, 300.0]] * 64)

    def draw(seed):
        return jitter_boxes(boxes, (1000, 1000), 0.025, torch.Generator().manual_seed(seed))

    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))
    grown = draw(3) - boxes
    # Up to 2.5 px in x (width 100) and 5 px in y (height 200), reached nearly.
    assert grown[:, [0, 2]].abs().max() > 2.0 and grown[:, [1, 3]].abs().max() > 4.0


@fast
@given(mask_batches, st.integers(1, 4), seeds)
def test_positive_points_lie_in_the_object(masks, count, seed):
    points, labels = positive_points(
        torch.from_numpy(masks), count, torch.Generator().manual_seed(seed)
    )
    assert points.shape == (len(masks), count, 2) and labels.shape == (len(masks), count)
    for mask, object_points, object_labels in zip(masks, points, labels, strict=True):
        real = object_labels == 1
        assert int(real.sum()) == min(count, int(mask.sum()))
        assert set(object_labels.tolist()) <= {1.0, -1.0}
        chosen = {tuple(p) for p in object_points[real].tolist()}
        assert len(chosen) == int(real.sum())  # without replacement
        assert all(at(mask, p) for p in object_points[real])


@fast
@given(mask_pairs, seeds)
def test_correction_points_follow_the_regions_and_fallbacks(pair, seed):
    predictions, targets = (torch.from_numpy(a) for a in pair)
    points, labels = correction_points(predictions, targets, torch.Generator().manual_seed(seed))
    assert points.shape == (len(targets), 2, 2) and labels.shape == (len(targets), 2)
    ring = ring_around(targets).numpy()
    for index, (pred, true) in enumerate(zip(pair[0], pair[1], strict=True)):
        positive, negative = points[index]
        false_negative, false_positive = true & ~pred, pred & ~true
        if false_negative.any():
            assert labels[index, 0] == 1 and at(false_negative, positive)
        elif true.any():
            assert labels[index, 0] == 1 and at(true, positive)
        else:
            assert labels[index, 0] == -1
        if false_positive.any():
            assert labels[index, 1] == 0 and at(false_positive, negative)
        elif ring[index].any():
            assert labels[index, 1] == 0 and at(ring[index], negative)
        elif (~true).any():
            assert labels[index, 1] == 0 and at(~true, negative)
        else:
            assert labels[index, 1] == -1


def test_ring_is_three_pixels_wide_and_inside_the_box():
    target = torch.zeros(1, 30, 30, dtype=torch.bool)
    target[0, 5:25, 5:25] = True
    target[0, 10:20, 10:20] = False  # a hole: the ring lies inside the box, around the hole
    ring = ring_around(target)[0].numpy()
    expected = np.zeros((30, 30), dtype=bool)
    expected[10:20, 10:20] = True
    expected[13:17, 13:17] = False  # more than 3 px from the object
    np.testing.assert_array_equal(ring, expected)


def test_correction_points_are_uniform_over_the_false_negatives():
    target = torch.zeros(4000, 6, 6, dtype=torch.bool)
    target[:, 1:5, 1:5] = True
    prediction = torch.zeros_like(target)
    prediction[:, 1:3, 1:5] = True  # the lower 8 pixels are missed
    points, _ = correction_points(prediction, target, torch.Generator().manual_seed(0))
    index = (points[:, 0, 1] * 6 + points[:, 0, 0]).long()
    counts = torch.bincount(index, minlength=36).reshape(6, 6)
    assert counts[3:5, 1:5].sum() == 4000 and counts[3:5, 1:5].min() > 400  # 500 expected


@fast
@given(mask_pairs, seeds)
def test_same_seed_same_points(pair, seed):
    predictions, targets = (torch.from_numpy(a) for a in pair)
    first = correction_points(predictions, targets, torch.Generator().manual_seed(seed))
    second = correction_points(predictions, targets, torch.Generator().manual_seed(seed))
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
