"""MedicoSAM's joint semantic pretraining (``objective.e_sem``): one optimiser updates the
shared encoder and the semantic decoder in one step, and the run exports the decoder in
MedicoSAM's format beside the SAM model."""

from __future__ import annotations

import torch

from samforge.data import collate_objects
from samforge.models.semantic import SamSemanticModel2d, load_semantic_model
from samforge.training import load_config, train
from samforge.training.data_module import SegmentationDataModule
from samforge.training.model_setup import prepare_model
from samforge.training.module import SamTrainingModule
from samforge.training.objectives import build_objective
from samforge.training.objectives.joint_semantic import JointSemanticLoss

SMALL = [
    "objective.e_sem=true",
    "objective.n_steps=1",
    "data.n_obj=2",
    "data.train.0.count=1",
    "image_size=64",
    "trainer.progress=false",
]


def test_one_optimiser_step_updates_encoder_and_semantic_decoder():
    config = load_config("medicosam", SMALL)
    model, _ = prepare_model(config)
    objective = build_objective(config.objective)
    assert isinstance(objective.semantic_loss, JointSemanticLoss)
    module = SamTrainingModule(model, objective, config.optimizer)
    optimizer = module.configure_optimizers()["optimizer"]
    data = SegmentationDataModule(config.data, model.config.input_transform())
    data.setup()
    batch = collate_objects([data.train_set[0]])
    encoder = model.image_encoder.patch_embed.proj.weight
    decoder = objective.semantic_loss.decoder.out_conv.weight
    before = encoder.detach().clone(), decoder.detach().clone()
    logs = objective.losses(model, batch, torch.Generator().manual_seed(0))
    assert logs["semantic_loss"] > 0
    logs["loss"].backward()
    optimizer.step()  # the only optimiser: its groups hold the decoder too
    assert not torch.equal(encoder, before[0]) and not torch.equal(decoder, before[1])


def test_the_run_exports_the_joint_decoder_in_medicosams_format(tmp_path):
    config = load_config(
        "medicosam",
        [*SMALL, f"output_dir={tmp_path}", "trainer.max_steps=1", "trainer.log_every_n_steps=1"],
    )
    result = train(config)
    semantic = load_semantic_model(result.run_dir / "model_semantic.pth")
    assert isinstance(semantic, SamSemanticModel2d)
    assert semantic.info.class_names == ("background", "foreground")
    official = torch.load(result.export_path, weights_only=True)
    joint = torch.load(result.run_dir / "model_semantic.pth", weights_only=True)
    assert set(joint["model_state"]) == set(official)
    assert all(torch.equal(joint["model_state"][k], v) for k, v in official.items())
    logs = [path.read_text() for path in result.run_dir.rglob("*.csv")]
    assert any("semantic_loss" in text for text in logs)
