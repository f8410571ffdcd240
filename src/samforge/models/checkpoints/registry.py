"""The registry of named models: where each checkpoint lives and how to run it.

Like ``timm``'s registry, a model is a name plus a small record; ``load_model(name)``
looks the name up, fetches the file into the cache (:mod:`samforge.models.checkpoints.hub`) and
builds the architecture. New families register their entries with :func:`register_model`
when their architecture arrives.

Checksums are written ``"<algorithm>:<hex digest>"`` (``sha256``, ``md5`` or ``xxh128``),
the convention of ``pooch``. Each entry says in ``checksum_source`` who published it:
Meta publishes no checksum for SAM (its file names end in the first six hex digits of the
files' MD5), so the SAM SHA-256 values are the ones recorded by independent projects,
including micro-sam's earlier registry; micro-sam/medico-sam publish xxh128 only.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field, replace
from typing import Literal

from ...errors import ModelNotFoundError
from ..config import Preprocessing, SamConfig, get_config

Init = Literal["checkpoint", "random", "package"]
HASH_ALGORITHMS = ("sha256", "md5", "xxh128")


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to fetch and run one named model.

    Attributes:
        name: registry name, e.g. ``"sam_vit_b"``.
        architecture: key of :data:`samforge.models.config.ARCHITECTURES`.
        input_size: side of the square model input the weights were trained at.
        preprocessing: ``"sam"``, ``"medsam"`` or ``"sammed2d"`` (see :class:`SamConfig`).
        url: where the checkpoint is published (``None`` for built-in random models).
        checksum: ``"<algorithm>:<hex>"`` of the file, or ``None`` where none is published.
        checksum_source: who published the checksum, so it can be checked independently.
        filename: name of the file in the cache.
        format: checkpoint layout, as :func:`read_checkpoint` names it (``"bare"``, ...).
        family: model family (``"SAM"``, ``"MedSAM"``, ``"RobustSAM"``, ``"SAM-Med2D"``, ...).
        description: one line for ``samforge models list``.
        licence: licence of the weights.
        init: ``"checkpoint"`` (weights from ``url``), ``"package"`` (trained weights shipped
            inside samforge, ``samforge/weights/<filename>``) or ``"random"`` (built-in,
            untrained).
        homepage: the project that published the weights.
    """

    name: str
    architecture: str
    input_size: int
    preprocessing: Preprocessing
    url: str | None
    checksum: str | None
    checksum_source: str
    filename: str | None
    format: str
    family: str
    description: str
    licence: str
    init: Init = "checkpoint"
    homepage: str = ""
    aliases: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        get_config(self.architecture)  # fails early on an unknown architecture
        if self.init not in ("checkpoint", "random", "package"):
            raise ValueError(f"{self.name}: init must be 'checkpoint', 'package' or 'random'")
        if self.init == "checkpoint" and not (self.url and self.filename):
            raise ValueError(f"{self.name}: a checkpoint model needs a url and a filename")
        if self.init == "package" and not (self.filename and self.checksum):
            raise ValueError(f"{self.name}: a packaged model needs a filename and a checksum")
        if self.checksum is not None:
            algorithm, _, digest = self.checksum.partition(":")
            if algorithm not in HASH_ALGORITHMS or not digest:
                raise ValueError(
                    f"{self.name}: checksum must read '<algorithm>:<hex>' with algorithm in "
                    f"{HASH_ALGORITHMS}, got {self.checksum!r}"
                )

    @property
    def config(self) -> SamConfig:
        """The architecture at this model's input size and preprocessing convention."""
        return get_config(self.architecture).with_changes(
            image_size=self.input_size, preprocessing=self.preprocessing
        )

    @property
    def is_built_in(self) -> bool:
        """Nothing to download: shipped with samforge (trained) or randomly initialised."""
        return self.init in ("random", "package")

    @property
    def checksum_algorithm(self) -> str | None:
        return None if self.checksum is None else self.checksum.partition(":")[0]

    @property
    def checksum_digest(self) -> str | None:
        return None if self.checksum is None else self.checksum.partition(":")[2].lower()


_REGISTRY: dict[str, ModelSpec] = {}
_ALIASES: dict[str, str] = {}


def register_model(spec: ModelSpec, *, overwrite: bool = False) -> ModelSpec:
    """Add a model to the registry; returns the spec so it can be used as a constant."""
    names = (spec.name, *spec.aliases)
    if not overwrite:
        taken = [name for name in names if name in _REGISTRY or name in _ALIASES]
        if taken:
            raise ValueError(f"model name(s) {taken} already registered; pass overwrite=True")
    _REGISTRY[spec.name] = spec
    for alias in spec.aliases:
        _ALIASES[alias] = spec.name
    return spec


def is_registered(name: str) -> bool:
    return name in _REGISTRY or name in _ALIASES


