"""Architecture configs: a model is a name plus a :class:`SamConfig`.

The numbers of the public ViT-B/L/H models follow the official ``segment_anything`` build
functions; the small configs keep every structural feature (windowed and global attention,
relative positions, padding of windows) at a fraction of the cost, for tests and the
built-in model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from ..errors import ConfigError
from ..preprocessing import SAM_PIXEL_MEAN, SAM_PIXEL_STD, ModelInputTransform

Preprocessing = Literal["sam", "medsam", "sammed2d"]
# The model family the config builds (its record: samforge.models.families): plain SAM,
# RobustSAM (SAM's decoder plus robust output tokens and anti-degradation feature blocks) or
# SAM-UNet (a ResNet branch beside the ViT, one learned token, multi-scale features).
# SAM-Med2D is SAM's family with adapters in the encoder (``encoder_adapter``), which any
# family's encoder can carry. MobileSAM swaps SAM's ViT for a TinyViT (the ``tiny_vit_*``
# fields) and keeps SAM's prompt encoder and decoder.
Family = Literal["sam", "robust", "sam_unet", "mobilesam"]
ResNetBlock = Literal["basic", "bottleneck"]
PREPROCESSING = ("sam", "medsam", "sammed2d")
# Tuple-valued fields beside the ViT's, restored from lists when a config is read back.
_TUPLE_FIELDS = (
    "resnet_layers",
    "tiny_vit_embed_dims",
    "tiny_vit_depths",
    "tiny_vit_num_heads",
    "tiny_vit_window_sizes",
)
# Configs written before SamConfig.decoder was renamed to family (safetensors metadata,
# .provenance.json sidecars, run folders) still read.
_RENAMED_KEYS = {"decoder": "family"}


@dataclass(frozen=True)
class SamConfig:
    """Everything needed to build a SAM-architecture model.

    ``preprocessing`` names the input convention the weights were trained with:
    ``"sam"`` resizes the longest side to ``image_size``, pads bottom/right and normalises
    0–255 RGB with ``pixel_mean``/``pixel_std``; ``"medsam"`` resizes straight to
    ``image_size``², scales min–max to [0, 1] and applies no mean/std; ``"sammed2d"``
    resizes straight to ``image_size``² (nearest neighbour) and normalises with the mean/std.

    Families: ``family`` picks the model built (``"sam"``, ``"robust"``, ``"sam_unet"``;
    see :mod:`samforge.models.families`); ``encoder_adapter`` adds SAM-Med2D's adapter to
    every ViT block (channel gate with hidden width ``adapter_mlp_ratio`` × embed dim); the
    ``resnet_*`` fields describe SAM-UNet's convolutional branch (torchvision's ResNet
    layout: block type, blocks per stage, stem width) and are ignored by the other families;
    the ``tiny_vit_*`` fields describe MobileSAM's TinyViT image encoder (width, blocks, heads
    and attention window per stage; the first stage is convolutional, so its heads and
    window are unused) and replace the ``encoder_*``/``window_size``/``mlp_ratio`` fields,
    which only the ViT reads.
    """

    encoder_embed_dim: int = 768
    encoder_depth: int = 12
    encoder_num_heads: int = 12
    encoder_global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11)
    window_size: int = 14
    patch_size: int = 16
    image_size: int = 1024
    mlp_ratio: float = 4.0
    prompt_embed_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    preprocessing: Preprocessing = "sam"
    pixel_mean: tuple[float, float, float] = field(default=SAM_PIXEL_MEAN)
    pixel_std: tuple[float, float, float] = field(default=SAM_PIXEL_STD)
    family: Family = "sam"
    encoder_adapter: bool = False
    adapter_mlp_ratio: float = 0.25
    resnet_block: ResNetBlock = "bottleneck"
    resnet_layers: tuple[int, ...] = (3, 4, 6, 3)
    resnet_width: int = 64
    tiny_vit_embed_dims: tuple[int, ...] = (64, 128, 160, 320)
    tiny_vit_depths: tuple[int, ...] = (2, 2, 6, 2)
    tiny_vit_num_heads: tuple[int, ...] = (2, 4, 5, 10)
    tiny_vit_window_sizes: tuple[int, ...] = (7, 7, 14, 7)

    def __post_init__(self) -> None:
        small = [
            f"{name} {getattr(self, name)!r}"
            for name, least in _LEAST_VALUES.items()
            if not isinstance(getattr(self, name), int | float) or getattr(self, name) < least
        ]
        if small:
            raise ConfigError(
                f"{', '.join(small)}: sizes, counts and ratios of a model must be positive "
                "numbers (a multimask count may be 0)."
            )
        if self.image_size % self.patch_size:
            raise ConfigError(
                f"image_size {self.image_size} is not a multiple of patch_size "
                f"{self.patch_size}; choose a multiple such as "
                f"{self.image_size // self.patch_size * self.patch_size}."
            )
        if self.encoder_embed_dim % self.encoder_num_heads:
            raise ConfigError(
                f"encoder_embed_dim {self.encoder_embed_dim} is not divisible by "
                f"encoder_num_heads {self.encoder_num_heads}."
            )
        bad = [i for i in self.encoder_global_attn_indexes if not 0 <= i < self.encoder_depth]
        if bad:
            raise ConfigError(
                f"global attention indexes {bad} lie outside the {self.encoder_depth} blocks."
            )
        if self.preprocessing not in PREPROCESSING:
            raise ConfigError(
                f"preprocessing must be one of {PREPROCESSING}, not {self.preprocessing!r}."
            )
        if self.family not in FAMILY_NAMES:
            raise ConfigError(f"family must be one of {FAMILY_NAMES}, not {self.family!r}.")
        if self.encoder_adapter and self.embedding_size % 2:
            raise ConfigError(
                f"SAM-Med2D's adapters halve and re-double the {self.embedding_size}-token grid; "
                f"choose an image_size giving an even grid (a multiple of {2 * self.patch_size})."
            )
        _FAMILY_RULES[self.family](self)

    @property
    def embedding_size(self) -> int:
        """Side of the image embedding grid (64 for SAM at 1024²)."""
        return self.image_size // self.patch_size

    def input_transform(self) -> ModelInputTransform:
        """The mapping from original images and prompts into this model's input frame."""
        return ModelInputTransform(
            self.image_size, self.preprocessing, self.pixel_mean, self.pixel_std
        )

    def with_changes(self, **changes: Any) -> SamConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SamConfig:
        """The config of :meth:`to_dict`'s dict, also as written before renamed keys."""
        values = dict(values)
        for old, new in _RENAMED_KEYS.items():
            if old in values:
                if new in values and values[new] != values[old]:
                    raise ConfigError(
                        f"the config gives both {new}={values[new]!r} and the older name "
                        f"{old}={values[old]!r}; keep only {new}."
                    )
                values[new] = values.pop(old)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown SamConfig keys {unknown}; known keys: {sorted(known)}.")
        for key in ("encoder_global_attn_indexes", "pixel_mean", "pixel_std", *_TUPLE_FIELDS):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


