"""What the PEFT tests share: the small architecture, random models and inputs, the same
calls through samforge and through the official modules, and a relative error.

References are independent of the code under test: the closed-form LoRA formula and
parameter count, ``torch.linalg`` in float64 for the SVD, and the official
``segment_anything`` model for the exported, merged weights. Outputs are compared relative
to the largest value (fp32, 1e-5), as the parity tests do.
"""

from __future__ import annotations

import torch

from helpers.official import build_official_sam
from samforge.models import build_model
from samforge.models.config import VIT_TEST
from samforge.models.peft import apply_lora, apply_svd

TOLERANCE = 1e-5
SMALL_ARCH = dict(embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,))
DIM = VIT_TEST.encoder_embed_dim
DEPTH = VIT_TEST.encoder_depth
MLP_DIM = int(DIM * VIT_TEST.mlp_ratio)
# (in, out) of each wrappable layer of a ViT block, from the architecture.
LAYER_SHAPES = {
    "attn.qkv": (DIM, 3 * DIM),
    "attn.proj": (DIM, DIM),
    "mlp.lin1": (DIM, MLP_DIM),
    "mlp.lin2": (MLP_DIM, DIM),
}
DELTA_NAMES = ("lora_A", "lora_B", "singular_values")
APPLY = {"lora": apply_lora, "svd": apply_svd}


def is_delta(name: str) -> bool:
    return name.rsplit(".", 1)[-1] in DELTA_NAMES


def random_model(seed: int = 0):
    """samforge's SAM with every weight random (official init leaves some at zero)."""
    official = build_official_sam(image_size=VIT_TEST.image_size, seed=seed, **SMALL_ARCH)
    model = build_model(VIT_TEST)
    model.load_state_dict(official.state_dict(), strict=True)
    return model


def inputs(seed: int = 1) -> dict:
    generator = torch.Generator().manual_seed(seed)
    size = VIT_TEST.image_size
    side = 4 * VIT_TEST.embedding_size
    return dict(
        images=torch.randn(1, 3, size, size, generator=generator),
        boxes=torch.tensor([[30.0, 40.0, 140.0, 150.0], [100.0, 20.0, 220.0, 200.0]]),
        coords=torch.tensor([[[60.0, 70.0], [100.0, 40.0]], [[150.0, 90.0], [20.0, 200.0]]]),
        labels=torch.tensor([[1, 0], [1, 0]]),
        masks=torch.randn(2, 1, side, side, generator=generator),
    )


def samforge_outputs(model, data: dict) -> dict[str, torch.Tensor]:
    embeddings = model.embed_images(data["images"])
    box_logits, box_iou = model.decode(embeddings, boxes=data["boxes"])
    point_logits, point_iou = model.decode(
        embeddings,
        points=(data["coords"], data["labels"]),
        mask_inputs=data["masks"],
        multimask_output=True,
    )
    return dict(
        embeddings=embeddings,
        box_logits=box_logits,
        box_iou=box_iou,
        point_logits=point_logits,
        point_iou=point_iou,
    )


@torch.no_grad()
def official_outputs(sam, data: dict) -> dict[str, torch.Tensor]:
    """The same calls through the official modules."""
    embeddings = sam.image_encoder(data["images"])
    result = dict(embeddings=embeddings)
    calls = {
        "box": dict(points=None, boxes=data["boxes"], masks=None, multimask=False),
        "point": dict(
            points=(data["coords"], data["labels"]),
            boxes=None,
            masks=data["masks"],
            multimask=True,
        ),
    }
    for prefix, call in calls.items():
        sparse, dense = sam.prompt_encoder(
            points=call["points"], boxes=call["boxes"], masks=call["masks"]
        )
        logits, iou = sam.mask_decoder(
            image_embeddings=embeddings,
            image_pe=sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=call["multimask"],
        )
        result[f"{prefix}_logits"], result[f"{prefix}_iou"] = logits, iou
    return result


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    assert ours.shape == reference.shape
    ours, reference = ours.double(), reference.double()
    scale = reference.abs().max().clamp_min(1e-12)
    return ((ours - reference).abs().max() / scale).item()


def assert_outputs_close(ours: dict, reference: dict, tolerance: float = TOLERANCE) -> None:
    assert ours.keys() == reference.keys()
    for key in reference:
        error = relative_error(ours[key], reference[key])
        assert error <= tolerance, f"{key}: relative error {error:.2e}"


def train_deltas(model, steps: int = 3) -> None:
    """A few optimiser steps on every trainable parameter (PEFT deltas, prompt encoder,
    decoder), in train mode so LoRA dropout is active."""
    data = inputs(seed=7)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=1e-2)
    model.train()
    for step in range(steps):
        generator = torch.Generator().manual_seed(100 + step)
        outputs = samforge_outputs(model, data)
        loss = sum((v * torch.randn(v.shape, generator=generator)).mean() for v in outputs.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
