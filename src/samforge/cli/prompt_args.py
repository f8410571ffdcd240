"""Parsing of repeatable ``--point X Y``, ``--label L`` and ``--box X0 Y0 X1 Y1`` arguments.

Typer has no repeatable multi-value options, so ``samforge segment`` receives these as
extra arguments and parses them here, keeping each ``--label`` beside the point it follows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import PromptError

USAGE = "--point X Y [--label 0|1] (repeatable), --box X0 Y0 X1 Y1 (repeatable)"


@dataclass
class PromptArgs:
    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)


def _numbers(args: list[str], start: int, count: int, option: str) -> list[float]:
    values = args[start : start + count]
    try:
        numbers = [float(value) for value in values]
    except ValueError:
        numbers = []
    if len(numbers) != count:
        raise PromptError(f"{option} takes {count} numbers, got {values}; usage: {USAGE}.")
    return numbers


def parse_prompt_args(args: list[str]) -> PromptArgs:
    """Parse e.g. ``["--point", "30", "40", "--label", "0", "--box", "1", "2", "9", "9"]``."""
    parsed = PromptArgs()
    index = 0
    while index < len(args):
        option = args[index]
        if option == "--point":
            x, y = _numbers(args, index + 1, 2, option)
            parsed.points.append((x, y))
            parsed.labels.append(1)
            index += 3
        elif option == "--label":
            if not parsed.points:
                raise PromptError(f"--label must follow a --point; usage: {USAGE}.")
            (label,) = _numbers(args, index + 1, 1, option)
            if label not in (0, 1):
                raise PromptError(f"--label must be 1 (foreground) or 0 (background), not {label}.")
            parsed.labels[-1] = int(label)
            index += 2
        elif option == "--box":
            x0, y0, x1, y1 = _numbers(args, index + 1, 4, option)
            parsed.boxes.append((x0, y0, x1, y1))
            index += 5
        else:
            raise PromptError(f"unexpected argument {option!r}; prompts are given as {USAGE}.")
    return parsed
