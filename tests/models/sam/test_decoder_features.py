"""``decode_with_features``: the masks of ``decode`` plus the features training losses need.

For plain SAM the masks and IoUs must equal ``decode``'s exactly, ``clean`` must change
nothing, and the extra outputs must have the documented shapes and be what the masks are
read from (the masks are the tokens' hypernetwork weights times the features).
"""

from __future__ import annotations

import pytest
import torch

from samforge.errors import EmbeddingError
from samforge.models import DecoderOutput, build_model
from samforge.models.config import VIT_TEST


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(VIT_TEST)


def prompts(batch: int = 3):
    generator = torch.Generator().manual_seed(1)
    coords = torch.rand(batch, 2, 2, generator=generator) * 256
    labels = torch.tensor([[1, 0]] * batch)
    corners = torch.sort(torch.rand(batch, 2, 2, generator=generator) * 256, dim=1).values
    boxes = corners.transpose(1, 2).reshape(batch, 4)[:, [0, 2, 1, 3]]
    masks = torch.randn(batch, 1, 64, 64, generator=generator)
    return (coords, labels), boxes, masks


@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("clean", [False, True])
def test_plain_sam_features_equal_decode(model, multimask, clean):
    points, boxes, masks = prompts()
    with torch.no_grad():
        embeddings = model.embed_images(torch.randn(1, 3, 256, 256))
        expected = model.decode(embeddings, points, boxes, masks, multimask_output=multimask)
        output = model.decode_with_features(
            embeddings, points, boxes, masks, multimask_output=multimask, clean=clean
        )
    assert isinstance(output, DecoderOutput)
    assert torch.equal(output.low_res_logits, expected[0])
    assert torch.equal(output.iou_predictions, expected[1])
    m = 3 if multimask else 1
    assert output.low_res_logits.shape == (3, m, 64, 64)
    assert output.mask_features.shape == (3, 32, 64, 64)
    assert output.output_tokens.shape == (3, m, 256)


def test_masks_are_read_from_the_returned_features(model):
    """Mask i = hypernetwork MLP i (token i) · features: the outputs belong together."""
    points, boxes, _ = prompts(2)
    decoder = model.mask_decoder
    with torch.no_grad():
        embeddings = model.embed_images(torch.randn(2, 3, 256, 256))
        output = model.decode_with_features(embeddings, points, boxes, multimask_output=True)
        for index in range(3):
            weights = decoder.output_hypernetworks_mlps[index + 1](output.output_tokens[:, index])
            expected = torch.einsum("bc,bchw->bhw", weights, output.mask_features)
            torch.testing.assert_close(output.low_res_logits[:, index], expected)


def test_plain_sam_refuses_another_familys_dict_embeddings(model):
    """RobustSAM and SAM-UNet embed into a dict; plain SAM says so instead of failing deep
    inside its decoder (it raised an AttributeError on the dict)."""
    points, boxes, _ = prompts(1)
    embeddings = {"image_embeddings": torch.zeros(1, 256, 16, 16)}
    with torch.no_grad(), pytest.raises(EmbeddingError, match="dict"):
        model.decode(embeddings, points, boxes)
    with torch.no_grad(), pytest.raises(EmbeddingError, match="dict"):
        model.decode_with_features(embeddings, points, boxes)
