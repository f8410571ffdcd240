"""Evaluation: metrics, the interactive 2D protocol, the robustness sweep and reports."""

from .interactive2d import (
    START_PROMPTS,
    ImageResult,
    InteractiveSettings,
    evaluate_image,
    interactive_rounds,
    object_masks,
)
from .metrics import dice, hd95, iou, normalized_surface_distance
from .report import read_csv, write_report
from .robustness import run_robustness, summarize_robustness, write_robustness_report
from .runs import (
    EvalImage,
    iter_images,
    run_interactive2d,
    summarize_interactive,
    write_interactive_report,
)

__all__ = [
    "START_PROMPTS",
    "EvalImage",
    "ImageResult",
    "InteractiveSettings",
    "dice",
    "evaluate_image",
    "hd95",
    "interactive_rounds",
    "iou",
    "iter_images",
    "normalized_surface_distance",
    "object_masks",
    "read_csv",
    "run_interactive2d",
    "run_robustness",
    "summarize_interactive",
    "summarize_robustness",
    "write_interactive_report",
    "write_report",
    "write_robustness_report",
]
