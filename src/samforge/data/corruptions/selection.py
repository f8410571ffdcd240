"""Choosing corruptions: the groups, the types that suit a modality, and a user's
selection of names and groups resolved into types."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from ...errors import ConfigError
from .kinds import CORRUPTIONS
from .record import Corruption

CORRUPTION_GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        group: tuple(name for name, c in CORRUPTIONS.items() if c.group == group)
        for group in ("modality_agnostic", "image_pipeline", "ultrasound", "mri", "ct_xray")
    }
)
"""Names per group: the paper's four groups plus ``image_pipeline`` (JPEG, colour jitter)."""

# Modality names (DICOM codes and common words, lower case) -> modality-specific group.
_MODALITY_GROUP = {
    **dict.fromkeys(("us", "ultrasound", "echo", "echocardiography"), "ultrasound"),
    **dict.fromkeys(("mr", "mri", "t1", "t2", "flair", "dwi"), "mri"),
    **dict.fromkeys(
        (
            "ct",
            "xray",
            "x-ray",
            "x_ray",
            "cr",
            "dx",
            "mg",
            "mammography",
            "xa",
            "rf",
            "fluoroscopy",
            "pet",
            "pt",
            "nm",
            "spect",
            "microscopy",
        ),
        "ct_xray",
    ),
}


def corruptions_for_modality(modality: str | None) -> tuple[str, ...]:
    """The corruption types that make sense for a modality.

    The modality-agnostic and image-pipeline types apply to everything; ultrasound adds
    speckle and salt-and-pepper, MR adds Rician, Rayleigh and step motion, and photon-counting
    modalities (CT, X-ray, mammography, PET, ...) add Poisson. Unknown modalities (endoscopy,
    dermoscopy, ``None``) get the generic types only.

    Args:
        modality: ``"ct"``, ``"mr"``, ``"us"``, ``"xray"``, a DICOM modality code or ``None``;
            case-insensitive.

    Returns:
        Names in the order of :data:`CORRUPTIONS`.
    """
    groups = {"modality_agnostic", "image_pipeline"}
    if modality is not None:
        specific = _MODALITY_GROUP.get(modality.strip().lower())
        if specific is not None:
            groups.add(specific)
    return tuple(name for name, c in CORRUPTIONS.items() if c.group in groups)


def get_corruption(kind: str) -> Corruption:
    """The :class:`Corruption` called ``kind``; ConfigError listing the valid names otherwise."""
    try:
        return CORRUPTIONS[kind]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown corruption {kind!r}; choose one of: {', '.join(CORRUPTIONS)}."
        ) from None


def resolve_corruption_names(names: str | Sequence[str] | None) -> tuple[str, ...]:
    """Expand a user's selection into corruption names.

    Accepts names, group names (``mri``, ``ultrasound``, ...), ``all``, comma-separated
    strings, or ``None`` (all twelve). Duplicates are dropped; the order is that of
    :data:`CORRUPTIONS`.
    """
    if names is None:
        return tuple(CORRUPTIONS)
    items = [names] if isinstance(names, str) else list(names)
    tokens = [t.strip() for item in items for t in str(item).split(",") if t.strip()]
    chosen: set[str] = set()
    for token in tokens:
        key = token.lower().replace("-", "_")
        if key == "all":
            chosen.update(CORRUPTIONS)
        elif key in CORRUPTION_GROUPS:
            chosen.update(CORRUPTION_GROUPS[key])
        elif key in CORRUPTIONS:
            chosen.add(key)
        else:
            raise ConfigError(
                f"unknown corruption {token!r}; choose names ({', '.join(CORRUPTIONS)}), "
                f"groups ({', '.join(CORRUPTION_GROUPS)}) or 'all'."
            )
    if not chosen:
        raise ConfigError("no corruption selected; give names, groups or 'all'.")
    return tuple(name for name in CORRUPTIONS if name in chosen)
