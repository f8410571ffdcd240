"""The interactive 3D protocol on synthetic volumes with an oracle model: the bookkeeping
(objects, central slice, start prompts, per-object Dice, grid search) has closed-form
answers, and the test data are provably never looked at while tuning."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.fake_models import ObjectOracleSam
from helpers.synthetic import disc, ending_object, expected_run, image_of, sphere
from samforge.data import Case, CaseList, CaseRef
from samforge.evaluation import interactive3d as protocol_module
from samforge.evaluation.interactive3d import (
    Protocol3D,
    central_slice,
    evaluate_case,
    grid_search,
    run_interactive3d,
    settings_grid,
    start_prompt,
    write_interactive3d_report,
)
from samforge.inference import Predictor, PropagationSettings


def volume_case(label: np.ndarray, name: str, spacing=(2.0, 1.0, 1.0)) -> Case:
    return Case(image_of(label), label.astype(np.uint8), spacing, np.eye(4), "ct", name)


def two_objects() -> np.ndarray:
    """Class 1: a ball on the left (slices 6–26); class 2: a cylinder on the right, 8–17."""
    label = np.zeros((32, 64, 64), dtype=np.uint8)
    ball = sphere(depth=32, size=64, radius=10)
    label[np.roll(ball, -14, axis=2)] = 1
    label[8:18][:, disc((64, 64), (50, 32), 6)] = 2
    return label


def dice_by_hand(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_central_slice_and_start_prompts():
    mask = np.zeros((20, 32, 32), dtype=bool)
    mask[4:11, 10:20, 5:9] = True  # slices 4..10 -> middle 7
    mask[7, 22, 6] = False
    assert central_slice(mask) == 7
    index, box = start_prompt(mask, "box")
    assert index == 7 and box.points is None
    np.testing.assert_array_equal(box.boxes, [[5, 10, 9, 20]])
    index, point = start_prompt(mask, "point")
    assert index == 7 and point.boxes is None and point.labels.tolist() == [[1.0]]
    x, y = point.points[0, 0].long().tolist()
    assert mask[7, y, x]
    even = np.zeros((20, 8, 8), dtype=bool)
    even[2:6, 2:5, 2:5] = True  # slices 2..5: lower middle 3
    assert central_slice(even) == 3


@pytest.mark.parametrize("start", ["box", "point"])
@pytest.mark.parametrize("threshold", [0.0, 0.5])
def test_per_object_dice_matches_the_closed_form(start, threshold):
    label = two_objects()
    case = volume_case(label, "two")
    setting = PropagationSettings("box", threshold, 0.0)
    rows = evaluate_case(Predictor(ObjectOracleSam()), case, [setting], Protocol3D(start=start))
    assert [(row["class_id"], row["prompt_slice"]) for row in rows] == [(1, 16), (2, 12)]
    for row, class_id in zip(rows, (1, 2), strict=True):
        truth = label == class_id
        kept = expected_run(truth, row["prompt_slice"], threshold)
        assert row["dice"] == pytest.approx(dice_by_hand(kept, truth))
        assert row["slices_segmented"] == int(kept.any(axis=(1, 2)).sum())
        assert row["slices_true"] == int(truth.any(axis=(1, 2)).sum())
    # Without an IoU stop everything is found: Dice 1, HD95 0, NSD 1.
    if threshold == 0.0:
        assert [(r["dice"], r["hd95"], r["nsd"]) for r in rows] == [(1.0, 0.0, 1.0)] * 2
    else:  # the ball's poles are lost (a pixel after a disc): Dice < 1
        assert rows[0]["dice"] < 1.0 and rows[1]["dice"] == 1.0


def test_max_objects_keeps_the_largest():
    case = volume_case(two_objects(), "two")
    rows = evaluate_case(
        Predictor(ObjectOracleSam()), case, [PropagationSettings("box")], Protocol3D(max_objects=1)
    )
    assert [row["class_id"] for row in rows] == [1]  # the ball is larger than the cylinder


def test_grid_search_prefers_the_threshold_that_stops_at_the_object_end():
    label, _ = ending_object()
    case = volume_case(label, "ends")
    grid = settings_grid(["box", "mask"], [0.1, 0.5], [0.0])
    best, rows = grid_search(Predictor(ObjectOracleSam()), [case], grid, Protocol3D())
    # Class 1 (thick) leaks into class 2 at 0.1; both objects are exact at 0.5.
    assert best == PropagationSettings("box", 0.5, 0.0)
    means = {}
    for row in rows:
        means.setdefault(row["setting"], []).append(row["dice"])
    assert np.mean(means["box/iou0.5/ext0"]) == 1.0
    assert np.mean(means["box/iou0.1/ext0"]) < 1.0
    assert len(rows) == 2 * len(grid)  # two objects × four settings


# --- the grid search never reads test labels ----------------------------------------------


def logged_cases(cases: list[Case], split: str, log: list) -> CaseList:
    """A lazy case list that writes (split, name) into ``log`` whenever a case is loaded."""

    def loader(case):
        def load():
            log.append((split, case.name))
            return case

        return load

    return CaseList([CaseRef(c.name, c.subject, loader(c)) for c in cases])


def val_and_test() -> tuple[list[Case], list[Case]]:
    ending, _ = ending_object()
    val = [volume_case(ending, "val_ending"), volume_case(two_objects(), "val_two")]
    test = [volume_case(np.flip(ending, axis=0).copy(), "test_ending")]
    return val, test


def test_no_test_case_is_loaded_before_the_setting_is_chosen(monkeypatch):
    log: list = []
    real = protocol_module.grid_search

    def recording_grid_search(*args, **kwargs):
        best, rows = real(*args, **kwargs)
        log.append(("chosen", best.label()))
        return best, rows

    monkeypatch.setattr(protocol_module, "grid_search", recording_grid_search)
    val, test = val_and_test()
    predictors = {"a": Predictor(ObjectOracleSam()), "b": Predictor(ObjectOracleSam())}
    grid = settings_grid(["single_point"], [0.1, 0.5], [0.0])
    run_interactive3d(
        predictors,
        logged_cases(val, "val", log),
        logged_cases(test, "test", log),
        grid,
        Protocol3D(),
    )
    kinds = [entry[0] for entry in log]
    # Per model: both validation cases, the choice, then (and only then) the test case.
    assert kinds == ["val", "val", "chosen", "test"] * 2


def test_garbage_test_labels_change_nothing_in_the_tuning():
    val, test = val_and_test()
    garbage = [volume_case(test[0].label, "test_ending")]
    garbage[0].label = np.zeros_like(garbage[0].label)  # same image, labels that lie:
    garbage[0].label[2:12, 2:12, 2:12] = 3  # one cube where the image is background
    grid = settings_grid(["box", "points"], [0.1, 0.5], [0.0])

    def run(test_cases):
        predictors = {"oracle": Predictor(ObjectOracleSam())}
        return run_interactive3d(predictors, val, test_cases, grid, Protocol3D(min_size=20))

    rows_real, summary_real = run(test)
    rows_garbage, summary_garbage = run(garbage)
    assert summary_real["chosen_settings"] == summary_garbage["chosen_settings"]
    assert summary_real["validation_grid"] == summary_garbage["validation_grid"]
    val_rows = [r for r in rows_real if r["split"] == "val"]
    assert val_rows == [r for r in rows_garbage if r["split"] == "val"]
    # ...while the test numbers do depend on the test labels (so the check could fail).
    assert summary_real["test_results"] != summary_garbage["test_results"]


# --- report -----------------------------------------------------------------------------------


def test_report_has_results_summary_and_plots(tmp_path):
    val, test = val_and_test()
    grid = settings_grid(["box"], [0.1, 0.5], [0.0])
    predictors = {"oracle": Predictor(ObjectOracleSam())}
    rows, summary = run_interactive3d(predictors, val, test, grid, Protocol3D())
    report = write_interactive3d_report(tmp_path, rows, summary)
    names = {path.name for path in tmp_path.iterdir()}
    assert {"results.csv", "summary.json", "report.html", "validation_grid.png"} <= names
    assert "test_dice.png" in names
    html = report.read_text()
    assert "box/iou0.5/ext0" in html and "data:image/png;base64" in html
    assert summary["chosen_settings"]["oracle"]["setting"] == "box/iou0.5/ext0"
    (test_row,) = summary["test_results"]
    assert test_row["objects"] == 2 and test_row["dice"] == 1.0


# --- resume -----------------------------------------------------------------------------------


class Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_without_recomputing_finished_cases(monkeypatch, tmp_path):
    from samforge.evaluation import read_csv
    from samforge.evaluation.report import write_csv

    val, test = val_and_test()
    grid = settings_grid(["box"], [0.1, 0.5], [0.0])
    csv_path = tmp_path / "results.csv"
    complete, complete_summary = run_interactive3d(
        {"oracle": Predictor(ObjectOracleSam())}, val, test, grid, Protocol3D()
    )

    def save_then_stop(rows):
        write_csv(csv_path, rows)
        raise Interrupted  # as if killed right after the first case was saved

    with pytest.raises(Interrupted):
        run_interactive3d(
            {"oracle": Predictor(ObjectOracleSam())},
            val,
            test,
            grid,
            Protocol3D(),
            checkpoint=save_then_stop,
        )
    saved = read_csv(csv_path)
    assert {row["case"] for row in saved} == {val[0].name}

    evaluated = []
    real = protocol_module.evaluate_case
    monkeypatch.setattr(
        protocol_module,
        "evaluate_case",
        lambda predictor, case, *args, **kwargs: (
            evaluated.append(case.name) or real(predictor, case, *args, **kwargs)
        ),
    )
    resumed, summary = run_interactive3d(
        {"oracle": Predictor(ObjectOracleSam())},
        val,
        test,
        grid,
        Protocol3D(),
        rows=saved,
        checkpoint=lambda rows: write_csv(csv_path, rows),
    )
    assert val[0].name not in evaluated  # finished before the interruption
    assert sorted(evaluated) == sorted([val[1].name, *(case.name for case in test)])
    assert summary == complete_summary
    key = lambda row: (row["split"], row["case"], row["object"], row["setting"])  # noqa: E731
    assert sorted(map(key, resumed)) == sorted(map(key, complete))
    assert len(read_csv(csv_path)) == len(complete)
