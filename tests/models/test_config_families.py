"""SamConfig with the family fields: round trips, old configs, validation, families."""

from __future__ import annotations

import json

import pytest

from helpers.configs import ROBUST_TEST, SAMMED2D_TEST, SAMUNET_TEST
from samforge.errors import ConfigError
from samforge.models import ARCHITECTURES, SamConfig, family_of
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
