"""Options, configs and dataset descriptions a user can get wrong: numeric ranges (item 11),
config files and ``--set`` values that are not YAML, YAML tags that would run code, and
nnU-Net ``dataset.json`` files of the wrong shape (the tracebacks paragraph)."""

from __future__ import annotations

import json

import pytest
import yaml

MODEL = "samforge_random_tiny"
EVALUATE_3D = [
    *("evaluate", "interactive3d", "-m", MODEL),
    *("-d", "{data}", "--val-data", "{val}", "-o", "{out}"),
]


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["evaluate", "interactive2d", "-m", MODEL, "-d", "{data}", "-o", "{out}"], "--limit=-1"),
        (["evaluate", "interactive2d", "-m", MODEL, "-d", "{data}", "-o", "{out}"], "--rounds=0"),
        (["evaluate", "robustness", "-m", MODEL, "-d", "{data}", "-o", "{out}"], "--limit=0"),
        (["evaluate", "robustness", "-m", MODEL, "-d", "{data}", "-o", "{out}"], "--min-size=-5"),
        (
            EVALUATE_3D,
            "--iou-threshold=1.5",
        ),
        (
            EVALUATE_3D,
            "--max-objects=0",
        ),
        (["data", "inspect", "{data}"], "--limit=-1"),
        (["data", "corrupt", "{data}", "-o", "{out}"], "--severity=9"),
        (["bench", "--model", MODEL], "--repeats=0"),
        (
            ["segment", "{data}", "--box", "1", "1", "5", "5", "-m", MODEL, "-o", "{out}"],
            "--iou-threshold=-0.1",
        ),
    ],
)
def test_numeric_options_out_of_range_are_refused(samforge, tmp_path, command, option):
    (tmp_path / "data").mkdir()
    (tmp_path / "val").mkdir()
    places = {"data": tmp_path / "data", "val": tmp_path / "val", "out": tmp_path / "out"}
    arguments = [part.format(**places) for part in command]
    outcome = samforge(*arguments, option)
    assert outcome.code == 2, outcome.stderr + outcome.stdout
    name = option.split("=")[0]
    assert f"Invalid value for '{name}'" in outcome.stderr, outcome.stderr
    assert not (tmp_path / "out").exists()


@pytest.fixture
def tiny_config(tmp_path):
    config = {"name": "run", "model": MODEL, "output_dir": str(tmp_path / "runs")}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_config_file_of_binary_bytes(samforge, tmp_path):
    config = tmp_path / "model.yaml"
    config.write_bytes(bytes(range(256)) * 4)
    samforge("train", "-c", config, "--check").refused(str(config), "not a text")


@pytest.mark.parametrize("value", ["trainer.max_steps=[1, 2", "trainer.max_steps={a: b: c}"])
def test_a_set_value_that_is_not_yaml(samforge, tiny_config, value):
    samforge("train", "-c", tiny_config, "--set", value, "--check").refused(
        "--set", "not valid YAML"
    )


def test_a_python_yaml_tag_is_refused_never_constructed(samforge, tmp_path, tiny_config):
    """`!!python/object/apply` would call os.system with a full loader: nothing may run."""
    marker = tmp_path / "ran"
    tag = f"!!python/object/apply:os.system ['touch {marker}']"
    in_set = samforge("train", "-c", tiny_config, "--set", f"name={tag}", "--check")
    in_set.refused("--set")
    config = tmp_path / "evil.yaml"
    config.write_text(f"name: {tag}\nmodel: {MODEL}\n")
    samforge("train", "-c", config, "--check").refused(str(config))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("description", "complaint"),
    [
        (["imagesTr", "labelsTr"], "must hold a JSON object"),
        (
            {"file_ending": 7, "channel_names": {"0": "CT"}, "labels": {"background": 0}},
            "file_ending",
        ),
        (
            {"file_ending": ".nii.gz", "channel_names": ["CT"], "labels": {"background": 0}},
            "channel_names",
        ),
    ],
)
def test_an_nnunet_dataset_json_of_the_wrong_shape(samforge, tmp_path, description, complaint):
    """nnU-Net v2's dataset.json is an object with channel_names (an object), labels and
    file_ending (a string such as ".nii.gz"): nnU-Net's dataset_format documentation."""
    root = tmp_path / "Dataset001_Hostile"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    (root / "dataset.json").write_text(json.dumps(description))
    samforge("data", "inspect", root).refused(str(root / "dataset.json"), complaint)
