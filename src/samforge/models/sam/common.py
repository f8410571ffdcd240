"""Small building blocks shared by the encoder and the decoder."""

from __future__ import annotations

import torch
from torch import nn


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a (B, C, H, W) tensor."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Statistics in fp32 even for a bf16 input (a convolution's output under autocast),
        # as autocast does for layer_norm; the result takes the parameters' dtype.
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        mean = x.mean(1, keepdim=True)
        variance = (x - mean).pow(2).mean(1, keepdim=True)
        x = ((x - mean) / torch.sqrt(variance + self.eps)).to(self.weight.dtype)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class MLPBlock(nn.Module):
    """Two linear layers with an activation between them: (..., D) -> (..., D)."""

    def __init__(self, embedding_dim: int, mlp_dim: int, act: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.lin1 = nn.Linear(embedding_dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, embedding_dim)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(self.act(self.lin1(x)))


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU between them: (..., in) -> (..., out)."""

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        num_layers: int,
        sigmoid_output: bool = False,
    ) -> None:
        super().__init__()
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out, strict=True))
        self.sigmoid_output = sigmoid_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.layers) - 1:
                x = torch.relu(x)
        return torch.sigmoid(x) if self.sigmoid_output else x


def encoder_neck(in_chans: int, out_chans: int) -> nn.Sequential:
    """SAM's neck after the image encoder's last tokens (ViT or MobileSAM's TinyViT): 1×1
    convolution, LayerNorm2d, 3×3 convolution, LayerNorm2d, both convolutions without bias:
    (B, in, h, w) -> (B, out, h, w)."""
    return nn.Sequential(
        nn.Conv2d(in_chans, out_chans, kernel_size=1, bias=False),
        LayerNorm2d(out_chans),
        nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
        LayerNorm2d(out_chans),
    )


def upscaling_head(in_channels: int, mid_channels: int, out_channels: int) -> nn.Sequential:
    """Two 2× transposed convolutions with LayerNorm2d and GELU between them:
    (B, in, h, w) -> (B, out, 4h, 4w). The feature heads of RobustSAM and SAM-UNet; SAM's
    own ``output_upscaling`` adds a GELU at the end."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, mid_channels, kernel_size=2, stride=2),
        LayerNorm2d(mid_channels),
        nn.GELU(),
        nn.ConvTranspose2d(mid_channels, out_channels, kernel_size=2, stride=2),
    )


def register_pixel_statistics(module: nn.Module, config) -> None:
    """``pixel_mean``/``pixel_std`` (3, 1, 1) buffers of a model: not persistent, because
    official checkpoints do not hold them (the config does); they also give the model's
    device."""
    for name, values in (("pixel_mean", config.pixel_mean), ("pixel_std", config.pixel_std)):
        module.register_buffer(name, torch.tensor(values).view(-1, 1, 1), persistent=False)
