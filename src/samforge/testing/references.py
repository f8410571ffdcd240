"""Importing the reference packages (``segment_anything``, ``robust_segment_anything``).

Both import four names from torchvision, which cannot be installed beside the CPU build of
torch. When torchvision is absent, :func:`install_torchvision_stand_in` puts a minimal one
into ``sys.modules``: the two names the models and ``SamPredictor`` use (``resize`` and
``to_pil_image``) get PIL-based stand-ins with torchvision's semantics for PIL images
(bilinear, antialiased); the two that only the automatic mask generator uses
(``batched_nms``, ``box_area``) are MONAI's NMS (torchvision's semantics: descending score,
ties in input order, suppress IoU > threshold) and the box area (x1 − x0)(y1 − y0). The
stand-in is installed only when a reference package is imported.
"""

from __future__ import annotations

import importlib
import sys
import types
from types import ModuleType

import numpy as np
from PIL import Image

from ..errors import SamforgeError


class ReferenceUnavailableError(SamforgeError):
    """A reference implementation that a test or benchmark compares with is not installed."""


def import_reference(package: str, install: str) -> ModuleType:
    """``package`` imported afresh, with the torchvision stand-in in place if needed.

    Args:
        package: the top-level module, e.g. ``"segment_anything"``.
        install: the command that installs it, for the error message.

    Raises:
        ReferenceUnavailableError: the package is not installed or fails to import.
    """
    install_torchvision_stand_in()
    if package not in sys.modules:
        # A library imported earlier (MONAI probes for segment_anything) may have failed
        # half-way on the missing torchvision, leaving submodules without their package.
        for name in [name for name in sys.modules if name.split(".")[0] == package]:
            del sys.modules[name]
    try:
        return importlib.import_module(package)
    except ImportError as error:
        raise ReferenceUnavailableError(
            f"the reference package {package!r} cannot be imported ({error}); install it "
            f"with: {install}"
        ) from error


def _to_pil_image(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.asarray(array))


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    height, width = size
    return image.resize((width, height), Image.Resampling.BILINEAR)


def _batched_nms(boxes, scores, categories, iou_threshold: float):
    from monai.data.box_utils import batched_nms

    return batched_nms(boxes, scores, categories, iou_threshold)


def _box_area(boxes):
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def install_torchvision_stand_in() -> None:
    """Put a minimal ``torchvision`` into ``sys.modules`` if the real one is absent."""
    try:
        import torchvision

        return
    except Exception:
        pass
    torchvision = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    ops = types.ModuleType("torchvision.ops")
    boxes = types.ModuleType("torchvision.ops.boxes")
    functional.__dict__.update(resize=_resize, to_pil_image=_to_pil_image)
    boxes.__dict__.update(batched_nms=_batched_nms, box_area=_box_area)
    torchvision.__dict__.update(transforms=transforms, ops=ops)
    transforms.__dict__.update(functional=functional)
    ops.__dict__.update(boxes=boxes)
    sys.modules.update(
        {
            "torchvision": torchvision,
            "torchvision.transforms": transforms,
            "torchvision.transforms.functional": functional,
            "torchvision.ops": ops,
            "torchvision.ops.boxes": boxes,
        }
    )
