"""LoRA and SVD (singular-value) fine-tuning of the image encoder, and merging the deltas.

References are independent of the code under test: the closed-form LoRA formula and
parameter count, ``torch.linalg`` in float64 for the SVD, and the official
``segment_anything`` model for the exported, merged weights. Outputs are compared relative
to the largest value (fp32, 1e-5), as the parity tests do.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers.official import build_official_sam, official_sam_from_state_dict
from samforge.errors import CheckpointError, ConfigError
from samforge.models import build_model
from samforge.models.checkpoint import export_official, official_state_dict
from samforge.models.config import VIT_TEST
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

TOLERANCE = 1e-5
SMALL_ARCH = dict(embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,))
DIM = VIT_TEST.encoder_embed_dim
DEPTH = VIT_TEST.encoder_depth
MLP_DIM = int(DIM * VIT_TEST.mlp_ratio)
# (in, out) of each wrappable layer of a ViT block, from the architecture.
LAYER_SHAPES = {
    "attn.qkv": (DIM, 3 * DIM),
    "attn.proj": (DIM, DIM),
    "mlp.lin1": (DIM, MLP_DIM),
    "mlp.lin2": (MLP_DIM, DIM),
}
DELTA_NAMES = ("lora_A", "lora_B", "singular_values")
APPLY = {"lora": apply_lora, "svd": apply_svd}


def is_delta(name: str) -> bool:
    return name.rsplit(".", 1)[-1] in DELTA_NAMES


def random_model(seed: int = 0):
    """samforge's SAM with every weight random (official init leaves some at zero)."""
    official = build_official_sam(image_size=VIT_TEST.image_size, seed=seed, **SMALL_ARCH)
    model = build_model(VIT_TEST)
    model.load_state_dict(official.state_dict(), strict=True)
    return model


def inputs(seed: int = 1) -> dict:
    generator = torch.Generator().manual_seed(seed)
    size = VIT_TEST.image_size
    side = 4 * VIT_TEST.embedding_size
    return dict(
        images=torch.randn(1, 3, size, size, generator=generator),
        boxes=torch.tensor([[30.0, 40.0, 140.0, 150.0], [100.0, 20.0, 220.0, 200.0]]),
        coords=torch.tensor([[[60.0, 70.0], [100.0, 40.0]], [[150.0, 90.0], [20.0, 200.0]]]),
        labels=torch.tensor([[1, 0], [1, 0]]),
        masks=torch.randn(2, 1, side, side, generator=generator),
    )


def samforge_outputs(model, data: dict) -> dict[str, torch.Tensor]:
    embeddings = model.embed_images(data["images"])
    box_logits, box_iou = model.decode(embeddings, boxes=data["boxes"])
    point_logits, point_iou = model.decode(
        embeddings,
        points=(data["coords"], data["labels"]),
        mask_inputs=data["masks"],
        multimask_output=True,
    )
    return dict(
        embeddings=embeddings,
        box_logits=box_logits,
        box_iou=box_iou,
        point_logits=point_logits,
        point_iou=point_iou,
    )


@torch.no_grad()
def official_outputs(sam, data: dict) -> dict[str, torch.Tensor]:
    """The same calls through the official modules."""
    embeddings = sam.image_encoder(data["images"])
    result = dict(embeddings=embeddings)
    calls = {
        "box": dict(points=None, boxes=data["boxes"], masks=None, multimask=False),
        "point": dict(
            points=(data["coords"], data["labels"]),
            boxes=None,
            masks=data["masks"],
            multimask=True,
        ),
    }
    for prefix, call in calls.items():
        sparse, dense = sam.prompt_encoder(
            points=call["points"], boxes=call["boxes"], masks=call["masks"]
        )
        logits, iou = sam.mask_decoder(
            image_embeddings=embeddings,
            image_pe=sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=call["multimask"],
        )
        result[f"{prefix}_logits"], result[f"{prefix}_iou"] = logits, iou
    return result


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    assert ours.shape == reference.shape
    ours, reference = ours.double(), reference.double()
    scale = reference.abs().max().clamp_min(1e-12)
    return ((ours - reference).abs().max() / scale).item()


def assert_outputs_close(ours: dict, reference: dict, tolerance: float = TOLERANCE) -> None:
    assert ours.keys() == reference.keys()
    for key in reference:
        error = relative_error(ours[key], reference[key])
        assert error <= tolerance, f"{key}: relative error {error:.2e}"


