"""The :class:`SamConfig` of a state dict, read from its tensor shapes.

Official checkpoints carry no config, so the architecture (width, depth, heads, global
blocks, window, input size, decoder dims) is recovered from the shapes alone, and the
family (SAM-Med2D adapters, RobustSAM decoder, SAM-UNet) from the keys.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import Any

import torch

from ...errors import CheckpointError, ConfigError
from ..config import ARCHITECTURE_BY_EMBED_DIM, ARCHITECTURES, SamConfig
from ..families import SAM, families_in
from ..messages import preview_names
from .position_tables import checkpoint_grid
from .reading import normalize_keys

# Heads of the public encoders (head_dim 64, 64, 80): used when no relative-position table
# reveals the head size.
HEADS_BY_EMBED_DIM = {768: 12, 1024: 16, 1280: 16}

_BLOCK_KEY = re.compile(r"^image_encoder\.blocks\.(\d+)\.")
_DECODER_LAYER_KEY = re.compile(r"^mask_decoder\.transformer\.layers\.(\d+)\.")
_IOU_LAYER_KEY = re.compile(r"^mask_decoder\.iou_prediction_head\.layers\.(\d+)\.")


def infer_config(
    state_dict: Mapping[str, torch.Tensor], *, base: SamConfig | None = None
) -> SamConfig:
    """The :class:`SamConfig` whose model has the shapes of ``state_dict``.

    Read from shapes: encoder width, depth, patch and image size, heads (from the
    relative-position tables' head size), global blocks and window size (from the tables'
    lengths), MLP ratio, prompt and decoder dims; the family from the keys. Values shapes
    cannot show — the decoder's number of heads, the preprocessing convention, pixel
    statistics — come from ``base`` (e.g. the config stored in a samforge file) or the
    defaults of the public models (SAM-Med2D's own preprocessing for adapter checkpoints).

    Raises:
        CheckpointError: the tensors are not those of a SAM model.
    """
    state, _ = normalize_keys(state_dict)
    families = families_in(state)
    if base is None:
        conventions = [family.preprocessing for family in families if family.preprocessing]
        base = SamConfig(preprocessing=conventions[0]) if conventions else SamConfig()
    # A family with its own encoder (MobileSAM's TinyViT) reads its layout in config_fields.
    own_encoder = any(family.own_encoder for family in families)
    encoder_fields = {} if own_encoder else _vit_fields(state, base)
    prompt_dim = _dim(state, "mask_decoder.iou_token.weight", 1, base.prompt_embed_dim)
    mask_in_chans = _dim(state, "prompt_encoder.mask_downscaling.3.weight", 0, base.mask_in_chans)
    decoder_mlp = _dim(
        state, "mask_decoder.transformer.layers.0.mlp.lin1.weight", 0, base.decoder_mlp_dim
    )
    mask_tokens = _dim(state, "mask_decoder.mask_tokens.weight", 0, base.num_multimask_outputs + 1)
    iou_hidden = _dim(
        state, "mask_decoder.iou_prediction_head.layers.0.weight", 0, base.iou_head_hidden_dim
    )
    # The family and the adapters show in the keys, whatever a stored config says.
    family_fields = {"family": (families or [SAM])[0].family, "encoder_adapter": False}
    for family in families:
        family_fields.update(family.config_fields(state))
    return _with_changes(
        base,
        **family_fields,
        **encoder_fields,
        prompt_embed_dim=prompt_dim,
        mask_in_chans=mask_in_chans,
        decoder_depth=_count_indexed(state, _DECODER_LAYER_KEY) or base.decoder_depth,
        decoder_mlp_dim=decoder_mlp,
        num_multimask_outputs=mask_tokens - 1,
        iou_head_depth=_count_indexed(state, _IOU_LAYER_KEY) or base.iou_head_depth,
        iou_head_hidden_dim=iou_hidden,
    )


def _vit_fields(state: Mapping[str, torch.Tensor], base: SamConfig) -> dict[str, Any]:
    """SAM's ViT encoder: width, depth, heads, global blocks, window, patch and input size,
    MLP ratio."""
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
    return {
        "encoder_embed_dim": embed_dim,
        "encoder_depth": depth,
        "encoder_num_heads": num_heads,
        "encoder_global_attn_indexes": globals_,
        "window_size": window_size,
        "patch_size": patch_size,
        "image_size": image_size,
        "mlp_ratio": float(mlp_ratio),
    }


def _with_changes(config: SamConfig, **changes) -> SamConfig:
    try:
        return config.with_changes(**changes)
    except ConfigError as error:
        raise CheckpointError(
            f"the checkpoint's shapes give no valid SAM config: {error}"
        ) from None


def _require(state: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in state:
        raise CheckpointError(
            f"the checkpoint has no {key}, so it is not a SAM checkpoint (its first keys: "
            f"{preview_names(state)}). If it wraps SAM in another model, extract the SAM part."
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
