"""The on-disk embedding cache: content addressing, atomic writes, damaged files."""

from __future__ import annotations

import numpy as np
import torch

from samforge.inference import Predictor
from samforge.inference.disk_cache import DiskEmbeddingCache, model_digest
from samforge.models import Sam
from samforge.models.config import VIT_TEST


def tiny_model(seed: int) -> Sam:
    torch.manual_seed(seed)
    return Sam(VIT_TEST).eval()


def test_digest_follows_the_weights_not_the_object():
    assert model_digest(tiny_model(0)) == model_digest(tiny_model(0))  # another "process"
    assert model_digest(tiny_model(0)) != model_digest(tiny_model(1))
    model = tiny_model(0)
    before = model_digest(model)
    with torch.no_grad():
        model.mask_decoder.iou_prediction_head.layers[0].bias.add_(1.0)
    assert model_digest(model) != before


def test_round_trip_and_damaged_entries(tmp_path):
    cache = DiskEmbeddingCache(tmp_path)
    model = tiny_model(0)
    key = cache.key(model, "image-a")
    assert key != cache.key(model, "image-b") and key != cache.key(tiny_model(1), "image-a")
    assert cache.get(key) is None
    embedding = torch.randn(1, 256, 16, 16)
    cache.put(key, embedding)
    torch.testing.assert_close(cache.get(key), embedding)
    assert not list(tmp_path.glob("*/.tmp-*"))  # no temporary file left behind
    path = cache.path(key)
    for damage in (b"", path.read_bytes()[:100], b"not a torch file" * 10):
        path.write_bytes(damage)
        assert cache.get(key) is None  # a miss, not a crash
    cache.put(key, embedding)
    torch.testing.assert_close(cache.get(key), embedding)


def test_a_file_under_another_key_is_not_served(tmp_path):
    cache = DiskEmbeddingCache(tmp_path)
    model = tiny_model(0)
    first, second = cache.key(model, "a"), cache.key(model, "b")
    cache.put(first, torch.ones(1, 2, 3, 3))
    cache.path(second).parent.mkdir(parents=True, exist_ok=True)
    cache.path(second).write_bytes(cache.path(first).read_bytes())  # misplaced copy
    assert cache.get(second) is None


def test_predictor_uses_the_disk_before_embedding(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (40, 50), dtype=np.uint8)
    first = Predictor(tiny_model(0), disk_cache=DiskEmbeddingCache(tmp_path))
    first.set_image(image)
    expected = first.image_embedding.embedding
    # A new Predictor with its own model object and an empty memory cache: served from disk,
    # with the encoder disabled to prove it is not run.
    second_model = tiny_model(0)
    second_model.embed_images = None
    second = Predictor(second_model, disk_cache=DiskEmbeddingCache(tmp_path))
    second.set_image(image)
    torch.testing.assert_close(second.image_embedding.embedding, expected)
    assert second.disk_cache.hits == 1
    # Other weights: a different entry, computed afresh.
    third = Predictor(tiny_model(1), disk_cache=DiskEmbeddingCache(tmp_path))
    third.set_image(image)
    assert third.disk_cache.misses == 1 and len(third.disk_cache) == 2


def test_a_new_model_never_inherits_a_freed_models_digest(tmp_path, monkeypatch):
    """Python reuses the id of a freed object, so (id, versions) can repeat across models;
    simulate exactly that collision: the digest must still follow the model itself."""
    import samforge.inference.disk_cache as disk_cache_module

    monkeypatch.setattr(disk_cache_module, "model_state_key", lambda model: (1234, 0))
    cache = DiskEmbeddingCache(tmp_path)
    first, second = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
    torch.nn.init.constant_(first.weight, 1.0)
    torch.nn.init.constant_(second.weight, 2.0)
    first_key = cache.key(first, "image")
    del first
    assert cache.key(second, "image") != first_key
    assert cache.key(second, "image") == DiskEmbeddingCache(tmp_path).key(second, "image")


def _write_many(root: str) -> None:
    """Another process: write the same entries as its twin, many times over."""
    cache = DiskEmbeddingCache(root)
    for _ in range(20):
        for name in ("a", "b", "c"):
            cache.put(name * 40, torch.full((1, 8, 4, 4), float(ord(name))))


def test_two_processes_writing_the_same_entries(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(str(tmp_path),)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    cache = DiskEmbeddingCache(tmp_path)
    for name in ("a", "b", "c"):
        torch.testing.assert_close(cache.get(name * 40), torch.full((1, 8, 4, 4), float(ord(name))))
    assert not list(tmp_path.glob("*/.tmp-*"))  # every temporary file renamed or removed


def test_a_truncated_entry_is_recomputed_and_rewritten(tmp_path):
    image = np.random.default_rng(3).integers(0, 255, (40, 40), dtype=np.uint8)
    first = Predictor(tiny_model(0), disk_cache=DiskEmbeddingCache(tmp_path))
    first.set_image(image)
    expected = first.image_embedding.embedding
    (path,) = tmp_path.glob("*/*.pt")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    second = Predictor(tiny_model(0), disk_cache=DiskEmbeddingCache(tmp_path))
    second.set_image(image)
    assert second.disk_cache.misses == 1
    torch.testing.assert_close(second.image_embedding.embedding, expected)
    third = DiskEmbeddingCache(tmp_path)
    (key,) = [entry.stem for entry in tmp_path.glob("*/*.pt")]
    torch.testing.assert_close(third.get(key), expected)  # the rewritten file is whole
