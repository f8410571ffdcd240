"""The objective interface: configs, the engine and the Lightning module find an objective
by its kind in the registry, so a new objective is one class and its registration."""

from __future__ import annotations

from typing import ClassVar, Literal

import pytest
import torch
from pydantic import Field

from samforge.errors import ConfigError
from samforge.models import build_model
from samforge.models.config import VIT_TEST
from samforge.training import PRESETS, load_config, train
from samforge.training.objectives import (
    OBJECTIVES,
    IterativePrompting,
    Objective,
    ObjectiveSettings,
    PromptingSettings,
    RobustObjective,
    RobustSettings,
    build_objective,
    register_objective,
)

from .test_engine import tiny_config


class ToySettings(ObjectiveSettings):
    kind: Literal["toy"] = "toy"
    weight: float = Field(1.0, gt=0.0)
    n_steps: int = 0  # a key the iterative kind has too: each kind reads its own


class ToyObjective(Objective):
    """Squared logits of a whole-image box, times a learned scale."""

    settings_type = ToySettings
    checked: ClassVar[list[str]] = []  # models check_model saw

    def __init__(self, settings: ToySettings) -> None:
        super().__init__(settings)
        self.scale = torch.nn.Parameter(torch.ones(()))

    def check_model(self, model: torch.nn.Module) -> None:
        ToyObjective.checked.append(type(model).__name__)

    def losses(self, model, batch, generator):
        images = batch["image"]
        side = float(images.shape[-1])
        boxes = torch.tensor([[0.0, 0.0, side, side]]).repeat(len(images), 1)
        logits, _ = model.decode(model.embed_images(images), boxes=boxes)
        toy = logits.float().pow(2).mean()
        return {"loss": self.settings.weight * self.scale * toy, "toy_term": toy.detach()}


@pytest.fixture
def toy_kind():
    register_objective(ToyObjective)
    yield "toy"
    del OBJECTIVES["toy"]


def test_presets_resolve_to_their_registered_objectives():
    kinds = {preset: load_config(preset).objective.kind for preset in PRESETS}
    assert kinds == {
        "medsam": "iterative",
        "simpleft": "iterative",
        "medicosam": "iterative",
        "robust": "robust",
        "samunet": "iterative",
        "semantic2d": "semantic",
        "semantic3d": "semantic",
    }
    assert isinstance(build_objective(load_config("medicosam").objective), IterativePrompting)
    robust = build_objective(load_config("robust").objective)
    assert isinstance(robust, RobustObjective) and robust.settings.focal_weight == 20.0


def test_settings_built_by_hand_are_validated_once_and_raise_config_error():
    with pytest.raises(ConfigError, match="p_box"):
        PromptingSettings(p_box=1.5)
    with pytest.raises(ConfigError, match="num_points"):
        RobustSettings(num_points=0)
    with pytest.raises(ConfigError, match="unknown_key"):
        RobustSettings(unknown_key=1)
    assert RobustSettings(num_points=0, p_box=1.0).p_box == 1.0


def test_an_objective_takes_only_its_own_settings():
    with pytest.raises(TypeError, match="PromptingSettings"):
        IterativePrompting(RobustSettings())


def test_a_kind_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="taken"):
        register_objective(IterativePrompting)


def test_the_robust_objective_refuses_a_sam_unet():
    from helpers.configs import SAMUNET_TEST

    objective = build_objective(RobustSettings())
    with pytest.raises(ConfigError, match="SAM-UNet"):
        objective.check_model(build_model(SAMUNET_TEST))
    objective.check_model(build_model(VIT_TEST))


def test_a_registered_objective_is_configured_and_trained_without_other_changes(tmp_path, toy_kind):
    values = tiny_config(tmp_path, trainer__max_steps=2, trainer__checkpoint_every_n_steps=1)
    values["objective"] = {"kind": toy_kind, "weight": 2.0, "p_mask": 0.3, "n_steps": 4}
    config = load_config(values)
    # p_mask belongs to another kind and is dropped; n_steps is the toy's own.
    assert config.objective == ToySettings(weight=2.0, n_steps=4)
    with pytest.raises(ConfigError, match=r"objective\.weight: Input should be greater than 0"):
        load_config({**values, "objective": {"kind": toy_kind, "weight": 0}})
    with pytest.raises(ConfigError, match=r"objective\.wieght: unknown key \(did you mean"):
        load_config({**values, "objective": {"kind": toy_kind, "wieght": 1}})

    ToyObjective.checked.clear()
    result = train(config)
    assert ToyObjective.checked == ["Sam"]
    header = (result.run_dir / "logs" / "metrics.csv").read_text().splitlines()[0]
    assert {"train/loss", "train/toy_term"} <= set(header.split(","))
    # The objective's own parameter trained with the model and is in the checkpoints.
    state = torch.load(result.final_checkpoint, weights_only=True)["state_dict"]
    assert state["objective.scale"].item() != 1.0
    exported = torch.load(result.export_path, weights_only=True)
    assert not any(key.startswith("objective.") for key in exported)
