"""SAM's two-way transformer: prompt tokens attend to the image and the image attends
back to the tokens."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import SamConfig
from .common import MLPBlock


class TwoWayTransformer(nn.Module):
    def __init__(
        self,
        depth: int,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int,
        attention_downsample_rate: int = 2,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(
                embedding_dim=embedding_dim,
                num_heads=num_heads,
                mlp_dim=mlp_dim,
                attention_downsample_rate=attention_downsample_rate,
                skip_first_layer_pe=index == 0,
            )
            for index in range(depth)
        )
        self.final_attn_token_to_image = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    @classmethod
    def from_config(cls, config: SamConfig) -> TwoWayTransformer:
        return cls(
            depth=config.decoder_depth,
            embedding_dim=config.prompt_embed_dim,
            num_heads=config.decoder_num_heads,
            mlp_dim=config.decoder_mlp_dim,
        )

    def forward(
        self,
        image_embedding: torch.Tensor,
        image_pe: torch.Tensor,
        point_embedding: torch.Tensor,
        own_image: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            image_embedding: (B or 1, C, h, w); batch 1 is one image shared by all B
                prompts (computed once until the prompts make the image tokens differ).
            image_pe: (B or 1, C, h, w) positional encoding of the grid.
            point_embedding: (B, N, C) prompt tokens (and output tokens).
            own_image: image_embedding is the caller's temporary, which the transformer
                may overwrite.

        Returns:
            tokens (B, N, C) and image features (B, h·w, C).
        """
        # Contiguous once here, rather than copied by every projection of a strided view.
        keys = image_embedding.flatten(2).transpose(1, 2).contiguous()
        key_pe = image_pe.flatten(2).transpose(1, 2).contiguous()
        queries = point_embedding
        for index, layer in enumerate(self.layers):
            # After the first layer the keys are this pass's own tensor (a LayerNorm's output),
            # which the next layer may update in place.
            queries, keys = layer(
                queries,
                keys,
                query_pe=point_embedding,
                key_pe=key_pe,
                own_keys=own_image or index > 0,
            )
        attended = self.final_attn_token_to_image.tokens_to_image(
            queries + point_embedding, keys + key_pe, keys
        )
        keys = keys.expand(queries.shape[0], -1, -1)  # a batch-1 image stays shared until here
        return self.norm_final_attn(queries + attended), keys


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, token→image cross-attention, token MLP, image→token
    cross-attention; each followed by a residual and a LayerNorm."""

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int,
        attention_downsample_rate: int,
        skip_first_layer_pe: bool,
    ) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim, act=nn.ReLU)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        query_pe: torch.Tensor,
        key_pe: torch.Tensor,
        own_keys: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N, C) queries and (B or 1, L, C) keys -> updated (B, N, C) and (B, L, C).
        ``own_keys``: keys belong to the caller's pass alone and may be overwritten."""
        if self.skip_first_layer_pe:
            # The first layer's queries are the prompt embeddings themselves, which already
            # hold their positions.
            queries = self.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q=q, k=q, v=queries)
        queries = self.norm1(queries)

        # keys (and so k) are unchanged until the last step: one sum serves both attentions.
        k = keys + key_pe
        attended = self.cross_attn_token_to_image.tokens_to_image(queries + query_pe, k, keys)
        queries = self.norm2(queries + attended)
        queries = self.norm3(queries + self.mlp(queries))

        q = queries + query_pe
        keys = self.norm4(
            self.cross_attn_image_to_token.image_to_tokens(
                k, q, queries, residual=keys, in_place=own_keys
            )
        )
        return queries, keys


