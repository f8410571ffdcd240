"""The official ``segment_anything`` package as an independent reference in tests.

``segment_anything`` imports four names from torchvision, which cannot be installed beside
the CPU build of torch used here. The two that the model and ``SamPredictor`` use
(``resize`` and ``to_pil_image``) get minimal PIL-based stand-ins with torchvision's
semantics for PIL images (bilinear, antialiased); the two that only the automatic mask
generator uses raise if called, since no test uses that generator.
"""

from __future__ import annotations

import sys
import types
from functools import partial

import numpy as np
import torch
from PIL import Image


def _to_pil_image(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.asarray(array))


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    height, width = size
    return image.resize((width, height), Image.BILINEAR)


def _unused(*_args, **_kwargs):
    raise NotImplementedError("torchvision.ops is not available in the samforge test stand-in")


def install_torchvision_stand_in() -> None:
    """Put a minimal ``torchvision`` into ``sys.modules`` if the real one is absent."""
    try:
        import torchvision

        return
    except Exception:
        pass
    torchvision = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    ops = types.ModuleType("torchvision.ops")
    boxes = types.ModuleType("torchvision.ops.boxes")
    functional.resize = _resize
    functional.to_pil_image = _to_pil_image
    boxes.batched_nms = _unused
    boxes.box_area = _unused
    torchvision.transforms, transforms.functional = transforms, functional
    torchvision.ops, ops.boxes = ops, boxes
    sys.modules.update(
        {
            "torchvision": torchvision,
            "torchvision.transforms": transforms,
            "torchvision.transforms.functional": functional,
            "torchvision.ops": ops,
            "torchvision.ops.boxes": boxes,
        }
    )


install_torchvision_stand_in()
# A library imported earlier (MONAI probes for segment_anything) may have failed half-way on
# the missing torchvision, leaving submodules without their package; start afresh.
for _name in [name for name in sys.modules if name.split(".")[0] == "segment_anything"]:
    del sys.modules[_name]

import segment_anything  # noqa: E402
from segment_anything.modeling import (  # noqa: E402
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)

OFFICIAL_ARCHITECTURES = {
    "vit_b": dict(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11)),
    "vit_l": dict(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23)),
    "vit_h": dict(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31)),
}


def build_official_sam(
    embed_dim: int = 768,
    depth: int = 12,
    num_heads: int = 12,
    global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11),
    image_size: int = 1024,
    window_size: int = 14,
    seed: int = 0,
) -> Sam:
    """The official ``Sam`` with any encoder size, every parameter random (seeded).

    The official initialisation leaves relative-position tables and several embeddings at
    zero; all parameters are redrawn so that a parity test exercises every weight.
    """
    torch.manual_seed(seed)
    embedding_size = image_size // 16
    sam = Sam(
        image_encoder=ImageEncoderViT(
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
        prompt_encoder=PromptEncoder(
            embed_dim=256,
            image_embedding_size=(embedding_size, embedding_size),
            input_image_size=(image_size, image_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
            transformer_dim=256,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
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


def official_sam_from_state_dict(state_dict: dict, image_size: int = 1024, **arch) -> Sam:
    """Strict load into the official architecture, as SAM tools do."""
    sam = build_official_sam(image_size=image_size, **arch)
    sam.load_state_dict(state_dict, strict=True)
    return sam.eval()


def official_predictor(sam: Sam) -> segment_anything.SamPredictor:
    return segment_anything.SamPredictor(sam)


__all__ = [
    "OFFICIAL_ARCHITECTURES",
    "build_official_sam",
    "official_predictor",
    "official_sam_from_state_dict",
    "randomize_parameters",
    "segment_anything",
]
