"""Module fusion: the image encoder from A, the prompt encoder from B, the decoder from C.

RobustMedSAM's initialisation (MedSAM's encoders, RobustSAM's decoder) is
``fuse_modules(image_encoder="medsam_vit_b", mask_decoder="robustsam_vit_b")``. The fused
state starts from C's full state (so RobustSAM's decoder extras are kept) and overwrites
``image_encoder.*`` and ``prompt_encoder.*``; key by key, every replacing tensor must have
the name and shape of the one it replaces, so the fused model has C's architecture. Its
input convention is SAM's by default (resize the longest side, pixel mean/std, pad), because
RobustMedSAM's predictor feeds its fused model that way (``ResizeLongestSide`` and
``Sam.preprocess``, although the encoder is MedSAM's); ``preprocessing="image_encoder"``
takes the image encoder's convention instead (MedSAM's: straight resize, min–max). Each
module's origin (source, file SHA-256, SHA-256 of the
tensors taken) is recorded in ``model.provenance["modules"]`` and travels with exports.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...errors import CheckpointError, ConfigError
from ...preprocessing import SAM_PIXEL_MEAN, SAM_PIXEL_STD
from ..families import SamModel, build_model, family_of
from ..sam.model import PromptableModel
from . import hub, registry
from .loading import load_model

Source = str | os.PathLike | PromptableModel
FUSED_MODULES = ("image_encoder", "prompt_encoder")
FUSED_PREPROCESSING = ("sam", "image_encoder")


@dataclass
class _Loaded:
    """A source resolved to a model, with what identifies it."""

    label: str
    model: PromptableModel
    file_sha256: str | None


def fuse_modules(
    image_encoder: Source,
    prompt_encoder: Source | None = None,
    mask_decoder: Source | None = None,
    preprocessing: str = "sam",
) -> SamModel:
    """A model whose modules come from different checkpoints.

    Args:
        image_encoder: registry name, checkpoint path or loaded model supplying
            ``image_encoder.*``.
        prompt_encoder: supplies ``prompt_encoder.*``; by default the image encoder's source.
        mask_decoder: supplies ``mask_decoder.*`` and every other tensor, and the
            architecture (a RobustSAM decoder stays RobustSAM).
        preprocessing: the fused model's input convention: ``"sam"`` (RobustMedSAM's
            predictor) or ``"image_encoder"`` (the image encoder source's).

    Returns:
        The fused model in eval mode on the CPU; ``model.provenance["modules"]`` maps each
        module to its source, file SHA-256 (when it came from a file) and tensor SHA-256.

    Raises:
        CheckpointError: a source is SAM-UNet (its modules are not SAM's), or the replacing
            tensors do not match the decoder source's by name and shape (the message names
            the first mismatching tensors and both sources).
    """
    if mask_decoder is None:
        raise CheckpointError("fusion needs a mask decoder source (mask_decoder=...).")
    if preprocessing not in FUSED_PREPROCESSING:
        raise ConfigError(
            f"preprocessing must be one of {', '.join(FUSED_PREPROCESSING)}; got {preprocessing!r}."
        )
    sources = {
        "image_encoder": _resolve(image_encoder),
        "prompt_encoder": _resolve(prompt_encoder if prompt_encoder is not None else image_encoder),
        "mask_decoder": _resolve(mask_decoder),
    }
    base = sources["mask_decoder"]
    state = dict(base.model.state_dict())
    for module in FUSED_MODULES:
        donor = sources[module]
        replacing = _module_state(donor.model, module)
        _check_same_tensors(module, replacing, _module_state(base.model, module), donor, base)
        state.update(replacing)

    encoder_config = sources["image_encoder"].model.config
    if preprocessing == "sam":
        convention = {
            "preprocessing": "sam",
            "pixel_mean": SAM_PIXEL_MEAN,
            "pixel_std": SAM_PIXEL_STD,
        }
    else:
        convention = {
            "preprocessing": encoder_config.preprocessing,
            "pixel_mean": encoder_config.pixel_mean,
            "pixel_std": encoder_config.pixel_std,
        }
    config = base.model.config.with_changes(**convention)
    model = build_model(config)
    model.load_state_dict(state, strict=True)
    model.provenance = {
        "fused": True,
        "family": family_of(config).name,
        "modules": {
            module: _describe(source, _module_state(model, module))
            for module, source in sources.items()
        },
    }
    return model.eval()


def _resolve(source: Source) -> _Loaded:
    if isinstance(source, nn.Module):
        model = source
        origin = getattr(model, "provenance", {}) or {}
        label = origin.get("name") or origin.get("source") or f"<in-memory {type(model).__name__}>"
        file_sha256 = None
    else:
        model = load_model(source)
        label = str(source)
        file_sha256 = _file_sha256(source)
    family = family_of(model.config)
    if not family.sam_layout:
        raise CheckpointError(
            f"{label} is {family.name}, whose modules are not SAM's (SAM-UNet's ViT depends on "
            "its ResNet branch); fusion combines SAM-format modules (SAM, MedSAM, MedicoSAM, "
            "SAM-Med2D, RobustSAM)."
        )
    return _Loaded(label, model, file_sha256)


def _file_sha256(source: str | os.PathLike) -> str | None:
    path = Path(source).expanduser()
    if not path.is_file() and registry.is_registered(str(source)):
        path = hub.cached_path(registry.get_model_spec(str(source)))
    return hub.file_digest(path, "sha256") if path.is_file() else None


def _module_state(model: nn.Module, module: str) -> dict[str, torch.Tensor]:
    return {key: value for key, value in model.state_dict().items() if key.startswith(module + ".")}


def _check_same_tensors(
    module: str,
    replacing: Mapping[str, torch.Tensor],
    replaced: Mapping[str, torch.Tensor],
    donor: _Loaded,
    base: _Loaded,
) -> None:
    problems = [
        f"{key}: {_shape(replacing.get(key))} in {donor.label} vs {_shape(replaced.get(key))} "
        f"in {base.label}"
        for key in sorted(set(replacing) | set(replaced))
        if _shape(replacing.get(key)) != _shape(replaced.get(key))
    ]
    if problems:
        shown = "; ".join(problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CheckpointError(
            f"cannot fuse: the {module} of {donor.label} ({family_of(donor.model.config).name}) "
            f"does not fit the architecture of {base.label} "
            f"({family_of(base.model.config).name}) tensor for "
            f"tensor: {len(problems)} differ, first {shown}{more}. Fuse modules of one "
            "architecture (e.g. all ViT-B) at one input size (load a source with "
            "load_model(..., image_size=N) and pass the model)."
        )


def _shape(tensor: torch.Tensor | None) -> str:
    return "absent" if tensor is None else str(tuple(tensor.shape))


def _describe(source: _Loaded, tensors: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    return {
        "source": source.label,
        "family": family_of(source.model.config).name,
        "file_sha256": source.file_sha256,
        "tensors_sha256": tensors_sha256(tensors),
    }


def tensors_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over names, shapes, dtypes and bytes (fp32, CPU) of tensors, in name order:
    identifies a module's weights independently of the file they came in."""
    digest = hashlib.sha256()
    for key in sorted(tensors):
        array = tensors[key].detach().to("cpu", torch.float32).contiguous().reshape(-1)
        digest.update(f"{key}{tuple(tensors[key].shape)}".encode())
        digest.update(array.numpy().tobytes())
    return digest.hexdigest()
