"""Objects of a label map (connected components per class) and 2D slices of volumes.

The interactive protocols of MedicoSAM/micro-sam prompt one object at a time: for each class,
every connected component of at least ``min_size`` pixels (voxels) is an object. Components
are found with :func:`scipy.ndimage.label`; ``connectivity`` counts as in
``skimage.measure.label``: 1 joins pixels that share a face (4-neighbourhood in 2D, 6 in 3D),
``ndim`` also joins diagonal neighbours (8 / 26). The default is ``ndim`` (8-connected in
2D), as ``skimage.measure.label``'s default, which medico-sam uses to turn semantic labels
into objects.

Boxes are in (x, y) order with exclusive ends, like the Predictor's box prompts:
2D ``[min_x, min_y, max_x + 1, max_y + 1]``; 3D ``[min_x, min_y, min_z, max_x + 1,
max_y + 1, max_z + 1]`` with x = column (last axis), y = row, z = slice (first axis).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from ..errors import InputImageError
from .record import Case


@dataclass(frozen=True)
class ObjectInstance:
    """One connected component of one class.

    Attributes:
        class_id: the label value of its class.
        mask: bool array of the label map's full shape, (H, W) or (D, H, W).
        box: (4,) or (6,) int64 box in (x, y[, z]) order, ends exclusive (see module doc).
        area: number of pixels (voxels).
    """

    class_id: int
    mask: np.ndarray
    box: np.ndarray
    area: int


def instances_from_labels(
    label: np.ndarray,
    min_size: int = 20,
    classes: Iterable[int] | None = None,
    connectivity: int | None = None,
) -> list[ObjectInstance]:
    """Connected components of each class with at least ``min_size`` pixels.

    Args:
        label: (H, W) or (D, H, W) integer label map, 0 = background.
        min_size: smallest component kept (pixels in 2D, voxels in 3D).
        classes: class ids to use (default: every nonzero value present).
        connectivity: 1 (faces) up to ``label.ndim`` (faces, edges and corners); None:
            ``label.ndim`` (8-connected in 2D, 26 in 3D).

    Returns:
        Objects ordered by class id, then by component position (scan order).
    """
    label = _checked_label(label)
    structure = _structure(label.ndim, connectivity)
    instances = []
    for class_id in _classes(label, classes):
        components, _ = ndimage.label(label == class_id, structure=structure)
        sizes = np.bincount(components.ravel())
        for index, region in enumerate(ndimage.find_objects(components), start=1):
            if region is None or sizes[index] < min_size:
                continue
            mask = np.zeros(label.shape, dtype=bool)
            mask[region] = components[region] == index
            instances.append(ObjectInstance(class_id, mask, _box(region), int(sizes[index])))
    return instances


def count_objects(
    label: np.ndarray,
    min_size: int = 20,
    classes: Iterable[int] | None = None,
    connectivity: int | None = None,
) -> dict[int, list[int]]:
    """Sizes of the objects :func:`instances_from_labels` would return, per class, without
    building their masks (fast enough to scan whole datasets)."""
    label = _checked_label(label)
    structure = _structure(label.ndim, connectivity)
    counts = {}
    for class_id in _classes(label, classes):
        components, _ = ndimage.label(label == class_id, structure=structure)
        sizes = np.bincount(components.ravel())[1:]
        counts[int(class_id)] = [int(s) for s in sizes if s >= min_size]
    return counts


def slice_volume(case: Case, axis: int = 0, foreground_only: bool = False) -> Iterator[Case]:
    """2D cases from a volume's slices along ``axis`` (0 = z, 1 = y, 2 = x).

    Slice k along axis 0 is ``image[k]`` (H, W) with spacing (dy, dx); along axis 1 it is
    ``image[:, k]`` (D, W) with (dz, dx); along axis 2 ``image[:, :, k]`` (D, H) with (dz, dy).
    Names get ``_z012`` (or ``_y``/``_x``); ``meta`` records ``slice_index``, ``slice_axis``,
    ``volume_name`` and ``volume_affine``; the subject stays the volume's. Arrays are views.

    Args:
        foreground_only: skip slices whose label is all background (needs a label).
    """
    if not case.is_volume:
        raise InputImageError(f"case {case.name!r} is 2D; slice_volume needs a volume.")
    if axis not in (0, 1, 2):
        raise InputImageError(f"axis must be 0 (z), 1 (y) or 2 (x); got {axis}.")
    if foreground_only and case.label is None:
        raise InputImageError(
            f"case {case.name!r} has no label, so foreground_only=True cannot pick slices."
        )
    spacing = tuple(s for i, s in enumerate(case.spacing) if i != axis)
    letter = "zyx"[axis]
    for index in range(case.image.shape[axis]):
        where = (slice(None),) * axis + (index,)
        label = None if case.label is None else case.label[where]
        if foreground_only and (label is None or not label.any()):  # None: raised above
            continue
        meta = dict(case.meta)
        meta.update(
            slice_index=index, slice_axis=axis, volume_name=case.name, volume_affine=case.affine
        )
        objects = case.objects
        if objects is not None:  # an object's slice may be empty: it is then no object
            objects = tuple(replace(o, mask=o.mask[where]) for o in objects)
        yield replace(
            case,
            image=case.image[where],
            label=label,
            objects=objects,
            spacing=spacing,
            affine=None,
            name=f"{case.name}_{letter}{index:03d}",
            meta=meta,
        )


def _checked_label(label: np.ndarray) -> np.ndarray:
    label = np.asarray(label)
    if label.ndim not in (2, 3):
        raise InputImageError(f"a label map must be (H, W) or (D, H, W); got {label.shape}.")
    if label.dtype == bool:
        return label.astype(np.uint8)
    if not np.issubdtype(label.dtype, np.integer):
        raise InputImageError(f"a label map must hold integers; got dtype {label.dtype}.")
    return label


def _structure(ndim: int, connectivity: int | None) -> np.ndarray:
    connectivity = ndim if connectivity is None else connectivity
    if not 1 <= connectivity <= ndim:
        raise InputImageError(
            f"connectivity must be between 1 and {ndim} for a {ndim}D label map (1: faces "
            f"only, {ndim}: diagonals too); got {connectivity}."
        )
    return ndimage.generate_binary_structure(ndim, connectivity)


def _classes(label: np.ndarray, classes: Iterable[int] | None) -> list[int]:
    present = [int(c) for c in np.unique(label) if c != 0]
    if classes is None:
        return present
    wanted = {int(c) for c in classes}
    return [c for c in present if c in wanted]


def _box(region: tuple[slice, ...]) -> np.ndarray:
    starts = [s.start for s in region[::-1]]  # (x, y[, z]): last array axis first
    stops = [s.stop for s in region[::-1]]
    return np.array(starts + stops, dtype=np.int64)
