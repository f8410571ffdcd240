"""SAM-Med2D: encoder adapters under its public names, its checkpoint layout, its input
convention.

References: the shapes SAM-Med2D documents for ViT-B (channel gate 768 → 192 → 768,
3×3 stride-2 convolution and 4×4 stride-2 transposed convolution, no biases), the official
``segment_anything`` block (the rest of the block), and the adapter's formula written out
with ``torch.nn.functional``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers.configs import SAMMED2D_TEST
from helpers.official import build_official_sam, randomize_parameters
from samforge.models import build_model, family_of, get_config, load_model
from samforge.models.config import VIT_TEST
from samforge.models.sam.image_encoder import Block

SMALL_ARCH = dict(embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,))


def adapter_tensors(depth: int, dim: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Adapter tensors under SAM-Med2D's names, with its documented shapes."""
    generator = torch.Generator().manual_seed(seed)
    hidden = dim // 4
    shapes = {
        "channel.0.weight": (hidden, dim),
        "channel.2.weight": (dim, hidden),
        "spatial.0.weight": (dim, dim, 3, 3),
        "spatial.2.weight": (dim, dim, 4, 4),
        "norm.weight": (dim,),
        "norm.bias": (dim,),
    }
    return {
        f"image_encoder.blocks.{block}.Adapter.{name}": 0.1
        * torch.randn(shape, generator=generator)
        for block in range(depth)
        for name, shape in shapes.items()
    }


@pytest.fixture(scope="module")
def checkpoint() -> dict:
    """SAM-Med2D's layout: {"model": SAM tensors + adapters, "optimizer": ...}."""
    sam = build_official_sam(image_size=256, seed=4, **SMALL_ARCH)
    state = {**sam.state_dict(), **adapter_tensors(2, 64)}
    return {"model": state, "optimizer": {"state": {}, "param_groups": []}}


def test_vit_b_adapter_names_and_shapes_are_sammed2ds():
    with torch.device("meta"):
        state = build_model(get_config("sammed2d_vit_b")).state_dict()
    adapters = {key: tuple(v.shape) for key, v in state.items() if ".Adapter." in key}
    assert len(adapters) == 12 * 6
    assert adapters["image_encoder.blocks.0.Adapter.channel.0.weight"] == (192, 768)
    assert adapters["image_encoder.blocks.0.Adapter.channel.2.weight"] == (768, 192)
    assert adapters["image_encoder.blocks.11.Adapter.spatial.0.weight"] == (768, 768, 3, 3)
    assert adapters["image_encoder.blocks.11.Adapter.spatial.2.weight"] == (768, 768, 4, 4)
    assert adapters["image_encoder.blocks.5.Adapter.norm.bias"] == (768,)
    assert state["image_encoder.pos_embed"].shape == (1, 16, 16, 768)  # 256² input
    # SAM-Med2D reports 271.24M parameters for its ViT-B model.
    assert round(sum(v.numel() for v in state.values()) / 1e6, 2) == 271.24


def test_public_layout_loads_strictly_with_its_convention(checkpoint, tmp_path):
    path = tmp_path / "finetuned.pth"
    torch.save(checkpoint, path)
    model = load_model(path)
    assert model.config == SAMMED2D_TEST
    assert model.provenance["family"] == "SAM-Med2D" and model.provenance["format"] == "model"
    ours = model.state_dict()
    assert set(ours) == set(checkpoint["model"])
    assert all(torch.equal(ours[key], value) for key, value in checkpoint["model"].items())
    with torch.no_grad():
        embeddings = model.embed_images(torch.randn(1, 3, 256, 256))
        masks, iou = model.decode(embeddings, boxes=torch.tensor([[10.0, 20, 200, 180]]))
    assert embeddings.shape == (1, 256, 16, 16)
    assert masks.shape == (1, 1, 64, 64) and iou.shape == (1, 1)


