"""The iterative objective's Dice (torch_em's by default) and where it is taken (each
image's original size, padding left out, as micro-sam's ``SamTrainer`` does)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from samforge.errors import ConfigError
from samforge.models.config import VIT_TEST
from samforge.training.losses import dice_loss
from samforge.training.objectives import (
    IterativePrompting,
    PromptingSettings,
    iterative_prompting_loss,
)

SIZE = VIT_TEST.image_size  # 256: low-resolution logits are 64²
LOW = SIZE // 4


def torch_em_dice_loss(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """torch_em's ``DiceLoss(reduce_channel=None)`` as micro-sam's ``SamTrainer`` calls it,
    transcribed from torch_em/loss/dice.py (constantinpape/torch-em, commit d6e10bb):
    ``dice_score(input_, target, invert=True, channelwise=True, eps=1e-7)`` on
    ``predicted_objects[:, i:i+1].swapaxes(0, 1)`` and ``targets.swapaxes(0, 1)``, i.e.
    objects as channels. probs, target: (n, 1, H, W) -> (n,)."""
    input_, target = probs.swapaxes(0, 1), target.swapaxes(0, 1)  # (1, n, H, W)
    # flatten_samples: channel axis first, everything else flattened -> (C, N·H·W)
    input_ = input_.permute(1, 0, 2, 3).contiguous().view(input_.size(1), -1)
    target = target.permute(1, 0, 2, 3).contiguous().view(target.size(1), -1)
    numerator = (input_ * target).sum(-1)
    denominator = (input_ * input_).sum(-1) + (target * target).sum(-1)
    return 1.0 - 2 * (numerator / denominator.clamp(min=1e-7))


def micro_sam_mask_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """micro-sam's ``SamTrainer._compute_loss`` mask term of one image: the minimum over
    the 1 or 3 masks of each object's torch_em Dice, averaged over objects.
    logits (n, M, H, W) at the original size, targets (n, 1, H, W) float."""
    probs = torch.sigmoid(logits)
    per_mask = torch.stack(
        [torch_em_dice_loss(probs[:, i : i + 1], targets) for i in range(probs.shape[1])]
    )
    return per_mask.min(dim=0).values.mean()


def test_squared_dice_is_torch_em_dice_on_random_inputs():
    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(5, 3, 37, 29, generator=generator)
    targets = torch.rand(5, 37, 29, generator=generator) > 0.6
    ours = dice_loss(logits, targets, "squared")
    probs = torch.sigmoid(logits)
    for slot in range(3):
        reference = torch_em_dice_loss(probs[:, slot : slot + 1], targets[:, None].float())
        torch.testing.assert_close(ours[:, slot], reference, rtol=1e-5, atol=1e-6)


def test_dice_closed_forms():
    """p = 0.5 on an 8×8 image, a 4×4 target: Σpt = 8, Σp² = 16, Σp = 32, Σt = 16."""
    target = torch.zeros(1, 8, 8, dtype=torch.bool)
    target[0, 2:6, 2:6] = True
    half = torch.zeros(1, 1, 8, 8)
    assert dice_loss(half, target, "squared").item() == pytest.approx(1 - 16 / 32)
    assert dice_loss(half, target, "linear").item() == pytest.approx(1 - 16 / 48, rel=1e-6)
    # torch_em clamps an empty denominator: nothing predicted of nothing scores loss 1
    empty = torch.zeros(1, 8, 8, dtype=torch.bool)
    assert dice_loss(torch.full((1, 1, 8, 8), -200.0), empty, "squared").item() == 1.0
    with pytest.raises(ValueError, match="denominator"):
        dice_loss(half, target, "cubed")


class FixedDecoder(torch.nn.Module):
    """Stands in for a model: its low-resolution logits and predicted IoUs are parameters
    (the same whatever the prompt), so the loss is a known function of them."""

    def __init__(self, low_res: torch.Tensor, iou: torch.Tensor) -> None:
        super().__init__()
        self.config = VIT_TEST
        self.low_res = torch.nn.Parameter(low_res)
        self.iou = torch.nn.Parameter(iou)

    def embed_images(self, images):
        return images.new_zeros(len(images), 256, LOW // 4, LOW // 4)

    def decode(self, embeddings, points=None, boxes=None, mask_inputs=None, multimask=False):
        count = 3 if multimask else 1
        return self.low_res[:, :count], self.iou[:, :count]


def frame_inputs(originals: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images, model-frame masks, content sizes) of (n, H, W) original masks, as the
    training Dataset makes them."""
    transform = VIT_TEST.input_transform()
    masks = torch.cat([transform.label_masks(m[None].float()) for m in originals])
    sizes = torch.tensor([transform.resized_shape(tuple(m.shape[-2:])) for m in originals])
    return torch.zeros(len(originals), 3, SIZE, SIZE), masks, sizes


