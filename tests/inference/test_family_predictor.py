"""The Predictor and both embedding caches with every model family.

RobustSAM and SAM-UNet embed images as dicts of tensors; the Predictor, the in-memory cache
and the disk cache must carry them unchanged, and SAM-UNet's missing IoU head must show as
NaN scores, never as a number.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.configs import ROBUST_TEST, SAMMED2D_TEST, SAMUNET_TEST
from samforge.inference import Predictor
from samforge.inference.disk_cache import DiskEmbeddingCache
from samforge.models import build_model

BOXES = np.array([[20, 30, 120, 150], [60, 10, 200, 90]], dtype=np.float32)


def image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(180, 230, 3), dtype=np.uint8)


@pytest.fixture(scope="module", params=["robust", "sam_unet", "sammed2d"])
def model(request):
    config = {"robust": ROBUST_TEST, "sam_unet": SAMUNET_TEST, "sammed2d": SAMMED2D_TEST}
    torch.manual_seed(0)
    return build_model(config[request.param])


def test_predictions_equal_the_models_own_decode(model):
    predictor = Predictor(model, precision="fp32")
    predictor.set_image(image())
    prediction = predictor.predict(boxes=BOXES, return_logits=True)
    transform = model.config.input_transform()
    boxes = transform.boxes(torch.from_numpy(BOXES), (180, 230))
    with torch.no_grad():
        rgb = torch.from_numpy(image().astype(np.float32)).permute(2, 0, 1)[None]
        low_res, iou = model.decode(model.embed_images(transform.image(rgb)), boxes=boxes)
    np.testing.assert_allclose(prediction.low_res_logits, low_res.numpy(), rtol=1e-5, atol=1e-5)
    assert prediction.masks.shape == (2, 1, 180, 230)
    if iou is None:
        assert np.isnan(prediction.scores).all() and prediction.scores.shape == (2, 1)
    else:
        np.testing.assert_allclose(prediction.scores, iou.numpy(), rtol=1e-5, atol=1e-6)


def test_memory_and_disk_caches_keep_dict_embeddings(model, tmp_path):
    cache = DiskEmbeddingCache(tmp_path)
    first = Predictor(model, disk_cache=cache)
    first.set_image(image(1))
    expected = first.predict(boxes=BOXES).low_res_logits

    first.set_image(image(2))
    first.set_image(image(1))  # from memory
    assert first.cache.hits == 1
    np.testing.assert_array_equal(first.predict(boxes=BOXES).low_res_logits, expected)

    second = Predictor(model, disk_cache=cache)
    second.set_image(image(1))  # from disk
    assert cache.hits == 1
    stored, computed = second.image_embedding.embedding, first.image_embedding.embedding
    assert type(stored) is type(computed)
    if isinstance(computed, dict):
        assert set(stored) == set(computed)
        for key in computed:
            assert torch.equal(stored[key], computed[key]), key
    np.testing.assert_array_equal(second.predict(boxes=BOXES).low_res_logits, expected)


def test_sam_unet_gives_one_mask_and_nan_scores_even_with_multimask():
    torch.manual_seed(0)
    predictor = Predictor(build_model(SAMUNET_TEST))
    predictor.set_image(image())
    prediction = predictor.predict(boxes=BOXES, multimask=True)
    assert prediction.masks.shape == (2, 1, 180, 230)
    assert np.isnan(prediction.scores).all()
    assert prediction.best().masks.shape == (2, 1, 180, 230)
