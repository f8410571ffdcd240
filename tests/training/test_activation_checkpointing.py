"""``trainer.activation_checkpointing``: the same loss and gradients as without, and a
clear refusal where the encoder cannot do it."""

from __future__ import annotations

import pytest
import torch

from samforge.errors import ConfigError
from samforge.models import build_model, get_config
from samforge.models.config import VIT_TEST
from samforge.training import load_config
from samforge.training.model_setup import checkpoint_encoder_blocks, prepare_model
from samforge.training.objectives import PromptingSettings, iterative_prompting_loss


def loss_and_gradients(checkpointed: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = build_model(VIT_TEST).train()
    if checkpointed:
        checkpoint_encoder_blocks(model)
    size = VIT_TEST.image_size
    images = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    masks = torch.zeros(1, 2, size, size)
    masks[0, 0, 40:120, 30:100] = 1
    masks[0, 1, 150:230, 120:220] = 1
    settings = PromptingSettings(n_steps=3, p_box=0.5, p_mask=1.0)
    out = iterative_prompting_loss(model, images, masks, settings, torch.Generator().manual_seed(2))
    out.loss.backward()
    return out.loss.detach(), {n: p.grad for n, p in model.named_parameters()}


def test_checkpointing_gives_the_loss_and_gradients_of_a_plain_step():
    loss, gradients = loss_and_gradients(checkpointed=False)
    loss_ckpt, gradients_ckpt = loss_and_gradients(checkpointed=True)
    torch.testing.assert_close(loss_ckpt, loss, rtol=1e-6, atol=1e-7)
    assert gradients.keys() == gradients_ckpt.keys()
    for name, gradient in gradients.items():
        assert gradient is not None and gradients_ckpt[name] is not None, name
        torch.testing.assert_close(gradients_ckpt[name], gradient, rtol=1e-4, atol=1e-6)
    assert gradients["image_encoder.blocks.0.attn.qkv.weight"].abs().sum() > 0


def test_the_switch_reaches_the_encoder_and_stays_off_by_default(tmp_path):
    values = {
        "model": "samforge_random_tiny",
        "output_dir": str(tmp_path),
        "data": {"train": [{"phantoms": ["ct"], "count": 1, "shape": [64, 64]}]},
    }
    model, _ = prepare_model(load_config(values))
    assert model.image_encoder.activation_checkpointing is False
    values["trainer"] = {"activation_checkpointing": True}
    model, _ = prepare_model(load_config(values))
    assert model.image_encoder.activation_checkpointing is True


def test_an_encoder_with_batch_norms_is_refused():
    """TinyViT's batch norms would count the recomputation in their running statistics."""
    with pytest.raises(ConfigError, match="activation_checkpointing"):
        checkpoint_encoder_blocks(build_model(get_config("vit_t")))