def test_a_prediction_wrong_only_in_the_padding_costs_nothing():
    """A 128×256 image fills the top half of the 256² frame. The prediction is the object
    exactly (the object is what low-resolution cells of ±1e4 upsample to: a rectangle
    with its corner pixels cut) but also claims the whole padding: no loss at the original
    size, a large one in the padded frame."""
    low_res = torch.full((1, 3, LOW, LOW), -1e4)
    low_res[:, :, 8:24, 16:48] = 1e4  # the object, in 4-pixel cells
    upsampled = F.interpolate(low_res[:, :1], (SIZE, SIZE), mode="bilinear")
    original = upsampled[0, :, :128] > 0
    assert original.sum() == 64 * 128 - 4  # saturated everywhere but on the cut corners
    low_res[:, :, LOW // 2 :] = 1e4  # the padding: rows 128-255 of the frame
    model = FixedDecoder(low_res, torch.ones(1, 3))
    images, masks, sizes = frame_inputs([original])
    settings = PromptingSettings(n_steps=1, p_box=1.0, p_mask=0.0)

    def loss(original_masks):
        out = iterative_prompting_loss(
            model,
            images,
            masks,
            settings,
            torch.Generator().manual_seed(0),
            None,
            sizes,
            original_masks=original_masks,
        )
        return out

    at_original = loss([original])
    assert at_original.loss.item() == 0.0
    assert at_original.round_dice.item() == 1.0
    in_frame = loss(None)
    assert in_frame.mask_loss.item() > 0.4 and in_frame.iou_loss.item() > 0.1


@pytest.mark.parametrize("first", ["point", "box"])
def test_loss_at_the_original_size_is_micro_sams(first):
    """Two images of other sizes than the frame (both resized, one padded at the bottom,
    one at the right), several objects, one or three masks: the objective's loss and its
    gradients equal micro-sam's path (F.interpolate to S², crop, F.interpolate to the
    original, torch_em Dice, MSE to the IoU of sigmoid > 0.5)."""
    generator = torch.Generator().manual_seed(1)
    shapes = [(300, 170), (199, 333)]
    originals = []
    for height, width in shapes:
        objects = torch.zeros(2, height, width, dtype=torch.bool)
        objects[0, 40:150, 30:120] = True
        objects[1, 100:190, 60:160] = True
        originals.append(objects)
    low_res = 4 * torch.randn(4, 3, LOW, LOW, generator=generator)
    iou = torch.rand(4, 3, generator=generator)
    model = FixedDecoder(low_res.clone(), iou.clone())
    images, masks, sizes = frame_inputs(originals)
    settings = PromptingSettings(n_steps=1, p_box=1.0 if first == "box" else 0.0, p_mask=0.0)
    out = iterative_prompting_loss(
        model,
        images,
        masks.view(2, 2, SIZE, SIZE),
        settings,
        torch.Generator().manual_seed(0),
        None,
        sizes,
        original_masks=originals,
    )
    out.loss.backward()

    reference_low = low_res.clone().requires_grad_(True)
    reference_iou = iou.clone().requires_grad_(True)
    count = 3 if first == "point" else 1
    mask_losses, iou_losses = [], []
    for index, (objects, (new_h, new_w)) in enumerate(zip(originals, sizes.tolist(), strict=True)):
        rows = slice(2 * index, 2 * index + 2)
        frame = F.interpolate(
            reference_low[rows, :count], (SIZE, SIZE), mode="bilinear", align_corners=False
        )
        logits = F.interpolate(
            frame[..., :new_h, :new_w], objects.shape[-2:], mode="bilinear", align_corners=False
        )
        targets = objects[:, None].float()
        mask_losses.append(micro_sam_mask_loss(logits, targets))
        hard = torch.sigmoid(logits) > 0.5
        true_iou = (hard & targets.bool()).sum((2, 3)) / (hard | targets.bool()).sum((2, 3))
        iou_losses.append(((reference_iou[rows, :count] - true_iou) ** 2).mean())
    # samforge averages over the batch's objects (micro-sam sums images): equal objects per
    # image, so the mean of the per-image means
    expected = torch.stack(mask_losses).mean() + torch.stack(iou_losses).mean()
    expected.backward()
    torch.testing.assert_close(out.loss, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.low_res.grad, reference_low.grad, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(model.iou.grad, reference_iou.grad, rtol=1e-5, atol=1e-7)


def test_first_prompt_alternates_point_then_box_by_step():
    calls = []

    class Recorder(FixedDecoder):
        def decode(self, embeddings, points=None, boxes=None, mask_inputs=None, multimask=False):
            calls.append("box" if boxes is not None else "point")
            return super().decode(embeddings, points, boxes, mask_inputs, multimask)

    original = torch.zeros(1, 128, 256, dtype=torch.bool)
    original[0, 32:96, 64:192] = True
    model = Recorder(torch.randn(1, 3, LOW, LOW), torch.rand(1, 3))
    images, masks, sizes = frame_inputs([original])
    objective = IterativePrompting(
        PromptingSettings(n_steps=1, p_box=0.5, first_prompt="alternate")
    )
    batch = {"image": images, "masks": masks, "input_size": sizes, "original_masks": [original]}
    for step in range(4):
        objective.losses(model, batch | {"step": step}, torch.Generator().manual_seed(step))
    assert calls == ["point", "box", "point", "box"]  # micro-sam: a point on even iterations

    calls.clear()  # "random" draws the kind from the generator, whatever the step
    objective = IterativePrompting(PromptingSettings(n_steps=1, p_box=0.5))
    for seed in range(12):
        objective.losses(model, batch | {"step": 0}, torch.Generator().manual_seed(seed))
    assert set(calls) == {"point", "box"}


def test_alternate_refuses_a_p_box_it_would_ignore():
    with pytest.raises(ConfigError, match=r"p_box: 0\.5"):
        PromptingSettings(p_box=1.0, first_prompt="alternate")


def test_training_after_inference_on_the_same_sizes():
    """The resize matrices are cached; made first under inference_mode (the Predictor, the
    demo's evaluation before its fine-tune), they must still serve a backward pass."""
    transform = VIT_TEST.input_transform()
    low_res = torch.randn(1, 1, LOW, LOW)
    with torch.inference_mode():
        transform.masks(low_res, (77, 131))
    trainable = low_res.clone().requires_grad_(True)
    transform.original_logits(trainable, (77, 131)).sum().backward()
    assert trainable.grad is not None and torch.isfinite(trainable.grad).all()
