"""Semantic evaluation on real images: HC18's filled head outlines through the HC18 reader
and a subject range, and the MNI152 template's tissue labels with their millimetre spacing.

A prediction that is the reference moved by a vector s has every surface voxel exactly |s|
from its copy on the other surface, so HD95 ≤ |s| and the NSD at tolerance |s| is 1: bounds
that hold for any shape, here real anatomy.
"""

from __future__ import annotations

import numpy as np
import pytest

from samforge.data import open_dataset
from samforge.data.builtin import mni152_case
from samforge.evaluation import SemanticSettings, run_semantic, summarize_semantic
from samforge.training.sources import select_subjects

pytest.importorskip("monai.metrics")


def moved(labels: np.ndarray, axis: int, step: int = 1) -> np.ndarray:
    """``labels`` moved ``step`` voxels along ``axis``, zeros coming in."""
    out = np.roll(labels, step, axis=axis)
    index = [slice(None)] * labels.ndim
    index[axis] = slice(0, step)
    out[tuple(index)] = 0
    return out


@pytest.mark.real_data
def test_hc18_test_subjects_scored_against_themselves_and_moved(shared_data):
    chosen = select_subjects(open_dataset(shared_data / "hc18"), ["250-251"])
    assert sorted(set(chosen.subjects)) == ["250", "251"]
    cases = list(chosen)  # loaded once: the segmenters below look their labels up
    settings = SemanticSettings(("background", "fetal_head"), tolerance_mm=3.0)
    labels = {id(case.image): case.label for case in cases}
    rows = run_semantic(
        {
            "same": lambda image, spacing, modality: labels[id(image)],
            "moved": lambda image, spacing, modality: moved(labels[id(image)], 1, 3),
            "empty": lambda image, spacing, modality: np.zeros_like(labels[id(image)]),
        },
        [("hc18", cases)],
        settings,
        show_progress=False,
    )
    summary = {r["model"]: r for r in summarize_semantic(rows, settings)["per_model"]}
    assert summary["same"]["dice"] == 1.0 and summary["same"]["hd95"] == 0.0
    assert summary["same"]["nsd"] == 1.0 and summary["same"]["cases"] == len(cases)
    # 3 pixels right (HC18's PNGs carry no pixel size: units are pixels).
    assert 0 < summary["moved"]["hd95"] <= 3.0 + 1e-6 and summary["moved"]["nsd"] == 1.0
    assert 0.9 < summary["moved"]["dice"] < 1.0
    assert summary["empty"]["dice"] == 0.0 and summary["empty"]["nsd"] == 0.0
    assert summary["empty"]["hd95_undefined"] == len(cases)


def test_mni152_tissues_moved_one_slice_are_within_its_thickness_in_mm():
    brain = mni152_case(step=4)  # 4 mm voxels: about 50 × 59 × 48
    assert brain.label is not None and brain.spacing == (4.0, 4.0, 4.0)
    settings = SemanticSettings(
        ("background", "grey matter", "white matter"), tolerance_mm=4.0, spatial_dims=3
    )
    label = brain.label
    rows = run_semantic(
        {"moved": lambda image, spacing, modality: moved(label, 0)}, [("mni", [brain])], settings
    )
    for row in rows:
        assert 0 < row["hd95"] <= 4.0 + 1e-6
        assert row["nsd"] == pytest.approx(1.0)
        overlap = np.logical_and(moved(label, 0) == row["class_id"], label == row["class_id"])
        sizes = row["voxels"] + row["voxels_predicted"]
        assert row["dice"] == pytest.approx(2 * overlap.sum() / sizes, abs=1e-6)
