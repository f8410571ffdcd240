"""Every training preset lowers its loss on real images (HC18 fetal head ultrasound).

A short, seeded, deterministic run of the small random model (``samforge_random_tiny``,
256² input) per preset on a few HC18 training subjects; the mean ``train/loss`` over the
last steps must sit clearly below the mean over the first steps (``logs/metrics.csv``).
Skipped when the shared data folder is absent.

The runs use one torch thread: on a shared 2-core machine, two threads competing with
other processes made steps 40–80× slower in our measurements.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from samforge.training import load_config, train

pytestmark = pytest.mark.real_data

STEPS = 30
WINDOW = 10  # steps averaged at each end
# The last window's mean loss must be at most this fraction of the first window's.
MAX_RATIO = 0.9


def losses(run_dir: Path) -> list[float]:
    with open(run_dir / "logs" / "metrics.csv", newline="") as handle:
        return [float(row["train/loss"]) for row in csv.DictReader(handle) if row["train/loss"]]


@pytest.mark.parametrize("preset", ["medsam", "simpleft", "medicosam"])
def test_preset_loss_falls_on_hc18(shared_data, tmp_path, one_thread, preset):
    hc18 = shared_data / "hc18"
    if not hc18.is_dir():
        pytest.skip(f"{hc18} not found")
    config = load_config(
        preset,
        [
            f"output_dir={tmp_path / 'runs'}",
            "model=samforge_random_tiny",
            f"data.train=[{{path: {hc18}, subjects: ['000-007']}}]",
            "optimizer.lr=1e-3",
            "optimizer.lr_decay=1.0",
            "trainer.max_epochs=100",
            f"trainer.max_steps={STEPS}",
            "trainer.log_every_n_steps=1",
            f"trainer.checkpoint_every_n_steps={STEPS}",
            "trainer.seed=0",
            "trainer.deterministic=true",
            "trainer.progress=false",
        ],
    )
    result = train(config)
    assert result.global_step == STEPS
    values = losses(result.run_dir)
    assert len(values) == STEPS
    first = sum(values[:WINDOW]) / WINDOW
    last = sum(values[-WINDOW:]) / WINDOW
    assert last < MAX_RATIO * first, (
        f"{preset}: mean loss of the last {WINDOW} steps {last:.4f} is not below "
        f"{MAX_RATIO} × that of the first {WINDOW} ({first:.4f}); all: {values}"
    )
