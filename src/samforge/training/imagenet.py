"""Where SAM-UNet's ImageNet-initialised ResNet comes from.

SAM-UNet's code builds its ResNet with ``torchvision.models.resnet50(weights=DEFAULT)``
(``resnet34`` likewise). samforge does not depend on torchvision and downloads nothing
unasked: a config names the weights file (``resnet_weights``), a plain torchvision state
dict, which :meth:`samforge.models.SamUNet.load_resnet_weights` renames.
"""

from __future__ import annotations

# torchvision's ImageNet weights, the DEFAULT ones SAM-UNet's code asks torchvision for
# (the 8 hex digits in a file name are the start of its SHA-256).
RESNET_IMAGENET = {
    "resnet50": "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
    "resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",
}


def resnet_weights_hint(resnet: str) -> str:
    """How to get the ImageNet weights SAM-UNet starts its ResNet from."""
    return (
        f"SAM-UNet starts its {resnet} from torchvision's ImageNet weights: download "
        f"{RESNET_IMAGENET[resnet]} (torchvision's {resnet} DEFAULT weights, a plain state "
        "dict) and set resnet_weights to the file."
    )
