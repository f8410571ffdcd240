"""Issue 14, item 5: RobustMedSAM's training and evaluation recipe.

References: RobustMedSAM's public code (jli2556/RobustMedSAM, adapted from RobustSAM):
``engine.py`` back-propagates the consistency losses through both the clean and the
degraded decoder branch; ``dataset.py`` keeps the largest mask of an image; the degraded
view is drawn from ``clear`` and the 12 corruptions (13 folders made by ``data/gen_data.sh``);
its evaluation prompts each object with 3 random positive points.
"""

from __future__ import annotations

import numpy as np
import torch

from helpers.fake_models import ObjectOracleSam
from samforge.data import Case, ObjectSegmentationDataset
from samforge.data.corruptions import resolve_corruption_names
from samforge.data.dataset import degradation_pool
from samforge.evaluation import InteractiveSettings, evaluate_image
from samforge.inference import Predictor
from samforge.models import build_model
from samforge.models.config import VIT_TEST
from samforge.training import load_config
from samforge.training.objectives import RobustSettings, robust_loss


def _two_objects() -> Case:
    label = np.zeros((64, 64), np.uint8)
    label[4:14, 4:14] = 1  # 100 px
    label[30:60, 20:50] = 2  # 900 px: the largest
    image = np.where(label > 0, 200, 20).astype(np.uint8)
    return Case(image, label, (1.0, 1.0), None, "other", "two")


def test_consistency_gradients_reach_the_clean_branch():
    torch.manual_seed(0)
    model = build_model(VIT_TEST).train()
    clean = torch.randn(1, 3, 256, 256, requires_grad=True)
    degraded = (clean.detach() + 0.5 * torch.randn(1, 3, 256, 256)).requires_grad_(True)
    masks = torch.zeros(1, 1, 256, 256)
    masks[:, 0, 60:160, 80:200] = 1
    out = robust_loss(model, clean, degraded, masks, RobustSettings(), torch.Generator())
    (out.feature_loss + out.token_loss).backward()
    # Detaching the clean view (a one-sided target) would leave its input without gradient.
    assert clean.grad is not None and clean.grad.abs().sum() > 0
    assert degraded.grad is not None and degraded.grad.abs().sum() > 0


def test_robust_preset_trains_on_the_largest_object_of_each_image():
    data = load_config("robust").data
    assert data.n_obj == 1
    dataset = ObjectSegmentationDataset(
        [_two_objects()], n_obj=data.n_obj, image_size=64, object_sampling=data.object_sampling
    )
    for epoch in range(5):
        dataset.set_epoch(epoch)
        masks = dataset[0]["masks"]
        assert masks.shape[0] == 1 and int(masks[0].sum()) == 900


def test_the_degradation_pool_is_clear_and_the_12_corruptions():
    pool = degradation_pool(load_config("robust").data.degradations)
    assert len(pool) == 13 and pool[0] == "clear"
    assert set(pool[1:]) == set(resolve_corruption_names(["all"])) and len(pool[1:]) == 12
    dataset = ObjectSegmentationDataset(
        [_two_objects()] * 40, n_obj=1, image_size=64, degradations=["clear", "all"]
    )
    items = [dataset[i] for i in range(40)]
    kinds = {item["degradation"] for item in items}
    assert "clear" in kinds and len(kinds) > 5
    for item in items:
        same = torch.equal(item["degraded_image"], item["image"])
        assert same == (item["degradation"] == "clear")


def test_random_points_start_prompts_three_positive_points_inside_each_object():
    case = _two_objects()
    model = ObjectOracleSam()
    result = evaluate_image(
        Predictor(model),
        case.image,
        case.label,
        InteractiveSettings(start="random_points", rounds=1),
        name=case.name,
    )
    assert result is not None
    np.testing.assert_array_equal(result.dice[:, 0], 1.0)
    call = model.calls[0]
    coords, labels = call["points"]
    assert coords.shape == (2, 3, 2) and torch.all(labels == 1) and call["boxes"] is None
    assert call["multimask"] is False  # three points are not ambiguous
    scale = 64 / 256  # model frame (256) -> image (64)
    for k, class_id in enumerate((1, 2)):
        for x, y in (coords[k] * scale).tolist():
            assert case.label[int(y), int(x)] == class_id
    again = ObjectOracleSam()
    evaluate_image(
        Predictor(again),
        case.image,
        case.label,
        InteractiveSettings(start="random_points", rounds=1),
        name=case.name,
    )
    assert torch.equal(again.calls[0]["points"][0], coords)  # seeded by the image name
