"""Annotation documents without a server: undo/redo, the store on disk, propagation results
that keep the user's own slices, and the saved label map and prompts."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from samforge.data import Case, IntensitySettings
from samforge.errors import NotFoundError, PromptError
from samforge.inference import PropagationResult
from samforge.workflows.annotation import (
    AnnotationDocument,
    DocumentStore,
    SlicePrompts,
    paint_stroke,
    save_annotations,
)

SHAPE = (6, 32, 40)  # (D, H, W)


@pytest.fixture
def case() -> Case:
    image = np.random.default_rng(0).integers(0, 1000, SHAPE).astype(np.int16)
    affine = np.diag([0.8, 0.7, 2.5, 1.0])
    affine[:3, 3] = (-10, 20, 5)
    return Case(image, None, (2.5, 0.7, 0.8), affine, "ct", "toy")


def new_document(case: Case, folder=None) -> AnnotationDocument:
    store = None if folder is None else DocumentStore(folder)
    return AnnotationDocument(case, IntensitySettings().case_mapping(case), store)


def disc(shape, centre, radius) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (rows - centre[1]) ** 2 + (cols - centre[0]) ** 2 < radius**2  # strictly inside


def test_a_brush_dot_is_a_disc_and_erasing_it_clears_it():
    empty = np.zeros((32, 40), bool)
    painted = paint_stroke(empty, [(20, 10)], 4, erase=False)
    np.testing.assert_array_equal(painted, disc(empty.shape, (20, 10), 4))
    assert not paint_stroke(painted, [(20, 10)], 4, erase=True).any()
    line = paint_stroke(empty, [(5, 16), (35, 16)], 2, erase=False)
    assert line[16, 5:36].all()  # no gap along the stroke


def test_undo_and_redo_of_paint_rename_and_delete(case):
    document = new_document(case)
    info = document.add_object("liver")
    document.paint(info.id, 2, [(10, 10)], 3)
    document.update_object(info.id, name="spleen", status="accepted")
    painted = document.mask_slice(info.id, 2).copy()
    document.delete_object(info.id)
    with pytest.raises(NotFoundError, match="no object"):
        document.object(info.id)
    assert document.undo()  # the delete
    assert document.object(info.id).name == "spleen"
    np.testing.assert_array_equal(document.mask_slice(info.id, 2), painted)
    assert document.undo() and document.object(info.id).name == "liver"
    assert document.undo() and not document.mask_slice(info.id, 2).any()
    assert document.redo() and document.mask_slice(info.id, 2).any()
    document.add_object()  # a new edit clears what could be redone
    assert not document.redo()


def test_the_store_brings_back_every_object_and_mask(case, tmp_path):
    document = new_document(case, tmp_path / "doc")
    first = document.add_object("a", "#123456")
    second = document.add_object("b")
    document.paint(first.id, 1, [(5, 5), (15, 9)], 2)
    document.paint(second.id, 4, [(30, 20)], 5)
    document.update_object(first.id, status="accepted")
    document.delete_object(second.id)
    third = document.add_object("c")

    again = new_document(case, tmp_path / "doc")
    assert [info.to_json() for info in again.objects] == [
        info.to_json() for info in document.objects
    ]
    np.testing.assert_array_equal(again.mask_slice(first.id, 1), document.mask_slice(first.id, 1))
    assert again.add_object().id == third.id + 1  # ids are never reused
    assert not (tmp_path / "doc" / "masks" / str(second.id)).exists()


def test_propagation_keeps_the_slices_the_user_made(case):
    document = new_document(case)
    info = document.add_object()
    document.paint(info.id, 0, [(10, 10)], 2)
    mine = document.mask_slice(info.id, 0).copy()
    result_mask = np.zeros(SHAPE, bool)
    result_mask[:, 5:15, 5:15] = True
    segmented = np.array([True, True, True, False, False, False])
    changed = document.apply_propagation(info.id, PropagationResult(result_mask, segmented))
    assert changed == 2  # slices 1 and 2; 0 is painted, 3-5 were not reached
    np.testing.assert_array_equal(document.mask_slice(info.id, 0), mine)
    np.testing.assert_array_equal(document.mask_slice(info.id, 2), result_mask[2])
    assert document.mask_slices(info.id) == [0, 1, 2]
    assert document.undo() and document.mask_slices(info.id) == [0]


def test_labels_of_the_three_planes(case):
    document = new_document(case)
    info = document.add_object()
    document.paint(info.id, 3, [(12, 7)], 1)
    volume = document.label_map(("draft",))
    for axis, index in [(0, 3), (1, 7), (2, 12)]:
        np.testing.assert_array_equal(
            document.label_slice(axis, index), np.take(volume, index, axis=axis)
        )


def test_save_writes_accepted_objects_with_the_source_geometry(case, tmp_path):
    document = new_document(case)
    kept = document.add_object("kept")
    draft = document.add_object("draft")
    document.paint(kept.id, 2, [(20, 16)], 4)
    document.paint(draft.id, 3, [(20, 16)], 4)
    document.update_object(kept.id, status="accepted")
    saved = save_annotations(document, tmp_path / "out", {"model": "toy"})
    image = nib.load(saved.labels)
    np.testing.assert_allclose(image.affine, case.affine)
    labels = np.transpose(np.asarray(image.dataobj), (2, 1, 0))
    np.testing.assert_array_equal(labels == kept.id, document.label_map() == kept.id)
    assert not (labels == draft.id).any()
    record = json.loads(saved.prompts.read_text())
    assert [o["name"] for o in record["objects"]] == ["kept"] and record["model"] == "toy"


def test_bad_prompts_and_names_are_refused():
    with pytest.raises(PromptError, match="one label"):
        SlicePrompts(points=((1.0, 2.0),), labels=())
    with pytest.raises(PromptError, match="1 or 0"):
        SlicePrompts(points=((1.0, 2.0),), labels=(3,))
    with pytest.raises(PromptError, match="prompts must be"):
        SlicePrompts.from_json({"points": [[1, 2]]})
