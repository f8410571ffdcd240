"""Where a model's 3D propagation loses Dice, split on the built-in model's held-out 3D
phantoms (issue 19): the 2D start, single steps, and chains with and without the IoU stop.

For every object of the card's held-out varied phantoms (seeds from 5000, objects of ≥ 100
voxels; as ``experiments/nano_model_card.py``), from the exact box on its central slice:

- **central**: Dice of the central slice alone (the 2D start);
- **single steps**: every other slice of the object decoded once from its neighbour's
  *true* mask (toward the central slice), with propagation's default prompts: what one
  training step of the propagation objective sees;
- **no stop**: propagation with ``iou_threshold=0``; with the volume it draws over the
  object's own (median);
- **default**: propagation with the default settings (IoU stop 0.8), the card's goal, with
  how its fronts ended (edge of the volume, IoU stop, empty mask).

A model that is good at single steps but poor in chains compounds its own errors; a large
volume ratio means it draws organs beyond their ends.

    python experiments/propagation_diagnosis.py samforge_nano_v2 runs/.../model.pth
        [--volumes 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import collections

import numpy as np
import torch
from nano_model_card import HELD_OUT_SEED

from samforge.data.phantoms.varied import varied_volume
from samforge.evaluation.interactive3d import Protocol3D, case_objects
from samforge.evaluation.metrics import dice
from samforge.evaluation.start_prompts3d import start_prompt
from samforge.inference import Predictor, PropagationSettings, propagate
from samforge.models import load_model
from samforge.prompts import wants_multimask
from samforge.prompts.volume_prompts import prompts_from_mask
from samforge.testing.timing import machine_description

COLUMNS = ("central", "single steps", "no stop", "default")


def single_steps(predictor: Predictor, image: np.ndarray, mask: np.ndarray, centre: int, mapping):
    """(D, H, W) bool: the central slice's true mask, every other slice of ``mask`` decoded
    once from its neighbour's true mask (the neighbour toward ``centre``)."""
    found = np.zeros_like(mask)
    found[centre] = mask[centre]
    for index in np.flatnonzero(mask.any(axis=(1, 2))):
        neighbour = index + 1 if index < centre else index - 1
        if index == centre or not mask[neighbour].any():
            continue
        prompts = prompts_from_mask(
            mask[neighbour], "mask", predictor.transform, predictor.low_res_size
        )
        predictor.set_image(image[index], mapping=mapping)
        found[index] = predictor.decode(prompts).best().masks[0, 0].cpu().numpy()
    return found


def diagnose(predictor: Predictor, volumes: int) -> dict:
    """Mean Dice per column, median volume ratio without the stop, and the stop reasons."""
    protocol = Protocol3D(start="box", min_size=100)
    scores: dict = {column: [] for column in COLUMNS}
    ratios, reasons = [], collections.Counter()
    for number in range(volumes):
        case = varied_volume(HELD_OUT_SEED + number)
        mapping = protocol.intensity_settings.volume_mapping(case.image, case.modality)
        for instance in case_objects(case, protocol):
            truth = instance.mask
            centre, prompts = start_prompt(truth, "box")
            predictor.set_image(case.image[centre], mapping=mapping)
            # As propagation decodes its start: one mask for a box (SAM's advice).
            start = predictor.decode(prompts, wants_multimask(prompts)).best()
            central = start.masks[0, 0].cpu().numpy()
            scores["central"].append(dice(central, truth[centre]))
            steps = single_steps(predictor, case.image, truth, centre, mapping)
            scores["single steps"].append(dice(steps, truth))
            for column, stop in (("no stop", 0.0), ("default", None)):
                settings = (
                    PropagationSettings()
                    if stop is None
                    else PropagationSettings(iou_threshold=stop)
                )
                result = propagate(
                    predictor, case.image, {centre: prompts}, settings, mapping=mapping
                )
                scores[column].append(dice(result.mask, truth))
                if stop is None:
                    reasons.update(front.reason for front in result.stops)
                else:
                    ratios.append(result.mask.sum() / truth.sum())
    return {
        "objects": len(ratios),
        **{column: float(np.mean(values)) for column, values in scores.items()},
        "volume_ratio": float(np.median(ratios)),
        "stops": dict(reasons),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="registered names or model files")
    parser.add_argument("--volumes", type=int, default=4, help="held-out 3D phantoms")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine_description(), f"{args.volumes} held-out volumes")
    print("| model | objects | " + " | ".join(COLUMNS) + " | volume ratio, no stop | stops |")
    print("|---|---:|" + "---:|" * (len(COLUMNS) + 1) + "---|")
    for name in args.models:
        found = diagnose(Predictor(load_model(name)), args.volumes)
        cells = " | ".join(f"{found[column]:.3f}" for column in COLUMNS)
        stops = ", ".join(f"{reason} {count}" for reason, count in sorted(found["stops"].items()))
        print(f"| {name} | {found['objects']} | {cells} | {found['volume_ratio']:.2f} | {stops} |")


if __name__ == "__main__":
    main()
