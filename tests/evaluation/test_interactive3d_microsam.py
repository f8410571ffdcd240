"""The interactive 3D protocol against micro-sam's (``evaluation/multi_dimensional_
segmentation.py``, ``segment_slices_from_ground_truth``, and ``prompt_generators.py``,
``PointAndBoxPromptGenerator``): its prompt slice, its "points" start (one random positive,
one random negative point at least 10 dilations away within the box widened by 10), its
default grid, and scores per object and per class.

References are written independently here: the negative region by a chessboard distance
transform (10 3×3 dilations reach exactly the pixels within chessboard distance 10), the
class scores by hand from the oracle's closed-form propagation.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage import measure

from helpers.fake_models import ObjectOracleSam
from helpers.synthetic import disc, expected_run, image_of, sphere
from samforge.data import Case
from samforge.evaluation.interactive3d import (
    Protocol3D,
    evaluate_case,
    micro_sam_grid,
    run_interactive3d,
    settings_grid,
)
from samforge.evaluation.start_prompts3d import central_slice, start_prompt
from samforge.inference import Predictor, PropagationSettings


def micro_sam_negative_region(section: np.ndarray) -> np.ndarray:
    """Pixels of the box widened by 10 (clipped) farther than 10 3×3 dilations away."""
    rows, cols = np.nonzero(section)
    widened = np.zeros_like(section)
    widened[
        max(rows.min() - 10, 0) : rows.max() + 11, max(cols.min() - 10, 0) : cols.max() + 11
    ] = 1
    distance = ndimage.distance_transform_cdt(~section, metric="chessboard")
    return widened.astype(bool) & (distance > 10)


def test_the_prompt_slice_is_floor_of_mean_of_first_and_last():
    mask = np.zeros((20, 16, 16), bool)
    mask[3:9, 4:10, 4:10] = True  # slices 3..8: floor(5.5) = 5
    assert central_slice(mask) == 5
    mask[9, 4:10, 4:10] = True  # slices 3..9: 6
    assert central_slice(mask) == 6
    for start in ("box", "points", "point"):
        assert start_prompt(mask, start)[0] == 6


def test_points_start_is_one_random_positive_and_one_negative_as_micro_sam():
    section = disc((64, 64), (30, 34), 12)
    region = micro_sam_negative_region(section)
    assert 0 < region.sum() < (~section).sum()  # a real restriction: the box's corners
    volume = np.repeat(section[None], 3, axis=0)
    positives, negatives = set(), set()
    for seed in range(200):
        _, prompts = start_prompt(volume, "points", torch.Generator().manual_seed(seed))
        assert prompts.boxes is None and prompts.labels.tolist() == [[1.0, 0.0]]
        (px, py), (nx, ny) = prompts.points[0].long().tolist()
        assert section[py, px] and region[ny, nx]
        positives.add((px, py))
        negatives.add((nx, ny))
    assert len(positives) > 100 and len(negatives) > 20  # drawn, not fixed


def test_points_start_falls_back_to_any_background_pixel():
    """An object too close to the image's border on every side has no far region inside
    its widened box: micro-sam then takes a random background pixel."""
    section = np.ones((24, 24), bool)
    section[0, 0] = False
    volume = section[None]
    _, prompts = start_prompt(volume, "points", torch.Generator().manual_seed(0))
    assert prompts.points[0, 1].long().tolist() == [0, 0]


def test_micro_sam_grid_is_5_modes_by_5_iou_stops_by_11_box_extensions():
    grid = micro_sam_grid()
    assert len(grid) == 5 * 5 * 11 == len({setting.label() for setting in grid})
    assert {s.mode for s in grid} == {"mask", "points", "box", "points_and_mask", "single_point"}
    assert sorted({s.iou_threshold for s in grid}) == [0.5, 0.6, 0.7, 0.8, 0.9]
    extensions = sorted({s.box_extension for s in grid})
    np.testing.assert_allclose(extensions, np.arange(11) * 0.025)


def two_balls_and_a_cylinder() -> np.ndarray:
    """Class 1: two balls (left and right, radius 9); class 2: a cylinder (slices 8–17)."""
    label = np.zeros((32, 64, 64), np.uint8)
    ball = sphere(depth=32, size=64, radius=9)
    label[np.roll(ball, -16, axis=2)] = 1
    label[np.roll(np.roll(ball, 16, axis=2), 4, axis=0)] = 1
    label[8:18][:, disc((64, 64), (32, 52), 6)] = 2
    return label


@pytest.mark.parametrize("start", ["box", "points"])
def test_objects_and_classes_are_both_scored(start):
    label = two_balls_and_a_cylinder()
    case = Case(image_of(label), label, (2.0, 1.0, 1.0), np.eye(4), "ct", "balls")
    setting = PropagationSettings("box", 0.5, 0.0)
    protocol = Protocol3D(start=start)
    rows = evaluate_case(Predictor(ObjectOracleSam()), case, [setting], protocol, class_scores=True)
    objects = [row for row in rows if row["level"] == "object"]
    classes = [row for row in rows if row["level"] == "class"]
    assert [row["class_id"] for row in objects] == [1, 1, 2]
    assert [(row["class_id"], row["num_objects"]) for row in classes] == [(1, 2), (2, 1)]
    assert [row["object"] for row in classes] == [-1, -1]
    truths = _components(label == 1) + _components(label == 2)  # scan order, as the protocol
    unions = {1: np.zeros(label.shape, bool), 2: np.zeros(label.shape, bool)}
    for row, truth in zip(objects, truths, strict=True):
        assert row["prompt_slice"] == central_slice(truth)
        kept = expected_run(truth, row["prompt_slice"], 0.5)
        unions[row["class_id"]] |= kept
        assert row["dice"] == pytest.approx(_dice(kept, truth))
    for row in classes:
        truth = label == row["class_id"]
        assert row["dice"] == pytest.approx(_dice(unions[row["class_id"]], truth))
        assert row["voxels"] == int(truth.sum()) and np.isfinite(row["hd95"])
    again = evaluate_case(Predictor(ObjectOracleSam()), case, [setting], protocol)
    assert [row["dice"] for row in again] == [row["dice"] for row in objects]  # seeded


def _components(mask: np.ndarray) -> list[np.ndarray]:
    numbered = measure.label(mask)
    return [numbered == number for number in range(1, numbered.max() + 1)]


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_summary_reports_test_scores_per_object_and_per_class():
    label = two_balls_and_a_cylinder()
    cases = [
        Case(image_of(label), label, (2.0, 1.0, 1.0), np.eye(4), "ct", name)
        for name in ("val", "test")
    ]
    grid = settings_grid(["box"], [0.0, 0.5], [0.0])
    rows, summary = run_interactive3d(
        {"oracle": Predictor(ObjectOracleSam())}, cases[:1], cases[1:], grid, Protocol3D()
    )
    val_levels = {row["level"] for row in rows if row["split"] == "val"}
    test_levels = {row["level"] for row in rows if row["split"] == "test"}
    assert val_levels == {"object"} and test_levels == {"object", "class"}
    (overall,) = summary["test_results"]
    assert overall["objects"] == 3 and overall["dice"] == 1.0 and overall["class_dice"] == 1.0
    per_class = [(row["class_id"], row["objects"]) for row in summary["test_results_per_class"]]
    assert per_class == [(1, 2), (2, 1)]
    assert all(
        row["object_dice"] == row["class_dice"] == 1.0 for row in summary["test_results_per_class"]
    )
    assert summary["protocol"]["connectivity"] == 3 and summary["protocol"]["seed"] == 0
