"""Numbered subject ranges (HC18's ``000-199``) and the evaluation images of a range."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..data import CaseList, open_dataset
from ..errors import ConfigError
from ..evaluation import EvalImage, iter_images

_RANGE = re.compile(r"(\d+)-(\d+)")


@dataclass(frozen=True)
class SubjectRange:
    """Subjects ``first`` to ``last`` (inclusive) of a dataset with numbered subject ids."""

    first: int
    last: int

    @classmethod
    def parse(cls, text: str) -> SubjectRange:
        """``"000-199"`` -> SubjectRange(0, 199).

        Raises:
            ConfigError: not two numbers joined by a hyphen, or first > last.
        """
        match = _RANGE.fullmatch(text.strip())
        if not match or int(match.group(1)) > int(match.group(2)):
            raise ConfigError(f"give a subject range such as 000-199, not {text!r}.")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        """The form training configs take in ``subjects: [...]``."""
        return f"{self.first:03d}-{self.last:03d}"

    def overlaps(self, other: SubjectRange) -> bool:
        return self.first <= other.last and other.first <= self.last

    def select(self, cases: CaseList) -> CaseList:
        """The cases whose subject id is a number in the range (nothing loaded)."""
        chosen = [
            index
            for index, subject in enumerate(cases.subjects)
            if subject.isdigit() and self.first <= int(subject) <= self.last
        ]
        return cases.select(chosen)


def subject_images(path: Path, subjects: SubjectRange, dataset: str) -> tuple[list[EvalImage], int]:
    """The evaluation images of the subjects in range of the dataset at ``path`` (named
    ``dataset`` in reports), and how many subjects they come from.

    Raises:
        ConfigError: no case of the dataset belongs to the range.
    """
    found = open_dataset(path)
    chosen = subjects.select(found)
    if len(chosen) == 0:
        raise ConfigError(
            f"no case of {path} belongs to subjects {subjects}; its subjects look like "
            f"{found.subjects[:3]}."
        )
    return list(iter_images(chosen, dataset)), len(set(chosen.subjects))
