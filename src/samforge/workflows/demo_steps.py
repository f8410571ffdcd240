"""The steps of the demo (:mod:`samforge.workflows.demo`), each writing into its own
subfolder of the out folder.

Every step reuses the evaluation and training modules unchanged; this module only chooses
the built-in cases (phantoms and nilearn's MNI152 template, no download), the sizes
(:class:`DemoPlan`) and collects the headline numbers. Dice values are returned under a
``dice`` key so a reader (and the test) can tell them from seconds and losses.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..data import Case, read_case
from ..data.builtin import mni152_structures
from ..data.corruptions import PAPER_SEVERITY, resolve_corruption_names
from ..data.phantoms import phantom_case
from ..evaluation import (
    EvalImage,
    InteractiveSettings,
    run_robustness,
    summarize_robustness,
    write_report,
    write_robustness_report,
)
from ..evaluation.interactive3d import Protocol3D, case_objects, evaluate_case, start_prompt
from ..evaluation.plots import plot_loss_curves, plot_propagation
from ..inference import Predictor, PropagationSettings, propagate
from .finetune import finetune, finetune_config
from .interactive import MODALITIES_2D, evaluate_interactive2d, phantom_images

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
    # Fine-tuning the trained built-in model: 3e-4 lowered its box Dice, 1e-4 raised every
    # figure (docs/samforge_nano.md, "The demo's fine-tune").
    lr: float = 1e-4

    @classmethod
    def make(cls, quick: bool) -> DemoPlan:
        if quick:
            return cls(2, 3, 128, (12, 128, 128), 2, 1, 10, 2, mni152_step=6)
        return cls(8, 8, 128, (32, 128, 128), 6, 3, 200, 16, mni152_step=3)

    def eval_images(self, per_modality: int) -> list[EvalImage]:
        """2D phantoms of the four modalities for evaluation (seeds from EVAL_SEED)."""
        return phantom_images(per_modality, self.image_size, EVAL_SEED)


def interactive2d(
    predictors: dict[str, Predictor], images: Sequence[EvalImage], plan: DemoPlan, out: Path
) -> tuple[dict, list[dict]]:
    """Box and point starts with ``rounds - 1`` corrections; ({model: {start: {"round_1":
    dice, "round_<rounds>": dice}}}, rows)."""
    settings = InteractiveSettings(rounds=plan.rounds)
    run = evaluate_interactive2d(predictors, images, out, "Demo: interactive 2D", settings)
    table = {
        model: {
            start: {f"round_{r}": curve[r] for r in (1, plan.rounds) if r in curve}
            for start, curve in starts.items()
        }
        for model, starts in run.dice_by_round().items()
    }
    return table, run.rows


# TotalSegmentator's example CT (held out from the built-in model's training) and the ids
# of its total task: 3 kidney_left, 5 liver.
TOTALSEG_CT = ("totalsegmentator/example_ct_sm.nii.gz", "totalsegmentator/example_seg.nii.gz")
TOTALSEG_STRUCTURES = {"totalseg_kidney": 3, "totalseg_liver": 5}


@dataclass(frozen=True)
class Structure:
    """A volume and how many of its largest objects a user boxes (one per structure)."""

    case: Case
    objects: int


def shared_data() -> Path | None:
    """The real data beside the project (``SAMFORGE_SHARED_DATA`` or ../shared/data), if
    it is there; the demo's TotalSegmentator structures need it, the rest does not."""
    folder = Path(os.environ.get("SAMFORGE_SHARED_DATA") or "../shared/data")
    return folder if (folder / TOTALSEG_CT[0]).is_file() else None


