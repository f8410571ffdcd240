"""SamConfig with the family fields: round trips, old configs (and files holding them),
validation, families."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from helpers.configs import ROBUST_TEST, SAMMED2D_TEST, SAMUNET_TEST
from samforge.errors import ConfigError
from samforge.models import (
    ARCHITECTURES,
    SamConfig,
    build_model,
    export_model,
    family_of,
    load_model,
)
from samforge.models.checkpoints.reading import CONFIG_METADATA_KEY, sidecar_path
from samforge.models.config import VIT_B, VIT_TEST


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_every_architecture_round_trips_through_json(name):
    config = ARCHITECTURES[name]
    assert SamConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_configs_written_before_the_family_fields_stay_valid():
    new_fields = ("decoder", "encoder_adapter", "adapter_", "resnet_")
    old = {k: v for k, v in VIT_TEST.to_dict().items() if not k.startswith(new_fields)}
    assert SamConfig.from_dict(old) == VIT_TEST
    assert family_of(SamConfig.from_dict(old)).name == "SAM"


@pytest.mark.parametrize(
    ("config", "family"),
    [
        (VIT_B, "SAM"),
        (ROBUST_TEST, "RobustSAM"),
        (SAMMED2D_TEST, "SAM-Med2D"),
        (SAMUNET_TEST, "SAM-UNet"),
        (ARCHITECTURES["robustsam_vit_h"], "RobustSAM"),
    ],
)
def test_family_names(config, family):
    assert family_of(config).name == family


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(family="unet"), "family must be one of"),
        (dict(preprocessing="imagenet"), "preprocessing must be one of"),
        (dict(family="robust", encoder_global_attn_indexes=()), "at least one global block"),
        (dict(family="sam_unet"), "one ResNet stage before each global-attention block"),
        (dict(encoder_adapter=True, image_size=240), "even grid"),
    ],
)
def test_invalid_family_settings_say_what_to_do(changes, message):
    with pytest.raises(ConfigError, match=message):
        VIT_TEST.with_changes(**changes)


def test_configs_written_with_the_older_name_decoder_still_read():
    old = {
        ("decoder" if key == "family" else key): value
        for key, value in ROBUST_TEST.to_dict().items()
    }
    assert "family" not in old
    assert SamConfig.from_dict(old) == ROBUST_TEST
    assert SamConfig.from_dict({**old, "family": "robust"}) == ROBUST_TEST
    with pytest.raises(ConfigError, match="keep only family"):
        SamConfig.from_dict({**old, "family": "sam"})


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_files_whose_stored_config_says_decoder_still_load(suffix, tmp_path):
    """safetensors metadata and .provenance.json sidecars written before the rename."""
    torch.manual_seed(0)
    model = build_model(ROBUST_TEST)
    path = export_model(model, tmp_path / f"robust{suffix}", provenance={"base": "unit test"})
    if suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata()
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        stored = metadata[CONFIG_METADATA_KEY]
        metadata[CONFIG_METADATA_KEY] = stored.replace('"family":', '"decoder":')
        save_file(tensors, str(path), metadata=metadata)
    else:
        sidecar = sidecar_path(path)
        stored = sidecar.read_text()
        sidecar.write_text(stored.replace('"family":', '"decoder":'))
    assert '"family": "robust"' in stored
    loaded = load_model(path)
    assert loaded.config == ROBUST_TEST
    assert loaded.provenance["stored"] == {"base": "unit test"}
