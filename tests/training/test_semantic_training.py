"""Semantic training through the engine: each kind of model trains a few steps on
phantoms (small configs), exports a checkpoint load_semantic_model reads, and labels a
volume; the data path selects classes and crops patches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.metrics import DiceMetric

from samforge import SemanticPredictor
from samforge.data import Case
from samforge.data.phantoms import phantom_case
from samforge.errors import ConfigError, DataError
from samforge.models.semantic import (
    MonaiSemanticModel,
    SamSemanticModel2d,
    SamSemanticModel3d,
    load_semantic_model,
    save_semantic_model,
)
from samforge.training import load_config, train
from samforge.training.model_setup import prepare_model
from samforge.training.objectives.semantic import foreground_dice
from samforge.training.semantic_data import SemanticDataset

SMALL_SAM = ["model=random:vit_test", "image_size=64", "objective.decoder_features=8"]
QUICK = ["trainer.max_steps=2", "trainer.progress=false"]

CASES = {
    "semantic2d": (
        SamSemanticModel2d,
        [*SMALL_SAM, "objective.patch_size=[64, 64]", "data.train.0.shape=[96, 80]"],
    ),
    "semantic3d": (
        SamSemanticModel3d,
        [*SMALL_SAM, "objective.patch_size=[4, 48, 48]", "data.train.0.shape=[8, 48, 48]"],
    ),
    "monai_unet2d": (
        MonaiSemanticModel,
        [
            "model=monai:unet",
            "objective.patch_size=[64, 64]",
            "data.train.0.shape=[96, 80]",
            "objective.monai={channels: [8, 16, 32], strides: [2, 2], num_res_units: 1}",
        ],
    ),
    "monai_swinunetr": (
        MonaiSemanticModel,
        [
            "model=monai:swinunetr",
            "objective.patch_size=[64, 64, 64]",
            "data.train.0.shape=[64, 72, 72]",
            "objective.monai={feature_size: 12, depths: [1, 1, 1, 1]}",
            "trainer.max_steps=1",  # SwinUNETR's smallest trainable patch is 64³: one step
        ],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_semantic_model_trains_exports_and_labels(case, tmp_path):
    model_type, overrides = CASES[case]
    preset = "semantic3d" if "3d" in case or "swin" in case else "semantic2d"
    config = load_config(preset, [f"output_dir={tmp_path}", *QUICK, *overrides])
    result = train(config)
    assert result.global_step == config.trainer.max_steps and result.export_path is not None
    model = load_semantic_model(result.export_path)
    assert type(model) is model_type
    # The CT phantoms' first four classes, named from the phantoms' label names.
    names = ("background", "liver", "spleen", "kidney_right", "kidney_left")
    assert model.info.class_names == names
    assert model.info.patch_size == tuple(config.objective.patch_size)
    if case != "monai_swinunetr":  # labelling a volume with it takes minutes on a CPU
        shape = tuple(config.data.train[0].shape)
        labels = SemanticPredictor(model).predict(phantom_case("ct", shape, seed=5).image)
        assert labels.shape == shape and labels.max() < len(names)


def test_the_dataset_selects_renumbers_and_pads():
    label = np.zeros((40, 30), np.uint8)
    label[5:15, 5:15], label[20:30, 10:20], label[32:38, 2:8] = 3, 7, 5
    image = np.arange(40 * 30, dtype=np.float32).reshape(40, 30)
    case = Case(image, label, (1.0, 1.0), None, "other", "hand-made")
    dataset = SemanticDataset([case], (48, 48), classes=[7, 3], num_classes=3)
    item = dataset[0]
    assert item["image"].shape == (1, 48, 48) and item["label"].shape == (1, 48, 48)
    # The whole 40×30 image fits inside the padded patch: every class, renumbered.
    counts = np.bincount(item["label"].numpy().ravel(), minlength=3)
    assert counts[1] == 100 and counts[2] == 100  # 7 -> 1, 3 -> 2; 5 -> background
    assert counts.sum() == 48 * 48
    with pytest.raises(DataError, match=r"data\.classes"):
        SemanticDataset([case], (32, 32), num_classes=3)[0]  # values up to 7, 3 classes


def test_foreground_dice_agrees_with_monai():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 20, 24, generator=generator)
    labels = torch.randint(0, 4, (3, 1, 20, 24), generator=generator)
    predicted = torch.nn.functional.one_hot(logits.argmax(1), 4).permute(0, 3, 1, 2)
    truth = torch.nn.functional.one_hot(labels[:, 0], 4).permute(0, 3, 1, 2)
    # One Dice per class over the whole batch, then the mean over classes (MONAI's
    # DiceMetric per class on the batch as one image).
    metric = DiceMetric(include_background=False, reduction="mean")
    as_one_image = [m.permute(1, 0, 2, 3).reshape(1, 4, -1) for m in (predicted, truth)]
    expected = metric(*as_one_image).mean()
    assert foreground_dice(logits, labels) == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["objective.patch_size=[64, 64, 64]"], "patch_size"),
        (["freeze.policy=decoder"], "freeze.policy"),
        (["objective.class_names=[background, liver]"], "class_names"),
    ],
)
def test_bad_semantic_configs_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("semantic2d", overrides)


def test_lora_on_the_encoder_trains_with_the_decoder_and_merges_on_export(tmp_path):
    overrides = [*CASES["semantic2d"][1], "peft.kind=lora", "freeze.policy=encoder_frozen"]
    model, report = prepare_model(load_config("semantic2d", overrides))
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert any("lora_" in name for name in trainable) and any(
        n.startswith("head.") for n in trainable
    )
    assert not any(n.startswith(("prompt_encoder", "mask_decoder")) for n in trainable)
    assert "image_encoder.patch_embed.proj.weight" not in trainable
    model.eval()
    image = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        expected = model(image)
    loaded = load_semantic_model(save_semantic_model(model, tmp_path / "lora.pth"))
    assert not any("lora_" in key for key in loaded.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(loaded(image), expected, rtol=1e-4, atol=1e-5)
    assert report.peft > 0


def test_a_model_keeps_the_label_values_data_classes_selected(tmp_path):
    """``data.classes: [4, 2]`` trains classes 1, 2 on the CT phantoms' kidney_left (4) and
    spleen (2); the exported model says so, and maps labels as the training data did."""
    overrides = [*QUICK, *CASES["monai_unet2d"][1], "data.classes=[4, 2]"]
    config = load_config("semantic2d", [f"output_dir={tmp_path}", *overrides])
    model = load_semantic_model(train(config).export_path)
    assert model.info.label_values == (0, 4, 2)
    assert model.info.class_names == ("background", "kidney_left", "spleen")
    labels = np.random.default_rng(0).integers(0, 7, size=(30, 40)).astype(np.uint8)
    case = Case(np.zeros((30, 40), np.float32), labels, (1.0, 1.0), None, "ct", "random")
    renumbered = SemanticDataset([case], (30, 40), classes=[4, 2], num_classes=3)[0]["label"]
    np.testing.assert_array_equal(model.info.indices_of(labels), renumbered[0])
    back = SemanticPredictor(model).label_values(model.info.indices_of(labels))
    np.testing.assert_array_equal(back, np.where(np.isin(labels, [2, 4]), labels, 0))
