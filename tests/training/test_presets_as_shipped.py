"""Issue 14, item 4: every preset trains as shipped, and the samunet preset follows SAM-UNet.

References for SAM-UNet's recipe (Hhankyangg/sam-unet, which trains as SAM-Med2D does):
``MultiStepLR(milestones=[5, 10], gamma=0.5)``; ``random.choices(masks, k=5)`` (masks drawn
with replacement); SAM-Med2D's ``get_boxes_from_mask`` (the largest component's box,
shifted by ``np.random.randint(-m, m)`` px, m = min(5, 0.1·min(w, h)·5)); its ``DiceLoss``
(one Dice over the whole batch, smooth 1), checked against MONAI's ``DiceLoss(batch=True)``;
and a ResNet started from torchvision's ImageNet weights, whose file is a torchvision
state dict (``conv1``, ``bn1``, ``layer1``–``layer4``, ``fc``).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
from monai.losses import DiceLoss

from samforge.data import Case, ObjectSegmentationDataset
from samforge.data.phantoms import phantom_case
from samforge.errors import ConfigError
from samforge.models import SamUNet
from samforge.models.families.sam_unet.resnet import ResNetStages
from samforge.training import PRESETS, load_config, train
from samforge.training.losses import batch_dice_loss
from samforge.training.model_setup import prepare_model
from samforge.training.module import SamTrainingModule
from samforge.training.objectives import build_objective
from samforge.training.objectives.iterative import shifted_component_boxes


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_trains_one_step_with_its_own_defaults(preset, tmp_path):
    overrides = [f"output_dir={tmp_path}", "trainer.max_steps=1", "trainer.progress=false"]
    config = load_config(preset, overrides)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="resnet_weights is not set")
        result = train(config)
    assert result.global_step == 1 and result.export_path is not None
    assert result.export_path.is_file()


def test_samunet_halves_the_learning_rate_after_epochs_5_and_10():
    config = load_config("samunet")
    model = torch.nn.Linear(2, 2)
    module = SamTrainingModule(model, build_objective(config.objective), config.optimizer)
    schedule = module.configure_optimizers()["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(config.trainer.max_epochs):
        rates.append(schedule.get_last_lr()[0])
        schedule.optimizer.step()
        schedule.step()
    assert rates == [1e-4] * 5 + [5e-5] * 5 + [2.5e-5] * 5


def test_samunet_draws_five_masks_with_replacement():
    label = np.zeros((64, 64), np.uint8)
    label[4:20, 4:20], label[30:60, 30:50] = 1, 2  # two objects, fewer than 5
    case = Case(np.zeros((64, 64), np.uint8), label, (1.0, 1.0), None, "other", "two")
    data = load_config("samunet").data
    dataset = ObjectSegmentationDataset(
        [case], n_obj=data.n_obj, image_size=64, object_sampling=data.object_sampling
    )
    areas = [int(m.sum()) for m in dataset[0]["masks"]]
    assert len(areas) == 5 and set(areas) <= {16 * 16, 30 * 20}  # 5 draws of 2: repeats


def test_samunet_boxes_are_the_largest_components_shifted_by_at_most_5_px():
    targets = torch.zeros(3, 64, 64, dtype=torch.bool)
    targets[0, 10:30, 5:45] = True  # 40 × 20: shift in [-5, 4]
    targets[0, 50:53, 50:53] = True  # a smaller second piece, ignored
    targets[1, 20:26, 20:28] = True  # 8 × 6: m = 3, shift in [-3, 2]
    targets[2, 0:64, 0:64] = True
    expected = torch.tensor([[5, 10, 45, 30], [20, 20, 28, 26], [0, 0, 64, 64]]).float()
    limits = torch.tensor([5, 3, 5])
    shifts = []
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        boxes = shifted_component_boxes(targets, 5, generator)
        shift = boxes - expected
        assert torch.equal(shift[:, :2], shift[:, 2:])  # moved as a whole, size kept
        assert torch.equal(shift, shift.round())  # whole pixels
        shifts.append(shift[:, :2])
    seen = torch.stack(shifts)  # (draws, 3, 2)
    for k, limit in enumerate(limits.tolist()):
        values = set(seen[:, k].flatten().long().tolist())
        assert values == set(range(-limit, limit)), (k, values)  # np.random.randint(-m, m)


def test_one_dice_over_the_batch_is_monais_batch_dice():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 3, 32, 32, generator=generator)
    targets = torch.rand(4, 32, 32, generator=generator) > 0.7
    targets[0] = False  # an empty object: batch Dice takes it in the sum, without a 1/0
    reference = DiceLoss(sigmoid=True, batch=True, smooth_nr=1.0, smooth_dr=1.0, reduction="none")
    for slot in range(3):
        expected = reference(logits[:, slot : slot + 1], targets[:, None].float())
        torch.testing.assert_close(batch_dice_loss(logits, targets)[slot], expected.flatten()[0])


def _torchvision_resnet50_state() -> dict[str, torch.Tensor]:
    """A ResNet-50 state dict under torchvision's names, as torchvision saves one."""
    resnet = ResNetStages("bottleneck", (3, 4, 6, 3))
    state = {}
    for key, value in resnet.state_dict().items():
        key = re.sub(r"^stage0\.0\.", "conv1.", key)
        key = re.sub(r"^stage0\.1\.", "bn1.", key)
        key = re.sub(r"^stage(\d)\.", r"layer\1.", key)
        state[key] = value + 0.5 if value.is_floating_point() else value
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)
    return state


def test_samunet_starts_its_resnet_from_a_torchvision_file(tmp_path):
    weights = tmp_path / "resnet50-11ad3fa6.pth"
    state = _torchvision_resnet50_state()
    torch.save(state, weights)
    config = load_config("samunet", [f"resnet_weights={weights}"])
    model, _ = prepare_model(config)
    assert isinstance(model, SamUNet)
    loaded = model.state_dict()
    assert torch.equal(loaded["resnet.stage0.0.weight"], state["conv1.weight"])
    assert torch.equal(loaded["resnet.stage4.2.bn3.bias"], state["layer4.2.bn3.bias"])


def test_a_missing_resnet_file_says_where_to_get_imagenet_weights(tmp_path):
    with pytest.raises(ConfigError, match=r"download\.pytorch\.org/models/resnet50-11ad3fa6"):
        load_config("samunet", [f"resnet_weights={tmp_path / 'missing.pth'}"])
    with pytest.warns(UserWarning, match="random weights.*resnet50-11ad3fa6"):
        prepare_model(load_config("samunet"))


def test_sam_unet_objects_draw_the_same_in_any_order():
    # Seeded per (seed, epoch, index): the drawn masks do not depend on what came before.
    case = phantom_case("us", (96, 96), seed=1)
    dataset = ObjectSegmentationDataset(
        [case, case], n_obj=5, image_size=256, object_sampling="with_replacement"
    )
    first = dataset[1]["masks"].numpy()
    dataset[0]
    np.testing.assert_array_equal(dataset[1]["masks"].numpy(), first)
