"""Model families: one record each (:class:`~.record.ModelFamily`) saying how samforge
recognises a family's checkpoints, builds it, names its tensors as its own code does and
writes it.

- :mod:`.sam`: plain SAM (Meta's, MedSAM, MedicoSAM, samforge's own);
- :mod:`.sammed2d`: SAM-Med2D, SAM with adapters in its image encoder;
- :mod:`.robustsam`: RobustSAM, SAM's encoders with a decoder for degraded images;
- :mod:`.sam_unet`: SAM-UNet, a ResNet branch beside SAM's ViT;
- :mod:`.mobilesam`: MobileSAM (and micro-sam's ``vit_t``), TinyViT in place of SAM's ViT.

``SamConfig.family`` names the family a config builds (:data:`FAMILIES`); SAM-Med2D's
adapters are an option of the image encoder (``SamConfig.encoder_adapter``), so a SAM config
with adapters is SAM-Med2D's, and the other families' encoders can carry them too.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..config import SamConfig
from ..sam.model import Sam
from .mobilesam import MOBILESAM
from .record import ModelFamily
from .robustsam import ROBUSTSAM
from .sam import SAM
from .sam_unet import SAM_UNET
from .sam_unet.model import SamUNet
from .sammed2d import SAMMED2D

# Every family exposes config, image_encoder, prompt_encoder, mask_decoder, mask_threshold,
# device, embed_images, decode and decode_with_features.
SamModel = Sam | SamUNet

# SamConfig.family -> the family it builds.
FAMILIES: dict[str, ModelFamily] = {
    family.family: family for family in (SAM, ROBUSTSAM, SAM_UNET, MOBILESAM)
}
# The families that add modules to SAM or replace some; those that pick SamConfig.family
# come first.
EXTENDING_SAM: tuple[ModelFamily, ...] = (SAM_UNET, ROBUSTSAM, MOBILESAM, SAMMED2D)


def family_of(config: SamConfig) -> ModelFamily:
    """The record of the family ``config`` builds."""
    family = FAMILIES[config.family]
    return SAMMED2D if family is SAM and config.encoder_adapter else family


def families_in(keys: Iterable[str]) -> list[ModelFamily]:
    """The families whose own modules a state dict with these keys holds (public names or
    samforge's), the one that picks ``SamConfig.family`` first; none for plain SAM."""
    keys = list(keys)
    return [family for family in EXTENDING_SAM if any(map(family.owns_key, keys))]


def build_model(config: SamConfig) -> SamModel:
    """A randomly initialised model of ``config``'s family, in eval mode; weights come from
    :func:`samforge.models.load_model`."""
    return family_of(config).model_class(config).eval()


__all__ = [
    "EXTENDING_SAM",
    "FAMILIES",
    "MOBILESAM",
    "ROBUSTSAM",
    "SAM",
    "SAMMED2D",
    "SAM_UNET",
    "ModelFamily",
    "SamModel",
    "build_model",
    "families_in",
    "family_of",
]
