"""``samforge train --threads N``: the training process and its data loader workers."""

from __future__ import annotations

import subprocess
import sys

import torch
import yaml
from typer.testing import CliRunner

import samforge.training
import samforge.training.data_module as data_module
from samforge.cli import app
from samforge.models.config import VIT_TEST
from samforge.training import load_config
from samforge.training.data_module import SegmentationDataModule

runner = CliRunner()


def config(tmp_path, **data) -> dict:
    """Two steps of the small random model on 64² phantoms."""
    return {
        "name": "threads",
        "model": "samforge_random_tiny",
        "output_dir": str(tmp_path / "runs"),
        "data": {"train": [{"phantoms": ["ct"], "count": 2, "shape": [64, 64]}], "n_obj": 1} | data,
        "objective": {"n_steps": 1},
        "trainer": {"max_steps": 2, "progress": False, "checkpoint_every_n_steps": 10},
    }


def test_threads_set_torch_and_reach_the_training(tmp_path, monkeypatch):
    seen = {}

    def fake_train(resolved, *, resume, threads):
        seen.update(torch_threads=torch.get_num_threads(), threads=threads)
        raise SystemExit(0)

    monkeypatch.setattr(samforge.training, "train", fake_train)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path)))
    before = torch.get_num_threads()
    try:
        result = runner.invoke(app, ["train", "--config", str(path), "--threads", "3"])
    finally:
        torch.set_num_threads(before)
    assert result.exit_code == 0, result.output
    assert seen == {"torch_threads": 3, "threads": 3}
    refused = runner.invoke(app, ["train", "--config", str(path), "--threads", "0"])
    assert refused.exit_code == 2 and "--threads" in refused.output


def test_loader_workers_run_with_the_given_threads(tmp_path):
    """Workers set the run's thread count when they start; with more than one thread they
    start from a forkserver (a worker forked from a process that has run OpenMP hangs in
    its own pool), and still deliver batches."""
    before = torch.get_num_threads()
    try:
        data_module._init_worker(0, threads=3)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    resolved = load_config(config(tmp_path, num_workers=1, batch_size=1))
    transform = VIT_TEST.input_transform()
    for threads, context in ((None, None), (1, None), (2, "forkserver")):
        data = SegmentationDataModule(resolved.data, transform, threads=threads)
        data.setup()
        loader = data.train_dataloader()
        started = getattr(loader.worker_init_fn, "keywords", None)
        assert started == (None if threads is None else {"threads": threads})
        assert getattr(loader.multiprocessing_context, "_name", None) == context
    batch = next(iter(loader))  # from a forkserver worker
    assert batch["image"].shape[0] == 1 and len(batch["original_masks"]) == 1


def test_a_run_with_threads_and_workers_trains(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path, num_workers=1)))
    done = subprocess.run(
        [sys.executable, "-m", "samforge", "train", "--config", str(path), "--threads", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "runs" / "threads" / "model.pth").is_file()
