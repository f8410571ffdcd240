"""Interactive 2D segmentation: embed an image once, then decode any number of prompts.

>>> predictor = Predictor(samforge.load_model("sam_vit_b"))
>>> predictor.set_image(ct_slice, intensity="ct", window="soft_tissue")
>>> result = predictor.predict(boxes=[[40, 60, 120, 140]])
>>> result.masks.shape   # (objects, masks per object, H, W)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.intensity import IntensityMapping, normalize_intensity
from ..errors import InputImageError
from ..models.build import SamModel
from ..models.embeddings import Embeddings, to_device
from .disk_cache import DiskEmbeddingCache
from .embedding_cache import EmbeddingCache, content_key, model_state_key
from .prompts_validation import PromptBatch, validate_prompts


@dataclass(frozen=True)
class Prediction:
    """Masks for B objects, M masks each (M = 3 with multimask output, else 1; always 1
    for SAM-UNet).

    masks: (B, M, H, W) bool at the original resolution; scores: (B, M) predicted IoU (NaN
    for models without an IoU head, e.g. SAM-UNet); low_res_logits: (B, M, s, s) logits in
    the model frame, to feed back as ``mask_input``; logits: (B, M, H, W) float logits when
    asked for with ``return_logits``.
    """

    masks: np.ndarray
    scores: np.ndarray
    low_res_logits: np.ndarray
    logits: np.ndarray | None = None

    def best(self) -> Prediction:
        """Keep, per object, the mask with the highest predicted IoU (M becomes 1)."""
        index = self.scores.argmax(axis=1)
        rows = np.arange(len(index))

        def pick(array):
            return None if array is None else array[rows, index][:, None]

        return Prediction(
            pick(self.masks), pick(self.scores), pick(self.low_res_logits), pick(self.logits)
        )


@dataclass(frozen=True)
class ImageEmbedding:
    """An image's embeddings and the original (H, W) it came from.

    ``embedding`` is what the model's ``embed_images`` returns for one image: a (1, C, h, w)
    tensor, or for RobustSAM and SAM-UNet a dict of batch-first tensors
    (:mod:`samforge.models.embeddings`).
    """

    embedding: Embeddings
    original_size: tuple[int, int]


class Predictor:
    """Segments objects in one 2D image at a time from points, boxes and mask prompts.

    ``set_image`` accepts (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) arrays of any integer or
    float dtype and maps them to SAM's 0–255 RGB input with
    :func:`samforge.data.intensity.normalize_intensity` (``intensity="auto"`` by default:
    uint8 passes through, other data is clipped to its 1st–99th percentiles; ``"ct"`` with a
    ``window`` preset for CT). Embeddings are cached by image content, so returning to an
    image costs nothing.
    """

    def __init__(
        self,
        model: SamModel,
        *,
        intensity: str = "auto",
        window: str | tuple[float, float] | None = None,
        cache_size: int = 8,
        disk_cache: DiskEmbeddingCache | None = None,
    ) -> None:
        self.model = model.eval()
        self.transform = model.config.input_transform()
        self.intensity = intensity
        self.window = window
        self.cache = EmbeddingCache(cache_size)
        self.disk_cache = disk_cache
        self._current: ImageEmbedding | None = None

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def low_res_size(self) -> int:
        return 4 * self.model.config.embedding_size

    @property
    def image_embedding(self) -> ImageEmbedding:
        if self._current is None:
            raise InputImageError("no image is set: call predictor.set_image(image) first.")
        return self._current

    def set_image(
        self,
        image: np.ndarray,
        *,
        intensity: str | None = None,
        window: str | tuple[float, float] | None = None,
        modality: str | None = None,
        mapping: IntensityMapping | None = None,
    ) -> None:
        """Embed a 2D image (see the class docstring for accepted inputs).

        ``mapping`` replaces ``intensity``/``window`` with a mapping computed once for a
        whole volume (:func:`samforge.data.intensity.volume_normalizer`), so that every
        slice of the volume is normalised alike.
        """
        image = _as_image_array(image)
        intensity = intensity or self.intensity
        window = window if window is not None else self.window
        settings = mapping if mapping is not None else (intensity, window, modality)
        content = content_key(image, settings, self.model.config.preprocessing)
        key = (model_state_key(self.model), content)
        embedding = self.cache.get(key)
        if embedding is None:
            disk_key = None if self.disk_cache is None else self.disk_cache.key(self.model, content)
            if disk_key is not None:
                embedding = self.disk_cache.get(disk_key)
                if embedding is not None:
                    embedding = to_device(embedding, self.device)
            if embedding is None:
                if mapping is not None:
                    rgb = mapping(image)
                else:
                    rgb = normalize_intensity(
                        image, mode=intensity, window=window, modality=modality
                    )
                embedding = self.embed_rgb(rgb)
                if disk_key is not None:
                    self.disk_cache.put(disk_key, embedding)
            self.cache.put(key, embedding)
        self._current = ImageEmbedding(embedding, (int(image.shape[0]), int(image.shape[1])))

    def set_embedding(self, embedding: ImageEmbedding) -> None:
        """Use an embedding computed earlier (e.g. from a cache on disk)."""
        self._current = embedding

    @torch.inference_mode()
    def embed_rgb(self, rgb: np.ndarray) -> Embeddings:
        """(H, W, 3) float image in [0, 255] -> the model's embeddings of it (batch 1)."""
        tensor = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32))
        tensor = tensor.permute(2, 0, 1)[None].to(self.device)
        return self.model.embed_images(self.transform.image(tensor))

    def predict(
        self,
        points=None,
        labels=None,
        boxes=None,
        mask_input=None,
        multimask: bool = False,
        return_logits: bool = False,
    ) -> Prediction:
        """Segment B objects at once.

        Args:
            points: (N, 2) or (B, N, 2) pixel coordinates (x, y) of the original image.
            labels: (N,) or (B, N): 1 foreground, 0 background, −1 padding.
            boxes: (4,) or (B, 4) boxes x0, y0, x1, y1 (end exclusive) in pixels.
            mask_input: (s, s), (1, s, s) or (B, 1, s, s) low-resolution logits from an
                earlier ``Prediction.low_res_logits`` (s = 256 for SAM).
            multimask: three masks per object (best for a single ambiguous point).
            return_logits: also return the full-resolution logits.
        """
        current = self.image_embedding
        batch = validate_prompts(
            current.original_size, self.low_res_size, points, labels, boxes, mask_input
        )
        logits, scores, low_res = self.predict_torch(batch, multimask)
        masks = logits > self.model.mask_threshold
        return Prediction(
            masks=masks.cpu().numpy(),
            scores=scores.float().cpu().numpy(),
            low_res_logits=low_res.float().cpu().numpy(),
            logits=logits.float().cpu().numpy() if return_logits else None,
        )

    @torch.inference_mode()
    def predict_torch(
        self, prompts: PromptBatch, multimask: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Validated prompts in original pixels -> full-resolution logits (B, M, H, W),
        IoU predictions (B, M; NaN where the model predicts none) and low-resolution logits
        (B, M, s, s)."""
        current = self.image_embedding
        size = current.original_size
        device = self.device
        points = None
        if prompts.points is not None:
            coords = self.transform.coords(prompts.points.to(device), size)
            points = (coords, prompts.labels.to(device).long())
        boxes = None
        if prompts.boxes is not None:
            boxes = self.transform.boxes(prompts.boxes.to(device), size)
        mask_input = None if prompts.mask_input is None else prompts.mask_input.to(device)
        low_res, scores = self.model.decode(
            current.embedding, points, boxes, mask_input, multimask_output=multimask
        )
        if scores is None:  # no IoU head (SAM-UNet): unknown quality, not zero
            scores = low_res.new_full(low_res.shape[:2], float("nan"))
        return self.transform.masks(low_res, size), scores, low_res


def _as_image_array(image) -> np.ndarray:
    array = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image)
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        pass
    elif array.ndim != 2:
        hint = " For a volume, pass one slice, e.g. volume[12]." if array.ndim == 3 else ""
        raise InputImageError(
            f"image has shape {array.shape}; expected (H, W), (H, W, 1), (H, W, 3) or "
            f"(H, W, 4).{hint}"
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise InputImageError(f"image has shape {array.shape}: it is empty.")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise InputImageError(
            f"image has dtype {array.dtype}; expected an integer or float intensity image."
        )
    return array
