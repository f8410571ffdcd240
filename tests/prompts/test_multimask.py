"""One multimask rule: when to ask for three masks, which one to keep (numpy and torch)."""

from __future__ import annotations

import numpy as np
import torch

from samforge.prompts import Prompts, best_mask, wants_multimask


def test_a_lone_point_per_object_wants_three_masks_anything_more_one():
    assert wants_multimask(Prompts(torch.zeros(3, 1, 2), torch.ones(3, 1)))
    assert not wants_multimask(Prompts(torch.zeros(1, 2, 2), torch.ones(1, 2)))
    assert not wants_multimask(Prompts(boxes=torch.zeros(1, 4)))
    point_and_box = Prompts(torch.zeros(1, 1, 2), torch.ones(1, 1), torch.zeros(1, 4))
    assert not wants_multimask(point_and_box)
    assert not wants_multimask(point_and_box.select(0).with_mask(torch.zeros(1, 1, 4, 4)))
    point_and_mask = Prompts(torch.zeros(1, 1, 2), torch.ones(1, 1))
    assert not wants_multimask(point_and_mask.with_mask(torch.zeros(1, 1, 4, 4)))


def test_best_mask_keeps_the_highest_score_per_object_for_arrays_and_tensors():
    scores = np.array([[0.1, 0.9, 0.5], [0.7, 0.2, 0.3]], dtype=np.float32)
    masks = np.arange(2 * 3 * 2).reshape(2, 3, 2)
    kept_masks, kept_scores, nothing = best_mask(scores, masks, scores, None)
    np.testing.assert_array_equal(kept_masks, [[[2, 3]], [[6, 7]]])
    np.testing.assert_array_equal(kept_scores, scores.max(axis=1, keepdims=True))
    assert nothing is None
    (tensor,) = best_mask(torch.from_numpy(scores), torch.from_numpy(masks))
    assert torch.equal(tensor, torch.from_numpy(kept_masks))


def test_without_scores_or_with_one_mask_the_first_mask_is_kept():
    masks = torch.arange(8.0).reshape(2, 2, 2)
    (kept,) = best_mask(None, masks)
    assert torch.equal(kept, masks[:, :1])
    nan = torch.full((2, 1), float("nan"))  # SAM-UNet: no IoU head, one mask
    (single,) = best_mask(nan, masks[:, 1:])
    assert torch.equal(single, masks[:, 1:])


def test_best_mask_passes_gradients_to_the_chosen_logits_only():
    logits = torch.zeros(2, 3, 4, requires_grad=True)
    scores = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], requires_grad=True)
    (kept,) = best_mask(scores, logits)
    kept.sum().backward()
    assert logits.grad[0, 1].eq(1).all() and logits.grad[1, 2].eq(1).all()
    assert logits.grad.sum() == 8
