"""The model a run trains: loaded or built from scratch, converted to SAM-UNet if asked,
PEFT layers added, the freeze policy applied."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..errors import CheckpointError, ConfigError
from ..models import PromptableModel, SamModel, SamUNet, build_model, get_config, load_model
from ..models.peft import apply_lora, apply_svd
from ..models.sam.image_encoder import ImageEncoderViT
from ..models.semantic import SamSemanticModel2d, SemanticModel
from .config import TrainConfig
from .freeze import FreezeReport, apply_freeze_policy, keep_frozen_norms_in_eval
from .imagenet import resnet_weights_hint
from .objectives import objective_class
from .semantic_setup import MONAI_PREFIX, build_semantic_model

# ResNet branch of SAM-UNet: (block, blocks per stage) of each ``resnet`` choice.
_RESNETS = {"resnet50": ("bottleneck", (3, 4, 6, 3)), "resnet34": ("basic", (3, 4, 6, 3))}


def prepare_model(
    config: TrainConfig,
) -> tuple[PromptableModel | SemanticModel, FreezeReport]:
    """The model to train, in train mode, and what its freeze policy left trainable. A
    semantic objective trains a semantic model: on the configured SAM model's encoder, or
    a MONAI network (``model: monai:unet``)."""
    semantic = objective_class(config.objective).model_kind == "semantic"
    model: PromptableModel | SemanticModel
    if semantic and config.model.startswith(MONAI_PREFIX):
        model = build_semantic_model(config, None)
    else:
        model = _sam_model(config)
        if semantic:
            model = build_semantic_model(config, model)
    peft = config.peft
    if peft.kind == "lora":
        apply_lora(
            model,
            rank=peft.rank,
            alpha=peft.alpha,
            blocks=peft.blocks,
            include_mlp=peft.include_mlp,
            dropout=peft.dropout,
        )
    elif peft.kind == "svd":
        apply_svd(model, blocks=peft.blocks, include_mlp=peft.include_mlp)
    freeze = config.freeze
    frozen = list(freeze.frozen or [])
    if isinstance(model, SamSemanticModel2d):  # its SAM prompt parts never run
        frozen += ["prompt_encoder", "mask_decoder"]
    report = apply_freeze_policy(
        model,
        freeze.policy,
        blocks=freeze.blocks,
        trainable=freeze.trainable,
        frozen=frozen or None,
    )
    if config.trainer.activation_checkpointing:
        checkpoint_encoder_blocks(model)
    model.train()
    keep_frozen_norms_in_eval(model)  # Lightning keeps the modes it is given
    return model, report


def checkpoint_encoder_blocks(model: PromptableModel | SemanticModel) -> None:
    """Recompute the ViT image encoder's blocks in the backward pass instead of keeping
    their activations: the same loss and gradients in less memory, for a second encoder
    forward pass per step.

    Not for SAM-UNet, which runs the ViT's blocks itself between its ResNet stages, nor
    MobileSAM's TinyViT: its batch norms would update their running statistics again in
    the recomputation, so the trained model would differ from one trained without. A
    semantic model on SAM's ViT is covered; MONAI's baselines have no ViT to checkpoint.
    """
    encoder = getattr(model, "image_encoder", None)
    if isinstance(model, SamUNet) or not isinstance(encoder, ImageEncoderViT):
        raise ConfigError(
            "trainer.activation_checkpointing covers SAM's ViT image encoder (SAM, SAM-Med2D, "
            f"RobustSAM), not the encoder of a {type(model).__name__} "
            f"({type(encoder).__name__ if encoder is not None else 'none'}); set it to false."
        )
    encoder.activation_checkpointing = True


def _sam_model(config: TrainConfig) -> PromptableModel:
    """The configured SAM-family model (loaded or random), converted as configured."""
    model: PromptableModel
    if config.model.startswith("random:"):
        model = _random_model(config)
    else:
        model = load_model(
            config.model, image_size=config.image_size, preprocessing=config.preprocessing
        )
    if config.convert_to == "sam_unet":
        model = _sam_unet_from(model, config)
    return model


def _random_model(config: TrainConfig) -> SamModel:
    """A model of a named architecture, initialised from the run's seed, to train from
    scratch."""
    architecture = get_config(config.model.removeprefix("random:"))
    changes = {"image_size": config.image_size, "preprocessing": config.preprocessing}
    architecture = architecture.with_changes(**{k: v for k, v in changes.items() if v})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.trainer.seed)
        model = build_model(architecture)
    model.provenance = {
        "source": f"random initialisation of {config.model[7:]} (seed {config.trainer.seed})"
    }
    return model


def _sam_unet_from(sam: PromptableModel, config: TrainConfig) -> SamUNet:
    """A SAM-UNet whose ViT, prompt encoder and SAM decoder come from ``sam``; the ResNet
    branch from ``resnet_weights`` (torchvision names) or random."""
    block, layers = _RESNETS[config.resnet]
    target = sam.config.with_changes(family="sam_unet", resnet_block=block, resnet_layers=layers)
    model = build_model(target)
    assert isinstance(model, SamUNet)  # the family of the target config
    model.load_sam_weights(sam.state_dict())
    if config.resnet_weights is not None:
        model.load_resnet_weights(_resnet_state(config.resnet_weights, config.resnet))
    else:
        warnings.warn(
            f"resnet_weights is not set, so the {config.resnet} branch starts from random "
            "weights. " + resnet_weights_hint(config.resnet),
            stacklevel=2,
        )
    model.provenance = {"source": f"SAM-UNet built around {config.model}"}
    return model


def _resnet_state(path: Path, resnet: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpicklable, truncated, not a torch file
        raise CheckpointError(
            f"resnet_weights: cannot read {path} ({error}). " + resnet_weights_hint(resnet)
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"resnet_weights: {path} is not a state dict of tensors; save a torchvision ResNet's "
            "model.state_dict() with torch.save. " + resnet_weights_hint(resnet)
        )
    return state
