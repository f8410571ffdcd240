"""Freeze policies: after a real optimiser step, frozen parameters are bitwise unchanged and
trainable ones moved; PEFT deltas train under encoder-freezing policies; bad settings raise
ConfigError saying what is valid.

The expected trainable set of each policy is written here from its documented definition
(name prefixes), not taken from the implementation.
"""

from __future__ import annotations

import pytest
import torch

from samforge.errors import ConfigError
from samforge.models import build_model
from samforge.models.config import VIT_TEST
from samforge.models.peft import apply_lora, apply_svd
from samforge.training.freeze import POLICIES, FreezeReport, apply_freeze_policy

DEPTH = VIT_TEST.encoder_depth


def in_blocks(name: str, indices) -> bool:
    return any(name.startswith(f"image_encoder.blocks.{i}.") for i in indices)


EXPECTED = {
    "full": lambda name: True,
    "decoder": lambda name: name.startswith("mask_decoder."),
    "encoder_frozen": lambda name: not name.startswith("image_encoder."),
    "prompt_encoder_frozen": lambda name: not name.startswith("prompt_encoder."),
}


def expected_blocks(indices):
    def expected(name: str) -> bool:
        if not name.startswith("image_encoder."):
            return True
        return in_blocks(name, indices) or name.startswith("image_encoder.neck.")

    return expected


CASES = [
    *[(policy, None, EXPECTED[policy]) for policy in EXPECTED],
    ("blocks", [0], expected_blocks([0])),
    ("blocks", [-1], expected_blocks([DEPTH - 1])),  # negative counts from the end
    ("blocks", [1, 0], expected_blocks([0, 1])),
]


def small_model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(VIT_TEST)


def loss_touching_everything(model) -> torch.Tensor:
    """A loss on every output: box prompt (single mask) and points + mask prompt
    (multimask), so every prompt-encoder embedding and decoder token is used."""
    generator = torch.Generator().manual_seed(1)
    size = VIT_TEST.image_size
    images = torch.randn(1, 3, size, size, generator=generator)
    embeddings = model.embed_images(images)
    boxes = torch.tensor([[30.0, 40.0, 140.0, 150.0], [100.0, 20.0, 220.0, 200.0]])
    low_res_box, iou_box = model.decode(embeddings, boxes=boxes)
    coords = torch.tensor([[[60.0, 70.0], [100.0, 40.0]], [[150.0, 90.0], [20.0, 200.0]]])
    labels = torch.tensor([[1, 0], [1, 0]])
    side = 4 * VIT_TEST.embedding_size
    masks = torch.randn(2, 1, side, side, generator=generator)
    low_res_pts, iou_pts = model.decode(
        embeddings, points=(coords, labels), mask_inputs=masks, multimask_output=True
    )
    loss = torch.zeros(())
    for output in (low_res_box, iou_box, low_res_pts, iou_pts):
        weights = torch.randn(output.shape, generator=generator)
        loss = loss + (output * weights).mean()
    return loss


def step_and_check(model, expected) -> None:
    """One AdamW step over *all* parameters (as a careless trainer would); frozen ones
    must not move by a single bit, trainable ones must get a gradient and move."""
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    loss_touching_everything(model).backward()
    for name, parameter in model.named_parameters():
        if expected(name):
            assert parameter.requires_grad, name
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
        else:
            assert not parameter.requires_grad, name
            assert parameter.grad is None, name
    optimizer.step()
    for name, parameter in model.named_parameters():
        if expected(name):
            assert not torch.equal(parameter, before[name]), f"{name} did not train"
        else:
            assert torch.equal(parameter, before[name]), f"{name} moved although frozen"


@pytest.mark.parametrize(
    ("policy", "blocks", "expected"), CASES, ids=[f"{c[0]}{c[1] or ''}" for c in CASES]
)
def test_policy_freezes_exactly_its_parameters(policy, blocks, expected):
    model = small_model()
    report = apply_freeze_policy(model, policy, blocks=blocks)
    step_and_check(model, expected)

    sizes = {name: p.numel() for name, p in model.named_parameters()}
    assert report.trainable == sum(n for name, n in sizes.items() if expected(name))
    assert report.frozen == sum(n for name, n in sizes.items() if not expected(name))
    roots = {name.split(".")[0] for name in sizes if expected(name)}
    assert set(report.trainable_groups) == roots
    line = str(report)
    assert policy in line and "\n" not in line
    for root in roots:
        assert root in line


def test_every_policy_is_covered():
    assert set(POLICIES) == {case[0] for case in CASES}


def test_policy_replaces_earlier_flags():
    model = small_model()
    apply_freeze_policy(model, "decoder")
    apply_freeze_policy(model, "full")
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("apply_peft", [apply_lora, apply_svd], ids=["lora", "svd"])
@pytest.mark.parametrize(
    ("policy", "blocks"),
    [("encoder_frozen", None), ("decoder", None), ("blocks", [1])],
    ids=["encoder_frozen", "decoder", "blocks[1]"],
)
def test_peft_deltas_train_under_encoder_freezing_policies(apply_peft, policy, blocks):
    model = small_model()
    apply_peft(model)
    with torch.no_grad():  # as mid-run: LoRA's B starts at zero, which zeroes A's gradient
        for name, parameter in model.named_parameters():
            if name.endswith("lora_B"):
                parameter.normal_(0, 0.01)
    delta_names = ("lora_A", "lora_B", "singular_values")

    def is_delta(name: str) -> bool:
        return name.rsplit(".", 1)[-1] in delta_names

    base = EXPECTED.get(policy) or expected_blocks(blocks)

    def expected(name: str) -> bool:
        return is_delta(name) or base(name)

    report = apply_freeze_policy(model, policy, blocks=blocks)
    step_and_check(model, expected)
    deltas = sum(p.numel() for name, p in model.named_parameters() if is_delta(name))
    assert deltas > 0
    assert report.peft == deltas
    assert "image_encoder" in report.trainable_groups


