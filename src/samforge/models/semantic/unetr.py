"""The UNETR-style decoder on SAM's image embedding (MedicoSAM's semantic head).

From the (B, 256, S/16, S/16) embedding ``z`` alone (micro-sam's ``use_skip_connection=False``
layout, which works for any SAM-family encoder, TinyViT included):

- a chain of four 2× deconvolution blocks gives skips at S/8, S/4, S/2 and S;
- ``base`` maps ``z`` to ``widths[0]`` channels; three stages each upsample 2×, concatenate
  the skip of that size and convolve; ``deconv_out`` upsamples to S, the last skip is
  concatenated, ``decoder_head`` and the 1×1 ``out_conv`` give the logits (B, C, S, S).

samforge's default skip widths equal what each stage consumes. torch_em's UNETR (and so
every published MedicoSAM decoder) makes every skip twice as wide as its stage takes and
centre-crops the channels in ``Decoder._concat``; a decoder loaded from such a file keeps
that crop, so it computes what it was trained to compute, but samforge never trains one.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ...errors import CheckpointError
from .blocks import ConvBlock, DeconvBlock, Upsampling, upsampler, upsampling_of

# torch_em's decoder widths (initial_features 64, gain 2, depth 3), reversed.
DECODER_WIDTHS = (512, 256, 128, 64)


@dataclass(frozen=True)
class UNETRLayout:
    """The shapes of one decoder: encoder output width, stage widths, skip widths and the
    upsampler of each part; ``num_classes`` None: no ``out_conv`` (the 3D model fuses the
    features itself)."""

    embed_dim: int = 256
    widths: tuple[int, ...] = DECODER_WIDTHS
    skip_widths: tuple[int, ...] = (256, 128, 64, 64)
    skip_upsampling: Upsampling = "interpolate"
    decoder_upsampling: Upsampling = "interpolate"
    out_upsampling: Upsampling = "interpolate"
    num_classes: int | None = None

    @classmethod
    def with_features(
        cls, features: int, embed_dim: int = 256, num_classes: int | None = None
    ) -> UNETRLayout:
        """samforge's layout with ``features`` channels at full resolution (torch_em's
        ``initial_features``, 64; the stages double it): skips as wide as their stages."""
        widths = (8 * features, 4 * features, 2 * features, features)
        return cls(embed_dim, widths, (*widths[1:], features), num_classes=num_classes)

    @classmethod
    def of_state(cls, state: dict[str, torch.Tensor]) -> UNETRLayout:
        """The layout of a torch_em UNETR ``decoder_state`` (or samforge's)."""
        try:
            skips = tuple(
                int(state[f"{name}.block.1.block.weight"].shape[0])
                for name in ("deconv1", "deconv2", "deconv3", "deconv4")
            )
            stages = [state[f"decoder.blocks.{index}.block.1.weight"] for index in range(3)]
            widths = tuple(int(w.shape[0]) for w in (state["base.block.1.weight"], *stages))
            embed_dim = int(state["base.block.1.weight"].shape[1])
        except KeyError as error:
            raise CheckpointError(
                f"the decoder_state lacks {error}; it is not a UNETR decoder without skip "
                "connections (micro-sam's and MedicoSAM's layout)."
            ) from None
        out = state.get("out_conv.weight")
        return cls(
            embed_dim=embed_dim,
            widths=widths,
            skip_widths=skips,
            skip_upsampling=upsampling_of(state, "deconv1.block.0"),
            decoder_upsampling=upsampling_of(state, "decoder.samplers.0"),
            out_upsampling=upsampling_of(state, "deconv_out"),
            num_classes=None if out is None else int(out.shape[0]),
        )

    def to_dict(self) -> dict:
        return asdict(self)


class StageDecoder(nn.Module):
    """torch_em's ``Decoder``: per stage upsample, concatenate the skip, convolve."""

    def __init__(self, widths: tuple[int, ...], kind: Upsampling) -> None:
        super().__init__()
        pairs = list(itertools.pairwise(widths))
        self.blocks = nn.ModuleList(ConvBlock(wide, narrow) for wide, narrow in pairs)
        self.samplers = nn.ModuleList(upsampler(kind, wide, narrow) for wide, narrow in pairs)

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for block, sampler, skip in zip(self.blocks, self.samplers, skips, strict=True):
            x = sampler(x)
            x = block(torch.cat([x, _centre_channels(skip, x.shape[1])], dim=1))
        return x


def _centre_channels(skip: torch.Tensor, channels: int) -> torch.Tensor:
    """The middle ``channels`` channels of a wider skip (torch_em's crop; see the module
    docstring); a skip of the right width unchanged."""
    if skip.shape[1] == channels:
        return skip
    start = (skip.shape[1] - channels) // 2
    return skip[:, start : start + channels]


class UNETRDecoder(nn.Module):
    """(B, embed_dim, S/16, S/16) embedding -> (B, num_classes, S, S) logits, or the
    (B, widths[-1], S, S) features when the layout has no ``num_classes``."""

    def __init__(self, layout: UNETRLayout) -> None:
        super().__init__()
        self.layout = layout
        inputs = (layout.embed_dim, *layout.skip_widths[:-1])
        self.deconv1, self.deconv2, self.deconv3, self.deconv4 = (
            DeconvBlock(width_in, width_out, layout.skip_upsampling)
            for width_in, width_out in zip(inputs, layout.skip_widths, strict=True)
        )
        self.base = ConvBlock(layout.embed_dim, layout.widths[0])
        self.decoder = StageDecoder(layout.widths, layout.decoder_upsampling)
        last = layout.widths[-1]
        self.deconv_out = upsampler(layout.out_upsampling, last, last)
        self.decoder_head = ConvBlock(2 * last, last)
        self.out_conv = (
            nn.Conv2d(last, layout.num_classes, kernel_size=1) if layout.num_classes else None
        )

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        z9 = self.deconv1(embedding)
        z6 = self.deconv2(z9)
        z3 = self.deconv3(z6)
        z0 = self.deconv4(z3)
        x = self.decoder(self.base(embedding), [z9, z6, z3])
        x = self.decoder_head(torch.cat([self.deconv_out(x), _centre_channels(z0, x.shape[1])], 1))
        return x if self.out_conv is None else self.out_conv(x)
