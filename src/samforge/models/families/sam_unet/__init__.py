"""SAM-UNet: a ResNet branch beside SAM's frozen ViT, multi-scale features into the decoder.

- :mod:`.model`: :class:`~.model.SamUNet`, its decoder and the resamplers between the two
  branches;
- :mod:`.resnet`: the ResNet branch (torchvision's layout);
- :mod:`.layout`: its checkpoints' names (SAM's modules wrapped) and ResNet shapes.

Its code saves and loads ``{"model": state}``. The authors publish no weights; samforge
builds it around a SAM checkpoint (``samforge train`` preset ``samunet``) or loads its
files.
"""

from __future__ import annotations

from ..record import ModelFamily
from .layout import is_sam_unet_key, resnet_layout, to_public_names, to_samforge_names
from .model import SamUNet

__all__ = ["SAM_UNET"]

SAM_UNET = ModelFamily(
    name="SAM-UNet",
    family="sam_unet",
    model_class=SamUNet,
    owns_key=is_sam_unet_key,
    config_fields=resnet_layout,
    export_layout="model",
    sam_layout=False,
    read_names=to_samforge_names,
    write_names=to_public_names,
)
