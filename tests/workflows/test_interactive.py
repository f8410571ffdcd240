"""Pieces of :mod:`samforge.workflows.interactive` that the demo test does not pin down."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from samforge.evaluation import EvalImage
from samforge.workflows.interactive import Interactive2DRun, model_free_dice, phantom_images


def test_masks_without_a_model_on_a_rectangle():
    label = np.zeros((40, 50), np.uint8)
    label[10:30, 5:25] = 1  # 400 of 2000 pixels
    image = EvalImage("r", np.zeros((40, 50, 3), np.float32), label, "d", "other")
    found = model_free_dice([image])
    assert found["filled box"] == pytest.approx(1.0)  # the box of a rectangle is the object
    assert found["whole image"] == pytest.approx(2 * 400 / (400 + 2000))


def test_dice_by_round_nests_model_start_and_round():
    summary = {
        "dice_per_round": [
            {"model": "m", "start": "box", "round": 1, "dice": 0.5, "images": 2},
            {"model": "m", "start": "box", "round": 2, "dice": 0.6, "images": 2},
            {"model": "m", "start": "point", "round": 1, "dice": 0.3, "images": 2},
        ]
    }
    run = Interactive2DRun([], summary, Path("report.html"))
    assert run.dice_by_round() == {"m": {"box": {1: 0.5, 2: 0.6}, "point": {1: 0.3}}}


def test_phantom_images_one_dataset_per_modality():
    images = phantom_images(1, 64, seed=3, modalities=("us", "mr"))
    assert [image.dataset for image in images] == ["us phantoms", "mr phantoms"]
    assert all(image.rgb.shape == (64, 64, 3) for image in images)