class Attention(nn.Module):
    """Multi-head attention whose projections may shrink the width by ``downsample_rate``."""

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads:
            raise ValueError("num_heads must divide embedding_dim / downsample_rate.")
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.v_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, channels = x.shape
        return x.reshape(batch, tokens, self.num_heads, channels // self.num_heads).transpose(1, 2)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """(B, Nq, C), (B, Nk, C), (B, Nk, C) -> (B, Nq, C)."""
        q = self._split_heads(self.q_proj(q))
        k = self._split_heads(self.k_proj(k))
        v = self._split_heads(self.v_proj(v))
        out = F.scaled_dot_product_attention(q, k, v)
        batch, _, tokens, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(batch, tokens, self.internal_dim))

    # The two methods below compute ``forward`` for SAM's cross-attentions, where one side
    # has a few tokens (prompts, N ≈ 7) and the other thousands (image, L = h·w). The
    # projections of the image side are folded into the few tokens instead
    # ((x W_k^T)·q = x·(W_k q)), which turns the (L × C) @ (C × C') projections into
    # products with (heads·N) columns, and never materialises (B, L, C') projections.
    # The same values as ``forward`` within float rounding. Used without autograd only
    # (inference); with autograd they run ``forward`` itself (see ``_foldable``).

    def tokens_to_image(
        self, queries: torch.Tensor, image_keys: torch.Tensor, image_values: torch.Tensor
    ) -> torch.Tensor:
        """``forward(queries, image_keys, image_values)``.

        Args:
            queries: (B, N, C) tokens.
            image_keys, image_values: (B or 1, L, C); batch 1 is shared by all B queries.

        Returns:
            (B, N, C).
        """
        batch, count, channels = queries.shape
        if not self._foldable():
            shared = (batch, -1, -1)
            return self(q=queries, k=image_keys.expand(shared), v=image_values.expand(shared))
        if not self._fold_pays(batch, count, image_keys.shape[0], channels):
            return self._project_once(queries, image_keys, image_values)
        heads, width = self.num_heads, self.internal_dim // self.num_heads
        q = self.q_proj(queries).unflatten(-1, (heads, width))  # (B, N, heads, width)
        # q·b_k is the same for every image token: softmax ignores it.
        folded = torch.einsum("bnhd,hdc->bhnc", q, self._heads(self.k_proj.weight, channels))
        folded = folded.reshape(batch, heads * count, channels) * width**-0.5
        scores = _shared_bmm(folded, image_keys.transpose(1, 2))  # (B, heads·N, L)
        mixed = _shared_bmm(scores.softmax(dim=-1), image_values)  # (B, heads·N, C)
        # Attention rows sum to 1, so the value bias passes through unchanged.
        out = torch.einsum(
            "bhnc,hdc->bnhd",
            mixed.view(batch, heads, count, channels),
            self._heads(self.v_proj.weight, channels),
        )
        out = out.reshape(batch, count, self.internal_dim)
        if self.v_proj.bias is not None:
            out = out + self.v_proj.bias
        return self.out_proj(out)

    def image_to_tokens(
        self,
        image_queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        residual: torch.Tensor | None = None,
        in_place: bool = False,
    ) -> torch.Tensor:
        """``residual + forward(image_queries, keys, values)`` (no residual: 0).

        Args:
            image_queries: (B or 1, L, C); batch 1 is shared by all B token sets.
            keys, values: (B, N, C) tokens.
            residual: (B or 1, L, C) added to the result inside its last matrix product,
                which saves a pass over the (B, L, C) image tokens.
            in_place: the sum may be written into ``residual`` (a (B, L, C) tensor that
                nothing else reads), which saves copying it into a new one.

        Returns:
            (B, L, C).
        """
        batch, count, channels = keys.shape
        if not self._foldable():
            attended = self(q=image_queries.expand(batch, -1, -1), k=keys, v=values)
            return attended if residual is None else residual + attended
        heads, width = self.num_heads, self.internal_dim // self.num_heads
        k = self.k_proj(keys).unflatten(-1, (heads, width))  # (B, N, heads, width)
        v = self.v_proj(values).unflatten(-1, (heads, width))
        scale = width**-0.5
        folded = torch.einsum("bnhd,hdc->bhnc", k, self._heads(self.q_proj.weight, channels))
        folded = folded.reshape(batch, heads * count, channels) * scale
        scores = _shared_bmm(folded, image_queries.transpose(1, 2))  # (B, heads·N, L)
        scores = scores.view(batch, heads, count, -1)
        if self.q_proj.bias is not None:  # b_q·k differs between tokens: it stays
            bias = torch.einsum("bnhd,hd->bhn", k, self.q_proj.bias.view(heads, width))
            scores = scores + (bias * scale).unsqueeze(-1)
        probs = scores.softmax(dim=2).reshape(batch, heads * count, -1)  # over each head's N
        # out_proj folded into the values: Σ_h P_h (v_h W_o,h^T) + b_o. Each head's
        # probabilities sum to 1, so b_o / heads on every value row adds exactly b_o, without
        # a pass over the (B, L, C) output.
        out_weight = self.out_proj.weight.view(-1, heads, width)  # (C, heads, width)
        values_out = torch.einsum("bnhd,chd->bhnc", v, out_weight)
        if self.out_proj.bias is not None:
            values_out = values_out + self.out_proj.bias / heads
        values_out = values_out.reshape(batch, -1, channels)
        if residual is None:
            return probs.transpose(1, 2) @ values_out  # (B, L, C)
        if in_place and residual.shape[0] == batch and eager_inference():
            return residual.baddbmm_(probs.transpose(1, 2), values_out)
        return torch.baddbmm(residual, probs.transpose(1, 2), values_out)

    def _fold_pays(self, batch: int, count: int, image_batch: int, channels: int) -> bool:
        """Whether :meth:`tokens_to_image` should fold rather than project the image side.

        Multiply-adds per image token: the fold takes 2·B·heads·N·C (scores and mixing at
        full width); projecting takes 2·B'·C·C' for the keys and values of the B' images,
        then 2·B·N·C' for the attention. A shared image (B' = 1) and several prompts, or
        many tokens (late correction rounds of the interactive protocol), favour projecting.
        (:meth:`image_to_tokens` always folds: there the fold also saves the per-prompt
        output projection of the L image tokens, and it measured faster.)"""
        fold = batch * self.num_heads * count * channels
        project = image_batch * channels * self.internal_dim + batch * count * self.internal_dim
        return fold <= project

    def _project_once(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``forward`` where any of q, k, v may have batch 1 for all B: a shared (image)
        side is projected once, not once per prompt. (B or 1, N, C) each -> (B, Nq, C)."""
        batch = max(q.shape[0], k.shape[0])
        q, k, v = (
            self._split_heads(projection(x)).expand(batch, -1, -1, -1)
            for projection, x in ((self.q_proj, q), (self.k_proj, k), (self.v_proj, v))
        )
        out = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(out.transpose(1, 2).reshape(batch, -1, self.internal_dim))

    def _foldable(self) -> bool:
        """Whether to fold: only without autograd, and only plain linear layers.

        Training keeps the plain computation: the fold drops the key bias of
        ``tokens_to_image`` (softmax ignores it), so that bias would get no gradient and no
        weight decay, unlike in the official code. A wrapped layer (e.g. with a low-rank
        delta) has more than ``.weight``."""
        if torch.is_grad_enabled():
            return False
        return all(
            type(layer) is nn.Linear
            for layer in (self.q_proj, self.k_proj, self.v_proj, self.out_proj)
        )

    def _heads(self, weight: torch.Tensor, channels: int) -> torch.Tensor:
        """(internal_dim, C) projection weight -> (heads, width, C)."""
        return weight.view(self.num_heads, -1, channels)


def _shared_bmm(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """(B, M, K) @ (B or 1, K, P) -> (B, M, P); a batch-1 ``right`` is shared as one large
    product rather than B small ones."""
    if right.shape[0] == 1 and left.shape[0] > 1:
        batch, rows, inner = left.shape
        return (left.reshape(1, batch * rows, inner) @ right).view(batch, rows, -1)
    return left @ right


def eager_inference() -> bool:
    """Whether tensors may be written in place or through ``out=``: no autograd, and no
    tracer or compiler recording the graph (ONNX export, ``torch.compile``)."""
    return not (torch.is_grad_enabled() or torch.jit.is_tracing() or torch.compiler.is_compiling())
