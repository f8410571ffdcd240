"""The image encoder's attention, built a slice of the relative-position mask at a time, and
its token-sliced MLP, against the official ``segment_anything`` encoder on the same random
weights (relative-position tables redrawn O(1), so a bias bug shows), and against a plain
float64 attention written here. bf16 autocast against fp32 on the same weights.
"""

from __future__ import annotations

import copy

import pytest
import torch

from helpers.official import build_official_sam, randomize_parameters
from samforge.models.sam import bias_masks, image_encoder, onednn
from samforge.models.sam.image_encoder import (
    ImageEncoderViT,
    attention_slices,
    attention_with_relative_positions,
)

RELATIVE_TOLERANCE = 1e-4

# Depth 4 with windows of 14 and global blocks 1 and 3: at 256² (16² tokens) and 512² (32²)
# the grid is not a multiple of the window, so the windows are padded.
ARCH = dict(embed_dim=64, depth=4, num_heads=2, global_attn_indexes=(1, 3))

# Per-thread mask budgets (elements): the default; whole windows, query rows of global
# attention; one head per window, short query runs.
BUDGETS = {"default": None, "windows_rows": 100_000, "heads_rows": 30_000}


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    ours, reference = ours.double(), reference.double()
    return ((ours - reference).abs().max() / reference.abs().max()).item()


