"""Splits by subject: deterministic, complete, never splitting a subject."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from samforge.data import Case, CaseList, CaseRef, split_by_subject
from samforge.errors import ConfigError


def _subjects(n_subjects: int = 50, per_subject: int = 3) -> list[str]:
    return [f"s{i:03d}" for i in range(n_subjects) for _ in range(per_subject)]


def test_no_subject_is_split_and_nothing_is_lost():
    subjects = _subjects()
    parts = split_by_subject(subjects, seed=3)
    assert list(parts) == ["train", "val", "test"]
    seen = [set(p) for p in parts.values()]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert sorted(s for part in parts.values() for s in part) == sorted(subjects)
    assert [len(s) for s in seen] == [40, 5, 5]


def test_deterministic_for_a_seed_and_independent_of_input_order():
    subjects = _subjects()
    first = split_by_subject(subjects, seed=1)
    assert first == split_by_subject(subjects, seed=1)
    assert first != split_by_subject(subjects, seed=2)
    shuffled = list(np.random.default_rng(0).permutation(subjects))
    again = split_by_subject(shuffled, seed=1)
    assert {k: set(v) for k, v in again.items()} == {k: set(v) for k, v in first.items()}


def test_named_and_two_way_fractions():
    parts = split_by_subject(_subjects(10), {"fit": 0.7, "holdout": 0.3})
    assert {k: len(set(v)) for k, v in parts.items()} == {"fit": 7, "holdout": 3}
    assert list(split_by_subject(_subjects(10), (0.5, 0.5))) == ["train", "test"]


def test_every_positive_part_gets_a_subject():
    parts = split_by_subject(["a", "b", "c"], (0.9, 0.05, 0.05))
    assert all(len(v) == 1 for v in parts.values())
    empty = split_by_subject(["a", "b"], (1.0, 0.0, 0.0))
    assert empty["train"] == ["a", "b"] and empty["val"] == [] == empty["test"]


def test_bad_fractions():
    with pytest.raises(ConfigError, match="sum to 1"):
        split_by_subject(["a"], (0.5, 0.2, 0.2))
    with pytest.raises(ConfigError, match=r"\(train, val, test\)"):
        split_by_subject(["a"], (0.25,) * 4)
    with pytest.raises(ConfigError, match="≥ 0"):
        split_by_subject(["a"], {"x": 1.5, "y": -0.5})


def _never(name: str) -> Case:
    raise AssertionError(f"{name} was loaded")


def test_cases_and_lazy_case_lists():
    cases = [
        Case(np.zeros((2, 2)), None, (1, 1), None, "us", f"c{i}", f"p{i % 4}") for i in range(12)
    ]
    parts = split_by_subject(cases, (0.5, 0.5), seed=0)
    for part in parts.values():
        assert len({c.subject for c in part}) == 2 and all(isinstance(c, Case) for c in part)
    lazy = CaseList([CaseRef(f"c{i}", f"p{i % 4}", partial(_never, f"c{i}")) for i in range(12)])
    lazy_parts = split_by_subject(lazy, (0.5, 0.5), seed=0)
    assert all(isinstance(p, CaseList) for p in lazy_parts.values())
    assert {k: v.names for k, v in lazy_parts.items()} == {
        k: [c.name for c in v] for k, v in parts.items()
    }
