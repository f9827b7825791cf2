"""The one record every policy reports its memory with."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Block"]


class Block(NamedTuple):
    """A run of bytes in the arena: ``[offset, offset + size)``, live or free."""

    offset: int
    size: int
    live: bool

    @property
    def end(self) -> int:
        """The first byte past the block."""
        return self.offset + self.size
