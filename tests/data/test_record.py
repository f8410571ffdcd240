"""The Case record and the lazy CaseList."""

from __future__ import annotations

import pickle
from functools import partial

import numpy as np
import pytest

from samforge.data import Case, CaseList, CaseRef, normalize_modality
from samforge.errors import InputImageError


def _case(name="a", spacing=(1.0, 1.0), shape=(4, 5), label=True, **kwargs) -> Case:
    image = np.zeros(shape, dtype=np.int16)
    label_map = np.zeros(shape[: len(spacing)], dtype=np.uint8) if label else None
    return Case(image, label_map, spacing, None, kwargs.pop("modality", "ct"), name, **kwargs)


def test_subject_defaults_to_name_and_volume_follows_spacing():
    case = _case()
    assert case.subject == "a" and not case.is_volume and case.spatial_shape == (4, 5)
    rgb = _case(shape=(4, 5, 3))
    assert not rgb.is_volume and rgb.spatial_shape == (4, 5)
    volume = _case(spacing=(2.0, 1.0, 1.0), shape=(4, 5, 3))  # W = 3, still a volume
    assert volume.is_volume and volume.spatial_shape == (4, 5, 3)


def test_modality_aliases_and_unknown_names():
    assert normalize_modality("MRI") == "mr"
    assert normalize_modality("x-ray") == "xray"
    assert normalize_modality(None) == "other"
    with pytest.raises(InputImageError, match="unknown modality 'pet'"):
        normalize_modality("pet")


def test_label_shape_and_dtype_are_checked():
    with pytest.raises(InputImageError, match=r"case 'bad': label shape \(4, 4\)"):
        Case(np.zeros((4, 5)), np.zeros((4, 4), np.uint8), (1, 1), None, "ct", "bad")
    with pytest.raises(InputImageError, match="integer label map"):
        Case(np.zeros((4, 5)), np.zeros((4, 5), np.float32), (1, 1), None, "ct", "bad")
    with pytest.raises(InputImageError, match="spacing"):
        Case(np.zeros((4, 5)), None, (1, 0), None, "ct", "bad")


def test_repr_is_short():
    text = repr(_case(shape=(400, 500)))
    assert "Case(name='a'" in text and len(text) < 200


def _counting_loader(calls: list, name: str) -> Case:
    calls.append(name)
    return _case(name)


def test_case_list_is_lazy_and_sliceable():
    calls: list[str] = []
    refs = [
        CaseRef(n, f"s{i // 2}", partial(_counting_loader, calls, n)) for i, n in enumerate("abcd")
    ]
    cases = CaseList(refs, "test")
    assert len(cases) == 4 and cases.names == list("abcd")
    assert cases.subjects == ["s0", "s0", "s1", "s1"]
    part = cases[1:3]
    assert isinstance(part, CaseList) and part.names == ["b", "c"]
    assert cases.select([3, 0]).names == ["d", "a"]
    assert calls == []  # nothing read so far
    assert cases[2].name == "c" and calls == ["c"]
    assert [c.name for c in cases] == list("abcd")


def test_case_list_pickles_for_dataloader_workers():
    cases = CaseList.from_cases([_case("x"), _case("y")])
    again = pickle.loads(pickle.dumps(cases))
    assert again.names == ["x", "y"] and again[1].name == "y"
