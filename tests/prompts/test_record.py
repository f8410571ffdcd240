"""The Prompts record: conversion from user input, its shape contract and its methods."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samforge.errors import PromptError
from samforge.prompts import Prompts


def test_user_input_for_one_object_becomes_a_batch_of_one():
    prompts = Prompts.from_user(points=[[3, 4], [5, 6]], labels=[1, 0], boxes=[1, 2, 9, 9])
    assert prompts.points.shape == (1, 2, 2) and prompts.points.dtype == torch.float32
    assert prompts.labels.tolist() == [[1.0, 0.0]]
    assert prompts.boxes.tolist() == [[1.0, 2.0, 9.0, 9.0]]
    assert prompts.mask_input is None and prompts.num_objects == 1
    mask = Prompts.from_user(boxes=[0, 0, 1, 1], mask_input=np.zeros((16, 16)))
    assert mask.mask_input.shape == (1, 1, 16, 16)
    with pytest.raises(PromptError, match="disagree on the number of objects"):
        Prompts.from_user(boxes=[[0, 0, 1, 1]] * 3, mask_input=np.zeros((2, 1, 16, 16)))
    assert Prompts.from_user(boxes=[[0, 0, 1, 1]] * 3).num_objects == 3


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(points=torch.zeros(2, 1, 2)), "points and labels go together"),
        (dict(points=torch.zeros(2, 2), labels=torch.ones(2)), r"\(B, N, 2\), objects first"),
        (dict(points=torch.zeros(2, 3, 2), labels=torch.ones(2, 2)), "one label per point"),
        (dict(boxes=torch.zeros(4)), r"\(B, 4\).*Prompts.from_user"),
        (dict(mask_input=torch.zeros(1, 2, 8, 8)), r"\(B, 1, s, s\)"),
        (dict(boxes=torch.zeros(2, 4), mask_input=torch.zeros(3, 1, 8, 8)), "disagree"),
    ],
)
def test_the_record_refuses_tensors_of_the_wrong_shape(fields, message):
    with pytest.raises(PromptError, match=message):
        Prompts(**fields)


def test_check_fits_compares_with_the_image_and_the_low_resolution_size():
    prompts = Prompts.from_user(
        points=[[[10, 10], [99, 99]]], labels=[[1, -1]], boxes=[0, 0, 80, 64]
    )
    prompts.check_fits((64, 80), 16)  # the padding point may lie anywhere
    with pytest.raises(PromptError, match="outside the 79×64"):
        prompts.check_fits((64, 79), 16)
    with pytest.raises(PromptError, match=r"\(B, 1, 16, 16\)"):
        prompts.with_mask(torch.zeros(1, 1, 8, 8)).check_fits((64, 80), 16)
    with pytest.raises(PromptError, match="no prompt"):
        Prompts().check_fits((64, 80), 16)


def test_select_keeps_the_chosen_objects_prompts():
    boxes = torch.arange(12.0).reshape(3, 4)
    points = torch.arange(12.0).reshape(3, 2, 2)
    prompts = Prompts(points, torch.ones(3, 2), boxes, torch.zeros(3, 1, 4, 4))
    one = prompts.select(1)
    assert one.num_objects == 1 and torch.equal(one.boxes, boxes[1:2])
    assert torch.equal(one.points, points[1:2]) and one.mask_input.shape == (1, 1, 4, 4)
    chosen = prompts.select(torch.tensor([True, False, True]))
    assert torch.equal(chosen.boxes, boxes[[0, 2]]) and chosen.labels.shape == (2, 2)
    assert torch.equal(prompts.select([2, 0]).points, points[[2, 0]])


def test_to_and_with_mask_keep_every_other_field():
    prompts = Prompts.from_user(points=[[1, 2]], labels=[1], boxes=[0, 0, 5, 5])
    moved = prompts.to("meta")
    assert all(value.device.type == "meta" for value in (moved.points, moved.labels, moved.boxes))
    logits = torch.ones(1, 1, 8, 8)
    masked = prompts.with_mask(logits)
    assert masked.mask_input is logits and masked.boxes is prompts.boxes
    assert masked.with_mask(None).mask_input is None


def test_prompts_accumulate_clicks_and_keep_their_start():
    targets = torch.zeros(2, 32, 32, dtype=torch.bool)
    targets[:, 8:20, 8:20] = True
    predictions = torch.zeros_like(targets)
    predictions[:, 4:12, 4:12] = True  # misses part of the object, adds background
    box = torch.tensor([[8.0, 8, 20, 20], [8, 8, 20, 20]])
    state = Prompts(boxes=box)
    generator = torch.Generator().manual_seed(0)
    once = state.corrected(predictions, targets, generator)
    twice = once.corrected(predictions, targets, generator)
    assert once.points.shape == (2, 2, 2) and twice.points.shape == (2, 4, 2)
    assert torch.equal(twice.points[:, :2], once.points)
    assert torch.equal(twice.labels, torch.tensor([[1.0, 0, 1, 0], [1, 0, 1, 0]]))
    assert twice.boxes is box
    for (x, y), label in zip(twice.points[0].long(), twice.labels[0], strict=True):
        region = targets[0] & ~predictions[0] if label == 1 else predictions[0] & ~targets[0]
        assert region[y, x]
