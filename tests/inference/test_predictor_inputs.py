"""What the Predictor accepts, what it refuses (and says), and its embedding cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samforge.errors import InputImageError, PromptError
from samforge.inference import Predictor
from samforge.models import build_model
from samforge.models.config import VIT_TEST


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    torch.manual_seed(0)
    return Predictor(build_model(VIT_TEST))


@pytest.mark.parametrize(
    "image",
    [
        np.arange(64 * 80, dtype=np.uint16).reshape(64, 80),
        (np.arange(64 * 80, dtype=np.int16).reshape(64, 80) - 1000),
        np.random.default_rng(0).normal(size=(64, 80)).astype(np.float32),
        np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8),
        np.random.default_rng(0).integers(0, 255, (64, 80, 4), dtype=np.uint8),
        np.random.default_rng(0).integers(0, 255, (64, 80, 1), dtype=np.uint8),
    ],
    ids=["uint16", "int16", "float32", "rgb", "rgba", "gray-channel"],
)
def test_accepts_common_dtypes_and_channel_layouts(predictor, image):
    predictor.set_image(image)
    result = predictor.predict(boxes=[5, 5, 40, 50], multimask=True)
    assert result.masks.shape == (1, 3, 64, 80)
    assert result.scores.shape == (1, 3)
    assert result.low_res_logits.shape == (1, 3, 64, 64)
    assert np.isfinite(result.low_res_logits).all()


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((4, 64, 64, 3)), "expected \\(H, W\\)"),
        (np.zeros((64, 64, 5)), "expected \\(H, W\\)"),
        (np.zeros((10, 64, 64)), "pass one slice"),
        (np.zeros((0, 64)), "empty"),
        (np.zeros((64, 64), dtype=bool), "dtype bool"),
        (np.zeros((64, 64), dtype=np.complex64), "dtype complex64"),
        (np.full((64, 64), np.nan, dtype=np.float32), "NaN"),
    ],
)
def test_rejects_bad_images_with_a_clear_message(predictor, image, message):
    with pytest.raises(InputImageError, match=message):
        predictor.set_image(image)


def test_predict_before_set_image_says_what_to_do():
    with pytest.raises(InputImageError, match="set_image"):
        Predictor(build_model(VIT_TEST)).predict(boxes=[0, 0, 10, 10])


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (dict(), "no prompt"),
        (dict(points=[[10, 10]]), "points and labels go together"),
        (dict(points=[[10, 10], [20, 20]], labels=[1]), "one label per point"),
        (dict(points=[[100, 10]], labels=[1]), "outside the 80×64"),
        (dict(points=[[10, -1]], labels=[1]), "outside"),
        (dict(points=[[10, 10]], labels=[5]), "not valid"),
        (dict(points=[[np.nan, 10]], labels=[1]), "NaN"),
        (dict(boxes=[40, 10, 20, 30]), "ordered"),
        (dict(boxes=[0, 0, 81, 30]), "outside"),
        (dict(boxes=[0, 0, 10]), "x0, y0, x1, y1"),
        (
            dict(boxes=[[0, 0, 10, 10], [0, 0, 20, 20]], points=[[5, 5]], labels=[1]),
            "disagree on the number of objects",
        ),
        (dict(boxes=[0, 0, 10, 10], mask_input=np.zeros((1, 1, 32, 32))), "low-resolution"),
    ],
)
def test_rejects_bad_prompts_with_a_clear_message(predictor, prompt, message):
    predictor.set_image(np.zeros((64, 80), dtype=np.uint8))
    with pytest.raises(PromptError, match=message):
        predictor.predict(**prompt)


def test_padding_points_are_ignored_even_outside_the_image(predictor):
    predictor.set_image(np.zeros((64, 80), dtype=np.uint8))
    ragged = predictor.predict(
        points=[[[10, 10], [0, 0]], [[30, 30], [40, 40]]], labels=[[1, -1], [1, 0]]
    )
    assert ragged.masks.shape == (2, 1, 64, 80)


def test_embedding_cache_hits_on_same_content_and_misses_after_weights_change():
    model = build_model(VIT_TEST)
    predictor = Predictor(model)
    image = np.random.default_rng(1).integers(0, 255, (64, 80), dtype=np.uint8)
    predictor.set_image(image)
    first = predictor.image_embedding.embedding
    predictor.set_image(image.copy())  # same content, another array
    assert (predictor.cache.hits, predictor.cache.misses) == (1, 1)
    assert predictor.image_embedding.embedding is first

    predictor.set_image(image, intensity="percentile")  # other settings: other embedding
    assert predictor.cache.misses == 2

    with torch.no_grad():
        model.image_encoder.neck[0].weight.mul_(2.0)
    predictor.set_image(image)
    assert predictor.cache.misses == 3
    assert not torch.equal(predictor.image_embedding.embedding, first)


def test_decode_takes_the_record_and_gives_what_predict_gives_as_tensors(predictor):
    from samforge.prompts import Prompts

    image = np.random.default_rng(2).integers(0, 255, (64, 80), dtype=np.uint8)
    predictor.set_image(image)
    arguments = dict(points=[[[10, 12]], [[40, 30]]], labels=[[1], [1]])
    expected = predictor.predict(**arguments, multimask=True, return_logits=True)
    decoded = predictor.decode(Prompts.from_user(**arguments), multimask=True)
    assert isinstance(decoded.masks, torch.Tensor) and decoded.masks.dtype == torch.bool
    for name in ("masks", "scores", "low_res_logits", "logits"):
        np.testing.assert_array_equal(getattr(decoded.numpy(), name), getattr(expected, name))
    best, best_expected = decoded.best(), expected.best()
    assert best.masks.shape == (2, 1, 64, 80)
    np.testing.assert_array_equal(best.numpy(logits=False).masks, best_expected.masks)
    assert best.numpy(logits=False).logits is None
    with pytest.raises(PromptError, match="outside"):
        predictor.decode(Prompts.from_user(boxes=[0, 0, 81, 10]))
