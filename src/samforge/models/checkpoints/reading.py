"""Reading SAM-family checkpoints in every layout found in the wild.

Layouts (``RawCheckpoint.format``):

- ``"bare"``: the official state dict (SAM, MedSAM, exported MedicoSAM / micro-sam models);
- ``"model_state"``: micro-sam / MedicoSAM trainer checkpoints, keys prefixed ``sam.`` or
  ``module.sam.``, with an optional UNETR ``decoder_state`` kept aside;
- ``"model"``: ``{"model": ..., "optimizer": ...}`` (SAM-Med2D, SAM-UNet);
- ``"state_dict"``: PyTorch Lightning checkpoints (keys usually prefixed ``model.``);
- ``"module"``: DeepSpeed-style ``{"module": ...}``;
- ``"safetensors"``: a ``.safetensors`` file; samforge writes its config into the metadata.

A pickled file may have a sidecar ``<stem>.provenance.json`` written by samforge (fused
models): its provenance and config are read with the file.

``module.`` (DDP) and any other prefix shared by the SAM keys are stripped, and a family's
public names become samforge's (SAM-UNet's wrapped SAM modules). Pickled files
are read with ``torch.load(weights_only=True)`` only: a file that refers to Python code is
refused, never unpickled.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ...errors import CheckpointError, ConfigError, ModelNotFoundError
from ..config import SamConfig
from ..families import families_in
from ..messages import preview_names

# SAM's three modules: every official key starts with one of them.
SAM_ROOTS = ("image_encoder", "prompt_encoder", "mask_decoder")
# Wrapper keys of trainer checkpoints, in the order they are looked for.
WRAPPER_KEYS = ("model_state", "state_dict", "model", "module")
# Prefixes added by wrappers (DDP, torch.compile) in front of whole state dicts.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Safetensors metadata entries written by export_official.
CONFIG_METADATA_KEY = "samforge_config"
PROVENANCE_METADATA_KEY = "samforge_provenance"

_ROOT_PATTERN = re.compile(r"(?:^|\.)(" + "|".join(SAM_ROOTS) + r")\.")
_GLOBAL_NAME = re.compile(r"GLOBAL ([\w.]+)")


@dataclass
class RawCheckpoint:
    """A checkpoint as read from disk, before it meets an architecture.

    Attributes:
        state_dict: tensors under samforge's names (:func:`normalize_keys`): SAM's
            official names for SAM's modules, the family's own for its others.
        format: layout the tensors were found in (see the module docstring).
        source: file path, or a description for in-memory checkpoints.
        extras: what else the file held: ``decoder_state`` (UNETR decoder of micro-sam /
            MedicoSAM), ``config`` (a :class:`SamConfig` from samforge metadata),
            ``provenance`` (dict), ``metadata`` (raw safetensors metadata),
            ``stripped_prefix`` and ``other_keys`` (ignored top-level entries such as
            optimizer state).
    """

    state_dict: dict[str, torch.Tensor]
    format: str
    source: str
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> SamConfig | None:
        """The config stored in the file by samforge, if any."""
        return self.extras.get("config")


# --- Reading ---------------------------------------------------------------------------


def read_checkpoint(path: str | os.PathLike) -> RawCheckpoint:
    """Read a checkpoint file of any supported layout.

    Raises:
        ModelNotFoundError: ``path`` is not a file.
        CheckpointError: the file is truncated or corrupt, refers to Python code (refused),
            or holds no state dict.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "not found"
        raise ModelNotFoundError(
            f"checkpoint {path} is {what}. Pass the path of a checkpoint file (.pth, .pt, "
            ".ckpt, .safetensors) or a registered model name (see `samforge models list`)."
        )
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    raw = unwrap_checkpoint(_torch_load(path), source=str(path))
    sidecar = sidecar_path(path)
    if sidecar.is_file():
        _read_sidecar(sidecar, raw)
    return raw


def sidecar_path(path: Path) -> Path:
    """Where samforge keeps the provenance (and config) of a pickled checkpoint."""
    return path.with_name(f"{path.stem}.provenance.json")


