"""Every checkpoint layout in the wild loads; every broken or foreign file fails clearly.

The weights come from the official ``segment_anything`` code (an independent
implementation), wrapped the way each project saves them; samforge must give back exactly
the same tensors. Everything runs on the small ``vit_test`` architecture.
"""

from __future__ import annotations

import os
import random
import re
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from helpers.official import build_official_sam, official_sam_from_state_dict
from samforge.errors import CheckpointError, ModelNotFoundError
from samforge.models import ARCHITECTURES, build_model, export_official, load_model
from samforge.models.checkpoints.position_tables import resize_pos_embed, resize_rel_pos
from samforge.models.checkpoints.reading import read_checkpoint
from samforge.models.checkpoints.shape_inference import infer_config
from samforge.models.config import VIT_TEST

SMALL_ARCH = dict(embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,))


@pytest.fixture(scope="module")
def official_state() -> dict[str, torch.Tensor]:
    """Random weights of the small architecture, drawn by the official code."""
    sam = build_official_sam(image_size=256, seed=3, **SMALL_ARCH)
    return {key: value.clone() for key, value in sam.state_dict().items()}


def prefixed(state: dict, prefix: str) -> dict:
    return {prefix + key: value for key, value in state.items()}


def assert_same_tensors(model, state: dict) -> None:
    ours = model.state_dict()
    assert set(ours) == set(state)
    for key, value in state.items():
        assert torch.equal(ours[key], value), key


# Each layout: how a project wraps the official state dict, and the format name read back.
LAYOUTS = {
    "bare (SAM, MedSAM)": (lambda s: s, "bare"),
    "micro-sam model_state, sam.": (
        lambda s: {"model_state": prefixed(s, "sam."), "optimizer_state": {}, "epoch": 3},
        "model_state",
    ),
    "micro-sam model_state, module.sam.": (
        lambda s: {"model_state": prefixed(s, "module.sam."), "iteration": 10},
        "model_state",
    ),
    "SAM-Med2D {'model': ...}": (lambda s: {"model": s, "optimizer": {}, "epoch": 1}, "model"),
    "DDP module.": (lambda s: prefixed(s, "module."), "bare"),
    "Lightning state_dict, model.": (
        lambda s: {"state_dict": prefixed(s, "model."), "epoch": 2, "global_step": 7},
        "state_dict",
    ),
    "DDP inside {'model': ...}": (lambda s: {"model": prefixed(s, "module.")}, "model"),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_pickled_layout_loads_exactly(layout, official_state, tmp_path):
    wrap, format_name = LAYOUTS[layout]
    path = tmp_path / "checkpoint.pth"
    torch.save(wrap(official_state), path)

    raw = read_checkpoint(path)
    assert raw.format == format_name
    model = load_model(path)
    assert model.config == VIT_TEST
    assert_same_tensors(model, official_state)
    assert not model.training


def test_safetensors_loads_exactly(official_state, tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in official_state.items()}, str(path))
    assert read_checkpoint(path).format == "safetensors"
    model = load_model(path)
    assert model.config == VIT_TEST
    assert_same_tensors(model, official_state)


def test_legacy_serialization_loads(official_state, tmp_path):
    path = tmp_path / "legacy.pth"
    torch.save(official_state, path, _use_new_zipfile_serialization=False)
    assert_same_tensors(load_model(path), official_state)


def test_published_file_name_brings_its_preprocessing(official_state, tmp_path):
    # A MedSAM file downloaded by hand keeps MedSAM's input convention.
    path = tmp_path / "medsam_vit_b.pth"
    torch.save(official_state, path)
    model = load_model(path)
    assert model.config.preprocessing == "medsam"
    assert model.config.encoder_embed_dim == 64  # the shapes, not the registry, decide


def test_in_memory_state_dict_loads(official_state):
    model = load_model({"model_state": prefixed(official_state, "sam.")})
    assert_same_tensors(model, official_state)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_infer_config_round_trips_every_architecture(name):
    config = ARCHITECTURES[name]
    with torch.device("meta"):  # shapes only: vit_h is never allocated
        state = build_model(config).state_dict()
    assert infer_config(state) == config
    assert infer_config(prefixed(state, "module.sam.")) == config


@pytest.mark.parametrize("name", ["vit_b", "vit_test"])
def test_infer_config_reads_the_input_size(name):
    config = ARCHITECTURES[name].with_changes(image_size=512)
    with torch.device("meta"):
        state = build_model(config).state_dict()
    assert infer_config(state) == config


def test_infer_config_rejects_non_sam_tensors():
    with pytest.raises(CheckpointError, match=r"no image_encoder\.patch_embed\.proj\.weight"):
        infer_config({"conv1.weight": torch.zeros(3, 3)})


# --- Broken files ----------------------------------------------------------------------


