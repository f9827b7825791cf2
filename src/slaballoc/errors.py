"""Every exception slaballoc raises, in one place.

Each one subclasses the built-in exception a Python programmer would already
catch for that kind of mistake (``MemoryError``, ``ValueError``, ``TypeError``),
so code written against the standard library keeps working.  When any of them
is raised, the allocator's state and every live block's bytes are unchanged.
"""

from __future__ import annotations

__all__ = [
    "AllocatorClosedError",
    "BlockInUseError",
    "BufferTypeError",
    "DoubleFreeError",
    "InvalidBufferError",
    "InvalidFreeError",
    "InvalidSizeError",
    "InvariantError",
    "OutOfMemoryError",
    "SizeTooLargeError",
    "SizeTypeError",
    "SlabError",
]


class SlabError(Exception):
    """Base class of every error raised by slaballoc."""


class OutOfMemoryError(SlabError, MemoryError):
    """No free block can hold the request right now.

    Freeing blocks (or, for variable sizes, freeing a neighbour so that free
    space coalesces) can make the same request succeed later.
    """

    def __init__(self, message: str, *, requested: int, free: int, largest_free: int) -> None:
        super().__init__(message)
        self.requested = requested
        self.free = free
        self.largest_free = largest_free


class InvalidFreeError(SlabError, ValueError):
    """What was given back is not a live block of this allocator."""


class DoubleFreeError(InvalidFreeError):
    """The block was given back already."""


class BlockInUseError(SlabError, BufferError):
    """A block's view is still exported, so it cannot be freed, moved or closed yet.

    ``pickle.PickleBuffer(view)`` or a ``readinto``/``recv_into`` in
    progress (in another thread) hold an export; until it is
    released, handing the block to another owner would let the export write
    into that owner's bytes.  Nothing was changed: release the export (or let
    the I/O finish) and try again.
    """


class BufferTypeError(SlabError, TypeError):
    """The object given as ``buffer`` is not a writable buffer."""


class InvalidBufferError(SlabError, ValueError):
    """The buffer is not one flat run of bytes, or is smaller than ``capacity``."""


class SizeTypeError(SlabError, TypeError):
    """A size or count is not an integer."""


class InvalidSizeError(SlabError, ValueError):
    """A size or count is an integer but not one the allocator accepts."""


class SizeTooLargeError(InvalidSizeError):
    """The request is larger than the allocator could serve even when empty."""


class AllocatorClosedError(SlabError, ValueError):
    """The allocator was closed; its memory is no longer reachable through it."""


class InvariantError(SlabError, AssertionError):
    """``check()`` found the allocator's bookkeeping inconsistent (a bug)."""
