"""Predictor.embed_volume and precision: batched slice embeddings that later calls reuse."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samforge.data import volume_normalizer
from samforge.errors import ConfigError, InputImageError
from samforge.inference import Predictor, PropagationSettings, propagate
from samforge.inference.disk_cache import DiskEmbeddingCache
from samforge.inference.precision import cpu_has_native_bf16, resolve_precision
from samforge.models import Sam
from samforge.models.config import VIT_TEST
from samforge.prompts import Prompts


def tiny_model(seed: int = 0) -> Sam:
    torch.manual_seed(seed)
    return Sam(VIT_TEST).eval()


def count_encoder_calls(model: Sam) -> list[int]:
    """Wrap ``model.embed_images``; the list holds the batch size of every call."""
    calls: list[int] = []
    original = model.embed_images

    def counted(images):
        calls.append(images.shape[0])
        return original(images)

    model.embed_images = counted
    return calls


def blob_volume(depth: int = 6) -> np.ndarray:
    volume = np.random.default_rng(0).normal(100, 5, (depth, 48, 40)).astype(np.float32)
    volume[:, 14:34, 10:28] += 80
    return volume


def test_embed_volume_batches_and_later_work_hits_the_cache():
    model = tiny_model()
    calls = count_encoder_calls(model)
    predictor = Predictor(model)
    volume = blob_volume()
    mapping = volume_normalizer(volume, mode=predictor.intensity, window=predictor.window)
    progress = []
    embedded = predictor.embed_volume(
        volume, mapping=mapping, batch_size=4, progress=lambda done, total: progress.append(done)
    )
    assert embedded == 6 and calls == [4, 2] and progress == [4, 6]
    # Propagation and single slices are served from the memory cache: no encoder call.
    result = propagate(
        predictor,
        volume,
        {3: Prompts.from_user(boxes=np.array([10, 14, 28, 34]))},
        PropagationSettings(mode="box", iou_threshold=0.0),
        mapping=mapping,
    )
    assert result.decoded >= 2
    predictor.set_image(volume[5], mapping=mapping)
    assert calls == [4, 2]
    assert predictor.embed_volume(volume, mapping=mapping) == 0  # nothing left to do


def test_batched_embeddings_equal_one_by_one():
    volume = blob_volume(3)
    batched, single = Predictor(tiny_model()), Predictor(tiny_model())
    mapping = volume_normalizer(volume)
    batched.embed_volume(volume, mapping=mapping, batch_size=3)
    for index in range(3):
        batched.set_image(volume[index], mapping=mapping)
        single.set_image(volume[index], mapping=mapping)
        torch.testing.assert_close(
            batched.image_embedding.embedding,
            single.image_embedding.embedding,
            atol=1e-5,
            rtol=1e-4,
        )


def test_a_second_predictor_reads_the_volume_from_disk(tmp_path):
    volume = blob_volume(5)
    mapping = volume_normalizer(volume)
    Predictor(tiny_model(), disk_cache=DiskEmbeddingCache(tmp_path)).embed_volume(
        volume, mapping=mapping, batch_size=2
    )
    # Another model object with the same weights, as in another process.
    model = tiny_model()
    calls = count_encoder_calls(model)
    second = Predictor(model, disk_cache=DiskEmbeddingCache(tmp_path))
    assert second.embed_volume(volume, mapping=mapping) == 0
    propagate(
        second, volume, {2: Prompts.from_user(boxes=np.array([10, 14, 28, 34]))}, mapping=mapping
    )
    assert calls == []
    assert second.disk_cache.hits == 5


def test_embed_volume_only_the_requested_slices():
    model = tiny_model()
    calls = count_encoder_calls(model)
    predictor = Predictor(model)
    assert predictor.embed_volume(blob_volume(), indices=[4, 1, 4], batch_size=8) == 2
    assert calls == [2]


@pytest.mark.parametrize(
    ("volume", "kwargs"),
    [
        (np.zeros((8, 8)), {}),
        (np.zeros((2, 8, 8, 3)), {}),
        (np.zeros((0, 8, 8)), {}),
        (np.zeros((3, 8, 8)), {"indices": [3]}),
    ],
)
def test_embed_volume_rejects_what_is_not_a_volume(volume, kwargs):
    with pytest.raises(InputImageError, match=r"volume|slice indices"):
        Predictor(tiny_model()).embed_volume(volume, **kwargs)


def test_embed_volume_rejects_an_empty_batch():
    with pytest.raises(ConfigError, match="batch_size"):
        Predictor(tiny_model()).embed_volume(blob_volume(), batch_size=0)


def test_precision_names_are_checked_and_auto_follows_the_hardware():
    with pytest.raises(ConfigError, match="precision must be one of"):
        Predictor(tiny_model(), precision="fp16")
    assert resolve_precision("fp32", torch.device("cuda")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    expected = "bf16" if cpu_has_native_bf16() else "fp32"
    assert resolve_precision("auto", torch.device("cpu")) == expected


def test_bf16_embeddings_are_float32_close_to_fp32_and_cached_apart():
    image = np.random.default_rng(1).integers(0, 255, (64, 64), dtype=np.uint8)
    model = tiny_model()
    calls = count_encoder_calls(model)
    exact, fast = Predictor(model, precision="fp32"), Predictor(model, precision="bf16")
    exact.set_image(image)
    fast.set_image(image)
    reference, approximate = exact.image_embedding.embedding, fast.image_embedding.embedding
    assert approximate.dtype == torch.float32
    relative = (approximate - reference).norm() / reference.norm()
    correlation = torch.corrcoef(torch.stack([approximate.flatten(), reference.flatten()]))[0, 1]
    assert relative < 0.05 and correlation > 0.99
    # Decoded logits follow.
    box = np.array([10, 12, 40, 50])
    logits = [p.predict(boxes=box, return_logits=True).logits for p in (exact, fast)]
    assert np.corrcoef(logits[0].ravel(), logits[1].ravel())[0, 1] > 0.99
    assert calls == [1, 1]  # bf16 is not served the fp32 entry (nor the other way round)


def test_bf16_and_fp32_entries_differ_on_disk(tmp_path):
    image = np.random.default_rng(2).integers(0, 255, (32, 32), dtype=np.uint8)
    for precision in ("fp32", "bf16"):
        Predictor(
            tiny_model(), precision=precision, disk_cache=DiskEmbeddingCache(tmp_path)
        ).set_image(image)
    assert len(DiskEmbeddingCache(tmp_path)) == 2
