"""Training on propagated chains (issue 19): items of several propagation steps in a row,
the first prompted from the adjacent slice's label, each next from the model's own mask,
exactly as propagation prompts the next slice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samforge.data import ObjectSegmentationDataset
from samforge.data.phantoms import as_case, phantom_cases
from samforge.inference import Predictor, PropagationSettings
from samforge.inference.propagation import _Runner  # one front, from a mask we choose
from samforge.models import load_model
from samforge.training import load_config, train
from samforge.training.objectives.iterative import PromptingSettings
from samforge.training.objectives.propagation import adjacent_slice_loss
from samforge.training.volume_config import VolumeSlicesConfig
from samforge.training.volume_slices import (
    _slice_pair,
    collate_with_slices,
    label_areas,
)

from .test_volume_slices import Recording, item_source, slices, volume_config

PLAIN = {"prompt_noise_px": 0, "p_corrupt": 0.0, "organ_ends": False}


def batch_of(items: list[dict]) -> dict:
    """The slices of a training batch holding ``items`` (beside 2D phantom items)."""
    transform = load_model("samforge_random_tiny").config.input_transform()
    cases = [as_case(p) for p in phantom_cases("ct", len(items), (64, 64), seed=3)]
    images = ObjectSegmentationDataset(cases, n_obj=1, transform=transform)
    samples = [{**images[i], "slice": item} for i, item in enumerate(items)]
    return collate_with_slices(samples)["slices"]


def test_a_chain_item_holds_the_same_organs_on_the_next_slices_away_from_the_prompt():
    config = VolumeSlicesConfig(phantoms=["ct"], n_obj=1, chain=3, **PLAIN)
    item = slices(config)[1]
    case, index, step, organ = item_source(item, ("ct",))
    assert item["chain_image"].shape == (2, 3, 256, 256)
    for k, z in enumerate((index - step, index - 2 * step)):
        assert torch.equal(
            item["chain_original_masks"][k, 0], torch.from_numpy(case.label[z] == organ)
        )
    assert item["chain_masks"].shape == (2, 1, 256, 256)


def test_pairs_leave_room_for_the_whole_chain():
    """Four slices hold a prompt and three targets only one way in each direction: prompt
    on slice 3 for targets 2, 1, 0, or on slice 0 for targets 1, 2, 3."""
    label = np.zeros((4, 8, 8), np.uint8)
    label[:, 2:6, 2:6] = 1
    areas = label_areas(label)
    drawn = {_slice_pair(areas, 4, np.random.default_rng(s), chain=3)[:2] for s in range(40)}
    assert drawn == {(2, 1), (1, -1)}
    assert _slice_pair(label_areas(label[:3]), 4, np.random.default_rng(0), chain=3) is None


def test_later_steps_are_prompted_as_propagation_prompts_from_the_models_own_mask():
    """The reference is propagation itself, run from the adjacent slice's label over the
    chain's slices with the same model: the decoder must get the same prompts at every step."""
    config = VolumeSlicesConfig(phantoms=["ct"], n_obj=1, chain=3, **PLAIN)
    item = slices(config)[0]
    case, index, step, organ = item_source(item, ("ct",))
    model = load_model("samforge_random_tiny").eval()
    trained: list[tuple] = []
    decode = model.decode

    def recording(embeddings, points, boxes, mask_input, multimask_output):
        trained.append((boxes, mask_input))
        return decode(embeddings, points, boxes, mask_input, multimask_output)

    model.decode = recording  # type: ignore[method-assign]
    with torch.no_grad():
        adjacent_slice_loss(model, batch_of([item]), PromptingSettings())

    predictor = Predictor(load_model("samforge_random_tiny"))
    propagated = Recording(predictor)
    predictor.engine.decode = propagated
    volume = case.image[[index + step - k * step for k in range(4)]]
    mapping = predictor.intensity_settings.volume_mapping(case.image, case.modality)
    runner = _Runner(predictor, volume, mapping, PropagationSettings(iou_threshold=0.0))
    runner.result.mask[0] = case.label[index + step] == organ
    runner.run(0, 4, +1)
    assert len(trained) == len(propagated.calls) and len(trained) >= 2
    for (boxes, logits), (ref_boxes, ref_logits) in zip(trained, propagated.calls, strict=True):
        torch.testing.assert_close(boxes, ref_boxes.cpu(), rtol=0, atol=1e-3)
        agree = (logits == ref_logits.cpu()).float().mean().item()
        assert agree > 0.995  # a pixel on the threshold may land either side


def forced(model, logit: float):
    """``model`` whose decoder draws everything (logit > 0) or nothing (< 0)."""
    decode = model.decode

    def constant(embeddings, points, boxes, mask_input, multimask_output):
        low_res, iou = decode(embeddings, points, boxes, mask_input, multimask_output)
        return low_res * 0 + logit, iou

    model.decode = constant
    return model


def test_an_organ_whose_mask_comes_out_empty_stops_as_propagation_stops():
    """Nothing drawn on the first step: the chain adds no step, so the loss is the single
    step's. Everything drawn: every organ goes on to the end of the chain."""
    config = VolumeSlicesConfig(phantoms=["ct", "mr"], n_obj=2, chain=3, **PLAIN)
    chained = batch_of([slices(config)[i] for i in range(2)])
    single = {k: v for k, v in chained.items() if not k.startswith(("chain", "prompting"))}
    settings = PromptingSettings()
    with torch.no_grad():
        empty = forced(load_model("samforge_random_tiny"), -20.0)
        assert adjacent_slice_loss(empty, chained, settings)[0] == pytest.approx(
            adjacent_slice_loss(empty, single, settings)[0].item()
        )
        full = forced(load_model("samforge_random_tiny"), 20.0)
        _, dice_chain = adjacent_slice_loss(full, chained, settings)
        _, dice_single = adjacent_slice_loss(full, single, settings)
    # Drawing everything scores 2|t| / (|t| + H·W) on every organ of every step.
    expected = [
        2 * t.sum() / (t.sum() + t[0].numel())
        for masks in [
            *single["original_masks"],
            *(m.flatten(0, 1) for m in chained["chain_original_masks"]),
        ]
        for t in masks[:, None]
    ]
    assert dice_chain.item() == pytest.approx(torch.stack(expected).float().mean().item(), rel=1e-4)
    assert dice_chain.item() != pytest.approx(dice_single.item())


def test_a_run_trains_on_chains(tmp_path):
    config = volume_config(tmp_path, data__volumes__chain=2, trainer__max_steps=2)
    result = train(load_config(config))
    assert result.global_step == 2
    rows = (result.run_dir / "logs" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    values = [row.split(",")[header.index("train/slice_loss")] for row in rows[1:]]
    assert any(v and np.isfinite(float(v)) for v in values)
