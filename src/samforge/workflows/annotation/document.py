"""A case opened for annotation: its objects, their masks slice by slice, the undo history.

Every edit goes through one path (:meth:`AnnotationDocument._commit`): it becomes a
:class:`~.history.Change`, is applied, pushed on the history and, when the document has a
:class:`~.store.DocumentStore`, written to disk before the method returns, so a crash
right after an edit loses nothing. The document is not thread-safe: a server holds one lock
per document around every call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np

from ...data import Case, IntensityMapping
from ...errors import InputImageError, NotFoundError, PromptError
from ...inference import Predictor, PropagationResult
from .history import Change, History
from .objects import ObjectInfo, SlicePrompts, default_colour
from .segment import paint_stroke, segment_slice
from .store import DocumentStore

MAX_OBJECTS = 1000  # label maps hold them as uint16


class AnnotationDocument:
    """Objects annotated on one :class:`~samforge.data.Case` (a 2D image has one slice, 0).

    Args:
        case: the image or volume.
        mapping: its intensity mapping for the model (one for the whole volume).
        store: where every change is written (None: kept in memory only).
    """

    def __init__(
        self, case: Case, mapping: IntensityMapping, store: DocumentStore | None = None
    ) -> None:
        self.case = case
        self.mapping = mapping
        self.store = store
        self.history = History()
        self.version = 0
        self._objects: dict[int, ObjectInfo] = {}
        self._masks: dict[int, dict[int, np.ndarray]] = {}
        self.next_id = 1
        if store is not None:
            objects, masks, next_id = store.read_annotations()
            self._objects = {info.id: info for info in objects}
            self._masks = {info.id: dict(masks.get(info.id, {})) for info in objects}
            self.next_id = max([next_id, *[info.id + 1 for info in objects]])

    # --- geometry ------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        return self.case.image.shape[0] if self.case.is_volume else 1

    @property
    def plane_shape(self) -> tuple[int, int]:
        height, width = self.case.spatial_shape[-2:]
        return height, width

    def plane(self, index: int) -> np.ndarray:
        """Slice ``index`` as the model sees it: ``case.image[index]`` (the image for 2D)."""
        self._check_slice(index)
        return self.case.image[index] if self.case.is_volume else self.case.image

    def _check_slice(self, index: int) -> None:
        if not 0 <= index < self.depth:
            raise PromptError(f"slice {index} is outside the image's {self.depth} slice(s).")

    # --- reading -------------------------------------------------------------------------

    @property
    def objects(self) -> list[ObjectInfo]:
        return [self._objects[key] for key in sorted(self._objects)]

    def object(self, object_id: int) -> ObjectInfo:
        try:
            return self._objects[object_id]
        except KeyError:
            raise NotFoundError(
                f"no object {object_id} in this image; objects: {sorted(self._objects)}."
            ) from None

    def mask_slice(self, object_id: int, index: int) -> np.ndarray:
        """Object ``object_id``'s (H, W) bool mask on slice ``index`` (all False if none)."""
        self.object(object_id)
        self._check_slice(index)
        mask = self._masks[object_id].get(index)
        return np.zeros(self.plane_shape, dtype=bool) if mask is None else mask

    def voxels(self, object_id: int) -> int:
        return sum(int(np.count_nonzero(mask)) for mask in self._masks[object_id].values())

    def mask_slices(self, object_id: int) -> list[int]:
        """The slices where the object's mask is not empty, in order."""
        self.object(object_id)
        return sorted(self._masks[object_id])

    def label_slice(self, axis: int, index: int) -> np.ndarray:
        """The label map (object ids, uint16, higher ids on top) of one plane of the
        volume: axis 0 ``[index]`` (H, W), axis 1 ``[:, index]`` (D, W), axis 2
        ``[:, :, index]`` (D, H)."""
        depth, (height, width) = self.depth, self.plane_shape
        sizes = {0: (height, width), 1: (depth, width), 2: (depth, height)}
        limits = {0: depth, 1: height, 2: width}
        if axis not in sizes or (axis != 0 and not self.case.is_volume):
            raise InputImageError(f"axis must be 0, 1 or 2 for a volume, 0 for 2D; got {axis}.")
        if not 0 <= index < limits[axis]:
            raise InputImageError(f"index {index} is outside [0, {limits[axis]}) on axis {axis}.")
        out = np.zeros(sizes[axis], dtype=np.uint16)
        for object_id in sorted(self._masks):
            for slice_index, mask in self._masks[object_id].items():
                if axis == 0:
                    if slice_index == index:
                        out[mask] = object_id
                elif axis == 1:
                    out[slice_index, mask[index]] = object_id
                else:
                    out[slice_index, mask[:, index]] = object_id
        return out

    def label_map(self, statuses: Iterable[str] = ("accepted",)) -> np.ndarray:
        """The whole label map of the objects with one of ``statuses`` (ids as labels,
        higher ids on top), in the case's spatial shape."""
        wanted = set(statuses)
        out = np.zeros((self.depth, *self.plane_shape), dtype=np.uint16)
        for info in self.objects:
            if info.status in wanted:
                for index, mask in self._masks[info.id].items():
                    out[index][mask] = info.id
        return out if self.case.is_volume else out[0]

    # --- editing -------------------------------------------------------------------------

    def add_object(self, name: str | None = None, colour: str | None = None) -> ObjectInfo:
        if len(self._objects) >= MAX_OBJECTS:
            raise PromptError(f"an image holds at most {MAX_OBJECTS} objects.")
        object_id = self.next_id
        info = ObjectInfo(
            object_id, name or f"object {object_id}", colour or default_colour(object_id)
        )
        self.next_id += 1
        self._commit(Change(object_id, None, info))
        return info

    def update_object(
        self,
        object_id: int,
        *,
        name: str | None = None,
        colour: str | None = None,
        status: str | None = None,
    ) -> ObjectInfo:
        """Rename, recolour, or accept (``status="accepted"``) / reopen (``"draft"``)."""
        before = self.object(object_id)
        after = replace(
            before,
            name=before.name if name is None else name,
            colour=before.colour if colour is None else colour,
            status=before.status if status is None else status,
        )
        if after != before:
            self._commit(Change(object_id, before, after))
        return after

    def delete_object(self, object_id: int) -> None:
        """Remove an object and its mask (undo brings both back)."""
        before = self.object(object_id)
        masks = self._masks[object_id]
        self._commit(Change(object_id, before, None, dict(masks), dict.fromkeys(masks)))

    def set_prompts(
        self, object_id: int, index: int, prompts: SlicePrompts, predictor: Predictor
    ) -> np.ndarray:
        """Replace the object's prompts on slice ``index`` and segment the slice from them
        (no prompts: the slice is cleared). Returns the slice's new mask."""
        before = self.object(object_id)
        plane = self.plane(index)
        mask = None
        if not prompts.is_empty:
            mask = segment_slice(predictor, plane, self.mapping, prompts)
        after = replace(before.with_prompts(index, prompts), painted=before.painted - {index})
        self._commit_masks(before, after, {index: mask})
        return self.mask_slice(object_id, index)

    def paint(
        self,
        object_id: int,
        index: int,
        stroke: Sequence[tuple[float, float]],
        radius: float,
        erase: bool = False,
    ) -> np.ndarray:
        """Brush (or erase) a stroke into the object's mask on slice ``index``."""
        before = self.object(object_id)
        mask = paint_stroke(self.mask_slice(object_id, index), stroke, radius, erase)
        after = replace(before, painted=before.painted | {index})
        self._commit_masks(before, after, {index: mask})
        return mask

    def apply_propagation(self, object_id: int, result: PropagationResult) -> int:
        """Write a propagation result into the object: every slice the user neither prompted
        nor painted takes the result's mask (empty where the fronts stopped). Returns the
        number of slices that changed."""
        info = self.object(object_id)
        if result.mask.shape != (self.depth, *self.plane_shape):
            raise InputImageError(
                f"propagation result {result.mask.shape} does not fit this image "
                f"{(self.depth, *self.plane_shape)}."
            )
        kept = info.user_slices
        new = {
            index: (result.mask[index] if result.segmented[index] else None)
            for index in range(self.depth)
            if index not in kept
        }
        return self._commit_masks(info, info, new)

    def undo(self) -> bool:
        return self._replay(self.history.undo())

    def redo(self) -> bool:
        return self._replay(self.history.redo())

    def _replay(self, change: Change | None) -> bool:
        if change is None:
            return False
        self._apply(change)
        return True

    def _commit_masks(
        self, before: ObjectInfo, after: ObjectInfo, new: dict[int, np.ndarray | None]
    ) -> int:
        """Commit the slices of ``new`` whose mask differs from the current one."""
        old = self._masks[before.id]
        changed: dict[int, np.ndarray | None] = {}
        for index, mask in new.items():
            mask = None if mask is None or not mask.any() else mask
            current = old.get(index)
            same = (
                mask is None
                if current is None
                else mask is not None and np.array_equal(current, mask)
            )
            if not same:
                changed[index] = mask
        if changed or after != before:
            self._commit(
                Change(before.id, before, after, {i: old.get(i) for i in changed}, changed)
            )
        return len(changed)

    def _commit(self, change: Change) -> None:
        self._apply(change)
        self.history.push(change)

    def _apply(self, change: Change) -> None:
        object_id = change.object_id
        if change.after is None:
            self._objects.pop(object_id, None)
            self._masks.pop(object_id, None)
        else:
            self._objects[object_id] = change.after
            masks = self._masks.setdefault(object_id, {})
            for index, mask in change.masks_after.items():
                if mask is None:
                    masks.pop(index, None)
                else:
                    masks[index] = mask
        self.version += 1
        if self.store is not None:
            self.store.write_change(change, self.objects, self.next_id)
