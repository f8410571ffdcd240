"""``samforge demo --quick`` end to end: every step runs and the report holds sane numbers."""

from __future__ import annotations

import json
import math

from typer.testing import CliRunner

from samforge.cli import app
from samforge.workflows.demo import DEMO_MODEL

runner = CliRunner()

PLOTS = (
    "dice_before_after.png",
    "interactive2d/examples.png",
    "interactive2d/dice_vs_round.png",
    "propagation3d/ct_phantom/propagation.png",
    "propagation3d/mni152_brain/propagation.png",
    "propagation3d/mni152_ventricles/propagation.png",
    "propagation3d/mni152_ventricles/propagation_candidate.png",
    "robustness/robustness.png",
    "finetune/loss.png",
    "finetune/eval/examples.png",
)


def numbers(node, path=(), in_dice=False):
    """(path, value, is_a_dice) for every number in a JSON tree; values under a ``dice``
    key are Dice scores."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from numbers(value, (*path, key), in_dice or key == "dice")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from numbers(value, (*path, index), in_dice)
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield path, node, in_dice
    elif node is None:
        yield path, float("nan"), in_dice  # NaN is written as null


def test_quick_demo_writes_a_report_with_finite_numbers(tmp_path, one_thread):
    """With a candidate beside the default model: here the default's own weights by their
    version name (v2), so the candidate's figures must equal the default's."""
    out = tmp_path / "demo"
    command = ["demo", "--quick", "--out", str(out), "--candidate", "samforge_nano_v2"]
    result = runner.invoke(app, command, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert DEMO_MODEL == "samforge_nano"
    assert "untrained" not in result.output  # the trained built-in model: no warning
    assert "Dice box start, round 1" in result.output  # the summary table

    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= len(PLOTS)
    for plot in PLOTS:
        assert (out / plot).stat().st_size > 0, plot

    summary = json.loads((out / "summary.json").read_text())
    found = list(numbers(summary))
    dices = [(path, value) for path, value, is_dice in found if is_dice]
    for path, value, _ in found:
        assert math.isfinite(value), path
    for path, value in dices:
        assert 0.0 <= value <= 1.0, path
    rounds = summary["rounds"]
    for phase in ("before_finetune", "after_finetune"):
        for start in ("box", "point"):
            assert set(summary["interactive2d"]["dice"][phase][start]) == {
                "round_1",
                f"round_{rounds}",
            }
    assert len(summary["robustness"]["dice"]["per_corruption"]) == 12
    assert summary["training"]["steps"] >= 1
    # a phantom, and what a clinician boxes in a real MRI (and, with the shared data, CT)
    assert {"ct_phantom", "mni152_brain", "mni152_ventricles"} <= set(summary["propagation3d"])
    for volume in summary["propagation3d"].values():
        assert volume["compared"]["candidate"]["dice"].keys() == volume["dice"].keys()
    # The candidate is the same weights as the default model: the same figures.
    assert (
        summary["interactive2d"]["compared"]["candidate"]["dice"]
        == (summary["interactive2d"]["dice"]["before_finetune"])
    )
    assert "3D mni152_brain (candidate)" in result.output
    assert {
        "interactive2d",
        "propagation3d_ct_phantom",
        "propagation3d_mni152_brain",
        "robustness",
        "finetune",
        "total",
    } <= set(summary["seconds"])


def test_an_untrained_model_is_announced_as_such(tmp_path, monkeypatch):
    from samforge.cli import demo

    def stop(*_args, **_kwargs):
        raise SystemExit(0)  # the warning comes first; the steps need not run

    monkeypatch.setattr(demo, "_writable", stop)
    result = runner.invoke(app, ["demo", "--quick", "-m", "samforge_random_tiny"])
    assert "untrained" in result.output


def test_unknown_model_and_unwritable_folder_are_user_errors(tmp_path):
    from samforge.errors import SamforgeError

    result = runner.invoke(app, ["demo", "--quick", "--out", str(tmp_path), "-m", "sam_vit_q"])
    assert isinstance(result.exception, SamforgeError)

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = runner.invoke(app, ["demo", "--quick", "--out", str(blocker / "sub")])
    assert isinstance(result.exception, SamforgeError)
    assert "--out" in str(result.exception)
