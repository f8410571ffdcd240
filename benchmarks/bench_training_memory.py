"""Seconds per step and peak memory of one MedicoSAM training step, samforge's against the
same step computed with micro-sam's loss path, and with activation checkpointing.

One step = ``iterative_prompting_loss`` with the medicosam preset's objective (encoder
once, ``--n-steps`` predictions with correction clicks and mask feedback p 0.5, Dice +
IoU-MSE), backward, AdamW; full fine-tuning of a randomly initialised ``--model``.
Configurations, each in a fresh subprocess (peak memory = that subprocess's peak resident
set size, ``ru_maxrss``: it includes Python, torch and the model, "RSS after build"):

- ``samforge``: the preset as shipped (torch_em's Dice, the loss at the original size
  through ``ModelInputTransform.original_logits``' two matrix products).
- ``reference``: the same prompts and model, the loss as micro-sam's ``SamTrainer`` computes
  it: ``F.interpolate`` to S², crop the padding, ``F.interpolate`` to the original size,
  sigmoid, torch_em's ``dice_score`` (Σp² + Σt², objects as channels), IoU of
  sigmoid > 0.5 (written out here, not samforge's code).
- ``checkpointing``: ``samforge`` with ``trainer.activation_checkpointing`` (the ViT's
  blocks recomputed in the backward pass).
- ``previous``: samforge before this change: Σp + Σt Dice in the padded S² frame.

The input is a random 540×800 image (HC18's size: resized to 691×1024 and padded, so the
crop and resize matter) with ``--n-obj`` elliptic objects. Each worker also reports, for
its first step, the tensors autograd saved for the backward pass (``saved_tensors_hooks``,
each storage counted once, parameters excluded) by where they were saved: the encoder, the
decoder rounds, the loss; that is where the memory of a step goes.

    python benchmarks/bench_training_memory.py [--model vit_test] [--threads 2] [--steps 3]
        [--warmup 1] [--configs samforge reference checkpointing previous] [--n-obj 1]
        [--n-steps 8] [--image-size S]

ViT-B (``--model vit_b``; minutes a step on two cores, so ``--warmup 0 --steps 2``) needs
about 12-14 GiB per worker; run it alone. ``--model vit_test --image-size 1024`` has
ViT-B's prompt encoder, decoder and 1024² frame around a tiny encoder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import time
from collections import defaultdict

CONFIGS = ("samforge", "reference", "checkpointing", "previous")
ORIGINAL = (540, 800)


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def synthetic_case(transform, n_obj: int):
    """Model-ready (1, 3, S, S) image, (1, n, S, S) frame masks, (1, 2) content size and
    the (n, H, W) original masks of a random 540×800 image with elliptic objects."""
    import torch

    generator = torch.Generator().manual_seed(0)
    height, width = ORIGINAL
    image = torch.rand(1, 1, height, width, generator=generator) * 255
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    originals = torch.zeros(n_obj, height, width, dtype=torch.bool)
    for index in range(n_obj):
        cy, cx = height * (0.3 + 0.4 * (index % 2)), width * (0.2 + 0.6 * index / max(n_obj, 1))
        originals[index] = ((rows - cy) / 90) ** 2 + ((cols - cx) / 130) ** 2 <= 1
    masks = transform.label_masks(originals[None].float())
    size = torch.tensor([transform.resized_shape(ORIGINAL)])
    return transform.image(image), masks, size, originals


def micro_sam_score(transform):
    """A ``ScoringFrame.score`` that computes micro-sam's loss path (module docstring)."""
    import torch
    import torch.nn.functional as F

    from samforge.training.scoring import MaskScores

    def score(self, low_res, denominator, focal):
        frame = (transform.image_size, transform.image_size)
        parts, start = [], 0
        for original in self.original:
            targets = original.hard  # (n, H, W) bool
            new_h, new_w = transform.resized_shape(tuple(targets.shape[-2:]))
            objects = low_res[start : start + len(targets)]
            start += len(targets)
            masks = F.interpolate(objects, frame, mode="bilinear", align_corners=False)
            masks = masks[..., :new_h, :new_w]
            masks = F.interpolate(masks, targets.shape[-2:], mode="bilinear", align_corners=False)
            probs = torch.sigmoid(masks).transpose(0, 1).flatten(2)  # (M, n, H·W)
            truth = targets.flatten(1)[None].float()
            # torch_em's dice_score terms; the objective takes 1 − 2·num / max(den, 1e-7)
            numerator = (probs * truth).sum(-1).T  # (n, M)
            denominator_em = ((probs * probs).sum(-1) + (truth * truth).sum(-1)).T
            with torch.no_grad():
                hard = probs > 0.5
                overlap = (hard & truth.bool()).sum(-1).float()
                union = (hard | truth.bool()).sum(-1).float()
                iou = (overlap / (union + 1e-7)).T
                dice = (2 * overlap / (overlap + union).clamp(min=1)).T
            parts.append(MaskScores(numerator, denominator_em, None, iou, dice))
        cat = [torch.cat([p[i] for p in parts]) for i in (0, 1, 3, 4)]
        return MaskScores(cat[0], cat[1], None, cat[2], cat[3])

    return score


