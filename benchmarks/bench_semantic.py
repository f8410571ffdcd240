"""What a semantic model costs per training step and per labelled volume, against MONAI's
UNet (the baseline every comparison table carries), timed alternately in one run.

- ``step``: forward + backward of one batch of patches (softmax Dice + CE), every
  parameter trainable, the optimiser step left out;
- ``volume``: ``SemanticPredictor.predict`` of one CT phantom volume (sliding windows,
  Gaussian blending).

Models: the UNETR decoder on ``samforge_nano``'s encoder (2D; 3D with depth adapters, at
``--image-size``) and MONAI's UNet with MONAI's tutorial channels, at the same patches.
Ratios are against MONAI's UNet of the same dimensionality.

Run: ``python benchmarks/bench_semantic.py [--quick] [--repeats 5] [--image-size 128]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from monai.losses import DiceCELoss

from samforge import SemanticPredictor
from samforge.data.phantoms import make_phantom
from samforge.models import load_model
from samforge.models.semantic import (
    MonaiSemanticModel,
    SamSemanticModel2d,
    SamSemanticModel3d,
    SemanticInfo,
    SemanticModel,
    UNETRLayout,
)
from samforge.testing.timing import alternating_medians, machine_description

CLASSES = ("background", "liver", "spleen", "kidney_right", "kidney_left")


def models(dims: int, patch: tuple[int, ...], image_size: int, features: int) -> dict:
    info = SemanticInfo(dims, CLASSES, patch, 1, "ct")
    sam = load_model("samforge_nano", image_size=image_size)
    embed = sam.config.prompt_embed_dim
    if dims == 2:
        layout = UNETRLayout.with_features(features, embed, len(CLASSES))
        sam_model: SemanticModel = SamSemanticModel2d(sam, info, layout)
    else:
        sam_model = SamSemanticModel3d(sam, info, UNETRLayout.with_features(features, embed))
    return {
        f"samforge_nano UNETR ({features})": sam_model,
        "monai:unet": MonaiSemanticModel("monai:unet", info),
    }


def training_step(model: SemanticModel, batch: int) -> Callable[[], object]:
    loss = DiceCELoss(softmax=True, to_onehot_y=True, lambda_dice=0.5, lambda_ce=0.5)
    images = torch.rand(batch, 1, *model.info.patch_size)
    labels = torch.randint(0, len(CLASSES), (batch, 1, *model.info.patch_size))
    model.train()

    def step() -> None:
        model.zero_grad(set_to_none=True)
        loss(model(images), labels).backward()

    return step


def labelling(model: SemanticModel, volume) -> Callable[[], object]:
    predictor = SemanticPredictor(model)
    return lambda: predictor.predict(volume if model.info.spatial_dims == 3 else volume[0])


def report(title: str, seconds: dict[str, tuple[float, float]], baseline: str) -> None:
    print(f"\n{title}")
    print(f"{'model':<34}{'wall s':>9}{'CPU s':>9}{'× monai:unet':>14}")
    for name, (wall, cpu) in seconds.items():
        print(f"{name:<34}{wall:>9.3f}{cpu:>9.3f}{wall / seconds[baseline][0]:>14.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small patches, 2 repeats")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=256, help="the SAM encoder's frame")
    parser.add_argument("--features", type=int, default=32, help="UNETR decoder width")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    patch2d, patch3d = ((64, 64), (16, 48, 48)) if args.quick else ((256, 256), (16, 128, 128))
    shape = (16, 96, 96) if args.quick else (32, 256, 256)
    volume = make_phantom("ct", shape=shape, seed=0)[0]
    print(machine_description())
    print(
        f"torch threads {torch.get_num_threads()}; encoder frame {args.image_size}; decoder "
        f"features {args.features}; {repeats} repeats, medians, timed alternately"
    )
    for dims, patch, batch in ((2, patch2d, 2), (3, patch3d, 1)):
        nets = models(dims, patch, args.image_size, args.features)
        steps = {name: training_step(net, batch) for name, net in nets.items()}
        report(
            f"{dims}D training step, batch {batch} × {patch}",
            alternating_medians(steps, repeats),
            "monai:unet",
        )
        with torch.no_grad():
            calls = {name: labelling(net, volume) for name, net in nets.items()}
            what = f"volume {shape}" if dims == 3 else f"slice {shape[1:]}"
            report(
                f"{dims}D labelling one {what}", alternating_medians(calls, repeats), "monai:unet"
            )


if __name__ == "__main__":
    main()
