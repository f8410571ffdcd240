"""Image/mask folders and flat folders of NIfTI volumes.

``images/`` beside ``masks/`` or ``labels/`` (any format ``read_case`` reads). A mask belongs
to the image whose file name (without extension) it equals, optionally followed by ``_mask``,
``_seg``, ``_label(s)``, ``_gt`` or ``_annotation``: then it is a label map. Several masks
named ``{image}{sep}{anything}`` (sep one of ``_ - .``) are binary masks of one object each,
as in SA-Med2D-20M; they are merged into a label map, object i (in name order) as label i,
a later object winning where two overlap (``meta["overlap_pixels"]`` counts them).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np

from ...errors import DataError
from ...files import stem_of, suffix_of
from ..record import Case, CaseList, CaseRef
from ._common import IMAGE_SUFFIXES, check_same_shape, smallest_label_dtype
from .case import read_case, read_label_array

LABEL_SUFFIXES = ("_mask", "_masks", "_seg", "_label", "_labels", "_gt", "_annotation")
MASK_FOLDERS = ("masks", "labels", "annotations", "ground_truth", "gt")
_SEPARATORS = "_-."


def image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (hidden files skipped), sorted by name."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and suffix_of(p) in IMAGE_SUFFIXES
    )


def subject_from(name: str, pattern: str | None) -> str:
    """Subject id: group 1 (or the whole match) of ``pattern`` searched in ``name``."""
    if pattern is None:
        return name
    match = re.search(pattern, name)
    if match is None:
        return name
    return match.group(1) if match.groups() else match.group(0)


def match_masks(
    stems: Sequence[str], masks: Sequence[Path]
) -> dict[str, tuple[Path | None, tuple[Path, ...]]]:
    """Per image stem: (its label map or None, its per-object masks) — see the module doc."""
    known = set(stems)
    maps: dict[str, list[Path]] = {}
    objects: dict[str, list[Path]] = {}
    for mask in masks:
        stem = stem_of(mask)
        base = _label_map_base(stem, known)
        if base is not None:
            maps.setdefault(base, []).append(mask)
        elif (owner := _longest_prefix(stem, known)) is not None:
            objects.setdefault(owner, []).append(mask)
    matched = {}
    for stem in stems:
        # an exact name beats a suffixed one (``a.png`` over ``a_mask.png``)
        label_map = min(maps.get(stem, []), key=lambda p: stem_of(p) != stem, default=None)
        matched[stem] = (label_map, tuple(sorted(objects.get(stem, []))))
    return matched


def open_image_mask_folders(
    root: Path, modality: str | None = None, subject_pattern: str | None = None
) -> CaseList:
    """Cases of ``root/images`` with labels from ``root/masks`` (or labels/, annotations/)."""
    images = image_files(root / "images")
    if not images:
        raise DataError(f"{root / 'images'} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    mask_dir = next((root / n for n in MASK_FOLDERS if (root / n).is_dir()), None)
    masks = image_files(mask_dir) if mask_dir is not None else []
    matched = match_masks([stem_of(p) for p in images], masks)
    refs = []
    for image in images:
        name = stem_of(image)
        label_map, objects = matched[name]
        subject = subject_from(name, subject_pattern)
        if label_map is None and objects:
            loader = partial(load_with_object_masks, image, objects, modality, name, subject)
        else:
            loader = partial(load_case, image, label_map, modality, name, subject)
        refs.append(CaseRef(name, subject, loader, str(image)))
    return CaseList(refs, f"image/mask folders {root}")


def open_nifti_folder(
    root: Path, modality: str | None = None, subject_pattern: str | None = None
) -> CaseList:
    """NIfTI volumes in ``root``; ``{name}_seg.nii.gz`` (or _label, _mask, _gt) is the label."""
    files = sorted(p for p in root.iterdir() if suffix_of(p) in (".nii", ".nii.gz"))
    stems = {stem_of(p): p for p in files}
    labels = {}
    for stem, path in stems.items():
        base = _label_map_base(stem, set(stems) - {stem})
        if base is not None:
            labels[base] = path
    refs = []
    for stem, path in stems.items():
        if path in labels.values():
            continue
        subject = subject_from(stem, subject_pattern)
        loader = partial(load_case, path, labels.get(stem), modality, stem, subject)
        refs.append(CaseRef(stem, subject, loader, str(path)))
    if not refs:
        raise DataError(f"{root} holds no NIfTI volumes (.nii, .nii.gz).")
    return CaseList(refs, f"NIfTI folder {root}")


def load_case(
    image: Path, label: Path | None, modality: str | None, name: str, subject: str
) -> Case:
    return read_case(image, label, modality, name=name, subject=subject)


def load_with_object_masks(
    image: Path, masks: Sequence[Path], modality: str | None, name: str, subject: str
) -> Case:
    """An image whose objects come as one binary mask file each."""
    case = read_case(image, None, modality, name=name, subject=subject)
    label, overlap = merge_object_masks(masks, case.spatial_shape, image)
    case.label = label
    case.meta["label_source"] = [str(p) for p in masks]
    case.meta["label_names"] = {i + 1: stem_of(p) for i, p in enumerate(masks)}
    case.meta["overlap_pixels"] = overlap
    return case


def merge_object_masks(
    masks: Sequence[Path], shape: tuple[int, ...], image: Path
) -> tuple[np.ndarray, int]:
    """Binary masks → label map (object i as i + 1) and the number of overlapping pixels."""
    label = np.zeros(shape, dtype=smallest_label_dtype(np.array([len(masks)])))
    overlap = 0
    for index, path in enumerate(masks, start=1):
        binary = read_label_array(path)
        check_same_shape(binary, shape, image, path)
        binary = binary > 0
        overlap += int(np.count_nonzero(binary & (label > 0)))
        label[binary] = index
    return label, overlap


def _label_map_base(stem: str, known: set[str]) -> str | None:
    if stem in known:
        return stem
    lower = stem.lower()
    for suffix in LABEL_SUFFIXES:
        for tail in (suffix, "-" + suffix[1:]):
            if lower.endswith(tail) and stem[: -len(tail)] in known:
                return stem[: -len(tail)]
    return None


def _longest_prefix(stem: str, known: set[str]) -> str | None:
    for end in range(len(stem) - 1, 0, -1):
        if stem[end] in _SEPARATORS and stem[:end] in known:
            return stem[:end]
    return None
