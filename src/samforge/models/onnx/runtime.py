"""ONNX and ONNX Runtime, imported only when used (the ``onnx`` extra), and the prompts
of samforge's records in the official decoder's convention."""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import torch

from ...errors import MissingDependencyError

INSTALL = "pip install 'samforge[onnx]'"


def import_onnxruntime() -> ModuleType:
    """The ``onnxruntime`` package.

    Raises:
        MissingDependencyError: it is not installed.
    """
    try:
        import onnxruntime
    except ImportError as error:
        raise MissingDependencyError(
            f"ONNX Runtime is not installed ({error}); install the onnx extra: {INSTALL}"
        ) from error
    return onnxruntime


def require_onnx() -> None:
    """Raises :class:`MissingDependencyError` unless ``onnx`` (which torch's exporter
    needs) and ``onnxruntime`` (which checks the graphs) are installed."""
    try:
        import onnx  # noqa: F401
    except ImportError as error:
        raise MissingDependencyError(
            f"the onnx package is not installed ({error}); install the onnx extra: {INSTALL}"
        ) from error
    import_onnxruntime()


def inference_session(path: str | os.PathLike, threads: int | None = None) -> Any:
    """An ONNX Runtime session of a graph on the CPU, with as many threads as torch uses
    (so the two engines compare on equal terms) unless ``threads`` says otherwise."""
    onnxruntime = import_onnxruntime()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        os.fspath(path), options, providers=["CPUExecutionProvider"]
    )


def decoder_prompts(
    points: tuple[torch.Tensor, torch.Tensor] | None,
    boxes: torch.Tensor | None,
    batch: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points and boxes of B objects -> the official decoder's ``point_coords`` (B, N, 2)
    and float ``point_labels`` (B, N): the points, then the box corners labelled 2 and 3,
    or a padding point (0, 0) labelled −1 when there is no box (SAM's prompt encoder adds
    that point itself; the ONNX graph leaves it to the caller).

    Args:
        points: coords (B, N, 2) in model-frame pixels and labels (B, N), or None.
        boxes: (B, 4) x0, y0, x1, y1 in model-frame pixels, or None.
        batch: B, for prompts that are neither (a mask prompt alone: N = 0).
    """
    coords, labels = [], []
    if points is not None:
        coords.append(points[0].float())
        labels.append(points[1].float())
    if boxes is not None:
        coords.append(boxes.float().reshape(-1, 2, 2))
        labels.append(boxes.new_tensor([2.0, 3.0]).float().expand(boxes.shape[0], 2))
    elif points is not None:
        reference = points[0]
        coords.append(reference.new_zeros(reference.shape[0], 1, 2).float())
        labels.append(-reference.new_ones(reference.shape[0], 1).float())
    if not coords:
        return torch.zeros(batch, 0, 2), torch.zeros(batch, 0)
    return torch.cat(coords, dim=1), torch.cat(labels, dim=1)
