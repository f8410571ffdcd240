"""Training PEFT deltas and merging them: only the deltas move in the encoder, the merged
model computes what the wrapped one did, exports load strictly in the official
``segment_anything``, and a PEFT state dict resumes. See peft_support.py for the references."""

from __future__ import annotations

import pytest
import torch

from helpers.official import official_sam_from_state_dict
from samforge.errors import CheckpointError
from samforge.models import build_model, export_official
from samforge.models.checkpoints.export import official_state_dict
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

from .peft_support import (
    APPLY,
    SMALL_ARCH,
    assert_outputs_close,
    inputs,
    is_delta,
    official_outputs,
    random_model,
    relative_error,
    samforge_outputs,
    train_deltas,
)


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
