"""3D propagation against test doubles whose answers are known in closed form.

``ObjectOracleSam`` returns the true object under the prompt in each slice, so a correct
propagation reproduces the object exactly and stops where the object ends or turns into
another one; ``BoxSam`` returns the prompt box, so box extension and the IoU stop
give masks that can be written down slice by slice.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.fake_models import BoxSam, ObjectOracleSam
from helpers.synthetic import bent_tube, disc, ending_object, expected_run, image_of, sphere
from samforge.errors import ConfigError, PromptError
from samforge.inference import Predictor, PropagationSettings, propagate
from samforge.models.config import VIT_TEST
from samforge.prompts import Prompts
from samforge.prompts.volume_prompts import (
    MASK_LOGIT,
    PROMPT_MODES,
    extended_box,
    mask_logits,
    points_from_mask,
    prompts_from_mask,
    single_point_from_mask,
)


def box_of(mask2d: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask2d)
    return np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=np.float32)


def run(model, label, start, mode, iou_threshold=0.5, box_extension=0.0, prompts=None):
    predictor = Predictor(model)
    prompts = prompts or {start: Prompts.from_user(boxes=box_of(label[start]))}
    setting = PropagationSettings(mode, iou_threshold, box_extension)
    return propagate(predictor, image_of(label), prompts, setting)


# --- closed-form volumes, every mode ------------------------------------------------------


@pytest.mark.parametrize("mode", PROMPT_MODES)
def test_sphere_is_recovered_whole_without_an_iou_stop(mode):
    ball = sphere()
    result = run(ObjectOracleSam(), ball, 16, mode, iou_threshold=0.0)
    np.testing.assert_array_equal(result.mask, ball)
    # Beyond the poles the slices are empty: both fronts stop there, not at the edge.
    assert sorted((s.step, s.reason) for s in result.stops) == [(-1, "empty"), (1, "empty")]


@pytest.mark.parametrize("mode", PROMPT_MODES)
def test_sphere_stops_where_the_cross_section_collapses(mode):
    ball = sphere()
    result = run(ObjectOracleSam(), ball, 16, mode, iou_threshold=0.5)
    expected = expected_run(ball, 16, 0.5)
    assert expected.sum() < ball.sum()  # the poles (a pixel after a disc) must be cut
    np.testing.assert_array_equal(result.mask, expected)
    assert {s.reason for s in result.stops} == {"iou"}


@pytest.mark.parametrize("mode", PROMPT_MODES)
def test_bending_tube_is_followed_to_both_edges(mode):
    tube = bent_tube()
    result = run(ObjectOracleSam(), tube, 15, mode)
    np.testing.assert_array_equal(result.mask, tube)
    assert {s.reason for s in result.stops} == {"edge"}
    assert result.segmented.all()


@pytest.mark.parametrize("mode", PROMPT_MODES)
def test_object_that_ends_does_not_leak_into_the_next_structure(mode):
    label, thick = ending_object()
    result = run(ObjectOracleSam(), label, 12, mode, iou_threshold=0.5)
    np.testing.assert_array_equal(result.mask, thick)
    stops = {s.step: s for s in result.stops}
    assert (stops[-1].reason, stops[-1].last) == ("empty", 5)
    assert (stops[1].reason, stops[1].last) == ("iou", 19)
    assert stops[1].iou == pytest.approx(29 / 197, abs=0.02)  # thin disc / thick disc


def test_a_low_iou_threshold_lets_the_front_run_into_the_next_structure():
    label, _ = ending_object()
    result = run(ObjectOracleSam(), label, 12, "box", iou_threshold=0.1)
    np.testing.assert_array_equal(result.mask, label > 0)


# --- several prompted slices ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["box", "points_and_mask"])
def test_two_prompted_slices_fill_the_gap_from_both_ends(mode):
    # Slices 0–14 hold a thick cylinder, 15–29 a thin one: no front crosses from one into
    # the other, so only prompts in both get everything; the gap meets at slice 14 | 15.
    label = np.zeros((30, 64, 64), dtype=np.uint8)
    label[:15][:, disc((64, 64), (32, 32), 8)] = 1
    label[15:][:, disc((64, 64), (32, 32), 3)] = 2
    prompts = {
        24: Prompts.from_user(boxes=box_of(label[24])),
        4: Prompts.from_user(boxes=box_of(label[4])),
    }
    model = ObjectOracleSam()
    result = run(model, label, None, mode, iou_threshold=0.5, prompts=prompts)
    np.testing.assert_array_equal(result.mask, label > 0)
    # Every slice embedded and decoded exactly once.
    assert model.embedded == 30
    assert result.decoded == 30


def test_each_slice_is_embedded_once_per_propagation():
    tube = bent_tube()
    model = ObjectOracleSam()
    result = run(model, tube, 10, "mask")
    assert model.embedded == tube.shape[0] == result.decoded


def test_prompts_on_adjacent_slices_leave_no_gap_to_fill():
    tube = bent_tube(depth=6)
    prompts = {i: Prompts.from_user(boxes=box_of(tube[i])) for i in (2, 3)}
    result = run(ObjectOracleSam(), tube, None, "box", prompts=prompts)
    np.testing.assert_array_equal(result.mask, tube)
    assert result.decoded == 6


def test_point_prompt_on_the_prompted_slice():
    tube = bent_tube()
    ys, xs = np.nonzero(tube[15])
    point = np.array([[xs.mean(), ys.mean()]], dtype=np.float32)
    prompts = {15: Prompts.from_user(point, np.ones(1, dtype=np.float32))}
    result = run(ObjectOracleSam(), tube, None, "single_point", prompts=prompts)
    np.testing.assert_array_equal(result.mask, tube)


# --- box extension and the IoU stop, in closed form -----------------------------------------


def grown_box(shape, box, pixels):
    x0, y0, x1, y1 = box
    out = np.zeros(shape, dtype=bool)
    out[max(y0 - pixels, 0) : y1 + pixels, max(x0 - pixels, 0) : x1 + pixels] = True
    return out


def test_box_extension_in_pixels_grows_the_box_each_slice():
    # Box oracle: the mask is the prompt box, so slice 10 ± k is the box grown by 2k px
    # per side (clipped); IoUs 100/196, 196/324, ... all stay above 0.5.
    volume = np.zeros((21, 64, 64), dtype=bool)
    box = (27, 27, 37, 37)
    prompts = {10: Prompts.from_user(boxes=np.array(box, dtype=np.float32))}
    result = run(BoxSam(), volume, None, "box", 0.5, 2.0, prompts)
    for index in range(21):
        expected = grown_box((64, 64), box, 2 * abs(index - 10))
        np.testing.assert_array_equal(result.mask[index], expected, err_msg=f"slice {index}")


def test_iou_stop_rejects_the_first_grown_box_below_the_threshold():
    volume = np.zeros((21, 64, 64), dtype=bool)
    box = np.array((27, 27, 37, 37), dtype=np.float32)
    result = run(BoxSam(), volume, None, "box", 0.52, 2.0, {10: Prompts.from_user(boxes=box)})
    assert result.segmented.tolist() == [i == 10 for i in range(21)]
    assert all(s.iou == pytest.approx(100 / 196) for s in result.stops)


def test_box_extension_as_a_fraction_of_the_box_size():
    # 10 px box, fraction 0.1: one pixel more on each side.
    volume = np.zeros((3, 64, 64), dtype=bool)
    box = (20, 30, 30, 40)
    prompts = {1: Prompts.from_user(boxes=np.array(box, dtype=np.float32))}
    result = run(BoxSam(), volume, None, "box", 0.5, 0.1, prompts)
    for index in (0, 2):
        np.testing.assert_array_equal(result.mask[index], grown_box((64, 64), box, 1))


def test_without_extension_the_box_is_stable_through_the_volume():
    volume = np.zeros((9, 64, 64), dtype=bool)
    box = (5, 6, 40, 20)
    prompts = {0: Prompts.from_user(boxes=np.array(box, dtype=np.float32))}
    result = run(BoxSam(), volume, None, "box", 0.99, 0.0, prompts)
    assert result.mask.sum(axis=(1, 2)).tolist() == [35 * 14] * 9


# --- what each mode sends to the model -------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "box", "points", "mask"),
    [
        ("box", True, False, False),
        ("mask", True, False, True),
        ("points", False, True, False),
        ("points_and_mask", False, True, True),
        ("single_point", False, True, False),
    ],
)
def test_each_mode_sends_its_prompt_kinds(mode, box, points, mask):
    model = ObjectOracleSam()
    run(model, bent_tube(depth=4), 1, mode)
    derived = model.calls[1:]  # the first call is the user's box on the prompted slice
    assert derived
    for call in derived:
        assert (call["boxes"] is not None) == box
        assert (call["points"] is not None) == points
        assert (call["mask_inputs"] is not None) == mask
        if mode == "single_point":
            assert call["points"][0].shape == (1, 1, 2)


def test_mask_prompt_is_the_previous_slice_in_the_model_frame():
    model = ObjectOracleSam()
    tube = bent_tube(depth=5)
    predictor = Predictor(model)
    propagate(predictor, image_of(tube), {0: Prompts.from_user(boxes=box_of(tube[0]))}, None)
    for index, call in enumerate(model.calls[1:], start=1):
        back = predictor.transform.masks(call["mask_inputs"], (64, 64))[0, 0] > 0
        np.testing.assert_array_equal(back.numpy(), tube[index - 1])


# --- prompt derivation -------------------------------------------------------------------------


@pytest.mark.parametrize("preprocessing", ["sam", "medsam"])
@pytest.mark.parametrize("shape", [(64, 64), (48, 80), (90, 40), (300, 200)])
def test_mask_logits_line_up_with_the_mask(preprocessing, shape):
    transform = VIT_TEST.with_changes(preprocessing=preprocessing).input_transform()
    mask = disc(shape, (shape[1] * 0.4, shape[0] * 0.6), min(shape) / 4)
    logits = mask_logits(mask, transform, 64)
    assert logits.shape == (1, 64, 64)
    np.testing.assert_allclose(np.unique(logits), [-MASK_LOGIT, MASK_LOGIT])
    back = transform.masks(torch.from_numpy(logits)[None], shape)[0, 0].numpy() > 0
    iou = (back & mask).sum() / (back | mask).sum()
    assert iou > 0.9
    # A flipped or transposed mask would move the centroid.
    ys, xs = np.nonzero(back)
    assert abs(xs.mean() - shape[1] * 0.4) < 2 and abs(ys.mean() - shape[0] * 0.6) < 2


def test_extended_box_fraction_pixels_and_clipping():
    mask = np.zeros((50, 60), dtype=bool)
    mask[10:20, 5:25] = True  # box x 5..25 (w 20), y 10..20 (h 10)
    np.testing.assert_allclose(extended_box(mask, 0.0), [5, 10, 25, 20])
    np.testing.assert_allclose(extended_box(mask, 0.1), [3, 9, 27, 21])
    np.testing.assert_allclose(extended_box(mask, 3), [2, 7, 28, 23])
    np.testing.assert_allclose(extended_box(mask, 8), [0, 2, 33, 28])
    with pytest.raises(ConfigError):
        extended_box(mask, -1)


@settings(max_examples=40, deadline=None)
@given(
    cx=st.integers(4, 44),
    cy=st.integers(4, 44),
    rx=st.integers(1, 14),
    ry=st.integers(1, 14),
    extension=st.sampled_from([0.0, 0.2, 4.0]),
)
def test_points_positives_inside_negatives_outside_within_the_box(cx, cy, rx, ry, extension):
    yy, xx = np.mgrid[:48, :48]
    mask = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
    box = extended_box(mask, extension)
    points, labels = points_from_mask(mask, box)
    assert points.dtype == np.float32 and labels.dtype == np.float32
    assert (labels == 1).sum() >= 1
    assert labels.tolist() == sorted(labels.tolist(), reverse=True)  # positives first
    for (x, y), label in zip(points.astype(int), labels, strict=True):
        assert mask[y, x] == (label == 1)
        # The pixel [x, x+1) × [y, y+1) overlaps the (possibly fractional) box.
        assert box[0] < x + 1 and x < box[2] and box[1] < y + 1 and y < box[3]
    single = single_point_from_mask(mask).astype(int)
    assert mask[single[1], single[0]]


def test_single_point_is_the_centre_of_a_disc():
    mask = disc((64, 64), (20, 41), 9)
    np.testing.assert_array_equal(single_point_from_mask(mask), [20, 41])


def test_points_mode_finds_both_lobes_and_a_negative_between_them():
    mask = disc((64, 64), (16, 32), 8) | disc((64, 64), (48, 32), 8)
    transform = VIT_TEST.input_transform()
    prompts = prompts_from_mask(mask, "points", transform, 64)
    positives = prompts.points[0][prompts.labels[0] == 1]
    assert {tuple(p) for p in positives.long().tolist()} >= {(16, 32), (48, 32)}
    assert (prompts.labels == 0).any()
    assert prompts.boxes is None and prompts.mask_input is None


# --- bad input -------------------------------------------------------------------------------


def test_bad_settings_and_prompts_raise_clear_errors():
    with pytest.raises(ConfigError, match="unknown propagation mode"):
        PropagationSettings(mode="boxes")
    with pytest.raises(ConfigError, match="iou_threshold"):
        PropagationSettings(iou_threshold=1.5)
    predictor = Predictor(ObjectOracleSam())
    volume = image_of(sphere(depth=8))
    with pytest.raises(PromptError, match="outside"):
        propagate(predictor, volume, {8: Prompts.from_user(boxes=np.array([0, 0, 5, 5]))})
    with pytest.raises(PromptError, match="one object"):
        two_boxes = Prompts.from_user(boxes=[[0, 0, 5, 5], [1, 1, 6, 6]])
        propagate(predictor, volume, {2: two_boxes})
    with pytest.raises(PromptError, match="no prompt"):
        propagate(predictor, volume, {2: Prompts(mask_input=torch.zeros(1, 1, 64, 64))})
    with pytest.raises(PromptError, match="outside the 64×64"):
        propagate(predictor, volume, {2: Prompts.from_user(boxes=[0, 0, 65, 5])})
    with pytest.raises(PromptError, match="at least one"):
        propagate(predictor, volume, [])
