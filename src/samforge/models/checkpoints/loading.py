"""Loading SAM-family checkpoints of every layout into samforge models.

Reading the layouts is :mod:`.reading`, recovering the architecture (and family) from
shapes and keys :mod:`.shape_inference`, building a family's model
:mod:`samforge.models.families`, writing models :mod:`.export`. Checkpoints are never
unpickled beyond ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import warnings
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ...errors import CheckpointError, ConfigError
from ..config import ARCHITECTURES, Preprocessing, SamConfig
from ..families import SamModel, build_model, family_of
from ..messages import MAX_LISTED, preview_names
from . import hub, registry
from .position_tables import adapt_position_tables, checkpoint_grid
from .reading import RawCheckpoint, read_checkpoint, unwrap_checkpoint
from .registry import ModelSpec
from .shape_inference import infer_config

# --- Loading ---------------------------------------------------------------------------


def load_model(
    state_or_path: str | os.PathLike | Mapping[str, Any] | RawCheckpoint,
    *,
    config: SamConfig | None = None,
    image_size: int | None = None,
    strict: bool = True,
    preprocessing: Preprocessing | None = None,
) -> SamModel:
    """A samforge model from a registry name, a checkpoint file or a state dict.

    The family (SAM, MedSAM-style SAM, SAM-Med2D, RobustSAM, SAM-UNet) is recognised from
    the keys and the architecture from the shapes; every family loads strictly.

    Args:
        state_or_path: a registered model name (``samforge models list``; downloaded into
            the cache on first use), a checkpoint path in any supported layout, a loaded
            checkpoint or state dict, or a :class:`RawCheckpoint`.
        config: architecture to load into; by default the registry's, the one stored in a
            samforge file, or the one inferred from tensor shapes.
        image_size: input size to run at; position tables trained at another size are
            interpolated (``pos_embed`` bicubic, global relative tables linear).
        strict: every model tensor must be in the checkpoint and every checkpoint tensor
            must be used. ``strict=False`` loads what matches and warns about the rest.
            A micro-sam / MedicoSAM ``decoder_state`` (UNETR semantic decoder) is never
            part of this: the SAM part loads and a warning says the decoder is ignored.
        preprocessing: ``"sam"``, ``"medsam"`` or ``"sammed2d"``; by default the
            registry's, the stored config's, or the family's (``"sam"`` but for SAM-Med2D).

    Returns:
        The model in eval mode on the CPU; ``model.config`` describes it and
        ``model.provenance`` where the weights came from.

    Raises:
        ModelNotFoundError: neither a registered name nor an existing file.
        DownloadError: a registered checkpoint cannot be fetched or fails its checksum.
        CheckpointError: unreadable file, shape mismatches, missing or unexpected tensors.
    """
    spec, registered = None, False
    if isinstance(state_or_path, RawCheckpoint):
        raw = state_or_path
    elif isinstance(state_or_path, Mapping):
        raw = unwrap_checkpoint(state_or_path)
    else:
        spec, resolved, registered = _resolve(state_or_path)
        if resolved is None:  # a built-in randomly initialised model
            assert spec is not None  # _resolve found it in the registry
            return _random_model(spec, config, image_size, preprocessing)
        raw = resolved

    state = raw.state_dict
    ignored = _ignore_semantic_decoder(raw)
    # A registered name brings its config; a file recognised by its published name only
    # its preprocessing convention (the shapes decide the architecture).
    registered_config = spec.config if spec is not None and registered else None
    if config is None and raw.config is not None:
        _check_stored_config(raw, state)
    target = config or raw.config or registered_config or infer_config(state)
    changes: dict[str, Any] = {}
    if image_size is not None:
        changes["image_size"] = image_size
    chosen = preprocessing or (spec.preprocessing if spec and config is None else None)
    if chosen is not None:
        changes["preprocessing"] = chosen
    try:
        target = target.with_changes(**changes) if changes else target
    except ConfigError as error:
        raise CheckpointError(str(error)) from None

    model = build_model(target)
    state, resized = adapt_position_tables(state, target)
    _load_state(model, state, raw, strict=strict)
    grid = checkpoint_grid(raw.state_dict)
    model.provenance = {
        "source": raw.source,
        "name": spec.name if spec else None,
        "family": family_of(target).name,
        "format": raw.format,
        "checkpoint_image_size": grid * target.patch_size if grid else None,
        "interpolated": resized,
        **({"ignored": f"decoder_state ({len(ignored)} tensors)"} if ignored else {}),
        **({"stored": raw.extras["provenance"]} if "provenance" in raw.extras else {}),
    }
    return model.eval()


def _resolve(
    name_or_path: str | os.PathLike,
) -> tuple[ModelSpec | None, RawCheckpoint | None, bool]:
    """Registry spec (or None), the raw checkpoint (None for built-in random models) and
    whether the argument was a registry name (rather than a file)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return _spec_for_file(path), read_checkpoint(path), False
    name = str(name_or_path)
    if not registry.is_registered(name):
        if path.suffix or os.sep in name or path.is_dir():
            read_checkpoint(path)  # raises the file-oriented ModelNotFoundError
        registry.get_model_spec(name)  # raises with suggestions
    spec = registry.get_model_spec(name)
    if spec.init == "random":
        return spec, None, True
    return spec, read_checkpoint(hub.fetch(spec)), True


