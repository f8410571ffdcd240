"""The model registry: required entries, consistent records, lookups and the CLI table."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from samforge.cli.models import app
from samforge.errors import ModelNotFoundError
from samforge.models import family_of, get_model_spec, list_models
from samforge.models.checkpoints import registry
from samforge.models.checkpoints.registry import ModelSpec, register_model
from samforge.models.config import VIT_TEST

REQUIRED = [
    "sam_vit_b",
    "sam_vit_l",
    "sam_vit_h",
    "medsam_vit_b",
    "medicosam_vit_b",
    "robustsam_vit_b",
    "robustsam_vit_l",
    "robustsam_vit_h",
    "robustmedsam_vit_b",
    "sammed2d_vit_b",
    "samforge_random_tiny",
    "samforge_nano",
    "samforge_nano_v1",
]
HEX_LENGTH = {"sha256": 64, "md5": 32, "xxh128": 32}


@pytest.fixture
def isolated_registry(monkeypatch):
    """Registrations made by a test disappear after it."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))


def test_required_models_are_registered():
    assert set(REQUIRED) <= set(list_models())
    assert list_models("sam_vit_*") == ["sam_vit_b", "sam_vit_l", "sam_vit_h"]


@pytest.mark.parametrize("name", REQUIRED)
def test_records_are_consistent(name):
    spec = get_model_spec(name)
    config = spec.config
    assert config.image_size == spec.input_size
    assert config.preprocessing == spec.preprocessing
    assert spec.description and spec.licence and spec.checksum_source
    if spec.init == "checkpoint":
        assert spec.url.startswith("https://") and spec.filename
    if spec.checksum is not None:
        algorithm, digest = spec.checksum.split(":")
        assert re.fullmatch(f"[0-9a-f]{{{HEX_LENGTH[algorithm]}}}", digest), spec.checksum


@pytest.mark.parametrize("name", ["sam_vit_b", "sam_vit_l", "sam_vit_h"])
def test_sam_entries_follow_meta_naming(name):
    spec = get_model_spec(name)
    suffix = re.search(r"_([0-9a-f]{6})\.pth$", spec.filename).group(1)
    assert spec.url == f"https://dl.fbaipublicfiles.com/segment_anything/{spec.filename}"
    # Meta's suffix is the start of the file's MD5, recorded beside the SHA-256 we verify.
    assert re.search(rf"\b{suffix}[0-9a-f]{{26}}\b", spec.checksum_source)
    assert spec.checksum_algorithm == "sha256"
    assert spec.architecture == name.removeprefix("sam_")


def test_medical_entries():
    assert get_model_spec("medsam_vit_b").preprocessing == "medsam"
    medico = get_model_spec("medicosam_vit_b")
    assert medico.preprocessing == "sam" and medico.checksum_algorithm == "xxh128"
    assert get_model_spec("vit_b_medical_imaging") is medico  # micro-sam's name


def test_robustmedsam_entry_is_its_release():
    spec = get_model_spec("robustmedsam_vit_b")
    # The release link of RobustMedSAM's README (v1.0.0); it publishes no checksum.
    assert spec.url == (
        "https://github.com/jli2556/RobustMedSAM/releases/download/v1.0.0/robustmedsam_best.pth"
    )
    assert spec.checksum is None and "none published" in spec.checksum_source
    # A RobustSAM ViT-B (its decoder extras) fed SAM's way, as its predictor does.
    assert spec.architecture == "robustsam_vit_b" and spec.preprocessing == "sam"
    assert family_of(spec.config).name == "RobustSAM"


@pytest.mark.parametrize("size", ["b", "l", "h"])
def test_robustsam_entries(size):
    spec = get_model_spec(f"robustsam_vit_{size}")
    # The links of RobustSAM's README; no checksum is published, none is invented.
    assert spec.url == (
        "https://huggingface.co/robustsam/robustsam/resolve/main/model_checkpoint/"
        f"robustsam_checkpoint_{size}.pth"
    )
    assert spec.checksum is None and "none published" in spec.checksum_source
    assert family_of(spec.config).name == "RobustSAM" and spec.config.image_size == 1024
    assert spec.config.encoder_embed_dim == {"b": 768, "l": 1024, "h": 1280}[size]


def test_sammed2d_entry():
    spec = get_model_spec("sammed2d_vit_b")
    assert family_of(spec.config).name == "SAM-Med2D" and spec.format == "model"
    assert (spec.input_size, spec.preprocessing) == (256, "sammed2d")
    assert spec.filename == "sam-med2d_b.pth"  # a hand-downloaded file is recognised by name
    assert spec.checksum is None and "none published" in spec.checksum_source


def test_random_tiny_is_labelled_untrained():
    spec = get_model_spec("samforge_random_tiny")
    assert spec.init == "random" and spec.url is None
    assert spec.config == VIT_TEST
    assert "UNTRAINED" in spec.description


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ModelNotFoundError, match="Did you mean medsam_vit_b"):
        get_model_spec("medsam_vitb")


def test_register_refuses_duplicates_unless_overwritten(isolated_registry):
    spec = get_model_spec("sam_vit_b")
    with pytest.raises(ValueError, match="already registered"):
        register_model(spec)
    register_model(spec, overwrite=True)
    custom = ModelSpec(
        name="my_model",
        architecture="vit_test",
        input_size=256,
        preprocessing="sam",
        url="https://example.org/my_model.pth",
        checksum="md5:" + "0" * 32,
        checksum_source="test",
        filename="my_model.pth",
        format="bare",
        family="test",
        description="test entry",
        licence="MIT",
    )
    register_model(custom)
    assert get_model_spec("my_model") is custom
    assert "my_model" in list_models()


def test_spec_validation():
    fields = dict(
        name="bad",
        architecture="vit_test",
        input_size=256,
        preprocessing="sam",
        url="https://example.org/bad.pth",
        checksum_source="test",
        filename="bad.pth",
        format="bare",
        family="test",
        description="",
        licence="MIT",
    )
    with pytest.raises(ValueError, match="algorithm"):
        ModelSpec(checksum="crc32:1234", **fields)
    with pytest.raises(ValueError, match="url and a filename"):
        ModelSpec(checksum=None, **{**fields, "url": None})


def test_cli_list_shows_every_model(monkeypatch, tmp_path):
    monkeypatch.setenv("SAMFORGE_CACHE", str(tmp_path))
    result = CliRunner().invoke(app, ["list"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for name in REQUIRED:
        assert name in result.output
    assert "medsam" in result.output and "built in" in result.output


def test_cli_fetch_of_built_in_model_downloads_nothing():
    result = CliRunner().invoke(app, ["fetch", "samforge_random_tiny"])
    assert result.exit_code == 0 and "nothing to download" in result.output
