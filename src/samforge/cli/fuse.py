"""``samforge fuse``: a model from the modules of different checkpoints.

RobustMedSAM's starting point, MedSAM's encoders with RobustSAM's decoder::

    samforge fuse --image-encoder medsam_vit_b --mask-decoder robustsam_vit_b -o fused.pth

The file is written in the decoder family's format (RobustSAM's keeps all its tensors),
with SAM's input convention by default (RobustMedSAM's predictor resizes the longest side,
normalises with SAM's mean/std and pads; ``--preprocessing image_encoder`` keeps the image
encoder's instead), and the provenance of every module: in the metadata of a
``.safetensors`` file, or in a sidecar ``<stem>.provenance.json`` beside a ``.pth``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from ..files import check_output_file
from ..models import export_model, family_of, fuse_modules
from ..models.checkpoints.fusion import FUSED_PREPROCESSING
from ..models.checkpoints.reading import sidecar_path


def fuse(
    image_encoder: str = typer.Option(
        ..., "--image-encoder", help="Registered model name or checkpoint supplying image_encoder."
    ),
    mask_decoder: str = typer.Option(
        ...,
        "--mask-decoder",
        help="Name or checkpoint supplying mask_decoder (and the architecture).",
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Output .pth or .safetensors file."),
    prompt_encoder: str | None = typer.Option(
        None,
        "--prompt-encoder",
        help="Name or checkpoint supplying prompt_encoder [the image encoder's source].",
    ),
    preprocessing: str = typer.Option(
        "sam",
        "--preprocessing",
        help=f"Input convention of the fused model: {' or '.join(FUSED_PREPROCESSING)} "
        "[sam: as RobustMedSAM's predictor feeds its fused model].",
    ),
) -> None:
    """Fuse modules of different checkpoints, checked tensor by tensor, and write the model."""
    sources = [s for s in (image_encoder, prompt_encoder, mask_decoder) if s is not None]
    check_output_file(output, sources)  # before any work: never over a source checkpoint
    model = fuse_modules(image_encoder, prompt_encoder, mask_decoder, preprocessing)
    path = export_model(model, output, provenance=model.provenance)
    console = Console()
    for module, origin in model.provenance["modules"].items():
        digest = origin["file_sha256"] or origin["tensors_sha256"]
        console.print(f"{module}: {origin['source']} (sha256 {digest[:12]}…)", highlight=False)
    where = "metadata" if path.suffix == ".safetensors" else str(sidecar_path(path))
    console.print(
        f"wrote {family_of(model.config).name} model to {path}; provenance in {where}",
        highlight=False,
        soft_wrap=True,
    )
