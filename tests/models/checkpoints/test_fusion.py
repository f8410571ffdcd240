"""Module fusion (RobustMedSAM's initialisation) and ``samforge fuse``.

The sources are files in the published formats: a MedSAM-style bare SAM state dict drawn by
the official ``segment_anything`` code, and a RobustSAM state dict drawn by the
``robust_segment_anything`` package. The fused model must hold exactly their tensors, take
the input convention RobustMedSAM's predictor uses (or the encoder's when asked), survive
export and reload with identical outputs, and say where every module came from (file
SHA-256s computed here with hashlib).
"""

from __future__ import annotations

import hashlib
import json
import sys

import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from helpers.configs import SAMUNET_TEST
from helpers.official import build_official_sam
from helpers.robust import build_robust_sam
from samforge.cli import app, main
from samforge.errors import CheckpointError
from samforge.models import build_model, export_model, family_of, fuse_modules, load_model

SMALL_ARCH = dict(embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,))
BOXES = torch.tensor([[10.0, 20, 100, 200], [50, 50, 120, 90]])


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """(MedSAM-format encoder file, RobustSAM-format decoder file) with their state dicts."""
    folder = tmp_path_factory.mktemp("sources")
    medsam = build_official_sam(image_size=256, seed=11, **SMALL_ARCH).state_dict()
    robust = build_robust_sam(seed=12, **SMALL_ARCH).state_dict()
    # Published file names: the first is recognised as MedSAM (its input convention).
    torch.save(medsam, folder / "medsam_vit_b.pth")
    torch.save(robust, folder / "robustsam_checkpoint_b.pth")
    return folder / "medsam_vit_b.pth", folder / "robustsam_checkpoint_b.pth", medsam, robust


def outputs(model, clean: bool):
    image = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        return model.decode_with_features(model.embed_images(image), boxes=BOXES, clean=clean)


def test_fusion_takes_each_module_from_its_source(sources):
    encoder_path, decoder_path, medsam, robust = sources
    model = fuse_modules(image_encoder=encoder_path, mask_decoder=decoder_path)
    assert family_of(model.config).name == "RobustSAM"
    state = model.state_dict()
    assert set(state) == set(robust)
    for key, value in state.items():
        source = medsam if key.startswith(("image_encoder.", "prompt_encoder.")) else robust
        assert torch.equal(value, source[key]), key
    modules = model.provenance["modules"]
    assert modules["image_encoder"]["file_sha256"] == sha256(encoder_path)
    assert modules["prompt_encoder"]["source"] == str(encoder_path)  # defaults to the encoder's
    assert modules["mask_decoder"]["file_sha256"] == sha256(decoder_path)
    assert modules["mask_decoder"]["family"] == "RobustSAM"


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_fused_model_round_trips_through_export_and_load(sources, tmp_path, suffix):
    encoder_path, decoder_path, _, _ = sources
    model = fuse_modules(encoder_path, mask_decoder=decoder_path, preprocessing="image_encoder")
    path = export_model(model, tmp_path / f"fused{suffix}", provenance=model.provenance)
    reloaded = load_model(path)
    assert reloaded.config == model.config  # the MedSAM convention comes back too
    assert reloaded.provenance["stored"]["modules"] == json.loads(
        json.dumps(model.provenance["modules"])
    )
    for clean in (False, True):
        for ours, again in zip(outputs(model, clean), outputs(reloaded, clean), strict=True):
            assert torch.equal(ours, again)
    if suffix == ".pth":
        sidecar = json.loads((tmp_path / "fused.provenance.json").read_text())
        assert sidecar["provenance"]["modules"]["image_encoder"]["file_sha256"] == sha256(
            encoder_path
        )
        package_model = build_robust_sam(seed=0, **SMALL_ARCH)  # RobustSAM's own loader
        package_model.load_state_dict(torch.load(path, weights_only=True), strict=True)
    else:
        with safe_open(str(path), framework="pt") as handle:
            assert "samforge_provenance" in handle.metadata()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_mismatched_shapes_are_refused_naming_tensors_and_sources(sources, tmp_path):
    _, decoder_path, _, _ = sources
    wider = build_official_sam(image_size=256, seed=3, embed_dim=96, depth=2, num_heads=2,
                               global_attn_indexes=(1,))  # fmt: skip
    wider_path = tmp_path / "wider.pth"
    torch.save(wider.state_dict(), wider_path)
    with pytest.raises(CheckpointError) as caught:
        fuse_modules(wider_path, mask_decoder=decoder_path)
    message = str(caught.value)
    assert "image_encoder.blocks.0.attn.proj.bias: (96,)" in message
    assert str(wider_path) in message and str(decoder_path) in message


def test_sam_unet_is_refused(sources):
    _, decoder_path, _, _ = sources
    with pytest.raises(CheckpointError, match="SAM-UNet"):
        fuse_modules(build_model(SAMUNET_TEST), mask_decoder=decoder_path)


def test_cli_writes_the_fused_model_and_its_provenance(sources, tmp_path):
    encoder_path, decoder_path, _, _ = sources
    output = tmp_path / "fused.pth"
    result = CliRunner().invoke(
        app,
        ["fuse", "--image-encoder", str(encoder_path), "--mask-decoder", str(decoder_path),
         "-o", str(output)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "RobustSAM" in result.output and sha256(encoder_path)[:12] in result.output
    assert load_model(output).provenance["stored"]["fused"] is True
    assert load_model(output).config.preprocessing == "sam"  # RobustMedSAM's predictor
    assert (tmp_path / "fused.provenance.json").is_file()


def test_cli_error_is_one_line_with_exit_status_2(sources, tmp_path, monkeypatch, capsys):
    _, decoder_path, _, _ = sources
    argv = ["samforge", "fuse", "--image-encoder", str(tmp_path / "missing.pth"),
            "--mask-decoder", str(decoder_path), "-o", str(tmp_path / "out.pth")]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "missing.pth" in error and "not found" in error
    assert not (tmp_path / "out.pth").exists()


def test_fusion_defaults_to_the_input_convention_of_robustmedsams_predictor(sources):
    # RobustMedSAM's robust_med_segment_anything/predictor.py (jli2556/RobustMedSAM) feeds
    # the fused model through ResizeLongestSide and Sam.preprocess: longest side resized,
    # SAM's pixel mean/std, padded; not MedSAM's straight resize and min-max.
    encoder_path, decoder_path, _, _ = sources
    model = fuse_modules(image_encoder=encoder_path, mask_decoder=decoder_path)
    assert model.config.preprocessing == "sam"
    assert model.config.pixel_mean == (123.675, 116.28, 103.53)
    assert model.config.pixel_std == (58.395, 57.12, 57.375)
    asked = fuse_modules(encoder_path, mask_decoder=decoder_path, preprocessing="image_encoder")
    assert asked.config.preprocessing == "medsam"  # the encoder's convention, on request
    assert torch.equal(
        asked.state_dict()["mask_decoder.iou_token.weight"],
        model.state_dict()["mask_decoder.iou_token.weight"],
    )
