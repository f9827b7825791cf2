"""What every sub-command checks in what the user typed, written once.

The argparse types (``type=positive``) turn a bad number into argparse's one-line
usage error; :func:`check_output` refuses an output file that could not be
written before the long work that fills it; :class:`CommandLineError` is how a
command's own check says so (``slaballoc`` prints it as one line, no traceback);
:func:`warn` is that one line, for a command that reports a failure itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "USAGE_ERROR",
    "CommandLineError",
    "check_output",
    "count_between",
    "non_negative",
    "positive",
    "power_of_two",
    "seconds",
    "warn",
    "write_json",
]

#: The exit status of a command line that cannot work (argparse's own choice).
USAGE_ERROR = 2


class CommandLineError(Exception):
    """Something the user typed cannot work; found before the work starts."""

    def __init__(self, message: str, *, status: int = USAGE_ERROR) -> None:
        super().__init__(message)
        self.status = status


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive(text: str) -> int:
    """An argparse type: a whole number, at least 1.

    >>> positive("3")
    3
    """
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative(text: str) -> int:
    """An argparse type: a whole number, at least 0.

    >>> non_negative("0")
    0
    """
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def count_between(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``.

    >>> count_between(1, 10)("10")
    10
    """

    def count(text: str) -> int:
        value = _whole_number(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low} to {high}, got {value}")
        return value

    return count


def power_of_two(text: str) -> int:
    """An argparse type: 1, 2, 4, 8, ...

    >>> power_of_two("16")
    16
    """
    value = positive(text)
    if value & (value - 1):
        raise argparse.ArgumentTypeError(f"must be a power of two (1, 2, 4, 8, ...), got {value}")
    return value


def seconds(text: str) -> float:
    """An argparse type: a number of seconds, more than 0.

    >>> seconds("0.5")
    0.5
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def warn(command: str, message: str) -> None:
    """Say on stderr, as one line naming the command, what went wrong (and what to do)."""
    print(f"slaballoc {command}: {message}", file=sys.stderr)


def check_output(path: str | None, option: str) -> None:
    """Refuse an output file that could not be written, before the work that fills it.

    ``None`` (the option not given) and ``-`` (stdout) pass.
    """
    if path is None or path == "-":
        return
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise CommandLineError(f"cannot write {option} {path}: the folder {folder} does not exist")
    if target.is_dir():
        raise CommandLineError(f"cannot write {option} {path}: it is a folder")
    if not os.access(folder, os.W_OK):
        raise CommandLineError(f"cannot write {option} {path}: the folder {folder} is read-only")


def write_json(path: str | None, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` (indented) and say so; nothing when ``path`` is None."""
    if path:
        Path(path).write_text(json.dumps(document, indent=2, default=str) + "\n")
        print(f"wrote {path}")