def get_model_spec(name: str) -> ModelSpec:
    """The spec of a registered model; raises :class:`ModelNotFoundError` with suggestions."""
    name = _ALIASES.get(name, name)
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, [*_REGISTRY, *_ALIASES], n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ModelNotFoundError(
            f"{name!r} is not a registered model.{hint} Registered models: "
            f"{', '.join(sorted(_REGISTRY))} (see `samforge models list`); "
            "or pass the path of a checkpoint file."
        ) from None


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names in registration order, optionally filtered by a glob."""
    names = list(_REGISTRY)
    if pattern is not None:
        names = [name for name in names if fnmatch.fnmatch(name, pattern)]
    return names


# --- Public models --------------------------------------------------------------------

_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
_SAM_CHECKSUM_SOURCE = (
    "SHA-256 as recorded by micro-sam's earlier registry and other independent projects; Meta "
    "publishes none. The file name's 6-hex suffix is the start of the file's MD5 ({md5})."
)


def _unpublished_checksum(authors: str) -> str:
    return (
        f"none published by the {authors} authors; `samforge models fetch` prints the SHA-256 "
        "of what it downloaded so it can be recorded"
    )


def _sam_spec(architecture: str, sha256: str, md5: str, size: str) -> ModelSpec:
    """One of Meta's three SAM checkpoints; the file name carries the MD5's first 6 hex."""
    filename = f"sam_{architecture}_{md5[:6]}.pth"
    return ModelSpec(
        name=f"sam_{architecture}",
        architecture=architecture,
        input_size=1024,
        preprocessing="sam",
        url=_SAM_URL + filename,
        checksum=f"sha256:{sha256}",
        checksum_source=_SAM_CHECKSUM_SOURCE.format(md5=md5),
        filename=filename,
        format="bare",
        family="SAM",
        description=f"Segment Anything {size} (Meta), natural images.",
        licence="Apache-2.0",
        homepage="https://github.com/facebookresearch/segment-anything",
    )


register_model(
    _sam_spec(
        "vit_b",
        "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
        "01ec64d29a2fca3f0661936605ae66f8",
        "ViT-B",
    )
)
register_model(
    _sam_spec(
        "vit_l",
        "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
        "0b3195507c641ddb6910d2bb5adee89c",
        "ViT-L",
    )
)
register_model(
    _sam_spec(
        "vit_h",
        "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
        "4b8939a88964f0f4ff5f5b2642c598a6",
        "ViT-H",
    )
)
register_model(
    ModelSpec(
        name="medsam_vit_b",
        architecture="vit_b",
        input_size=1024,
        preprocessing="medsam",
        # The MedSAM README links a Google Drive folder, which urllib cannot download; the
        # Zenodo record holds the same medsam_vit_b.pth as a direct link.
        url="https://zenodo.org/records/10689643/files/medsam_vit_b.pth",
        checksum=None,
        checksum_source=_unpublished_checksum("MedSAM"),
        filename="medsam_vit_b.pth",
        format="bare",
        family="MedSAM",
        description="MedSAM (Ma et al. 2024): SAM ViT-B fine-tuned on 1.5M medical image-mask "
        "pairs with box prompts; MedSAM preprocessing.",
        licence="Apache-2.0",
        homepage="https://github.com/bowang-lab/MedSAM",
    )
)
register_model(
    ModelSpec(
        name="medicosam_vit_b",
        architecture="vit_b",
        input_size=1024,
        preprocessing="sam",
        # micro-sam's model registry, entry "vit_b_medical_imaging" (also medico_sam/util.py).
        url="https://owncloud.gwdg.de/index.php/s/f5Ol4FrjPQWfjUF/download",
        checksum="xxh128:40169f1e3c03a4b67bff58249c176d92",
        checksum_source="xxh128 from micro-sam's pooch registry (vit_b_medical_imaging); "
        "verifying it needs the `xxhash` package",
        filename="medicosam_vit_b.pt",
        format="bare",
        family="MedicoSAM",
        description="MedicoSAM (Archit et al. 2025): SAM ViT-B fine-tuned with iterative "
        "prompting on medical images; exported in the official format.",
        licence="MIT",
        homepage="https://github.com/computational-cell-analytics/medico-sam",
        aliases=("vit_b_medical_imaging",),
    )
)
_ROBUSTSAM_URL = "https://huggingface.co/robustsam/robustsam/resolve/main/model_checkpoint/"


def _robustsam_spec(size: str, label: str) -> ModelSpec:
    """One of RobustSAM's three checkpoints, as linked from its README."""
    filename = f"robustsam_checkpoint_{size}.pth"
    return ModelSpec(
        name=f"robustsam_vit_{size}",
        architecture=f"robustsam_vit_{size}",
        input_size=1024,
        preprocessing="sam",
        url=_ROBUSTSAM_URL + filename,
        checksum=None,
        checksum_source=_unpublished_checksum("RobustSAM"),
        filename=filename,
        format="bare",
        family="RobustSAM",
        description=f"RobustSAM {label} (Chen et al., CVPR 2024): SAM with a decoder trained "
        "for degraded images (robust output tokens, anti-degradation feature blocks).",
        licence="MIT",
        homepage="https://github.com/robustsam/RobustSAM",
    )


