"""The one prompt record: what SAM is asked about B objects of one image."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

from ..errors import PromptError
from .sampler import correction_points
from .user_input import (
    check_boxes_inside,
    check_mask_size,
    check_points_inside,
    user_boxes,
    user_mask_input,
    user_points,
)

# Each field's shape as messages write it, and the sizes it must have (None: any).
_SHAPES = {
    "points": ("(B, N, 2)", (None, None, 2)),
    "labels": ("(B, N)", (None, None)),
    "boxes": ("(B, 4)", (None, 4)),
    "mask_input": ("(B, 1, s, s)", (None, 1, None, None)),
}


@dataclass(frozen=True, eq=False)  # tensors have no truth value: compare by identity
class Prompts:
    """Prompts for B objects of one image; any field may be None, all present ones agree on B.

    Coordinates are (x, y) pixels of the frame the prompts were made in: the original
    image for the Predictor (:meth:`~samforge.inference.Predictor.decode` maps them into
    the model's input frame), the model's S × S input frame in training (the sampler draws
    them from masks already in that frame).

    Attributes:
        points: (B, N, 2) float32 (x, y).
        labels: (B, N) float32: 1 foreground, 0 background, −1 padding (an object with
            fewer points than N); given with ``points``.
        boxes: (B, 4) float32 x0, y0, x1, y1 with the end exclusive.
        mask_input: (B, 1, s, s) float32 low-resolution logits of an earlier prediction
            (s = 256 for SAM).

    Build one from lists or arrays with :meth:`from_user`; the sampler
    (:mod:`samforge.prompts.sampler`) gives the tensors for training and evaluation.
    """

    points: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    boxes: torch.Tensor | None = None
    mask_input: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if (self.points is None) != (self.labels is None):
            raise PromptError("points and labels go together: pass both, one label per point.")
        sizes = {}
        for name, (written, sizes_wanted) in _SHAPES.items():
            value = getattr(self, name)
            if value is None:
                continue
            if value.ndim != len(sizes_wanted) or any(
                want is not None and have != want
                for want, have in zip(sizes_wanted, value.shape, strict=True)
            ):
                raise PromptError(
                    f"{name} has shape {tuple(value.shape)}; the record holds {written}, "
                    "objects first. For one object, or lists, use Prompts.from_user."
                )
            sizes[name] = value.shape[0]
        points, labels = self.points, self.labels
        if points is not None and labels is not None and labels.shape != points.shape[:2]:
            raise PromptError(
                f"labels {tuple(labels.shape)} do not match points "
                f"{tuple(points.shape[:2])}: give one label per point."
            )
        sizes.pop("labels", None)
        if len(set(sizes.values())) > 1:
            raise PromptError(f"prompts disagree on the number of objects: {sizes}.")

    @classmethod
    def from_user(cls, points=None, labels=None, boxes=None, mask_input=None) -> Prompts:
        """Prompts from lists, arrays or tensors, checked (see :class:`PromptError`).

        Args:
            points: (N, 2) or (B, N, 2) pixel coordinates (x, y).
            labels: (N,) or (B, N): 1 foreground, 0 background, −1 padding.
            boxes: (4,) or (B, 4) boxes x0, y0, x1, y1 (end exclusive).
            mask_input: (s, s), (1, s, s) or (B, 1, s, s) low-resolution logits.

        Whether they fit an image is checked when they are decoded (:meth:`check_fits`).
        """
        given = {}
        if points is not None or labels is not None:
            given["points"], given["labels"] = (
                torch.from_numpy(array) for array in user_points(points, labels)
            )
        if boxes is not None:
            given["boxes"] = torch.from_numpy(user_boxes(boxes))
        if mask_input is not None:
            given["mask_input"] = torch.from_numpy(user_mask_input(mask_input))
        if not given:
            raise PromptError("no prompt given: pass points with labels, boxes, or both.")
        return cls(**given)

    @property
    def num_objects(self) -> int:
        """B (0 for a record without any prompt)."""
        for value in (self.points, self.boxes, self.mask_input):
            if value is not None:
                return value.shape[0]
        return 0

    def check_fits(self, image_size: tuple[int, int], low_res_size: int) -> None:
        """Raise a :class:`PromptError` unless these prompts fit an image of ``image_size``
        (H, W) and a model with (s, s) = ``low_res_size`` low-resolution logits."""
        if self.num_objects == 0:
            raise PromptError("no prompt given: pass points with labels, boxes, or both.")
        if self.points is not None and self.labels is not None:  # given together
            check_points_inside(self.points, self.labels, image_size)
        if self.boxes is not None:
            check_boxes_inside(self.boxes, image_size)
        if self.mask_input is not None:
            check_mask_size(self.mask_input, low_res_size)

    def with_clicks(self, points: torch.Tensor, labels: torch.Tensor) -> Prompts:
        """These prompts plus K more points per object: ``points`` (B, K, 2), ``labels`` (B, K)."""
        if self.points is None or self.labels is None:  # given together
            return replace(self, points=points, labels=labels)
        return replace(
            self,
            points=torch.cat([self.points, points], dim=1),
            labels=torch.cat([self.labels, labels], dim=1),
        )

    def corrected(
        self,
        predictions: torch.Tensor,
        targets: torch.Tensor,
        generator: torch.Generator | None = None,
        valid: torch.Tensor | None = None,
    ) -> Prompts:
        """These prompts plus one positive and one negative correction click per object
        (:func:`~samforge.prompts.sampler.correction_points` of the (B, H, W) predictions
        against the targets); the box and the mask prompt stay."""
        return self.with_clicks(*correction_points(predictions, targets, generator, valid))

    def with_mask(self, mask_input: torch.Tensor | None) -> Prompts:
        """These prompts with ``mask_input`` (B, 1, s, s) logits (None: without one)."""
        return replace(self, mask_input=mask_input)

    def select(self, objects) -> Prompts:
        """The prompts of some objects: ``objects`` indexes the batch axis (an int, a slice,
        a list or tensor of indices, or a (B,) bool mask)."""
        if isinstance(objects, int):
            objects = [objects]
        return self._map(lambda value: value[objects])

    def to(self, device: torch.device | str) -> Prompts:
        """The same prompts on ``device``."""
        return self._map(lambda value: value.to(device))

    def _map(self, function) -> Prompts:
        values = {field.name: getattr(self, field.name) for field in fields(self)}
        return Prompts(
            **{name: None if value is None else function(value) for name, value in values.items()}
        )
