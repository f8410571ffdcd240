"""Engines: what runs a Predictor's image encoder and prompt decoder.

- ``"torch"``: the model itself (:class:`TorchEngine`), on its device, in the predictor's
  precision;
- ``"onnxruntime"``: the model's exported ONNX graphs in ONNX Runtime
  (:class:`~.onnx_runtime.OnnxRuntimeEngine`), float32 on the CPU.

The Predictor does everything else itself (intensity mapping, the input transform,
prompts to the model frame, masks back to the original, caches), so both engines see the
same inputs and give the same outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from ...errors import ConfigError
from ...models import SamModel
from ...models.sam.embeddings import Embeddings
from ..precision import EncoderRunner

ENGINES = ("torch", "onnxruntime")


class Engine(Protocol):
    """Embeds model-ready images and decodes prompts in the model frame."""

    name: str
    # Extra parts of the embedding cache keys: embeddings of different engines (or of
    # different exports) are kept apart.
    cache_tag: tuple[str, ...]

    def embed_images(self, images: torch.Tensor) -> Embeddings:
        """(B, 3, S, S) model-ready images -> the model's embeddings (batch B)."""
        ...

    def decode(
        self,
        image_embeddings: Embeddings,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        mask_inputs: torch.Tensor | None,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """As :meth:`samforge.models.PromptableModel.decode`."""
        ...

    def precision(self, requested: str, resolved: str) -> str:
        """The precision this engine runs in when ``requested`` (``"auto"``, ``"fp32"``,
        ``"bf16"``) resolves to ``resolved`` on the model's device; raises
        :class:`ConfigError` for one it cannot run."""
        ...

    def embedder(self, precision: str) -> Callable[[torch.Tensor], Embeddings]:
        """What embeds (B, 3, S, S) model-ready images in ``precision`` (one that
        :meth:`precision` returned)."""
        ...


class TorchEngine:
    """The model's own ``embed_images`` and ``decode``."""

    name = "torch"
    cache_tag: tuple[str, ...] = ()

    def __init__(self, model: SamModel) -> None:
        self.model = model
        self.embed_images = model.embed_images
        self.decode = model.decode
        self._runners: dict[str, EncoderRunner] = {}

    def precision(self, requested: str, resolved: str) -> str:
        return resolved

    def embedder(self, precision: str) -> Callable[[torch.Tensor], Embeddings]:
        """The model's encoder in ``precision``: one runner per precision, so predictors
        sharing this engine (the annotator's sessions) share one bf16 copy of the encoder."""
        if precision not in self._runners:
            self._runners[precision] = EncoderRunner(self.model, precision)
        return self._runners[precision]


def create_engine(engine: str | Engine, model: SamModel) -> Engine:
    """The engine named ``engine`` for ``model`` (an engine object is returned as it is).

    ``"onnxruntime"`` exports the model's graphs on first use into samforge's cache
    (``<cache>/onnx/<weights digest>``) and reuses them afterwards.
    """
    if not isinstance(engine, str):
        return engine
    if engine == "torch":
        return TorchEngine(model)
    if engine == "onnxruntime":
        from .onnx_runtime import OnnxRuntimeEngine

        return OnnxRuntimeEngine.for_model(model)
    raise ConfigError(
        f"engine must be one of {ENGINES}, not {engine!r}: torch runs the model itself, "
        "onnxruntime its exported ONNX graphs."
    )