register_model(_robustsam_spec("b", "ViT-B"))
register_model(_robustsam_spec("l", "ViT-L"))
register_model(_robustsam_spec("h", "ViT-H"))
# RobustMedSAM's release: its train_ddp.py saves the DistributedDataParallel model's
# state_dict, so the file is a bare RobustSAM ViT-B state dict whose keys start with
# "module." (read_checkpoint strips the prefix). Its predictor feeds the model SAM's way.
register_model(
    ModelSpec(
        name="robustmedsam_vit_b",
        architecture="robustsam_vit_b",
        input_size=1024,
        preprocessing="sam",
        url="https://github.com/jli2556/RobustMedSAM/releases/download/v1.0.0/"
        "robustmedsam_best.pth",
        checksum=None,
        checksum_source=_unpublished_checksum("RobustMedSAM"),
        filename="robustmedsam_best.pth",
        format="bare",
        family="RobustSAM",
        description="RobustMedSAM (Li et al., CVPRW 2026): MedSAM's encoders with "
        "RobustSAM's decoder, the decoder fine-tuned on clean/degraded MedSegBench pairs.",
        licence="MIT",
        homepage="https://github.com/jli2556/RobustMedSAM",
    )
)
register_model(
    ModelSpec(
        name="sammed2d_vit_b",
        architecture="sammed2d_vit_b",
        input_size=256,
        preprocessing="sammed2d",
        # The README's Google Drive file (id below); Drive puts large files behind a
        # confirmation page, which fetch refuses: then download it by hand into the cache.
        url="https://drive.google.com/uc?export=download&id=1ARiB5RkSsWmAB_8mqWnwDF8ZKTtFwsjl",
        checksum=None,
        checksum_source=_unpublished_checksum("SAM-Med2D"),
        filename="sam-med2d_b.pth",
        format="model",
        family="SAM-Med2D",
        description="SAM-Med2D (Cheng et al. 2023): SAM ViT-B with encoder adapters, "
        "fine-tuned on SA-Med2D-20M at 256²; its own preprocessing.",
        licence="Apache-2.0",
        homepage="https://github.com/OpenGVLab/SAM-Med2D",
        aliases=("sam-med2d_b",),
    )
)
# SAM-UNet's authors publish code (Hhankyangg/sam-unet) but no weights: its architectures
# (samforge.models.config: samunet_res50_vit_b, samunet_res34_vit_b) load local files.
register_model(
    ModelSpec(
        name="samforge_random_tiny",
        architecture="vit_test",
        input_size=256,
        preprocessing="sam",
        url=None,
        checksum=None,
        checksum_source="built in: nothing to download",
        filename=None,
        format="random",
        family="samforge",
        description="UNTRAINED, randomly initialised tiny SAM (seeded) for pipeline checks "
        "and demos; its masks mean nothing.",
        licence="Apache-2.0",
        init="random",
    )
)

# samforge's own model, trained from scratch by configs/recipes/samforge_nano.yaml and
# shipped inside the package (docs/samforge_nano.md is its model card). Each version keeps
# its own name; ``samforge_nano`` is the version that meets the model card's goals best:
# v2 since it met or beat v1 on every goal of the card (issue 19).
SAMFORGE_NANO_V1 = ModelSpec(
    name="samforge_nano_v1",
    architecture="vit_nano",
    input_size=256,
    preprocessing="sam",
    url=None,
    checksum="sha256:e549301518faaaf2813f4284c5b2b723eeeada15b49e94d5f0b93789ee7f6f8f",
    checksum_source="samforge: computed by `samforge models export` when the weights were "
    "written (docs/samforge_nano.md)",
    filename="samforge_nano.pth",
    format="bare",
    family="samforge",
    description="samforge's small SAM, version 1 (11.3M parameters, 256² input) trained "
    "from scratch on phantoms, HC18 and TotalSegmentator CT. A demonstration model: see "
    "docs/samforge_nano.md.",
    licence="Apache-2.0 (trained on CC BY 4.0 data: HC18, TotalSegmentator)",
    init="package",
    homepage="docs/samforge_nano.md",
)
register_model(SAMFORGE_NANO_V1)
SAMFORGE_NANO_V2 = replace(
    SAMFORGE_NANO_V1,
    name="samforge_nano_v2",
    checksum="sha256:c3e9760a387be8a83d045a6e8aded1f46d10c46736ac8dd345238771a508b8a5",
    filename="samforge_nano_v2.pth",
    description="samforge's small SAM, version 2: v1 trained on by "
    "configs/recipes/samforge_nano_v2.yaml (2,100 steps) for 3D propagation beside the 2D "
    "objective. A demonstration model: see docs/samforge_nano.md.",
)
register_model(SAMFORGE_NANO_V2)
register_model(
    replace(
        SAMFORGE_NANO_V2,
        name="samforge_nano",
        description="samforge's small SAM (today version 2, samforge_nano_v2: 11.3M "
        "parameters, 256² input) trained on phantoms, 3D phantoms, HC18 and "
        "TotalSegmentator CT; the demo's default. A demonstration model: see "
        "docs/samforge_nano.md.",
    )
)

__all__ = [
    "HASH_ALGORITHMS",
    "ModelSpec",
    "get_model_spec",
    "is_registered",
    "list_models",
    "register_model",
]
