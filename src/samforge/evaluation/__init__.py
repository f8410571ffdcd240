"""Evaluation: metrics, the interactive 2D protocol, the robustness sweep, semantic
segmentation and reports."""

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
from .semantic import (
    Segmenter,
    SemanticSettings,
    class_metrics,
    run_semantic,
    summarize_semantic,
)
from .semantic_report import worst_overlays, write_semantic_report

__all__ = [
    "START_PROMPTS",
    "EvalImage",
    "ImageResult",
    "InteractiveSettings",
    "Segmenter",
    "SemanticSettings",
    "class_metrics",
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
    "run_semantic",
    "summarize_interactive",
    "summarize_robustness",
    "summarize_semantic",
    "worst_overlays",
    "write_interactive_report",
    "write_report",
    "write_robustness_report",
    "write_semantic_report",
]
