"""`samforge train` on Lightning: runs, exports, resumes after a kill, and runs DDP."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from helpers.official import official_sam_from_state_dict
from samforge.errors import ConfigError
from samforge.models import load_model
from samforge.training import load_config, train
from samforge.training.module import SamTrainingModule

SAMFORGE = [sys.executable, "-m", "samforge"]


def tiny_config(tmp_path: Path, **changes) -> dict:
    """A run of a few steps of the small random model on 64² phantoms."""
    config = {
        "name": "run",
        "model": "samforge_random_tiny",
        "output_dir": str(tmp_path / "runs"),
        "data": {
            "train": [{"phantoms": ["ct", "us"], "count": 3, "shape": [64, 64]}],
            "n_obj": 2,
            "batch_size": 1,
        },
        "objective": {"n_steps": 2, "p_box": 0.5, "p_mask": 0.5},
        "optimizer": {"lr": 1e-4},
        "trainer": {
            "max_epochs": 3,
            "max_steps": 8,
            "checkpoint_every_n_steps": 3,
            "log_every_n_steps": 1,
            "deterministic": True,
            "progress": False,
        },
    }
    for dotted, value in changes.items():
        node = config
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return config


def write_config(tmp_path: Path, name: str = "config.yaml", **changes) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(tiny_config(tmp_path, **changes)))
    return path


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SAMFORGE, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_run_writes_checkpoints_logs_and_an_official_export(tmp_path):
    config = load_config(tiny_config(tmp_path, freeze__policy="decoder"))
    result = train(config)
    run = result.run_dir
    assert result.global_step == 8
    assert {p.name for p in (run / "checkpoints").iterdir()} >= {
        "last.ckpt",
        "step-000008.ckpt",
        "step-000003.ckpt",
        "step-000006.ckpt",
    }
    metrics = (run / "logs" / "metrics.csv").read_text().splitlines()
    assert "train/loss" in metrics[0] and len(metrics) > 2
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["global_step"] == 8

    exported = state(result.export_path)
    start = load_model("samforge_random_tiny").state_dict()
    # Decoder-only: every encoder and prompt-encoder tensor bitwise unchanged.
    for key, value in start.items():
        if key.startswith("mask_decoder."):
            continue
        assert torch.equal(exported[key], value), key
    assert any(
        not torch.equal(exported[k], start[k]) for k in start if k.startswith("mask_decoder.")
    )
    # Tools load the export strictly.
    official = official_sam_from_state_dict(
        exported, image_size=256, embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,)
    )
    # ... and compute what samforge computes with the trained weights.
    image = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    box = torch.tensor([[20.0, 30.0, 120.0, 160.0]])
    ours = load_model(result.export_path)
    with torch.no_grad():
        sparse, dense = official.prompt_encoder(points=None, boxes=box, masks=None)
        reference, _ = official.mask_decoder(
            official.image_encoder(image),
            official.prompt_encoder.get_dense_pe(),
            sparse,
            dense,
            multimask_output=False,
        )
        mine, _ = ours.decode(ours.embed_images(image), boxes=box)
    torch.testing.assert_close(mine, reference, rtol=1e-5, atol=1e-5)


def test_lora_run_exports_merged_dense_weights(tmp_path):
    config = load_config(
        tiny_config(
            tmp_path,
            peft__kind="lora",
            peft__rank=2,
            freeze__policy="encoder_frozen",
            trainer__max_steps=3,
        )
    )
    result = train(config)
    exported = state(result.export_path)
    start = load_model("samforge_random_tiny").state_dict()
    assert set(exported) == set(start)  # no lora_A/lora_B keys: merged
    qkv = "image_encoder.blocks.0.attn.qkv.weight"
    assert not torch.equal(exported[qkv], start[qkv])  # the LoRA delta is in the dense weight
    assert torch.equal(
        exported["image_encoder.patch_embed.proj.weight"],
        start["image_encoder.patch_embed.proj.weight"],
    )


def train_losses(run: Path) -> list[tuple[str, str]]:
    with (run / "logs" / "metrics.csv").open(newline="") as file:
        return [
            (row["step"], row["train/loss"]) for row in csv.DictReader(file) if row["train/loss"]
        ]


def logged_steps(run: Path) -> int:
    path = run / "logs" / "metrics.csv"
    return len(path.read_text().splitlines()) - 1 if path.is_file() else 0


def test_killed_run_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    """Kill -9 in the middle of an epoch (6 items per epoch, checkpoints every 3 steps)."""
    config = write_config(tmp_path)
    full = run_cli("train", "-c", str(config), "--set", "name=full")
    assert full.returncode == 0, full.stderr[-2000:]

    cut_dir = tmp_path / "runs" / "cut" / "checkpoints"
    process = subprocess.Popen(
        [*SAMFORGE, "train", "-c", str(config), "--set", "name=cut"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    # Killed once the log holds a step past the checkpoint: the resumed run must keep the
    # rows before step 3 and log the later ones again, not twice.
    while not ((cut_dir / "step-000003.ckpt").exists() and logged_steps(cut_dir.parent) > 3):
        assert process.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "runs" / "cut" / "model.pth").exists()  # really interrupted

    resumed = run_cli("train", "-c", str(config), "--set", "name=cut", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    ours, reference = (
        state(tmp_path / "runs/cut/model.pth"),
        state(tmp_path / "runs/full/model.pth"),
    )
    assert all(torch.equal(ours[key], reference[key]) for key in reference)
    # The log keeps what was logged before the kill: the same history as the full run.
    assert train_losses(tmp_path / "runs/cut") == train_losses(tmp_path / "runs/full")
    start = load_model("samforge_random_tiny").state_dict()
    assert not all(torch.equal(reference[key], start[key]) for key in start)  # it trained


def test_training_longer_after_max_steps_cut_an_epoch_matches_one_long_run(tmp_path):
    """``--resume --set trainer.max_steps=N`` after a run that max_steps stopped in the
    middle of an epoch (6 items per epoch, checkpoints every 3 steps, stopped at 4)."""
    full = train(load_config(tiny_config(tmp_path, name="full")))
    train(load_config(tiny_config(tmp_path, name="cut", trainer__max_steps=4)))
    assert (tmp_path / "runs" / "cut" / "checkpoints" / "step-000004.ckpt").is_file()
    longer = train(load_config(tiny_config(tmp_path, name="cut")), resume=True)
    assert longer.global_step == full.global_step == 8
    ours, reference = state(longer.export_path), state(full.export_path)
    assert all(torch.equal(ours[key], reference[key]) for key in reference)
    assert train_losses(longer.run_dir) == train_losses(full.run_dir)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_ddp_two_cpu_processes_keep_identical_weights(tmp_path):
    config = write_config(
        tmp_path,
        trainer__strategy="ddp",
        trainer__accelerator="cpu",
        trainer__devices=2,
        trainer__max_steps=3,
        trainer__record_weight_digests=True,
        data__val=[{"phantoms": ["mr"], "count": 2, "shape": [64, 64], "seed": 5}],
    )
    env = {**os.environ, "MASTER_PORT": str(29500 + os.getpid() % 1000)}
    done = subprocess.run(
        [*SAMFORGE, "train", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    digests = tmp_path / "runs" / "run" / "digests"
    ranks = [
        [json.loads(line) for line in (digests / f"rank{r}.jsonl").read_text().splitlines()]
        for r in (0, 1)
    ]
    assert [row["step"] for row in ranks[0]] == [1, 2, 3]
    assert ranks[0] == ranks[1]
    assert len({row["digest"] for row in ranks[0]}) == 3  # the weights changed every step
    assert (tmp_path / "runs" / "run" / "model.pth").is_file()
    header = (tmp_path / "runs" / "run" / "logs" / "metrics.csv").read_text().splitlines()[0]
    assert "val/loss" in header.split(",")


def test_existing_run_needs_resume_and_resume_needs_a_checkpoint(tmp_path):
    config = load_config(tiny_config(tmp_path, trainer__max_steps=3))
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(config, resume=True)
    train(config)
    with pytest.raises(ConfigError, match="--resume"):
        train(config)
    changed = load_config(tiny_config(tmp_path, trainer__max_steps=3, optimizer__lr=1e-3))
    with pytest.raises(ConfigError, match=r"optimizer\.lr"):
        train(changed, resume=True)


def test_cli_check_prints_the_resolved_preset(tmp_path):
    done = run_cli("train", "-c", "medsam", "--check", "--set", "trainer.max_steps=5")
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert resolved["objective"]["n_steps"] == 0 and resolved["objective"]["p_box"] == 1.0
    assert resolved["trainer"]["max_steps"] == 5


def test_cli_reports_a_bad_config_in_one_line(tmp_path):
    config = write_config(tmp_path, objective__p_bx=0.3)
    done = run_cli("train", "-c", str(config))
    assert done.returncode == 2
    assert "objective.p_bx: unknown key (did you mean 'p_box'?)" in done.stderr
    assert "Traceback" not in done.stderr


def test_bf16_mixed_precision_with_gradient_accumulation(tmp_path):
    config = load_config(
        tiny_config(
            tmp_path,
            trainer__precision="bf16-mixed",
            trainer__accumulate_grad_batches=2,
            trainer__max_steps=2,
            trainer__checkpoint_every_n_steps=1,
        )
    )
    result = train(config)
    assert result.global_step == 2
    exported = state(result.export_path)
    assert all(value.dtype == torch.float32 for value in exported.values())
    rows = (result.run_dir / "logs" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    losses = [r.split(",")[header.index("train/loss")] for r in rows[1:]]
    losses = [float(v) for v in losses if v]
    assert len(losses) == 2  # logged once per optimiser step (of two batches each)
    assert all(torch.isfinite(torch.tensor(losses)))


def test_from_scratch_on_one_volume_given_as_image_and_label_files(tmp_path):
    """``model: random:<architecture>`` and an ``image``/``label`` data source."""
    import nibabel as nib
    import numpy as np

    from samforge.data.phantoms import make_phantom

    image, label, info = make_phantom("ct", shape=(4, 64, 64), seed=2)
    nib.save(nib.Nifti1Image(image.astype(np.int16), info["affine"]), tmp_path / "ct.nii.gz")
    nib.save(nib.Nifti1Image(label, info["affine"]), tmp_path / "seg.nii.gz")
    values = tiny_config(tmp_path, trainer__max_steps=2)
    values["model"] = "random:vit_test"
    values["data"]["train"] = [
        {"image": str(tmp_path / "ct.nii.gz"), "label": str(tmp_path / "seg.nii.gz")}
    ]
    result = train(load_config(values))
    assert result.global_step == 2
    assert load_model(result.export_path).config.encoder_embed_dim == 64


def test_training_flushes_subnormal_floats_and_stops_afterwards(tmp_path, monkeypatch):
    """Subnormal gradients made backward products 10–25× slower (docs/training.md): every
    training step computes with them flushed to zero, and the caller's process keeps them
    again once the run returns."""
    subnormal = torch.tensor([1e-40])  # float32 subnormal: below 1.18e-38
    seen: list[float] = []
    original = SamTrainingModule.training_step

    def recording(self, *args, **kwargs):
        seen.append(float(subnormal * 2.0))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SamTrainingModule, "training_step", recording)
    train(load_config(write_config(tmp_path, trainer__max_steps=2)))
    assert seen == [0.0, 0.0]
    assert float(subnormal * 2.0) == pytest.approx(2e-40)