def test_globs_adjust_the_policy_and_frozen_wins():
    model = small_model()
    report = apply_freeze_policy(
        model,
        "decoder",
        trainable=["image_encoder.blocks.1", "prompt_encoder.point_embeddings.*"],
        frozen=["mask_decoder.iou_prediction_head.*", "image_encoder.blocks.1.attn.rel_pos_*"],
    )

    def expected(name: str) -> bool:
        if name.startswith("mask_decoder.iou_prediction_head.") or name.startswith(
            "image_encoder.blocks.1.attn.rel_pos_"
        ):
            return False
        return (
            name.startswith("mask_decoder.")
            or name.startswith("image_encoder.blocks.1.")
            or name.startswith("prompt_encoder.point_embeddings.")
        )

    for name, parameter in model.named_parameters():
        assert parameter.requires_grad == expected(name), name
    assert set(report.partial_groups) == {"image_encoder", "prompt_encoder", "mask_decoder"}


def flags(model):
    return {name: p.requires_grad for name, p in model.named_parameters()}


@pytest.mark.parametrize(
    ("kwargs", "needles"),
    [
        (dict(policy="decoder_only"), ["decoder_only", *POLICIES]),
        (dict(policy="blocks"), ["blocks=[", "indices"]),
        (dict(policy="blocks", blocks=[DEPTH]), [str(DEPTH), "out of range", "blocks"]),
        (dict(policy="blocks", blocks=[-DEPTH - 1]), [str(-DEPTH - 1), "out of range"]),
        (dict(policy="blocks", blocks=[]), ["empty"]),
        (dict(policy="full", blocks=[0]), ["only applies", "'blocks'"]),
        (dict(trainable=["mask_decoderr.*"]), ["mask_decoderr.*", "matches no parameter"]),
        (dict(policy="decoder", frozen=["nothing*"]), ["nothing*", "mask_decoder"]),
        (dict(frozen=["*"]), ["no parameter trainable", *POLICIES]),
        (dict(policy="decoder", frozen=["mask_decoder"]), ["no parameter trainable"]),
    ],
)
def test_bad_settings_raise_config_error_and_change_nothing(kwargs, needles):
    model = small_model()
    apply_freeze_policy(model, "decoder", trainable=["image_encoder.neck"])
    before = flags(model)
    with pytest.raises(ConfigError) as caught:
        apply_freeze_policy(model, **kwargs)
    for needle in needles:
        assert needle in str(caught.value), (needle, str(caught.value))
    assert flags(model) == before


def test_blocks_policy_needs_a_sam_encoder():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(ConfigError, match="image_encoder"):
        apply_freeze_policy(model, "blocks", blocks=[0])
    report = apply_freeze_policy(model, "full")
    assert isinstance(report, FreezeReport) and report.trainable == 6


@pytest.mark.parametrize("policy", ["decoder", "encoder_frozen", "prompt_encoder_frozen"])
def test_a_wrapped_model_is_refused_rather_than_silently_trained(policy):
    wrapper = torch.nn.Module()
    wrapper.model = small_model()  # names "model.image_encoder...", as in a LightningModule
    with pytest.raises(ConfigError, match="wrapper"):
        apply_freeze_policy(wrapper, policy)


def test_a_frozen_encoders_batch_norms_keep_their_statistics_in_training():
    """TinyViT (MobileSAM) has batch norms: with the encoder frozen, training must not move
    their running statistics, though Lightning puts the whole module in training mode (a
    plain ``model.train()`` does move them: the check can fail). The decoder still trains."""
    from samforge.models import get_config
    from samforge.training.config import OptimizerConfig, load_config
    from samforge.training.model_setup import prepare_model
    from samforge.training.module import SamTrainingModule

    def frozen_vit_t():
        torch.manual_seed(0)
        model = build_model(get_config("vit_t"))
        apply_freeze_policy(model, "encoder_frozen")
        return model

    def statistics_after_a_forward(model) -> list[torch.Tensor]:
        with torch.no_grad():
            model.image_encoder(torch.randn(1, 3, 1024, 1024))
        return [b for name, b in model.named_buffers() if name.endswith("running_mean")]

    def unchanged(statistics) -> bool:
        return all(torch.equal(a, b) for a, b in zip(statistics, statistics_before, strict=True))

    statistics_before = [
        b.clone() for name, b in frozen_vit_t().named_buffers() if name.endswith("running_mean")
    ]
    assert statistics_before
    plain = frozen_vit_t().train()
    assert not unchanged(statistics_after_a_forward(plain))

    # A run's model as the engine prepares it (Lightning keeps the modes it is given).
    config = load_config("medicosam", ["model=random:vit_t", "freeze.policy=encoder_frozen"])
    model, _ = prepare_model(config)
    model.load_state_dict(frozen_vit_t().state_dict())
    assert unchanged(statistics_after_a_forward(model))
    assert model.mask_decoder.training
    # A user switching the training module to training mode.
    model = frozen_vit_t()
    SamTrainingModule(model, torch.nn.Identity(), OptimizerConfig()).train()
    assert unchanged(statistics_after_a_forward(model))
    assert model.mask_decoder.training
