"""A run that max_steps stops between two checkpoint intervals saves its last step itself
(CheckpointAtMaxSteps); that save says what it writes, so Lightning logs no
"`weights_only` was not set" notice (it did during the semantic runs of issue 16), and the
checkpoint is a full one that a longer run resumes from."""

from __future__ import annotations

import logging

import torch

from samforge.training import load_config, train

NOTICE = "`weights_only` was not set"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_the_step_saved_at_max_steps_is_full_and_logs_no_notice(tmp_path):
    config = load_config(
        "semantic2d",
        [
            f"output_dir={tmp_path}",
            "model=monai:unet",
            "objective.patch_size=[32, 32]",
            "data.train.0.shape=[40, 40]",
            "objective.monai={channels: [4, 8], strides: [2], num_res_units: 1}",
            "trainer.max_steps=3",
            "trainer.max_epochs=10",
            "trainer.checkpoint_every_n_steps=2",  # 3 is no multiple: the callback saves it
            "trainer.progress=false",
        ],
    )
    records = Records()
    logger = logging.getLogger("lightning.pytorch.trainer.connectors.checkpoint_connector")
    previous = logger.level
    logger.addHandler(records)
    logger.setLevel(logging.DEBUG)
    try:
        train(config)
    finally:
        logger.removeHandler(records)
        logger.setLevel(previous)
    assert not [m for m in records.messages if NOTICE in m]
    saved = torch.load(
        config.run_dir / "checkpoints" / "step-000003.ckpt", map_location="cpu", weights_only=True
    )
    assert saved["global_step"] == 3 and saved["optimizer_states"]  # resumable
