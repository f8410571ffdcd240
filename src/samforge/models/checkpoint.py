"""Reading, loading and exporting SAM checkpoints in every layout found in the wild.

Layouts (``RawCheckpoint.format``):

- ``"bare"``: the official state dict (SAM, MedSAM, exported MedicoSAM / micro-sam models);
- ``"model_state"``: micro-sam / MedicoSAM trainer checkpoints, keys prefixed ``sam.`` or
  ``module.sam.``, with an optional UNETR ``decoder_state`` kept aside;
- ``"model"``: ``{"model": ..., "optimizer": ...}`` (SAM-Med2D, SAM-UNet);
- ``"state_dict"``: PyTorch Lightning checkpoints (keys usually prefixed ``model.``);
- ``"module"``: DeepSpeed-style ``{"module": ...}``;
- ``"safetensors"``: a ``.safetensors`` file; samforge writes its config into the metadata.

``module.`` (DDP) and any other prefix shared by the SAM keys are stripped. Pickled files
are read with ``torch.load(weights_only=True)`` only: a file that refers to Python code is
refused, never unpickled.

The architecture is inferred from tensor shapes (:func:`infer_config`), so official
checkpoints, which carry no config, load without one. Tensors of architectures samforge does
not build yet (SAM-Med2D adapters, RobustSAM's robust decoder, SAM-UNet's CNN branch, a
UNETR decoder) are never dropped silently: loading fails with
:class:`UnsupportedCheckpointError` unless ``strict=False`` asks to keep only the SAM part.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
import warnings
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, ConfigError, ModelNotFoundError, UnsupportedCheckpointError
from . import hub, registry
from .config import ARCHITECTURE_BY_EMBED_DIM, ARCHITECTURES, Preprocessing, SamConfig
from .position_tables import adapt_position_tables, checkpoint_grid
from .registry import ModelSpec
from .sam import Sam, build_sam

# SAM's three modules: every official key starts with one of them.
SAM_ROOTS = ("image_encoder", "prompt_encoder", "mask_decoder")
# Wrapper keys of trainer checkpoints, in the order they are looked for.
WRAPPER_KEYS = ("model_state", "state_dict", "model", "module")
# Prefixes added by wrappers (DDP, torch.compile) in front of whole state dicts.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Safetensors metadata entries written by export_official.
CONFIG_METADATA_KEY = "samforge_config"
PROVENANCE_METADATA_KEY = "samforge_provenance"
# Heads of the public encoders (head_dim 64, 64, 80): used when no relative-position table
# reveals the head size.
HEADS_BY_EMBED_DIM = {768: 12, 1024: 16, 1280: 16}
MAX_LISTED = 10

_ROOT_PATTERN = re.compile(r"(?:^|\.)(" + "|".join(SAM_ROOTS) + r")\.")
_BLOCK_KEY = re.compile(r"^image_encoder\.blocks\.(\d+)\.")
_DECODER_LAYER_KEY = re.compile(r"^mask_decoder\.transformer\.layers\.(\d+)\.")
_IOU_LAYER_KEY = re.compile(r"^mask_decoder\.iou_prediction_head\.layers\.(\d+)\.")
_GLOBAL_NAME = re.compile(r"GLOBAL ([\w.]+)")


@dataclass
class RawCheckpoint:
    """A checkpoint as read from disk, before it meets an architecture.

    Attributes:
        state_dict: tensors under official SAM names (prefixes stripped).
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
    return unwrap_checkpoint(_torch_load(path), source=str(path))


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
            f"{_preview(map(str, obj))}); it is not a SAM checkpoint."
        )
    state, prefix = normalize_keys(state)
    if prefix:
        extras["stripped_prefix"] = prefix
    return RawCheckpoint(state_dict=state, format=layout, source=source, extras=extras)


def _has_tensors(mapping: Mapping[Any, Any]) -> bool:
    return any(isinstance(value, torch.Tensor) for value in mapping.values())


