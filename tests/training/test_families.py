"""Training the papers' families: RobustMedSAM's robust objective on a fused model, and
SAM-UNet built around a SAM checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.official import build_official_sam
from helpers.robust import build_robust_sam
from samforge.data import ObjectSegmentationDataset
from samforge.data.phantoms import phantom_case
from samforge.models import build_model, fuse_modules, load_model
from samforge.models.config import VIT_TEST
from samforge.training import load_config, train
from samforge.training.losses import dice_loss, upscale_logits
from samforge.training.objectives import RobustSettings, robust_loss

from .test_engine import tiny_config

SMALL_ARCH = dict(embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,))


def square_masks(batch: int = 1, n_obj: int = 2) -> torch.Tensor:
    masks = torch.zeros(batch, n_obj, 256, 256)
    for j in range(n_obj):
        masks[:, j, 30 + 90 * j : 100 + 90 * j, 40:140] = 1
    return masks


def test_identical_views_have_zero_consistency_loss_and_the_paper_segmentation_loss():
    torch.manual_seed(0)
    model = build_model(VIT_TEST)
    images = torch.randn(1, 3, 256, 256)
    masks = square_masks()
    settings = RobustSettings(num_points=3)
    out = robust_loss(
        model, images, images.clone(), masks, settings, torch.Generator().manual_seed(1)
    )
    # Equal up to rounding: both views run the same decoder on the same embedding.
    assert out.feature_loss.item() < 1e-10 and out.token_loss.item() < 1e-10

    # The segmentation term, recomputed from the model with the same prompt draw.
    from samforge.prompts import positive_points

    targets = masks.flatten(0, 1).bool()
    points, labels = positive_points(targets, 3, torch.Generator().manual_seed(1))
    embedding = model.embed_images(images).repeat_interleave(2, 0)
    low_res, _ = model.decode(embedding, (points, labels.long()))
    logits = upscale_logits(low_res, (256, 256))
    # RobustSAM's FocalLoss: α multiplies every pixel's term (not α / 1 − α by class).
    truth = targets[:, None].float().expand_as(logits)
    p_true = torch.where(truth > 0, torch.sigmoid(logits), 1 - torch.sigmoid(logits))
    focal = 0.25 * (1 - p_true) ** 2 * -torch.log(p_true.clamp_min(1e-12))
    expected = 20 * focal.mean() + dice_loss(logits, targets).mean()
    torch.testing.assert_close(out.segmentation_loss, expected, rtol=1e-5, atol=1e-6)


def test_degraded_view_is_pulled_towards_the_clean_one_not_the_reverse():
    torch.manual_seed(0)
    model = build_model(VIT_TEST).train()
    clean = torch.randn(1, 3, 256, 256)
    degraded = clean + 0.5 * torch.randn(1, 3, 256, 256)
    out = robust_loss(
        model, clean, degraded, square_masks(), RobustSettings(), torch.Generator().manual_seed(2)
    )
    assert out.feature_loss.item() > 0 and out.token_loss.item() > 0
    out.loss.backward()
    assert model.mask_decoder.output_upscaling[0].weight.grad.abs().sum() > 0


def test_dataset_pairs_a_degraded_view_with_the_same_objects():
    case = phantom_case("mr", (96, 96), seed=3)
    dataset = ObjectSegmentationDataset(
        [case], n_obj=2, image_size=256, degradations=["mri"], severity=3
    )
    item, again = dataset[0], dataset[0]
    assert item["degradation"] in ("rician", "rayleigh", "step_motion")
    assert torch.equal(item["degraded_image"], again["degraded_image"])  # deterministic
    assert not torch.equal(item["degraded_image"], item["image"])
    plain = ObjectSegmentationDataset([case], n_obj=2, image_size=256)[0]
    assert torch.equal(plain["image"], item["image"]) and torch.equal(plain["masks"], item["masks"])


@pytest.fixture(scope="module")
def fused_file(tmp_path_factory):
    """RobustMedSAM's starting point: a MedSAM-format encoder with a RobustSAM decoder."""
    folder = tmp_path_factory.mktemp("fusion")
    torch.save(
        build_official_sam(image_size=256, seed=3, **SMALL_ARCH).state_dict(), folder / "enc.pth"
    )
    torch.save(build_robust_sam(seed=4, **SMALL_ARCH).state_dict(), folder / "robust.pth")
    fused = fuse_modules(folder / "enc.pth", mask_decoder=folder / "robust.pth")
    from samforge.models import export_model

    return export_model(fused, folder / "fused.pth")


def test_robust_preset_trains_only_the_decoder_of_a_fused_model(tmp_path, fused_file):
    values = tiny_config(tmp_path, trainer__max_steps=3)
    values.update(extends="robust", model=str(fused_file), name="robust")
    values["data"].update(degradations=["modality_agnostic"], batch_size=2)
    config = load_config(values)
    assert config.objective.kind == "robust" and config.freeze.policy == "decoder"
    result = train(config)
    start = torch.load(fused_file, weights_only=True)
    trained = torch.load(result.export_path, weights_only=True)
    assert set(trained) == set(start)  # RobustSAM's format, extras kept
    for key in start:
        if not key.startswith("mask_decoder."):
            assert torch.equal(trained[key], start[key]), key
    changed = [
        k for k in start if k.startswith("mask_decoder.") and not torch.equal(trained[k], start[k])
    ]
    assert any("robust" in key or "fourier" in key for key in changed)
    # The robust_segment_anything package loads the result strictly.
    reference = build_robust_sam(seed=0, **SMALL_ARCH)
    reference.load_state_dict(trained, strict=True)


def test_sam_unet_trains_around_a_sam_checkpoint_with_the_vit_frozen(tmp_path):
    from helpers.configs import SAMUNET_TEST

    sam_config = SAMUNET_TEST.with_changes(family="sam")
    torch.manual_seed(0)
    source = tmp_path / "sam.pth"
    torch.save(build_model(sam_config).state_dict(), source)
    values = tiny_config(tmp_path, trainer__max_steps=3)
    values.update(extends="samunet", model=str(source), name="samunet", resnet="resnet34")
    config = load_config(values)
    result = train(config)
    trained = load_model(result.export_path)
    assert trained.config.family == "sam_unet"
    vit = {k: v for k, v in trained.state_dict().items() if k.startswith("image_encoder.")}
    base = torch.load(source, weights_only=True)
    for key, value in vit.items():
        name = key.replace("image_encoder.sam_img_encoder.", "image_encoder.")
        assert torch.equal(value, base[name]), key
    first, last = _losses(result.run_dir)
    assert np.isfinite(first) and np.isfinite(last)


def _losses(run_dir) -> tuple[float, float]:
    import csv

    rows = list(csv.DictReader((run_dir / "logs" / "metrics.csv").open()))
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    return losses[0], losses[-1]
