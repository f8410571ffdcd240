"""Writing a model as ONNX graphs, each checked against PyTorch with ONNX Runtime.

A folder gets three graphs and a manifest:

- ``image_encoder.onnx``: ``image`` (1, 3, S, S), the preprocessed model input ->
  ``image_embeddings`` (1, 256, S/16, S/16);
- ``decoder.onnx``: prompt encoder + mask decoder in the signature of SAM's own
  ``SamOnnxModel`` (:mod:`.graphs`), so tools built for SAM's ONNX decoder use it as it is;
- ``decoder_batched.onnx``: the same for B objects at once (:mod:`.graphs`);
- ``samforge_onnx.json``: the model's config, the graphs' files and signatures, and the
  relative errors measured at export.

Families whose decoder needs more than the image embedding (RobustSAM's early features,
SAM-UNet's multi-scale features) are refused: SAM, SAM-Med2D and MobileSAM export.
Everything is written to temporary files and moved into place only after every graph has
passed its check, the manifest last; a failure leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import secrets
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import torch

from ...errors import ConfigError, ExportCheckError
from ...files import atomic_path, write_text_atomically
from ..config import SamConfig
from ..sam.mask_decoder import MaskDecoder
from ..sam.model import PromptableModel, Sam
from .graphs import (
    BATCHED_INPUTS,
    BATCHED_OUTPUTS,
    SINGLE_INPUTS,
    SINGLE_OUTPUTS,
    PromptDecoder,
    SamOnnxDecoder,
)
from .runtime import inference_session, require_onnx

MANIFEST = "samforge_onnx.json"
FORMAT = "samforge-onnx"
FORMAT_VERSION = 1
GRAPH_FILES = {
    "image_encoder": "image_encoder.onnx",
    "decoder": "decoder.onnx",
    "decoder_batched": "decoder_batched.onnx",
}
# The official export script's default opset.
OPSET = 17
TOLERANCE = 1e-4
# protobuf cannot hold a graph larger than 2 GiB in one file (ViT-H's encoder is 2.5 GiB).
GRAPH_BYTES_LIMIT = 2**31


@dataclass(frozen=True)
class OnnxExport:
    """An exported folder, as its manifest describes it.

    Attributes:
        folder: where the graphs are.
        config: the architecture (input size, preprocessing, decoder sizes).
        export_id: a random name drawn at export, unique to these files: embeddings made
            by them are cached under it.
        single_mask: whether ``decoder.onnx`` returns one mask (the official
            ``--return-single-mask``) rather than four.
        errors: the relative error of each graph against PyTorch, measured at export.
    """

    folder: Path
    config: SamConfig
    export_id: str
    single_mask: bool
    errors: dict[str, float]

    def path(self, graph: str) -> Path:
        """The file of ``"image_encoder"``, ``"decoder"`` or ``"decoder_batched"``."""
        return self.folder / GRAPH_FILES[graph]

    @classmethod
    def read(cls, folder: str | os.PathLike) -> OnnxExport:
        """The export in ``folder``.

        Raises:
            ConfigError: the folder holds no complete samforge ONNX export.
        """
        folder = Path(folder)
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError) as error:
            raise ConfigError(
                f"{folder} holds no readable {MANIFEST} ({error}); write the graphs with "
                "`samforge models export MODEL --onnx FOLDER`."
            ) from error
        if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
            raise ConfigError(
                f"{folder / MANIFEST} is not a {FORMAT} v{FORMAT_VERSION} manifest; export "
                "the model again with this samforge."
            )
        export = cls(
            folder,
            SamConfig.from_dict(manifest["config"]),
            manifest["export_id"],
            manifest["single_mask"],
            manifest["relative_errors"],
        )
        missing = [name for name in GRAPH_FILES.values() if not (folder / name).is_file()]
        if missing:
            raise ConfigError(f"{folder} lacks {missing}; export the model again.")
        return export


def check_exportable(model: PromptableModel) -> Sam:
    """The model, if its graphs can be exported.

    Raises:
        ConfigError: its decoder needs more than the image embedding, or its encoder is
            too large for one ONNX file.
    """
    plain_decoder = type(getattr(model, "mask_decoder", None)) is MaskDecoder
    if (
        not isinstance(model, Sam)
        or type(model).embed_images is not Sam.embed_images
        or not plain_decoder
    ):
        raise ConfigError(
            f"{type(model).__name__} cannot be exported to ONNX: its decoder needs more of the "
            "encoder than the image embedding (RobustSAM's early features, SAM-UNet's "
            "multi-scale features), which SAM's ONNX decoder signature has no room for. "
            "SAM, SAM-Med2D and MobileSAM models export; use engine='torch' for this one."
        )
    encoder_bytes = sum(p.numel() * p.element_size() for p in model.image_encoder.parameters())
    if encoder_bytes >= GRAPH_BYTES_LIMIT:
        raise ConfigError(
            f"the image encoder holds {encoder_bytes / 2**30:.1f} GiB of weights, more than "
            "one ONNX file can hold (2 GiB); export ViT-B, ViT-L or MobileSAM models."
        )
    return model


def export_onnx(
    model: PromptableModel,
    folder: str | os.PathLike,
    *,
    single_mask: bool = False,
    tolerance: float = TOLERANCE,
    progress: Callable[[str], None] | None = None,
) -> OnnxExport:
    """Write ``model``'s graphs into ``folder`` (module docstring), each checked with ONNX
    Runtime against PyTorch on inputs that exercise every path.

    Args:
        model: a SAM, SAM-Med2D or MobileSAM model (any device; exported from the CPU).
        folder: created if missing; existing graphs there are replaced.
        single_mask: ``decoder.onnx`` returns one mask by the official rule, as SAM's
            ``--return-single-mask`` (the batched graph always returns four).
        tolerance: the largest relative error (max |ONNX − torch| / max |torch|) accepted.
        progress: called with a line before each step.

    Raises:
        ConfigError: the family cannot be exported (:func:`check_exportable`).
        ExportCheckError: a graph differs from PyTorch by more than ``tolerance``.
        MissingDependencyError: ``onnx`` or ``onnxruntime`` is not installed.
    """
    from .checks import check_batched_decoder, check_decoder, check_image_encoder

    require_onnx()
    sam = check_exportable(model)
    device, training = sam.device, sam.training
    report = progress or (lambda line: None)
    folder = Path(folder)
    errors: dict[str, float] = {}
    try:
        sam = sam.cpu().eval()
        config = sam.config
        with ExitStack() as stack:
            paths = {
                graph: stack.enter_context(atomic_path(folder / name))
                for graph, name in GRAPH_FILES.items()
            }
            image = torch.randn(1, 3, config.image_size, config.image_size)
            report("tracing the image encoder")
            with whole_tensor_paths():
                _export(
                    sam.image_encoder,
                    (image,),
                    paths["image_encoder"],
                    ["image"],
                    ["image_embeddings"],
                    {},
                )
            report("checking the image encoder with ONNX Runtime")
            embedding, errors["image_encoder"] = check_image_encoder(
                sam, inference_session(paths["image_encoder"]), image
            )
            report("tracing the decoder (SamOnnxModel's signature)")
            _export(
                SamOnnxDecoder(sam, single_mask),
                _single_example(config),
                paths["decoder"],
                SINGLE_INPUTS,
                SINGLE_OUTPUTS,
                {"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
            )
            report("checking the decoder with ONNX Runtime")
            errors["decoder"] = check_decoder(
                sam, inference_session(paths["decoder"]), embedding, single_mask
            )
            report("tracing the batched decoder")
            _export(
                PromptDecoder(sam),
                _batched_example(config),
                paths["decoder_batched"],
                BATCHED_INPUTS,
                BATCHED_OUTPUTS,
                BATCHED_AXES,
            )
            report("checking the batched decoder with ONNX Runtime")
            errors["decoder_batched"] = check_batched_decoder(
                sam, inference_session(paths["decoder_batched"]), embedding
            )
            failed = {name: error for name, error in errors.items() if not error <= tolerance}
            if failed:
                raise ExportCheckError(
                    f"ONNX Runtime differs from PyTorch beyond the tolerance {tolerance:g} "
                    f"(relative errors {failed}); nothing was written. Report this with the "
                    "model's config."
                )
            # An earlier export's manifest must not vouch for the graphs moved in next.
            (folder / MANIFEST).unlink(missing_ok=True)
        export = OnnxExport(folder, config, secrets.token_hex(16), single_mask, errors)
        write_text_atomically(folder / MANIFEST, json.dumps(_manifest(export), indent=2))
    finally:
        sam.to(device).train(training)
    return export


BATCHED_AXES = {
    "point_coords": {0: "num_prompts", 1: "num_points"},
    "point_labels": {0: "num_prompts", 1: "num_points"},
    # One mask shared by all prompts (a placeholder when has_mask_input is 0), or one each.
    "mask_input": {0: "num_masks"},
    "iou_predictions": {0: "num_prompts"},
    "low_res_masks": {0: "num_prompts"},
}


@contextmanager
def whole_tensor_paths() -> Iterator[None]:
    """Make samforge's ViT compute its MLP and attention bias on whole tensors while a
    graph is traced.

    In eager CPU inference it runs them a cache-sized slice at a time and writes the slices
    with ``out=`` (:mod:`samforge.models.sam.image_encoder`); ONNX has no ``out=``, and the
    graph's runtime plans memory itself. The whole-tensor path is the official code's.
    """
    from ..sam import image_encoder

    # Beyond any tensor, and within int64 even when multiplied by the thread count (the
    # tracer records these products).
    unlimited = 2**40
    with mock.patch.multiple(
        image_encoder,
        MLP_TOKENS_PER_SLICE=unlimited,
        CPU_MASK_ELEMENTS_PER_THREAD=unlimited,
        ACCELERATOR_MASK_ELEMENTS=unlimited,
    ):
        yield


def _export(
    module: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    input_names,
    output_names,
    dynamic_axes: dict[str, dict[int, str]],
) -> None:
    """Trace ``module`` into ``path`` with torch's TorchScript exporter (the one SAM's own
    script uses: torch.export cannot follow the shape-dependent branches of samforge's
    fast paths, which tracing fixes at the example's shapes)."""
    with warnings.catch_warnings(), torch.no_grad():
        # Tracing warns about every shape-dependent branch; the checks catch any that matter.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(
            module,
            example,
            os.fspath(path),
            export_params=True,
            opset_version=OPSET,
            do_constant_folding=True,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=dynamic_axes,
            dynamo=False,
        )


