"""The helpers of segment everything against the official ``segment_anything.utils.amg``
and closed-form cases (NMS with torchvision's semantics)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.official import segment_anything
from samforge.errors import ConfigError
from samforge.inference.automatic import AutomaticSettings
from samforge.inference.mask_geometry import (
    box_nms,
    crop_boxes,
    layer_point_grids,
    masks_to_boxes,
    near_crop_edge,
    remove_small_regions,
    stability_scores,
)

amg = segment_anything.utils.amg


@pytest.mark.parametrize("size", [(190, 277), (1000, 600), (33, 33)])
@pytest.mark.parametrize("layers", [0, 1, 2])
def test_crop_boxes_and_grids_are_the_official_ones(size, layers):
    assert crop_boxes(size, layers, 512 / 1500) == amg.generate_crop_boxes(size, layers, 512 / 1500)
    for ours, theirs in zip(
        layer_point_grids(32, layers, 2),
        amg.build_all_layer_point_grids(32, layers, 2),
        strict=True,
    ):
        np.testing.assert_allclose(ours, theirs)


def test_boxes_stability_and_crop_edges_are_the_official_ones():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 40, 50, generator=generator) * 3
    logits[2] = -5  # an empty mask: box (0, 0, 0, 0), stability NaN
    masks = logits > 0
    torch.testing.assert_close(masks_to_boxes(masks), amg.batched_mask_to_box(masks).float())
    torch.testing.assert_close(
        stability_scores(logits, 0.0, 1.0),
        amg.calculate_stability_score(logits, 0.0, 1.0),
        equal_nan=True,
    )
    boxes = torch.tensor([[0.0, 0, 10, 10], [15, 5, 30, 29], [3, 3, 8, 8], [25, 0, 49, 39]])
    crop = [100, 40, 150, 80]
    expected = amg.is_box_near_crop_edge(boxes, crop, [0, 0, 150, 200])
    assert near_crop_edge(boxes, crop, (200, 150)).tolist() == expected.tolist()


def test_nms_has_torchvisions_semantics():
    boxes = torch.tensor(
        [[0.0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 30], [0, 0, 10, 10], [50, 50, 60, 60]]
    )
    scores = torch.tensor([0.5, 0.9, 0.7, 0.5, 0.7])
    # IoU(box 0, box 1) = 0.9 > 0.85: box 1 (higher score) suppresses box 0 and its copy 3;
    # boxes 2 and 4 tie: input order.
    assert box_nms(boxes, scores, 0.85).tolist() == [1, 2, 4]
    # IoU exactly at the threshold is kept (suppression needs IoU > threshold).
    assert box_nms(boxes, scores, 0.9).tolist() == [1, 2, 4, 0]
    assert box_nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []


def test_small_holes_and_islands_are_removed_8_connected():
    mask = np.zeros((20, 20), dtype=bool)
    mask[2:15, 2:15] = True
    mask[5, 5] = False  # a 1-pixel hole
    mask[17, 17] = True  # a 1-pixel island
    mask[16, 16] = True  # ... touching the next one diagonally: one 8-connected island of 2
    cleaned, changed = remove_small_regions(mask, 3)
    expected = np.zeros_like(mask)
    expected[2:15, 2:15] = True
    assert changed
    np.testing.assert_array_equal(cleaned, expected)
    reference, _ = amg.remove_small_regions(
        amg.remove_small_regions(mask, 3, "holes")[0], 3, "islands"
    )
    np.testing.assert_array_equal(cleaned, reference)
    alone = np.zeros((9, 9), dtype=bool)
    alone[4, 4] = True  # every island small: the largest stays
    assert remove_small_regions(alone, 5)[0][4, 4]


@pytest.mark.parametrize(
    "settings",
    [
        dict(points_per_side=0),
        dict(crop_n_layers=-1),
        dict(box_nms_thresh=1.5),
        dict(points_per_side=4, crop_n_layers=3, crop_n_points_downscale_factor=2),
    ],
)
def test_bad_settings_say_what_to_change(settings):
    with pytest.raises(ConfigError):
        AutomaticSettings(**settings)
