"""Fine-tuning from a config dict (:mod:`samforge.workflows.finetune`), without training:
the demo test trains end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from samforge.errors import ConfigError
from samforge.training import load_config
from samforge.workflows.finetune import finetune, finetune_config, read_loss_history

PHANTOMS = {"phantoms": ["us"], "count": 1, "shape": [64, 64], "seed": 3}


def config_for(tmp_path, **changes):
    settings = dict(
        name="tiny", model="samforge_random_tiny", train=[PHANTOMS], output_dir=tmp_path
    )
    settings.update(changes)
    return finetune_config("medsam", steps=5, lr=1e-4, **settings)


def test_the_dict_is_a_valid_config_that_keeps_the_preset(tmp_path):
    resolved = load_config(config_for(tmp_path, seed=2, deterministic=True))
    assert resolved.run_dir == tmp_path.resolve() / "tiny"
    assert resolved.model == "samforge_random_tiny"
    assert resolved.data.train[0].phantoms == ["us"] and resolved.data.train[0].seed == 3
    assert resolved.optimizer.lr == 1e-4 and resolved.optimizer.lr_decay == 1.0
    trainer = resolved.trainer
    assert (trainer.max_steps, trainer.checkpoint_every_n_steps, trainer.log_every_n_steps) == (
        5,
        5,
        1,
    )
    assert trainer.seed == 2 and trainer.deterministic and not trainer.progress
    # medsam's objective, from the preset the dict extends: box prompts, no corrections
    assert (resolved.objective.n_steps, resolved.objective.p_box) == (0, 1.0)


def test_seed_and_determinism_stay_the_presets_unless_given(tmp_path):
    trainer = load_config(config_for(tmp_path)).trainer
    assert (trainer.seed, trainer.deterministic) == (0, False)


def test_a_bad_value_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="lr"):
        load_config(finetune_config("medsam", steps=5, lr=-1.0, name="x", model="m",
                                    train=[PHANTOMS], output_dir=tmp_path))  # fmt: skip
    with pytest.raises(ConfigError, match="if_exists"):
        finetune(config_for(tmp_path), if_exists="keep")


def finished_run(folder, losses):
    """A run folder as training leaves it: metrics.csv with train and val rows."""
    (folder / "logs").mkdir(parents=True)
    lines = ["epoch,step,train/loss,val/loss"]
    lines += [f"0,{step},{loss},," for step, loss in enumerate(losses)]
    lines.append(f"0,{len(losses)},,0.5")  # a validation row: no train/loss
    (folder / "logs" / "metrics.csv").write_text("\n".join(lines) + "\n")
    (folder / "summary.json").write_text(json.dumps({"global_step": len(losses), "seconds": 7}))
    (folder / "model.pth").write_bytes(b"")


def test_loss_history_and_its_windows(tmp_path):
    losses = np.linspace(1.0, 0.1, 20)
    finished_run(tmp_path, losses)
    history = read_loss_history(tmp_path)
    np.testing.assert_array_equal(history.steps, np.arange(20))
    np.testing.assert_allclose(history.losses, losses)
    assert history.window() == 2
    first, last = history.window_means()
    assert first == pytest.approx(losses[:2].mean()) and last == pytest.approx(losses[-2:].mean())


def test_a_finished_run_is_reused_without_training(tmp_path, monkeypatch):
    from samforge.training import engine

    def no_training(*_args, **_kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(engine, "train", no_training)
    finished_run(tmp_path / "tiny", [0.9, 0.8, 0.7])
    result = finetune(config_for(tmp_path), if_exists="reuse")
    assert result.global_step == 3 and result.seconds == 7
    assert result.export_path == tmp_path.resolve() / "tiny" / "model.pth"
    assert len(result.losses.losses) == 3
