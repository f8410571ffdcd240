"""The trained model out of a run: in its family's public format, PEFT deltas merged."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from ..models import PromptableModel, export_model
from ..models.peft import merge_peft
from ..models.semantic import (
    SamSemanticModel2d,
    SemanticInfo,
    SemanticModel,
    save_semantic_model,
)
from .config import TrainConfig
from .model_setup import prepare_model
from .objectives.joint_semantic import FOREGROUND_CLASSES, JointSemanticLoss


def export_trained(model: PromptableModel | SemanticModel, path: Path, config: TrainConfig) -> Path:
    """``model`` written to ``path`` in its family's public format (the official SAM format
    for SAM models; MedicoSAM's ``model_state`` + ``decoder_state`` with samforge's
    metadata for semantic models), PEFT deltas merged into dense weights, with the run as
    provenance."""
    merged = merge_peft(copy.deepcopy(model)).eval()
    provenance = {
        "trained_by": "samforge train",
        "run": config.name,
        "base_model": config.model,
        "objective": config.objective.model_dump(mode="json"),
        "peft": config.peft.kind,
        "freeze": config.freeze.policy,
    }
    if isinstance(merged, SemanticModel):
        return save_semantic_model(merged, path, provenance=provenance)
    return export_model(merged, path, provenance=provenance)


def export_joint_decoder(
    model: PromptableModel | SemanticModel, objective: nn.Module, path: Path, config: TrainConfig
) -> Path | None:
    """With ``objective.e_sem``: the trained SAM model with its joint semantic decoder
    (background / foreground of the objects) in MedicoSAM's format, which
    :func:`~samforge.models.semantic.load_semantic_model` reads; None without one."""
    joint = getattr(objective, "semantic_loss", None)
    if not isinstance(joint, JointSemanticLoss) or not isinstance(model, PromptableModel):
        return None
    size = model.config.image_size
    data = config.data
    info = SemanticInfo(2, FOREGROUND_CLASSES, (size, size), 3, data.intensity, data.window)
    merged = merge_peft(copy.deepcopy(model)).eval()
    semantic = SamSemanticModel2d(merged, info, joint.decoder.layout)
    semantic.head.load_state_dict(joint.decoder.state_dict())
    provenance = {"trained_by": "samforge train (e_sem)", "run": config.name}
    return save_semantic_model(semantic, path, provenance=provenance)


def gathered_model(config: TrainConfig, checkpoint: Path) -> PromptableModel | SemanticModel:
    """The whole model of a checkpoint. Under FSDP each rank holds a shard; the checkpoint
    (saved with a full state dict) holds the whole model. Not yet exercised on GPUs here."""
    model, _ = prepare_model(config)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    # Keys of the objective's own parts (e.g. a semantic head) are not the model's.
    model.load_state_dict(
        {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    )
    return model
