"""MedicoSAM's iterative-prompting objective: what is prompted, how often, and the loss."""

from __future__ import annotations

import pytest
import torch

from samforge.errors import ConfigError
from samforge.models import build_model
from samforge.models.config import VIT_TEST
from samforge.training.losses import dice_loss, focal_loss, mask_iou
from samforge.training.objectives import PromptingSettings, iterative_prompting_loss

SIZE = VIT_TEST.image_size


class SpyModel(torch.nn.Module):
    """A real small SAM that records every call the objective makes."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.sam = build_model(VIT_TEST).train()
        self.embed_calls: list[tuple[int, ...]] = []
        self.decode_calls: list[dict] = []

    def embed_images(self, images):
        self.embed_calls.append(tuple(images.shape))
        return self.sam.embed_images(images)

    def decode(self, embeddings, points=None, boxes=None, mask_inputs=None, multimask_output=False):
        self.decode_calls.append(
            {
                "batch": embeddings.shape[0],
                "points": None if points is None else points[0].shape[1],
                "labels": None if points is None else points[1].clone(),
                "coords": None if points is None else points[0].clone(),
                "boxes": None if boxes is None else boxes.clone(),
                "mask": mask_inputs is not None,
                "multimask": multimask_output,
            }
        )
        return self.sam.decode(embeddings, points, boxes, mask_inputs, multimask_output)


def squares(batch: int = 2, n_obj: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.randn(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    masks = torch.zeros(batch, n_obj, SIZE, SIZE)
    for b in range(batch):
        for j in range(n_obj):
            top = 20 + 70 * j
            masks[b, j, top : top + 40 + 5 * b, 30 + 10 * j : 90 + 10 * j] = 1
    return images, masks


def run(settings: PromptingSettings, seed: int = 0, model: SpyModel | None = None):
    model = model or SpyModel()
    images, masks = squares()
    out = iterative_prompting_loss(
        model, images, masks, settings, torch.Generator().manual_seed(seed)
    )
    return model, out


def test_image_encoded_once_and_decoded_once_per_prediction():
    model, out = run(PromptingSettings(n_steps=8, p_box=1.0, p_mask=0.0))
    assert model.embed_calls == [(2, 3, SIZE, SIZE)]
    assert len(model.decode_calls) == 8
    assert all(call["batch"] == 6 for call in model.decode_calls)  # B·n objects
    assert out.round_dice.shape == (8,)


@pytest.mark.parametrize("n_steps", [0, 1])
def test_no_corrections_means_one_prediction(n_steps):
    model, _ = run(PromptingSettings(n_steps=n_steps, p_box=1.0, p_mask=0.0))
    assert len(model.decode_calls) == 1


def test_box_start_keeps_the_box_and_adds_one_positive_and_one_negative_point_per_round():
    model, _ = run(PromptingSettings(n_steps=4, p_box=1.0, p_mask=0.0))
    calls = model.decode_calls
    first_boxes = calls[0]["boxes"]
    assert calls[0]["points"] is None
    assert [call["points"] for call in calls[1:]] == [2, 4, 6]
    for call in calls[1:]:
        assert torch.equal(call["boxes"], first_boxes)
        assert torch.equal(call["labels"][:, 0::2], torch.ones_like(call["labels"][:, 0::2]))
        assert torch.equal(call["labels"][:, 1::2], torch.zeros_like(call["labels"][:, 1::2]))
    assert not any(call["multimask"] for call in calls)


def test_boxes_contain_the_objects_and_grow_at_most_by_the_jitter():
    model, _ = run(PromptingSettings(n_steps=1, p_box=1.0, p_mask=0.0, box_jitter=0.025))
    boxes = model.decode_calls[0]["boxes"]
    _, masks = squares()
    for box, mask in zip(boxes, masks.flatten(0, 1), strict=True):
        ys, xs = torch.nonzero(mask, as_tuple=True)
        tight = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()
        side = (tight[2:] - tight[:2]).repeat(2)
        grown = (box - tight) * torch.tensor([-1.0, -1.0, 1.0, 1.0])
        assert torch.all(grown >= 0) and torch.all(grown <= 0.025 * side + 1e-4)


def test_point_start_is_multimask_only_in_the_first_round():
    model, _ = run(PromptingSettings(n_steps=3, p_box=0.0, p_mask=0.0))
    calls = model.decode_calls
    assert calls[0]["multimask"] and calls[0]["points"] == 1 and calls[0]["boxes"] is None
    assert [call["multimask"] for call in calls[1:]] == [False, False]
    assert [call["points"] for call in calls[1:]] == [3, 5]


@pytest.mark.parametrize(("p_mask", "expected"), [(0.0, False), (1.0, True)])
def test_mask_feedback_follows_p_mask(p_mask, expected):
    model, _ = run(PromptingSettings(n_steps=4, p_box=1.0, p_mask=p_mask))
    assert model.decode_calls[0]["mask"] is False
    assert all(call["mask"] is expected for call in model.decode_calls[1:])


@pytest.mark.parametrize("dice", ["squared", "linear"])
def test_loss_is_dice_plus_iou_mse_averaged_over_rounds(dice):
    """Recompute the loss from the model's own outputs with the closed-form definitions
    (squared: torch_em's Σp² + Σt² denominator, the default; linear: Σp + Σt)."""
    torch.manual_seed(3)
    sam = build_model(VIT_TEST)
    images, masks = squares(batch=1, n_obj=2)
    targets = masks.flatten(0, 1).bool()
    out = iterative_prompting_loss(
        sam,
        images,
        masks,
        PromptingSettings(n_steps=1, p_box=0.0, p_mask=0.0, dice=dice),
        torch.Generator().manual_seed(5),
    )
    # Redo the single point-start round with the same draw of the generator.
    generator = torch.Generator().manual_seed(5)
    torch.rand((), generator=generator)  # the box-or-point draw
    from samforge.prompts import positive_points

    points, labels = positive_points(targets, 1, generator)
    embedding = sam.embed_images(images).repeat_interleave(2, 0)
    low_res, iou_pred = sam.decode(embedding, (points, labels.long()), None, None, True)
    logits = torch.nn.functional.interpolate(low_res, (SIZE, SIZE), mode="bilinear")
    probs = torch.sigmoid(logits)
    t = targets[:, None].float()
    spread = (probs**2 if dice == "squared" else probs).sum((2, 3))
    dice = 1 - 2 * (probs * t).sum((2, 3)) / (spread + t.sum((2, 3)))
    hard = logits > 0
    iou = (hard & t.bool()).sum((2, 3)) / (hard | t.bool()).sum((2, 3)).clamp(min=1)
    expected_mask = dice.min(dim=1).values.mean()
    expected_iou = ((iou_pred - iou) ** 2).mean()
    torch.testing.assert_close(out.mask_loss, expected_mask, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.iou_loss, expected_iou, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(out.loss, expected_mask + expected_iou, rtol=1e-4, atol=1e-5)


def test_same_seed_same_loss_other_seed_other_prompts():
    _, first = run(PromptingSettings(n_steps=3, p_box=0.5, p_mask=0.5), seed=11)
    _, again = run(PromptingSettings(n_steps=3, p_box=0.5, p_mask=0.5), seed=11)
    assert torch.equal(first.loss, again.loss)
    spies = [run(PromptingSettings(n_steps=2, p_box=0.0, p_mask=0.0), seed=s)[0] for s in (1, 2)]
    assert not torch.equal(spies[0].decode_calls[1]["labels"], spies[1].decode_calls[0]["labels"])


def test_gradients_reach_encoder_and_decoder():
    model, out = run(PromptingSettings(n_steps=2, p_box=1.0, p_mask=1.0))
    out.loss.backward()
    encoder = model.sam.image_encoder.patch_embed.proj.weight.grad
    decoder = model.sam.mask_decoder.iou_token.weight.grad
    assert encoder is not None and encoder.abs().sum() > 0
    assert decoder is not None and decoder.abs().sum() > 0


def test_semantic_seam_adds_its_loss_on_the_union_of_objects():
    seen = {}

    def semantic(embeddings, union):
        seen["union"] = union
        return embeddings.mean() * 0 + 0.25

    images, masks = squares()
    out = iterative_prompting_loss(
        build_model(VIT_TEST),
        images,
        masks,
        PromptingSettings(n_steps=1, p_box=1.0, p_mask=0.0),
        torch.Generator().manual_seed(0),
        semantic_loss=semantic,
    )
    assert torch.equal(seen["union"], masks.bool().any(dim=1))
    assert out.semantic_loss.item() == pytest.approx(0.25)
    torch.testing.assert_close(out.loss, out.mask_loss + out.iou_loss + 0.25)


@pytest.mark.parametrize(
    "bad", [{"n_steps": -1}, {"p_box": 1.5}, {"p_mask": -0.1}, {"box_jitter": -1.0}]
)
def test_bad_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        PromptingSettings(**bad)


def test_losses_closed_forms():
    target = torch.zeros(1, 8, 8, dtype=torch.bool)
    target[0, 2:6, 2:6] = True
    perfect = torch.where(target, 50.0, -50.0)[:, None]
    assert dice_loss(perfect, target).item() == pytest.approx(0.0, abs=1e-6)
    assert dice_loss(-perfect, target).item() == pytest.approx(1.0, abs=1e-6)
    assert mask_iou(perfect, target).item() == 1.0
    half = torch.zeros(1, 1, 8, 8)  # p = 0.5 everywhere: focal = α-weighted 0.25·ln 2
    expected = (16 * 0.25 + 48 * 0.75) * 0.25 * torch.log(torch.tensor(2.0)) / 64
    assert focal_loss(half, target).item() == pytest.approx(expected.item(), rel=1e-5)


def test_correction_points_stay_inside_the_image_content_of_a_padded_frame():
    """A wide image fills the top of the square frame; the rest is padding."""
    model = SpyModel()
    images, masks = squares(batch=1, n_obj=2)
    masks[:, :, 100:] = 0  # objects lie in the content (rows < 100)
    content = torch.tensor([[100, SIZE]])
    iterative_prompting_loss(
        model,
        images,
        masks,
        PromptingSettings(n_steps=6, p_box=1.0, p_mask=0.0),
        torch.Generator().manual_seed(0),
        input_sizes=content,
    )
    coords = model.decode_calls[-1]["coords"]
    labels = model.decode_calls[-1]["labels"]
    assert coords.shape[1] == 10
    assert torch.all(coords[..., 1][labels >= 0] < 100)
