"""The image encoder's arithmetic: which precision a predictor uses, and why.

``"auto"`` (the default) picks bf16 where the hardware computes it natively (CUDA, and CPUs
with AVX-512-BF16 or AMX) and fp32 elsewhere: on AVX2 CPUs PyTorch emulates bf16 matrix
products, several times slower than fp32. ``"fp32"`` is exact (the official encoder's
arithmetic); ``"bf16"`` forces bf16. Prompt decoding always runs in fp32.
:class:`EncoderRunner` runs an image encoder in the chosen precision.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from ..models import Sam, SamModel
from ..models.sam.embeddings import Embeddings
from .embedding_cache import model_state_key

PRECISIONS = ("auto", "fp32", "bf16")
DEFAULT_PRECISION = "auto"


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"``, ``"fp32"`` or ``"bf16"`` -> the precision used on ``device``."""
    return precision_choice(precision, device).precision


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 or AMX); on AVX2 PyTorch
    emulates it, several times slower than fp32."""
    capability = torch.backends.cpu.get_cpu_capability().upper()
    return "AVX512" in capability or "AMX" in capability


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision the image encoder runs in and the reason it was chosen."""

    requested: str
    precision: str
    reason: str


def precision_choice(requested: str, device: torch.device) -> PrecisionChoice:
    """What ``requested`` means on ``device``, with the reason (``samforge bench`` prints
    it).

    Raises:
        ConfigError: ``requested`` is not one of :data:`PRECISIONS`.
    """
    if requested not in PRECISIONS:
        raise ConfigError(
            f"precision must be one of {PRECISIONS}, not {requested!r}: fp32 is exact, bf16 "
            "is faster on GPUs and CPUs with AVX-512/AMX, auto picks for the device."
        )
    if requested != "auto":
        return PrecisionChoice(requested, requested, "asked for")
    if device.type == "cuda":
        return PrecisionChoice(requested, "bf16", "auto: CUDA computes bf16 natively")
    if device.type == "cpu":
        capability = torch.backends.cpu.get_cpu_capability()
        if cpu_has_native_bf16():
            reason = f"auto: the CPU computes bf16 natively ({capability})"
            return PrecisionChoice(requested, "bf16", reason)
        reason = f"auto: the CPU emulates bf16 ({capability}), slower than fp32"
        return PrecisionChoice(requested, "fp32", reason)
    return PrecisionChoice(requested, "fp32", f"auto: no bf16 path chosen for {device.type}")


class EncoderRunner:
    """A model's ``embed_images`` in a precision: (B, 3, S, S) model-ready images -> the
    model's embeddings, in the precision's dtype.

    bf16 on SAM's own ``embed_images`` (its image encoder alone: the ViT, or MobileSAM's
    TinyViT) runs a bf16 copy of the image encoder, made once per weight state (the copy
    follows fine-tuning, see :func:`model_state_key`): autocast would re-cast every weight
    on every call and keep LayerNorms and residual sums in fp32, 15% more time for a ViT-B
    (docs/performance.md). The copy is a module of its own, never swapped into the model,
    so threads sharing a model (the annotator's sessions) never see half-cast weights.
    Families whose embeddings need more than the image encoder (SAM-UNet's ResNet branch,
    RobustSAM's features) run under autocast.
    """

    def __init__(self, model: SamModel, precision: str) -> None:
        self.model = model
        self.precision = precision
        self._encoder: nn.Module | None = None
        self._encoder_state: tuple[int, int] | None = None

    def __call__(self, images: torch.Tensor) -> Embeddings:
        if self.precision == "fp32":
            return self.model.embed_images(images)
        # SAM's own method, not a family's override nor one replaced on the instance.
        if getattr(self.model.embed_images, "__func__", None) is Sam.embed_images:
            return self._bf16_encoder()(images.bfloat16())
        with torch.autocast(images.device.type, dtype=torch.bfloat16):
            return self.model.embed_images(images)

    def _bf16_encoder(self) -> nn.Module:
        """A bf16 copy of the image encoder for the model's current weights."""
        state = model_state_key(self.model)
        encoder = self._encoder
        if encoder is None or state != self._encoder_state:
            # Outside inference mode: its tensors would be inference tensors, which a
            # Parameter cannot wrap.
            with torch.inference_mode(False), torch.no_grad():
                encoder = copy.deepcopy(self.model.image_encoder).bfloat16().eval()
                encoder.requires_grad_(False)
            self._encoder, self._encoder_state = encoder, state
        return encoder
