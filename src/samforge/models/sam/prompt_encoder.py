"""SAM's prompt encoder: points and box corners become sparse tokens, a low-resolution
mask becomes a dense embedding.

Point labels: 1 foreground, 0 background, −1 padding (ignored), 2 and 3 top-left and
bottom-right box corners (the ONNX convention, so boxes can ride along with points).
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn

from ..config import SamConfig
from .common import LayerNorm2d


class PositionEmbeddingRandom(nn.Module):
    """Fourier features of normalised (x, y) coordinates with a fixed random matrix."""

    positional_encoding_gaussian_matrix: torch.Tensor  # a buffer

    def __init__(self, num_pos_feats: int = 64, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer(
            "positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats))
        )

    def _encode(self, coords: torch.Tensor) -> torch.Tensor:
        """(..., 2) coordinates in [0, 1] -> (..., 2·num_pos_feats)."""
        coords = 2 * coords - 1
        coords = coords @ self.positional_encoding_gaussian_matrix.to(coords.dtype)
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """Encoding of every cell centre of an (h, w) grid: (C, h, w)."""
        height, width = size
        device = self.positional_encoding_gaussian_matrix.device
        y = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
        x = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
        grid = torch.stack(torch.meshgrid(x, y, indexing="xy"), dim=-1)  # (h, w, 2) as (x, y)
        return self._encode(grid).permute(2, 0, 1)

    def forward_with_coords(
        self, coords: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """(B, N, 2) pixel coordinates (x, y) in an image of (H, W) -> (B, N, C)."""
        coords = coords.clone().float()
        coords[..., 0] = coords[..., 0] / image_size[1]
        coords[..., 1] = coords[..., 1] / image_size[0]
        return self._encode(coords)


class PromptEncoder(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        image_embedding_size: tuple[int, int],
        input_image_size: tuple[int, int],
        mask_in_chans: int,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.input_image_size = input_image_size
        self.image_embedding_size = image_embedding_size
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        # 0: background point, 1: foreground point, 2: top-left corner, 3: bottom-right corner.
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)
        self._dense_pe_cache: dict[tuple, torch.Tensor] = {}

    @classmethod
    def from_config(cls, config: SamConfig) -> PromptEncoder:
        grid = config.embedding_size
        return cls(
            embed_dim=config.prompt_embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(config.image_size, config.image_size),
            mask_in_chans=config.mask_in_chans,
        )

    def get_dense_pe(self) -> torch.Tensor:
        """Positional encoding of the image embedding grid: (1, C, h, w).

        It depends only on the grid size and the (fixed) Gaussian matrix, so it is computed
        once and reused while the matrix is unchanged; a cache, not state: the key holds
        everything that determines the value."""
        matrix = self.pe_layer.positional_encoding_gaussian_matrix
        key = (
            self.image_embedding_size,
            matrix.device,
            matrix.data_ptr(),
            matrix._version,
            # Tensors made under inference_mode cannot enter autograd (training) later.
            torch.is_inference_mode_enabled(),
        )
        cached = self._dense_pe_cache.get(key)
        if cached is None:
            cached = self.pe_layer(self.image_embedding_size).unsqueeze(0)
            self._dense_pe_cache.clear()  # one grid per model: keep only the newest
            self._dense_pe_cache[key] = cached
        return cached

    def _embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        """(B, N, 2) points, (B, N) labels -> (B, N (+1 if pad), C)."""
        points = points + 0.5  # centre of the pixel
        if pad:
            points = torch.cat([points, points.new_zeros(points.shape[0], 1, 2)], dim=1)
            labels = torch.cat([labels, -labels.new_ones(labels.shape[0], 1)], dim=1)
        embedding = self.pe_layer.forward_with_coords(points, self.input_image_size)
        labels = labels[..., None]
        embedding = torch.where(labels == -1, self.not_a_point_embed.weight, embedding)
        for label in range(len(self.point_embeddings)):
            embedding = embedding + (labels == label) * self._point_embedding(label)
        return embedding

    def _embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """(B, 4) boxes x0, y0, x1, y1 -> (B, 2, C) corner tokens."""
        corners = boxes.reshape(-1, 2, 2) + 0.5
        embedding = self.pe_layer.forward_with_coords(corners, self.input_image_size)
        embedding[:, 0, :] += self._point_embedding(2)[0]
        embedding[:, 1, :] += self._point_embedding(3)[0]
        return embedding

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed any combination of prompts for B objects.

        Args:
            points: (coords (B, N, 2) in input-image pixels (x, y), labels (B, N)).
            boxes: (B, 4) in input-image pixels.
            masks: (B, 1, 4h, 4w) low-resolution mask logits.

        Returns:
            sparse (B, N', C) tokens and dense (B, C, h, w) embeddings.
        """
        batch = _batch_size(points, boxes, masks)
        sparse = [torch.empty(batch, 0, self.embed_dim, device=self._device)]
        if points is not None:
            sparse.append(self._embed_points(points[0], points[1], pad=boxes is None))
        if boxes is not None:
            sparse.append(self._embed_boxes(boxes))
        height, width = self.image_embedding_size
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, height, width)
        return torch.cat(sparse, dim=1), dense

    def _point_embedding(self, label: int) -> torch.Tensor:
        """(1, C) learned embedding of point label 0–3 (the ModuleList holds nn.Embedding)."""
        return cast(nn.Embedding, self.point_embeddings[label]).weight

    @property
    def _device(self) -> torch.device:
        return self._point_embedding(0).device


def _batch_size(points, boxes, masks) -> int:
    if points is not None:
        return points[0].shape[0]
    if boxes is not None:
        return boxes.shape[0]
    if masks is not None:
        return masks.shape[0]
    return 1