def _read_sidecar(sidecar: Path, raw: RawCheckpoint) -> None:
    try:
        content = json.loads(sidecar.read_text())
        raw.extras["provenance"] = content["provenance"]
        if "config" in content:
            raw.extras["config"] = SamConfig.from_dict(content["config"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ConfigError) as error:
        raise CheckpointError(
            f"{sidecar} (the provenance of {raw.source}) cannot be read ({error}); restore it "
            "from where the checkpoint came from, or delete it to load the weights alone."
        ) from None


def _torch_load(path: Path) -> Any:
    # Memory-map zip-format files (all torch.save files since 1.6) so a multi-GB checkpoint
    # is not held twice while it is copied into the model; legacy files cannot be mapped.
    mmap = zipfile.is_zipfile(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        raise _unpickling_error(path, error) from None
    except Exception as error:
        # The weights-only unpickler fails on garbage with whatever its parser hits
        # (EOFError, RuntimeError, IndexError, KeyError, ...): all mean an unreadable file.
        raise _corrupt_error(path, error) from None


def _unpickling_error(path: Path, error: pickle.UnpicklingError) -> CheckpointError:
    text = str(error)
    names = sorted(set(_GLOBAL_NAME.findall(text)))
    if names:
        return CheckpointError(
            f"{path} tries to execute code when loaded: it refers to the Python object(s) "
            f"{', '.join(names)}, which unpickling would import and call. samforge loads "
            "checkpoints with weights_only=True only and refuses this file. If you trust its "
            "source, convert it once, in a separate environment: load it with "
            "torch.load(path, weights_only=False), take its state dict of tensors and save it "
            "with safetensors.torch.save_file(state, 'model.safetensors'); then load the "
            ".safetensors file."
        )
    first_line = next((line for line in text.splitlines() if "Unsupported" in line), "")
    return CheckpointError(
        f"{path} is not a readable PyTorch checkpoint ({first_line.strip() or 'bad pickle data'})"
        ". It is corrupt or truncated (re-download it and compare its checksum), or a plain "
        "pickle that weights-only loading cannot read (convert it to safetensors where you "
        "trust it)."
    )


def _corrupt_error(path: Path, error: BaseException) -> CheckpointError:
    # The first sentence of the library's message: the rest is advice we give ourselves.
    text = str(error).strip()
    first = text.splitlines()[0].split(". ")[0].rstrip(".") if text else ""
    reason = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return CheckpointError(
        f"{path} is truncated or corrupt and cannot be read ({reason}). Re-download it and "
        "compare its checksum with the published one (`samforge models fetch NAME` does both "
        "for registered models)."
    )


def _read_safetensors(path: Path) -> RawCheckpoint:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as error:  # safetensors raises its own error types for bad headers
        raise _corrupt_error(path, error) from None
    raw = unwrap_checkpoint(tensors, source=str(path), format_name="safetensors")
    raw.extras["metadata"] = metadata
    if CONFIG_METADATA_KEY in metadata:
        try:
            raw.extras["config"] = SamConfig.from_dict(json.loads(metadata[CONFIG_METADATA_KEY]))
        except (json.JSONDecodeError, ConfigError, TypeError) as error:
            raise CheckpointError(
                f"{path} carries a samforge config in its metadata that cannot be read "
                f"({error}); re-export the model, or pass config= explicitly."
            ) from None
    if PROVENANCE_METADATA_KEY in metadata:
        try:
            raw.extras["provenance"] = json.loads(metadata[PROVENANCE_METADATA_KEY])
        except json.JSONDecodeError:
            raw.extras["provenance"] = metadata[PROVENANCE_METADATA_KEY]
    return raw


def unwrap_checkpoint(
    obj: Any, *, source: str = "<in memory>", format_name: str | None = None
) -> RawCheckpoint:
    """Find the SAM state dict inside a loaded checkpoint object and normalise its keys."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{source} holds a {type(obj).__name__}, not a state dict; samforge reads state "
            "dicts (a mapping from names to tensors), bare or inside a trainer checkpoint."
        )
    extras: dict[str, Any] = {}
    layout = format_name or "bare"
    tensors: Mapping[str, Any] = obj
    for key in WRAPPER_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and _has_tensors(inner):
            layout, tensors = format_name or key, inner
            extras["other_keys"] = sorted(str(k) for k in obj if k != key)
            break
    decoder_state = obj.get("decoder_state")
    if isinstance(decoder_state, Mapping) and decoder_state:
        extras["decoder_state"] = dict(decoder_state)
        extras["other_keys"] = [k for k in extras.get("other_keys", []) if k != "decoder_state"]

    state = {str(k): v for k, v in tensors.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise CheckpointError(
            f"{source} holds no tensors where a state dict was expected (top-level keys: "
            f"{preview_names(map(str, obj))}); it is not a SAM checkpoint."
        )
    state, prefix = normalize_keys(state)
    if prefix:
        extras["stripped_prefix"] = prefix
    return RawCheckpoint(state_dict=state, format=layout, source=source, extras=extras)


def _has_tensors(mapping: Mapping[Any, Any]) -> bool:
    return any(isinstance(value, torch.Tensor) for value in mapping.values())


def normalize_keys(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict under samforge's names: ``module.`` and the prefix shared by the SAM
    keys (``sam.``, ``model.``, ...) stripped, then each family's public names renamed
    (:attr:`ModelFamily.read_names`: SAM-UNet wraps SAM's modules).

    The prefix is the text before the first ``image_encoder.``/``prompt_encoder.``/
    ``mask_decoder.`` segment, taken from the most common case; keys with another prefix
    are left as they are, so they show up as unexpected keys rather than disappearing.

    Returns:
        The renamed dict and the stripped prefix (``""`` when there was none).
    """
    renamed = {_strip_wrappers(key): value for key, value in state.items()}
    prefix = _shared_prefix(renamed)
    if prefix:
        renamed = {
            (key[len(prefix) :] if key.startswith(prefix) else key): value
            for key, value in renamed.items()
        }
    for family in families_in(renamed):
        renamed = family.read_names(renamed)
    if prefix is None:
        return renamed, ""
    wrapper = next((p for p in WRAPPER_PREFIXES if any(k.startswith(p) for k in state)), "")
    return renamed, wrapper + prefix


def _shared_prefix(state: Mapping[str, torch.Tensor]) -> str | None:
    """The most common text before a SAM module's name; None when no key names one."""
    prefixes = Counter(
        key[: match.start(1)] for key in state if (match := _ROOT_PATTERN.search(key))
    )
    return prefixes.most_common(1)[0][0] if prefixes else None


def _strip_wrappers(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix) :], True
    return key
