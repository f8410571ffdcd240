"""Interactive 2D evaluation: the MedicoSAM / micro-sam protocol.

For one image: the objects are the connected components of each class with at least
``min_size`` pixels, 8-connected by default (``skimage.measure.label``'s default, with which
medico-sam turns semantic labels into objects; ``connectivity=1`` gives 4-connected ones).
All objects are prompted at once, in ONE batched decoder call per round on ONE image
embedding:

1. Start with the exact bounding box (single mask), or one positive point at the innermost
   pixel of the object (multimask; the mask with the best predicted IoU is kept).
2. Then ``rounds − 1`` corrections: each adds one positive point drawn uniformly from the
   false negatives and one negative point from the false positives (with the fallbacks of
   :func:`samforge.prompts.correction_regions`). Points accumulate; the box stays; with
   ``use_masks`` the previous low-resolution logits are fed back as the mask prompt.
3. After every round, Dice between the union of a class's predicted objects and the class
   mask. A dataset's figure is the mean over images of the per-image mean over classes.

Images without any object are skipped.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch

from ..data import IntensityMapping, instances_from_labels
from ..errors import ConfigError
from ..inference import Predictor
from ..prompts import Prompts, box_from_masks, center_points, wants_multimask
from .metrics import dice

START_PROMPTS: tuple[str, ...] = ("box", "point")


@dataclass(frozen=True)
class InteractiveSettings:
    """The protocol's knobs (defaults: MedicoSAM's evaluation).

    Attributes:
        start: ``"box"`` or ``"point"``.
        rounds: predictions per object in all (the start plus ``rounds − 1`` corrections).
        use_masks: feed the previous low-resolution logits back as a mask prompt.
        min_size: smallest connected component (pixels) that counts as an object.
        connectivity: 2 (8-connected objects, medico-sam's) or 1 (4-connected).
        seed: correction points are drawn from a generator seeded by this and the image name,
            so an image gets the same points whatever else is evaluated around it.
    """

    start: str = "box"
    rounds: int = 8
    use_masks: bool = False
    min_size: int = 20
    seed: int = 0
    connectivity: int = 2

    def __post_init__(self) -> None:
        if self.start not in START_PROMPTS:
            raise ConfigError(f"start prompt must be one of {START_PROMPTS}; got {self.start!r}.")
        if self.rounds < 1:
            raise ConfigError(f"rounds must be ≥ 1 (the start prompt counts); got {self.rounds}.")
        if self.min_size < 1:
            raise ConfigError(f"min_size must be ≥ 1 pixel; got {self.min_size}.")
        if self.connectivity not in (1, 2):
            raise ConfigError(
                f"connectivity must be 2 (8-connected) or 1 (4-connected); got {self.connectivity}."
            )

    def generator(self, name: str) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32(name.encode()))


@dataclass(frozen=True)
class ImageResult:
    """Per-class Dice of one image after every round.

    Attributes:
        class_ids: (K,) classes with at least one object.
        num_objects: (K,) objects per class.
        dice: (K, R) Dice of class k after round r.
        prediction: (H, W) int label map of the last round (class id where predicted; a
            later object of the batch wins an overlap), for overlays.
    """

    class_ids: np.ndarray
    num_objects: np.ndarray
    dice: np.ndarray
    prediction: np.ndarray

    @property
    def image_dice(self) -> np.ndarray:
        """(R,) mean over classes: the image's figure per round."""
        return self.dice.mean(axis=0)


def object_masks(
    label: np.ndarray, min_size: int = 20, connectivity: int = 2
) -> tuple[torch.Tensor, np.ndarray]:
    """Objects of a (H, W) label map: masks (B, H, W) bool and their class ids (B,)."""
    instances = instances_from_labels(label, min_size=min_size, connectivity=connectivity)
    if not instances:
        return torch.zeros((0, *label.shape), dtype=torch.bool), np.zeros(0, dtype=np.int64)
    masks = torch.from_numpy(np.stack([instance.mask for instance in instances]))
    return masks, np.array([instance.class_id for instance in instances], dtype=np.int64)


def interactive_rounds(
    predictor: Predictor,
    masks: torch.Tensor,
    settings: InteractiveSettings,
    generator: torch.Generator,
) -> list[torch.Tensor]:
    """Prompt and correct B objects of the image set on ``predictor``.

    Args:
        masks: (B, H, W) bool true object masks, B ≥ 1.

    Returns:
        ``settings.rounds`` predictions, each (B, H, W) bool.
    """
    if settings.start == "box":
        prompts = Prompts(boxes=box_from_masks(masks))
    else:
        points = center_points(masks)[:, None]  # (B, 1, 2)
        prompts = Prompts(points, torch.ones(points.shape[:2]))
    # A single point is ambiguous (SAM's paper): ask for 3 masks and keep the best.
    multimask = wants_multimask(prompts)
    predictions: list[torch.Tensor] = []
    for round_index in range(settings.rounds):
        if round_index > 0:
            prompts = prompts.corrected(predictions[-1], masks, generator)
            multimask = False
        best = predictor.decode(prompts, multimask).best()
        predictions.append(best.masks[:, 0].cpu())
        if settings.use_masks:
            prompts = prompts.with_mask(best.low_res_logits.float())
    return predictions


def evaluate_image(
    predictor: Predictor,
    image: np.ndarray,
    label: np.ndarray,
    settings: InteractiveSettings,
    *,
    name: str,
    mapping: IntensityMapping | None = None,
    intensity: str | None = None,
    modality: str | None = None,
) -> ImageResult | None:
    """Run the protocol on one (H, W[, C]) image with its (H, W) label map.

    ``mapping``/``intensity``/``modality`` go to :meth:`Predictor.set_image`. Returns None
    when the image has no object (it is skipped).
    """
    masks, class_ids = object_masks(label, settings.min_size, settings.connectivity)
    if len(masks) == 0:
        return None
    predictor.set_image(image, mapping=mapping, intensity=intensity, modality=modality)
    predictions = interactive_rounds(predictor, masks, settings, settings.generator(name))
    classes = np.unique(class_ids)
    scores = np.zeros((len(classes), settings.rounds))
    for k, class_id in enumerate(classes):
        target = label == class_id
        chosen = torch.from_numpy(class_ids == class_id)
        for r, prediction in enumerate(predictions):
            union = prediction[chosen].any(dim=0).numpy()
            scores[k, r] = dice(union, target)
    final = np.zeros(label.shape, dtype=np.int64)
    for index, class_id in enumerate(class_ids):
        final[predictions[-1][index].numpy()] = class_id
    counts = np.array([(class_ids == c).sum() for c in classes])
    return ImageResult(classes, counts, scores, final)


def result_rows(result: ImageResult, **fields) -> list[dict]:
    """Long-format rows, one per (class, round): ``fields`` + class_id, num_objects,
    round (1-based), dice."""
    rows = []
    for k, class_id in enumerate(result.class_ids):
        for r in range(result.dice.shape[1]):
            rows.append(
                {
                    **fields,
                    "class_id": int(class_id),
                    "num_objects": int(result.num_objects[k]),
                    "round": r + 1,
                    "dice": float(result.dice[k, r]),
                }
            )
    return rows
