"""LoRA and SVD (singular-value) layers of the image encoder: their formulas, which layers
they wrap, and that wrapping changes no ``requires_grad`` (the freeze policy does).
See peft_support.py for the references."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from samforge.errors import ConfigError
from samforge.models.peft import (
    LoRALinear,
    SVDLinear,
    apply_lora,
    apply_svd,
    has_peft,
    merge_peft,
    peft_summary,
)
from samforge.training.freeze import apply_freeze_policy

from .peft_support import (
    APPLY,
    DEPTH,
    LAYER_SHAPES,
    TOLERANCE,
    assert_outputs_close,
    inputs,
    is_delta,
    random_model,
    relative_error,
    samforge_outputs,
)

# --- The layers against their formulas ------------------------------------------------


def test_lora_linear_follows_the_lora_formula():
    torch.manual_seed(0)
    base = nn.Linear(24, 40)
    reference_weight, reference_bias = base.weight.detach().clone(), base.bias.detach().clone()
    layer = LoRALinear(base, rank=3, alpha=12.0)
    x = torch.randn(5, 7, 24, dtype=torch.float32)
    # Starts as the base layer exactly: B is zero.
    assert torch.equal(layer(x), base(x))
    assert base.weight.requires_grad and base.bias.requires_grad  # wrapping freezes nothing
    assert layer.lora_A.requires_grad and layer.lora_B.requires_grad
    assert layer.lora_A.shape == (3, 24) and layer.lora_B.shape == (40, 3)
    assert layer.lora_A.abs().sum() > 0  # A is random, otherwise LoRA could never learn

    with torch.no_grad():
        layer.lora_B.normal_()
    scaling = 12.0 / 3
    x64 = x.double()
    expected = (
        x64 @ reference_weight.double().T
        + reference_bias.double()
        + scaling * x64 @ layer.lora_A.detach().double().T @ layer.lora_B.detach().double().T
    )
    assert relative_error(layer(x), expected) <= TOLERANCE
    merged = layer.merged()
    assert type(merged) is nn.Linear
    dense = reference_weight.double() + scaling * (
        layer.lora_B.detach().double() @ layer.lora_A.detach().double()
    )
    assert relative_error(merged.weight, dense) <= 1e-7
    assert torch.equal(merged.bias, reference_bias)
    assert relative_error(merged(x), expected) <= TOLERANCE


def test_svd_linear_reconstructs_the_weight():
    torch.manual_seed(0)
    for in_features, out_features in [(24, 40), (40, 24), (16, 16)]:
        base = nn.Linear(in_features, out_features)
        weight = base.weight.detach().double()
        layer = SVDLinear(base)
        u, s, vh = layer.U.double(), layer.singular_values.detach().double(), layer.Vh.double()
        rank = min(in_features, out_features)
        assert s.shape == (rank,)
        assert relative_error(s, torch.linalg.svdvals(weight)) <= 1e-6
        assert relative_error(u @ torch.diag(s) @ vh, weight) <= 1e-6
        assert relative_error(u.T @ u, torch.eye(rank, dtype=torch.float64)) <= 1e-6
        assert relative_error(vh @ vh.T, torch.eye(rank, dtype=torch.float64)) <= 1e-6
        # The singular values and the base's bias are the parameters; wrapping freezes
        # nothing (the freeze policy does).
        parameters = dict(layer.named_parameters())
        assert list(parameters) == ["singular_values", "bias"]
        assert all(p.requires_grad for p in parameters.values())
        assert {"U", "Vh"} <= set(layer.state_dict())  # persistent: checkpoints resume them
        x = torch.randn(6, in_features)
        assert relative_error(layer(x), base(x)) <= TOLERANCE
        assert relative_error(layer.merged().weight, weight) <= 1e-6


# --- On the model ---------------------------------------------------------------------


def expected_names(layers, blocks=range(DEPTH)) -> set[str]:
    return {f"image_encoder.blocks.{i}.{layer}" for i in blocks for layer in layers}


@pytest.mark.parametrize("kind", ["lora", "svd"])
@pytest.mark.parametrize("include_mlp", [False, True], ids=["attention", "attention+mlp"])
def test_wrapped_model_starts_equal_to_the_original(kind, include_mlp):
    model = random_model()
    data = inputs()
    with torch.no_grad():
        original = samforge_outputs(model, data)
    names = APPLY[kind](model, include_mlp=include_mlp)
    layers = list(LAYER_SHAPES) if include_mlp else ["attn.qkv", "attn.proj"]
    assert set(names) == expected_names(layers)
    assert has_peft(model)
    assert set(peft_summary(model)["modules"]) == set(names)
    assert peft_summary(model)["kind"] == kind
    with torch.no_grad():
        assert_outputs_close(samforge_outputs(model, data), original)


@pytest.mark.parametrize("rank", [1, 4])
def test_lora_trains_r_times_in_plus_out_per_layer(rank):
    model = random_model()
    apply_lora(model, rank=rank, include_mlp=True)
    apply_freeze_policy(model, "encoder_frozen")
    expected = DEPTH * sum(rank * (fan_in + fan_out) for fan_in, fan_out in LAYER_SHAPES.values())
    encoder_trainable = {
        name: p.numel() for name, p in model.image_encoder.named_parameters() if p.requires_grad
    }
    assert all(is_delta(name) for name in encoder_trainable)
    assert sum(encoder_trainable.values()) == expected
    summary = peft_summary(model)
    assert summary["peft_parameters"] == expected
    assert summary["rank"] == rank and summary["alpha"] == rank


def test_svd_trains_min_in_out_singular_values_per_layer():
    model = random_model()
    apply_svd(model, include_mlp=True)
    apply_freeze_policy(model, "encoder_frozen")
    expected = DEPTH * sum(min(shape) for shape in LAYER_SHAPES.values())
    encoder_trainable = {
        name: p.numel() for name, p in model.image_encoder.named_parameters() if p.requires_grad
    }
    assert all(name.endswith("singular_values") for name in encoder_trainable)
    assert sum(encoder_trainable.values()) == expected
    assert peft_summary(model)["peft_parameters"] == expected


def test_apply_leaves_other_modules_trainability_alone():
    model = random_model()
    model.prompt_encoder.requires_grad_(False)
    apply_lora(model)
    assert not any(p.requires_grad for p in model.prompt_encoder.parameters())
    assert all(p.requires_grad for p in model.mask_decoder.parameters())


@pytest.mark.parametrize("kind", ["lora", "svd"])
def test_apply_alone_changes_no_requires_grad(kind):
    """Freezing is the freeze policy's job: every parameter keeps its flag through the
    wrapping (under its new name), and only the new deltas are added, trainable."""
    model = random_model()
    for index, parameter in enumerate(model.parameters()):
        parameter.requires_grad_(index % 3 != 0)  # a mix of both flags, in every module
    before = {name: p.requires_grad for name, p in model.named_parameters()}
    APPLY[kind](model, include_mlp=True)
    after = {name: p.requires_grad for name, p in model.named_parameters()}
    wrapped = {name.replace(".base.", ".") for name in after if ".base." in name}
    assert wrapped or kind == "svd"
    for name, flag in after.items():
        if is_delta(name):
            assert flag, name
        else:
            assert before[name.replace(".base.", ".")] == flag, name
    # SVD replaces each weight by U, S, Vh; what it keeps (the bias) keeps its flag.
    gone = set(before) - {name.replace(".base.", ".") for name in after}
    assert all(name.endswith(".weight") for name in gone)
    assert bool(gone) == (kind == "svd")


def test_freeze_policy_leaves_the_peft_deltas_trainable_as_apply_did():
    """Frozen encoder + deltas: "encoder_frozen" after apply trains exactly the deltas in
    the encoder, and the prompt encoder and the decoder."""
    for kind, apply in APPLY.items():
        model = random_model()
        apply(model, include_mlp=True)
        apply_freeze_policy(model, "encoder_frozen")
        for name, parameter in model.named_parameters():
            expected = is_delta(name) or not name.startswith("image_encoder.")
            assert parameter.requires_grad == expected, (kind, name)


def test_blocks_and_targets_select_layers():
    model = random_model()
    names = apply_lora(model, targets=("qkv",), blocks=[-1])
    assert names == [f"image_encoder.blocks.{DEPTH - 1}.attn.qkv"]
    assert isinstance(model.image_encoder.blocks[0].attn.qkv, nn.Linear)
    assert isinstance(model.image_encoder.blocks[DEPTH - 1].attn.proj, nn.Linear)
    # More LoRA on other layers is fine; wrapping a wrapped layer is not.
    assert apply_lora(model, targets=("proj",), blocks=[0]) == ["image_encoder.blocks.0.attn.proj"]
    with pytest.raises(ConfigError, match="already wrapped"):
        apply_lora(model, targets=("qkv",), blocks=[DEPTH - 1])


class _Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim)
        self.attn.proj = nn.Linear(dim, dim)
        self.extra = nn.Linear(dim, dim)  # e.g. an adapter of another family

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.attn.qkv(x).chunk(3, dim=-1)
        return x + self.attn.proj(torch.softmax(q @ k.transpose(-1, -2), -1) @ v) + self.extra(x)


class _OtherFamily(nn.Module):
    """Any model with image_encoder.blocks[i].attn.qkv/proj, not a samforge Sam."""

    def __init__(self, dim: int = 8, depth: int = 3) -> None:
        super().__init__()
        self.image_encoder = nn.Module()
        self.image_encoder.blocks = nn.ModuleList(_Block(dim) for _ in range(depth))
        self.head = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.image_encoder.blocks:
            x = block(x)
        return self.head(x)


@pytest.mark.parametrize("kind", ["lora", "svd"])
def test_other_model_families_with_sam_blocks(kind):
    torch.manual_seed(0)
    model = _OtherFamily()
    x = torch.randn(2, 5, 8)
    keys = set(model.state_dict())
    with torch.no_grad():
        original = model(x)
    APPLY[kind](model)
    assert relative_error(model(x).detach(), original) <= TOLERANCE
    assert all(p.requires_grad for p in model.head.parameters())
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if is_delta(name):
                parameter.add_(0.1 * torch.randn_like(parameter))
        unmerged = model(x)
        merge_peft(model)
        assert set(model.state_dict()) == keys
        assert relative_error(model(x), unmerged) <= TOLERANCE


@pytest.mark.parametrize(
    ("call", "needles"),
    [
        (lambda m: apply_lora(m, rank=0), ["rank", "0"]),
        (lambda m: apply_lora(m, alpha=0), ["alpha"]),
        (lambda m: apply_lora(m, dropout=1.0), ["dropout"]),
        (lambda m: apply_lora(m, targets=("q", "qkv")), ["'q'", "qkv", "proj", "lin1"]),
        (lambda m: apply_svd(m, targets=("fc1",)), ["'fc1'", "qkv"]),
        (lambda m: apply_lora(m, blocks=[DEPTH]), [str(DEPTH), "out of range"]),
        (lambda m: apply_svd(m, blocks=[0, -DEPTH - 1]), [str(-DEPTH - 1), "out of range"]),
    ],
)
def test_bad_settings_raise_config_error_and_leave_the_model_alone(call, needles):
    model = random_model()
    with pytest.raises(ConfigError) as caught:
        call(model)
    for needle in needles:
        assert needle in str(caught.value), (needle, str(caught.value))
    assert not has_peft(model)
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize(("first", "second"), [("lora", "svd"), ("svd", "lora")])
def test_mixing_lora_and_svd_is_refused(first, second):
    model = random_model()
    APPLY[first](model, blocks=[0])
    with pytest.raises(ConfigError, match="merge_peft"):
        APPLY[second](model, blocks=[1])
    assert peft_summary(model)["kind"] == first
    # After merging, the other kind is fine.
    merge_peft(model)
    assert APPLY[second](model, blocks=[1]) == [
        "image_encoder.blocks.1.attn.qkv",
        "image_encoder.blocks.1.attn.proj",
    ]


def test_a_model_without_sam_encoder_blocks_is_refused():
    with pytest.raises(ConfigError, match="image_encoder"):
        apply_lora(nn.Sequential(nn.Linear(4, 4)))
    model = nn.Module()
    model.image_encoder = nn.Linear(4, 4)
    with pytest.raises(ConfigError, match=r"image_encoder\.blocks"):
        apply_svd(model)
