"""Writing models in the formats their public tools load.

- :func:`export_official`: SAM's official format (a bare state dict of SAM's keys), which
  ``segment_anything`` and every SAM tool load strictly. Models with modules SAM lacks
  (RobustSAM's decoder extras, SAM-Med2D's adapters) are refused unless
  ``drop_extras=True`` drops them with a warning; SAM-UNet cannot be written this way.
- :func:`export_model`: the family's own public format (its record's ``export_layout``
  and ``write_names``), all tensors kept: SAM's for plain SAM, RobustSAM's (a bare state
  dict; the ``robust_segment_anything`` package loads it strictly), ``{"model": ...}`` for
  SAM-Med2D and SAM-UNet, under the names their code loads.

A ``.safetensors`` path gets a flat safetensors file whose metadata holds the samforge
config and provenance. For other suffixes, ``provenance`` goes to a sidecar
``<stem>.provenance.json`` (with the config, since SAM's format has no room for it).
Everything is written to a temporary file in the same folder and renamed, so a failure
leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...errors import CheckpointError
from ...files import atomic_path, save_torch_atomically, write_text_atomically
from ..config import SamConfig
from ..families import EXTENDING_SAM, SAM, family_of
from ..messages import preview_names
from ..peft import has_peft
from ..sam.model import PromptableModel
from .reading import CONFIG_METADATA_KEY, PROVENANCE_METADATA_KEY, SAM_ROOTS, sidecar_path


def export_official(
    model: PromptableModel,
    path: str | os.PathLike,
    *,
    provenance: Mapping[str, Any] | None = None,
    drop_extras: bool = False,
) -> Path:
    """Write ``model`` in SAM's official format, loadable by ``segment_anything`` strictly.

    Args:
        model: a samforge model.
        path: ``.safetensors`` for safetensors with the config in its metadata; any other
            suffix for ``torch.save`` of the bare state dict, as Meta publishes SAM.
        provenance: where the weights came from, stored with the file.
        drop_extras: write a RobustSAM or SAM-Med2D model without its extra modules (a
            warning names them). A RobustSAM model then computes SAM's masks (its clean
            path); SAM-Med2D without adapters is what its authors call SAM-Med2D*.

    Returns:
        The written path.

    Raises:
        CheckpointError: the model has modules SAM's format cannot hold (and
            ``drop_extras`` is False, or it is SAM-UNet), or foreign tensors (e.g. LoRA).
    """
    state = official_state_dict(model, drop_extras=drop_extras)
    config = _plain_config(model.config)
    return _write(Path(path).expanduser(), state, config, provenance, wrap=None)


def export_model(
    model: PromptableModel, path: str | os.PathLike, *, provenance: Mapping[str, Any] | None = None
) -> Path:
    """Write ``model`` with all its tensors in its family's public format (see the module
    docstring); plain SAM models get exactly :func:`export_official`'s file."""
    config: SamConfig = model.config
    family = family_of(config)
    _refuse_unmerged_peft(model)
    state = family.write_names(_fp32_cpu(model.state_dict()))
    return _write(Path(path).expanduser(), state, config, provenance, wrap=family.export_layout)


def official_state_dict(
    model: PromptableModel, *, drop_extras: bool = False
) -> dict[str, torch.Tensor]:
    """The model's tensors under official SAM names: CPU, fp32, contiguous, detached."""
    config: SamConfig = model.config
    family = family_of(config)
    if not family.sam_layout:
        raise CheckpointError(
            f"{family.name}'s modules are not SAM's (e.g. SAM-UNet's ResNet branch, bridges and "
            "its own output token), so SAM's format cannot express the model; write it with "
            f"export_model, in {family.name}'s own layout."
        )
    _refuse_unmerged_peft(model)
    state = model.state_dict()
    foreign = [key for key in state if key.split(".", 1)[0] not in SAM_ROOTS]
    if foreign:
        raise CheckpointError(
            f"the model holds tensors outside SAM's official modules ({preview_names(foreign)}); "
            "merge or remove them (e.g. LoRA deltas) before exporting to the official format."
        )
    extras = [key for key in state if _is_family_extra(key)]
    if extras:
        state = _without(state, extras, config, drop_extras)
    return _fp32_cpu(state)


def _refuse_unmerged_peft(model: nn.Module) -> None:
    if has_peft(model):
        raise CheckpointError(
            "the model carries unmerged LoRA/SVD layers, which SAM tools cannot load; call "
            "samforge.models.peft.merge_peft(model) (on a copy to keep training) first."
        )


def _is_family_extra(key: str) -> bool:
    """A tensor of a module that a family adds to SAM (RobustSAM's decoder modules,
    SAM-Med2D's adapters)."""
    return any(family.owns_key(key) for family in EXTENDING_SAM)


def _without(
    state: dict[str, torch.Tensor], extras: list[str], config: SamConfig, drop_extras: bool
) -> dict[str, torch.Tensor]:
    name = family_of(config).name
    described = f"{len(extras)} {name} tensors ({preview_names(extras, 4)})"
    if not drop_extras:
        raise CheckpointError(
            f"the model is {name}: SAM's official format has no room for its "
            f"{described}. Write its own format with export_model(model, path) (RobustSAM's "
            "loads in robust_segment_anything), or pass drop_extras=True to write plain SAM "
            "without them."
        )
    warnings.warn(
        f"exporting {name} as plain SAM: dropped {described}; the file computes "
        "plain SAM's masks (RobustSAM: its clean path; SAM-Med2D: without adapters).",
        stacklevel=3,
    )
    dropped = set(extras)
    return {key: value for key, value in state.items() if key not in dropped}


def _plain_config(config: SamConfig) -> SamConfig:
    """The config of the plain SAM that SAM's format describes."""
    return config.with_changes(family=SAM.family, encoder_adapter=False)


def _fp32_cpu(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {
        key: value.detach().to(device="cpu", dtype=torch.float32).contiguous()
        for key, value in state.items()
    }


def _write(
    path: Path,
    state: dict[str, torch.Tensor],
    config: SamConfig,
    provenance: Mapping[str, Any] | None,
    wrap: str | None,
) -> Path:
    if path.suffix == ".safetensors":
        metadata = {"format": "pt", CONFIG_METADATA_KEY: json.dumps(config.to_dict())}
        if provenance is not None:
            metadata[PROVENANCE_METADATA_KEY] = json.dumps(dict(provenance), default=str)

        from safetensors.torch import save_file

        with atomic_path(path) as temp:
            save_file(state, str(temp), metadata=metadata)
        return path

    save_torch_atomically(path, {wrap: state} if wrap else state)
    if provenance is not None:
        sidecar = {"provenance": dict(provenance), "config": config.to_dict()}
        text = json.dumps(sidecar, indent=2, default=str)
        try:
            write_text_atomically(sidecar_path(path), text)
        except BaseException:
            path.unlink(missing_ok=True)  # a checkpoint without its provenance is half-written
            raise
    return path
