"""A safetensors file whose embedded config lies about its tensors (item 8): refused before
any model is built, in bounded memory, with a one-line message."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from helpers.hostile import BOX, run_measured
from samforge.models import build_model, export_official
from samforge.models.checkpoints.reading import CONFIG_METADATA_KEY
from samforge.models.config import VIT_TEST

from .test_readers import ADDRESS_SPACE


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny SAM written by samforge (safetensors, its config in the metadata)."""
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return export_official(build_model(VIT_TEST), path)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"encoder_embed_dim": 65536, "encoder_num_heads": 1}, "encoder_embed_dim 65536"),
        ({"encoder_depth": 100000}, "encoder_depth 100000"),
        ({"patch_size": 0}, "patch_size 0"),
    ],
)
def test_an_embedded_config_that_lies_is_refused_before_building(
    exported, tmp_path, png_path, change, complaint
):
    with safe_open(str(exported), framework="pt") as handle:
        metadata = dict(handle.metadata())
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    config = json.loads(metadata[CONFIG_METADATA_KEY])
    config.update(change)
    metadata[CONFIG_METADATA_KEY] = json.dumps(config)
    tampered = tmp_path / "tampered.safetensors"
    save_file(tensors, tampered, metadata=metadata)

    outcome, peak = run_measured(
        "segment",
        png_path,
        *BOX,
        "-m",
        tampered,
        "-o",
        tmp_path / "mask.png",
        address_space=ADDRESS_SPACE,
    )
    outcome.refused(str(tampered), complaint)
    assert peak < 2**30, f"peak {peak / 2**20:.0f} MiB"
    assert not (tmp_path / "mask.png").exists()


def test_the_untampered_file_still_loads(exported, tmp_path, png_path):
    outcome, _ = run_measured("segment", png_path, *BOX, "-m", exported, "-o", tmp_path / "m.png")
    assert outcome.code == 0, outcome.stderr
