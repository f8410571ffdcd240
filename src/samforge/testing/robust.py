"""The ``robust_segment_anything`` package (RobustSAM 1.0.0) as an independent reference.

Its builders only make the 1024² ViT-B/L/H models, so the small reference model is
assembled from its classes with small encoder dims, as its ``_build_sam`` does. The
package's decoder reads ``self.opt`` (a training-options object it never uses for
inference) and handles one prompt per call: references are computed prompt by prompt. The
package is imported on the first call (:func:`import_robust_segment_anything`).
"""

from __future__ import annotations

import types
import warnings
from types import ModuleType
from typing import Any

import torch

from .official import randomize_parameters, sam_part_arguments
from .references import import_reference

INSTALL = "pip install --no-deps robust-segment-anything==1.0.0"


def import_robust_segment_anything() -> ModuleType:
    """The ``robust_segment_anything`` package (torchvision stand-in installed if needed).

    Raises:
        ReferenceUnavailableError: it is not installed.
    """
    return import_reference("robust_segment_anything", INSTALL)


def build_robust_sam(
    embed_dim: int = 64,
    depth: int = 2,
    num_heads: int = 2,
    global_attn_indexes: tuple[int, ...] = (1,),
    image_size: int = 256,
    seed: int = 0,
) -> torch.nn.Module:
    """The package's RobustSAM with any encoder size, every parameter and BN statistic
    random (seeded), in eval mode."""
    modeling = import_robust_segment_anything().modeling
    torch.manual_seed(seed)
    parts = sam_part_arguments(embed_dim, depth, num_heads, global_attn_indexes, image_size, 14)
    parts["image_encoder"]["global_attn_indexes"] = list(global_attn_indexes)
    sam = modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(**parts["image_encoder"]),
        prompt_encoder=modeling.PromptEncoder(**parts["prompt_encoder"]),
        mask_decoder=modeling.MaskDecoder(
            opt=types.SimpleNamespace(),
            transformer=modeling.TwoWayTransformer(**parts["transformer"]),
            vit_dim=embed_dim,
            **parts["mask_decoder"],
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
        if not isinstance(submodule, torch.nn.BatchNorm2d):
            continue
        mean, var = submodule.running_mean, submodule.running_var
        if mean is not None and var is not None:  # None without track_running_stats
            mean.copy_(0.1 * torch.randn(mean.shape, generator=generator))
            var.copy_(1 + 0.1 * torch.randn(mean.shape, generator=generator).abs())


@torch.no_grad()
def reference_decode(
    sam: Any,
    images: torch.Tensor,
    points=None,
    boxes=None,
    multimask: bool = False,
    clean: bool = False,
) -> dict[str, torch.Tensor]:
    """The package's decoder on one model-ready image (1, 3, S, S) and B prompts, one call
    per prompt (all it supports); outputs stacked over the prompts. ``sam`` is the
    package's model (:func:`build_robust_sam`), whose code has no type annotations.

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