def reference_adapter(tensors: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """SAM-Med2D's adapter on (B, H, W, D) tokens, written out from its definition."""
    channels_first = x.permute(0, 3, 1, 2)
    pooled = channels_first.mean(dim=(2, 3))
    gate = torch.sigmoid(
        F.relu(pooled @ tensors["channel.0.weight"].T) @ tensors["channel.2.weight"].T
    )
    gated = channels_first * gate[:, :, None, None]
    spatial = F.relu(F.conv2d(gated, tensors["spatial.0.weight"], stride=2, padding=1))
    spatial = F.relu(F.conv_transpose2d(spatial, tensors["spatial.2.weight"], stride=2, padding=1))
    summed = (channels_first + spatial).permute(0, 2, 3, 1)
    return F.layer_norm(summed, (x.shape[-1],), tensors["norm.weight"], tensors["norm.bias"])


def test_block_is_sams_block_plus_the_adapter_beside_the_mlp():
    from segment_anything.modeling.image_encoder import Block as OfficialBlock

    torch.manual_seed(0)
    official = OfficialBlock(64, 2, use_rel_pos=True, window_size=0, input_size=(16, 16))
    official.norm1.eps = official.norm2.eps = 1e-6
    randomize_parameters(official, seed=1)
    ours = Block(64, 2, 4.0, window_size=0, input_size=(16, 16), adapter=True)
    tensors = {
        k.removeprefix("image_encoder.blocks.0.Adapter."): v
        for k, v in adapter_tensors(1, 64).items()
    }
    ours.load_state_dict(
        {**official.state_dict(), **{f"Adapter.{k}": v for k, v in tensors.items()}}, strict=True
    )
    x = torch.randn(2, 16, 16, 64)
    with torch.no_grad():
        after_attention = x + official.attn(official.norm1(x))
        expected = official(x) + reference_adapter(tensors, official.norm2(after_attention))
        torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-5)


def test_zeroed_adapter_norm_gives_plain_sam(checkpoint):
    """The adapter ends in a LayerNorm, so it vanishes only with a zero scale and shift."""
    state = dict(checkpoint["model"])
    for key in [k for k in state if k.endswith(("Adapter.norm.weight", "Adapter.norm.bias"))]:
        state[key] = torch.zeros_like(state[key])
    adapted = load_model(state)
    plain = load_model({k: v for k, v in state.items() if ".Adapter." not in k})
    assert family_of(plain.config).name == "SAM"
    image = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        torch.testing.assert_close(adapted.embed_images(image), plain.embed_images(image))


def test_sammed2d_convention_stretches_with_nearest_neighbour_and_normalises():
    transform = SAMMED2D_TEST.input_transform()
    image = torch.arange(3 * 100 * 60, dtype=torch.float32).reshape(1, 3, 100, 60) % 256
    model_input = transform.image(image)
    assert model_input.shape == (1, 3, 256, 256)
    # OpenCV's INTER_NEAREST: output pixel i reads input pixel floor(i · old / new).
    rows = (torch.arange(256) * 100 / 256).floor().long()
    cols = (torch.arange(256) * 60 / 256).floor().long()
    mean = torch.tensor(SAMMED2D_TEST.pixel_mean).view(3, 1, 1)
    std = torch.tensor(SAMMED2D_TEST.pixel_std).view(3, 1, 1)
    expected = (image[0][:, rows][:, :, cols] - mean) / std
    torch.testing.assert_close(model_input[0], expected)
    # Prompts scale per axis; masks come back as two bilinear resizes (to 256², then 100×60).
    assert transform.coords(torch.tensor([[30.0, 50.0]]), (100, 60)).tolist() == [[128.0, 128.0]]
    low_res = torch.randn(1, 1, 64, 64)
    full = F.interpolate(low_res, (256, 256), mode="bilinear", align_corners=False)
    expected_masks = F.interpolate(full, (100, 60), mode="bilinear", align_corners=False)
    torch.testing.assert_close(transform.masks(low_res, (100, 60)), expected_masks)


def test_sam_weights_load_into_sammed2d_at_256_with_interpolated_tables():
    """SAM-Med2D starts from SAM at 1024²: the position tables are resized to 16×16."""
    sam = build_official_sam(image_size=512, seed=5, **SMALL_ARCH)
    state = {**sam.state_dict(), **adapter_tensors(2, 64)}
    model = load_model(state, image_size=256)
    assert model.config == VIT_TEST.with_changes(encoder_adapter=True, preprocessing="sammed2d")
    assert "image_encoder.pos_embed" in model.provenance["interpolated"]


def test_export_keeps_the_public_layout_or_drops_adapters_on_request(checkpoint, tmp_path):
    from samforge.errors import CheckpointError
    from samforge.models import export_model, export_official

    model = load_model(checkpoint)
    path = export_model(model, tmp_path / "sam-med2d.pth")
    saved = torch.load(path, weights_only=True)
    assert list(saved) == ["model"] and set(saved["model"]) == set(checkpoint["model"])
    with pytest.raises(CheckpointError, match=r"SAM-Med2D.*drop_extras=True"):
        export_official(model, tmp_path / "plain.pth")
    with pytest.warns(UserWarning, match="dropped 12 SAM-Med2D tensors"):
        plain_path = export_official(model, tmp_path / "plain.pth", drop_extras=True)
    plain = torch.load(plain_path, weights_only=True)
    assert set(plain) == {k for k in checkpoint["model"] if ".Adapter." not in k}
