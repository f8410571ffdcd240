"""The interactive 2D protocol's bookkeeping, proven with test doubles of known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.fake_models import BoxSam, EmptySam, ObjectOracleSam
from helpers.synthetic import SIZE, components, synthetic_label
from samforge.errors import ConfigError
from samforge.evaluation import InteractiveSettings, evaluate_image
from samforge.inference import Predictor

IMAGE = np.random.default_rng(0).integers(0, 255, (SIZE, SIZE), dtype=np.uint8)


def run(model, label, **settings):
    predictor = Predictor(model)
    return evaluate_image(
        predictor, IMAGE, label, InteractiveSettings(**settings), name="synthetic"
    )


@pytest.mark.parametrize("start", ["box", "point"])
@pytest.mark.parametrize("use_masks", [False, True])
def test_oracle_scores_one_in_every_round(start, use_masks):
    label = synthetic_label()
    result = run(ObjectOracleSam(components(label)), label, start=start, use_masks=use_masks)
    assert result.class_ids.tolist() == [1, 2]
    assert result.num_objects.tolist() == [3, 1]
    assert result.dice.shape == (2, 8)
    np.testing.assert_array_equal(result.dice, 1.0)
    np.testing.assert_array_equal(result.prediction, label)


@pytest.mark.parametrize("start", ["box", "point"])
def test_empty_model_scores_zero(start):
    label = synthetic_label()
    result = run(EmptySam(), label, start=start, rounds=4)
    np.testing.assert_array_equal(result.dice, 0.0)


def test_box_model_scores_the_closed_form_dice():
    label = synthetic_label()
    # Independently: each class's prediction is the union of its objects' bounding boxes.
    expected = []
    for class_id in (1, 2):
        union = np.zeros_like(label, dtype=bool)
        for obj in components(label):
            if label[obj][0] == class_id:
                ys, xs = np.nonzero(obj)
                union[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
        truth = label == class_id
        expected.append(2 * (union & truth).sum() / (union.sum() + truth.sum()))
    result = run(BoxSam(), label, start="box", rounds=5)
    assert 0.2 < min(expected) < max(expected) < 1.0  # a case that can tell right from wrong
    for k in range(2):
        np.testing.assert_allclose(result.dice[k], expected[k], rtol=1e-12)


def test_small_components_are_not_prompted_but_count_in_the_class_mask():
    label = synthetic_label()
    label[60:63, 2:8] = 1  # 18 pixels of class 1: below min_size 20, never prompted
    result = run(ObjectOracleSam(components(label)), label, rounds=2)
    big = int(sum(obj.sum() for obj in components(label) if label[obj][0] == 1))
    assert result.num_objects.tolist() == [3, 1]
    np.testing.assert_allclose(result.dice[0], 2 * big / (2 * big + 18))
    np.testing.assert_array_equal(result.dice[1], 1.0)


@pytest.mark.parametrize("start", ["box", "point"])
def test_one_embedding_and_one_batched_call_per_round(start):
    label = synthetic_label()
    model = ObjectOracleSam(components(label))
    run(model, label, start=start, rounds=8)
    assert model.embedded == 1
    assert len(model.calls) == 8
    first, *corrections = model.calls
    assert first["multimask"] == (start == "point")
    assert not any(call["multimask"] for call in corrections)
    # Points accumulate: one positive and one negative per object per correction.
    initial = 1 if start == "point" else 0
    for round_index, call in enumerate(model.calls):
        expected = initial + 2 * round_index
        if expected == 0:
            assert call["points"] is None
        else:
            assert tuple(call["points"][0].shape) == (4, expected, 2)
        assert (call["boxes"] is not None) == (start == "box")


def test_mask_feedback_passes_the_previous_low_res_logits():
    label = synthetic_label()
    model = ObjectOracleSam(components(label))
    run(model, label, rounds=3, use_masks=True)
    assert model.calls[0]["mask_inputs"] is None
    for call in model.calls[1:]:
        feedback = call["mask_inputs"]
        assert feedback.shape == (4, 1, 64, 64)
        # The oracle's previous answer: +20 exactly on each object.
        objects = torch.from_numpy(np.stack(components(label)))
        torch.testing.assert_close(feedback[:, 0], torch.where(objects, 20.0, -20.0))
    model = ObjectOracleSam(components(label))
    run(model, label, rounds=3, use_masks=False)
    assert all(call["mask_inputs"] is None for call in model.calls)


def test_image_without_objects_is_skipped_without_embedding():
    model = EmptySam()
    label = np.zeros((SIZE, SIZE), dtype=np.uint8)
    label[0:3, 0:3] = 1  # 9 pixels: below min_size
    assert run(model, label) is None
    assert model.embedded == 0


def test_correction_points_depend_on_the_seed_only():
    label = synthetic_label()

    def coords(seed):
        model = EmptySam()
        run(model, label, start="point", rounds=3, seed=seed)
        return model.calls[-1]["points"][0]

    assert torch.equal(coords(1), coords(1))
    assert not torch.equal(coords(1), coords(2))


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="start"):
        InteractiveSettings(start="scribble")
    with pytest.raises(ConfigError, match="rounds"):
        InteractiveSettings(rounds=0)
