"""Train/validation/test splits by subject: all cases of one subject land in one split.

Frames of one HC18 subject or slices of one volume are near-duplicates; splitting them by
image would leak the test set into training. The split is a seeded permutation of the sorted
subject ids, cut at the cumulative fractions (largest-remainder rounding, and every split
with a positive fraction gets at least one subject when there are enough), so it depends
only on the set of subjects and the seed, not on the order the cases come in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .record import CaseList

DEFAULT_NAMES = {2: ("train", "test"), 3: ("train", "val", "test")}


def split_by_subject(
    items: Sequence[Any],
    fractions: Sequence[float] | Mapping[str, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> dict[str, Any]:
    """Split cases (or subject ids) into named parts without separating any subject.

    Args:
        items: a :class:`CaseList` (stays lazy: its ``subjects`` are used, nothing is
            loaded), a sequence of :class:`Case` (``.subject``), or subject-id strings.
        fractions: (train, val, test), (train, test), or a mapping name → fraction;
            fractions must be ≥ 0 and sum to 1. They count subjects, not images.
        seed: the permutation's seed.

    Returns:
        name → the items of that part, in their original order (a CaseList for a CaseList).
    """
    parts = _named(fractions)
    subjects = _subjects(items)
    unique = sorted(set(subjects))
    order = np.random.default_rng(seed).permutation(len(unique))
    counts = _counts(len(unique), list(parts.values()))
    assignment: dict[str, str] = {}
    start = 0
    for name, count in zip(parts, counts, strict=True):
        for index in order[start : start + count]:
            assignment[unique[index]] = name
        start += count
    chosen = {name: [i for i, s in enumerate(subjects) if assignment[s] == name] for name in parts}
    if isinstance(items, CaseList):
        return {name: items.select(indices) for name, indices in chosen.items()}
    return {name: [items[i] for i in indices] for name, indices in chosen.items()}


def subject_of(item: Any) -> str:
    """A case's subject id, or the item itself as a string."""
    return str(getattr(item, "subject", item))


def _subjects(items: Sequence[Any]) -> list[str]:
    if isinstance(items, CaseList):
        return items.subjects
    return [subject_of(item) for item in items]


def _named(fractions: Sequence[float] | Mapping[str, float]) -> dict[str, float]:
    if isinstance(fractions, Mapping):
        parts = {str(k): float(v) for k, v in fractions.items()}
    else:
        values = [float(v) for v in fractions]
        if len(values) not in DEFAULT_NAMES:
            raise ConfigError(
                "fractions are (train, val, test), (train, test) or a mapping name → fraction; "
                f"got {tuple(fractions)}."
            )
        parts = dict(zip(DEFAULT_NAMES[len(values)], values, strict=True))
    if not parts or any(v < 0 for v in parts.values()) or abs(sum(parts.values()) - 1) > 1e-6:
        raise ConfigError(f"split fractions must be ≥ 0 and sum to 1; got {parts}.")
    return parts


def _counts(total: int, fractions: list[float]) -> list[int]:
    """Subjects per part: largest-remainder rounding, at least one per positive fraction."""
    exact = np.array(fractions) * total
    counts = np.floor(exact).astype(int)
    for index in np.argsort(-(exact - counts), kind="stable")[: total - counts.sum()]:
        counts[index] += 1
    positive = [i for i, f in enumerate(fractions) if f > 0]
    if total >= len(positive):
        for index in positive:
            while counts[index] == 0:
                donor = int(np.argmax(counts))
                counts[donor] -= 1
                counts[index] += 1
    return counts.tolist()


def overlapping_cases(first: CaseList, second: CaseList) -> list[str]:
    """Names of the cases both lists read from the same file under the same name (the same
    image, or the same array entry of a MedSegBench file), in ``first``'s order.

    Cases held in memory (phantoms: no source file) never count: their names repeat across
    seeds for different images.
    """
    seen = {(_real(ref.source), ref.name) for ref in second.refs if ref.source}
    return [ref.name for ref in first.refs if ref.source and (_real(ref.source), ref.name) in seen]


def _real(source: str) -> str:
    """A source path with symbolic links and relative parts resolved, so that two spellings
    of one file compare equal."""
    return str(Path(source).resolve())
