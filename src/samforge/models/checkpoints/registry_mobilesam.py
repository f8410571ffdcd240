"""The registry's MobileSAM-architecture models (TinyViT ``vit_t``): MobileSAM's own weights
and micro-sam's ``vit_t`` models, registered when :mod:`samforge.models.checkpoints` is
imported (beside :mod:`.registry`, which holds SAM's and the other families' entries)."""

from __future__ import annotations

from .registry import ModelSpec, register_model

# MobileSAM keeps its weights in its GitHub repository (weights/mobile_sam.pt, a bare state
# dict that mobile_sam's build_sam_vit_t loads strictly) and publishes no checksum.
MOBILESAM_VIT_T = register_model(
    ModelSpec(
        name="mobilesam_vit_t",
        architecture="vit_t",
        input_size=1024,
        preprocessing="sam",
        url="https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",
        checksum=None,
        checksum_source="none published by the MobileSAM authors; `samforge models fetch` "
        "prints the SHA-256 of what it downloaded so it can be recorded",
        filename="mobile_sam.pt",
        format="bare",
        family="MobileSAM",
        description="MobileSAM (Zhang et al. 2023): SAM's prompt encoder and decoder behind "
        "TinyViT-5M, an image encoder distilled from SAM ViT-H; natural images, fast on CPU.",
        licence="Apache-2.0",
        homepage="https://github.com/ChaoningZhang/MobileSAM",
    )
)

# micro-sam's vit_t models, under its names as aliases. URLs and xxh128 checksums from its
# pooch registry: computational-cell-analytics/micro-sam, micro_sam/v1/util.py, models()
# (commit df11268e9a40c4a8944dc387134403c2dec050d3). micro-sam's fine-tuned models keep
# their instance-segmentation decoder in a separate `<name>_decoder` file, not loaded here.
_BIOIMAGE_IO = "https://uk1s3.embassy.ebi.ac.uk/public-datasets/bioimage.io/"
MICROSAM_VIT_T = [
    register_model(
        ModelSpec(
            name=f"microsam_{name}",
            architecture="vit_t",
            input_size=1024,
            preprocessing="sam",
            url=url,
            checksum=f"xxh128:{xxh128}",
            checksum_source=f"xxh128 from micro-sam's pooch registry ({name})",
            filename=f"microsam_{name}.pt",
            format="bare",
            family="micro-sam",
            description=description,
            licence=licence,
            homepage="https://github.com/computational-cell-analytics/micro-sam",
            aliases=(name,),
        )
    )
    for name, url, xxh128, licence, description in (
        (
            "vit_t",
            "https://owncloud.gwdg.de/index.php/s/TuDzuwVDHd1ZDnQ/download",
            "8eadbc88aeb9d8c7e0b4b60c3db48bd0",
            "Apache-2.0",
            "MobileSAM's weights as micro-sam hosts them (its `vit_t`).",
        ),
        (
            "vit_t_lm",
            _BIOIMAGE_IO + "faithful-chicken/1.1/files/vit_t.pt",
            "72ec5074774761a6e5c05a08942f981e",
            "as published on bioimage.io (see its model page)",
            "micro-sam's light-microscopy generalist (Archit et al. 2025), MobileSAM architecture.",
        ),
        (
            "vit_t_em_organelles",
            _BIOIMAGE_IO + "greedy-whale/1/files/vit_t.pt",
            "253474720c497cce605e57c9b1d18fd9",
            "as published on bioimage.io (see its model page)",
            "micro-sam's electron-microscopy organelle model (Archit et al. 2025), MobileSAM "
            "architecture.",
        ),
    )
]
