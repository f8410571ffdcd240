"""Numbered subject ranges (:mod:`samforge.workflows.subjects`)."""

from __future__ import annotations

import pytest

from samforge.errors import ConfigError
from samforge.workflows.subjects import SubjectRange, subject_images


def test_parse_print_and_overlap():
    subjects = SubjectRange.parse("000-199")
    assert (subjects.first, subjects.last) == (0, 199)
    assert str(subjects) == "000-199" and str(SubjectRange(5, 7)) == "005-007"
    assert subjects.overlaps(SubjectRange(199, 250))
    assert not subjects.overlaps(SubjectRange(200, 250))


@pytest.mark.parametrize("text", ["0-", "12", "a-b", "200-100", "1-2-3"])
def test_a_malformed_range_says_what_it_expects(text):
    with pytest.raises(ConfigError, match="000-199"):
        SubjectRange.parse(text)


@pytest.mark.real_data
def test_the_images_of_hc18_subjects(shared_data):
    images, subjects = subject_images(shared_data / "hc18", SubjectRange(250, 251), "hc18")
    assert subjects == 2 and len(images) >= 2
    assert {image.dataset for image in images} == {"hc18"}
    assert all(image.name.split("_")[0] in ("250", "251") for image in images)
    with pytest.raises(ConfigError, match="no case"):
        subject_images(shared_data / "hc18", SubjectRange(900, 901), "hc18")
