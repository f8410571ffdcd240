"""Evaluation output folders: one run at a time (item 2), corrupt results and cache entries
recomputed (item 12), a full disk refused in one line (the tracebacks paragraph)."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
import torch

from helpers.hostile import leftovers
from helpers.synthetic import write_phantom_folder
from samforge.evaluation import read_csv
from samforge.models import build_model, export_official
from samforge.models.config import VIT_TEST

MODEL = "samforge_random_tiny"


@pytest.fixture(scope="module")
def phantom_folder(tmp_path_factory):
    """Three 96×96 ultrasound phantoms, images/ + masks/."""
    return write_phantom_folder(tmp_path_factory.mktemp("phantoms"))


def evaluate_args(phantom_folder, out, *extra, model=MODEL):
    return (
        "evaluate",
        "interactive2d",
        "-m",
        model,
        "-d",
        phantom_folder,
        "-o",
        out,
        "--rounds",
        2,
        "--no-progress",
        *extra,
    )


def test_a_second_run_into_a_held_folder_is_refused_naming_the_holder(
    samforge, phantom_folder, tmp_path
):
    from samforge.files import locked_folder

    out = tmp_path / "run"
    with locked_folder(out):  # what a first run holds while it works
        outcome = samforge(*evaluate_args(phantom_folder, out))
    outcome.refused("in use", "pid")
    assert not (out / "results.csv").exists()


@pytest.fixture(scope="module")
def second_model(tmp_path_factory):
    """Another tiny model (other random weights) as a safetensors file."""
    torch.manual_seed(1)
    model = build_model(VIT_TEST)
    return export_official(model, tmp_path_factory.mktemp("models") / "other_tiny.safetensors")


def test_two_runs_at_once_into_one_folder_never_drop_rows(phantom_folder, second_model, tmp_path):
    """Two `samforge evaluate` processes with different models into one --out, started
    together (as in the audit): each exits 0 with its model's rows in results.csv, or
    refuses with exit 2 saying the folder is in use."""
    out = tmp_path / "run"
    models = (MODEL, second_model)
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "samforge",
                *map(str, evaluate_args(phantom_folder, out, model=m)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for m in models
    ]
    outcomes = [(run.wait(timeout=300), run.communicate()[1]) for run in runs]
    rows = read_csv(out / "results.csv")
    for (code, stderr), label in zip(outcomes, (MODEL, second_model.stem), strict=True):
        if code == 0:
            cases = {row["case"] for row in rows if row["model"] == label}
            assert cases == {"case000", "case001", "case002"}, (label, rows)
        else:
            assert code == 2 and "in use by another samforge run" in stderr, stderr
    assert any(code == 0 for code, _ in outcomes)


def test_a_hand_edited_results_csv_is_recomputed_where_corrupt(samforge, phantom_folder, tmp_path):
    out = tmp_path / "run"
    assert samforge(*evaluate_args(phantom_folder, out)).code == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    expected = {(row["case"], row["round"], row["class_id"]): row["dice"] for row in rows}
    rows[0]["dice"] = "n/a (checked by hand)"
    with (out / "results.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    outcome = samforge(*evaluate_args(phantom_folder, out))
    assert outcome.code == 0, outcome.stderr
    assert "recomputed" in outcome.stderr and rows[0]["case"] in outcome.stderr
    again = read_csv(out / "results.csv")
    assert len(again) == len(rows)  # recomputed once, not duplicated
    found = {(row["case"], str(row["round"]), str(row["class_id"])): row["dice"] for row in again}
    assert found.keys() == expected.keys()
    for key, dice in expected.items():
        assert found[key] == pytest.approx(float(dice), abs=1e-6)


def test_a_cache_entry_of_the_wrong_shape_is_recomputed(samforge, phantom_folder, tmp_path):
    out = tmp_path / "run"
    assert samforge(*evaluate_args(phantom_folder, out)).code == 0
    expected = read_csv(out / "results.csv")
    entries = sorted((out / "embeddings").glob("*/*.pt"))
    assert entries
    for entry in entries:  # well-formed entries (right key) holding a wrong-shaped tensor
        saved = torch.load(entry, weights_only=True)
        torch.save({"key": saved["key"], "embedding": torch.zeros(1, 3, 5, 5)}, entry)
    (out / "results.csv").unlink()

    outcome = samforge(*evaluate_args(phantom_folder, out))
    assert outcome.code == 0, outcome.stderr
    assert "recomput" in outcome.stderr
    again = read_csv(out / "results.csv")
    assert [row["dice"] for row in again] == pytest.approx([row["dice"] for row in expected])
    for entry in entries:  # rewritten with the right embedding
        assert torch.load(entry, weights_only=True)["embedding"].shape != (1, 3, 5, 5)


def test_a_disk_that_fills_up_under_the_results(samforge, phantom_folder, small_disk):
    """The report (plots embedded in HTML) does not fit a 64 KiB disk."""
    cache = small_disk.parent / "cache"
    samforge(*evaluate_args(phantom_folder, small_disk, "--cache", cache)).refused("disk is full")
    assert not leftovers(small_disk)


def test_a_disk_that_fills_up_under_the_embedding_cache(
    samforge, phantom_folder, small_disk, tmp_path
):
    """One tiny-model embedding (256 × 16 × 16 float32, 256 KiB) does not fit 64 KiB."""
    out = tmp_path / "run"
    samforge(*evaluate_args(phantom_folder, out, "--cache", small_disk)).refused("disk is full")
    assert not leftovers(small_disk)
