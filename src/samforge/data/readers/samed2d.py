"""SA-Med2D-20M: PNG slices with one binary PNG per object, indexed by JSON.

Two index kinds, as SAM-Med2D publishes them (its ``data_demo/`` folder, and SAM-UNet's):

- ``image2label_{split}.json``: image path -> list of its mask paths (training);
- ``label2image_{split}.json``: mask path -> its image path (testing, one item per mask).

Paths start from the index's folder or the ancestor they name (``data_demo/images/x.png``
inside ``data_demo/``), see :mod:`.index_paths`; no path may lead outside that dataset root.
A folder given to :func:`open_samed2d` may hold the index files or have them one folder
down (SAM-Med2D's repository root, holding ``data_demo/``); ``split`` picks the files of one
split (``train``, ``test``, ...), else all are read.

Each image is one case whose masks stay separate objects (``Case.objects``): SAM-Med2D and
SAM-UNet train on and score each mask on its own, so two overlapping masks are two objects.
A mask's class is the structure in its file name (``amos_0006_90_liver_000.png`` -> liver:
the image's name, then the structure, then the instance number), numbered in name order
over everything the index names (``meta["label_names"]``). ``Case.label`` paints the masks
by class (a later mask wins an overlap; ``meta["overlap_pixels"]`` counts them) for display.

File names ``{modality}_{nn}--{dataset}--{case}--{plane}_{slice}`` give the modality and the
subject, ``{dataset}--{case}``, so a split by subject keeps the slices of a volume together.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import partial
from pathlib import Path, PurePosixPath

import numpy as np

from ...errors import DataError
from ...files import stem_of
from ..record import Case, CaseList, CaseRef, MaskObject
from ._common import check_same_shape, smallest_label_dtype
from .case import read_case, read_label_array
from .index_paths import checked_entry, index_root, inside_root

_MODALITY_PREFIXES = {"ct": "ct", "mr": "mr", "us": "us", "x": "xray", "xray": "xray"}
INDEX_KINDS = ("image2label", "label2image")
_INDEX_NAME = re.compile(rf"^({'|'.join(INDEX_KINDS)})_(.+)\.json$")

# (image entry, its mask entries) of one case, as an index names them
Entries = tuple[PurePosixPath, tuple[PurePosixPath, ...]]


def is_samed2d_index(path: Path) -> bool:
    return _INDEX_NAME.match(path.name) is not None


def samed2d_indexes(path: Path, split: str | None = None) -> list[Path]:
    """The index files of ``path`` (an index, a folder holding some, or one folder above),
    of ``split`` only when given.

    Raises:
        DataError: no index file, or none of that split (the message lists the splits).
    """
    if path.is_file():
        found = [path] if is_samed2d_index(path) else []
    else:
        found = sorted(p for p in path.iterdir() if p.is_file() and is_samed2d_index(p))
        if not found:
            found = sorted(p for p in path.glob("*/*.json") if is_samed2d_index(p))
    if not found:
        raise DataError(
            f"{path} has no image2label_*.json or label2image_*.json (SA-Med2D-20M index)."
        )
    if split is None:
        return found
    chosen = [p for p in found if index_split(p) == split]
    if not chosen:
        raise DataError(
            f"{path} has no SA-Med2D-20M index of split {split!r}; its splits: "
            f"{', '.join(samed2d_splits(path))}."
        )
    return chosen


def samed2d_splits(path: Path) -> tuple[str, ...]:
    """The splits the index files under ``path`` name, e.g. ``("test", "train")``."""
    return tuple(sorted({index_split(p) for p in samed2d_indexes(path)}))


def index_split(index_file: Path) -> str:
    match = _INDEX_NAME.match(index_file.name)
    return match.group(2) if match else ""


def open_samed2d(path: Path, modality: str | None = None, split: str | None = None) -> CaseList:
    """Cases of SA-Med2D-20M index files (see the module docstring); nothing is read but
    the indexes.

    Raises:
        DataError: no index, an unreadable or malformed one, an entry that is absolute or
            leaves the dataset folder, or a first image found nowhere.
    """
    indexes = samed2d_indexes(path, split)
    read = [(index_file, *_read_index(index_file)) for index_file in indexes]
    structures = sorted(
        {
            structure_name(mask, image)
            for *_, cases in read
            for image, masks in cases
            for mask in masks
        }
    )
    classes = {name: number for number, name in enumerate(structures, start=1)}
    refs = []
    for index_file, root, cases in read:
        for image, masks in cases:
            name = stem_of(Path(image.name))
            subject = samed2d_subject(name)
            loader = partial(
                _load, root, index_file, image, masks, modality or samed2d_modality(name), classes
            )
            refs.append(CaseRef(name, subject, loader, str(root / image)))
    described = ", ".join(p.name for p in indexes)
    return CaseList(refs, f"SA-Med2D-20M {described}")


def structure_name(mask: PurePosixPath, image: PurePosixPath) -> str:
    """The structure a mask file names: ``amos_0006_90_inferior_vena_cava_000`` of image
    ``amos_0006_90`` -> ``inferior_vena_cava``."""
    stem, image_stem = stem_of(Path(mask.name)), stem_of(Path(image.name))
    rest = stem[len(image_stem) :] if stem.startswith(image_stem) else stem
    rest = rest.lstrip("-_.")
    return re.sub(r"[_-]\d+$", "", rest) or rest or stem


def samed2d_subject(name: str) -> str:
    """``ct_00--AbdomenCT1K--Case_00001--x_0042`` → ``AbdomenCT1K--Case_00001``."""
    fields = name.split("--")
    return "--".join(fields[1:3]) if len(fields) >= 3 else name


def samed2d_modality(name: str) -> str:
    prefix = name.split("--")[0].lower()
    return _MODALITY_PREFIXES.get(prefix.split("_")[0], "other")


def _read_index(index_file: Path) -> tuple[Path, list[Entries]]:
    """(dataset root, [(image, masks)] sorted by image) of one index file."""
    try:
        index = json.loads(index_file.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read {index_file} as JSON ({error}).") from error
    if not isinstance(index, dict) or not index:
        raise DataError(f"{index_file} must be a non-empty JSON object of file paths.")
    by_image: dict[PurePosixPath, list[PurePosixPath]] = {}
    if index_file.name.startswith("image2label"):
        for image, masks in index.items():
            if not isinstance(masks, list):
                raise DataError(f"{index_file}: {image!r} must map to a list of mask paths.")
            key = checked_entry(image, index_file)
            by_image.setdefault(key, []).extend(checked_entry(m, index_file) for m in masks)
    else:  # label2image: one entry per mask
        for mask, image in index.items():
            key = checked_entry(image, index_file)
            by_image.setdefault(key, []).append(checked_entry(mask, index_file))
    root = index_root(index_file, next(iter(by_image)))
    return root, [(image, tuple(by_image[image])) for image in sorted(by_image)]


def _load(
    root: Path,
    index_file: Path,
    image: PurePosixPath,
    masks: Sequence[PurePosixPath],
    modality: str,
    classes: dict[str, int],
) -> Case:
    image_path = inside_root(root, image, index_file)
    name = stem_of(Path(image.name))
    case = read_case(image_path, None, modality, name=name, subject=samed2d_subject(name))
    shape = case.spatial_shape
    label = np.zeros(shape, dtype=smallest_label_dtype(np.array([len(classes)])))
    objects, overlap = [], 0
    for mask in masks:
        path = inside_root(root, mask, index_file)
        binary = read_label_array(path)
        check_same_shape(binary, shape, image_path, path)
        binary = binary > 0
        class_id = classes[structure_name(mask, image)]
        overlap += int(np.count_nonzero(binary & (label > 0)))
        label[binary] = class_id
        objects.append(MaskObject(binary, class_id, stem_of(path)))
    case.label = label
    case.objects = tuple(objects)
    case.meta.update(
        label_source=[str(root / m) for m in masks],
        label_names={number: name for name, number in classes.items()},
        overlap_pixels=overlap,
        index=str(index_file),
        dataset_root=str(root),
    )
    return case
