"""Does a semantic model label the same in bf16 as in fp32? Labels every case of a test
folder with ``SemanticPredictor(precision="fp32")`` and ``"bf16"`` and reports, per class,
the IoU of the two label maps (the agreement), each one's Dice against the reference, the
share of voxels whose label changed, and the time of the two, measured alternately (CPU
seconds of this process, which a shared machine's load does not inflate).

    python experiments/semantic/bf16_agreement.py -m runs/semantic/hc18_nano \\
        -d runs/semantic/data/hc18_quarter/test [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from samforge import SemanticPredictor
from samforge.data import open_dataset
from samforge.models.semantic import load_semantic_model
from samforge.testing.timing import machine_description
from samforge.workflows.semantic_eval import model_files


def labels_of(predictor: SemanticPredictor, case) -> tuple[np.ndarray, float]:
    """(class indices, CPU seconds) of one case, slice by slice for a 2D model on volumes."""
    started = time.process_time()
    if case.is_volume and predictor.info.spatial_dims == 2:
        labels = predictor.predict_slices(case.image, modality=case.modality)
    else:
        labels = predictor.predict(case.image, case.spacing, modality=case.modality)
    return labels, time.process_time() - started


def overlap(a: np.ndarray, b: np.ndarray, dice: bool = False) -> float:
    union, both = (a | b).sum(), (a & b).sum()
    if not union:
        return float("nan")
    return float(2 * both / (a.sum() + b.sum())) if dice else float(both / union)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", required=True, help="a semantic model or run folder")
    parser.add_argument("-d", "--data", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_semantic_model(model_files([args.model])[0])
    info = model.info
    predictors = {p: SemanticPredictor(model, precision=p) for p in ("fp32", "bf16")}
    scores: dict[str, list[list[float]]] = {k: [] for k in ("iou", "dice32", "dice16")}
    seconds = {p: 0.0 for p in predictors}
    changed = voxels = 0
    cases = open_dataset(args.data)
    for case in cases:
        labels = {}
        for precision, predictor in predictors.items():  # alternately, case by case
            labels[precision], spent = labels_of(predictor, case)
            seconds[precision] += spent
        reference = info.indices_of(case.label)
        changed += int((labels["fp32"] != labels["bf16"]).sum())
        voxels += labels["fp32"].size
        classes = range(1, info.num_classes)
        fp32, bf16 = labels["fp32"], labels["bf16"]
        scores["iou"].append([overlap(fp32 == c, bf16 == c) for c in classes])
        scores["dice32"].append([overlap(fp32 == c, reference == c, True) for c in classes])
        scores["dice16"].append([overlap(bf16 == c, reference == c, True) for c in classes])
    print(machine_description())
    print(f"{args.model} on {args.data}: {len(cases)} cases, torch threads {args.threads}")
    print("| class | IoU bf16 vs fp32 (mean, min) | Dice fp32 | Dice bf16 |")
    print("|---|---:|---:|---:|")
    means = {k: np.nanmean(np.array(v), axis=0) for k, v in scores.items()}
    lowest = np.nanmin(np.array(scores["iou"]), axis=0)
    for c, name in enumerate(info.class_names[1:]):
        print(
            f"| {name} | {means['iou'][c]:.4f}, {lowest[c]:.4f} | {means['dice32'][c]:.4f} | "
            f"{means['dice16'][c]:.4f} |"
        )
    print(f"voxels whose label changed: {changed} of {voxels} ({changed / voxels:.2e})")
    ratio = seconds["bf16"] / seconds["fp32"]
    print(f"CPU seconds: fp32 {seconds['fp32']:.1f}, bf16 {seconds['bf16']:.1f} (× {ratio:.2f})")


if __name__ == "__main__":
    main()