def set_budget(monkeypatch, budget: int | None) -> None:
    """A mask budget per call of ``budget`` elements whatever the thread count."""
    if budget is not None:
        per_thread = max(budget // torch.get_num_threads(), 1)
        monkeypatch.setattr(image_encoder, "CPU_MASK_ELEMENTS_PER_THREAD", per_thread)


def use_fused_kernels(monkeypatch, fused: bool) -> None:
    """oneDNN's fused linear kernels where this build has them, else the plain modules
    (with the token-sliced MLP)."""
    if fused:
        if not torch.backends.mkldnn.is_available():
            pytest.skip("this torch build has no oneDNN")
        with torch.inference_mode():
            assert onednn.fused_kernels_apply(torch.zeros(1), torch.nn.Linear(1, 1))
    else:
        monkeypatch.setattr(onednn, "ENABLED", False)


def paired_encoders(image_size: int, **arch):
    official = build_official_sam(image_size=image_size, **arch).image_encoder
    ours = ImageEncoderViT(
        img_size=image_size,
        embed_dim=arch["embed_dim"],
        depth=arch["depth"],
        num_heads=arch["num_heads"],
        global_attn_indexes=arch["global_attn_indexes"],
    ).eval()
    ours.load_state_dict(official.state_dict(), strict=True)
    return official, ours


@pytest.fixture(scope="module", params=[256, 512])
def encoders(request):
    return request.param, *paired_encoders(request.param, **ARCH)


@pytest.mark.parametrize("fused", [True, False], ids=["onednn", "plain"])
@pytest.mark.parametrize("budget", list(BUDGETS))
def test_encoder_matches_official(encoders, budget, fused, monkeypatch):
    image_size, official, ours = encoders
    assert all(block.attn.rel_pos_h.abs().mean() > 0.1 for block in ours.blocks)
    set_budget(monkeypatch, BUDGETS[budget])
    use_fused_kernels(monkeypatch, fused)
    # Token slices of the MLP that do not divide the grid (16² or 32² tokens).
    monkeypatch.setattr(image_encoder, "MLP_TOKENS_PER_SLICE", 100)
    images = torch.randn(2, 3, image_size, image_size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        reference = official(images)
        embedding = ours(images)
    assert embedding.shape == reference.shape == (2, 256, image_size // 16, image_size // 16)
    assert relative_error(embedding, reference) <= RELATIVE_TOLERANCE


def test_state_dict_keys_are_the_official_ones(encoders):
    _, official, ours = encoders
    assert list(ours.state_dict()) == list(official.state_dict())


@pytest.mark.parametrize("budget", list(BUDGETS))
def test_gradients_match_official(budget, monkeypatch):
    """Training goes through the same attention: gradients of the input and of the
    relative-position tables agree with the official encoder's."""
    set_budget(monkeypatch, BUDGETS[budget])
    official, ours = paired_encoders(256, **ARCH)
    images = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(2))
    weights = torch.randn(1, 256, 16, 16, generator=torch.Generator().manual_seed(3))
    gradients = []
    for encoder in (official, ours):
        pixels = images.clone().requires_grad_(True)
        (encoder(pixels) * weights).sum().backward()
        gradients.append(
            [pixels.grad] + [p.grad for n, p in encoder.named_parameters() if "rel_pos" in n]
        )
    for reference, ours_grad in zip(*gradients, strict=True):
        assert reference.abs().max() > 0
        assert relative_error(ours_grad, reference) <= RELATIVE_TOLERANCE


def reference_attention(q, k, v, rel_h, rel_w, scale):
    """softmax(scale·q kᵀ + rel_h[q, h'] + rel_w[q, w']) v in float64, the bias spelt out
    per key (h', w')."""
    q, k, v, rel_h, rel_w = (t.double() for t in (q, k, v, rel_h, rel_w))
    height, width = rel_h.shape[-1], rel_w.shape[-1]
    key_h = torch.arange(height).repeat_interleave(width)
    key_w = torch.arange(width).repeat(height)
    bias = rel_h[..., key_h] + rel_w[..., key_w]
    weights = torch.softmax(scale * q @ k.transpose(-1, -2) + bias, dim=-1)
    return weights @ v


@pytest.mark.parametrize("budget", [10**9, 5_000, 900, 100])
@pytest.mark.parametrize("batch,heads,size", [(3, 2, (5, 7)), (1, 4, (6, 6))])
def test_sliced_attention_matches_plain_attention(batch, heads, size, budget, monkeypatch):
    set_budget(monkeypatch, budget)
    generator = torch.Generator().manual_seed(4)
    tokens = size[0] * size[1]
    q, k, v = torch.randn(3, batch, heads, tokens, 8, generator=generator).unbind(0)
    rel_h = torch.randn(batch, heads, tokens, size[0], generator=generator)
    rel_w = torch.randn(batch, heads, tokens, size[1], generator=generator)
    ours = attention_with_relative_positions(q, k, v, rel_h, rel_w, 0.3)
    reference = reference_attention(q, k, v, rel_h, rel_w, 0.3)
    assert relative_error(ours, reference) <= 1e-5


@pytest.mark.parametrize("budget", [10**9, 200, 50, 7, 1])
def test_attention_slices_cover_every_query_once(budget):
    batch, heads, tokens = 3, 4, 10
    covered = torch.zeros(batch, heads, tokens, dtype=torch.int64)
    for index in attention_slices(batch, heads, tokens, budget):
        covered[index] += 1
    assert torch.equal(covered, torch.ones_like(covered))


def test_adapter_encoder_is_unchanged_by_slicing(monkeypatch):
    """SAM-Med2D's blocks (adapter beside the MLP) through sliced masks give what one whole
    mask gives; the adapter against SAM-Med2D's own code is tested in test_sammed2d."""
    encoder = ImageEncoderViT(
        img_size=256, embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,), adapter=True
    ).eval()
    randomize_parameters(encoder, seed=5)
    images = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(6))
    with torch.inference_mode():
        whole = encoder(images)
        set_budget(monkeypatch, 3_000)
        sliced = encoder(images)
    assert relative_error(sliced, whole) <= 1e-5


# The TorchScript tracer is deprecated but is what the ONNX export uses.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_fused_kernels_stay_out_of_training_and_tracing():
    """Autograd has no derivative for oneDNN's fused ops, and a traced (ONNX) graph must
    hold the plain ones."""
    x, layer = torch.zeros(2, 4), torch.nn.Linear(4, 4)
    assert not onednn.fused_kernels_apply(x, layer)  # autograd records
    with torch.no_grad():
        assert not onednn.fused_kernels_apply(x.double(), layer.double())
        assert not onednn.fused_kernels_apply(x.bfloat16(), layer)  # dtypes differ
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not onednn.fused_kernels_apply(x, layer)
        traced = torch.jit.trace(lambda t: t * float(onednn.fused_kernels_apply(t, layer)), x)
    assert traced(torch.ones(2, 4)).sum() == 0


