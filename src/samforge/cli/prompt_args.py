"""Parsing of repeatable ``--point X Y``, ``--label L`` and ``--box X0 Y0 X1 Y1`` arguments.

Typer has no repeatable multi-value options, so ``samforge segment`` receives these as
extra arguments and parses them here, keeping each ``--label`` beside the point it follows.
"""

from __future__ import annotations

from ..errors import PromptError
from ..prompts import Prompts

USAGE = "--point X Y [--label 0|1] (repeatable), --box X0 Y0 X1 Y1 (repeatable)"


def _numbers(args: list[str], start: int, count: int, option: str) -> list[float]:
    values = args[start : start + count]
    try:
        numbers = [float(value) for value in values]
    except ValueError:
        numbers = []
    if len(numbers) != count:
        raise PromptError(f"{option} takes {count} numbers, got {values}; usage: {USAGE}.")
    return numbers


def parse_prompt_args(args: list[str], where: str = "") -> Prompts:
    """Parse e.g. ``["--point", "30", "40", "--label", "0", "--box", "1", "2", "9", "9"]``.

    Several boxes are several objects; points refine one object, with at most one box.
    ``where`` (e.g. " for --slice 4") completes the message when no prompt is given.
    """
    points: list[tuple[float, float]] = []
    labels: list[int] = []
    boxes: list[list[float]] = []
    index = 0
    while index < len(args):
        option = args[index]
        if option == "--point":
            x, y = _numbers(args, index + 1, 2, option)
            points.append((x, y))
            labels.append(1)
            index += 3
        elif option == "--label":
            if not points:
                raise PromptError(f"--label must follow a --point; usage: {USAGE}.")
            (label,) = _numbers(args, index + 1, 1, option)
            if label not in (0, 1):
                raise PromptError(f"--label must be 1 (foreground) or 0 (background), not {label}.")
            labels[-1] = int(label)
            index += 2
        elif option == "--box":
            boxes.append(_numbers(args, index + 1, 4, option))
            index += 5
        else:
            raise PromptError(f"unexpected argument {option!r}; prompts are given as {USAGE}.")
    if not points and not boxes:
        raise PromptError(f"no prompt given{where}: add --box X0 Y0 X1 Y1 or --point X Y.")
    if not points:
        return Prompts.from_user(boxes=boxes)
    if len(boxes) > 1:
        raise PromptError("points refine one object: combine them with at most one --box.")
    return Prompts.from_user([points], [labels], boxes or None)