def normalize_keys(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """Strip ``module.`` and the prefix shared by the SAM keys (``sam.``, ``model.``, ...).

    The prefix is the text before the first ``image_encoder.``/``prompt_encoder.``/
    ``mask_decoder.`` segment, taken from the most common case; keys with another prefix
    are left as they are, so they show up as unexpected keys rather than disappearing.

    Returns:
        The renamed dict and the stripped prefix (``""`` when there was none).
    """
    renamed = {_strip_wrappers(key): value for key, value in state.items()}
    prefixes = Counter(
        key[: match.start(1)] for key in renamed if (match := _ROOT_PATTERN.search(key))
    )
    if not prefixes:
        return renamed, ""
    prefix, _ = prefixes.most_common(1)[0]
    if prefix:
        renamed = {
            (key[len(prefix) :] if key.startswith(prefix) else key): value
            for key, value in renamed.items()
        }
    wrapper = next((p for p in WRAPPER_PREFIXES if any(k.startswith(p) for k in state)), "")
    return renamed, wrapper + prefix


def _strip_wrappers(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix) :], True
    return key


# --- Architecture from shapes ----------------------------------------------------------


def infer_config(
    state_dict: Mapping[str, torch.Tensor], *, base: SamConfig | None = None
) -> SamConfig:
    """The :class:`SamConfig` whose model has the shapes of ``state_dict``.

    Read from shapes: encoder width, depth, patch and image size, heads (from the
    relative-position tables' head size), global blocks and window size (from the tables'
    lengths), MLP ratio, prompt and decoder dims. Values shapes cannot show — the decoder's
    number of heads, the preprocessing convention, pixel statistics — come from ``base``
    (e.g. the config stored in a samforge file) or the defaults of the public models.

    Raises:
        CheckpointError: the tensors are not those of a SAM model.
    """
    state, _ = normalize_keys(state_dict)
    base = base or SamConfig()
    patch_weight = _require(state, "image_encoder.patch_embed.proj.weight")
    embed_dim, patch_size = int(patch_weight.shape[0]), int(patch_weight.shape[-1])
    depth = _count_indexed(state, _BLOCK_KEY)
    if depth == 0:
        raise CheckpointError(
            "the checkpoint has a patch embedding but no image_encoder.blocks.*: it is not a "
            "SAM image encoder."
        )
    grid = checkpoint_grid(state)
    image_size = grid * patch_size if grid else base.image_size
    globals_, window_size, head_dim = _attention_layout(state, depth, embed_dim, grid)
    num_heads = embed_dim // head_dim if head_dim else _fallback_heads(embed_dim, base)

    lin1 = state.get("image_encoder.blocks.0.mlp.lin1.weight")
    mlp_ratio = lin1.shape[0] / embed_dim if lin1 is not None else base.mlp_ratio
    prompt_dim = _dim(state, "mask_decoder.iou_token.weight", 1, base.prompt_embed_dim)
    mask_in_chans = _dim(state, "prompt_encoder.mask_downscaling.3.weight", 0, base.mask_in_chans)
    decoder_mlp = _dim(
        state, "mask_decoder.transformer.layers.0.mlp.lin1.weight", 0, base.decoder_mlp_dim
    )
    mask_tokens = _dim(state, "mask_decoder.mask_tokens.weight", 0, base.num_multimask_outputs + 1)
    iou_hidden = _dim(
        state, "mask_decoder.iou_prediction_head.layers.0.weight", 0, base.iou_head_hidden_dim
    )
    try:
        return base.with_changes(
            encoder_embed_dim=embed_dim,
            encoder_depth=depth,
            encoder_num_heads=num_heads,
            encoder_global_attn_indexes=globals_,
            window_size=window_size,
            patch_size=patch_size,
            image_size=image_size,
            mlp_ratio=float(mlp_ratio),
            prompt_embed_dim=prompt_dim,
            mask_in_chans=mask_in_chans,
            decoder_depth=_count_indexed(state, _DECODER_LAYER_KEY) or base.decoder_depth,
            decoder_mlp_dim=decoder_mlp,
            num_multimask_outputs=mask_tokens - 1,
            iou_head_depth=_count_indexed(state, _IOU_LAYER_KEY) or base.iou_head_depth,
            iou_head_hidden_dim=iou_hidden,
        )
    except ConfigError as error:
        raise CheckpointError(
            f"the checkpoint's shapes give no valid SAM config: {error}"
        ) from None