def test_truncated_file_names_file_and_suggests_redownload(official_state, tmp_path):
    path = tmp_path / "sam_vit_test.pth"
    torch.save(official_state, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as caught:
        load_model(path)
    message = str(caught.value)
    assert str(path) in message
    assert "truncated or corrupt" in message and "checksum" in message


def test_empty_and_garbage_files_are_checkpoint_errors(tmp_path):
    paths = [tmp_path / "empty.pth"]
    paths[0].write_bytes(b"")
    # Random bytes reach many different failure points of the unpickler.
    for seed in range(40):
        path = tmp_path / f"garbage{seed}.pth"
        path.write_bytes(random.Random(seed).randbytes(4096))
        paths.append(path)
    for path in paths:
        with pytest.raises(CheckpointError, match=re.escape(str(path))):
            read_checkpoint(path)


def test_missing_file_is_model_not_found(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not found"):
        load_model(tmp_path / "nowhere.pth")
    with pytest.raises(ModelNotFoundError, match="folder"):
        read_checkpoint(tmp_path)


class _Exploit:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_with_code_is_refused_and_never_runs(official_state, tmp_path):
    marker = tmp_path / "exploit_ran"
    path = tmp_path / "evil.pth"
    torch.save({**official_state, "payload": _Exploit(marker)}, path)

    with pytest.raises(CheckpointError) as caught:
        load_model(path)
    message = str(caught.value)
    assert "tries to execute code" in message and "system" in message
    assert "refuses" in message and "safetensors" in message
    assert not marker.exists()


def test_object_that_is_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(CheckpointError, match="not a state dict"):
        read_checkpoint(path)


# --- Wrong or foreign contents -----------------------------------------------------------


def test_wrong_architecture_lists_shape_mismatches(tmp_path):
    wider = build_official_sam(
        embed_dim=128, depth=2, num_heads=4, global_attn_indexes=(1,), image_size=256
    )
    path = tmp_path / "wider.pth"
    torch.save(wider.state_dict(), path)
    with pytest.raises(CheckpointError) as caught:
        load_model(path, config=VIT_TEST)
    message = str(caught.value)
    assert "image_encoder.patch_embed.proj.weight: checkpoint (128, 3, 16, 16)" in message
    assert "vit_test" in message and "with other shapes" in message
    # Without config= the shapes decide, and it loads.
    assert load_model(path).config.encoder_embed_dim == 128


def test_unknown_keys_are_named(official_state):
    state = {**official_state, "semantic_head.weight": torch.zeros(3)}
    with pytest.raises(CheckpointError) as caught:
        load_model(state)
    assert "1 unexpected tensor (" in str(caught.value)
    assert "semantic_head.weight" in str(caught.value)

    with pytest.warns(UserWarning, match="semantic_head.weight"):
        model = load_model(state, strict=False)
    assert_same_tensors(model, official_state)


def test_missing_keys_are_named_and_grouped(official_state):
    state = dict(official_state)
    del state["mask_decoder.iou_token.weight"]
    del state["image_encoder.neck.0.weight"]
    with pytest.raises(CheckpointError) as caught:
        load_model(state)
    message = str(caught.value)
    assert "2 missing tensors" in message
    assert "image_encoder: image_encoder.neck.0.weight" in message
    assert "mask_decoder: mask_decoder.iou_token.weight" in message


@pytest.mark.parametrize(
    ("family", "extra", "missing"),
    [
        (
            "RobustSAM",
            {"mask_decoder.custom_robust_token.weight": torch.ones(4, 256)},
            "robust_mlp",
        ),
        ("SAM-Med2D", {"image_encoder.blocks.0.Adapter.norm.weight": torch.ones(64)}, "spatial"),
    ],
)
def test_incomplete_family_checkpoint_is_refused_naming_the_family(
    family, extra, missing, official_state
):
    """A key of a family makes the loader build that family; what else it needs is named."""
    with pytest.raises(CheckpointError) as caught:
        load_model({**official_state, **extra})
    message = str(caught.value)
    assert f"{family} architecture" in message and "missing" in message and missing in message


def medicosam_joint_checkpoint(sam_state: dict) -> dict:
    """A micro-sam ``JointSamTrainer`` checkpoint (MedicoSAM's semantic pretraining), in
    the layout torch_em's trainer saves: ``model_state`` holds the trainable SAM wrapper
    (keys ``sam.*``), ``decoder_state`` the UNETR's own tensors (its encoder, SAM's image
    encoder, left out), beside the optimiser state and the trainer's counters."""
    generator = torch.Generator().manual_seed(0)
    decoder_shapes = {
        "base.block.0.weight": (256, 256, 3, 3),
        "decoder.blocks.0.block.0.weight": (128, 256, 3, 3),
        "decoder.samplers.0.conv.weight": (256, 128, 2, 2),
        "deconv1.block.0.weight": (256, 512, 3, 3),
        "out_conv.weight": (1, 64, 1, 1),
        "out_conv.bias": (1,),
    }
    decoder_state = {k: torch.randn(v, generator=generator) for k, v in decoder_shapes.items()}
    return {
        "model_state": prefixed(sam_state, "sam."),
        "decoder_state": decoder_state,
        "optimizer_state": {"state": {}, "param_groups": []},
        "scheduler_state": {},
        "iteration": 1200,
        "epoch": 3,
        "best_epoch": 2,
        "best_metric": 0.21,
        "current_metric": 0.23,
    }


def test_medicosam_checkpoint_with_semantic_decoder_loads_its_sam_part(official_state, tmp_path):
    """The SAM part loads (strictly, as every layout); the decoder is named as ignored."""
    path = tmp_path / "best.pt"
    torch.save(medicosam_joint_checkpoint(official_state), path)
    raw = read_checkpoint(path)
    assert raw.format == "model_state" and set(raw.state_dict) == set(official_state)
    assert len(raw.extras["decoder_state"]) == 6
    with pytest.warns(UserWarning, match=r"SAM part only.*UNETR semantic decoder.*ignored"):
        model = load_model(path)
    assert_same_tensors(model, official_state)
    assert model.provenance["ignored"] == "decoder_state (6 tensors)"


# --- Input size ----------------------------------------------------------------------------


def test_other_image_size_interpolates_position_tables(official_state):
    model = load_model(official_state, image_size=128)
    assert model.config.image_size == 128
    state = model.state_dict()
    expected_pos = resize_pos_embed(official_state["image_encoder.pos_embed"], 8)
    assert torch.equal(state["image_encoder.pos_embed"], expected_pos)
    # Block 1 is global: 2·16−1 rows become 2·8−1; block 0 keeps its 14-window table.
    for axis in "hw":
        key = f"image_encoder.blocks.1.attn.rel_pos_{axis}"
        assert torch.equal(state[key], resize_rel_pos(official_state[key], 15))
        window_key = f"image_encoder.blocks.0.attn.rel_pos_{axis}"
        assert torch.equal(state[window_key], official_state[window_key])
    assert model.provenance["checkpoint_image_size"] == 256
    assert "image_encoder.pos_embed" in model.provenance["interpolated"]
    with torch.no_grad():
        assert model.embed_images(torch.zeros(1, 3, 128, 128)).shape == (1, 256, 8, 8)


def test_preprocessing_override(official_state):
    assert load_model(official_state, preprocessing="medsam").config.preprocessing == "medsam"


# --- Export ---------------------------------------------------------------------------------


def test_export_official_loads_strictly_in_official_code(official_state, tmp_path):
    model = load_model(official_state)
    path = export_official(model, tmp_path / "exported.pth")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported.pth"]  # no temp files

    saved = torch.load(path, map_location="cpu", weights_only=True)
    assert list(saved) == list(official_state)
    for key, value in saved.items():
        assert value.dtype == torch.float32 and value.is_contiguous(), key
        assert torch.equal(value, official_state[key]), key
    official = official_sam_from_state_dict(saved, image_size=256, **SMALL_ARCH)
    for key, value in official.state_dict().items():
        assert torch.equal(value, official_state[key]), key


def test_export_writes_fp32_from_bf16(official_state, tmp_path):
    model = load_model(official_state).to(torch.bfloat16)
    saved = torch.load(export_official(model, tmp_path / "m.pth"), weights_only=True)
    assert {value.dtype for value in saved.values()} == {torch.float32}


def test_safetensors_export_keeps_config_and_provenance(official_state, tmp_path):
    model = load_model(official_state, preprocessing="medsam")
    path = export_official(model, tmp_path / "m.safetensors", provenance={"base": "unit test"})
    raw = read_checkpoint(path)
    assert raw.config == model.config
    assert raw.extras["provenance"] == {"base": "unit test"}
    loaded = load_model(path)
    assert loaded.config.preprocessing == "medsam"
    assert_same_tensors(loaded, official_state)


def test_export_refuses_foreign_tensors_and_leaves_nothing(official_state, tmp_path):
    model = load_model(official_state)
    model.lora_delta = torch.nn.Linear(2, 2)
    with pytest.raises(CheckpointError, match="lora_delta"):
        export_official(model, tmp_path / "out.pth")
    assert list(tmp_path.iterdir()) == []


def test_registry_random_model_is_deterministic_and_keeps_rng():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = load_model("samforge_random_tiny")
    assert torch.equal(torch.random.get_rng_state(), before)
    second = load_model("samforge_random_tiny")
    assert first.config == VIT_TEST
    assert_same_tensors(second, first.state_dict())


def test_unknown_name_suggests_registered_models():
    with pytest.raises(ModelNotFoundError, match="sam_vit_b"):
        load_model("sam_vit_bb")


def test_no_warnings_on_clean_load(official_state):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(official_state)
