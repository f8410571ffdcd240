"""Freeze policies: which parameters of a SAM-family model train.

Named policies (``POLICIES``), by parameter name prefix:

``"full"``
    everything trains.
``"decoder"``
    only ``mask_decoder.*`` trains (RobustMedSAM's decoder-only fine-tuning).
``"encoder_frozen"``
    everything but ``image_encoder.*`` trains (prompt encoder + mask decoder for SAM).
``"prompt_encoder_frozen"``
    everything but ``prompt_encoder.*`` trains.
``"blocks"``
    partial encoder fine-tuning: ``"encoder_frozen"`` plus the chosen encoder blocks
    ``image_encoder.blocks.{i}.*`` (``blocks=[...]``, negative indices count from the end,
    e.g. ``[-2, -1]`` for the last two) and the encoder neck ``image_encoder.neck.*``; the
    patch embedding, position embedding and other blocks stay frozen.

PEFT deltas (``lora_A``, ``lora_B``, ``singular_values`` of :mod:`samforge.models.peft`
layers) always train under a named policy, even where it freezes the encoder: a PEFT run is
"frozen encoder + PEFT deltas", e.g. ``apply_lora(model)`` then ``"encoder_frozen"``.
The layers that PEFT wraps follow the named policy like any other encoder parameter
(``"full"`` trains them too).

After the named policy, power users can adjust single parameters with glob patterns
(:func:`fnmatch.fnmatchcase`) over ``model.named_parameters()`` names: ``trainable`` globs
switch matches on, then ``frozen`` globs switch matches off (frozen wins). A pattern also
selects everything under a module path, so ``"image_encoder.blocks.11"`` means
``"image_encoder.blocks.11.*"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from torch import nn

from ..errors import ConfigError
from ..models.peft import encoder_blocks_of, peft_parameter_names, resolve_block_indices

POLICIES: tuple[str, ...] = ("full", "decoder", "encoder_frozen", "prompt_encoder_frozen", "blocks")

POLICY_DESCRIPTIONS: dict[str, str] = {
    "full": "every parameter trains",
    "decoder": "only mask_decoder.* trains",
    "encoder_frozen": "everything but image_encoder.* trains",
    "prompt_encoder_frozen": "everything but prompt_encoder.* trains",
    "blocks": "encoder_frozen plus the chosen image_encoder.blocks.{i} and image_encoder.neck",
}


# The top-level module each policy is defined by; a model without it is refused, so that a
# wrapper (names "model.image_encoder...") does not silently train everything.
_POLICY_ROOTS = {
    "decoder": "mask_decoder",
    "encoder_frozen": "image_encoder",
    "prompt_encoder_frozen": "prompt_encoder",
    "blocks": "image_encoder",
}


@dataclass(frozen=True)
class FreezeReport:
    """What a freeze policy left trainable.

    Attributes:
        policy: the named policy applied.
        trainable: number of trainable parameters (elements, not tensors).
        frozen: number of frozen parameters.
        trainable_groups: top-level modules (first name component) with any trainable
            parameter, in model order.
        partial_groups: those of ``trainable_groups`` that are only partly trainable.
        peft: number of PEFT delta parameters (LoRA/SVD) among the trainable ones.
    """

    policy: str
    trainable: int
    frozen: int
    trainable_groups: tuple[str, ...]
    partial_groups: tuple[str, ...] = ()
    peft: int = 0

    @property
    def total(self) -> int:
        return self.trainable + self.frozen

    @property
    def trainable_fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        groups = ", ".join(
            f"{group} (partly)" if group in self.partial_groups else group
            for group in self.trainable_groups
        )
        peft = f", {_count(self.peft)} of them PEFT deltas" if self.peft else ""
        return (
            f"freeze policy {self.policy!r}: {_count(self.trainable)} of {_count(self.total)} "
            f"parameters trainable ({100 * self.trainable_fraction:.1f}%{peft}) in {groups}"
        )


def apply_freeze_policy(
    model: nn.Module,
    policy: str = "full",
    blocks: Iterable[int] | None = None,
    trainable: Sequence[str] | None = None,
    frozen: Sequence[str] | None = None,
) -> FreezeReport:
    """Set ``requires_grad`` on every parameter of ``model`` by a named policy and globs.

    Args:
        model: the SAM-family model itself (parameter names ``image_encoder.*``,
            ``prompt_encoder.*``, ``mask_decoder.*``, ...), not a wrapper around it.
        policy: one of :data:`POLICIES` (see the module docstring).
        blocks: encoder block indices for ``policy="blocks"`` (required there, refused
            elsewhere); negative indices count from the end.
        trainable: glob patterns of parameter names to make trainable after the policy.
        frozen: glob patterns of parameter names to freeze after that (wins over
            ``trainable``).

    Returns:
        A :class:`FreezeReport`; ``str(report)`` is a one-line summary for logs.

    Raises:
        ConfigError: unknown policy, missing/out-of-range/superfluous ``blocks``, a glob
            matching no parameter, or no trainable parameter left.
    """
    if policy not in POLICIES:
        raise ConfigError(
            f"unknown freeze policy {policy!r}; choose one of: "
            + "; ".join(f"{name} ({text})" for name, text in POLICY_DESCRIPTIONS.items())
            + "."
        )
    parameters = dict(model.named_parameters())
    needed = _POLICY_ROOTS.get(policy)
    if needed is not None and not any(name.startswith(f"{needed}.") for name in parameters):
        raise ConfigError(
            f"freeze policy {policy!r} refers to {needed}.*, but the model has no such "
            f"parameters (top-level modules: {_roots(parameters)}). Pass the SAM model itself "
            "(e.g. lightning_module.model), not a wrapper, or use trainable=/frozen= globs."
        )
    chosen_blocks: list[int] = []
    if policy == "blocks":
        if blocks is None:
            raise ConfigError(
                "freeze policy 'blocks' needs the encoder block indices to train "
                "(blocks=[...], e.g. [-2, -1] for the last two)."
            )
        depth = len(encoder_blocks_of(model))
        chosen_blocks = resolve_block_indices(blocks, depth, what="freeze policy 'blocks'")
    elif blocks is not None:
        raise ConfigError(
            f"blocks={list(blocks)!r} only applies to freeze policy 'blocks', not {policy!r}; "
            "use policy='blocks' or drop the block list."
        )
    peft = set(peft_parameter_names(model))
    block_prefixes = tuple(f"image_encoder.blocks.{index}." for index in chosen_blocks)

    def named_policy(name: str) -> bool:
        if name in peft or policy == "full":
            return True
        root = name.split(".", 1)[0]
        if policy == "decoder":
            return root == "mask_decoder"
        if policy == "prompt_encoder_frozen":
            return root != "prompt_encoder"
        if root != "image_encoder":  # encoder_frozen and blocks
            return True
        if policy == "encoder_frozen":
            return False
        return name.startswith((*block_prefixes, "image_encoder.neck."))

    flags = {name: named_policy(name) for name in parameters}
    for patterns, value, label in ((trainable, True, "trainable"), (frozen, False, "frozen")):
        for pattern in _as_list(patterns, label):
            matches = [name for name in parameters if _matches(name, pattern)]
            if not matches:
                raise ConfigError(
                    f"{label} pattern {pattern!r} matches no parameter. Patterns are globs "
                    "over parameter names (a module path selects everything under it); "
                    f"top-level modules: {_roots(parameters)}; e.g. {_examples(parameters)}."
                )
            for name in matches:
                flags[name] = value
    if not any(flags.values()):
        raise ConfigError(
            f"freeze policy {policy!r} with trainable={trainable!r}, frozen={frozen!r} leaves "
            f"no parameter trainable; valid policies: {list(POLICIES)}."
        )
    for name, parameter in parameters.items():
        parameter.requires_grad_(flags[name])
    return _report(policy, parameters, flags, peft)


def keep_frozen_norms_in_eval(model: nn.Module) -> int:
    """Put every batch norm of ``model`` with parameters, none of them trainable, into
    evaluation mode (running statistics used, not updated). Returns how many."""
    frozen = [
        module
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
        and (parameters := list(module.parameters()))
        and not any(parameter.requires_grad for parameter in parameters)
    ]
    for module in frozen:
        module.eval()
    return len(frozen)


def trainable_parameter_names(model: nn.Module) -> list[str]:
    """Names of the parameters with ``requires_grad``, in model order."""
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad]


def _report(
    policy: str, parameters: dict[str, nn.Parameter], flags: dict[str, bool], peft: set[str]
) -> FreezeReport:
    trainable = frozen = peft_count = 0
    groups: dict[str, list[bool]] = {}
    for name, parameter in parameters.items():
        groups.setdefault(name.split(".", 1)[0], []).append(flags[name])
        if flags[name]:
            trainable += parameter.numel()
            peft_count += parameter.numel() if name in peft else 0
        else:
            frozen += parameter.numel()
    return FreezeReport(
        policy=policy,
        trainable=trainable,
        frozen=frozen,
        trainable_groups=tuple(group for group, values in groups.items() if any(values)),
        partial_groups=tuple(
            group for group, values in groups.items() if any(values) and not all(values)
        ),
        peft=peft_count,
    )


def _matches(name: str, pattern: str) -> bool:
    return fnmatchcase(name, pattern) or fnmatchcase(name, pattern.rstrip(".") + ".*")


def _as_list(patterns: Sequence[str] | None, label: str) -> list[str]:
    if patterns is None:
        return []
    if isinstance(patterns, str):
        return [patterns]
    result = list(patterns)
    bad = [pattern for pattern in result if not isinstance(pattern, str) or not pattern]
    if bad:
        raise ConfigError(f"{label} patterns must be non-empty strings, got {bad!r}.")
    return result


def _roots(parameters: dict[str, nn.Parameter]) -> list[str]:
    return list(dict.fromkeys(name.split(".", 1)[0] for name in parameters))


def _examples(parameters: dict[str, nn.Parameter], count: int = 3) -> list[str]:
    names = list(parameters)
    step = max(len(names) // count, 1)
    return names[::step][:count]


def _count(value: int) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.2f}{suffix}"
    return str(value)


__all__ = [
    "POLICIES",
    "POLICY_DESCRIPTIONS",
    "FreezeReport",
    "apply_freeze_policy",
    "trainable_parameter_names",
]
