"""The decoder's fast forms against the plain computations they replace."""

from __future__ import annotations

import pytest
import torch

from samforge.models import build_model, get_config
from samforge.models.config import VIT_TEST
from samforge.models.sam.mask_decoder import (
    blocks_to_image,
    read_block_masks,
    read_masks,
    upscale_blocks,
)
from samforge.models.sam.transformer import Attention


@pytest.fixture(scope="module")
def attention():
    torch.manual_seed(0)
    module = Attention(256, 8, downsample_rate=2).eval()
    with torch.no_grad():
        for parameter in module.parameters():  # biases matter: make them large
            parameter.add_(torch.randn_like(parameter) * 0.1)
    return module


# 7 tokens (a box and the output tokens) take the folded form; 20 (a late correction round's
# points) project the image side instead, as 8 heads × 20 > 128 columns.
TOKEN_COUNTS = [7, 20]


@pytest.mark.parametrize("count", TOKEN_COUNTS)
@pytest.mark.parametrize("image_batch", [1, 3])
def test_tokens_to_image_equals_plain_attention(attention, image_batch, count):
    generator = torch.Generator().manual_seed(1)
    queries = torch.randn(3, count, 256, generator=generator)
    keys = torch.randn(image_batch, 64, 256, generator=generator)
    values = torch.randn(image_batch, 64, 256, generator=generator)
    with torch.no_grad():
        fast = attention.tokens_to_image(queries, keys, values)
        plain = attention(q=queries, k=keys.expand(3, -1, -1), v=values.expand(3, -1, -1))
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("count", TOKEN_COUNTS)
@pytest.mark.parametrize("image_batch", [1, 3])
def test_image_to_tokens_equals_plain_attention(attention, image_batch, count):
    generator = torch.Generator().manual_seed(2)
    image = torch.randn(image_batch, 64, 256, generator=generator)
    keys = torch.randn(3, count, 256, generator=generator)
    values = torch.randn(3, count, 256, generator=generator)
    residual = torch.randn(3, 64, 256, generator=generator)
    with torch.no_grad():
        fast = attention.image_to_tokens(image, keys, values)
        plain = attention(q=image.expand(3, -1, -1), k=keys, v=values)
        summed = attention.image_to_tokens(image, keys, values, residual=residual.clone())
    assert fast.shape == (3, 64, 256)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(summed, residual + plain, atol=1e-5, rtol=1e-5)


def test_image_to_tokens_in_place_writes_the_residual_only_when_allowed(attention):
    generator = torch.Generator().manual_seed(8)
    image = torch.randn(1, 64, 256, generator=generator)
    keys = torch.randn(2, 7, 256, generator=generator)
    residual = torch.randn(2, 64, 256, generator=generator)
    kept = residual.clone()
    with torch.no_grad():
        copied = attention.image_to_tokens(image, keys, keys, residual=residual)
        assert torch.equal(residual, kept)  # not allowed: the caller's tensor is untouched
        written = attention.image_to_tokens(image, keys, keys, residual=residual, in_place=True)
    assert written.data_ptr() == residual.data_ptr()
    torch.testing.assert_close(written, copied)


def test_wrapped_projections_fall_back_to_plain_attention(attention):
    """A wrapped projection (here one that doubles its output) must not be bypassed."""
    import copy

    class Doubled(torch.nn.Module):
        def __init__(self, base):
            super().__init__()
            self.base = base
            self.weight = base.weight  # what a fold would wrongly read

        def forward(self, x):
            return 2 * self.base(x)

    wrapped = copy.deepcopy(attention)
    wrapped.k_proj = Doubled(wrapped.k_proj)
    generator = torch.Generator().manual_seed(6)
    queries, image = torch.randn(2, 7, 256, generator=generator), torch.randn(1, 64, 256)
    with torch.no_grad():
        expected = wrapped(q=queries, k=image.expand(2, -1, -1), v=image.expand(2, -1, -1))
        torch.testing.assert_close(wrapped.tokens_to_image(queries, image, image), expected)
        assert not torch.allclose(attention.tokens_to_image(queries, image, image), expected)


def test_block_upscaling_equals_the_transposed_convolutions():
    torch.manual_seed(3)
    decoder = build_model(VIT_TEST).mask_decoder
    keys = torch.randn(2, 16 * 12, 256)
    with torch.no_grad():
        blocks = upscale_blocks(decoder.output_upscaling, keys, 16, 12)
        image = keys.transpose(1, 2).reshape(2, 256, 16, 12)
        expected = decoder.output_upscaling(image)  # ConvTranspose2d modules themselves
        assert blocks.shape == (2, 16, 12, 2, 2, 2, 2, 32)
        torch.testing.assert_close(blocks_to_image(blocks), expected, atol=1e-5, rtol=1e-5)
        hyper = torch.randn(2, 3, 32)
        torch.testing.assert_close(
            read_block_masks(hyper, blocks), read_masks(hyper, expected), atol=1e-4, rtol=1e-5
        )


