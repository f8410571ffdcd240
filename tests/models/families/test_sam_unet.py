"""SAM-UNet: public parameter names and shapes, strict loading, outputs, and training.

References: the structure of the public SAM-UNet code (Hhankyangg/sam-unet: SAM wrapped as
``*.sam_img_encoder`` / ``sam_prompt_encoder`` / ``sam_mask_decoder``, ``resnet.stage0-4``,
``adapters_in.{i}.reshaper``, ``adapters_bridge``, ``embedding_encoder``, ``med_token``,
``hf_mlp``, ``embedding_maskfeature``), torchvision's documented parameter counts for
ResNet-50 and -34, and the training recipe (Adam, focal + 20·Dice, box prompts, ViT frozen).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers.configs import SAMUNET_TEST
from samforge.data import Case, ObjectSegmentationDataset, collate_objects
from samforge.data.phantoms import make_phantom
from samforge.models import build_model, export_model, family_of, get_config, load_model
from samforge.models.families.sam_unet.resnet import ResNetStages, from_torchvision_names
from samforge.prompts import box_from_masks
from samforge.training.freeze import apply_freeze_policy

# (key, shape) of the public ResNet-50 SAM-UNet at 256² with ViT-B, from its code.
PUBLIC_SHAPES = {
    "image_encoder.sam_img_encoder.pos_embed": (1, 16, 16, 768),
    "image_encoder.sam_img_encoder.blocks.2.attn.rel_pos_h": (31, 64),
    "prompt_encoder.sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix": (2, 128),
    "mask_decoder.sam_mask_decoder.iou_token.weight": (1, 256),
    "mask_decoder.med_token.weight": (1, 256),
    "mask_decoder.hf_mlp.layers.2.weight": (32, 256),
    "mask_decoder.embedding_maskfeature.0.weight": (64, 32, 3, 3),
    "mask_decoder.embedding_maskfeature.3.weight": (32, 64, 3, 3),
    "resnet.stage0.0.weight": (64, 3, 7, 7),
    "resnet.stage0.1.running_var": (64,),
    "resnet.stage1.0.conv3.weight": (256, 64, 1, 1),
    "resnet.stage1.0.downsample.0.weight": (256, 64, 1, 1),
    "resnet.stage4.2.bn3.weight": (2048,),
    # stage 1 (64²) -> 16²: two strided 3×3 convolutions 256 -> 512 -> 1024, then 1×1 to 768
    "adapters_in.0.reshaper.0.weight": (512, 256, 3, 3),
    "adapters_in.0.reshaper.4.bias": (1024,),
    "adapters_in.0.reshaper.6.weight": (768, 1024, 1, 1),
    "adapters_in.2.reshaper.0.weight": (768, 1024, 1, 1),  # stage 3 is already 16²
    "adapters_in.3.reshaper.0.weight": (2048, 1024, 2, 2),  # stage 4 (8²): transposed conv
    "adapters_in.3.reshaper.3.weight": (768, 1024, 1, 1),
    "adapters_bridge.0.0.weight": (768, 256, 2, 2),
    "adapters_bridge.2.3.weight": (256, 32, 2, 2),
    "embedding_encoder.0.weight": (256, 64, 2, 2),
    "embedding_encoder.3.weight": (64, 32, 2, 2),
}


def test_public_names_and_shapes():
    config = get_config("samunet_res50_vit_b")
    with torch.device("meta"):
        state = family_of(config).write_names(build_model(config).state_dict())
    assert {key: tuple(state[key].shape) for key in PUBLIC_SHAPES} == PUBLIC_SHAPES
    roots = {key.split(".")[0] for key in state}
    assert roots == {
        "image_encoder", "prompt_encoder", "mask_decoder",
        "resnet", "adapters_in", "adapters_bridge", "embedding_encoder",
    }  # fmt: skip
    wrapped = ("image_encoder.sam_img_encoder.", "prompt_encoder.sam_prompt_encoder.")
    assert all(key.startswith(wrapped) for key in state if key.startswith(("image_", "prompt_")))


@pytest.mark.parametrize(
    ("block", "parameters"),
    # torchvision's documented totals (25,557,032 and 21,797,672) minus the classifier.
    [("bottleneck", 25_557_032 - 2048 * 1000 - 1000), ("basic", 21_797_672 - 512 * 1000 - 1000)],
)
def test_resnet_branch_is_torchvisions_without_its_head(block, parameters):
    with torch.device("meta"):
        resnet = ResNetStages(block, (3, 4, 6, 3))
    assert sum(p.numel() for p in resnet.parameters()) == parameters
    assert resnet.channels == (
        (256, 512, 1024, 2048) if block == "bottleneck" else (64, 128, 256, 512)
    )
    torchvision_names = {"conv1.weight": 0, "bn1.running_mean": 0, "layer3.5.conv2.weight": 0,
                         "layer4.0.downsample.1.bias": 0, "fc.weight": 0}  # fmt: skip
    assert set(from_torchvision_names(torchvision_names)) == {
        "stage0.0.weight", "stage0.1.running_mean", "stage3.5.conv2.weight",
        "stage4.0.downsample.1.bias",
    }  # fmt: skip


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(SAMUNET_TEST)


def test_public_layout_loads_strictly(model, tmp_path):
    path = export_model(model, tmp_path / "sam_unet.pth")
    saved = torch.load(path, weights_only=True)
    assert list(saved) == ["model"]  # SAM-UNet's {"model": ...}
    loaded = load_model(path)
    assert loaded.config == SAMUNET_TEST and loaded.provenance["family"] == "SAM-UNet"
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    with pytest.raises(Exception, match="SAM-UNet"):
        load_model({"model": {k: v for k, v in saved["model"].items() if "hf_mlp" not in k}})


def test_outputs_have_the_documented_shapes(model):
    boxes = torch.tensor([[10.0, 20, 120, 200], [0, 0, 255, 255], [40, 40, 90, 60]])
    with torch.no_grad():
        embeddings = model.embed_images(torch.randn(1, 3, 256, 256))
        output = model.decode_with_features(embeddings, boxes=boxes, multimask_output=True)
        masks, iou = model.decode(embeddings, boxes=boxes)
    assert embeddings["image_embeddings"].shape == (1, 256, 16, 16)
    assert embeddings["multi_scale_features"].shape == (1, 32, 64, 64)
    assert output.low_res_logits.shape == (3, 1, 64, 64) and output.iou_predictions is None
    assert output.mask_features.shape == (3, 32, 64, 64)
    assert output.output_tokens.shape == (3, 1, 256)
    assert torch.equal(masks, output.low_res_logits) and iou is None


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma=2.0, alpha=0.25):
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    weight = alpha * target + (1 - alpha) * (1 - target)
    return (weight * (1 - p_t) ** gamma * ce).mean()


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    return (1 - (2 * (p * target).sum(1) + 1) / (p.sum(1) + target.sum(1) + 1)).mean()


def phantom_batch(model):
    cases = []
    for seed in (0, 1):
        image, label, info = make_phantom("ct", shape=(128, 128), seed=seed)
        cases.append(Case(image, label, info["spacing"], None, "ct", f"phantom{seed}"))
    data = ObjectSegmentationDataset(
        cases, n_obj=3, image_size=256, transform=model.config.input_transform()
    )
    return collate_objects([data[0], data[1]])


def test_training_steps_reduce_the_loss_with_the_vit_frozen():
    torch.manual_seed(0)
    model = build_model(SAMUNET_TEST).train()
    apply_freeze_policy(model, "encoder_frozen")  # the samunet preset's policy
    vit_before = {k: v.clone() for k, v in model.image_encoder.state_dict().items()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    named = dict(model.named_parameters())
    assert all(not named[n].requires_grad for n in named if n.startswith("image_encoder."))
    for prefix in (
        "resnet.",
        "adapters_in.",
        "adapters_bridge.",
        "embedding_encoder.",
        "prompt_encoder.",
        "mask_decoder.",
    ):  # SAM-UNet trains all but the ViT
        assert all(named[n].requires_grad for n in named if n.startswith(prefix))

    batch = phantom_batch(model)
    objects = batch["masks"].shape[1]
    targets = batch["masks"].flatten(0, 1)[:, None]  # (B·n, 1, S, S)
    boxes = box_from_masks(targets[:, 0] > 0)
    optimizer = torch.optim.Adam(trainable, lr=1e-4)
    losses = []
    for _ in range(4):
        embeddings = model.embed_images(batch["image"])
        per_object = {k: v.repeat_interleave(objects, dim=0) for k, v in embeddings.items()}
        low_res, _ = model.decode(per_object, boxes=boxes)
        logits = F.interpolate(low_res, size=targets.shape[-2:], mode="bilinear")
        loss = focal_loss(logits, targets) + 20 * dice_loss(logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
    for key, value in model.image_encoder.state_dict().items():
        assert torch.equal(value, vit_before[key]), key
