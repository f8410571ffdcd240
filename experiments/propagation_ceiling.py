"""What 3D propagation can reach at best: the mean Dice of a perfect 2D model under each
IoU stop, on the built-in model's held-out 3D goals (issue 19).

Propagation (:func:`samforge.inference.propagate`) stops a front, without writing the slice,
when IoU(previous slice's mask, new mask) falls below ``iou_threshold`` (0.8 by default,
micro-sam's). On thick slices an organ's true cross-sections change by more than that from
one slice to the next, so the stop ends a front even when every mask is right. This script
runs the real ``propagate`` with a "predictor" that answers every slice with the true
cross-section of the object (whatever the prompts), from the same start as the model card
(the exact box on the object's central slice), and reports the 3D Dice of what it keeps:
the ceiling a model can reach under that setting.

Objects and data as ``experiments/nano_model_card.py``: 8 held-out varied 3D phantoms
(seeds from 5000), objects of ≥ 100 voxels; TotalSegmentator's example CT and MR, organs
spanning ≥ 10 slices. Also prints how often two neighbouring true cross-sections overlap
less than each threshold.

    python experiments/propagation_ceiling.py [--data ../shared/data] [--volumes 8]
        [--thresholds 0.8 0.7 0.6 0.5 0.3 0.0] [--mode mask]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from nano_model_card import HELD_OUT_SEED, HELD_OUT_VOLUMES, MIN_SLICES, default_data

from samforge.data import read_case
from samforge.data.phantoms.varied import varied_volume
from samforge.evaluation.interactive3d import Protocol3D, case_objects
from samforge.evaluation.start_prompts3d import start_prompt
from samforge.inference import PropagationSettings, propagate
from samforge.models import get_config


@dataclass
class _Answer:
    masks: torch.Tensor  # (1, 1, H, W)

    def best(self) -> _Answer:
        return self


class PerfectSlices:
    """Stands in for a Predictor in :func:`propagate`: every decode returns the object's
    true cross-section on the slice last set. The volume handed to ``propagate`` holds each
    slice's index as its intensity, so ``set_image`` knows which slice it got."""

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = mask
        self.index = -1
        # The prompts propagation derives from each mask need a model's geometry.
        self.transform = get_config("vit_b").input_transform()
        self.low_res_size = 256

    def volume_mapping(self, volume: np.ndarray) -> None:
        return None  # intensities are slice indices here

    def set_image(self, image: np.ndarray, mapping=None) -> None:
        self.index = int(image[0, 0])

    def decode(self, prompts, multimask: bool = False) -> _Answer:
        return _Answer(torch.from_numpy(self.mask[self.index])[None, None])


def ceiling(mask: np.ndarray, settings: PropagationSettings) -> float:
    """3D Dice of propagation with perfect 2D masks from the exact box on the central slice."""
    index, prompts = start_prompt(mask, "box")
    slices = np.broadcast_to(np.arange(mask.shape[0])[:, None, None], mask.shape)
    oracle = PerfectSlices(mask)
    kept = propagate(oracle, slices, {index: prompts}, settings).mask  # type: ignore[arg-type]
    overlap = np.count_nonzero(kept & mask)
    return float(2 * overlap / (np.count_nonzero(kept) + np.count_nonzero(mask)))


def neighbour_ious(mask: np.ndarray) -> list[float]:
    """IoU of each pair of neighbouring true cross-sections within the object's extent."""
    slices = np.flatnonzero(mask.any(axis=(1, 2)))
    ious = []
    for lower in range(slices[0], slices[-1]):
        union = np.count_nonzero(mask[lower] | mask[lower + 1])
        ious.append(np.count_nonzero(mask[lower] & mask[lower + 1]) / union if union else 0.0)
    return ious


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("--volumes", type=int, default=8, help="held-out 3D phantoms")
    parser.add_argument(
        "--thresholds", type=float, nargs="+", default=[0.8, 0.7, 0.6, 0.5, 0.3, 0.0]
    )
    parser.add_argument("--mode", default="mask", help="propagation mode (the default: mask)")
    args = parser.parse_args()

    protocol = Protocol3D(start="box", min_size=100)
    groups = {"3D phantoms": ([varied_volume(HELD_OUT_SEED + i) for i in range(args.volumes)], 0)}
    held_out = [
        read_case(args.data / image, args.data / label, name=name)
        for name, (image, label) in HELD_OUT_VOLUMES.items()
        if (args.data / image).is_file()
    ]
    if held_out:
        groups[f"TotalSegmentator organs ≥ {MIN_SLICES} slices"] = (held_out, MIN_SLICES)
    header = " | ".join(f"IoU stop {t:g}" for t in args.thresholds)
    print(f"| objects | n | {header} |")
    print("|---|---:|" + "---:|" * len(args.thresholds))
    below = {}
    for name, (cases, min_slices) in groups.items():
        masks = [
            instance.mask
            for case in cases
            for instance in case_objects(case, protocol)
            if np.count_nonzero(instance.mask.any(axis=(1, 2))) >= min_slices
        ]
        cells = []
        for threshold in args.thresholds:
            settings = PropagationSettings(mode=args.mode, iou_threshold=threshold)
            cells.append(f"{np.mean([ceiling(mask, settings) for mask in masks]):.3f}")
        print(f"| {name} | {len(masks)} | {' | '.join(cells)} |")
        ious = np.array([iou for mask in masks for iou in neighbour_ious(mask)])
        below[name] = {t: float(np.mean(ious < t)) for t in args.thresholds if t > 0}
    print()
    print("Share of neighbouring true cross-sections with IoU below the threshold:")
    for name, shares in below.items():
        print(f"  {name}: " + ", ".join(f"< {t:g}: {s:.2f}" for t, s in shares.items()))


if __name__ == "__main__":
    main()