# The least value of each numeric field (a model with a zero size divides by it or is empty).
_LEAST_VALUES: dict[str, float] = {
    **dict.fromkeys(
        (
            "encoder_embed_dim",
            "encoder_depth",
            "encoder_num_heads",
            "window_size",
            "patch_size",
            "image_size",
            "prompt_embed_dim",
            "mask_in_chans",
            "decoder_depth",
            "decoder_mlp_dim",
            "decoder_num_heads",
            "iou_head_depth",
            "iou_head_hidden_dim",
            "resnet_width",
        ),
        1,
    ),
    "num_multimask_outputs": 0,
    "mlp_ratio": 1e-6,
    "adapter_mlp_ratio": 1e-6,
}


def _no_rules(config: SamConfig) -> None:
    """Plain SAM: every SamConfig that passes the common checks builds."""


def _check_robust(config: SamConfig) -> None:
    if not config.encoder_global_attn_indexes:
        raise ConfigError(
            "RobustSAM's decoder reads the tokens after the first global-attention block; "
            "give at least one global block."
        )


def _check_sam_unet(config: SamConfig) -> None:
    # SAM-UNet adds ResNet stage i before global block i and needs one stage per block.
    stages = len(config.resnet_layers)
    if len(config.encoder_global_attn_indexes) != stages:
        raise ConfigError(
            f"SAM-UNet adds one ResNet stage before each global-attention block: "
            f"{stages} stages but global blocks {list(config.encoder_global_attn_indexes)}; "
            "give as many global blocks as ResNet stages (ViT-B: (2, 5, 8, 11))."
        )
    if config.resnet_block not in ("basic", "bottleneck"):
        raise ConfigError(
            f"resnet_block must be 'basic' or 'bottleneck', not {config.resnet_block!r}."
        )
    if config.patch_size & (config.patch_size - 1) or config.patch_size < 4:
        raise ConfigError(
            f"SAM-UNet resamples ResNet stages to the token grid by factors of two; "
            f"patch_size {config.patch_size} must be a power of two (16 for SAM)."
        )
    if config.image_size % 32:
        raise ConfigError(
            f"SAM-UNet's ResNet branch halves the image five times; image_size "
            f"{config.image_size} must be a multiple of 32."
        )