def _prompt_example(config: SamConfig, batch: int, points: int, masks: int):
    """Random prompts of the shapes the graphs take (labels 0–3, as the official script)."""
    generator = torch.Generator().manual_seed(0)
    grid, frame = config.embedding_size, config.image_size
    return (
        torch.randn(1, config.prompt_embed_dim, grid, grid, generator=generator),
        torch.randint(0, frame, (batch, points, 2), generator=generator).float(),
        torch.randint(0, 4, (batch, points), generator=generator).float(),
        torch.randn(masks, 1, 4 * grid, 4 * grid, generator=generator),
        torch.tensor([1.0]),
    )


def _single_example(config: SamConfig) -> tuple[torch.Tensor, ...]:
    # An original size unlike the frame's, as the official script's (1500, 2250).
    original = torch.tensor([1.5 * config.image_size, 2.2 * config.image_size]).floor()
    return (*_prompt_example(config, 1, 5, 1), original)


def _batched_example(config: SamConfig) -> tuple[torch.Tensor, ...]:
    # Traced with one mask per prompt; a batch-1 mask input broadcasts in the same graph.
    return _prompt_example(config, 2, 3, 2)


def _manifest(export: OnnxExport) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "export_id": export.export_id,
        "config": export.config.to_dict(),
        "single_mask": export.single_mask,
        "opset": OPSET,
        "graphs": {
            "image_encoder": {
                "file": GRAPH_FILES["image_encoder"],
                "inputs": ["image"],
                "outputs": ["image_embeddings"],
            },
            "decoder": {
                "file": GRAPH_FILES["decoder"],
                "inputs": list(SINGLE_INPUTS),
                "outputs": list(SINGLE_OUTPUTS),
            },
            "decoder_batched": {
                "file": GRAPH_FILES["decoder_batched"],
                "inputs": list(BATCHED_INPUTS),
                "outputs": list(BATCHED_OUTPUTS),
            },
        },
        "relative_errors": export.errors,
        "torch": torch.__version__,
    }