class SavedTensors:
    """Bytes of the storages autograd saves for backward, by phase."""

    def __init__(self, parameters) -> None:
        self.phase = "encoder"
        self.seen = {p.untyped_storage().data_ptr() for p in parameters}
        self.bytes: dict[str, int] = defaultdict(int)

    def pack(self, tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in self.seen and storage.device.type != "meta":
            self.seen.add(storage.data_ptr())
            self.bytes[self.phase] += storage.nbytes()
        return tensor


def worker(args: argparse.Namespace) -> dict:
    import torch

    from samforge.models import build_model, get_config
    from samforge.training.model_setup import checkpoint_encoder_blocks
    from samforge.training.objectives import PromptingSettings, iterative_prompting_loss
    from samforge.training.scoring import ScoringFrame

    torch.set_num_threads(args.threads)
    config = get_config(args.model)
    if args.image_size:
        config = config.with_changes(image_size=args.image_size)
    torch.manual_seed(0)
    model = build_model(config).train()
    transform = config.input_transform()
    images, masks, sizes, originals = synthetic_case(transform, args.n_obj)
    rss_build = rss_mib()
    name = args.worker
    if name == "checkpointing":
        checkpoint_encoder_blocks(model)
    if name == "reference":
        ScoringFrame.score = micro_sam_score(transform)
    previous = name == "previous"
    settings = PromptingSettings(
        n_steps=args.n_steps,
        p_box=0.5,
        p_mask=0.5,
        dice="linear" if previous else "squared",
        loss_resolution="model" if previous else "original",
    )
    saved = SavedTensors(model.parameters())
    score, embed, decode = ScoringFrame.score, model.embed_images, model.decode

    def phase(name, call):
        def run(*a, **k):
            before, saved.phase = saved.phase, name
            try:
                return call(*a, **k)
            finally:
                saved.phase = before

        return run

    ScoringFrame.score = phase("loss", score)
    model.embed_images, model.decode = phase("encoder", embed), phase("decoder", decode)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    times, losses = [], []
    load = [os.getloadavg()[0]]
    for index in range(args.warmup + args.steps):  # the hooks see the first
        generator = torch.Generator().manual_seed(index)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        # The first step counts what is kept for the backward pass; later ones run bare.
        counting = (
            torch.autograd.graph.saved_tensors_hooks(saved.pack, lambda t: t)
            if index == 0
            else contextlib.nullcontext()
        )
        with counting:
            out = iterative_prompting_loss(
                model,
                images,
                masks,
                settings,
                generator,
                None,
                sizes,
                None if previous else [originals],
            )
        out.loss.backward()
        optimizer.step()
        losses.append(float(out.loss))
        if index >= args.warmup:
            times.append(time.perf_counter() - start)
    load.append(os.getloadavg()[0])
    return {
        "config": name,
        "step_s": times,
        "losses": losses,
        "rss_build_mib": rss_build,
        "peak_rss_mib": rss_mib(),
        "saved_mib": {k: v / 2**20 for k, v in saved.bytes.items()},
        "load_1min": load,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vit_test", help="architecture (vit_test, vit_b...)")
    parser.add_argument(
        "--image-size", type=int, default=None, help="the model's input size [its own]"
    )
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument("--steps", type=int, default=3, help="measured steps")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured steps before them")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-obj", type=int, default=1)
    parser.add_argument("--n-steps", type=int, default=8, help="predictions per step")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--worker", choices=CONFIGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be ≥ 1 and --warmup ≥ 0")
    if args.worker:
        from samforge.testing.timing import print_worker_result

        print_worker_result(worker(args))
        return

    import torch

    from samforge.testing.timing import WorkerFailed, machine_description, run_worker

    torch.set_num_threads(args.threads)
    print(f"machine: {machine_description()}, fp32")
    print(
        f"settings: {args.model} at {args.image_size or 'its own'} input, random weights, "
        f"image {ORIGINAL[0]}×{ORIGINAL[1]}, batch 1, "
        f"{args.n_obj} object(s), {args.n_steps} predictions, p_box 0.5, p_mask 0.5, AdamW, "
        f"full fine-tuning; {args.warmup} warm-up + {args.steps} measured step(s) per "
        "fresh subprocess"
    )
    results = []
    for name in args.configs:
        command = [sys.executable, __file__, "--worker", name, "--model", args.model]
        command += ["--steps", str(args.steps), "--threads", str(args.threads)]
        command += ["--warmup", str(args.warmup)]
        command += ["--n-obj", str(args.n_obj), "--n-steps", str(args.n_steps)]
        if args.image_size:
            command += ["--image-size", str(args.image_size)]
        try:
            row = run_worker(command)
        except WorkerFailed as failure:
            sys.stderr.write(failure.stderr[-4000:])
            raise SystemExit(f"{name} failed ({failure})") from None
        seconds = ", ".join(f"{x:.2f}" for x in row["step_s"])
        saved = ", ".join(f"{k} {v:.0f}" for k, v in row["saved_mib"].items())
        print(
            f"  {name}: steps {seconds} s; peak RSS {row['peak_rss_mib']:.0f} MiB; saved "
            f"for backward MiB: {saved}; load {row['load_1min'][0]:.1f} -> "
            f"{row['load_1min'][1]:.1f}; losses {', '.join(f'{x:.4f}' for x in row['losses'])}",
            flush=True,
        )
        results.append(row)

    print()
    print(
        "| config | s/step median (min) | peak RSS MiB | RSS after build MiB "
        "| saved for backward MiB: encoder / decoder / loss |"
    )
    print("|---|---:|---:|---:|---|")
    for row in results:
        saved = row["saved_mib"]
        parts = " / ".join(f"{saved.get(k, 0.0):.0f}" for k in ("encoder", "decoder", "loss"))
        print(
            f"| {row['config']} | {statistics.median(row['step_s']):.2f} "
            f"({min(row['step_s']):.2f}) | {row['peak_rss_mib']:.0f} "
            f"| {row['rss_build_mib']:.0f} | {parts} |"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "results": results}, handle, indent=2)


if __name__ == "__main__":
    main()
