"""Parameter-efficient fine-tuning of the image encoder: LoRA and singular-value tuning.

Both methods wrap ``nn.Linear`` layers inside ``model.image_encoder.blocks[i]`` (attention
``attn.qkv`` and ``attn.proj``, optionally the MLP's ``mlp.lin1`` and ``mlp.lin2``), leave
the wrapped model's outputs unchanged at initialisation, and add small deltas to train:

- **LoRA** (Hu et al. 2021, as in HF ``peft``): ``W x + (alpha / r) · B A x`` with ``A``
  (r × in) Kaiming-uniform and ``B`` (out × r) zero, so the delta starts at exactly zero.
- **SVD** (singular-value fine-tuning, as in RobustMedSAM / SVDiff): ``W = U diag(S) Vh``;
  ``U`` and ``Vh`` are fixed buffers, the singular values ``S`` are the tensor to train.

Wrapping changes no ``requires_grad``: the new delta parameters are trainable, every other
parameter keeps its flag. Which parameters train is the freeze policy's business
(:func:`samforge.training.freeze.apply_freeze_policy` trains the deltas under every policy,
e.g. ``"encoder_frozen"`` for "frozen encoder + PEFT deltas").

:func:`merge_peft` folds the deltas back into plain ``nn.Linear`` layers, after which the
model's state dict has exactly the official SAM keys again and can be exported with
:func:`samforge.models.export_official`. A model that still holds PEFT layers has
extra keys (``...qkv.lora_A``, ``...qkv.base.weight``, ``...qkv.singular_values``, ...);
its state dict (e.g. a Lightning checkpoint) loads into a model prepared with the same
``apply_lora``/``apply_svd`` call.

Works on any model family whose encoder exposes ``image_encoder.blocks[i].attn.qkv`` etc.
"""

from .layers import PEFT_PARAMETER_NAMES, LoRALinear, SVDLinear
from .merging import (
    has_peft,
    merge_peft,
    peft_kind,
    peft_modules,
    peft_parameter_names,
    peft_summary,
)
from .wrapping import TARGET_PATHS, apply_lora, apply_svd, encoder_blocks_of, resolve_block_indices

__all__ = [
    "PEFT_PARAMETER_NAMES",
    "TARGET_PATHS",
    "LoRALinear",
    "SVDLinear",
    "apply_lora",
    "apply_svd",
    "encoder_blocks_of",
    "has_peft",
    "merge_peft",
    "peft_kind",
    "peft_modules",
    "peft_parameter_names",
    "peft_summary",
    "resolve_block_indices",
]
