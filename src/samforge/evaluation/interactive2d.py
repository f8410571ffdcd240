"""Interactive 2D evaluation: the MedicoSAM / micro-sam protocol.

For one image: the objects are the connected components of each class with at least
``min_size`` pixels, 8-connected by default (``skimage.measure.label``'s default, with which
medico-sam turns semantic labels into objects; ``connectivity=1`` gives 4-connected ones),
or, for a case published with one mask per object (``Case.objects``, SA-Med2D-20M), those
masks. All objects are prompted at once, in ONE batched decoder call per round on ONE
image embedding:

1. Start with the exact bounding box of the object's largest connected component (single
   mask; for a component that is its own box, and for a published mask it is the box
   SAM-Med2D's and SAM-UNet's tests prompt with), or one positive point at the innermost
   pixel of the object (multimask; the mask with the best predicted IoU is kept), or
   ``num_points`` random positive points (RobustMedSAM's evaluation: 3, single mask).
2. Then ``rounds − 1`` corrections: each adds one positive point drawn uniformly from the
   false negatives and one negative point from the false positives (with the fallbacks of
   :func:`samforge.prompts.correction_regions`). Points accumulate; the box stays; with
   ``use_masks`` the previous low-resolution logits are fed back as the mask prompt.
3. After every round, Dice between the union of a class's predicted objects and the class
   mask; for published masks, Dice of each mask's prediction with that mask (SAM-Med2D and
   SAM-UNet score per mask). A dataset's figure is the mean over images of the per-image
   mean over classes (or masks); the summary also gives the mean over masks.

Images without any object are skipped.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..data import IntensityMapping, MaskObject, largest_component_boxes, plane_instances
from ..errors import ConfigError
from ..inference import Predictor
from ..prompts import Prompts, center_points, positive_points, wants_multimask
from .metrics import dice

START_PROMPTS: tuple[str, ...] = ("box", "point")
RANDOM_POINTS = "random_points"
"""RobustMedSAM's start: ``num_points`` random positive points per object (not in
:data:`START_PROMPTS`, which ``--start both`` expands to)."""
ALL_STARTS: tuple[str, ...] = (*START_PROMPTS, RANDOM_POINTS)


@dataclass(frozen=True)
class InteractiveSettings:
    """The protocol's knobs (defaults: MedicoSAM's evaluation).

    Attributes:
        start: ``"box"``, ``"point"`` or ``"random_points"``.
        rounds: predictions per object in all (the start plus ``rounds − 1`` corrections).
        use_masks: feed the previous low-resolution logits back as a mask prompt.
        min_size: smallest connected component (pixels) that counts as an object.
        connectivity: 2 (8-connected objects, medico-sam's) or 1 (4-connected).
        seed: correction (and random start) points are drawn from a generator seeded by this
            and the image name, so an image gets the same points whatever else is evaluated
            around it.
        num_points: positive points of the ``random_points`` start.
    """

    start: str = "box"
    rounds: int = 8
    use_masks: bool = False
    min_size: int = 20
    seed: int = 0
    connectivity: int = 2
    num_points: int = 3

    def __post_init__(self) -> None:
        if self.start not in ALL_STARTS:
            raise ConfigError(f"start prompt must be one of {ALL_STARTS}; got {self.start!r}.")
        if self.num_points < 1:
            raise ConfigError(f"num_points must be ≥ 1; got {self.num_points}.")
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
        class_ids: (K,) classes with at least one object (per mask: each mask's class).
        num_objects: (K,) objects per class (per mask: 1).
        dice: (K, R) Dice of class (mask) k after round r.
        prediction: (H, W) int label map of the last round (class id where predicted; a
            later object of the batch wins an overlap), for overlays.
        mask_names: (K,) the scored masks' names when scored per mask, else empty.
    """

    class_ids: np.ndarray
    num_objects: np.ndarray
    dice: np.ndarray
    prediction: np.ndarray
    mask_names: tuple[str, ...] = ()

    @property
    def image_dice(self) -> np.ndarray:
        """(R,) mean over classes: the image's figure per round."""
        return self.dice.mean(axis=0)


def object_masks(
    label: np.ndarray,
    min_size: int = 20,
    objects: Sequence[MaskObject] | None = None,
    connectivity: int = 2,
) -> tuple[torch.Tensor, np.ndarray]:
    """Objects of a (H, W) label map, or its published masks when ``objects`` is given:
    masks (B, H, W) bool and their class ids (B,)."""
    masks, class_ids, _ = _objects(label, min_size, objects, connectivity)
    return masks, class_ids


def _objects(
    label: np.ndarray, min_size: int, objects: Sequence[MaskObject] | None, connectivity: int = 2
) -> tuple[torch.Tensor, np.ndarray, list[int]]:
    """Masks, class ids and the indices into ``objects`` of the objects kept."""
    instances = plane_instances(label, objects, min_size=min_size, connectivity=connectivity)
    if not instances:
        empty = torch.zeros((0, *label.shape), dtype=torch.bool)
        return empty, np.zeros(0, dtype=np.int64), []
    masks = torch.from_numpy(np.stack([instance.mask for instance in instances]))
    class_ids = np.array([instance.class_id for instance in instances], dtype=np.int64)
    kept = [] if objects is None else [i for i, o in enumerate(objects) if o.mask.sum() >= min_size]
    return masks, class_ids, kept


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
        prompts = Prompts(boxes=torch.from_numpy(largest_component_boxes(masks.numpy())))
    elif settings.start == RANDOM_POINTS:
        prompts = Prompts(*positive_points(masks, settings.num_points, generator))
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
    objects: Sequence[MaskObject] | None = None,
) -> ImageResult | None:
    """Run the protocol on one (H, W[, C]) image with its (H, W) label map.

    ``mapping``/``intensity``/``modality`` go to :meth:`Predictor.set_image`. With
    ``objects`` (the case's published masks), those are the objects and each is scored on
    its own. Returns None when the image has no object (it is skipped).
    """
    masks, class_ids, kept = _objects(label, settings.min_size, objects, settings.connectivity)
    if len(masks) == 0:
        return None
    predictor.set_image(image, mapping=mapping, intensity=intensity, modality=modality)
    predictions = interactive_rounds(predictor, masks, settings, settings.generator(name))
    final = np.zeros(label.shape, dtype=np.int64)
    for index, class_id in enumerate(class_ids):
        final[predictions[-1][index].numpy()] = class_id
    if objects is not None:
        scores = np.array(
            [[dice(p[k].numpy(), masks[k].numpy()) for p in predictions] for k in range(len(masks))]
        )
        names = tuple(objects[i].name for i in kept)
        return ImageResult(class_ids, np.ones(len(masks), dtype=np.int64), scores, final, names)
    classes = np.unique(class_ids)
    scores = np.zeros((len(classes), settings.rounds))
    for k, class_id in enumerate(classes):
        target = label == class_id
        chosen = torch.from_numpy(class_ids == class_id)
        for r, prediction in enumerate(predictions):
            union = prediction[chosen].any(dim=0).numpy()
            scores[k, r] = dice(union, target)
    counts = np.array([(class_ids == c).sum() for c in classes])
    return ImageResult(classes, counts, scores, final)


def result_rows(result: ImageResult, **fields) -> list[dict]:
    """Long-format rows, one per (class, round): ``fields`` + class_id, num_objects,
    round (1-based), dice; scored per mask, one per (mask, round) with ``object`` (its
    index) and ``mask`` (its name) after class_id."""
    rows = []
    for k, class_id in enumerate(result.class_ids):
        per_mask = {"object": k, "mask": result.mask_names[k]} if result.mask_names else {}
        for r in range(result.dice.shape[1]):
            rows.append(
                {
                    **fields,
                    "class_id": int(class_id),
                    **per_mask,
                    "num_objects": int(result.num_objects[k]),
                    "round": r + 1,
                    "dice": float(result.dice[k, r]),
                }
            )
    return rows