def _require(state: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in state:
        raise CheckpointError(
            f"the checkpoint has no {key}, so it is not a SAM checkpoint (its first keys: "
            f"{_preview(state)}). If it wraps SAM in another model, extract the SAM part."
        )
    return state[key]


def _dim(state: Mapping[str, torch.Tensor], key: str, axis: int, default: int) -> int:
    tensor = state.get(key)
    return int(tensor.shape[axis]) if tensor is not None and tensor.ndim > axis else default


def _count_indexed(state: Mapping[str, torch.Tensor], pattern: re.Pattern[str]) -> int:
    indexes = [int(match.group(1)) for key in state if (match := pattern.match(key))]
    return max(indexes) + 1 if indexes else 0


def _attention_layout(
    state: Mapping[str, torch.Tensor], depth: int, embed_dim: int, grid: int | None
) -> tuple[tuple[int, ...], int, int | None]:
    """Global blocks, window size and head size from the relative-position tables.

    A global block's table has 2·grid − 1 rows, a window block's 2·window − 1. When the two
    coincide (window == grid) the blocks cannot be told apart by shape; the layout of the
    public model with this width and depth is used then, else all blocks count as global
    (which computes the same at this input size).
    """
    lengths: dict[int, int] = {}
    head_dim = None
    for index in range(depth):
        table = state.get(f"image_encoder.blocks.{index}.attn.rel_pos_h")
        if table is not None and table.ndim == 2:
            lengths[index] = int(table.shape[0])
            head_dim = int(table.shape[1])
    known = _known_architecture(embed_dim, depth)
    if not lengths or grid is None:
        if known is not None:
            return known.encoder_global_attn_indexes, known.window_size, head_dim
        return tuple(range(depth)), SamConfig().window_size, head_dim

    global_length = 2 * grid - 1
    globals_ = tuple(index for index, length in lengths.items() if length == global_length)
    window_lengths = {length for index, length in lengths.items() if index not in globals_}
    if len(window_lengths) > 1:
        raise CheckpointError(
            "the encoder blocks' relative-position tables have lengths "
            f"{sorted(set(lengths.values()))}; SAM has one window size and a {grid}×{grid} "
            "global grid, so this layout is not SAM's."
        )
    if window_lengths:
        return globals_, (window_lengths.pop() + 1) // 2, head_dim
    if known is not None and known.window_size == grid:
        return known.encoder_global_attn_indexes, known.window_size, head_dim
    return globals_, grid if known is None else known.window_size, head_dim


def _known_architecture(embed_dim: int, depth: int) -> SamConfig | None:
    name = ARCHITECTURE_BY_EMBED_DIM.get(embed_dim)
    if name is None:
        candidates = [c for c in ARCHITECTURES.values() if c.encoder_embed_dim == embed_dim]
        return next((c for c in candidates if c.encoder_depth == depth), None)
    config = ARCHITECTURES[name]
    return config if config.encoder_depth == depth else None


def _fallback_heads(embed_dim: int, base: SamConfig) -> int:
    if base.encoder_embed_dim == embed_dim:
        return base.encoder_num_heads
    if embed_dim in HEADS_BY_EMBED_DIM:
        return HEADS_BY_EMBED_DIM[embed_dim]
    heads = max(1, embed_dim // 64)
    warnings.warn(
        f"the checkpoint has no relative-position tables, so the number of attention heads of "
        f"its {embed_dim}-wide encoder cannot be read from shapes; assuming 64-dim heads "
        f"({heads} heads). Pass config= if that is wrong.",
        stacklevel=3,
    )
    return heads


# --- Families samforge does not build yet ---------------------------------------------

# (family, what the tensors are, a test on a key) — a key matching makes a checkpoint
# belong to a family whose extra modules would be lost by loading it into plain SAM.
_FAMILIES: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    (
        "SAM-Med2D",
        "encoder adapters (image_encoder.blocks.*.Adapter.*)",
        re.compile(r"^image_encoder\.blocks\.\d+\.Adapter\."),
    ),
    (
        "RobustSAM",
        "robust output token, token block, robust MLP and Fourier feature blocks",
        re.compile(
            r"^mask_decoder\.(custom_robust_token|robust_mlp|custom_token_block|fourier_\w+)\."
        ),
    ),
    (
        "SAM-UNet",
        "convolutional branch and fusion layers (resnet, adapters_in/bridge, wrapped SAM)",
        re.compile(
            r"^(resnet|adapters_in|adapters_bridge|embedding_encoder)\.|"
            r"^(image_encoder\.sam_img_encoder|prompt_encoder\.sam_prompt_encoder|"
            r"mask_decoder\.sam_mask_decoder|mask_decoder\.(med_token|hf_mlp|embedding_maskfeature))\."
        ),
    ),
)


def detect_unsupported(raw: RawCheckpoint) -> list[tuple[str, str, list[str]]]:
    """Families of not-yet-supported architectures found in a checkpoint.

    Returns:
        ``(family, description, keys)`` for each family present.
    """
    found = []
    for family, description, pattern in _FAMILIES:
        keys = [key for key in raw.state_dict if pattern.search(key)]
        if keys:
            found.append((family, description, keys))
    decoder_state = raw.extras.get("decoder_state")
    if decoder_state:
        found.append(
            (
                "UNETR semantic decoder (micro-sam / MedicoSAM)",
                "a `decoder_state` beside the SAM weights",
                [f"decoder_state.{key}" for key in decoder_state],
            )
        )
    return found


# --- Loading ---------------------------------------------------------------------------


def load_model(
    state_or_path: str | os.PathLike | Mapping[str, Any] | RawCheckpoint,
    *,
    config: SamConfig | None = None,
    image_size: int | None = None,
    strict: bool = True,
    preprocessing: Preprocessing | None = None,
) -> Sam:
    """A samforge :class:`Sam` from a registry name, a checkpoint file or a state dict.

    Args:
        state_or_path: a registered model name (``samforge models list``; downloaded into
            the cache on first use), a checkpoint path in any supported layout, a loaded
            checkpoint or state dict, or a :class:`RawCheckpoint`.
        config: architecture to load into; by default the registry's, the one stored in a
            samforge file, or the one inferred from tensor shapes.
        image_size: input size to run at; position tables trained at another size are
            interpolated (``pos_embed`` bicubic, global relative tables linear).
        strict: every model tensor must be in the checkpoint and every checkpoint tensor
            must be used. ``strict=False`` loads what matches and warns about the rest,
            including the SAM part of checkpoints of unsupported families.
        preprocessing: ``"sam"`` or ``"medsam"``; by default the registry's, the stored
            config's, or ``"sam"``.

    Returns:
        The model in eval mode on the CPU; ``model.config`` describes it and
        ``model.provenance`` where the weights came from.

    Raises:
        ModelNotFoundError: neither a registered name nor an existing file.
        DownloadError: a registered checkpoint cannot be fetched or fails its checksum.
        UnsupportedCheckpointError: the checkpoint belongs to an architecture samforge does
            not build yet (with ``strict=True``).
        CheckpointError: unreadable file, shape mismatches, missing or unexpected tensors.
    """
    spec, registered = None, False
    if isinstance(state_or_path, RawCheckpoint):
        raw = state_or_path
    elif isinstance(state_or_path, Mapping):
        raw = unwrap_checkpoint(state_or_path)
    else:
        spec, raw, registered = _resolve(state_or_path)
        if raw is None:  # a built-in randomly initialised model
            return _random_model(spec, config, image_size, preprocessing)

    # Foreign families first: their wrapped layouts may not even look like SAM.
    state = _drop_unsupported(raw, strict=strict)
    # A registered name brings its config; a file recognised by its published name only
    # its preprocessing convention (the shapes decide the architecture).
    target = config or raw.config or (spec.config if registered else None) or infer_config(state)
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

    model = build_sam(target)
    state, resized = adapt_position_tables(state, target)
    _load_state(model, state, raw, strict=strict)
    model.provenance = {
        "source": raw.source,
        "name": spec.name if spec else None,
        "format": raw.format,
        "checkpoint_image_size": _checkpoint_image_size(raw, target),
        "interpolated": resized,
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
        published = {spec.filename, Path(spec.url or "").name} - {None, ""}
        # Only real file names: some URLs end in a bare ".../download".
        if path.name in {name for name in published if "." in name}:
            return spec
    return None


def _random_model(
    spec: ModelSpec,
    config: SamConfig | None,
    image_size: int | None,
    preprocessing: Preprocessing | None,
) -> Sam:
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
        model = build_sam(target)
    model.provenance = {"source": "built-in random initialisation (untrained)", "name": spec.name}
    return model


def _checkpoint_image_size(raw: RawCheckpoint, target: SamConfig) -> int | None:
    grid = checkpoint_grid(raw.state_dict)
    return grid * target.patch_size if grid else None


def _drop_unsupported(raw: RawCheckpoint, *, strict: bool) -> dict[str, torch.Tensor]:
    """The state dict without tensors of unsupported families (which raise when strict)."""
    state = raw.state_dict
    families = detect_unsupported(raw)
    if not families:
        return state
    described = "; ".join(
        f"{family}: {description}, {_count(keys, 'tensor')} (e.g. {_preview(keys, 3)})"
        for family, description, keys in families
    )
    names = " and ".join(family for family, _, _ in families)
    if strict:
        robust_note = (
            " (for RobustSAM this reproduces only its clean-image path)"
            if any(family == "RobustSAM" for family, _, _ in families)
            else ""
        )
        raise UnsupportedCheckpointError(
            f"{raw.source} is a {names} checkpoint, which samforge does not support yet: "
            f"{described}. Loading it as plain SAM would drop these modules and change what "
            f"the model computes. Pass strict=False to load only the SAM part anyway"
            f"{robust_note}."
        )
    warnings.warn(
        f"{raw.source}: ignoring the {names} tensors ({described}); the model is plain SAM.",
        stacklevel=3,
    )
    dropped = {key for _, _, keys in families for key in keys}
    return {key: value for key, value in state.items() if key not in dropped}


def _load_state(
    model: Sam, state: dict[str, torch.Tensor], raw: RawCheckpoint, *, strict: bool
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
                f"{raw.source} does not match the SAM architecture key for key: {report}. "
                "If the file wraps SAM in another model, extract the SAM part; pass "
                "strict=False to load the matching tensors and keep the rest at their "
                "initial values."
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
    return "; ".join(f"{group}: {_preview(members)}" for group, members in sorted(groups.items()))


def _count(items: list[Any], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _preview(items: Iterable[str], limit: int = MAX_LISTED) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f", … ({len(items) - limit} more)" if len(items) > limit else "")


# --- Export ----------------------------------------------------------------------------


def export_official(
    model: Sam, path: str | os.PathLike, *, provenance: Mapping[str, Any] | None = None
) -> Path:
    """Write ``model`` in the official format, loadable by ``segment_anything`` strictly.

    A ``.safetensors`` path gets a safetensors file whose metadata holds the samforge
    config (and ``provenance``); any other suffix gets ``torch.save`` of the bare state
    dict, as Meta publishes SAM. Tensors are CPU, fp32, contiguous. The file is written to a
    temporary file in the same folder and renamed, so a failure leaves nothing behind.

    Returns:
        The written path.
    """
    path = Path(path).expanduser()
    state = official_state_dict(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temp = Path(temp_name)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            metadata = {"format": "pt", CONFIG_METADATA_KEY: json.dumps(model.config.to_dict())}
            if provenance is not None:
                metadata[PROVENANCE_METADATA_KEY] = json.dumps(dict(provenance), default=str)
            save_file(state, str(temp), metadata=metadata)
        else:
            torch.save(state, temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def official_state_dict(model: Sam) -> dict[str, torch.Tensor]:
    """The model's tensors under official names: CPU, fp32, contiguous, detached."""
    state = model.state_dict()
    foreign = [key for key in state if key.split(".", 1)[0] not in SAM_ROOTS]
    if foreign:
        raise CheckpointError(
            f"the model holds tensors outside SAM's official modules ({_preview(foreign)}); "
            "merge or remove them (e.g. LoRA deltas) before exporting to the official format."
        )
    return {
        key: value.detach().to(device="cpu", dtype=torch.float32).contiguous()
        for key, value in state.items()
    }


__all__ = [
    "RawCheckpoint",
    "detect_unsupported",
    "export_official",
    "infer_config",
    "load_model",
    "normalize_keys",
    "official_state_dict",
    "read_checkpoint",
    "unwrap_checkpoint",
]