def _spec_for_file(path: Path) -> ModelSpec | None:
    """The registered model a file was downloaded as, recognised by its published name.

    This lets ``load_model("medsam_vit_b.pth")`` pick MedSAM's preprocessing; a renamed
    file falls back to the defaults (pass ``preprocessing=``).
    """
    for name in registry.list_models():
        spec = registry.get_model_spec(name)
        published = {file for file in (spec.filename, Path(spec.url or "").name) if file}
        # Only real file names: some URLs end in a bare ".../download".
        if path.name in {name for name in published if "." in name}:
            return spec
    return None


def _random_model(
    spec: ModelSpec,
    config: SamConfig | None,
    image_size: int | None,
    preprocessing: Preprocessing | None,
) -> SamModel:
    target = config or spec.config
    changes = {
        key: value
        for key, value in (("image_size", image_size), ("preprocessing", preprocessing))
        if value is not None
    }
    target = target.with_changes(**changes) if changes else target
    # Seeded without touching the caller's random state: the same "random" model every time.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(target)
    model.provenance = {"source": "built-in random initialisation (untrained)", "name": spec.name}
    return model


def _ignore_semantic_decoder(raw: RawCheckpoint) -> list[str]:
    """Warn that a micro-sam / MedicoSAM ``decoder_state`` (the UNETR semantic decoder
    trained beside SAM) is not loaded; returns its keys (empty when there is none).

    The SAM part is the whole interactive model, so it loads as usual; the semantic
    decoder is a separate head, loaded with the SAM encoder by
    :func:`samforge.models.semantic.load_semantic_model`.
    """
    keys = list(raw.extras.get("decoder_state") or ())
    if keys:
        warnings.warn(
            f"{raw.source}: loading the SAM part only; its UNETR semantic decoder "
            f"(`decoder_state`, {_count(keys, 'tensor')}, e.g. {preview_names(keys, 3)}) is "
            "ignored here. Interactive segmentation is unaffected; for semantic "
            "segmentation load the file with samforge.models.semantic.load_semantic_model "
            "(or `samforge segment --semantic`).",
            stacklevel=3,
        )
    return keys


