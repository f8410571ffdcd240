"""Images larger than the model frame, embedded tile by tile, as micro-sam tiles them.

>>> tiled = TiledPredictor(Predictor(model), tile_shape=1024, halo=256)
>>> tiled.set_image(slide)                      # e.g. 4000 × 4000: nothing embedded yet
>>> tiled.predict(boxes=[[2950, 1010, 3120, 1240]]).masks.shape   # (1, 1, 4000, 4000)

The image is cut into a grid of ``tile_shape`` tiles; each tile is embedded together with a
``halo`` of its neighbours' pixels on every side (clipped at the image border), so that an
object crossing a tile border is still seen whole by the tile that holds its centre. An
object's prompts go to the tile containing the centre of its box (or the mean of its
points, when it has no box), as micro-sam's ``prompt_based_segmentation`` chooses; they are
shifted into that tile, decoded there, and the mask is placed back into image coordinates
(zero outside the tile and its halo).

Tiles are embedded only when a prompt needs them, through the wrapped Predictor, so its
memory cache (``cache_size`` tiles, LRU) and disk cache keep them: memory stays bounded by
the cache, whatever the image size. :meth:`TiledPredictor.embed_all` embeds every tile up
front (e.g. into a disk cache).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..data import IntensityMapping, IntensitySettings
from ..errors import ConfigError, InputImageError, PromptError
from ..prompts import Prompts
from .prediction import Prediction
from .predictor import PREDICTION_FIELDS, Predictor, _as_image_array


@dataclass(frozen=True)
class Tile:
    """One tile: ``inner`` (y0, x0, y1, x1) is its share of the grid, ``outer`` the same
    grown by the halo and clipped to the image (what is embedded); ends exclusive."""

    inner: tuple[int, int, int, int]
    outer: tuple[int, int, int, int]

    def contains(self, y: float, x: float) -> bool:
        y0, x0, y1, x1 = self.inner
        return y0 <= y < y1 and x0 <= x < x1


def tile_grid(image_size: tuple[int, int], tile_shape: int, halo: int) -> list[Tile]:
    """The tiles of an (H, W) image, row by row."""
    height, width = image_size
    tiles = []
    for y0 in range(0, height, tile_shape):
        for x0 in range(0, width, tile_shape):
            y1, x1 = min(y0 + tile_shape, height), min(x0 + tile_shape, width)
            outer = (
                max(y0 - halo, 0),
                max(x0 - halo, 0),
                min(y1 + halo, height),
                min(x1 + halo, width),
            )
            tiles.append(Tile((y0, x0, y1, x1), outer))
    return tiles


class TiledPredictor:
    """A :class:`Predictor` for images larger than the model frame (see the module docstring).

    Args:
        predictor: embeds and decodes each tile; its caches hold the tile embeddings.
        tile_shape: side of a tile in pixels (micro-sam's usual choice: 1024 with a ViT at
            1024²; the tile and its halo are resized to the model frame).
        halo: pixels of overlap added on every side of a tile (micro-sam: 256).
    """

    def __init__(self, predictor: Predictor, tile_shape: int = 1024, halo: int = 256) -> None:
        if tile_shape < 16:
            raise ConfigError(f"tile_shape must be at least 16 pixels; got {tile_shape}.")
        if not 0 <= halo < tile_shape:
            raise ConfigError(f"halo must lie in [0, tile_shape = {tile_shape}); got {halo}.")
        self.predictor = predictor
        self.tile_shape = tile_shape
        self.halo = halo
        self.tiles: list[Tile] = []
        self._image: np.ndarray | None = None
        self._mapping: IntensityMapping | None = None
        self._current: Tile | None = None

    @property
    def original_size(self) -> tuple[int, int]:
        if self._image is None:
            raise InputImageError("no image is set: call tiled.set_image(image) first.")
        return (int(self._image.shape[0]), int(self._image.shape[1]))

    def set_image(
        self,
        image: np.ndarray,
        *,
        intensity: str | None = None,
        window: str | tuple[float, float] | None = None,
        modality: str | None = None,
        mapping: IntensityMapping | None = None,
    ) -> None:
        """Take an (H, W[, C]) image (as :meth:`Predictor.set_image`); nothing is embedded
        yet. The intensity mapping is computed once from the whole image, so that every tile
        is normalised alike (``mapping`` replaces it, e.g. a volume's)."""
        image = _as_image_array(image)
        if mapping is None:
            settings = self.predictor.intensity_settings
            if intensity is not None or window is not None:
                settings = IntensitySettings(intensity or settings.mode, window or settings.window)
            mapping = settings.image_mapping(image, modality)
        self._image, self._mapping, self._current = image, mapping, None
        self.tiles = tile_grid(self.original_size, self.tile_shape, self.halo)

    def embed_all(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Embed every tile now (into the predictor's caches)."""
        for number, tile in enumerate(self.tiles):
            self._use(tile)
            if progress is not None:
                progress(number + 1, len(self.tiles))

    def tile_of(self, prompts: Prompts, index: int) -> Tile:
        """The tile that decodes object ``index``: the one holding its box centre, or the
        mean of its points without a box."""
        if prompts.boxes is not None:
            x0, y0, x1, y1 = prompts.boxes[index].tolist()
            x, y = (x0 + x1) / 2, (y0 + y1) / 2
        elif prompts.points is not None and prompts.labels is not None:
            given = prompts.points[index][prompts.labels[index] >= 0]
            x, y = given.mean(0).tolist()
        else:
            raise PromptError(
                "a mask prompt alone does not say which tile it belongs to: add the box or "
                "points it was made from."
            )
        height, width = self.original_size
        y, x = min(max(y, 0), height - 1), min(max(x, 0), width - 1)
        return next(tile for tile in self.tiles if tile.contains(y, x))

    def predict(self, points=None, labels=None, boxes=None, mask_input=None, multimask=False):
        """:meth:`Predictor.predict` for the whole image: masks (B, M, H, W) in image
        pixels, scores (B, M), low-resolution logits (B, M, s, s) in the frame of each
        object's tile (to feed back with the same prompts); no full-resolution logits."""
        prompts = Prompts.from_user(points, labels, boxes, mask_input)
        return self.decode(prompts, multimask).numpy(logits=False)

    def decode(self, prompts: Prompts, multimask: bool = False) -> Prediction[torch.Tensor]:
        """:meth:`Predictor.decode` over tiles; tensors on the CPU, logits left out (they
        would take 4 bytes per pixel per mask)."""
        parts = list(self._decode_tiles(prompts, multimask, with_logits=False))
        return Prediction(
            *(torch.cat([getattr(part, name) for part in parts]) for name in PREDICTION_FIELDS[:3])
        )

    def decode_chunks(
        self, prompts: Prompts, multimask: bool = False
    ) -> Iterator[Prediction[torch.Tensor]]:
        """:meth:`Predictor.decode_chunks` over tiles: runs of consecutive objects of one
        tile, in order, with full-resolution logits (−inf outside the tile and its halo)."""
        return self._decode_tiles(prompts, multimask, with_logits=True)

    def _decode_tiles(
        self, prompts: Prompts, multimask: bool, with_logits: bool
    ) -> Iterator[Prediction[torch.Tensor]]:
        size = self.original_size
        prompts.check_fits(size, self.predictor.low_res_size)
        tiles = [self.tile_of(prompts, index) for index in range(prompts.num_objects)]
        start = 0
        while start < len(tiles):
            end = start + 1
            while end < len(tiles) and tiles[end] == tiles[start]:
                end += 1
            tile = tiles[start]
            local = self._in_tile(prompts.select(slice(start, end)), tile, start)
            self._use(tile)
            for chunk in self.predictor.decode_chunks(local, multimask):
                yield _placed(chunk, tile, size, with_logits)
            start = end

    def _in_tile(self, prompts: Prompts, tile: Tile, first: int) -> Prompts:
        """Prompts shifted into ``tile``'s embedded region; refused if they reach outside."""
        y0, x0, y1, x1 = tile.outer
        offset = torch.tensor([x0, y0], dtype=torch.float32)
        points = boxes = None
        if prompts.points is not None and prompts.labels is not None:
            points = prompts.points - offset
            outside = ((points < 0) | (points >= torch.tensor([x1 - x0, y1 - y0]))).any(-1)
            outside &= prompts.labels >= 0
            if outside.any():
                _refuse(first + int(outside.any(-1).nonzero()[0]), tile, self)
        if prompts.boxes is not None:
            boxes = prompts.boxes - offset.repeat(2)
            limits = torch.tensor([0, 0, x1 - x0, y1 - y0], dtype=torch.float32)
            beyond = (boxes[:, :2] < limits[:2]).any(-1) | (boxes[:, 2:] > limits[2:]).any(-1)
            if beyond.any():
                _refuse(first + int(beyond.nonzero()[0]), tile, self)
        return replace(prompts, points=points, boxes=boxes)

    def _use(self, tile: Tile) -> None:
        if tile == self._current:
            return
        assert self._image is not None and self._mapping is not None  # set_image was called
        y0, x0, y1, x1 = tile.outer
        self.predictor.set_image(self._image[y0:y1, x0:x1], mapping=self._mapping)
        self._current = tile


def _refuse(index: int, tile: Tile, tiled: TiledPredictor) -> None:
    y0, x0, y1, x1 = tile.outer
    raise PromptError(
        f"object {index}'s prompts reach beyond its tile and halo (x {x0}–{x1}, y {y0}–{y1}): "
        f"one object must fit in a tile of {tiled.tile_shape} pixels plus a halo of "
        f"{tiled.halo}; use a larger tile_shape or halo (--tile, --halo)."
    )


def _placed(
    chunk: Prediction[torch.Tensor], tile: Tile, size: tuple[int, int], with_logits: bool
) -> Prediction[torch.Tensor]:
    """A tile's prediction with its masks (and logits) placed in the whole image."""
    y0, x0, y1, x1 = tile.outer
    batch, count = chunk.masks.shape[:2]
    masks = torch.zeros(batch, count, *size, dtype=torch.bool)
    masks[..., y0:y1, x0:x1] = chunk.masks.cpu()
    logits = None
    if with_logits and chunk.logits is not None:
        logits = torch.full((batch, count, *size), float("-inf"))
        logits[..., y0:y1, x0:x1] = chunk.logits.float().cpu()
    return Prediction(masks, chunk.scores.cpu(), chunk.low_res_logits.cpu(), logits)


def tiled_if_needed(
    predictor: Predictor, tile_shape: int | None, halo: int
) -> Predictor | TiledPredictor:
    """``predictor`` itself without a tile shape, else wrapped in a :class:`TiledPredictor`."""
    return predictor if tile_shape is None else TiledPredictor(predictor, tile_shape, halo)
