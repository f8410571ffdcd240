"""Resizing position tables: identity, linearity, and agreement with the references
(``F.interpolate`` for ``pos_embed``, the official ``get_rel_pos`` for relative tables)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers.official import build_official_sam, segment_anything
from samforge.models import load_model
from samforge.models.checkpoints.position_tables import (
    adapt_position_tables,
    resize_pos_embed,
    resize_rel_pos,
)
from samforge.models.config import VIT_TEST

# Imported through helpers.official, which provides the torchvision stand-in first.
OfficialEncoder = segment_anything.modeling.image_encoder.ImageEncoderViT
get_rel_pos = segment_anything.modeling.image_encoder.get_rel_pos


def ramp_table(rows: int, columns: int = 4) -> torch.Tensor:
    """Column c holds (c + 1)·row + c: a linear ramp along the rows."""
    row = torch.arange(rows, dtype=torch.float64)[:, None]
    column = torch.arange(columns, dtype=torch.float64)[None, :]
    return (column + 1) * row + column


def test_same_size_is_identity():
    pos_embed = torch.randn(1, 16, 16, 8)
    table = torch.randn(31, 8)
    assert resize_pos_embed(pos_embed, 16) is pos_embed
    assert resize_rel_pos(table, 31) is table


def test_linear_ramp_stays_a_linear_ramp():
    table = ramp_table(127)  # SAM at 1024²: 64 tokens -> 127 rows
    resized = resize_rel_pos(table, 31)  # 16 tokens at 256²
    # Sample j of the resized table sits at source position (j + 0.5)·127/31 − 0.5.
    positions = (torch.arange(31, dtype=torch.float64) + 0.5) * 127 / 31 - 0.5
    expected = (torch.arange(4, dtype=torch.float64) + 1) * positions[:, None] + torch.arange(4)
    torch.testing.assert_close(resized, expected, rtol=0, atol=1e-6)
    assert torch.allclose(resized.diff(n=2, dim=0), torch.zeros(29, 4, dtype=torch.float64))


def test_upsampled_ramp_is_linear_between_clamped_ends():
    resized = resize_rel_pos(ramp_table(31), 127)
    # Without aligned corners the outermost samples clamp to the ends; inside it is a ramp.
    interior = resized[2:-2]
    assert torch.allclose(interior.diff(n=2, dim=0), torch.zeros_like(interior[2:]), atol=1e-9)
    assert torch.equal(resized[0], ramp_table(31)[0])


def test_pos_embed_64_to_16_equals_f_interpolate():
    pos_embed = torch.randn(1, 64, 64, 32)
    reference = F.interpolate(
        pos_embed.permute(0, 3, 1, 2), size=(16, 16), mode="bicubic", align_corners=False
    ).permute(0, 2, 3, 1)
    torch.testing.assert_close(resize_pos_embed(pos_embed, 16), reference, rtol=0, atol=0)
    assert resize_pos_embed(pos_embed, (16, 8)).shape == (1, 16, 8, 32)


def test_dtype_is_kept():
    assert resize_pos_embed(torch.randn(1, 8, 8, 4, dtype=torch.bfloat16), 4).dtype == (
        torch.bfloat16
    )
    assert resize_rel_pos(torch.randn(15, 4, dtype=torch.float16), 7).dtype == torch.float16


@pytest.mark.parametrize(("rows", "size"), [(127, 16), (31, 8), (31, 64)])
def test_rel_pos_matches_official_get_rel_pos(rows, size):
    table = torch.randn(rows, 16)
    ours = resize_rel_pos(table, 2 * size - 1)
    coords = torch.arange(size)
    gathered = ours[coords[:, None] - coords[None, :] + size - 1]
    torch.testing.assert_close(gathered, get_rel_pos(size, size, table), rtol=0, atol=0)


def small_state() -> dict[str, torch.Tensor]:
    sam = build_official_sam(
        embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,), image_size=256, seed=5
    )
    return sam.state_dict()


def test_adapt_resizes_only_position_tables_of_global_blocks():
    state = small_state()
    adapted, resized = adapt_position_tables(state, VIT_TEST.with_changes(image_size=512))
    assert sorted(resized) == [
        "image_encoder.blocks.1.attn.rel_pos_h",
        "image_encoder.blocks.1.attn.rel_pos_w",
        "image_encoder.pos_embed",
    ]
    assert adapted["image_encoder.pos_embed"].shape == (1, 32, 32, 64)
    assert adapted["image_encoder.blocks.1.attn.rel_pos_h"].shape == (63, 32)
    assert (
        adapted["image_encoder.blocks.0.attn.rel_pos_h"]
        is state["image_encoder.blocks.0.attn.rel_pos_h"]
    )
    same, nothing = adapt_position_tables(state, VIT_TEST)
    assert nothing == [] and all(same[key] is state[key] for key in state)


def test_interpolated_encoder_matches_official_runtime_interpolation():
    """Loading 256² weights at 128² gives the embedding the official encoder computes when it
    keeps the 256² relative tables and interpolates them itself (``get_rel_pos``)."""
    state = small_state()
    ours = load_model(state, image_size=128)

    official = OfficialEncoder(
        depth=2,
        embed_dim=64,
        img_size=128,
        mlp_ratio=4,
        norm_layer=lambda dim: torch.nn.LayerNorm(dim, eps=1e-6),
        num_heads=2,
        patch_size=16,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=(1,),
        window_size=14,
        out_chans=256,
    )
    encoder_state = {
        key[len("image_encoder.") :]: value
        for key, value in state.items()
        if key.startswith("image_encoder.")
    }
    encoder_state["pos_embed"] = ours.state_dict()["image_encoder.pos_embed"]
    with torch.no_grad():
        for name, parameter in official.named_parameters():
            parameter.data = encoder_state[name].clone()  # keeps the 31-row global tables

    image = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        expected = official(image)
        actual = ours.embed_images(image)
    assert official.blocks[1].attn.rel_pos_h.shape[0] == 31
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
