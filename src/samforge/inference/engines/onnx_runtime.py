"""The ONNX Runtime engine: a model's exported graphs (:mod:`samforge.models.onnx`) run by
ONNX Runtime on the CPU, float32.

It uses ``image_encoder.onnx`` for embeddings, one image per run, and
``decoder_batched.onnx`` for prompts, every object of a chunk in one run; the Predictor
maps prompts into the model frame and masks back to the original as it does for torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ...errors import ConfigError, EmbeddingError
from ...models import SamModel, build_model
from ...models.checkpoints import hub
from ...models.onnx.export import OnnxExport, check_exportable, export_onnx
from ...models.onnx.runtime import decoder_prompts, inference_session
from ...models.sam.embeddings import Embeddings, require_tensor
from ...models.sam.mask_decoder import mask_slice
from ..disk_cache import model_digest


class OnnxRuntimeEngine:
    """Runs an :class:`~samforge.models.onnx.export.OnnxExport`'s graphs.

    Args:
        export: the exported folder.
        device: where the returned tensors go (the predictor's device).
        threads: ONNX Runtime's threads (default: as many as torch uses).
    """

    name = "onnxruntime"

    def __init__(
        self, export: OnnxExport, device: torch.device | str = "cpu", threads: int | None = None
    ) -> None:
        self.export = export
        self.device = torch.device(device)
        self.cache_tag: tuple[str, ...] = (self.name, export.export_id)
        self.encoder = inference_session(export.path("image_encoder"), threads)
        self.decoder = inference_session(export.path("decoder_batched"), threads)

    @classmethod
    def for_model(cls, model: SamModel, threads: int | None = None) -> OnnxRuntimeEngine:
        """The engine of ``model``'s graphs, exported into samforge's cache on first use
        (``<cache>/onnx/<digest of the weights>``), read from there afterwards."""
        check_exportable(model)
        folder = cached_export_folder(model)
        try:
            export = OnnxExport.read(folder)
        except ConfigError:  # not exported yet (or an incomplete folder): export now
            export = export_onnx(model, folder)
        return cls(export, model.device, threads)

    @classmethod
    def from_folder(
        cls, folder: str | os.PathLike, threads: int | None = None
    ) -> OnnxRuntimeEngine:
        """The engine of the graphs in ``folder`` (written by ``export_onnx``)."""
        return cls(OnnxExport.read(folder), "cpu", threads)

    def stand_in_model(self) -> SamModel:
        """A model of the export's architecture for the Predictor's geometry (input size,
        transform, mask threshold); its weights are drawn at random and never used."""
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return build_model(self.export.config)

    def precision(self, requested: str, resolved: str) -> str:
        if requested == "bf16":
            raise ConfigError(
                "the onnxruntime engine runs the exported float32 graphs: use precision "
                "'fp32' or 'auto' with it, or engine='torch' for bf16."
            )
        return "fp32"

    def embedder(self, precision: str) -> Callable[[torch.Tensor], Embeddings]:
        """The float32 encoder graph, whatever :meth:`precision` allowed."""
        return self.embed_images

    def embed_images(self, images: torch.Tensor) -> Embeddings:
        """(B, 3, S, S) model-ready images -> (B, 256, S/16, S/16) embeddings, one
        encoder run per image (the graph takes batch 1)."""
        pixels = images.detach().float().cpu().numpy()
        outputs = [
            self.encoder.run(None, {"image": pixels[i : i + 1]})[0] for i in range(len(pixels))
        ]
        return torch.from_numpy(np.concatenate(outputs)).to(self.device)

    def decode(
        self,
        image_embeddings: Embeddings,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        mask_inputs: torch.Tensor | None,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`samforge.models.PromptableModel.decode`, for one image's embedding
        (1, 256, h, w) shared by all B prompts."""
        embedding = require_tensor(image_embeddings, "the onnxruntime engine")
        if embedding.shape[0] != 1:
            raise EmbeddingError(
                f"the onnxruntime engine decodes prompts against one image; got embeddings "
                f"of {embedding.shape[0]} images. Decode each image's prompts separately."
            )
        cpu = torch.device("cpu")
        points = None if points is None else (points[0].to(cpu), points[1].to(cpu))
        boxes = None if boxes is None else boxes.to(cpu)
        batch = _batch_size(points, boxes, mask_inputs)
        coords, labels = decoder_prompts(points, boxes, batch)
        has_mask = mask_inputs is not None
        if mask_inputs is None:  # one placeholder, multiplied by has_mask_input = 0
            size = 4 * embedding.shape[-1]
            mask_inputs = torch.zeros(1, 1, size, size)
        scores, low_res = self.decoder.run(
            None,
            {
                "image_embeddings": embedding.detach().float().cpu().numpy(),
                "point_coords": coords.numpy(),
                "point_labels": labels.numpy(),
                "mask_input": mask_inputs.detach().float().cpu().numpy(),
                "has_mask_input": np.array([float(has_mask)], np.float32),
            },
        )
        selected = mask_slice(multimask_output)
        return (
            torch.from_numpy(low_res[:, selected]).to(self.device),
            torch.from_numpy(scores[:, selected]).to(self.device),
        )


def cached_export_folder(model: SamModel) -> Path:
    """Where the ONNX Runtime engine keeps ``model``'s graphs: named by a digest of its
    class, config and weights, so the folder always holds this model's graphs."""
    return hub.cache_dir() / "onnx" / model_digest(model)


def _batch_size(points, boxes, masks) -> int:
    for tensor in (None if points is None else points[0], boxes, masks):
        if tensor is not None:
            return int(tensor.shape[0])
    return 1
