"""The cases a training config names, and the rule that keeps training and testing apart.

Each data source is opened lazily (file names only). A dataset with named splits
(MedSegBench's arrays, SA-Med2D-20M's index files, nnU-Net's imagesTr/imagesTs) gives a
training source its ``train`` split and a validation source its ``val`` split unless the
source names one (``split:``); see :func:`samforge.data.choose_split`. Without this a
MedSegBench file would train on its test images.

:func:`check_no_overlap` refuses a config whose validation cases are training cases (the
same file under the same name), unless ``data.allow_overlap`` says so; the evaluation
commands apply the same rule to a trained model's run folder (:mod:`samforge.workflows.leakage`).
This module does not import Lightning, so the evaluation commands use it cheaply.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Literal

from ..data import (
    Case,
    CaseList,
    CaseRef,
    choose_split,
    open_dataset,
    overlapping_cases,
    read_case,
)
from ..data.phantoms import as_case, phantom_cases
from ..errors import ConfigError
from .config import DataConfig, DataSource

Role = Literal["train", "val"]
_RANGE = re.compile(r"^(\d+)-(\d+)$")


def collect_cases(sources: Sequence[DataSource], role: Role = "train") -> CaseList:
    """All cases of the configured sources, files read lazily, phantoms generated.

    Args:
        sources: the ``data.train`` or ``data.val`` list.
        role: which list: its sources default to the split of that name.
    """
    cases: list[Case] = []
    lists: list[CaseList] = []
    for source in sources:
        if source.phantoms is not None:
            cases.extend(_phantoms(source, source.phantoms))
        elif source.image is not None:
            lists.append(_single_case(source, source.image))
        elif source.path is not None:  # DataSource holds exactly one of the three kinds
            split = choose_split(source.path, source.layout, source.split, role)
            found = open_dataset(
                source.path, layout=source.layout, modality=source.modality, split=split
            )
            lists.append(select_subjects(found, source.subjects) if source.subjects else found)
    refs = [ref for found in lists for ref in found.refs]
    refs += CaseList.from_cases(cases).refs
    return CaseList(refs, description=f"{role} data")


def check_no_overlap(config: DataConfig) -> None:
    """Refuse validation cases that are also training cases, unless ``allow_overlap``.

    Raises:
        ConfigError: naming the shared cases and the two ways out.
    """
    if config.allow_overlap or not config.val:
        return
    shared = overlapping_cases(collect_cases(config.val, "val"), collect_cases(config.train))
    if shared:
        raise ConfigError(
            f"data.val shares {len(shared)} case(s) with data.train (e.g. "
            f"{', '.join(shared[:3])}): validating on training images measures memory, not "
            "generalisation. Give the sources different `split`s or `subjects`, or set "
            "data.allow_overlap: true if this is intended."
        )


def _single_case(source: DataSource, image: Path) -> CaseList:
    """One image/label pair (``image`` is the source's), read when first indexed."""
    name = image.name.split(".")[0]
    load = partial(read_case, image, source.label, source.modality, name=name)
    return CaseList([CaseRef(name, name, load, str(image))], description=name)


def _phantoms(source: DataSource, modalities: list[str]) -> list[Case]:
    """The phantoms of ``modalities`` (the source's) as cases."""
    return [
        as_case(phantom, name=f"{modality}_{index:03d}")
        for modality in modalities
        for index, phantom in enumerate(
            phantom_cases(modality, source.count, source.shape, source.seed)
        )
    ]


def select_subjects(found: CaseList, wanted: Sequence[str]) -> CaseList:
    """Cases whose subject id is listed; ``"000-249"`` stands for a range of numbered ids."""
    chosen: set[str] = set()
    for item in wanted:
        match = _RANGE.match(str(item))
        if match:
            first, last = (int(g) for g in match.groups())
            chosen.update(s for s in found.subjects if s.isdigit() and first <= int(s) <= last)
        else:
            chosen.add(str(item))
    indices = [i for i, subject in enumerate(found.subjects) if subject in chosen]
    if not indices:
        raise ConfigError(
            f"no case of {found.description or 'the dataset'} belongs to subjects {list(wanted)}; "
            f"its subjects look like {found.subjects[:3]}."
        )
    return found.select(indices)