def _load_state(
    model: SamModel, state: dict[str, torch.Tensor], raw: RawCheckpoint, *, strict: bool
) -> None:
    expected = model.state_dict()
    # pixel_mean/std are config, not weights; a few exporters saved them as buffers.
    state = {k: v for k, v in state.items() if k not in ("pixel_mean", "pixel_std")}
    mismatched = [
        f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(expected[key].shape)}"
        for key, value in state.items()
        if key in expected and tuple(value.shape) != tuple(expected[key].shape)
    ]
    if mismatched:
        raise CheckpointError(_mismatch_message(raw, model.config, mismatched))
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        report = _key_report(missing, unexpected)
        if strict:
            raise CheckpointError(
                f"{raw.source} does not match the {family_of(model.config).name} architecture "
                f"key for key: {report}. If the file wraps SAM in another model, extract the "
                "SAM part; pass strict=False to load the matching tensors and keep the rest at "
                "their initial values."
            )
        warnings.warn(f"{raw.source}: loading non-strictly; {report}", stacklevel=3)
    model.load_state_dict(state, strict=False)


def _mismatch_message(raw: RawCheckpoint, config: SamConfig, mismatched: list[str]) -> str:
    try:
        found = _describe(infer_config(raw.state_dict))
    except CheckpointError:
        found = "an unrecognised architecture"
    shown = "; ".join(mismatched[:MAX_LISTED])
    more = f" (and {len(mismatched) - MAX_LISTED} more)" if len(mismatched) > MAX_LISTED else ""
    return (
        f"{raw.source} does not fit the requested architecture ({_describe(config)}): "
        f"{_count(mismatched, 'tensor')} with other shapes: {shown}{more}. The file looks like "
        f"{found}; leave config= out to use the architecture inferred from the file, or pass "
        "the matching one."
    )


def _check_stored_config(raw: RawCheckpoint, state: Mapping[str, torch.Tensor]) -> None:
    """Refuse a config stored in a file (safetensors metadata, a sidecar) that its own
    tensors contradict, before anything is built: the config decides the allocation, so a
    tampered one (width 65536, depth 100000) must not reach ``build_model``."""
    stored = raw.config
    assert stored is not None  # the caller checked
    found = infer_config(state, base=stored)
    claimed, actual = _architecture_fields(stored), _architecture_fields(found)
    differences = [key for key in claimed if claimed[key] != actual[key]]
    grid = checkpoint_grid(raw.state_dict)
    if grid and grid * stored.patch_size != stored.image_size:
        differences.append("image_size")
        actual["image_size"] = grid * stored.patch_size
        claimed["image_size"] = stored.image_size
    if differences:
        shown = ", ".join(f"{k} {claimed[k]!r} (tensors: {actual[k]!r})" for k in differences[:4])
        raise CheckpointError(
            f"{raw.source}: the config stored with the weights does not fit its tensors: "
            f"{shown}. The file is corrupt or was edited; re-export the model, or pass "
            "config= to load the tensors into an architecture you name."
        )


def _describe(config: SamConfig) -> str:
    shape = _architecture_fields(config)
    for name, known in ARCHITECTURES.items():
        if _architecture_fields(known) == shape:
            return f"{name} at {config.image_size}²"
    return (
        f"embed {config.encoder_embed_dim}, depth {config.encoder_depth}, "
        f"global blocks {list(config.encoder_global_attn_indexes)}, at {config.image_size}²"
    )


def _architecture_fields(config: SamConfig) -> dict[str, Any]:
    """The fields that shape the weights (not input size, preprocessing or statistics)."""
    ignored = ("image_size", "preprocessing", "pixel_mean", "pixel_std")
    return {key: value for key, value in config.to_dict().items() if key not in ignored}


def _key_report(missing: list[str], unexpected: list[str]) -> str:
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected)):
        if keys:
            parts.append(f"{_count(keys, label + ' tensor')} ({_grouped(keys)})")
    return " and ".join(parts)


def _grouped(keys: list[str]) -> str:
    """Keys grouped by their first component, the first few of each group by name."""
    groups: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        groups[key.split(".", 1)[0]].append(key)
    return "; ".join(
        f"{group}: {preview_names(members)}" for group, members in sorted(groups.items())
    )


def _count(items: list[Any], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"