@pytest.mark.parametrize("fused", [True, False])
def test_block_upscaling_with_and_without_onednn_gives_the_same_features(monkeypatch, fused):
    """oneDNN's product with the bias and GELU inside, and the plain ops, against the
    transposed convolutions; an approximate GELU is not fused but applied as it is."""
    from samforge.models.sam import onednn

    monkeypatch.setattr(onednn, "ENABLED", fused and onednn.ENABLED)
    torch.manual_seed(9)
    upscaling = build_model(VIT_TEST).mask_decoder.output_upscaling
    keys = torch.randn(3, 10 * 14, 256)
    image = keys.transpose(1, 2).reshape(3, 256, 10, 14)
    with torch.inference_mode():
        blocks = upscale_blocks(upscaling, keys, 10, 14)
        torch.testing.assert_close(blocks_to_image(blocks), upscaling(image), atol=1e-5, rtol=1e-5)
        upscaling[4] = torch.nn.GELU(approximate="tanh")
        blocks = upscale_blocks(upscaling, keys, 10, 14)
        torch.testing.assert_close(blocks_to_image(blocks), upscaling(image), atol=1e-5, rtol=1e-5)


def test_image_plus_dense_is_written_in_token_layout():
    from samforge.models.sam.mask_decoder import image_plus_dense

    generator = torch.Generator().manual_seed(10)
    image = torch.randn(1, 256, 6, 5, generator=generator)
    dense = torch.randn(4, 256, 6, 5, generator=generator)
    with torch.inference_mode():
        total = image_plus_dense(image, dense)
        shared = image_plus_dense(image, dense[:1].expand(4, -1, -1, -1))
    torch.testing.assert_close(total, image + dense)
    assert total.flatten(2).transpose(1, 2).is_contiguous()  # what the transformer reads
    assert shared.shape[0] == 1  # one image for all prompts without mask prompts
    torch.testing.assert_close(shared, image + dense[:1])
    trained = image_plus_dense(image, dense.requires_grad_())
    trained.sum().backward()  # training differentiates it
    assert dense.grad is not None


def test_other_upscaling_modules_run_as_they_are():
    torch.manual_seed(7)
    upscaling = build_model(VIT_TEST).mask_decoder.output_upscaling
    upscaling[3] = torch.nn.Sequential(upscaling[3])  # wrapped: no longer foldable
    keys = torch.randn(1, 8 * 8, 256)
    with torch.no_grad():
        blocks = upscale_blocks(upscaling, keys, 8, 8)
        expected = upscaling(keys.transpose(1, 2).reshape(1, 256, 8, 8))
    torch.testing.assert_close(blocks_to_image(blocks), expected)


def test_prompts_decoded_together_equal_each_alone():
    """One shared image (computed once for all prompts) gives each prompt its own masks."""
    torch.manual_seed(4)
    model = build_model(VIT_TEST)
    generator = torch.Generator().manual_seed(5)
    embedding = torch.randn(1, 256, 16, 16, generator=generator)
    boxes = torch.tensor([[10.0, 20, 120, 140], [50, 60, 200, 230], [0, 0, 255, 255]])
    with torch.no_grad():
        together, iou_together = model.decode(embedding, boxes=boxes, multimask_output=True)
        for index in range(3):
            alone, iou_alone = model.decode(
                embedding, boxes=boxes[index : index + 1], multimask_output=True
            )
            torch.testing.assert_close(together[index : index + 1], alone, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(iou_together[index : index + 1], iou_alone)


def test_decoder_matches_the_official_one_with_many_points_and_mask_prompts():
    """Every path of the fast decoder (folded and projected attention, shared and per-prompt
    image tokens, in-place updates, fused upscaling) against the official mask decoder on the
    same random weights: 1–20 points, with and without mask prompts, multimask and not."""
    from helpers.official import OFFICIAL_ARCHITECTURES, build_official_sam

    official = build_official_sam(**OFFICIAL_ARCHITECTURES["vit_b"])
    ours = build_model(get_config("vit_b")).eval()
    ours.load_state_dict(official.state_dict(), strict=True)
    generator = torch.Generator().manual_seed(11)
    embedding = torch.randn(1, 256, 64, 64, generator=generator)
    for batch, count, with_mask, multimask in (
        (1, 1, False, True),
        (4, 20, False, False),
        (3, 20, True, True),
        (5, 2, True, False),
    ):
        points = torch.rand(batch, count, 2, generator=generator) * 1024
        labels = torch.randint(0, 2, (batch, count), generator=generator)
        boxes = torch.rand(batch, 4, generator=generator) * 512
        boxes[:, 2:] += boxes[:, :2]
        masks = torch.randn(batch, 1, 256, 256, generator=generator) if with_mask else None
        outputs = []
        with torch.inference_mode():
            for model in (official, ours):
                sparse, dense = model.prompt_encoder(
                    points=(points, labels), boxes=boxes, masks=masks
                )
                outputs.append(
                    model.mask_decoder(
                        image_embeddings=embedding,
                        image_pe=model.prompt_encoder.get_dense_pe(),
                        sparse_prompt_embeddings=sparse,
                        dense_prompt_embeddings=dense,
                        multimask_output=multimask,
                    )
                )
        (official_logits, official_iou), (our_logits, our_iou) = outputs
        torch.testing.assert_close(our_logits, official_logits, atol=5e-5, rtol=1e-5)
        torch.testing.assert_close(our_iou, official_iou, atol=1e-5, rtol=1e-5)