def volume_cases(plan: DemoPlan, data: Path | None = None) -> list[Structure]:
    """What a clinician would box in 3D: the largest organs of a CT phantom volume; the
    whole brain and the two lateral ventricles of a real brain MRI (nilearn's MNI152
    template, no download); with ``data``, the left kidney and the liver of
    TotalSegmentator's example CT."""
    phantom = phantom_case("ct", shape=plan.volume_shape, seed=VOLUME_SEED, name="ct_phantom")
    brain, ventricles = mni152_structures(step=plan.mni152_step)
    found = [Structure(phantom, plan.volume_objects), Structure(brain, 1), Structure(ventricles, 2)]
    if data is not None:
        ct = read_case(data / TOTALSEG_CT[0], data / TOTALSEG_CT[1], name="totalseg_ct")
        assert ct.label is not None  # read with its label file
        for name, class_id in TOTALSEG_STRUCTURES.items():
            organ = replace(ct, label=(ct.label == class_id).astype(np.uint8), name=name)
            found.append(Structure(organ, 1))
    return found


def propagation3d(
    predictors: dict[str, Predictor], structure: Structure, plan: DemoPlan, out: Path
) -> dict:
    """The structure's objects, each prompted with a box on its central slice and
    propagated through the volume by every model; 3D Dice per object and one overlay
    figure per model (``propagation.png`` for the first, ``propagation_<model>.png``)."""
    case = structure.case
    protocol = Protocol3D(start="box", max_objects=structure.objects, min_size=50)
    setting = PropagationSettings()
    rows = [
        {"model": model, "split": "test", **row}
        for model, predictor in predictors.items()
        for row in evaluate_case(predictor, case, [setting], protocol)
    ]
    largest = max(case_objects(case, protocol), key=lambda o: o.area)
    index, prompts = start_prompt(largest.mask, protocol.start)
    # The figure shows the scored run: the protocol's mapping, which knows the modality.
    mapping = protocol.intensity_settings.volume_mapping(case.image, case.modality)
    figures = {}
    for number, (model, predictor) in enumerate(predictors.items()):
        result = propagate(predictor, case.image, {index: prompts}, setting, mapping=mapping)
        name = "propagation.png" if number == 0 else f"propagation_{model}.png"
        figures[f"propagated_object_{model}"] = plot_propagation(
            case.image, largest.mask, result.mask, index, out / name
        )
    summary = {
        "protocol": {"start": "box", "setting": setting.label(), "volume": list(case.image.shape)},
        "objects": rows,
    }
    write_report(out, rows, summary, figures, f"Demo: 3D propagation from one slice, {case.name}")
    scores = {}
    for model in predictors:
        own = [row for row in rows if row["model"] == model]
        biggest = max(own, key=lambda row: row["voxels"])["dice"]
        mean = float(np.mean([row["dice"] for row in own]))
        scores[model] = {"dice": {"largest_object": biggest, "mean_over_objects": mean}}
    first, *others = predictors
    return {
        "shape": list(case.image.shape),
        "modality": case.modality,
        **scores[first],
        **({"compared": {model: scores[model] for model in others}} if others else {}),
    }


def robustness(predictor: Predictor, plan: DemoPlan, out: Path) -> dict:
    """All twelve corruptions at the paper's severity, box start, clean vs degraded Dice."""
    images = plan.eval_images(plan.robustness_images_per_modality)
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


def short_finetune(model: str, plan: DemoPlan, out: Path) -> tuple[Path, dict]:
    """A short fine-tune with the ``medicosam`` preset on phantoms whose seeds differ from
    the evaluation's (the demo's own earlier run is replaced); returns the exported model
    and the training numbers."""
    size = plan.image_size
    phantoms = {
        "phantoms": list(MODALITIES_2D),
        "count": plan.finetune_count,
        "shape": [size, size],
        "seed": FINETUNE_SEED,
    }
    config = finetune_config(
        "medicosam",
        name="medicosam_demo",
        model=model,
        train=[phantoms],
        output_dir=out,
        steps=plan.finetune_steps,
        lr=plan.lr,
    )
    result = finetune(config, if_exists="replace")
    first, last = result.losses.window_means()
    numbers = {
        "steps": result.global_step,
        "lr": plan.lr,
        "loss_first": first,
        "loss_last": last,
        "loss_window_steps": result.losses.window(),
    }
    title = "Fine-tune (medicosam preset)"
    plot_loss_curves({"medicosam": result.losses}, out / "loss.png", title)
    return result.export_path, numbers
