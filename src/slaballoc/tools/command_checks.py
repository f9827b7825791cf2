"""The checks every sub-command makes before its work, and the error they raise.

Apart from :mod:`.cli` so that a sub-command in its own module (``shm``,
``slabinfo``) can make them too without importing the command table.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["USAGE_ERROR", "CommandLineError", "check_output"]

#: The exit status of a command line that cannot work.
USAGE_ERROR = 2


class CommandLineError(Exception):
    """Something the user typed cannot work; found before the work starts."""

    def __init__(self, message: str, *, status: int = USAGE_ERROR) -> None:
        super().__init__(message)
        self.status = status


def check_output(path: str | None, option: str) -> None:
    """Refuse an output file that could not be written, before the work that fills it.

    >>> try:
    ...     check_output("/no/such/map.svg", "--svg")
    ... except CommandLineError as error:
    ...     print(error)
    cannot write --svg /no/such/map.svg: the folder /no/such does not exist
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
