"""The built-in demonstration on phantoms and a real MRI, no download (``samforge demo``).

Steps (each into a subfolder of the out folder): interactive 2D evaluation (box and point
starts, then corrections) on 2D phantoms of four modalities; 3D segmentation by propagation
from one slice of a CT phantom volume and of a real brain MRI (the MNI152 template that
ships with nilearn, grey and white matter); a robustness sweep over the twelve
corruptions at severity 3; a short fine-tune with the ``medicosam`` preset and the same 2D
evaluation of the fine-tuned model. Ends with ``summary.json`` and one self-contained
``report.html`` with every step's plots.

The model is :data:`DEMO_MODEL`, ``samforge_nano``: samforge's small SAM, trained from
scratch and shipped with the package (docs/samforge_nano.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

from ..evaluation.plots import plot_dice_vs_round
from ..evaluation.report import REPORT_HTML, SUMMARY_JSON, render_html, write_json
from ..files import write_bytes_atomically
from ..inference import Predictor
from ..models import load_model
from . import demo_steps as steps

DEMO_MODEL = "samforge_nano"
CANDIDATE = "candidate"  # the label of a second model compared on the same tasks
UNTRAINED_MODELS = ("samforge_random_tiny",)

T = TypeVar("T")


class StepObserver(Protocol):
    """What a caller sees of the demo's progress (the CLI: a spinner and a check mark)."""

    def running(self, title: str) -> AbstractContextManager[object]:
        """Entered while the step titled ``title`` runs."""
        ...

    def finished(self, title: str, seconds: float) -> None:
        """Called when the step is done."""
        ...


class Silent:
    """A :class:`StepObserver` that shows nothing."""

    def running(self, title: str) -> AbstractContextManager[object]:
        return nullcontext()

    def finished(self, title: str, seconds: float) -> None:
        return None


@dataclass(frozen=True)
class DemoResult:
    """The summary (also in ``summary.json``) and where the report is."""

    summary: dict
    report: Path
    summary_path: Path


def run_demo(
    out: Path,
    model: str = DEMO_MODEL,
    quick: bool = False,
    observer: StepObserver | None = None,
    candidate: str | Path | None = None,
) -> DemoResult:
    """Evaluate, propagate in 3D, stress with corruptions, fine-tune and evaluate again;
    write everything into ``out`` (which must be writable). With ``candidate`` (a model
    file or name), the 2D evaluation and every 3D structure also run with it, and the
    summary shows both models' Dice on the same tasks."""
    observer = observer or Silent()
    started = time.perf_counter()
    plan = steps.DemoPlan.make(quick)
    seconds: dict[str, float] = {}

    def step(key: str, title: str, action: Callable[[], T]) -> T:
        begun = time.perf_counter()
        with observer.running(title):
            value = action()
        seconds[key] = time.perf_counter() - begun
        observer.finished(title, seconds[key])
        return value

    predictor = step("load_model", f"load {model}", lambda: Predictor(load_model(model)))
    compared = {}
    if candidate is not None:
        compared[CANDIDATE] = step(
            "load_candidate", f"load {candidate}", lambda: Predictor(load_model(candidate))
        )
    images = plan.eval_images(plan.images_per_modality)
    before, rows_before = step(
        "interactive2d",
        f"interactive 2D: {len(images)} images, box/point + {plan.rounds - 1} corrections",
        lambda: steps.interactive2d(
            {"start": predictor, **compared}, images, plan, out / "interactive2d"
        ),
    )
    volumes = {
        item.case.name: step(
            f"propagation3d_{item.case.name}",
            f"3D propagation from one box, {item.case.name} {item.case.image.shape}",
            partial(
                steps.propagation3d,
                {model: predictor, **compared},
                item,
                plan,
                out / "propagation3d" / item.case.name,
            ),
        )
        for item in steps.volume_cases(plan, steps.shared_data())
    }
    robust = step(
        "robustness",
        "robustness: 12 corruptions at severity 3",
        lambda: steps.robustness(predictor, plan, out / "robustness"),
    )
    export, training = step(
        "finetune",
        f"fine-tune (medicosam preset, {plan.finetune_steps} steps)",
        lambda: steps.short_finetune(model, plan, out / "finetune"),
    )
    after, rows_after = step(
        "interactive2d_finetuned",
        "interactive 2D of the fine-tuned model (same images)",
        lambda: steps.interactive2d(
            {"finetuned": Predictor(load_model(export))}, images, plan, out / "finetune" / "eval"
        ),
    )
    seconds["total"] = time.perf_counter() - started
    summary = {
        "model": model,
        "quick": quick,
        "images_2d": len(images),
        "rounds": plan.rounds,
        "interactive2d": {
            "dice": {"before_finetune": before["start"], "after_finetune": after["finetuned"]},
            **({"compared": {CANDIDATE: {"dice": before[CANDIDATE]}}} if compared else {}),
        },
        "propagation3d": volumes,
        "robustness": robust,
        "training": training,
        "seconds": seconds,
    }
    figures = _figures(out, rows_before + rows_after)
    summary_path = write_json(out / SUMMARY_JSON, summary)
    page = render_html(
        f"samforge demo: {model}", {"headline": headline_rows(summary)} | summary, figures
    )
    report = write_bytes_atomically(out / REPORT_HTML, page.encode())
    return DemoResult(summary, report, summary_path)


