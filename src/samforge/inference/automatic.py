"""Segment everything: masks for every object of an image from a grid of point prompts, as
SAM's ``SamAutomaticMaskGenerator`` makes them, decoded in batches by the Predictor.

>>> generator = AutomaticMaskGenerator(Predictor(samforge.load_model("sam_vit_b")))
>>> records = generator.generate(image)          # one dict per mask, the official keys
>>> labels, ordered = instance_label_map(records, image.shape[:2])

For every crop (the whole image, then ``crop_n_layers`` layers of overlapping crops) the
crop is embedded and each grid point is decoded with three masks; masks are kept when their
predicted IoU exceeds ``pred_iou_thresh``, their stability score reaches
``stability_score_thresh`` and their box does not touch a crop edge inside the image;
duplicates are removed by box NMS within each crop (best predicted IoU first) and between
crops (smaller crops first); with ``min_mask_region_area`` small holes and islands are
removed and NMS runs once more (untouched masks first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import torch

from ..data import IntensityMapping
from ..errors import ConfigError
from ..prompts import Prompts
from .mask_geometry import (
    box_nms,
    crop_boxes,
    layer_point_grids,
    masks_to_boxes,
    near_crop_edge,
    remove_small_regions,
    stability_scores,
)
from .prediction import Prediction
from .predictor import Predictor, _as_image_array


@dataclass(frozen=True)
class AutomaticSettings:
    """The official generator's settings, with its defaults (chosen there for ViT-H).

    points_per_side: grid points along each side of a crop (n² points per crop).
    points_per_batch: points decoded together (memory, not results, depends on it).
    pred_iou_thresh: keep masks whose predicted IoU is above this (0 keeps all).
    stability_score_thresh: keep masks whose stability score (IoU of the mask cut at
        ±``stability_score_offset`` around the logit threshold) reaches this (0 keeps all).
    box_nms_thresh: box IoU above which a mask duplicates a better one of the same crop.
    crop_n_layers: layers of crops after the whole image; layer i has 2^i × 2^i crops.
    crop_nms_thresh: box IoU above which masks of different crops are duplicates.
    crop_overlap_ratio: overlap of neighbouring crops in layer 1, as a fraction of the
        image's short side (halved with each further layer).
    crop_n_points_downscale_factor: layer i gets points_per_side / factor^i points a side.
    min_mask_region_area: fill holes and drop islands smaller than this (pixels; 0: off).
    """

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    min_mask_region_area: int = 0

    def __post_init__(self) -> None:
        for name in ("points_per_side", "points_per_batch", "crop_n_points_downscale_factor"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1; got {getattr(self, name)}.")
        for name in ("crop_n_layers", "min_mask_region_area"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more; got {getattr(self, name)}.")
        for name in ("box_nms_thresh", "crop_nms_thresh", "crop_overlap_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must lie in [0, 1]; got {getattr(self, name)}.")
        if self.points_per_side // self.crop_n_points_downscale_factor**self.crop_n_layers < 1:
            raise ConfigError(
                f"crop layer {self.crop_n_layers} would get no points: lower crop_n_layers or "
                "crop_n_points_downscale_factor, or raise points_per_side."
            )

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in fields(cls))


@dataclass
class _Candidates:
    """Masks kept so far: N masks, each (h, w) bool over its crop box, with (N, 4) boxes in
    image pixels (inclusive), (N,) predicted IoU and stability, (N, 2) points (x, y) in image
    pixels and (N, 4) crop boxes (x0, y0, x1, y1, end exclusive)."""

    masks: list[torch.Tensor]
    boxes: torch.Tensor
    scores: torch.Tensor
    stability: torch.Tensor
    points: torch.Tensor
    crops: torch.Tensor

    @classmethod
    def concatenate(cls, parts: list[_Candidates]) -> _Candidates:
        if not parts:
            return cls([], torch.zeros(0, 4), torch.zeros(0), torch.zeros(0), torch.zeros(0, 2),
                       torch.zeros(0, 4, dtype=torch.long))  # fmt: skip
        return cls(
            [mask for part in parts for mask in part.masks],
            *(torch.cat([getattr(part, name) for part in parts]) for name in _TENSOR_FIELDS),
        )

    def select(self, keep: torch.Tensor) -> _Candidates:
        """The candidates at ``keep`` (bool (N,) or indices), in that order."""
        indices = torch.as_tensor(keep).cpu()
        if indices.dtype == torch.bool:
            indices = indices.nonzero().flatten()
        return _Candidates(
            [self.masks[i] for i in indices.tolist()],
            *(getattr(self, name)[indices] for name in _TENSOR_FIELDS),
        )

    def full_mask(self, index: int, image_size: tuple[int, int]) -> np.ndarray:
        """Mask ``index`` as an (H, W) bool array of the whole image."""
        x0, y0, x1, y1 = self.crops[index].tolist()
        full = np.zeros(image_size, dtype=bool)
        full[y0:y1, x0:x1] = self.masks[index].numpy()
        return full


_TENSOR_FIELDS = ("boxes", "scores", "stability", "points", "crops")


class AutomaticMaskGenerator:
    """Masks of every object in an image (see the module docstring).

    Args:
        predictor: embeds each crop and decodes the grid points; its intensity settings map
            the image once, and every crop is taken from that mapped image.
        settings: :class:`AutomaticSettings` (default: the official defaults); keyword
            arguments override single settings.
    """

    def __init__(
        self, predictor: Predictor, settings: AutomaticSettings | None = None, **overrides
    ) -> None:
        unknown = set(overrides) - set(AutomaticSettings.names())
        if unknown:
            raise ConfigError(
                f"unknown settings {sorted(unknown)}; choose from {AutomaticSettings.names()}."
            )
        settings = settings or AutomaticSettings()
        self.settings = AutomaticSettings(**{**vars(settings), **overrides})
        self.predictor = predictor
        self.point_grids = layer_point_grids(
            self.settings.points_per_side,
            self.settings.crop_n_layers,
            self.settings.crop_n_points_downscale_factor,
        )

    @torch.inference_mode()
    def generate(
        self,
        image: np.ndarray,
        *,
        mapping: IntensityMapping | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[dict]:
        """Masks of every object in a 2D image.

        Args:
            image: (H, W[, C]) as :meth:`Predictor.set_image` takes it.
            mapping: the intensity mapping (default: the predictor's for this image).
            progress: called with (crops done, crops) after each crop.

        Returns:
            one record per mask, in the official generator's order (its last NMS's: best
            first), with its keys: ``segmentation`` (H, W) bool, ``area`` pixels, ``bbox``
            [x, y, w, h] (w = x1 − x0 of the inclusive box), ``predicted_iou``,
            ``point_coords`` [[x, y]], ``stability_score`` and ``crop_box`` [x, y, w, h].
        """
        image = _as_image_array(image)
        if mapping is None:
            mapping = self.predictor.intensity_settings.image_mapping(image)
        size = (int(image.shape[0]), int(image.shape[1]))
        settings = self.settings
        boxes, layers = crop_boxes(size, settings.crop_n_layers, settings.crop_overlap_ratio)
        parts = []
        for number, (crop_box, layer) in enumerate(zip(boxes, layers, strict=True)):
            parts.append(self._crop_candidates(image, mapping, crop_box, layer, size))
            if progress is not None:
                progress(number + 1, len(boxes))
        candidates = _Candidates.concatenate(parts)
        if len(boxes) > 1:
            crop_areas = (candidates.crops[:, 2:] - candidates.crops[:, :2]).prod(1)
            keep = box_nms(candidates.boxes, 1 / crop_areas.double(), settings.crop_nms_thresh)
            candidates = candidates.select(keep)
        full_masks = [candidates.full_mask(i, size) for i in range(len(candidates.masks))]
        if settings.min_mask_region_area > 0:
            candidates, full_masks = self._without_small_regions(candidates, full_masks)
        return _records(candidates, full_masks)

    def _crop_candidates(
        self,
        image: np.ndarray,
        mapping: IntensityMapping,
        crop_box: list[int],
        layer: int,
        image_size: tuple[int, int],
    ) -> _Candidates:
        """Embed one crop, decode its grid, filter, and remove duplicates within the crop."""
        x0, y0, x1, y1 = crop_box
        self.predictor.set_image(image[y0:y1, x0:x1], mapping=mapping)
        points = self.point_grids[layer] * np.array([x1 - x0, y1 - y0])
        parts = []
        for start in range(0, len(points), self.settings.points_per_batch):
            batch = torch.as_tensor(points[start : start + self.settings.points_per_batch])
            prompts = Prompts(batch[:, None].float(), torch.ones(len(batch), 1))
            done = 0
            for prediction in self.predictor.decode_chunks(prompts, multimask=True):
                count = prediction.masks.shape[0]
                chunk_points = batch[done : done + count]
                parts.append(self._filter(prediction, chunk_points, crop_box, image_size))
                done += count
        candidates = _Candidates.concatenate(parts)
        keep = box_nms(candidates.boxes, candidates.scores, self.settings.box_nms_thresh)
        return candidates.select(keep)

    def _filter(
        self,
        prediction: Prediction[torch.Tensor],
        points: torch.Tensor,
        crop_box: list[int],
        image_size: tuple[int, int],
    ) -> _Candidates:
        """The masks of B points (3 each) that pass the quality filters, moved to the CPU."""
        settings = self.settings
        masks_per_point = prediction.masks.shape[1]
        assert prediction.logits is not None  # decode_chunks returns them
        logits = prediction.logits.flatten(0, 1)
        scores = prediction.scores.flatten(0, 1)
        points = points.repeat_interleave(masks_per_point, dim=0).to(scores.device)
        keep = scores > settings.pred_iou_thresh if settings.pred_iou_thresh > 0 else None
        if keep is not None:
            logits, scores, points = logits[keep], scores[keep], points[keep]
        threshold = self.predictor.model.mask_threshold
        stability = stability_scores(logits, threshold, settings.stability_score_offset)
        if settings.stability_score_thresh > 0:
            keep = stability >= settings.stability_score_thresh
            logits, scores, points, stability = (
                logits[keep], scores[keep], points[keep], stability[keep]
            )  # fmt: skip
        masks = logits > threshold
        boxes = masks_to_boxes(masks)
        keep = ~near_crop_edge(boxes, crop_box, image_size)
        offset = torch.tensor(crop_box[:2] * 2, dtype=torch.float, device=boxes.device)
        return _Candidates(
            list(masks[keep].cpu()),
            (boxes[keep] + offset).cpu(),
            scores[keep].float().cpu(),
            stability[keep].float().cpu(),
            (points[keep] + offset[:2]).cpu(),
            torch.tensor([crop_box], dtype=torch.long).expand(int(keep.sum()), 4),
        )

    def _without_small_regions(
        self, candidates: _Candidates, full_masks: list[np.ndarray]
    ) -> tuple[_Candidates, list[np.ndarray]]:
        """Remove small holes and islands, then NMS again preferring untouched masks."""
        cleaned, untouched = [], []
        for mask in full_masks:
            mask, changed = remove_small_regions(mask, self.settings.min_mask_region_area)
            cleaned.append(mask)
            untouched.append(float(not changed))
        if not cleaned:
            return candidates, full_masks
        boxes = masks_to_boxes(torch.from_numpy(np.stack(cleaned)))
        threshold = max(self.settings.box_nms_thresh, self.settings.crop_nms_thresh)
        keep = box_nms(boxes, torch.tensor(untouched), threshold)
        candidates.boxes = boxes
        return candidates.select(keep), [cleaned[i] for i in keep.tolist()]


def _records(candidates: _Candidates, full_masks: list[np.ndarray]) -> list[dict]:
    def xywh(box: list) -> list:
        return [box[0], box[1], box[2] - box[0], box[3] - box[1]]

    return [
        {
            "segmentation": mask,
            "area": int(mask.sum()),
            "bbox": xywh([int(v) for v in candidates.boxes[i].tolist()]),
            "predicted_iou": float(candidates.scores[i]),
            "point_coords": [candidates.points[i].tolist()],
            "stability_score": float(candidates.stability[i]),
            "crop_box": xywh(candidates.crops[i].tolist()),
        }
        for i, mask in enumerate(full_masks)
    ]


def instance_label_map(records: list[dict], image_size: tuple[int, int]):
    """(H, W) instance labels of generated masks, largest first: the largest mask is label
    1, the next 2, ...; where masks overlap the smaller one wins (it is painted later, as
    SAM's demo draws them).

    Returns:
        (label map uint16, the records in label order).
    """
    ordered = sorted(records, key=lambda record: record["area"], reverse=True)
    labels = np.zeros(image_size, dtype=np.uint16 if len(ordered) < 65536 else np.uint32)
    for label, record in enumerate(ordered, start=1):
        labels[record["segmentation"]] = label
    return labels, ordered
