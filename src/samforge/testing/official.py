"""The official ``segment_anything`` package as an independent reference.

Builds the official ``Sam`` with any encoder size and every parameter random (seeded), so
that parity tests and benchmarks exercise every weight, and loads samforge state dicts into
it strictly, as SAM tools do. The package is imported on the first call
(:func:`import_segment_anything`).
"""

from __future__ import annotations

from functools import partial
from types import ModuleType
from typing import Any

import torch

from .references import import_reference

INSTALL = "pip install segment-anything==1.0"

OFFICIAL_ARCHITECTURES = {
    "vit_b": dict(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11)),
    "vit_l": dict(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23)),
    "vit_h": dict(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31)),
}


def import_segment_anything() -> ModuleType:
    """The ``segment_anything`` package (torchvision stand-in installed if needed).

    Raises:
        ReferenceUnavailableError: it is not installed.
    """
    return import_reference("segment_anything", INSTALL)


def sam_part_arguments(
    embed_dim: int,
    depth: int,
    num_heads: int,
    global_attn_indexes: tuple[int, ...],
    image_size: int,
    window_size: int,
) -> dict[str, dict[str, Any]]:
    """Constructor arguments of SAM's image encoder, prompt encoder, two-way transformer and
    mask decoder, as the official ``_build_sam`` passes them (RobustSAM's package shares
    them)."""
    embedding_size = image_size // 16
    return {
        "image_encoder": dict(
            depth=depth,
            embed_dim=embed_dim,
            img_size=image_size,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=num_heads,
            patch_size=16,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=tuple(global_attn_indexes),
            window_size=window_size,
            out_chans=256,
        ),
        "prompt_encoder": dict(
            embed_dim=256,
            image_embedding_size=(embedding_size, embedding_size),
            input_image_size=(image_size, image_size),
            mask_in_chans=16,
        ),
        "transformer": dict(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
        "mask_decoder": dict(
            num_multimask_outputs=3,
            transformer_dim=256,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
    }


def build_official_sam(
    embed_dim: int = 768,
    depth: int = 12,
    num_heads: int = 12,
    global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11),
    image_size: int = 1024,
    window_size: int = 14,
    seed: int = 0,
) -> torch.nn.Module:
    """The official ``Sam`` with any encoder size, every parameter random (seeded), in eval
    mode.

    The official initialisation leaves relative-position tables and several embeddings at
    zero; all parameters are redrawn so that a parity test exercises every weight.
    """
    modeling = import_segment_anything().modeling
    torch.manual_seed(seed)
    parts = sam_part_arguments(
        embed_dim, depth, num_heads, global_attn_indexes, image_size, window_size
    )
    sam = modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(**parts["image_encoder"]),
        prompt_encoder=modeling.PromptEncoder(**parts["prompt_encoder"]),
        mask_decoder=modeling.MaskDecoder(
            transformer=modeling.TwoWayTransformer(**parts["transformer"]),
            **parts["mask_decoder"],
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    randomize_parameters(sam, seed)
    return sam.eval()


def randomize_parameters(module: torch.nn.Module, seed: int) -> None:
    """Redraw every floating parameter: weights ~ N(0, 1/fan_in), norms ~ 1 + N(0, 0.1)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if name.endswith("positional_encoding_gaussian_matrix"):
                continue  # a buffer in the official code, kept as drawn
            if parameter.ndim >= 2:
                fan_in = parameter[0].numel() if parameter.ndim > 1 else 1
                std = (1.0 / max(fan_in, 1)) ** 0.5
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)
            elif "norm" in name or ".1.weight" in name or ".3.weight" in name:
                parameter.copy_(1 + 0.1 * torch.randn(parameter.shape, generator=generator))
            else:
                parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))
    # Relative-position tables are 2-D and get the 1/fan_in rule; make them O(1) so they
    # visibly shape attention.
    for name, parameter in module.named_parameters():
        if "rel_pos" in name:
            with torch.no_grad():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)


def official_sam_from_state_dict(
    state_dict: dict, image_size: int = 1024, **arch: Any
) -> torch.nn.Module:
    """Strict load into the official architecture, as SAM tools do."""
    sam = build_official_sam(image_size=image_size, **arch)
    sam.load_state_dict(state_dict, strict=True)
    return sam.eval()


def official_predictor(sam: torch.nn.Module) -> Any:
    """The official ``SamPredictor`` of an official ``Sam``."""
    return import_segment_anything().SamPredictor(sam)
