"""Image embeddings cached on disk, shared across runs and processes.

An entry's name is a digest of everything that determines the embedding: the image content
and its normalisation settings (:func:`~samforge.inference.embedding_cache.content_key`) and
the model's weights and preprocessing (:func:`model_digest`). A file that exists therefore
always holds the right embedding, whichever run or process wrote it, and nothing ever needs
invalidating. Writes go to a temporary file in the same folder and are renamed into place
(``os.replace`` is atomic), so a crash never leaves a half-written entry under a real name;
an entry that is corrupt anyway (truncated copy, full disk) is treated as a miss and
rewritten.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import weakref
from pathlib import Path

import torch
from torch import nn

from ..files import save_torch_atomically
from ..models.sam.embeddings import Embeddings, detached_cpu, image_embeddings, is_embeddings
from .embedding_cache import model_state_key


def model_digest(model: nn.Module) -> str:
    """A digest of a model's class, weights and buffers (and config, when it has one).

    Unlike :func:`model_state_key` it is the same in every process that loads the same
    weights, so it can name files. Hashing reads every weight once (about a second for
    ViT-H); :class:`DiskEmbeddingCache` remembers it per model state.
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(type(model).__qualname__.encode())
    digest.update(repr(getattr(model, "config", None)).encode())
    for name, tensor in model.state_dict().items():
        # Flattened: 0-d tensors (batch-norm counters) cannot be viewed as bytes.
        array = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}{tuple(tensor.shape)}{array.dtype}".encode())
        digest.update(array.view(torch.uint8).numpy().tobytes() if array.numel() else b"")
    return digest.hexdigest()


class DiskEmbeddingCache:
    """A folder of ``<digest>.pt`` files holding embeddings: (1, C, h, w) tensors, or the
    dicts of tensors of RobustSAM and SAM-UNet.

    Args:
        root: the folder (created if missing); safe to share between processes.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        # Keyed by the model object itself (weakly), not by id(): ids are reused once a
        # model is freed, and a new model must never inherit another model's digest.
        self._digests: weakref.WeakKeyDictionary[nn.Module, tuple[int, str]] = (
            weakref.WeakKeyDictionary()
        )
        self.hits = 0
        self.misses = 0

    def key(self, model: nn.Module, content: str) -> str:
        """The entry name for an image ``content`` key embedded by ``model``."""
        _, version = model_state_key(model)
        known = self._digests.get(model)
        if known is None or known[0] != version:  # new model, or weights changed in place
            known = (version, model_digest(model))
            self._digests[model] = known
        return hashlib.blake2b(f"{known[1]}:{content}".encode(), digest_size=20).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pt"

    def get(self, key: str, image_shape: tuple[int, ...] | None = None) -> Embeddings | None:
        """The embedding stored under ``key``, or None (missing or unreadable: a miss).

        ``image_shape``, when given, is the (1, C, h, w) shape of the image embedding the
        model makes: an entry whose image embedding has another shape, or any tensor that
        is not a batch of one float map, is corrupt (a copied or hand-made file): a miss,
        with a warning, so the caller recomputes and overwrites it.
        """
        path = self.path(key)
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            embedding = entry["embedding"] if entry.get("key") == key else None
        except FileNotFoundError:
            embedding = None
        except Exception:
            # Truncated or corrupt (killed writer, copied half a folder): recompute and
            # overwrite rather than fail a long run.
            embedding = None
        if embedding is not None and is_embeddings(embedding) and image_shape is not None:
            problem = _shape_problem(embedding, image_shape)
            if problem is not None:
                warnings.warn(
                    f"embedding cache entry {path} {problem}: it is corrupt and is recomputed.",
                    stacklevel=2,
                )
                embedding = None
        if embedding is None or not is_embeddings(embedding):
            self.misses += 1
            return None
        self.hits += 1
        return embedding

    def put(self, key: str, embedding: Embeddings) -> None:
        """Store ``embedding`` under ``key`` atomically (temp file + rename)."""
        save_torch_atomically(self.path(key), {"key": key, "embedding": detached_cpu(embedding)})

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.pt"))


def _shape_problem(embedding: Embeddings, image_shape: tuple[int, ...]) -> str | None:
    """What is wrong with a cached embedding for a model making ``image_shape``, or None."""
    found = tuple(image_embeddings(embedding).shape)
    if found != tuple(image_shape):
        return f"holds a {found} image embedding where the model makes {tuple(image_shape)}"
    tensors = [embedding] if isinstance(embedding, torch.Tensor) else list(embedding.values())
    for tensor in tensors:
        if tensor.ndim != 4 or tensor.shape[0] != 1 or not tensor.is_floating_point():
            return f"holds a {tuple(tensor.shape)} {tensor.dtype} tensor, not one float map"
    return None
