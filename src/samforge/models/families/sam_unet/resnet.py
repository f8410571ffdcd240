"""The ResNet branch of SAM-UNet: torchvision's ResNet without its head, in five stages.

Blocks keep torchvision's parameter names (``conv1``, ``bn1``, ..., ``downsample.0/1``), so
ImageNet weights saved from torchvision load with :func:`from_torchvision_names`, which only
renames the stem (``conv1``/``bn1`` -> ``stage0.0``/``stage0.1``) and ``layer{i}`` ->
``stage{i}`` as SAM-UNet's code does, and drops the classifier ``fc``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

from ...config import ResNetBlock

_TORCHVISION_RENAMES = (
    (re.compile(r"^conv1\."), "stage0.0."),
    (re.compile(r"^bn1\."), "stage0.1."),
    (re.compile(r"^layer([1-9])\."), r"stage\1."),
)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut(in_channels, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    """1×1, 3×3 (strided, as torchvision's v1.5), 1×1 convolutions with a residual
    (ResNet-50/101/152)."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut(in_channels, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


def shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Sequential | None:
    """torchvision's projection shortcut where the residual changes shape, else None."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
    )


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
}


class ResNetStages(nn.Module):
    """(B, 3, S, S) -> feature maps of stages 1–4 at S/4, S/8, S/16, S/32, with
    :attr:`channels` channels each.

    Args:
        block: ``"basic"`` (ResNet-18/34) or ``"bottleneck"`` (ResNet-50 and deeper).
        layers: blocks per stage, e.g. (3, 4, 6, 3) for ResNet-34 and -50.
        width: channels of the stem and of stage 1's blocks (64 in torchvision).
    """

    def __init__(self, block: ResNetBlock, layers: tuple[int, ...], width: int = 64) -> None:
        super().__init__()
        block_class = BLOCKS[block]
        self.stage0 = nn.Sequential(
            nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        channels, in_channels = [], width
        for index, blocks in enumerate(layers):
            planes, stride = width * 2**index, 1 if index == 0 else 2
            stage = [block_class(in_channels, planes, stride)]
            in_channels = planes * block_class.expansion
            stage += [block_class(in_channels, planes) for _ in range(blocks - 1)]
            self.add_module(f"stage{index + 1}", nn.Sequential(*stage))
            channels.append(in_channels)
        self.channels = tuple(channels)
        _init_like_torchvision(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stage0(x)
        features = []
        for index in range(len(self.channels)):
            x = getattr(self, f"stage{index + 1}")(x)
            features.append(x)
        return features


def from_torchvision_names(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A torchvision ResNet state dict under :class:`ResNetStages`' names (``fc`` dropped)."""
    renamed = {}
    for key, value in state.items():
        if key.startswith("fc."):
            continue
        for pattern, replacement in _TORCHVISION_RENAMES:
            key = pattern.sub(replacement, key)
        renamed[key] = value
    return renamed


def _init_like_torchvision(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)
