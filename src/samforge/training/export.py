"""The trained model out of a run: in its family's public format, PEFT deltas merged."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from ..models import PromptableModel, export_model
from ..models.peft import merge_peft
from ..models.semantic import SemanticModel, save_semantic_model
from .config import TrainConfig
from .model_setup import prepare_model


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
