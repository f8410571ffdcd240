"""nnU-Net v2 raw datasets: ``dataset.json``, ``imagesTr/{case}_0000{ending}``,
``labelsTr/{case}{ending}`` (and ``imagesTs``/``labelsTs`` for the test split)."""

from __future__ import annotations

import json
import re
import warnings
from functools import partial
from pathlib import Path

from ...errors import DataError
from ..record import Case, CaseList, CaseRef
from ._common import modality_from_name
from .case import read_case
from .folders import subject_from

_FOLDERS = {"train": ("imagesTr", "labelsTr"), "test": ("imagesTs", "labelsTs")}


# The shape of nnU-Net v2's dataset.json (nnU-Net's documentation, dataset_format.md):
# channel_names and labels are objects, file_ending is a suffix such as ".nii.gz".
_FIELD_TYPES = {"channel_names": dict, "labels": dict, "file_ending": str, "numTraining": int}


def read_dataset_json(root: Path) -> dict:
    path = root / "dataset.json"
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{root} has no dataset.json: not an nnU-Net v2 dataset.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not valid JSON ({error}); fix or regenerate it.") from error
    if not isinstance(info, dict):
        raise DataError(
            f"{path} must hold a JSON object (channel_names, labels, file_ending, ...), not a "
            f"{type(info).__name__}; fix or regenerate it as nnU-Net v2 describes."
        )
    for field, kind in _FIELD_TYPES.items():
        if field in info and not isinstance(info[field], kind):
            raise DataError(
                f"{path}: {field} must be a JSON {_JSON_NAMES[kind]}, not "
                f"{json.dumps(info[field])[:60]}; fix or regenerate it as nnU-Net v2 describes."
            )
    ending = info.get("file_ending", ".nii.gz")
    if not ending.startswith(".") or "/" in ending:
        raise DataError(f"{path}: file_ending {ending!r} must be a suffix such as '.nii.gz'.")
    return info


_JSON_NAMES = {dict: "object", str: "string", int: "number"}


def open_nnunet(
    root: Path,
    split: str | None = None,
    modality: str | None = None,
    channel: int = 0,
    subject_pattern: str | None = None,
) -> CaseList:
    """Cases of an nnU-Net v2 raw dataset folder (``Dataset123_Name``).

    Args:
        split: "train" (default: imagesTr with labelsTr) or "test" (imagesTs, labelsTs if any).
        channel: which input channel ``_{channel:04d}`` to read; the modality follows from its
            ``channel_names`` entry ("CT" → ct, "T1"/"T2"/"MRI"/... → mr) unless given.
    """
    info = read_dataset_json(root)
    ending = info.get("file_ending", ".nii.gz")
    images_dir, labels_dir = (root / d for d in _FOLDERS[_split(split)])
    if not images_dir.is_dir():
        raise DataError(f"{images_dir} does not exist; nnU-Net datasets keep images there.")
    pattern = re.compile(rf"^(.+)_(\d{{4}}){re.escape(ending)}$")
    cases = sorted({m.group(1) for p in images_dir.iterdir() if (m := pattern.match(p.name))})
    if not cases:
        raise DataError(f"{images_dir} holds no files named CASE_0000{ending}.")
    channel_name = str(info.get("channel_names", {}).get(str(channel), ""))
    modality = modality or modality_from_name(channel_name) or "other"
    names = _label_names(info)
    labelled = labels_dir.is_dir()
    missing = [c for c in cases if labelled and not (labels_dir / f"{c}{ending}").exists()]
    if _split(split) == "train" and (missing or not labelled):
        shown = ", ".join(missing[:5]) if labelled else "all"
        raise DataError(
            f"{root}: training cases without a label in {labels_dir} ({shown}); nnU-Net "
            f"expects labelsTr/CASE{ending} for every CASE in imagesTr."
        )
    if "numTraining" in info and _split(split) == "train" and info["numTraining"] != len(cases):
        warnings.warn(
            f"{root}: dataset.json says numTraining={info['numTraining']} but "
            f"{images_dir} holds {len(cases)} cases.",
            stacklevel=2,
        )
    refs = []
    for case in cases:
        image = images_dir / f"{case}_{channel:04d}{ending}"
        label = labels_dir / f"{case}{ending}" if labelled and case not in missing else None
        subject = subject_from(case, subject_pattern)
        loader = partial(_load, image, label, modality, case, subject, names)
        refs.append(CaseRef(case, subject, loader, str(image)))
    return CaseList(refs, f"nnU-Net dataset {root.name} ({_split(split)})")


def _split(split: str | None) -> str:
    key = (split or "train").lower()
    if key not in _FOLDERS:
        raise DataError(f"nnU-Net datasets have splits 'train' and 'test'; got {split!r}.")
    return key


def _label_names(info: dict) -> dict[int, str]:
    labels = info.get("labels", {})
    return {int(v): str(k) for k, v in labels.items() if isinstance(v, int) and v != 0}


def _load(
    image: Path,
    label: Path | None,
    modality: str,
    name: str,
    subject: str,
    label_names: dict[int, str],
) -> Case:
    if not image.exists():
        raise DataError(f"{image} is missing: every channel of case {name!r} needs a file.")
    case = read_case(image, label, modality, name=name, subject=subject)
    case.meta["label_names"] = dict(label_names)
    return case
