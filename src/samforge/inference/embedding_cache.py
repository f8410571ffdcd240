"""In-memory cache of image embeddings keyed by image content and model state.

Entries are whatever ``embed_images`` returns: a tensor, or a dict of tensors (RobustSAM,
SAM-UNet); the cache stores them as they are.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Hashable

import numpy as np
from torch import nn

from ..models.sam.embeddings import Embeddings


def content_key(array: np.ndarray, *settings: Hashable) -> str:
    """A digest of an array's values, shape and dtype plus the settings that change its
    embedding (normalisation mode, window, ...)."""
    digest = hashlib.blake2b(digest_size=16)
    contiguous = np.ascontiguousarray(array)
    digest.update(repr((contiguous.shape, contiguous.dtype.str, settings)).encode())
    digest.update(contiguous.data)
    return digest.hexdigest()


def model_state_key(model: nn.Module) -> tuple[int, int]:
    """Identity of a model and its current weights, at no cost.

    PyTorch bumps a tensor's version counter on every in-place change (optimiser steps,
    ``load_state_dict``), so the sum of the counters changes whenever the weights do and
    an embedding computed before fine-tuning is never served after it.
    """
    return id(model), sum(parameter._version for parameter in model.parameters())


class EmbeddingCache:
    """A small LRU map from (model state, image content) to embeddings."""

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple, Embeddings] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple) -> Embeddings | None:
        embedding = self._entries.get(key)
        if embedding is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return embedding

    def put(self, key: tuple, embedding: Embeddings) -> None:
        if self.capacity <= 0:
            return
        self._entries[key] = embedding
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
