"""Training for 3D propagation (issue 19): slices prompted from their neighbour's label as
propagation prompts them, varied phantoms that never repeat, and runs that resume exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samforge.data import ObjectSegmentationDataset
from samforge.data.phantoms import as_case, phantom_cases
from samforge.data.phantoms.varied import TRAINING_SEEDS, varied_volume
from samforge.errors import ConfigError, DataError
from samforge.inference import Predictor, PropagationSettings
from samforge.inference.propagation import _Runner  # one front, from a mask we choose
from samforge.models import load_model
from samforge.training import load_config, train
from samforge.training.objectives.iterative import PromptingSettings
from samforge.training.objectives.propagation import _organ_losses
from samforge.training.scoring import ScoringFrame
from samforge.training.volume_config import VolumeSlicesConfig
from samforge.training.volume_slices import (
    VolumeSliceDataset,
    WithAdjacentSlices,
    _slice_pair,
    collate_with_slices,
    label_areas,
)

from .test_engine import state, tiny_config, train_losses


def slices(config: VolumeSlicesConfig, length: int = 4, seed: int = 0) -> VolumeSliceDataset:
    transform = load_model("samforge_random_tiny").config.input_transform()
    return VolumeSliceDataset(config, transform, length, seed)


def item_source(item: dict, modalities: tuple[str, ...]) -> tuple:
    """(volume, slice index, step, organ label) of a phantom item of one organ, read back
    from its name and its target (organ_ends off: the organ is on the item's slice)."""
    case_name, where = item["name"].rsplit("_z", 1)
    index, step = int(where[:3]), 1 if where[3] == "+" else -1
    seed = int(case_name.split("_")[-1])
    assert seed >= TRAINING_SEEDS  # never an evaluation seed
    case = varied_volume(seed, modalities)
    organ = next(
        o
        for o in np.unique(case.label[index])[1:]
        if np.array_equal(case.label[index] == o, item["original_masks"][0].numpy())
    )
    return case, index, step, organ


class Recording:
    """Stands in for the Predictor's decoder: records the prompts propagation passes."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor, self.calls = predictor, []
        self.inner = predictor.engine.decode

    def __call__(self, embedding, points, boxes, mask_input, multimask_output):
        self.calls.append((boxes, mask_input))
        return self.inner(embedding, points, boxes, mask_input, multimask_output=multimask_output)


def test_items_carry_the_prompts_propagation_feeds_the_decoder_for_the_next_slice():
    """The reference is propagation itself: from a mask on slice z it decodes slice z ± 1
    with a box and mask logits; an item whose adjacent slice holds that mask as its label
    must carry exactly those decoder inputs."""
    # organ_ends off: the organ is identified by its target on the item's slice.
    config = VolumeSlicesConfig(
        phantoms=["ct"], n_obj=1, prompt_noise_px=0, p_corrupt=0, organ_ends=False
    )
    item = slices(config)[0]
    case, index, step, organ = item_source(item, ("ct",))
    predictor = Predictor(load_model("samforge_random_tiny"))
    recording = Recording(predictor)
    predictor.engine.decode = recording
    volume = case.image[[index + step, index]]  # the adjacent slice first, then the item's
    mapping = predictor.intensity_settings.volume_mapping(case.image, case.modality)
    runner = _Runner(predictor, volume, mapping, PropagationSettings(iou_threshold=0.0))
    runner.result.mask[0] = case.label[index + step] == organ
    runner.run(0, 2, +1)
    boxes, mask_input = recording.calls[-1]
    torch.testing.assert_close(item["boxes"], boxes.cpu(), rtol=0, atol=1e-4)
    torch.testing.assert_close(item["mask_input"], mask_input.cpu(), rtol=0, atol=0)
    # ...on the image propagation embeds for that slice.
    torch.testing.assert_close(
        item["image"],
        predictor.transform.image(
            torch.from_numpy(mapping.apply(case.image[index]))[None, None].float()
        )[0],
    )


def test_items_repeat_for_the_same_epoch_and_differ_across_epochs():
    config = VolumeSlicesConfig(phantoms=["ct", "mr", "us"], p_corrupt=0.5)
    first, again = slices(config), slices(config)
    for index in range(3):
        a, b = first[index], again[index]
        assert a["name"] == b["name"]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["boxes"], b["boxes"])
    names = [first[i]["name"] for i in range(4)]
    first.set_epoch(1)
    assert [first[i]["name"] for i in range(4)] != names


def test_varied_volumes_differ_in_modality_size_spacing_and_orientation():
    cases = [varied_volume(seed) for seed in range(5000, 5012)]
    assert {case.modality for case in cases} == {"ct", "mr", "us"}
    assert len({case.image.shape for case in cases}) == len(cases)
    assert len({case.meta["slice_step"] for case in cases}) > 1
    for case in cases:
        assert case.image.shape == case.label.shape and case.label.max() > 0
    assert np.array_equal(varied_volume(5003).image, cases[3].image)  # a seed is one volume


def test_label_areas_count_each_organ_on_each_slice():
    label = np.zeros((3, 4, 5), np.uint8)
    label[0, :2, :2] = 1
    label[2, :, :] = 2
    areas = label_areas(label)
    assert areas.shape == (3, 3)
    assert areas[1].tolist() == [4, 0, 0] and areas[2].tolist() == [0, 0, 20]


def test_batches_keep_the_2d_items_and_add_the_slices():
    transform = load_model("samforge_random_tiny").config.input_transform()
    cases = [as_case(p) for p in phantom_cases("ct", 2, (64, 64), seed=3)]
    images = ObjectSegmentationDataset(cases, n_obj=2, transform=transform)
    paired = WithAdjacentSlices(images, slices(VolumeSlicesConfig(n_obj=2), len(images)))
    batch = collate_with_slices([paired[0], paired[1]])
    assert batch["image"].shape == (2, 3, 256, 256)
    count = batch["slices"]["masks"].shape[1]
    assert batch["slices"]["boxes"].shape == (2, count, 4)
    assert batch["slices"]["mask_input"].shape == (2, count, 1, 64, 64)


def volume_config(tmp_path, **changes):
    return tiny_config(
        tmp_path,
        objective={"kind": "propagation", "n_steps": 2, "p_box": 0.5, "p_mask": 0.5},
        data__volumes={"phantoms": ["ct", "us"], "n_obj": 2},
        **changes,
    )


def test_the_propagation_objective_needs_volumes(tmp_path):
    config = tiny_config(tmp_path, objective={"kind": "propagation"})
    with pytest.raises(ConfigError, match=r"data\.volumes"):
        load_config(config)


def test_training_with_slices_resumes_to_the_weights_of_one_long_run(tmp_path):
    """A run cut by max_steps in the middle of an epoch and trained on (the engine's resume
    tests) sees the same volume slices as an uninterrupted one."""
    full = train(load_config(volume_config(tmp_path, name="full")))
    train(load_config(volume_config(tmp_path, name="cut", trainer__max_steps=4)))
    longer = train(load_config(volume_config(tmp_path, name="cut")), resume=True)
    assert longer.global_step == full.global_step == 8
    ours, reference = state(longer.export_path), state(full.export_path)
    assert all(torch.equal(ours[key], reference[key]) for key in reference)
    losses = train_losses(full.run_dir)
    assert losses == train_losses(longer.run_dir)
    header = (full.run_dir / "logs" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "train/slice_loss" in header and "train/slice_dice" in header


def test_a_volume_without_labels_is_a_data_error():
    with pytest.raises(DataError, match="labelled volumes"):
        label_areas(np.zeros((4, 4), np.uint8))


def test_the_step_past_an_organs_end_is_an_item_with_an_empty_target():
    """Every propagation front ends by decoding the slice after the organ's last one; the
    items must include that step (with organ_ends) and never prompt from an absent organ."""
    label = np.zeros((3, 8, 8), np.uint8)
    label[0:2, 2:6, 2:6] = 1  # organ 1 on slices 0 and 1 only
    label[:, 6:8, 0:2] = 2  # organ 2 on every slice (4 px)
    areas = label_areas(label)
    drawn = {
        (index, step, tuple(organs))
        for seed in range(200)
        for index, step, organs in [_slice_pair(areas, 4, np.random.default_rng(seed))]
    }
    assert (2, -1, (1, 2)) in drawn  # organ 1 ended on slice 1: its target on slice 2 is empty
    for index, step, organs in drawn:
        assert all(np.sum(label[index + step] == organ) >= 4 for organ in organs)
    without = {
        (index, step, tuple(organs))
        for seed in range(200)
        for index, step, organs in [_slice_pair(areas, 4, np.random.default_rng(seed), False)]
    }
    assert (2, -1, (2,)) in without and (2, -1, (1, 2)) not in without  # only organs on both
    # p_end 1: always a step past an end; here the only one is slice 1 -> 2.
    forced = {
        _slice_pair(areas, 4, np.random.default_rng(seed), p_end=1.0)[:2] for seed in range(50)
    }
    assert forced == {(2, -1)}


def test_an_ended_organ_scores_its_drawn_area_against_its_prompt_box():
    """Dice has no gradient for an empty target; an ended organ scores Σp / (Σp + A), A its
    prompt box's area in low-resolution pixels. Closed form for logits of 0 (p = ½) on an
    s × s grid: (s²/2) / (s²/2 + A); the kept organ's Dice loss there is
    1 − 2·Σpt/(Σp² + Σt²) = 1 − 2·0.5n/(0.25n + n) = 0.2."""
    settings = PromptingSettings()
    transform = load_model("samforge_random_tiny").config.input_transform()
    side = transform.image_size
    targets = torch.stack(
        [torch.ones(12, 10, dtype=torch.bool), torch.zeros(12, 10, dtype=torch.bool)]
    )
    frame = ScoringFrame(torch.zeros(2, side, side, dtype=torch.bool), [targets], transform)
    # Constant logits stay constant through the resize to the slice's 12 × 10 pixels.
    cells = side // 4
    logits = torch.zeros(2, 1, cells, cells, requires_grad=True)
    scores = frame.score(logits, settings.dice, False)
    area = 100.0
    loss = _organ_losses(
        scores, logits, torch.tensor([False, True]), torch.tensor([0.0, area]), settings
    )
    drawn = cells * cells / 2
    assert loss.item() == pytest.approx((0.2 + drawn / (drawn + area)) / 2, rel=1e-5)
    loss.backward()
    assert (logits.grad[1] > 0).all()  # lowering the ended organ's logits lowers the loss


def test_items_put_the_organs_that_end_first():
    """With organ_ends, an item keeps the organs that end before its slice whatever n_obj
    leaves out; without (v2's recipe) the organs are drawn at random."""
    label = np.zeros((8, 8), np.uint8)
    label[:4, :4], label[4:, 4:] = 2, 3  # organs 2 and 3 continue here, organ 1 has ended
    organs = np.array([1, 2, 3])
    ends = slices(VolumeSlicesConfig(phantoms=["ct"], n_obj=1, min_size=4))
    random = slices(VolumeSlicesConfig(phantoms=["ct"], n_obj=1, min_size=4, organ_ends=False))
    rngs = [np.random.default_rng(seed) for seed in range(30)]
    assert {int(ends._chosen_organs(label, organs, rng)[0]) for rng in rngs} == {1}
    rngs = [np.random.default_rng(seed) for seed in range(30)]
    assert {int(random._chosen_organs(label, organs, rng)[0]) for rng in rngs} == {1, 2, 3}
