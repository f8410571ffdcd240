"""The interactive 2D protocol: micro-sam 1.8.14 against samforge, objects × rounds per second.

micro-sam's ``run_inference_with_iterative_prompting`` (box or point start, ``--rounds``
rounds, one positive and one negative correction point per round, batch 32) and samforge's
``evaluate_image`` (the same protocol: :mod:`samforge.evaluation.interactive2d`) on the same
objects of the same slices, the same weights (random ViT-B in the official SAM and in
samforge) and the same precomputed image embeddings (samforge's fp32 encoder, computed once
before timing; micro-sam gets them where it would read its zarr cache, so its cache reads
are not timed). Both score every round; micro-sam writes its label images as it does. The
two run alternately, one pass over all slices each, medians of ``--repeats``.

Slices: two of the TotalSegmentator CT and two of its MR example (``../shared/data`` or
``SAMFORGE_SHARED_DATA``), or CT/MR phantoms where the data is absent; objects: the
connected components of each class with ≥ 20 pixels (samforge's objects; micro-sam gets
them as its instance ground truth).

Agreement: the mean Dice between the two implementations' masks of each object after
round 1 (the box start is deterministic in both; the point start uses each one's innermost
point, which can differ by a pixel), and each one's mean Dice with the truth after the
first and the last round (correction points are random draws in both, so later rounds
differ by chance, not by method).

    python benchmarks/bench_protocol.py --threads 2 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import imageio.v3 as imageio
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers.micro_sam import import_micro_sam_inference
from samforge.data import IntensitySettings, read_case
from samforge.data.phantoms import make_phantom
from samforge.evaluation import InteractiveSettings, evaluate_image
from samforge.evaluation.interactive2d import interactive_rounds, object_masks
from samforge.evaluation.metrics import dice
from samforge.inference import Predictor
from samforge.models import build_model, get_config
from samforge.testing.official import (
    OFFICIAL_ARCHITECTURES,
    build_official_sam,
    official_predictor,
)
from samforge.testing.timing import machine_description

GOAL_RATIO = 3.0
MIN_SIZE = 20


def shared_data() -> Path | None:
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    folder = Path(os.environ.get("SAMFORGE_SHARED_DATA", default))
    return folder if folder.is_dir() else None


def slices(count_per_volume: int = 2) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, uint8 image mapped as samforge maps it, label) for the benchmark's slices."""
    folder = shared_data()
    chosen = []
    if folder is None:
        volumes = []
        for modality in ("ct", "mr"):
            phantom = make_phantom(modality, shape=(24, 160, 192), seed=1)
            volumes.append((modality, phantom[0], phantom[1], modality))
    else:
        root = folder / "totalsegmentator"
        volumes = []
        for name, image, label in (
            ("ct", "example_ct_sm.nii.gz", "example_seg.nii.gz"),
            ("mr", "example_mr_sm.nii.gz", "example_seg_mr.nii.gz"),
        ):
            case = read_case(root / image, root / label)
            volumes.append((name, case.image, case.label, case.modality))
    settings = IntensitySettings("auto", None)
    for name, volume, label, modality in volumes:
        mapping = settings.volume_mapping(volume, modality)
        # Two slices a third and two thirds into the slices that have objects.
        with_objects = [z for z, plane in enumerate(label) if len(object_masks(plane, MIN_SIZE)[0])]
        picked = [
            with_objects[len(with_objects) * (k + 1) // (count_per_volume + 1)]
            for k in range(count_per_volume)
        ]
        for z in sorted(picked):
            image = np.asarray(mapping(volume[z]), dtype=np.float32)
            chosen.append((f"{name}_z{z}", image.clip(0, 255).astype(np.uint8), label[z]))
    return chosen


def instance_map(label: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
    """samforge's objects of ``label`` as an instance map 1..B (micro-sam's ground truth,
    same order) and as (B, H, W) masks."""
    masks, _ = object_masks(label, MIN_SIZE)
    instances = np.zeros(label.shape, dtype=np.uint16)
    for index, mask in enumerate(masks.numpy(), start=1):
        instances[mask] = index
    return instances, masks


class MicroSamRun:
    """micro-sam's protocol over the slices, with the embeddings served from memory."""

    def __init__(self, official, embeddings: dict[str, dict], folder: Path) -> None:
        self.inference = import_micro_sam_inference()
        self.predictor = official_predictor(official)
        self.embeddings = embeddings
        self.folder = folder
        self.masks: dict[str, list[torch.Tensor]] = {}
        util = self.inference.util
        util.precompute_image_embeddings = self._precomputed
        saving = self.inference._save_segmentation

        def save_and_keep(masks, path):
            self.masks.setdefault(Path(path).name, []).append(masks[:, 0].bool().cpu())
            saving(masks, path)

        self.inference._save_segmentation = save_and_keep
        self.runs = 0

    def _precomputed(self, predictor, image, embedding_path, **options):
        return self.embeddings[Path(embedding_path).stem]

    def __call__(self, names: list[str], start: str, rounds: int) -> None:
        self.runs += 1
        self.masks = {}
        np.random.seed(0)  # noqa: NPY002 (micro-sam draws its points from numpy's global one)
        self.inference.run_inference_with_iterative_prompting(
            self.predictor,
            [self.folder / f"{name}.tif" for name in names],
            [self.folder / f"{name}_gt.tif" for name in names],
            embedding_dir=self.folder / "embeddings",
            prediction_dir=self.folder / f"predictions{self.runs}",
            start_with_box_prompt=start == "box",
            n_iterations=rounds,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--starts", nargs="+", default=["box", "point"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    official = build_official_sam(**OFFICIAL_ARCHITECTURES["vit_b"])
    ours = build_model(get_config("vit_b"))
    ours.load_state_dict(official.state_dict(), strict=True)
    predictor = Predictor(ours, precision="fp32", cache_size=16)
    data = slices()
    folder = Path(tempfile.mkdtemp(prefix="bench_protocol_"))
    micro_embeddings, objects = {}, {}
    for name, image, label in data:
        instances, masks = instance_map(label)
        objects[name] = masks
        imageio.imwrite(folder / f"{name}.tif", image)
        imageio.imwrite(folder / f"{name}_gt.tif", instances)
        predictor.set_image(image)  # embedded once; evaluate_image finds it in the cache
        embedding = predictor.image_embedding
        micro_embeddings[name] = {
            "features": embedding.embedding,
            "original_size": embedding.original_size,
            "input_size": predictor.transform.resized_shape(embedding.original_size),
        }
    names = [name for name, _, _ in data]
    total = sum(len(masks) for masks in objects.values())
    micro_sam = MicroSamRun(official, micro_embeddings, folder)
    print(
        f"# interactive 2D protocol, {len(data)} slices ({', '.join(names)}), {total} objects "
        f"(≥ {MIN_SIZE} px), {args.rounds} rounds, random ViT-B weights, embeddings "
        f"precomputed, fp32; {machine_description()}"
    )
    print(
        f"{'start':<6}{'micro-sam s':>12}{'samforge s':>12}{'micro-sam obj·r/s':>19}"
        f"{'samforge obj·r/s':>18}{'ratio':>7}{'Dice r1 between':>17}"
        f"{'Dice to truth r1/rN (micro-sam | samforge)':>46}"
    )
    for start in args.starts:
        settings = InteractiveSettings(start=start, rounds=args.rounds, min_size=MIN_SIZE)
        predictions: dict[str, list[torch.Tensor]] = {}

        def samforge_pass(settings: InteractiveSettings = settings) -> None:
            for name, image, label in data:
                evaluate_image(predictor, image, label, settings, name=name)

        def micro_sam_pass(start: str = start) -> None:
            micro_sam(names, start, args.rounds)

        samforge_pass(), micro_sam_pass()  # warm-up
        times: dict[str, list[float]] = {"micro-sam": [], "samforge": []}
        for _ in range(args.repeats):
            for key, run in (("micro-sam", micro_sam_pass), ("samforge", samforge_pass)):
                begin = time.perf_counter()
                run()
                times[key].append(time.perf_counter() - begin)
        for name, image, _ in data:
            predictor.set_image(image)
            predictions[name] = interactive_rounds(
                predictor, objects[name], settings, settings.generator(name)
            )
        between, truth = [], {"micro-sam": ([], []), "samforge": ([], [])}
        for name in names:
            theirs, ours_rounds, masks = (
                micro_sam.masks[f"{name}.tif"],
                predictions[name],
                objects[name],
            )
            for k, target in enumerate(masks.numpy()):
                between.append(dice(theirs[0][k].numpy(), ours_rounds[0][k].numpy()))
                for key, rounds in (("micro-sam", theirs), ("samforge", ours_rounds)):
                    truth[key][0].append(dice(rounds[0][k].numpy(), target))
                    truth[key][1].append(dice(rounds[-1][k].numpy(), target))
        theirs_s, ours_s = (statistics.median(times[key]) for key in ("micro-sam", "samforge"))
        work = total * args.rounds
        quality = " | ".join(
            f"{np.mean(first):.3f}/{np.mean(last):.3f}" for first, last in truth.values()
        )
        print(
            f"{start:<6}{theirs_s:>12.2f}{ours_s:>12.2f}{work / theirs_s:>19.1f}"
            f"{work / ours_s:>18.1f}{theirs_s / ours_s:>7.2f}{np.mean(between):>17.4f}"
            f"{quality:>46}"
        )
    print(f"goal: samforge >= {GOAL_RATIO:.0f}x micro-sam's object-rounds/s")


if __name__ == "__main__":
    main()
