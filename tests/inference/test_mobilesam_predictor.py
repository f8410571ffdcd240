"""MobileSAM through the same Predictor as SAM: one disk cache shared with a SAM model keeps
their embeddings apart, and bf16 autocast runs TinyViT (batch norms, window attention with
its bias table) close to fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samforge.inference import Predictor
from samforge.inference.disk_cache import DiskEmbeddingCache
from samforge.models import build_model, get_config
from samforge.models.config import VIT_TEST


@pytest.fixture(scope="module")
def mobilesam():
    torch.manual_seed(0)
    return build_model(get_config("vit_t"))


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    image = np.full((700, 1024, 3), 40, np.uint8)
    image[200:500, 300:700] = 200  # a bright rectangle
    return np.clip(image + rng.integers(0, 20, image.shape), 0, 255).astype(np.uint8)


def test_disk_cache_keeps_mobilesam_and_sam_embeddings_apart(tmp_path, mobilesam, image):
    """A ViT SAM at the same input size, with MobileSAM's prompt encoder and decoder."""
    torch.manual_seed(1)
    sam = build_model(VIT_TEST.with_changes(image_size=1024))
    shared = {k: v for k, v in mobilesam.state_dict().items() if not k.startswith("image_")}
    sam.load_state_dict(shared, strict=False)
    cache = DiskEmbeddingCache(tmp_path)
    embeddings = {}
    for name, model in (("mobilesam", mobilesam), ("sam", sam)):
        predictor = Predictor(model, disk_cache=cache, precision="fp32")
        predictor.set_image(image)
        embeddings[name] = predictor.image_embedding.embedding
        pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float()
        with torch.inference_mode():
            own = model.embed_images(model.config.input_transform().image(pixels))
        assert torch.allclose(embeddings[name], own, atol=1e-5), name
    assert len(cache) == 2
    assert not torch.allclose(embeddings["mobilesam"], embeddings["sam"])
    # A fresh MobileSAM predictor is served from disk.
    again = Predictor(mobilesam, disk_cache=cache, precision="fp32")
    again.set_image(image)
    assert cache.hits == 1 and torch.equal(again.image_embedding.embedding, embeddings["mobilesam"])


def test_bf16_predictor_stays_close_to_fp32(mobilesam, image):
    results = {}
    for precision in ("fp32", "bf16"):
        predictor = Predictor(mobilesam, precision=precision)
        predictor.set_image(image)
        prediction = predictor.predict(boxes=[280, 180, 720, 520], return_logits=True)
        results[precision] = (predictor.image_embedding.embedding, prediction)
    (fp32_embedding, fp32), (bf16_embedding, bf16) = results["fp32"], results["bf16"]
    assert bf16_embedding.dtype == torch.float32  # cached and returned as fp32
    scale = fp32_embedding.abs().max()
    assert (bf16_embedding - fp32_embedding).abs().max() / scale < 5e-2
    cosine = torch.nn.functional.cosine_similarity(
        bf16_embedding.flatten(), fp32_embedding.flatten(), dim=0
    )
    assert cosine > 0.999
    decided = np.abs(fp32.logits) > 0.05 * np.abs(fp32.logits).max()
    assert (bf16.masks[decided] == fp32.masks[decided]).mean() > 0.99
