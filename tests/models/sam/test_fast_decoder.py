"""The decoder's fast forms against the plain computations they replace."""

from __future__ import annotations

import pytest
import torch

from samforge.models import build_model
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


@pytest.mark.parametrize("image_batch", [1, 3])
def test_tokens_to_image_equals_plain_attention(attention, image_batch):
    generator = torch.Generator().manual_seed(1)
    queries = torch.randn(3, 7, 256, generator=generator)
    keys = torch.randn(image_batch, 64, 256, generator=generator)
    values = torch.randn(image_batch, 64, 256, generator=generator)
    with torch.no_grad():
        fast = attention.tokens_to_image(queries, keys, values)
        plain = attention(q=queries, k=keys.expand(3, -1, -1), v=values.expand(3, -1, -1))
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("image_batch", [1, 3])
def test_image_to_tokens_equals_plain_attention(attention, image_batch):
    generator = torch.Generator().manual_seed(2)
    image = torch.randn(image_batch, 64, 256, generator=generator)
    keys = torch.randn(3, 7, 256, generator=generator)
    values = torch.randn(3, 7, 256, generator=generator)
    with torch.no_grad():
        fast = attention.image_to_tokens(image, keys, values)
        plain = attention(q=image.expand(3, -1, -1), k=keys, v=values)
    assert fast.shape == (3, 64, 256)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)


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
