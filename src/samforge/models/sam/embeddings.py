"""What ``embed_images`` returns, for every model family.

Plain SAM (and SAM-Med2D) returns the image embedding itself, a (B, 256, h, w) tensor.
Families whose decoder needs more of the encoder return a dict with the embedding under
``"image_embeddings"`` plus their extras, every tensor batch-first, so generic code can
slice, repeat, move and cache embeddings with ``torch.utils._pytree.tree_map`` without
knowing the family:

- RobustSAM: ``"early_features"`` (B, D, h, w), the tokens after the first global ViT
  block;
- SAM-UNet: ``"multi_scale_features"`` (B, 32, 4h, 4w), the sum of its bridges.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch.utils._pytree import tree_map

from ...errors import EmbeddingError

IMAGE_EMBEDDINGS = "image_embeddings"

Embeddings = torch.Tensor | dict[str, torch.Tensor]


def image_embeddings(embeddings: Embeddings) -> torch.Tensor:
    """The (B, 256, h, w) image embedding of any family's embeddings."""
    if isinstance(embeddings, torch.Tensor):
        return embeddings
    return require(embeddings, (IMAGE_EMBEDDINGS,), "these embeddings")[IMAGE_EMBEDDINGS]


def require(embeddings: Embeddings, keys: tuple[str, ...], family: str) -> Mapping:
    """The embeddings as a mapping holding ``keys``; raises with what is missing."""
    if not isinstance(embeddings, Mapping):
        raise EmbeddingError(
            f"{family} needs the dict of tensors its embed_images returns (keys {list(keys)}), "
            f"got a {type(embeddings).__name__}; embed the image with this model (embeddings "
            "of another model family do not fit)."
        )
    missing = [key for key in keys if key not in embeddings]
    if missing:
        raise EmbeddingError(
            f"{family} embeddings lack {missing} (they hold {sorted(embeddings)}); embed the "
            "image with this model's embed_images."
        )
    return embeddings


def require_tensor(embeddings: Embeddings, family: str) -> torch.Tensor:
    """The embeddings of a family that returns the image embedding alone (plain SAM);
    raises if they are another family's dict."""
    if not isinstance(embeddings, torch.Tensor):
        raise EmbeddingError(
            f"{family} needs the (B, 256, h, w) tensor its embed_images returns, got a dict "
            f"(keys {sorted(embeddings)}); embed the image with this model (embeddings of "
            "another model family do not fit)."
        )
    return embeddings


def to_device(embeddings: Embeddings, device: torch.device | str) -> Embeddings:
    return tree_map(lambda tensor: tensor.to(device), embeddings)


def detached_cpu(embeddings: Embeddings) -> Embeddings:
    return tree_map(lambda tensor: tensor.detach().cpu(), embeddings)


def is_embeddings(value: object) -> bool:
    """Whether ``value`` is a tensor or a dict of tensors holding an image embedding."""
    if isinstance(value, torch.Tensor):
        return True
    return (
        isinstance(value, Mapping)
        and IMAGE_EMBEDDINGS in value
        and all(isinstance(tensor, torch.Tensor) for tensor in value.values())
    )