def _check_mobilesam(config: SamConfig) -> None:
    stages = {
        len(values)
        for values in (
            config.tiny_vit_embed_dims,
            config.tiny_vit_depths,
            config.tiny_vit_num_heads,
            config.tiny_vit_window_sizes,
        )
    }
    if stages != {4}:
        raise ConfigError(
            "tiny_vit_embed_dims, tiny_vit_depths, tiny_vit_num_heads and tiny_vit_window_sizes "
            "give one value for each of TinyViT's four stages (whose strides make the S/16 "
            "embedding grid SAM's decoder reads); "
            "MobileSAM's: (64, 128, 160, 320), (2, 2, 6, 2), (2, 4, 5, 10), (7, 7, 14, 7)."
        )
    # Stage 0 is convolutional: its heads and window are placeholders.
    stages_with_attention = zip(
        config.tiny_vit_embed_dims[1:], config.tiny_vit_num_heads[1:], strict=True
    )
    bad = [(dim, heads) for dim, heads in stages_with_attention if heads < 1 or dim % heads]
    if bad:
        raise ConfigError(
            f"TinyViT stage widths must be divisible by their head counts; got (width, heads) "
            f"{bad}."
        )
    if min(config.tiny_vit_window_sizes[1:]) < 1 or config.image_size % 16:
        raise ConfigError(
            f"TinyViT needs windows of at least 1 token and an image_size divisible by 16 "
            f"(its output grid is image_size/16); got windows {config.tiny_vit_window_sizes} "
            f"and image_size {config.image_size}."
        )


# Each family's own constraints on the fields. They sit here rather than in the family
# records (samforge.models.families), which build on this module: a config is checked
# when it is made, before any model exists.
_FAMILY_RULES: dict[str, Callable[[SamConfig], None]] = {
    "sam": _no_rules,
    "robust": _check_robust,
    "sam_unet": _check_sam_unet,
    "mobilesam": _check_mobilesam,
}
FAMILY_NAMES = tuple(_FAMILY_RULES)

VIT_B = SamConfig()
VIT_L = SamConfig(
    encoder_embed_dim=1024,
    encoder_depth=24,
    encoder_num_heads=16,
    encoder_global_attn_indexes=(5, 11, 17, 23),
)
VIT_H = SamConfig(
    encoder_embed_dim=1280,
    encoder_depth=32,
    encoder_num_heads=16,
    encoder_global_attn_indexes=(7, 15, 23, 31),
)
# For tests: every structural feature of SAM (16×16 tokens padded to two 14-wide windows,
# one global block, full-size prompt encoder and decoder) in a few hundred kB of encoder.
VIT_TEST = SamConfig(
    encoder_embed_dim=64,
    encoder_depth=2,
    encoder_num_heads=2,
    encoder_global_attn_indexes=(1,),
    image_size=256,
)

# samforge_nano: a 7.2M-parameter encoder (256 wide, 8 blocks, 4 global) at 256² with SAM's
# full prompt encoder and decoder; windows of 8 tile the 16×16 token grid without padding.
VIT_NANO = SamConfig(
    encoder_embed_dim=256,
    encoder_depth=8,
    encoder_num_heads=8,
    encoder_global_attn_indexes=(1, 3, 5, 7),
    window_size=8,
    image_size=256,
)

ARCHITECTURES: dict[str, SamConfig] = {
    "vit_b": VIT_B,
    "vit_l": VIT_L,
    "vit_h": VIT_H,
    "vit_test": VIT_TEST,
    "vit_nano": VIT_NANO,
    # RobustSAM: SAM's encoders with RobustSAM's decoder (its published B/L/H checkpoints).
    "robustsam_vit_b": VIT_B.with_changes(family="robust"),
    "robustsam_vit_l": VIT_L.with_changes(family="robust"),
    "robustsam_vit_h": VIT_H.with_changes(family="robust"),
    # SAM-Med2D: ViT-B with adapters at 256² (16×16 tokens), its own preprocessing.
    "sammed2d_vit_b": VIT_B.with_changes(
        encoder_adapter=True, image_size=256, preprocessing="sammed2d"
    ),
    # SAM-UNet: frozen ViT-B at 256² beside a ResNet-50 or ResNet-34 branch.
    "samunet_res50_vit_b": VIT_B.with_changes(family="sam_unet", image_size=256),
    "samunet_res34_vit_b": VIT_B.with_changes(
        family="sam_unet", image_size=256, resnet_block="basic", resnet_layers=(3, 4, 6, 3)
    ),
    # MobileSAM: TinyViT-5M (MobileSAM's build_sam_vit_t) with SAM's prompt encoder and
    # decoder at 1024²; micro-sam's vit_t models share it.
    "vit_t": SamConfig(family="mobilesam"),
}

# Official checkpoints carry no config: the encoder width identifies the architecture.
ARCHITECTURE_BY_EMBED_DIM = {768: "vit_b", 1024: "vit_l", 1280: "vit_h"}


def get_config(name: str) -> SamConfig:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ConfigError(
            f"unknown architecture {name!r}; choose one of {sorted(ARCHITECTURES)}."
        ) from None
