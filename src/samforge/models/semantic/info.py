"""What a semantic model labels and how it takes its input: :class:`SemanticInfo`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

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
        label_values: the dataset's label value of each class, background (0) first, where
            training renumbered them (``data.classes: [1, 2, 3, 5, 6]`` of TotalSegmentator
            gives (0, 1, 2, 3, 5, 6)); None: the class indices are the values.
    """

    spatial_dims: int
    class_names: tuple[str, ...]
    patch_size: tuple[int, ...]
    in_channels: int
    intensity: str = "auto"
    window: str | tuple[float, float] | None = None
    label_values: tuple[int, ...] | None = None

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
        values = self.label_values
        if values is not None and (
            len(values) != len(self.class_names)
            or values[0] != 0
            or min(values) < 0
            or len(set(values)) != len(values)
        ):
            raise ConfigError(
                f"label_values {list(values)} must give one distinct value ≥ 0 per class of "
                f"{list(self.class_names)}, 0 (the background) first."
            )

    @property
    def values(self) -> tuple[int, ...]:
        """The dataset's label value of each class index (the indices where training kept
        the values)."""
        return self.label_values or tuple(range(self.num_classes))

    def indices_of(self, labels: np.ndarray) -> np.ndarray:
        """A map of the dataset's label values -> class indices, as training renumbered it:
        the classes' values become their indices, any other value the background."""
        labels = np.asarray(labels)
        return labels if self.label_values is None else renumbered(labels, self.label_values)

    def values_of(self, indices: np.ndarray) -> np.ndarray:
        """Class indices -> the dataset's label values (uint8 where they fit, else int32)."""
        values = np.asarray(self.values)
        dtype = np.uint8 if values.max() <= np.iinfo(np.uint8).max else np.int32
        return values.astype(dtype)[np.asarray(indices)]

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
        if self.label_values is None:
            del values["label_values"]  # files of models that kept the values stay as they were
        else:
            values["label_values"] = list(self.label_values)
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
            label_values=(
                tuple(int(v) for v in values["label_values"])
                if values.get("label_values") is not None
                else None
            ),
        )


def renumbered(labels: np.ndarray, values: Sequence[int]) -> np.ndarray:
    """``labels`` with ``values[i]`` -> i and any other value -> 0 (int64)."""
    labels = np.asarray(labels)
    table = np.zeros(max(int(labels.max(initial=0)), max(values)) + 1, np.int64)
    table[list(values)] = np.arange(len(values))
    return table[np.clip(labels, 0, None)]


def default_class_names(num_classes: int) -> tuple[str, ...]:
    """``("background", "class_1", ...)`` for a model whose file names no classes."""
    return (BACKGROUND, *(f"class_{index}" for index in range(1, num_classes)))
