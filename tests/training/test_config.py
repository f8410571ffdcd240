"""Training configs: presets, inheritance, overrides, and clear errors before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from samforge.errors import ConfigError
from samforge.training import PRESETS, load_config
from samforge.training.config import preset_path

PHANTOMS = {"train": [{"phantoms": ["ct"], "count": 2}]}


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_is_valid(preset):
    config = load_config(preset)
    assert config.name == preset
    assert preset_path(preset).is_file()


def test_presets_follow_the_papers():
    medsam, simpleft, medicosam = (load_config(p).objective for p in PRESETS[:3])
    assert (medsam.n_steps, medsam.p_box, medsam.p_mask) == (0, 1.0, 0.0)
    assert (simpleft.n_steps, simpleft.p_box, simpleft.p_mask) == (0, 0.5, 0.0)
    assert (medicosam.n_steps, medicosam.p_box, medicosam.p_mask) == (8, 0.5, 0.5)
    robust = load_config("robust")
    assert robust.objective.kind == "robust" and robust.freeze.policy == "decoder"
    assert robust.data.degradations and robust.optimizer.grad_clip == 1.0
    assert load_config("medicosam").optimizer.lr == pytest.approx(1e-5)


def test_extends_merges_sections_key_by_key(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"extends": "medicosam", "objective": {"p_mask": 0.2}}))
    child = tmp_path / "child.yaml"
    child.write_text(yaml.safe_dump({"extends": str(base), "name": "child", "data": PHANTOMS}))
    config = load_config(child, ["objective.n_steps=4", "data.train.0.count=5"])
    assert config.objective.p_mask == 0.2  # from base
    assert config.objective.p_box == 0.5  # from the preset
    assert config.objective.n_steps == 4  # override
    assert config.data.train[0].count == 5
    assert config.data.n_obj == 5  # the preset's, kept beside the child's data.train


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"objective": {"p_box": 1.5}}, "objective.p_box: Input should be less than or equal to 1"),
        (
            {"trainer": {"max_epoch": 3}},
            "trainer.max_epoch: unknown key (did you mean 'max_epochs'?)",
        ),
        ({"freeze": {"policy": "encoder"}}, "unknown policy 'encoder'"),
        ({"objective": {"kind": "robust"}}, "set data.degradations"),
        ({"peft": {"kind": "lora"}}, "freeze.policy to 'encoder_frozen'"),
        ({"data": {"train": [{"path": "/no/such/folder"}]}}, "does not exist"),
        ({"data": {"train": [{"phantoms": ["ct"], "path": "x"}]}}, "exactly one of `path`"),
        ({"trainer": {"precision": "fp8"}}, "trainer.precision"),
    ],
)
def test_bad_configs_fail_naming_the_key(values, message):
    merged = {"extends": "medicosam", **values}
    with pytest.raises(ConfigError) as error:
        load_config(merged)
    assert message in str(error.value)


def test_unknown_preset_and_bad_override_and_extends_loop(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'medsam'"):
        load_config("medsm")
    with pytest.raises(ConfigError, match=r"key\.path=value"):
        load_config("medicosam", ["trainer.max_steps"])
    loop = tmp_path / "loop.yaml"
    loop.write_text(yaml.safe_dump({"extends": str(loop)}))
    with pytest.raises(ConfigError, match="loop"):
        load_config(loop)
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_relative_extends_is_found_beside_the_extending_file(tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "base.yaml").write_text(yaml.safe_dump({"extends": "medsam", "data": PHANTOMS}))
    (folder / "run.yaml").write_text(yaml.safe_dump({"extends": "base.yaml", "name": "run"}))
    config = load_config(folder / "run.yaml")
    assert config.objective.p_box == 1.0 and config.name == "run"


@pytest.mark.parametrize(
    "override", ["trainer.max_steps=0", "objective.num_points=0", "data.train=[]"]
)
def test_values_that_would_fail_later_fail_at_load(override):
    overrides = [override]
    if override.startswith("objective.num_points"):
        overrides = ["objective.kind=robust", "data.degradations=[all]", override]
    with pytest.raises(ConfigError):
        load_config("medicosam", overrides)
    if override.startswith("objective.num_points"):  # an iterative run ignores num_points
        objective = load_config("medicosam", [override]).objective
        assert objective.kind == "iterative" and "num_points" not in objective.model_dump()


def test_a_folder_named_like_a_preset_does_not_hide_it(tmp_path, monkeypatch):
    (tmp_path / "medsam").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load_config("medsam").objective.p_box == 1.0


def test_the_samforge_nano_recipe_is_valid(monkeypatch):
    """The recipe names ../shared/data relative to the repository root."""
    root = Path(__file__).resolve().parents[2]
    if not (root.parent / "shared" / "data" / "hc18").is_dir():
        pytest.skip("../shared/data is absent beside the repository")
    monkeypatch.chdir(root)
    config = load_config(root / "configs" / "recipes" / "samforge_nano.yaml")
    assert config.model == "random:vit_nano"
    held_out = {tuple(s.subjects or ()) for s in config.data.val if s.path is not None}
    assert held_out == {("250-299",)}


@pytest.mark.parametrize(
    ("recipe", "start", "ends", "chain"),
    [
        ("samforge_nano_v2", "samforge_nano_v1", False, 1),
        ("samforge_nano_v3", "samforge_nano_v2", True, 1),
        ("samforge_nano_v3_chains", "samforge_nano_v2", True, 3),
    ],
)
def test_the_samforge_nano_recipes_are_valid_and_keep_the_card_s_data_out(
    monkeypatch, recipe, start, ends, chain
):
    """v2, v3 and v3 on chains train for propagation and never on what
    experiments/nano_model_card.py measures: HC18 250–299, TotalSegmentator's
    example_ct_sm / example_mr_sm, the MNI152 template; v3 (extending v2's recipe) adds the
    steps past organs' ends, the chain recipe (extending v3's) three steps per item."""
    root = Path(__file__).resolve().parents[2]
    if not (root.parent / "shared" / "data" / "hc18").is_dir():
        pytest.skip("../shared/data is absent beside the repository")
    monkeypatch.chdir(root)
    config = load_config(root / "configs" / "recipes" / f"{recipe}.yaml")
    assert config.model == start and config.objective.kind == "propagation"
    volumes = config.data.volumes
    assert volumes is not None and not volumes.mni152 and volumes.mode == "mask"
    assert volumes.organ_ends is ends and volumes.chain == chain
    trained = [s.image for s in config.data.train] + [f.image for f in volumes.files]
    assert not any(path is not None and "_sm." in path.name for path in trained)
    subjects = [s.subjects for s in config.data.train if s.path is not None]
    assert subjects == [["000-249"]]
