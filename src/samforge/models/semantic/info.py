"""What a semantic model labels and how it takes its input: :class:`SemanticInfo`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ...errors import ConfigError

BACKGROUND = "background"


@dataclass(frozen=True)
class SemanticInfo:
    """The metadata every semantic model carries (and its checkpoint stores).

    Attributes:
        spatial_dims: 2 (images) or 3 (volumes).
        class_names: one name per output channel; index 0 is ``"background"``.
        patch_size: the input size the network takes, (H, W) or (D, H, W).
        in_channels: channels of the input (1 for grey images and volumes, 3 for RGB).
        intensity: the intensity mode (:class:`samforge.data.intensity.IntensitySettings`).
        window: the CT window of that mode, a preset name or (level, width).
    """

    spatial_dims: int
    class_names: tuple[str, ...]
    patch_size: tuple[int, ...]
    in_channels: int
    intensity: str = "auto"
    window: str | tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.spatial_dims not in (2, 3):
            raise ConfigError(f"spatial_dims must be 2 or 3, not {self.spatial_dims}.")
        if len(self.patch_size) != self.spatial_dims or min(self.patch_size) < 1:
            raise ConfigError(
                f"patch_size {self.patch_size} must give {self.spatial_dims} positive sizes "
                "((H, W) for 2D, (D, H, W) for 3D)."
            )
        if len(self.class_names) < 2 or self.class_names[0] != BACKGROUND:
            raise ConfigError(
                f"class_names {self.class_names} must start with 'background' and name at "
                "least one class."
            )
        if self.in_channels not in (1, 3):
            raise ConfigError(f"in_channels must be 1 (grey) or 3 (RGB), not {self.in_channels}.")

    @property
    def num_classes(self) -> int:
        """Output channels, background included."""
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["class_names"] = list(self.class_names)
        values["patch_size"] = list(self.patch_size)
        if isinstance(self.window, tuple):
            values["window"] = list(self.window)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SemanticInfo:
        window = values.get("window")
        return cls(
            spatial_dims=int(values["spatial_dims"]),
            class_names=tuple(str(name) for name in values["class_names"]),
            patch_size=tuple(int(size) for size in values["patch_size"]),
            in_channels=int(values["in_channels"]),
            intensity=str(values.get("intensity", "auto")),
            window=tuple(window) if isinstance(window, list | tuple) else window,
        )


def default_class_names(num_classes: int) -> tuple[str, ...]:
    """``("background", "class_1", ...)`` for a model whose file names no classes."""
    return (BACKGROUND, *(f"class_{index}" for index in range(1, num_classes)))
