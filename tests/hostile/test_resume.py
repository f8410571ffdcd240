"""Resuming a training run (item 3): a truncated newest checkpoint falls back to the newest
that reads, saying which; an unreadable saved config is named in a one-line error."""

from __future__ import annotations

import pytest
import torch
import yaml

from samforge.training import load_config, train
from training.test_engine import tiny_config  # the engine tests' few-step run


def test_a_truncated_newest_checkpoint_resumes_from_the_one_before(tmp_path):
    config = load_config(tiny_config(tmp_path, trainer__max_steps=6))
    first = train(config)
    uninterrupted = torch.load(first.export_path, weights_only=True)
    newest = first.run_dir / "checkpoints" / "step-000006.ckpt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a cut copy

    with pytest.warns(UserWarning, match=r"step-000006\.ckpt.*resuming from step-000003\.ckpt"):
        resumed = train(config, resume=True)
    assert resumed.global_step == 6
    again = torch.load(resumed.export_path, weights_only=True)
    assert all(torch.equal(again[key], uninterrupted[key]) for key in uninterrupted)


@pytest.mark.parametrize(
    "content", [b"\x89\x00\xff\xfe binary \x00", b"name: [unclosed", b"- a list\n- of items\n"]
)
def test_an_unreadable_saved_config_is_named(samforge, tmp_path, content):
    config = tiny_config(tmp_path, trainer__max_steps=3)
    run_dir = tmp_path / "runs" / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "step-000003.ckpt").write_bytes(b"PK")
    (run_dir / "config.yaml").write_bytes(content)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    outcome = samforge("train", "-c", config_file, "--resume")
    outcome.refused(str(run_dir / "config.yaml"), "does not read")
