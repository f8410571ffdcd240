"""Semantic evaluation: closed-form Dice/HD95/NSD, empty classes, MONAI's metric classes,
the runner's checks and resume, and the report."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from samforge.data import Case
from samforge.errors import ConfigError, DataError, InputImageError
from samforge.evaluation import (
    SemanticSettings,
    class_metrics,
    read_csv,
    run_semantic,
    summarize_semantic,
    worst_overlays,
    write_semantic_report,
)

monai_metrics = pytest.importorskip("monai.metrics")

SETTINGS = SemanticSettings(("background", "organ", "lesion"))


def square(shape, rows, cols, value=1):
    labels = np.zeros(shape, dtype=np.uint8)
    labels[rows, cols] = value
    return labels


def test_squares_shifted_along_each_axis_give_the_hand_computed_scores():
    # 10×10 squares, the second shifted by 2 pixels along the axis whose pixels are 0.5 mm;
    # the other axis has 2.0 mm pixels, so spacing applied to the wrong axis gives 4 mm.
    reference = square((24, 24), slice(4, 14), slice(4, 14))
    across = square((24, 24), slice(4, 14), slice(6, 16))
    down = square((24, 24), slice(6, 16), slice(4, 14))
    # Overlap 80 of 100 pixels each: Dice 0.8. Of the 36 surface pixels of each square, the
    # 16 on the sides shared with the other are 0 mm away, the 2 next to them 0.5 mm and the
    # other 18 are 1 mm (the shift) away: HD95 = 1 mm, and the NSD keeps 16, 18 or all 36
    # of each surface for tolerances below 0.5, between 0.5 and 1, and above 1 mm.
    for prediction, spacing in ((across, (2.0, 0.5)), (down, (0.5, 2.0))):
        for tolerance, nsd in ((0.45, 16 / 36), (0.75, 18 / 36), (1.05, 1.0)):
            scores = class_metrics(prediction, reference, [1], spacing, tolerance)
            assert scores["dice"][0] == pytest.approx(0.8)
            assert scores["hd95"][0] == pytest.approx(1.0)
            assert scores["nsd"][0] == pytest.approx(nsd)


def test_cubes_shifted_by_one_thick_slice_give_the_hand_computed_scores():
    # 6³ cubes, the second one slice (3 mm) deeper; in-plane pixels 1 mm.
    spacing = (3.0, 1.0, 1.0)
    reference = np.zeros((16, 16, 16), np.uint8)
    reference[5:11, 5:11, 5:11] = 1
    prediction = np.roll(reference, 1, axis=0)
    # Overlap 5 of 6 slices: Dice 5/6. Each cube has 6³ − 4³ = 152 surface voxels; its
    # 36-voxel face outside the other cube is 3 mm from the other's surface (23% of the
    # surface, so HD95 = 3 mm); inside, the other's face is 3 mm away but its side walls
    # are 1 or 2 mm away in plane, so only those 36 voxels exceed a 2.5 mm tolerance, and
    # at 1.5 mm the 4 face-centre voxels (2 mm from every wall) exceed it too.
    scores = class_metrics(prediction, reference, [1], spacing, 2.5)
    assert scores["dice"][0] == pytest.approx(5 / 6)
    assert scores["hd95"][0] == pytest.approx(3.0)
    assert scores["nsd"][0] == pytest.approx(116 / 152)
    assert class_metrics(prediction, reference, [1], spacing, 1.5)["nsd"][0] == pytest.approx(
        112 / 152
    )


def test_empty_classes_follow_the_documented_table():
    present = square((16, 16), slice(3, 9), slice(3, 9))
    empty = np.zeros((16, 16), np.uint8)
    both = class_metrics(empty, empty, [1], (1.0, 1.0), 2.0)
    assert all(math.isnan(both[name][0]) for name in ("dice", "hd95", "nsd"))
    for prediction, reference in ((present, empty), (empty, present)):  # a false class; a miss
        scores = class_metrics(prediction, reference, [1], (1.0, 1.0), 2.0)
        assert scores["dice"][0] == 0.0 and scores["nsd"][0] == 0.0
        assert math.isnan(scores["hd95"][0])


def test_a_class_absent_from_a_case_is_left_out_of_its_means():
    reference = square((16, 16), slice(3, 9), slice(3, 9))  # organ only, no lesion
    case = Case(np.zeros((16, 16), np.uint8), reference, (1.0, 1.0), None, "ct", "c0")
    rows = run_semantic(
        {"perfect": lambda image, spacing, modality: reference}, [("d", [case])], SETTINGS
    )
    summary = summarize_semantic(rows, SETTINGS)
    lesion = next(r for r in summary["per_class"] if r["class"] == "lesion")
    assert lesion["cases"] == 0 and math.isnan(lesion["dice"])
    assert summary["per_model"][0]["dice"] == 1.0  # the mean over the classes scored
    assert summary["per_case"][0]["classes"] == 1


def blobs(rng: np.random.Generator, shape, classes: int) -> np.ndarray:
    """A random label map of smooth blobs (every class present), like an organ atlas."""
    from scipy import ndimage

    fields = ndimage.gaussian_filter(rng.normal(size=(classes + 1, *shape)), (0, *[2] * len(shape)))
    return fields.argmax(axis=0).astype(np.uint8)


@pytest.mark.parametrize(
    ("shape", "spacing"), [((40, 52), (0.8, 1.3)), ((12, 30, 26), (2.5, 0.9, 1.1))]
)
def test_per_class_figures_agree_with_monais_metric_classes(shape, spacing):
    rng = np.random.default_rng(3)
    settings = SemanticSettings(("background", "a", "b", "c"), tolerance_mm=1.5)
    references = [blobs(rng, shape, 3) for _ in range(4)]
    predictions = [blobs(rng, shape, 3) for _ in range(4)]
    cases = [
        Case(np.zeros(shape, np.float32), ref, spacing, None, "ct", f"case{i}")
        for i, ref in enumerate(references)
    ]
    answers = {id(c.image): p for c, p in zip(cases, predictions, strict=True)}
    rows = run_semantic(
        {"random": lambda image, spacing, modality: answers[id(image)]},
        [("d", cases)],
        settings,
        show_progress=False,
    )

    # MONAI's classes on the whole batch: one-hot with background, channel first.
    def one_hot(labels):
        return torch.nn.functional.one_hot(torch.as_tensor(np.stack(labels)).long(), 4).movedim(
            -1, 1
        )

    metrics = {
        "dice": monai_metrics.DiceMetric(include_background=False, reduction="none"),
        "hd95": monai_metrics.HausdorffDistanceMetric(percentile=95, reduction="none"),
        "nsd": monai_metrics.SurfaceDiceMetric([1.5] * 3, reduction="none"),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, metric in metrics.items():
            kwargs = {} if name == "dice" else {"spacing": spacing}
            expected = metric(one_hot(predictions), one_hot(references), **kwargs).numpy()
            ours = np.array([[r[name] for r in rows if r["case"] == c.name] for c in cases])
            np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
            means = {
                r["class_id"]: r[name] for r in summarize_semantic(rows, settings)["per_class"]
            }
            np.testing.assert_allclose([means[k] for k in (1, 2, 3)], expected.mean(axis=0), 1e-5)


def labelled_case(name="c0", shape=(20, 20), spacing=(1.0, 1.0)):
    image = np.zeros(shape, np.uint8)
    label = np.zeros(shape, np.uint8)
    label[(slice(4, 12),) * len(shape)] = 1
    return Case(image, label, spacing, None, "ct", name)


def test_bad_input_is_refused_with_what_to_do():
    good = labelled_case()
    unlabelled = Case(good.image, None, (1.0, 1.0), None, "ct", "nolabel")
    volume = labelled_case("vol", (6, 20, 20), (2.0, 1.0, 1.0))
    foreign = labelled_case()
    foreign.label[0, 0] = 7
    echo = {"m": lambda image, spacing, modality: np.zeros(image.shape[:2], np.uint8)}
    with pytest.raises(DataError, match="nolabel has no label map"):
        run_semantic(echo, [("d", [unlabelled])], SETTINGS, show_progress=False)
    with pytest.raises(DataError, match=r"labels \[7\] that are not classes of the model"):
        run_semantic(echo, [("d", [foreign])], SETTINGS, show_progress=False)
    renamed = labelled_case()
    renamed.meta["label_names"] = {1: "liver"}
    with pytest.raises(DataError, match=r"classes named \{1: 'liver'\} that are not classes"):
        run_semantic(echo, [("d", [renamed])], SETTINGS, show_progress=False)
    renamed.meta["label_names"] = {1: "Organ"}  # the model's name, spelled otherwise
    run_semantic(echo, [("d", [renamed])], SETTINGS, show_progress=False)
    three_d = SemanticSettings(SETTINGS.class_names, spatial_dims=3)
    with pytest.raises(DataError, match="2D image, but the model segments 3D volumes"):
        run_semantic(echo, [("d", [good])], three_d, show_progress=False)
    two_d = SemanticSettings(SETTINGS.class_names, spatial_dims=2)  # labels volumes slice-wise
    volume_echo = {"m": lambda image, spacing, modality: np.zeros(image.shape, np.uint8)}
    assert run_semantic(volume_echo, [("d", [volume])], two_d, show_progress=False)
    wrong = {"m": lambda image, spacing, modality: np.zeros((5, 5), np.uint8)}
    with pytest.raises(InputImageError, match=r"shape \(5, 5\).*input's spatial shape"):
        run_semantic(wrong, [("d", [good])], SETTINGS, show_progress=False)
    with pytest.raises(ConfigError, match="choose among 1 organ, 2 lesion"):
        SemanticSettings(SETTINGS.class_names, classes=(0,))
    with pytest.raises(ConfigError, match=r"\['liver'\] are not classes"):
        SETTINGS.class_ids(["organ", "liver"])
    assert SETTINGS.class_ids(["Lesion", "1"]) == (2, 1)


def test_a_resumed_run_segments_only_the_new_cases(tmp_path):
    calls = []

    def segment(image, spacing, modality):
        calls.append(image.shape)
        return np.zeros(image.shape, np.uint8)

    first = run_semantic({"m": segment}, [("d", [labelled_case("a")])], SETTINGS)
    summary = summarize_semantic(first, SETTINGS)
    write_semantic_report(tmp_path, first, summary, [], SETTINGS)
    rows = read_csv(tmp_path / "results.csv")
    again = run_semantic(
        {"m": segment}, [("d", [labelled_case("a"), labelled_case("b")])], SETTINGS, rows=rows
    )
    assert len(calls) == 2 and {r["case"] for r in again} == {"a", "b"}
    assert math.isnan(rows[1]["dice"])  # lesion absent in both: NaN survives the CSV


def test_report_shows_each_models_worst_volume_at_its_worst_slice(tmp_path):
    volume = labelled_case("vol", (8, 20, 20), (2.0, 1.0, 1.0))
    other = labelled_case("vol2", (8, 20, 20), (2.0, 1.0, 1.0))

    def misses_slice_6(image, spacing, modality):
        labels = volume.label.copy()
        labels[6] = 0
        return labels

    segmenters = {"m": misses_slice_6}
    cases = {"vol": volume, "vol2": other}
    rows = run_semantic(segmenters, [("d", list(cases.values()))], SETTINGS)
    overlays = worst_overlays(segmenters, lambda dataset, name: cases[name], rows, SETTINGS)
    assert len(overlays) == 2 and "slice 6" in overlays[0].title
    np.testing.assert_array_equal(overlays[0].prediction, 0)
    summary = summarize_semantic(rows, SETTINGS)
    report = write_semantic_report(tmp_path, rows, summary, overlays, SETTINGS)
    assert {p.name for p in tmp_path.iterdir()} >= {
        "results.csv",
        "summary.json",
        "report.html",
        "dice.png",
        "worst_cases.png",
    }
    assert "per class" in report.read_text()
