"""The training config: one YAML file, validated completely before any heavy work.

A config may start from a preset (``extends: medicosam``, or a path to another YAML file)
and override any key; nested sections merge key by key. Unknown keys, values of the wrong
type or range and missing data folders raise :class:`ConfigError` naming the key, e.g.
``objective.p_box: Input should be less than or equal to 1``.

Presets (``src/samforge/configs/*.yaml``, also under ``configs/`` in the repository):
``medsam``, ``simpleft``, ``medicosam`` (MedicoSAM's three objectives), ``robust``
(RobustMedSAM's decoder-only training on clean/degraded pairs), ``samunet`` (SAM-UNet
around a SAM checkpoint), ``semantic2d`` and ``semantic3d`` (MedicoSAM's semantic models:
a UNETR decoder on a SAM encoder; in 3D with MA-SAM's depth adapters).

The ``objective`` section is validated by the settings of its kind, each registered in
:mod:`samforge.training.objectives`; configs never branch on the kind themselves.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    SerializeAsAny,
    ValidationError,
    model_validator,
)

from ..errors import ConfigError
from .freeze import POLICIES
from .imagenet import resnet_weights_hint
from .objectives import OBJECTIVES, ObjectiveSettings, objective_class
from .volume_config import VolumeSlicesConfig

PRESETS = ("medsam", "simpleft", "medicosam", "robust", "samunet", "semantic2d", "semantic3d")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSource(_Section):
    """A dataset on disk (any layout ``samforge.data.open_dataset`` reads), one image with
    its label file (``image`` + ``label``: a NIfTI volume, a DICOM series folder, a PNG...),
    or generated phantoms.

    ``split`` picks a named split (MedSegBench: train/val/test, SA-Med2D-20M: its index
    files' splits, nnU-Net: train/test); by default a training source reads ``train`` and a
    validation source ``val`` where the dataset has it (never MedSegBench's test arrays)."""

    path: Path | None = None
    image: Path | None = None
    label: Path | None = None
    layout: str = "auto"
    split: str | None = None
    modality: str | None = None
    subjects: list[str] | None = None  # keep only these subject ids
    phantoms: list[str] | None = None  # modalities of generated phantoms instead of files
    count: int = Field(8, ge=1)  # phantoms per modality
    shape: tuple[int, int] | tuple[int, int, int] = (128, 128)  # (D, H, W): volumes
    seed: int = 0

    @model_validator(mode="after")
    def _one_kind(self) -> DataSource:
        kinds = [self.path is not None, self.image is not None, self.phantoms is not None]
        if sum(kinds) != 1 or (self.image is None) != (self.label is None):
            raise ValueError(
                "give exactly one of `path` (a dataset folder), `image` with `label` (one "
                "case) or `phantoms` (modalities)"
            )
        return self


class DataConfig(_Section):
    train: list[DataSource] = Field(min_length=1)
    val: list[DataSource] = []
    n_obj: int = Field(5, ge=1)
    min_size: int = Field(20, ge=1)
    connectivity: Literal[1, 2] = 2  # objects: 8-connected (2, medico-sam's) or 4 (1)
    classes: list[int] | None = None
    intensity: str = "auto"
    window: str | tuple[float, float] | None = None
    batch_size: int = Field(1, ge=1)
    num_workers: int = Field(0, ge=0)
    degradations: list[str] | None = None  # corruption names or groups (and "clear"); robust
    severity: int = Field(3, ge=1, le=5)
    # MedicoSAM's; SAM-Med2D/SAM-UNet's (n_obj draws); RobustMedSAM's (the largest only)
    object_sampling: Literal["without_replacement", "with_replacement", "largest"] = (
        "without_replacement"
    )
    allow_overlap: bool = False  # let val sources share cases with train sources
    volumes: VolumeSlicesConfig | None = None  # slices prompted from their neighbour (3D)


DEFAULT_OBJECTIVE = "iterative"


def _objective_settings(values: Any) -> ObjectiveSettings:
    """The ``objective`` section, validated by the settings of its kind (registered in
    :data:`~samforge.training.objectives.OBJECTIVES`). ``kind`` defaults to iterative; keys
    that only other kinds know are dropped, since a config may extend a preset of another
    kind (the robust preset extends medicosam)."""
    if isinstance(values, ObjectiveSettings):
        return values
    if not isinstance(values, dict):
        raise ValueError("give the objective's settings as a mapping, e.g. {kind: iterative}")
    kind = values.get("kind", DEFAULT_OBJECTIVE)
    if not isinstance(kind, str) or kind not in OBJECTIVES:
        raise ValueError(f"unknown objective kind {kind!r}; choose one of {list(OBJECTIVES)}")
    own = OBJECTIVES[kind].settings_type
    others = {key for o in OBJECTIVES.values() for key in o.settings_type.model_fields}
    others -= set(own.model_fields)
    return own.model_validate({"kind": kind} | {k: v for k, v in values.items() if k not in others})


ObjectiveSection = Annotated[SerializeAsAny[ObjectiveSettings], PlainValidator(_objective_settings)]


class FreezeConfig(_Section):
    policy: str = "full"
    blocks: list[int] | None = None
    trainable: list[str] | None = None
    frozen: list[str] | None = None

    @model_validator(mode="after")
    def _known_policy(self) -> FreezeConfig:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; choose one of {list(POLICIES)}")
        return self


class PeftConfig(_Section):
    kind: Literal["none", "lora", "svd"] = "none"
    rank: int = Field(4, ge=1)
    alpha: float | None = None
    include_mlp: bool = False
    blocks: list[int] | None = None
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


class OptimizerConfig(_Section):
    name: Literal["adamw", "adam"] = "adamw"
    lr: float = Field(1e-5, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    # multiplied into the LR after every epoch, or only at the epochs of lr_milestones
    lr_decay: float = Field(0.9, gt=0.0, le=1.0)
    lr_milestones: list[int] | None = None  # e.g. [5, 10]: SAM-UNet's MultiStepLR
    grad_clip: float | None = Field(None, gt=0.0)

    @model_validator(mode="after")
    def _increasing_milestones(self) -> OptimizerConfig:
        milestones = self.lr_milestones
        if milestones is not None and (
            not milestones or min(milestones) < 1 or sorted(set(milestones)) != milestones
        ):
            raise ValueError("lr_milestones must be increasing epoch numbers ≥ 1, e.g. [5, 10]")
        return self


class TrainerConfig(_Section):
    max_epochs: int = Field(1, ge=1)
    max_steps: int = Field(-1, ge=-1)  # -1: no limit beyond max_epochs
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = Field(1, ge=1)
    strategy: Literal["auto", "ddp", "fsdp", "ddp_spawn"] = "auto"
    precision: Literal["32", "32-true", "bf16-mixed", "16-mixed", "bf16-true"] = "32"
    accumulate_grad_batches: int = Field(1, ge=1)
    checkpoint_every_n_steps: int = Field(100, ge=1)
    log_every_n_steps: int = Field(10, ge=1)
    val_every_n_epochs: int = Field(1, ge=1)
    seed: int = 0
    deterministic: bool = False
    progress: bool = True
    record_weight_digests: bool = False  # per-rank parameter digests after every step
    activation_checkpointing: bool = False  # recompute encoder blocks in backward: less memory

    @model_validator(mode="after")
    def _some_steps(self) -> TrainerConfig:
        if self.max_steps == 0:
            raise ValueError("max_steps 0 trains nothing; use -1 (no limit) or a positive count")
        return self


class TrainConfig(_Section):
    name: str = "run"
    # A registry name, a checkpoint file, or "random:<architecture>" to train from scratch;
    # with a semantic objective also "monai:unet" or "monai:swinunetr" (no SAM encoder).
    model: str = "samforge_random_tiny"
    # "sam_unet": build a SAM-UNet around the model's ViT, prompt encoder and decoder
    # (SAM-UNet's training starts from a SAM checkpoint; train with freeze.policy
    # encoder_frozen to keep the ViT frozen as the paper does).
    convert_to: Literal["sam_unet"] | None = None
    resnet: Literal["resnet50", "resnet34"] = "resnet50"
    # a torchvision ResNet state dict: ImageNet weights as SAM-UNet starts from (see
    # training/imagenet.py for where to get them); without one the ResNet starts random
    resnet_weights: Path | None = None
    image_size: int | None = Field(None, ge=16)
    preprocessing: Literal["sam", "medsam"] | None = None
    output_dir: Path = Path("runs")
    export: str = "model.pth"  # written into the run folder in the official SAM format
    data: DataConfig
    objective: ObjectiveSection = Field(
        default_factory=lambda: OBJECTIVES[DEFAULT_OBJECTIVE].settings_type(kind=DEFAULT_OBJECTIVE)
    )
    freeze: FreezeConfig = FreezeConfig()
    peft: PeftConfig = PeftConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    trainer: TrainerConfig = TrainerConfig()

    @model_validator(mode="after")
    def _fits_together(self) -> TrainConfig:
        try:
            objective_class(self.objective).check_config(self.objective, self)
        except ConfigError as error:
            raise ValueError(str(error)) from None
        if self.peft.kind != "none" and self.freeze.policy == "full":
            raise ValueError(
                f"peft.kind {self.peft.kind!r} with freeze.policy 'full' would train the whole "
                "encoder besides the PEFT deltas; set freeze.policy to 'encoder_frozen' (PEFT "
                "deltas, prompt encoder and decoder train) or 'decoder'"
            )
        return self

    @property
    def run_dir(self) -> Path:
        return self.output_dir / self.name

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def load_config(source: str | Path | dict[str, Any], overrides: Sequence[str] = ()) -> TrainConfig:
    """The validated config of a YAML file, a preset name or a dict, with ``key.path=value``
    overrides (values parsed as YAML) applied last.

    Raises:
        ConfigError: unreadable file, unknown preset, unknown keys, bad values, or a data
            folder that does not exist.
    """
    values = _resolve(source, seen=())
    for override in overrides:
        _apply_override(values, override)
    try:
        config = TrainConfig.model_validate(values)
    except ValidationError as error:
        raise ConfigError(_describe(error, values)) from None
    _check_paths(config)
    return config


def preset_path(name: str) -> Path:
    """The YAML file of a built-in preset."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown preset {name!r}.{hint} Presets: {', '.join(PRESETS)}.")
    return Path(str(resources.files("samforge") / "configs" / f"{name}.yaml"))


def _resolve(source: str | Path | dict[str, Any], seen: tuple[str, ...]) -> dict[str, Any]:
    """The merged dict of a config and the chain of files it ``extends``."""
    if isinstance(source, dict):
        values, origin = dict(source), "<dict>"
    else:
        # A name without a suffix is a preset unless it is a file (a folder of the same
        # name in the working directory does not hide the preset).
        is_file = Path(source).is_file()
        path = preset_path(str(source)) if not is_file and not Path(source).suffix else Path(source)
        values, origin = _read_yaml(path), str(path)
    if origin in seen:
        raise ConfigError(f"config files extend each other in a loop: {' -> '.join(seen)}.")
    parent = values.pop("extends", None)
    if parent is None:
        return values
    if origin != "<dict>" and str(parent) not in PRESETS:
        # A relative parent is found beside the file that extends it.
        parent = Path(origin).parent / Path(str(parent)).expanduser()
    return _merged(_resolve(parent, (*seen, origin)), values)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(
            f"config file {path} does not exist; pass a YAML file or a preset "
            f"({', '.join(PRESETS)})."
        )
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path} is not a text file (not UTF-8), so not a YAML config; pass a YAML file "
            f"or a preset ({', '.join(PRESETS)})."
        ) from None
    except yaml.YAMLError as error:
        # safe_load builds plain data only: a tag such as !!python/object fails here.
        raise ConfigError(f"{path} is not valid YAML: {_one_line(error)}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, not {type(values).__name__}.")
    return values


def _merged(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _apply_override(values: dict[str, Any], override: str) -> None:
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"override {override!r} must read key.path=value, e.g. trainer.max_steps=10."
        )
    *parents, leaf = key.strip().split(".")
    node: Any = values
    for part in parents:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]  # e.g. data.train.0.count=4
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            node = None
        if not isinstance(node, dict | list):
            raise ConfigError(f"override {override!r}: {part!r} is not a section or list item.")
    if isinstance(node, list):
        raise ConfigError(f"override {override!r}: give a list item's index and key.")
    try:
        node[leaf] = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise ConfigError(
            f"--set {override!r}: the value is not valid YAML ({_one_line(error)}); quote "
            "text that holds YAML's special characters, e.g. --set 'name=\"a: b\"'."
        ) from None


def _one_line(error: Exception) -> str:
    """A YAML error's several lines (problem, position, snippet) as one."""
    return " ".join(str(error).split())


def _describe(error: ValidationError, values: dict[str, Any]) -> str:
    problems = []
    for item in error.errors():
        location = item["loc"]
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            keys = _section_of(location[:-1], values).model_fields
            close = difflib.get_close_matches(str(location[-1]), list(keys), n=1)
            message = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
        problems.append(f"{'.'.join(str(part) for part in location)}: {message}")
    return "invalid training config: " + "; ".join(problems)


def _section_of(location: tuple[Any, ...], values: dict[str, Any]) -> type[BaseModel]:
    """The section a key path leads to, e.g. ``("data", "train", 0)`` -> DataSource."""
    section: type[BaseModel] = TrainConfig
    for part in location:
        if section is TrainConfig and part == "objective":
            objective = values.get("objective")
            kind = objective.get("kind") if isinstance(objective, dict) else None
            section = OBJECTIVES[kind or DEFAULT_OBJECTIVE].settings_type
            continue
        field = section.model_fields.get(part) if isinstance(part, str) else None
        annotation = field.annotation if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            section = annotation
        elif isinstance(part, int):
            section = DataSource
    return section


def _check_paths(config: TrainConfig) -> None:
    if config.resnet_weights is not None and not config.resnet_weights.is_file():
        raise ConfigError(
            f"resnet_weights: {config.resnet_weights} is not a file. "
            + resnet_weights_hint(config.resnet)
        )
    for split in ("train", "val"):
        for index, source in enumerate(getattr(config.data, split)):
            for key in ("path", "image", "label"):
                value = getattr(source, key)
                if value is not None and not value.exists():
                    raise ConfigError(
                        f"data.{split}[{index}].{key}: {value} does not exist; check the path "
                        "(relative paths start from the folder you run samforge in)."
                    )
