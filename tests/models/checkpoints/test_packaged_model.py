"""``samforge_nano``: trained weights shipped inside samforge, loaded through the registry."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from helpers.official import official_sam_from_state_dict
from samforge.cli.models import app
from samforge.data.phantoms import phantom_case
from samforge.errors import DownloadError
from samforge.inference import Predictor
from samforge.models import build_model, get_model_spec, load_model
from samforge.models.checkpoints import hub

NANO = get_model_spec("samforge_nano")


def official_arch(config) -> dict:
    return dict(
        embed_dim=config.encoder_embed_dim,
        depth=config.encoder_depth,
        num_heads=config.encoder_num_heads,
        global_attn_indexes=tuple(config.encoder_global_attn_indexes),
        window_size=config.window_size,
        image_size=config.image_size,
    )


def test_nano_ships_verified_within_the_size_budget_and_loads_in_official_sam():
    path = hub.packaged_path(NANO)
    assert path.stat().st_size <= 50 * 10**6
    assert f"sha256:{hub.file_digest(path, 'sha256')}" == NANO.checksum
    model = load_model("samforge_nano")
    encoder_params = sum(p.numel() for p in model.image_encoder.parameters())
    assert encoder_params <= 10_000_000
    assert model.config.image_size == NANO.input_size
    assert model.provenance["source"] == str(path)
    # The file is the official layout: SAM tools load it strictly.
    state = torch.load(path, map_location="cpu", weights_only=True)
    official_sam_from_state_dict(state, **official_arch(model.config))


# v1's file and checksum as first shipped (the README's figures of v1 were measured on it).
V1_FILE = (
    "samforge_nano.pth",
    "sha256:e549301518faaaf2813f4284c5b2b723eeeada15b49e94d5f0b93789ee7f6f8f",
)


def test_the_default_is_v2_and_v1_stays_loadable_by_name_with_its_own_weights():
    """``samforge_nano`` moved on to v2 (it met or beat v1 on every goal of the model card);
    ``samforge_nano_v1`` keeps v1's file and checksum, so v1's figures stay reproducible
    (issue 19)."""
    v1, v2 = get_model_spec("samforge_nano_v1"), get_model_spec("samforge_nano_v2")
    assert (v1.filename, v1.checksum) == V1_FILE
    assert (v2.filename, v2.checksum) == (NANO.filename, NANO.checksum)
    path = hub.packaged_path(v1)
    assert path.stat().st_size <= 50 * 10**6
    assert f"sha256:{hub.file_digest(path, 'sha256')}" == v1.checksum
    by_version, by_default = load_model("samforge_nano_v1"), load_model("samforge_nano")
    assert by_version.provenance["source"] == str(path)
    assert by_default.provenance["source"] == str(hub.packaged_path(v2))
    differing = [
        name
        for name, tensor in by_default.state_dict().items()
        if not torch.equal(tensor, by_version.state_dict()[name])
    ]
    assert differing, "v1 and v2 must be different weights"


def box_dice(predictor: Predictor, seeds: range) -> float:
    """Mean Dice of one box prompt per labelled structure of 2D CT and US phantoms."""
    scores = []
    for seed in seeds:
        for modality in ("ct", "us"):
            case = phantom_case(modality, shape=(256, 256), seed=seed)
            predictor.set_image(case.image, modality=modality)
            for label in np.unique(case.label)[1:]:
                target = case.label == label
                ys, xs = np.nonzero(target)
                box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
                mask = predictor.predict(boxes=box).masks[0, 0]
                scores.append(2 * (mask & target).sum() / (mask.sum() + target.sum()))
    return float(np.mean(scores))


def test_nano_segments_unseen_phantoms_far_better_than_its_random_twin():
    trained = load_model("samforge_nano")
    torch.manual_seed(0)
    twin = build_model(trained.config).eval()
    seeds = range(9000, 9002)  # never drawn by the recipe (seeds 1 and 999)
    assert box_dice(Predictor(trained), seeds) > box_dice(Predictor(twin), seeds) + 0.15


@pytest.fixture
def weights_in(tmp_path, monkeypatch):
    """An empty weights folder in place of the packaged one, so tests can damage a copy."""
    monkeypatch.setattr(hub, "packaged_weights_dir", lambda: tmp_path)
    return tmp_path


def test_damaged_or_missing_packaged_weights_are_refused(weights_in):
    original = resources.files("samforge") / "weights"
    with pytest.raises(DownloadError, match="missing"):
        load_model("samforge_nano")
    data = bytearray((original / NANO.filename).read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the tensors
    (weights_in / NANO.filename).write_bytes(bytes(data))
    with pytest.raises(DownloadError, match="damaged"):
        load_model("samforge_nano")


def test_models_export_writes_a_checkpoint_that_loads_back_identically(tmp_path):
    out = tmp_path / "tiny.pth"
    result = CliRunner().invoke(app, ["export", "samforge_random_tiny", str(out)])
    assert result.exit_code == 0, result.output
    assert f"sha256:{hub.file_digest(out, 'sha256')}" in result.output.replace("\n", "")
    original = load_model("samforge_random_tiny").state_dict()
    loaded = load_model(out).state_dict()
    assert original.keys() == loaded.keys()
    assert all(torch.equal(original[key], loaded[key]) for key in original)
