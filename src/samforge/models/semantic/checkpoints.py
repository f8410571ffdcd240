"""Semantic checkpoints: MedicoSAM's format, with samforge's metadata beside it.

A file is one ``torch.save`` dict:

- ``model_state``: the SAM model's tensors under SAM's official names (SAM-based models);
- ``decoder_state``: the semantic decoder under torch_em's UNETR names (micro-sam's and
  MedicoSAM's ``decoder_state``), plus, for the 3D model, ``depth_adapters.*``,
  ``fusion.*`` and ``out_conv3d.*``;
- ``network_state``: a MONAI network's tensors (the baselines; no SAM part);
- ``samforge_semantic``: plain data: ``architecture``, ``info`` (classes, spatial dims,
  patch size, intensity rule), ``network`` (what rebuilds the network), ``provenance``.

A MedicoSAM file (``model_state`` + ``decoder_state``, no samforge entry) loads as a 2D
model at the encoder's input size, its classes named ``class_1``... Files are read with
``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

import copy
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

from ...errors import CheckpointError, ModelNotFoundError
from ...files import save_torch_atomically
from ..checkpoints.export import export_official
from ..checkpoints.loading import load_model
from ..checkpoints.reading import unwrap_checkpoint
from ..config import SamConfig
from ..families import build_model
from ..peft import has_peft, merge_peft
from ..sam.model import PromptableModel
from .base import SemanticModel
from .depth import SamSemanticModel3d
from .info import SemanticInfo, default_class_names
from .monai_nets import MonaiSemanticModel
from .sam2d import SamSemanticModel2d
from .unetr import UNETRLayout

ModelT = TypeVar("ModelT", bound=SemanticModel)
METADATA_KEY = "samforge_semantic"
FORMAT_VERSION = 1
# Keys of the 3D model's own modules inside ``decoder_state``.
VOLUME_PARTS = ("depth_adapters.", "fusion.", "out_conv3d.")


def save_semantic_model(
    model: SemanticModel, path: str | os.PathLike, *, provenance: Mapping[str, Any] | None = None
) -> Path:
    """Write ``model`` (PEFT deltas merged into a copy) in the format above; returns the
    path."""
    model = _merged(model)
    metadata = {
        "format": FORMAT_VERSION,
        "architecture": model.architecture,
        "info": model.info.to_dict(),
        "network": model.network_settings(),
        "provenance": dict(provenance or getattr(model, "provenance", {})),
    }
    state = {k: v.detach().cpu().float().contiguous() for k, v in model.state_dict().items()}
    if isinstance(model, SamSemanticModel2d):
        sam_state = {k: state[k] for k in model.sam_state_dict()}
        decoder = {k.removeprefix("head."): v for k, v in state.items() if k not in sam_state}
        content = {"model_state": sam_state, "decoder_state": decoder}
    else:
        content = {"network_state": {k.removeprefix("network."): v for k, v in state.items()}}
    return save_torch_atomically(Path(path), content | {METADATA_KEY: _plain(metadata)})


def export_sam_part(model: SamSemanticModel2d, path: str | os.PathLike) -> Path:
    """The SAM model inside a SAM-based semantic model, in SAM's official format (its
    encoder as trained; prompt encoder and mask decoder as loaded)."""
    sam = _sam_from_state(model.sam_config, _merged(model).sam_state_dict())
    return export_official(sam, path, provenance={"semantic_model": model.architecture})


def _merged(model: ModelT) -> ModelT:
    """``model`` itself, or a copy with its PEFT deltas merged into dense weights."""
    return merge_peft(copy.deepcopy(model)) if has_peft(model) else model


def load_semantic_model(
    source: str | os.PathLike, device: str | torch.device = "cpu"
) -> SemanticModel:
    """A semantic model from a samforge semantic checkpoint or a MedicoSAM-format file
    (``model_state`` + ``decoder_state``), in eval mode on ``device``.

    Raises:
        ModelNotFoundError: ``source`` is not a file.
        CheckpointError: unreadable, refers to Python code, or holds no semantic model
            (e.g. a SAM checkpoint without a decoder).
    """
    path = Path(source).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(
            f"semantic model {path} is not a file; pass a checkpoint written by `samforge "
            "train` with a semantic preset (model.pth in its run folder) or a MedicoSAM file."
        )
    content = _read(path)
    metadata = content.get(METADATA_KEY)
    if isinstance(metadata, Mapping):
        model = _from_samforge(content, metadata, path)
    elif isinstance(content.get("model_state"), Mapping) and content.get("decoder_state"):
        model = _from_medicosam(content, path)
    else:
        raise CheckpointError(
            f"{path} holds no semantic model (top-level keys {sorted(map(str, content))[:6]}): "
            "a semantic checkpoint has a 'decoder_state' (MedicoSAM) or samforge's "
            f"'{METADATA_KEY}' entry. For a SAM model without a semantic decoder, train one: "
            "`samforge train semantic2d --set model=...`."
        )
    return model.to(device).eval()


def _read(path: Path) -> dict[str, Any]:
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path} refers to Python code, which samforge never unpickles ({error}); "
            "re-save its tensors as a plain dict."
        ) from None
    except Exception as error:  # garbage makes the weights-only unpickler fail in many ways
        raise CheckpointError(f"{path} is not a readable checkpoint ({error}).") from None
    if not isinstance(content, dict):
        raise CheckpointError(f"{path} holds a {type(content).__name__}, not a checkpoint dict.")
    return content


def _from_samforge(content: dict, metadata: Mapping[str, Any], path: Path) -> SemanticModel:
    try:
        model = _build_samforge(content, metadata, path)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(
            f"{path}: its {METADATA_KEY} entry or its tensors are incomplete ({error!r}); "
            "re-export the model."
        ) from None
    model.provenance = dict(metadata.get("provenance") or {}) | {"source": str(path)}
    return model


def _build_samforge(content: dict, metadata: Mapping[str, Any], path: Path) -> SemanticModel:
    architecture = str(metadata["architecture"])
    info = SemanticInfo.from_dict(dict(metadata["info"]))
    network = dict(metadata.get("network") or {})
    if architecture.startswith("monai:"):
        monai_model = MonaiSemanticModel(architecture, info, network.get("monai"))
        _load_strict(monai_model.network, content.get("network_state"), path)
        return monai_model
    if architecture not in ("sam_unetr2d", "sam_unetr3d"):
        raise CheckpointError(f"{path}: unknown semantic architecture {architecture!r}.")
    sam = _sam_from_state(SamConfig.from_dict(network["sam_config"]), content["model_state"])
    layout = UNETRLayout(**_layout_values(network["decoder"]))
    model: SamSemanticModel2d
    if architecture == "sam_unetr2d":
        model = SamSemanticModel2d(sam, info, layout)
    else:
        model = SamSemanticModel3d(sam, info, layout, network.get("adapter_width"))
    _load_decoder(model, content["decoder_state"], path)
    return model


def _from_medicosam(content: dict, path: Path) -> SemanticModel:
    decoder_state = dict(content["decoder_state"])
    layout = UNETRLayout.of_state(decoder_state)
    if layout.num_classes is None:
        raise CheckpointError(f"{path}: its decoder_state has no out_conv, so no classes.")
    raw = unwrap_checkpoint({"model_state": content["model_state"]}, source=str(path))
    sam = load_model(raw)
    size = sam.config.image_size
    info = SemanticInfo(2, default_class_names(layout.num_classes), (size, size), 1)
    model = SamSemanticModel2d(sam, info, layout)
    _load_decoder(model, decoder_state, path)
    model.provenance = {"source": str(path), "format": "medicosam"}
    return model


def _sam_from_state(config: SamConfig, state: Mapping[str, torch.Tensor]) -> PromptableModel:
    model = build_model(config)
    _load_strict(model, state, "the SAM part")
    return model


def _load_decoder(model: SamSemanticModel2d, state: Mapping[str, torch.Tensor], path: Path) -> None:
    own = {k: v for k, v in state.items() if k.startswith(VOLUME_PARTS)}
    head = {k: v for k, v in state.items() if k not in own}
    _load_strict(model.head, head, path)
    if own:
        parts = {k: v for k, v in model.state_dict().items() if k.startswith(VOLUME_PARTS)}
        if set(parts) != set(own):
            raise CheckpointError(f"{path}: its 3D parts do not match a 3D model's.")
        model.load_state_dict(own, strict=False)


def _load_strict(module: torch.nn.Module, state: Any, where: object) -> None:
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{where}: the tensors of its network are missing.")
    try:
        module.load_state_dict(dict(state), strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        raise CheckpointError(
            f"{where}: the tensors do not fit the network its metadata describes "
            f"({' '.join(first[:3])})."
        ) from None


def _layout_values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def _plain(value: Any) -> Any:
    """Tuples as lists, so the metadata is the plain data weights-only loading accepts."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)
