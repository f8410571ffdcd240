"""SA-Med2D-20M: PNG slices with one binary PNG per object, indexed by JSON.

``image2label_train.json`` maps an image path (relative to the JSON's folder) to the list of
its mask paths. File names follow ``{modality}_{nn}--{dataset}--{case}--{plane}_{slice}``;
slices of one case (volume) share a subject, ``{dataset}--{case}``, so a split by subject
never puts neighbouring slices of one volume on both sides.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from ...errors import DataError
from ...files import stem_of
from ..record import CaseList, CaseRef
from .folders import load_with_object_masks

_MODALITY_PREFIXES = {"ct": "ct", "mr": "mr", "us": "us", "x": "xray", "xray": "xray"}


def samed2d_index(path: Path) -> Path:
    """The ``image2label_*.json`` file given itself or its folder."""
    if path.is_file():
        return path
    found = sorted(path.glob("image2label_*.json"))
    if not found:
        raise DataError(f"{path} has no image2label_*.json (SA-Med2D-20M index).")
    return found[0]


def open_samed2d(path: Path, modality: str | None = None) -> CaseList:
    """Cases of an SA-Med2D-20M ``image2label_*.json`` (or the folder that holds it)."""
    index_file = samed2d_index(path)
    try:
        index = json.loads(index_file.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read {index_file} as JSON ({error}).") from error
    if not isinstance(index, dict) or not all(isinstance(v, list) for v in index.values()):
        raise DataError(f"{index_file} must map each image path to a list of mask paths.")
    root = index_file.parent
    refs = []
    for image_key in sorted(index):
        image = root / image_key
        masks = tuple(root / m for m in index[image_key])
        name = stem_of(image)
        subject = samed2d_subject(name)
        case_modality = modality or samed2d_modality(name)
        loader = partial(load_with_object_masks, image, masks, case_modality, name, subject)
        refs.append(CaseRef(name, subject, loader, str(image)))
    return CaseList(refs, f"SA-Med2D-20M {index_file.name}")


def samed2d_subject(name: str) -> str:
    """``ct_00--AbdomenCT1K--Case_00001--x_0042`` → ``AbdomenCT1K--Case_00001``."""
    fields = name.split("--")
    return "--".join(fields[1:3]) if len(fields) >= 3 else name


def samed2d_modality(name: str) -> str:
    prefix = name.split("--")[0].lower()
    return _MODALITY_PREFIXES.get(prefix.split("_")[0], "other")
