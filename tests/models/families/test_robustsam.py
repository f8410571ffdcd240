"""RobustSAM against the ``robust_segment_anything`` package (1.0.0) on the same random weights.

The package builds the model (small encoder, every parameter and batch-norm statistic
random); samforge loads its state dict strictly through ``load_model`` and must reproduce,
within 1e-5 of the largest value (fp32), its masks, IoUs, robust mask features and mask
tokens on the robust (degraded-image) and the clean path, for boxes and points. The
package decodes one prompt per call; samforge decodes all of them in one call.
"""

from __future__ import annotations

import types
import warnings

import pytest
import torch

from helpers.official import official_sam_from_state_dict
from helpers.robust import build_robust_sam, reference_decode
from samforge.errors import CheckpointError, EmbeddingError
from samforge.models import export_model, export_official, family_of, load_model
from samforge.models.config import VIT_TEST

RELATIVE_TOLERANCE = 1e-5
SMALL_ARCH = dict(embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,))


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    assert ours.shape == reference.shape, f"shape {ours.shape} != {reference.shape}"
    scale = reference.abs().max().clamp_min(1e-12)
    return ((ours.double() - reference.double()).abs().max() / scale).item()


@pytest.fixture(scope="module")
def models():
    reference = build_robust_sam(seed=3, **SMALL_ARCH)
    ours = load_model({key: value.clone() for key, value in reference.state_dict().items()})
    return reference, ours


@pytest.fixture(scope="module")
def image():
    return torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(1))


PROMPTS = {
    "box": dict(boxes=torch.tensor([[10.0, 20, 100, 200], [50, 50, 120, 90], [0, 0, 255, 255]])),
    "points": dict(
        points=(
            torch.tensor([[[60.0, 70], [200, 30]], [[128, 128], [10, 240]], [[5, 5], [250, 250]]]),
            torch.tensor([[1, 0], [1, 1], [1, 0]]),
        )
    ),
}


@pytest.mark.parametrize("size", ["b", "l", "h"])
def test_public_architectures_have_the_package_keys_and_shapes(size):
    """The package's own builders (1024², on the meta device: nothing allocated)."""
    from robust_segment_anything import sam_model_registry

    from samforge.models import build_model, get_config

    with torch.device("meta"):
        package = sam_model_registry[f"vit_{size}"](types.SimpleNamespace()).state_dict()
        ours = build_model(get_config(f"robustsam_vit_{size}")).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {
        k: tuple(v.shape) for k, v in package.items()
    }


def test_loads_as_robustsam(models):
    reference, ours = models
    assert ours.config == VIT_TEST.with_changes(family="robust")
    assert ours.provenance["family"] == "RobustSAM"
    extras = [key for key in reference.state_dict() if "robust" in key or "fourier" in key]
    assert extras and all(key in ours.state_dict() for key in extras)


@pytest.mark.parametrize("prompt", list(PROMPTS))
@pytest.mark.parametrize("clean", [False, True], ids=["degraded", "clean"])
@pytest.mark.parametrize("multimask", [False, True])
def test_matches_package(models, image, prompt, clean, multimask):
    reference, ours = models
    expected = reference_decode(
        reference, image, multimask=multimask, clean=clean, **PROMPTS[prompt]
    )
    with torch.no_grad():
        output = ours.decode_with_features(
            ours.embed_images(image), multimask_output=multimask, clean=clean, **PROMPTS[prompt]
        )
    masks = expected["masks"]
    if multimask and not clean:
        # The package's robust path returns 15 masks there; its masks 1–3 come first.
        masks = masks[:, :3]
    errors = {
        "masks": relative_error(output.low_res_logits, masks),
        "iou": relative_error(output.iou_predictions, expected["iou"]),
        "features": relative_error(output.mask_features, expected["features"]),
        "tokens": relative_error(output.output_tokens, expected["tokens"]),
    }
    assert max(errors.values()) <= RELATIVE_TOLERANCE, errors


def test_ddp_trained_checkpoint_loads(models):
    """RobustSAM's training script saves the DDP model's state dict (``module.`` keys)."""
    reference, _ = models
    ddp = {f"module.{key}": value for key, value in reference.state_dict().items()}
    loaded = load_model(ddp)
    assert family_of(loaded.config).name == "RobustSAM"
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in reference.state_dict().items())


def test_decode_is_the_robust_path(models, image):
    _, ours = models
    with torch.no_grad():
        embeddings = ours.embed_images(image)
        masks, iou = ours.decode(embeddings, **PROMPTS["box"])
        robust = ours.decode_with_features(embeddings, **PROMPTS["box"])
    assert torch.equal(masks, robust.low_res_logits) and torch.equal(iou, robust.iou_predictions)


def test_one_embedding_per_prompt_equals_a_shared_one(models):
    _, ours = models
    images = torch.randn(3, 3, 256, 256, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        embeddings = ours.embed_images(images)
        together = ours.decode(embeddings, **PROMPTS["box"])[0]
        for index in range(3):
            one = {key: value[index : index + 1] for key, value in embeddings.items()}
            alone = ours.decode(one, boxes=PROMPTS["box"]["boxes"][index : index + 1])[0]
            torch.testing.assert_close(together[index : index + 1], alone)


def test_embeddings_are_a_dict_of_batch_first_tensors(models, image):
    _, ours = models
    with torch.no_grad():
        embeddings = ours.embed_images(image.repeat(2, 1, 1, 1))
    assert embeddings["image_embeddings"].shape == (2, 256, 16, 16)
    assert embeddings["early_features"].shape == (2, 64, 16, 16)
    with pytest.raises(EmbeddingError, match="dict"):
        ours.decode(embeddings["image_embeddings"], **PROMPTS["box"])


def test_export_in_robustsam_format_loads_strictly_in_the_package(models, image, tmp_path):
    reference, ours = models
    path = export_model(ours, tmp_path / "robust.pth")
    state = torch.load(path, weights_only=True)
    assert set(state) == set(reference.state_dict())
    package_model = build_robust_sam(seed=9, **SMALL_ARCH)
    package_model.load_state_dict(state, strict=True)
    expected = reference_decode(package_model, image, **PROMPTS["box"])
    reloaded = load_model(path)
    with torch.no_grad():
        masks = reloaded.decode(reloaded.embed_images(image), **PROMPTS["box"])[0]
    assert relative_error(masks, expected["masks"]) <= RELATIVE_TOLERANCE


def test_export_to_sam_format_needs_drop_extras(models, image, tmp_path):
    _, ours = models
    with pytest.raises(CheckpointError, match=r"RobustSAM.*export_model.*drop_extras=True"):
        export_official(ours, tmp_path / "plain.pth")
    assert list(tmp_path.iterdir()) == []

    with pytest.warns(UserWarning, match="dropped 89 RobustSAM tensors"):
        path = export_official(ours, tmp_path / "plain.pth", drop_extras=True)
    official = official_sam_from_state_dict(
        torch.load(path, weights_only=True), image_size=256, **SMALL_ARCH
    )
    # What remains is plain SAM: RobustSAM's clean path.
    with torch.no_grad():
        clean = ours.decode_with_features(ours.embed_images(image), clean=True, **PROMPTS["box"])
        embedding = official.image_encoder(image)
        sparse, dense = official.prompt_encoder(
            points=None, boxes=PROMPTS["box"]["boxes"], masks=None
        )
        masks, _ = official.mask_decoder(
            embedding, official.prompt_encoder.get_dense_pe(), sparse, dense, False
        )
    assert relative_error(clean.low_res_logits, masks) <= RELATIVE_TOLERANCE
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_model(path).config.family == "sam"