def train_deltas(model, steps: int = 3) -> None:
    """A few optimiser steps on every trainable parameter (PEFT deltas, prompt encoder,
    decoder), in train mode so LoRA dropout is active."""
    data = inputs(seed=7)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=1e-2)
    model.train()
    for step in range(steps):
        generator = torch.Generator().manual_seed(100 + step)
        outputs = samforge_outputs(model, data)
        loss = sum((v * torch.randn(v.shape, generator=generator)).mean() for v in outputs.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


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


@pytest.fixture(params=["lora", "svd"])
def trained(request):
    """(kind, original model, model after a few PEFT training steps, its state after apply)."""
    kind = request.param
    original = random_model()
    model = random_model()
    if kind == "lora":
        apply_lora(model, rank=4, alpha=8, include_mlp=True, dropout=0.1)
    else:
        apply_svd(model, include_mlp=True)
    apply_freeze_policy(model, "encoder_frozen")
    after_apply = {name: t.detach().clone() for name, t in model.state_dict().items()}
    train_deltas(model)
    return kind, original, model, after_apply


def test_training_moves_only_peft_deltas_in_the_encoder(trained):
    _, _, model, after_apply = trained
    state = model.state_dict()
    deltas = [name for name in state if is_delta(name)]
    assert deltas
    for name in deltas:
        assert not torch.equal(state[name], after_apply[name]), f"{name} did not train"
    for name, tensor in state.items():
        if name.startswith("image_encoder.") and not is_delta(name):
            assert torch.equal(tensor, after_apply[name]), f"{name} moved"


def test_merge_reproduces_the_unmerged_model(trained):
    _, original, model, _ = trained
    data = inputs()
    with torch.no_grad():
        unmerged = samforge_outputs(model, data)
        before_training = samforge_outputs(original, data)
    # The encoder deltas must matter, or the comparison below proves nothing (the
    # embeddings depend on the encoder alone; the decoder trained as well).
    assert relative_error(unmerged["embeddings"], before_training["embeddings"]) > 1e-2

    assert merge_peft(model) is model
    assert not has_peft(model)
    assert not any(isinstance(m, LoRALinear | SVDLinear) for m in model.modules())
    assert set(model.state_dict()) == set(build_model(VIT_TEST).state_dict())
    with torch.no_grad():
        assert_outputs_close(samforge_outputs(model, data), unmerged)


def test_merged_export_loads_strictly_in_official_segment_anything(trained, tmp_path):
    _, _, model, _ = trained
    data = inputs()
    with torch.no_grad():
        unmerged = samforge_outputs(model, data)
    merge_peft(model)
    with torch.no_grad():
        ours = samforge_outputs(model, data)
    path = export_official(model, tmp_path / "m.pth")
    state = torch.load(path, map_location="cpu", weights_only=True)
    official = official_sam_from_state_dict(state, image_size=VIT_TEST.image_size, **SMALL_ARCH)
    reference = official_outputs(official, data)
    assert_outputs_close(ours, reference)
    assert_outputs_close(unmerged, reference)


@pytest.mark.parametrize("kind", ["lora", "svd"])
def test_export_refuses_an_unmerged_peft_model(kind, tmp_path):
    model = random_model()
    APPLY[kind](model)
    with pytest.raises(CheckpointError, match="merge"):
        official_state_dict(model)
    with pytest.raises(CheckpointError):
        export_official(model, tmp_path / "m.pth")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["lora", "svd"])
def test_peft_state_dict_resumes_into_a_freshly_wrapped_model(kind):
    model = random_model(seed=0)
    APPLY[kind](model, include_mlp=True)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if is_delta(name):
                parameter.add_(0.05 * torch.randn_like(parameter))
    checkpoint = model.state_dict()

    resumed = random_model(seed=3)  # other weights, so the SVD buffers differ before loading
    APPLY[kind](resumed, include_mlp=True)
    resumed.load_state_dict(checkpoint, strict=True)
    data = inputs()
    with torch.no_grad():
        assert_outputs_close(samforge_outputs(resumed, data), samforge_outputs(model, data), 0)


def test_merge_without_peft_is_a_no_op():
    model = random_model()
    before = {name: t.clone() for name, t in model.state_dict().items()}
    modules = list(model.modules())
    assert merge_peft(model) is model
    assert list(model.modules()) == modules
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert peft_summary(model)["kind"] is None and not has_peft(model)


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
