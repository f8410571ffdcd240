"""Building the model of a config's family: plain SAM (with or without SAM-Med2D's
adapters), RobustSAM or SAM-UNet."""

from __future__ import annotations

from .config import SamConfig
from .robust_sam import RobustSam
from .sam import Sam
from .sam_unet import SamUNet

# Every family exposes config, image_encoder, prompt_encoder, mask_decoder, mask_threshold,
# device, embed_images, decode and decode_with_features.
SamModel = Sam | SamUNet

MODEL_CLASSES: dict[str, type[Sam] | type[SamUNet]] = {
    "sam": Sam,
    "robust": RobustSam,
    "sam_unet": SamUNet,
}


def build_model(config: SamConfig) -> SamModel:
    """A randomly initialised model of ``config``'s family, in eval mode."""
    return MODEL_CLASSES[config.decoder](config).eval()
