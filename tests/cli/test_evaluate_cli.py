"""``samforge evaluate interactive2d`` and ``robustness`` on phantoms written to disk: reports,
resume and the disk cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers.synthetic import write_phantom_folder
from samforge.cli.evaluate import app
from samforge.evaluation import read_csv
from samforge.inference import Predictor

runner = CliRunner()
MODEL = "samforge_random_tiny"


@pytest.fixture(scope="module")
def phantom_folder(tmp_path_factory):
    """An images/ + masks/ dataset of three 96×96 ultrasound phantoms (uint8 PNG)."""
    return write_phantom_folder(tmp_path_factory.mktemp("phantoms"))


@pytest.fixture
def embed_counter(monkeypatch):
    """Counts image-encoder runs of every Predictor."""
    calls = []
    original = Predictor.embed_rgb

    def counting(self, rgb):
        calls.append(rgb.shape)
        return original(self, rgb)

    monkeypatch.setattr(Predictor, "embed_rgb", counting)
    return calls


def invoke(*args):
    result = runner.invoke(app, [*map(str, args), "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_interactive2d_writes_the_full_report(phantom_folder, tmp_path, embed_counter):
    out = tmp_path / "run"
    invoke(
        "interactive2d",
        "--model",
        MODEL,
        "--data",
        phantom_folder,
        "--out",
        out,
        "--start",
        "both",
        "--rounds",
        "3",
        "--use-masks",
    )
    for name in (
        "results.csv",
        "summary.json",
        "report.html",
        "dice_vs_round.png",
        "dice_per_dataset.png",
        "examples.png",
    ):
        assert (out / name).stat().st_size > 0, name
    rows = read_csv(out / "results.csv")
    assert {row["case"] for row in rows} == {"case000", "case001", "case002"}
    assert {row["start"] for row in rows} == {"box", "point"}
    assert {row["round"] for row in rows} == {1, 2, 3}
    assert all(0.0 <= row["dice"] <= 1.0 for row in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["dice_per_round"]) == 2 * 3
    assert [e["modality"] for e in summary["final_dice_per_modality"]] == [
        "other",
        "other",
    ]  # PNGs carry no modality
    assert all(entry["images"] == 3 for entry in summary["dice_per_round"])
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    assert len(embed_counter) == 3  # one embedding per image, shared by both starts


def test_a_second_run_recomputes_nothing(phantom_folder, tmp_path, embed_counter):
    out = tmp_path / "run"
    args = (
        "interactive2d",
        "--model",
        MODEL,
        "--data",
        phantom_folder,
        "--out",
        out,
        "--rounds",
        "2",
    )
    invoke(*args, "--limit", "2")
    assert len(embed_counter) == 2
    first = read_csv(out / "results.csv")
    invoke(*args, "--limit", "2")
    assert len(embed_counter) == 2  # nothing new
    assert read_csv(out / "results.csv") == first
    invoke(*args)  # the third image is new: only it is computed
    assert len(embed_counter) == 3
    assert {row["case"] for row in read_csv(out / "results.csv")} == {
        "case000",
        "case001",
        "case002",
    }


def test_cached_embeddings_serve_a_new_run_and_a_truncated_file_is_recomputed(
    phantom_folder, tmp_path, embed_counter
):
    cache = tmp_path / "cache"
    common = (
        "interactive2d",
        "--model",
        MODEL,
        "--data",
        phantom_folder,
        "--rounds",
        "1",
        "--limit",
        "2",
        "--cache",
        cache,
    )
    invoke(*common, "--out", tmp_path / "a")
    assert len(embed_counter) == 2
    files = sorted(cache.glob("*/*.pt"))
    assert len(files) == 2
    invoke(*common, "--out", tmp_path / "b")  # new results, same embeddings
    assert len(embed_counter) == 2
    assert read_csv(tmp_path / "a" / "results.csv") == read_csv(tmp_path / "b" / "results.csv")
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 3])  # a copy cut short
    invoke(*common, "--out", tmp_path / "c")
    assert len(embed_counter) == 3  # only the damaged entry is recomputed ...
    assert files[0].read_bytes() == data  # ... and rewritten whole
    assert read_csv(tmp_path / "a" / "results.csv") == read_csv(tmp_path / "c" / "results.csv")


def test_robustness_writes_heatmap_and_summary(phantom_folder, tmp_path):
    out = tmp_path / "robust"
    invoke(
        "robustness",
        "--model",
        MODEL,
        "--data",
        phantom_folder,
        "--out",
        out,
        "--types",
        "gaussian_noise",
        "--types",
        "contrast",
        "--severities",
        "1",
        "--severities",
        "5",
        "--rounds",
        "2",
        "--limit",
        "1",
    )
    rows = read_csv(out / "results.csv")
    variants = {(row["corruption"], row["severity"]) for row in rows}
    assert variants == {
        ("clean", 0),
        ("gaussian_noise", 1),
        ("gaussian_noise", 5),
        ("contrast", 1),
        ("contrast", 5),
    }
    summary = json.loads((out / "summary.json").read_text())
    overall = {(e["model"], e["round"]): e for e in summary["clean_vs_degraded"]}
    assert set(overall) == {(MODEL, 1), (MODEL, 2)}
    assert (out / "robustness.png").stat().st_size > 0
    assert "base64" in (out / "report.html").read_text()


def test_robustness_takes_robustmedsams_random_point_start(phantom_folder, tmp_path):
    out = tmp_path / "random_points"
    invoke(
        "robustness", "--model", MODEL, "--data", phantom_folder, "--out", out,
        "--types", "gaussian_noise", "--start", "random_points", "--rounds", "1",
        "--limit", "1",
    )  # fmt: skip
    rows = read_csv(out / "results.csv")
    assert rows and {row["start"] for row in rows} == {"random_points"}


def test_bad_options_are_refused(phantom_folder, tmp_path):
    from samforge.errors import ConfigError

    with pytest.raises(ConfigError, match="scribble"):
        runner.invoke(
            app,
            [
                "interactive2d",
                "-m",
                MODEL,
                "-d",
                str(phantom_folder),
                "-o",
                str(tmp_path),
                "--start",
                "scribble",
            ],
            catch_exceptions=False,
        )
    with pytest.raises(ConfigError, match="severities"):
        runner.invoke(
            app,
            [
                "robustness",
                "-m",
                MODEL,
                "-d",
                str(phantom_folder),
                "-o",
                str(tmp_path),
                "--severities",
                "9",
            ],
            catch_exceptions=False,
        )


def test_model_files_with_one_stem_are_labelled_by_their_folder(tmp_path):
    from samforge.workflows.predictors import model_labels

    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        (tmp_path / run / "model.pth").write_bytes(b"")
    models = [str(tmp_path / "a" / "model.pth"), str(tmp_path / "b" / "model.pth"), "sam_vit_b"]
    assert model_labels(models) == ["a/model", "b/model", "sam_vit_b"]
    assert model_labels(models[:1]) == ["model"]


def test_connectivity_decides_whether_diagonal_neighbours_are_one_object(tmp_path):
    """Two squares touching only at a corner: one object 8-connected (medico-sam's
    ``skimage.measure.label`` default), two 4-connected."""
    from PIL import Image

    for folder in ("images", "masks"):
        (tmp_path / "data" / folder).mkdir(parents=True)
    mask = np.zeros((64, 64), np.uint8)
    mask[10:30, 10:30] = 1
    mask[30:50, 30:50] = 1
    image = np.where(mask[..., None] > 0, 200, 40).astype(np.uint8).repeat(3, axis=2)
    Image.fromarray(image).save(tmp_path / "data" / "images" / "corner.png")
    Image.fromarray(mask).save(tmp_path / "data" / "masks" / "corner.png")
    objects = {}
    for connectivity in (1, 2):
        out = tmp_path / f"c{connectivity}"
        invoke(
            "interactive2d",
            "-m",
            MODEL,
            "-d",
            tmp_path / "data",
            "-o",
            out,
            "--rounds",
            "1",
            "--connectivity",
            connectivity,
        )
        (row,) = read_csv(out / "results.csv")  # one class, one round
        objects[connectivity] = row["num_objects"]
    assert objects == {2: 1, 1: 2}
    refused = runner.invoke(
        app,
        [
            "interactive2d",
            "-m",
            MODEL,
            "-d",
            str(tmp_path / "data"),
            "-o",
            str(tmp_path / "c3"),
            "--connectivity",
            "3",
        ],
    )
    assert refused.exit_code == 2 and "connectivity" in refused.output.lower()