def _figures(out: Path, rows: list[dict]) -> dict[str, Path]:
    """Every step's plots, in the order of the steps."""
    figures = {
        "Dice per round, before and after the fine-tune": plot_dice_vs_round(
            rows, out / "dice_before_after.png"
        ),
        "examples (start model)": out / "interactive2d" / "examples.png",
        "Dice per modality (start model)": out / "interactive2d" / "dice_per_dataset.png",
        **{
            f"3D propagation from one box: {folder.name} ({_model_of(figure)})": figure
            for folder in sorted((out / "propagation3d").glob("*"))
            for figure in sorted(folder.glob("propagation*.png"))
        },
        "robustness (Dice per corruption)": out / "robustness" / "robustness.png",
        "fine-tune loss": out / "finetune" / "loss.png",
        "examples (fine-tuned model)": out / "finetune" / "eval" / "examples.png",
    }
    return {name: path for name, path in figures.items() if path.is_file()}


def _model_of(figure: Path) -> str:
    """``propagation_<model>.png`` -> the model; ``propagation.png`` is the demo's model."""
    return figure.stem.removeprefix("propagation").lstrip("_") or "demo model"


def headline_rows(summary: dict) -> list[dict]:
    """The summary as (step, measure, value) rows, for a table and the HTML page."""
    rounds = summary["rounds"]
    rows = []
    for phase, label in (("before_finetune", "start model"), ("after_finetune", "fine-tuned")):
        for start, values in summary["interactive2d"]["dice"][phase].items():
            for round_ in (1, rounds):
                rows.append(
                    {
                        "step": f"2D ({label})",
                        "measure": f"Dice {start} start, round {round_}",
                        "value": values.get(f"round_{round_}", float("nan")),
                    }
                )
    for label, entry in summary["interactive2d"].get("compared", {}).items():
        for start, values in entry["dice"].items():
            for round_ in (1, rounds):
                value = values.get(f"round_{round_}", float("nan"))
                measure = f"Dice {start} start, round {round_}"
                rows.append({"step": f"2D ({label})", "measure": measure, "value": value})
    for name, volume in summary["propagation3d"].items():
        scored = {summary["model"]: volume, **volume.get("compared", {})}
        for model, scores in scored.items():
            for key, measure in (
                ("largest_object", "largest object"),
                ("mean_over_objects", "mean"),
            ):
                value = scores["dice"][key]
                label = f"3D {name}" + (f" ({model})" if len(scored) > 1 else "")
                rows.append({"step": label, "measure": f"Dice {measure}", "value": value})
    robust = summary["robustness"]["dice"]
    rows.append({"step": "robustness", "measure": "Dice clean", "value": robust["clean"]})
    rows.append(
        {"step": "robustness", "measure": "Dice degraded (mean of 12)", "value": robust["degraded"]}
    )
    training = summary["training"]
    for key in ("loss_first", "loss_last"):
        rows.append({"step": "fine-tune", "measure": key.replace("_", " "), "value": training[key]})
    for key, value in summary["seconds"].items():
        rows.append({"step": "time", "measure": f"{key} (s)", "value": value})
    return rows
