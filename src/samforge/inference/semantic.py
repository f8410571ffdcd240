"""Semantic inference: a label for every pixel of an image or voxel of a volume.

>>> predictor = SemanticPredictor(load_semantic_model("run/model.pth"))
>>> labels = predictor.predict(volume)       # (D, H, W) -> (D, H, W) class indices
>>> predictor.class_names[labels.max()]

Intensities go through the same rule as the prompted :class:`~samforge.Predictor`
(:class:`samforge.data.intensity.IntensitySettings`, the model's own mode and window; one
mapping per volume), divided by 255. Images and volumes of any size are labelled with
MONAI's ``sliding_window_inference`` over patches of the model's ``patch_size``, blended
with Gaussian weights; inputs smaller than a patch are padded. Only ``sw_batch_size``
patches run at once, so memory is bounded by the patch, not the volume (the blended
logits, ``classes × voxels`` floats, are the only whole-volume buffer).

``precision="bf16"`` runs the network under bf16 autocast (matrix products and
convolutions of encoder and decoder in bf16, norms in fp32), logits blended in fp32;
``"auto"`` picks it where the hardware computes bf16 natively
(:func:`samforge.inference.precision.resolve_precision`). The default is fp32, exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..data import IntensitySettings
from ..errors import ConfigError, InputImageError
from ..models.semantic import SemanticModel
from .precision import resolve_precision


class SemanticPredictor:
    """Labels images (2D models) or volumes (3D models) with a semantic model.

    Args:
        model: a :class:`~samforge.models.semantic.SemanticModel` (e.g. from
            :func:`~samforge.models.semantic.load_semantic_model`), on the device to use.
        overlap: fraction of a patch that neighbouring windows share (MONAI's ``overlap``).
        sw_batch_size: patches run through the network together.
        progress: show MONAI's progress bar over the windows.
        precision: ``"fp32"`` (exact), ``"bf16"`` or ``"auto"`` (bf16 where the device
            computes it natively).
    """

    def __init__(
        self,
        model: SemanticModel,
        *,
        overlap: float = 0.25,
        sw_batch_size: int = 4,
        progress: bool = False,
        precision: str = "fp32",
    ) -> None:
        if not 0.0 <= overlap < 1.0 or sw_batch_size < 1:
            raise ConfigError(
                f"overlap must lie in [0, 1) and sw_batch_size be ≥ 1; got {overlap} and "
                f"{sw_batch_size}."
            )
        self.model = model.eval()
        self.info = model.info
        self.overlap, self.sw_batch_size, self.progress = overlap, sw_batch_size, progress
        self.intensity = IntensitySettings(self.info.intensity, self.info.window)
        self.precision = resolve_precision(precision, _device_of(model))

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.info.class_names

    def predict(
        self,
        image: np.ndarray,
        spacing: Sequence[float] | None = None,
        *,
        modality: str | None = None,
    ) -> np.ndarray:
        """The label map of ``image``: (H, W) or (H, W, C) for a 2D model, (D, H, W) for a
        3D model -> integer class indices of the input's spatial shape (uint8 for up to 256
        classes). ``spacing`` (mm per axis) is checked, not used: the models label at the
        voxel size they see. ``modality`` ("ct", "mr"...) picks the intensity rule's range
        where the model's mode is "auto"."""
        if spacing is not None and len(spacing) != self.info.spatial_dims:
            raise InputImageError(
                f"spacing {tuple(spacing)} must give one size per spatial axis "
                f"({self.info.spatial_dims})."
            )
        return self._labels(self._inputs(np.asarray(image), modality))

    def label_values(self, labels: np.ndarray) -> np.ndarray:
        """Class indices (what ``predict`` returns) -> the label values of the data the
        model trained on: a model trained with ``data.classes: [1, 2, 3, 5, 6]`` labels the
        liver 5, as TotalSegmentator does, not 4. The indices where training kept them."""
        return self.info.values_of(labels)

    def _labels(self, inputs: torch.Tensor) -> np.ndarray:
        labels = self._logits(inputs).argmax(dim=1)[0].cpu().numpy()
        return labels.astype(np.uint8 if len(self.class_names) <= 256 else np.int32)

    def predict_slices(self, volume: np.ndarray, *, modality: str | None = None) -> np.ndarray:
        """A 2D model's labels of every slice of a (D, H, W) volume, one intensity mapping
        for the whole volume (as in training): -> (D, H, W)."""
        if self.info.spatial_dims != 2 or np.ndim(volume) != 3:
            raise InputImageError(
                f"predict_slices labels (D, H, W) volumes with a 2D model; got a "
                f"{self.info.spatial_dims}D model and shape {np.shape(volume)}."
            )
        mapping = self.intensity.volume_mapping(volume, modality)
        labels = [self._labels(self._channels(mapping(plane))) for plane in volume]
        return np.stack(labels)

    def _inputs(self, image: np.ndarray, modality: str | None) -> torch.Tensor:
        """(1, in_channels, *spatial) float32 in [0, 1]."""
        if self.info.spatial_dims == 3:
            if image.ndim != 3 or min(image.shape) < 1:
                raise InputImageError(
                    f"this 3D model labels (D, H, W) volumes; got an array of shape {image.shape}."
                )
            values = self.intensity.volume_mapping(image, modality).apply(image)[None]
            values = np.repeat(values, self.info.in_channels, axis=0)  # grey for RGB models
        else:
            if image.ndim not in (2, 3):
                raise InputImageError(
                    f"this 2D model labels (H, W) or (H, W, C) images; got shape {image.shape}."
                    " Label a volume with predict_slices, or train a 3D model."
                )
            return self._channels(self.intensity.image_mapping(image, modality)(image))
        return self._tensor(values)

    def _channels(self, rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) intensities in [0, 255] -> (1, in_channels, H, W) in [0, 1]."""
        values = rgb.transpose(2, 0, 1)
        if self.info.in_channels == 1:
            values = values.mean(axis=0, keepdims=True)
        return self._tensor(values)

    def _tensor(self, values: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32) / 255.0)
        return tensor[None].to(_device_of(self.model))

    def _logits(self, inputs: torch.Tensor) -> torch.Tensor:
        from monai.inferers import sliding_window_inference

        with torch.inference_mode():
            logits = sliding_window_inference(
                inputs,
                roi_size=self.info.patch_size,
                sw_batch_size=self.sw_batch_size,
                predictor=self.model if self.precision == "fp32" else self._bf16_network,
                overlap=self.overlap,
                mode="gaussian",
                progress=self.progress,
            )
        assert isinstance(logits, torch.Tensor)  # the network returns one tensor
        return logits

    def _bf16_network(self, patches: torch.Tensor) -> torch.Tensor:
        with torch.autocast(patches.device.type, dtype=torch.bfloat16):
            return self.model(patches).float()


def _device_of(model: torch.nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")
