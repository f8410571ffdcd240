"""Semantic checkpoints: MedicoSAM's published format loads with its decoder and computes
what torch_em's UNETR computes; samforge's files round-trip exactly."""

from __future__ import annotations

import pytest
import torch

from helpers.torch_em_reference import decoder_state, medicosam_unetr
from samforge.errors import CheckpointError, ModelNotFoundError
from samforge.models import build_model, get_config, load_model
from samforge.models.semantic import (
    MonaiSemanticModel,
    SamSemanticModel2d,
    SamSemanticModel3d,
    SemanticInfo,
    export_sam_part,
    load_semantic_model,
    save_semantic_model,
)


def small_sam(image_size: int = 64):
    torch.manual_seed(0)
    return build_model(get_config("vit_test").with_changes(image_size=image_size))


def medicosam_file(tmp_path, transposed: bool):
    """A MedicoSAM checkpoint in its published shape: micro-sam's trainer keeps the SAM
    weights under ``model_state`` with the ``sam.`` prefix and the UNETR decoder (torch_em
    names, its encoder left out) under ``decoder_state``."""
    sam = small_sam()
    unetr = medicosam_unetr(sam.image_encoder, out_channels=4, transposed=transposed)
    path = tmp_path / "medicosam.pt"
    model_state = {f"sam.{key}": value for key, value in sam.state_dict().items()}
    torch.save({"model_state": model_state, "decoder_state": decoder_state(unetr)}, path)
    return path, unetr


@pytest.mark.parametrize("transposed", [False, True])
def test_medicosam_file_computes_torch_ems_unetr(tmp_path, transposed):
    path, unetr = medicosam_file(tmp_path, transposed)
    model = load_semantic_model(path)
    assert isinstance(model, SamSemanticModel2d)
    assert model.info.class_names == ("background", "class_1", "class_2", "class_3")
    # An odd, non-square size: resized into the 64² frame, padded, and back.
    image = torch.rand(2, 1, 45, 71, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = unetr(image.expand(-1, 3, -1, -1) * 255.0)
        logits = model(image)
    assert logits.shape == (2, 4, 45, 71)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)


def test_medicosam_format_round_trips(tmp_path):
    path, unetr = medicosam_file(tmp_path, transposed=False)
    model = load_semantic_model(path)
    written = save_semantic_model(model, tmp_path / "again.pth")
    content = torch.load(written, weights_only=True)
    # Still MedicoSAM's format: micro-sam reads model_state and decoder_state as before.
    assert set(content["decoder_state"]) == set(decoder_state(unetr))
    for key, value in decoder_state(unetr).items():
        assert content["decoder_state"][key].shape == value.shape, key
    with pytest.warns(UserWarning, match="load_semantic_model"):
        assert load_model(written).config.encoder_embed_dim == 64  # the SAM part, as SAM
    again = load_semantic_model(written)
    image = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(again(image), model(image))
    assert again.info == model.info


def test_samforge_models_round_trip_with_their_metadata(tmp_path):
    info = SemanticInfo(2, ("background", "liver", "kidney"), (48, 32), 1, "ct", (40.0, 400.0))
    volume_info = SemanticInfo(3, ("background", "tumour"), (3, 32, 32), 1)
    models = [
        SamSemanticModel2d(small_sam(), info),
        SamSemanticModel3d(small_sam(), volume_info),
        MonaiSemanticModel("monai:unet", info),
    ]
    for index, model in enumerate(models):
        model.eval()
        path = save_semantic_model(model, tmp_path / f"model{index}.pth")
        loaded = load_semantic_model(path)
        assert type(loaded) is type(model) and loaded.info == model.info
        image = torch.rand(1, 1, *model.info.patch_size)
        with torch.no_grad():
            assert torch.equal(loaded(image), model(image))


def test_sam_part_exports_in_the_official_format(tmp_path):
    sam = small_sam()
    model = SamSemanticModel2d(sam, SemanticInfo(2, ("background", "a"), (64, 64), 1))
    path = export_sam_part(model, tmp_path / "sam.pth")
    state = torch.load(path, weights_only=True)
    assert set(state) == set(sam.state_dict())
    assert all(torch.equal(state[key], value) for key, value in sam.state_dict().items())


def test_files_without_a_semantic_model_are_refused(tmp_path):
    sam_only = tmp_path / "sam.pth"
    torch.save(small_sam().state_dict(), sam_only)
    with pytest.raises(CheckpointError, match="no semantic model"):
        load_semantic_model(sam_only)
    with pytest.raises(ModelNotFoundError):
        load_semantic_model(tmp_path / "missing.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_semantic_model(garbage)
