"""The family records: which family a config builds, which families a checkpoint holds,
and SAM-UNet's names, translated once when read and once when written."""

from __future__ import annotations

import pytest
import torch

from helpers.configs import ROBUST_TEST, SAMMED2D_TEST, SAMUNET_TEST
from samforge.models import ARCHITECTURES, build_model, export_model, family_of, load_model
from samforge.models.checkpoints.reading import read_checkpoint
from samforge.models.config import FAMILY_NAMES, VIT_TEST
from samforge.models.families import FAMILIES, ROBUSTSAM, SAM, SAM_UNET, SAMMED2D, families_in
from samforge.models.families.sam_unet.layout import to_public_names, to_samforge_names
from samforge.models.peft import apply_lora, merge_peft

CONFIGS = {"SAM": VIT_TEST, "SAM-Med2D": SAMMED2D_TEST, "RobustSAM": ROBUST_TEST,
           "SAM-UNet": SAMUNET_TEST}  # fmt: skip


def meta_state(config) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return build_model(config).state_dict()


def test_every_config_family_has_its_record():
    assert set(FAMILIES) == set(FAMILY_NAMES)
    assert all(record.family == name for name, record in FAMILIES.items())


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_the_record_of_a_config_builds_it(name):
    config = ARCHITECTURES[name]
    with torch.device("meta"):
        model = build_model(config)
    assert type(model) is family_of(config).model_class
    assert family_of(config).family == config.family


@pytest.mark.parametrize(
    ("name", "record", "present"),
    [
        ("SAM", SAM, []),
        ("SAM-Med2D", SAMMED2D, [SAMMED2D]),
        ("RobustSAM", ROBUSTSAM, [ROBUSTSAM]),
        ("SAM-UNet", SAM_UNET, [SAM_UNET]),
    ],
)
def test_a_family_is_recognised_from_its_keys(name, record, present):
    config = CONFIGS[name]
    assert family_of(config) is record and record.name == name
    state = meta_state(config)
    assert families_in(state) == present
    assert families_in(record.write_names(state)) == present  # its public names too


def test_adapters_combine_with_another_family():
    config = ROBUST_TEST.with_changes(encoder_adapter=True)
    assert family_of(config) is ROBUSTSAM
    assert families_in(meta_state(config)) == [ROBUSTSAM, SAMMED2D]


def test_sam_unet_names_translate_both_ways_without_loss():
    state = meta_state(SAMUNET_TEST)
    public = to_public_names(state)
    assert list(to_samforge_names(public)) == list(state)
    assert to_public_names(public).keys() == public.keys()  # already public: unchanged
    assert "mask_decoder.sam_mask_decoder.iou_token.weight" in public
    assert "mask_decoder.med_token.weight" in public and "resnet.stage0.0.weight" in public
    assert not any(key.startswith("image_encoder.blocks") for key in public)


def test_a_sam_unet_file_is_read_under_samforge_names(tmp_path):
    torch.manual_seed(0)
    model = build_model(SAMUNET_TEST)
    path = export_model(model, tmp_path / "sam_unet.pth")
    assert "image_encoder.sam_img_encoder.pos_embed" in torch.load(path, weights_only=True)["model"]
    assert list(read_checkpoint(path).state_dict) == list(model.state_dict())


def test_sam_unet_vit_takes_peft_like_sams_and_exports_in_its_public_layout(tmp_path):
    torch.manual_seed(0)
    model = build_model(SAMUNET_TEST)
    wrapped = apply_lora(model, rank=2, blocks=[1])
    assert wrapped == ["image_encoder.blocks.1.attn.qkv", "image_encoder.blocks.1.attn.proj"]
    with torch.no_grad():
        model.image_encoder.blocks[1].attn.qkv.lora_B.normal_()
    merged = merge_peft(model)
    path = export_model(merged, tmp_path / "sam_unet.pth")
    loaded = load_model(path)
    for key, value in merged.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
