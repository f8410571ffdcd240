"""Figures of :mod:`samforge.evaluation.plots` that no report test draws."""

from __future__ import annotations

import numpy as np
from PIL import Image

from samforge.evaluation.plots import plot_contact_sheet


def test_contact_sheet_from_an_array(tmp_path):
    path = plot_contact_sheet(np.full((32, 32, 3), 90, np.uint8), tmp_path / "s.png",
                              severity=5, seed=1)  # fmt: skip
    assert Image.open(path).size == (1500, 960)
