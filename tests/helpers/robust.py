"""The ``robust_segment_anything`` package (RobustSAM 1.0.0) as an independent reference.

It imports the same torchvision names as ``segment_anything``; :mod:`helpers.official`
installs the stand-in. Its builders only make the 1024² ViT-B/L/H models, so the small
reference model is assembled from its classes with small encoder dims, as its
``_build_sam`` does. The package's decoder reads ``self.opt`` (a training-options object
it never uses for inference) and handles one prompt per call: references are computed
prompt by prompt.
"""

from __future__ import annotations

import sys
import types
import warnings
from functools import partial

import pytest
import torch

from helpers.official import randomize_parameters

pytest.importorskip(
    "robust_segment_anything",
    reason="install it with: pip install --no-deps robust-segment-anything==1.0.0",
)
for _name in [name for name in sys.modules if name.split(".")[0] == "robust_segment_anything"]:
    del sys.modules[_name]  # a half-failed earlier import (missing torchvision) starts afresh

from robust_segment_anything.modeling import (  # noqa: E402
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)


def build_robust_sam(
    embed_dim: int = 64,
    depth: int = 2,
    num_heads: int = 2,
    global_attn_indexes: tuple[int, ...] = (1,),
    image_size: int = 256,
    seed: int = 0,
) -> Sam:
    """The package's RobustSAM with any encoder size, every parameter and BN statistic
    random (seeded), in eval mode."""
    torch.manual_seed(seed)
    grid = image_size // 16
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
            global_attn_indexes=list(global_attn_indexes),
            window_size=14,
            out_chans=256,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=256,
            image_embedding_size=(grid, grid),
            input_image_size=(image_size, image_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            opt=types.SimpleNamespace(),
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
            transformer_dim=256,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
            vit_dim=embed_dim,
        ),
    )
    randomize_parameters(sam, seed)
    randomize_batch_norm_statistics(sam, seed)
    return sam.eval()


def randomize_batch_norm_statistics(module: torch.nn.Module, seed: int) -> None:
    """Running means ~ N(0, 0.1²), variances ~ 1 + |N(0, 0.1²)|: eval-mode batch norm then
    does more than the identity."""
    generator = torch.Generator().manual_seed(seed + 1)
    for submodule in module.modules():
        if isinstance(submodule, torch.nn.BatchNorm2d):
            shape = submodule.running_mean.shape
            submodule.running_mean.copy_(0.1 * torch.randn(shape, generator=generator))
            submodule.running_var.copy_(1 + 0.1 * torch.randn(shape, generator=generator).abs())


@torch.no_grad()
def reference_decode(
    sam: Sam,
    images: torch.Tensor,
    points=None,
    boxes=None,
    multimask: bool = False,
    clean: bool = False,
) -> dict[str, torch.Tensor]:
    """The package's decoder on one model-ready image (1, 3, S, S) and B prompts, one call
    per prompt (all it supports); outputs stacked over the prompts.

    Returns:
        ``masks`` (B, M', 4h, 4w) as the package returns them (the robust path's multimask
        output has 15 masks, of which the first three are masks 1–3), ``iou``, ``features``
        (the robust mask features) and ``tokens`` (all mask tokens after the transformer).
    """
    embeddings, encoder_features = sam.image_encoder(images)
    early = encoder_features[0]
    batch = (points[0] if points is not None else boxes).shape[0]
    outputs = []
    for index in range(batch):
        prompt_points = (
            None if points is None else (points[0][index : index + 1], points[1][index : index + 1])
        )
        prompt_boxes = None if boxes is None else boxes[index : index + 1]
        sparse, dense = sam.prompt_encoder(points=prompt_points, boxes=prompt_boxes, masks=None)
        with warnings.catch_warnings():
            # Its InstanceNorm1d(4) on one (1, 256) token warns about num_features.
            warnings.filterwarnings("ignore", message="input's size at dim")
            decoded = sam.mask_decoder(
                image_embeddings=embeddings,
                image_pe=sam.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
                encoder_features=early.unsqueeze(0),
                clear=clean,
            )
        outputs.append(decoded)
    names = ("masks", "iou", "features", "tokens")
    return {name: torch.cat([output[i] for output in outputs]) for i, name in enumerate(names)}
