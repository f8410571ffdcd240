"""The steps of ``samforge demo``, each writing into its own subfolder of the out folder.

Every step reuses the evaluation and training modules unchanged; this module only chooses
the built-in cases (phantoms, no download), the sizes (:class:`DemoPlan`) and collects the
headline numbers. Dice values are returned under a ``dice`` key so a reader (and the test)
can tell them from seconds and losses.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.builtin import mni152_case
from ..data.corruptions import PAPER_SEVERITY, resolve_corruption_names
from ..data.phantoms import phantom_case
from ..data.record import Case
from ..evaluation.interactive2d import InteractiveSettings
from ..evaluation.interactive3d import Protocol3D, case_objects, evaluate_case, start_prompt
from ..evaluation.plots import Overlay, plot_dice_vs_round, plot_overlays
from ..evaluation.report import write_report
from ..evaluation.robustness import run_robustness, summarize_robustness, write_robustness_report
from ..evaluation.runs import (
    EvalImage,
    iter_images,
    run_interactive2d,
    summarize_interactive,
    write_interactive_report,
)
from ..files import write_bytes_atomically
from ..inference.predictor import Predictor
from ..inference.propagation import PropagationSettings, propagate

MODALITIES_2D = ("ct", "mr", "us", "xray")
STARTS = ("box", "point")
EVAL_SEED = 100  # evaluation phantoms; the fine-tune draws from FINETUNE_SEED: never the same
FINETUNE_SEED = 7
VOLUME_SEED = 200


@dataclass(frozen=True)
class DemoPlan:
    """How big each step is (``quick`` shrinks everything but keeps the structure)."""

    images_per_modality: int
    rounds: int
    image_size: int
    volume_shape: tuple[int, int, int]
    volume_objects: int
    robustness_images_per_modality: int
    finetune_steps: int
    finetune_count: int
    mni152_step: int
    lr: float = 3e-4

    @classmethod
    def make(cls, quick: bool) -> DemoPlan:
        if quick:
            return cls(2, 3, 128, (12, 128, 128), 2, 1, 10, 2, mni152_step=6)
        return cls(8, 8, 128, (32, 128, 128), 6, 3, 200, 16, mni152_step=2)


def eval_images(plan: DemoPlan, per_modality: int, seed: int = EVAL_SEED) -> list[EvalImage]:
    """2D phantoms of the four modalities, ``per_modality`` each, seeds from ``seed``."""
    images = []
    for modality in MODALITIES_2D:  # one "dataset" per modality: the report's bars
        cases = [
            phantom_case(modality, shape=(plan.image_size,) * 2, seed=seed + i)
            for i in range(per_modality)
        ]
        images += iter_images(cases, f"{modality} phantoms")
    return images


def interactive2d(
    predictors: dict[str, Predictor], images: Sequence[EvalImage], plan: DemoPlan, out: Path
) -> tuple[dict, list[dict], Path]:
    """Box and point starts with ``rounds - 1`` corrections; (dice, rows, report)."""
    settings = InteractiveSettings(rounds=plan.rounds)
    rows, overlays = run_interactive2d(predictors, images, STARTS, settings, show_progress=False)
    summary = summarize_interactive(rows, settings)
    report = write_interactive_report(out, rows, overlays, summary, "Demo: interactive 2D")
    return round_dice(summary, plan.rounds), rows, report


def round_dice(summary: dict, rounds: int) -> dict:
    """{model: {start: {"round_1": d, "round_<rounds>": d}}} from an interactive summary."""
    table: dict = {}
    for item in summary["dice_per_round"]:
        if item["round"] in (1, rounds):
            table.setdefault(item["model"], {}).setdefault(item["start"], {})[
                f"round_{item['round']}"
            ] = item["dice"]
    return table


def volume_cases(plan: DemoPlan) -> list[Case]:
    """A generated CT phantom volume and a real brain MRI (nilearn's MNI152 template, grey
    and white matter labels, read from nilearn's package): nothing to download."""
    phantom = phantom_case("ct", shape=plan.volume_shape, seed=VOLUME_SEED, name="ct_phantom")
    return [phantom, mni152_case(step=plan.mni152_step)]


def propagation3d(predictor: Predictor, case: Case, plan: DemoPlan, out: Path) -> dict:
    """The largest objects of a volume, each prompted with a box on its central slice and
    propagated through the volume; 3D Dice per object."""
    protocol = Protocol3D(start="box", max_objects=plan.volume_objects, min_size=50)
    setting = PropagationSettings()
    rows = [
        {"model": "demo", "split": "test", **row}
        for row in evaluate_case(predictor, case, [setting], protocol)
    ]
    largest = max(case_objects(case, protocol), key=lambda o: o.area)
    index, prompts = start_prompt(largest.mask, protocol.start)
    result = propagate(predictor, case.image, {index: prompts}, setting)
    figures = {"propagated_object": _plot_volume(out / "propagation.png", case, largest, result)}
    summary = {
        "protocol": {"start": "box", "setting": setting.label(), "volume": list(case.image.shape)},
        "objects": rows,
    }
    write_report(out, rows, summary, figures, f"Demo: 3D propagation from one slice, {case.name}")
    dices = [row["dice"] for row in rows]
    biggest = max(rows, key=lambda row: row["voxels"])["dice"]
    return {
        "shape": list(case.image.shape),
        "modality": case.modality,
        "dice": {"largest_object": biggest, "mean_over_objects": float(np.mean(dices))},
    }


def _plot_volume(path: Path, case: Case, instance, result) -> Path:
    """Slices through the object, the prompted one among them: image, truth (green) and
    propagated mask (red)."""
    slices = np.flatnonzero(instance.mask.any(axis=(1, 2)))
    prompted, _ = start_prompt(instance.mask, "box")
    chosen = np.unique([*np.linspace(slices[0], slices[-1], 4).round().astype(int), prompted])
    low, high = np.percentile(case.image, (1, 99))
    shown = np.clip((case.image.astype(np.float32) - low) / max(high - low, 1e-6) * 255, 0, 255)
    examples = [
        Overlay(
            np.repeat(shown[z][..., None], 3, axis=2),
            instance.mask[z].astype(np.uint8),
            result.mask[z].astype(np.uint8),
            f"slice {z}" + (" (box prompt)" if z == prompted else ""),
        )
        for z in chosen
    ]
    return plot_overlays(examples, path, columns=len(examples))


def robustness(predictor: Predictor, plan: DemoPlan, out: Path) -> dict:
    """All twelve corruptions at the paper's severity, box start, clean vs degraded Dice."""
    images = eval_images(plan, plan.robustness_images_per_modality)
    settings = InteractiveSettings(start="box", rounds=plan.rounds)
    corruptions = resolve_corruption_names(None)
    rows = run_robustness(
        {"demo": predictor}, images, corruptions, (PAPER_SEVERITY,), settings, show_progress=False
    )
    summary = summarize_robustness(rows)
    write_robustness_report(out, rows, summary, "Demo: robustness")
    last = max(item["round"] for item in summary["clean_vs_degraded"])
    overall = next(i for i in summary["clean_vs_degraded"] if i["round"] == last)
    per_corruption = {
        item["corruption"]: item["dice"]
        for item in summary["per_corruption"]
        if item["round"] == last and item["corruption"] != "clean"
    }
    return {
        "corruptions": len(corruptions),
        "severity": PAPER_SEVERITY,
        "round": last,
        "dice": {
            "clean": overall["clean_dice"],
            "degraded": overall["degraded_dice"],
            "per_corruption": per_corruption,
        },
    }


def finetune(model: str, plan: DemoPlan, out: Path) -> tuple[Path, dict]:
    """A short fine-tune with the ``medicosam`` preset on phantoms whose seeds differ from
    the evaluation's; returns the exported model and the training numbers."""
    from ..training.config import load_config
    from ..training.engine import train

    name = "medicosam_demo"
    shutil.rmtree(out / name, ignore_errors=True)  # the demo's own earlier run
    modalities = ", ".join(MODALITIES_2D)
    size = plan.image_size
    config = load_config(
        "medicosam",
        [
            f"name={name}",
            f"model={model}",
            f"output_dir={out.resolve()}",
            f"data.train=[{{phantoms: [{modalities}], count: {plan.finetune_count}, "
            f"shape: [{size}, {size}], seed: {FINETUNE_SEED}}}]",
            "data.num_workers=0",
            f"optimizer.lr={plan.lr}",
            "optimizer.lr_decay=1.0",
            "trainer.max_epochs=1000",  # the step budget ends the run
            f"trainer.max_steps={plan.finetune_steps}",
            "trainer.log_every_n_steps=1",
            f"trainer.checkpoint_every_n_steps={plan.finetune_steps}",
            "trainer.progress=false",
        ],
    )
    result = train(config)
    losses = _losses(result.run_dir / "logs" / "metrics.csv")
    window = max(1, round(len(losses) * 0.1))
    numbers = {
        "steps": result.global_step,
        "lr": plan.lr,
        "loss_first": float(np.mean(losses[:window])) if losses else float("nan"),
        "loss_last": float(np.mean(losses[-window:])) if losses else float("nan"),
        "loss_window_steps": window,
    }
    _plot_losses(out / "loss.png", losses)
    return result.export_path, numbers


def _losses(path: Path) -> list[float]:
    with open(path, newline="") as handle:
        return [float(row["train/loss"]) for row in csv.DictReader(handle) if row["train/loss"]]


def _plot_losses(path: Path, losses: list[float]) -> Path:
    import io

    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.5))
    axis = figure.subplots()
    axis.plot(np.arange(1, len(losses) + 1), losses, marker=".")
    axis.set(xlabel="training step", ylabel="train/loss", title="Fine-tune (medicosam preset)")
    axis.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return write_bytes_atomically(path, buffer.getvalue())


def before_after_plot(rows: list[dict], path: Path) -> Path:
    """Dice per round of the start model and the fine-tuned one on the same images."""
    return plot_dice_vs_round(rows, path)