@pytest.mark.parametrize("fused", [True, False], ids=["onednn", "plain"])
def test_bf16_weights_agree_with_fp32(encoders, fused, monkeypatch):
    """The bf16 copy of the weights (``precision="bf16"``) through the fused kernels, and
    through the plain modules, which CPUs without oneDNN bf16 (AVX2 only) take."""
    if fused and not onednn.BF16_ENABLED:
        pytest.skip("oneDNN has no bf16 inner product on this CPU (no AVX-512)")
    if not fused:
        monkeypatch.setattr(onednn, "BF16_ENABLED", False)
    image_size, _, ours = encoders
    images = torch.randn(1, 3, image_size, image_size, generator=torch.Generator().manual_seed(8))
    with torch.inference_mode():
        fp32 = ours(images)
        bf16 = copy.deepcopy(ours).bfloat16()(images.bfloat16())
    assert bf16.dtype == torch.bfloat16
    cosine = torch.nn.functional.cosine_similarity(bf16.float().flatten(), fp32.flatten(), dim=0)
    assert cosine > 0.999
    assert relative_error(bf16, fp32) < 0.1


def test_bf16_autocast_agrees_with_fp32(encoders):
    image_size, _, ours = encoders
    images = torch.randn(1, 3, image_size, image_size, generator=torch.Generator().manual_seed(7))
    with torch.inference_mode():
        fp32 = ours(images)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = ours(images)
    assert bf16.dtype == torch.float32  # the neck's LayerNorm2d returns its weights' dtype
    assert torch.isfinite(bf16).all()
    cosine = torch.nn.functional.cosine_similarity(bf16.flatten(), fp32.flatten(), dim=0)
    assert cosine > 0.999
    assert relative_error(bf16, fp32) < 0.1


@pytest.mark.parametrize("budget", [10**9, 900, 100])
@pytest.mark.parametrize("size", [(14, 14), (5, 7), (16, 16)])
def test_bf16_bias_product_is_the_broadcast_sum(size, budget, monkeypatch):
    """Small bf16 windows take their bias from a product with a 0/1 matrix instead of the
    broadcast sum (``bias_masks.mask_writer``); ViT-B's 14×14 windows, an odd shape, and
    16 + 16 (the largest that takes the product). The attention must be the same bits
    either way, sliced or whole."""
    assert sum(size) <= bias_masks.BIAS_PRODUCT_MAX_TERMS
    set_budget(monkeypatch, budget)
    generator = torch.Generator().manual_seed(7)
    tokens = size[0] * size[1]
    q, k, v = torch.randn(3, 3, 2, tokens, 16, generator=generator).bfloat16().unbind(0)
    # Large terms of both signs: the sum rounds to bf16, so a product that rounded twice
    # or added in a lower precision would differ.
    rel_h = (torch.randn(3, 2, tokens, size[0], generator=generator) * 50).bfloat16()
    rel_w = (torch.randn(3, 2, tokens, size[1], generator=generator) * 0.37).bfloat16()
    product = bias_masks.mask_writer(rel_h, rel_w)
    assert product is not bias_masks.broadcast_sum
    expected = rel_h[..., :, None].float() + rel_w[..., None, :].float()
    written = product(rel_h, rel_w, rel_h.new_empty(*rel_h.shape, size[1]))
    assert torch.equal(written, expected.bfloat16())
    with torch.inference_mode():
        ours = attention_with_relative_positions(q, k, v, rel_h, rel_w, 0.25)
        monkeypatch.setattr(bias_masks, "BIAS_PRODUCT_MAX_TERMS", 0)  # the sum everywhere
        summed = attention_with_relative_positions(q, k, v, rel_h, rel_w, 0.25)
    assert torch.equal(ours, summed)


def test_bias_product_only_where_it_pays():
    """fp32, and windows larger than the limit (ViT-B's 64×64 global grid), keep the sum."""
    small = torch.zeros(1, 1, 4, 14)
    assert bias_masks.mask_writer(small, small) is bias_masks.broadcast_sum
    large = torch.zeros(1, 1, 4, 64).bfloat16()
    assert bias_masks.mask_writer(large, large) is bias_masks.broadcast_sum
