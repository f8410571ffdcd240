"""The objects of one image as training and evaluation prompt them, whatever their source.

A case's objects are either the connected components of its label map
(:func:`~samforge.data.objects.instances_from_labels`, MedicoSAM's protocol) or the binary
masks it was published with (``Case.objects``: SA-Med2D-20M, as SAM-Med2D and SAM-UNet
train and score them). :func:`plane_instances` gives both as
:class:`~samforge.data.objects.ObjectInstance` records, so the training Dataset and the
interactive protocol need not know which.

:func:`largest_component_boxes` is the box SAM-Med2D's ``get_boxes_from_mask`` (also used
by SAM-UNet) prompts with: the tight box of the mask's largest connected component
(8-connected, ``skimage.measure.label``'s default in 2D). For a single component it is the
object's own box.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import ndimage

from .objects import ObjectInstance, count_objects, instances_from_labels
from .record import MaskObject


def plane_instances(
    label: np.ndarray,
    objects: Sequence[MaskObject] | None,
    min_size: int = 20,
    classes: Iterable[int] | None = None,
    connectivity: int | None = None,
) -> list[ObjectInstance]:
    """The objects of one image (or volume): its published masks when it has them, else the
    connected components of its label map.

    Args:
        label: (H, W) or (D, H, W) integer label map.
        objects: the case's :attr:`~samforge.data.record.Case.objects` (or their slices), or
            None.
        min_size: smallest object kept, in pixels (a published mask counts whole).
        classes: class ids to keep (default: all).
        connectivity: of the connected components (only without published masks).

    Returns:
        Objects in their published order, or by class then position for components.
    """
    if objects is None:
        return instances_from_labels(label, min_size, classes, connectivity)
    wanted = None if classes is None else {int(c) for c in classes}
    instances = []
    for item in objects:
        area = int(np.count_nonzero(item.mask))
        if area < min_size or (wanted is not None and item.class_id not in wanted):
            continue
        instances.append(ObjectInstance(item.class_id, item.mask, _tight_box(item.mask), area))
    return instances


def object_sizes(
    label: np.ndarray, objects: Sequence[MaskObject] | None, min_size: int = 20
) -> dict[int, list[int]]:
    """Pixel counts of the objects :func:`plane_instances` gives, per class, without
    building the masks of components (fast enough to scan whole datasets)."""
    if objects is None:
        return count_objects(label, min_size)
    sizes: dict[int, list[int]] = {}
    for item in objects:
        area = int(np.count_nonzero(item.mask))
        if area >= min_size:
            sizes.setdefault(item.class_id, []).append(area)
    return dict(sorted(sizes.items()))


def largest_component_boxes(masks: np.ndarray) -> np.ndarray:
    """Boxes of the largest 8-connected component of each 2D mask.

    Args:
        masks: (N, H, W) bool.

    Returns:
        (N, 4) float32 ``[x0, y0, x1, y1]``, ends exclusive (the Predictor's convention);
        zeros for an empty mask.
    """
    masks = np.asarray(masks, dtype=bool)
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    structure = np.ones((3, 3), dtype=bool)
    for index, mask in enumerate(masks):
        components, count = ndimage.label(mask, structure=structure)
        if count == 0:
            continue
        sizes = np.bincount(components.ravel())[1:]
        largest = components == (int(np.argmax(sizes)) + 1)  # the first of equal sizes
        boxes[index] = _tight_box(largest)
    return boxes


def _tight_box(mask: np.ndarray) -> np.ndarray:
    """``[x0, y0, (z0,) x1, y1, (z1)]`` of a mask's pixels, ends exclusive; zeros if empty."""
    where = np.nonzero(mask)
    if len(where[0]) == 0:
        return np.zeros(2 * mask.ndim, dtype=np.int64)
    starts = [int(axis.min()) for axis in where[::-1]]
    stops = [int(axis.max()) + 1 for axis in where[::-1]]
    return np.array(starts + stops, dtype=np.int64)
