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
    "MemoryCorruptionError",
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

    @classmethod
    def for_request(
        cls, size: int, *, free: int, largest_free: int, advice: str = "free some blocks"
    ) -> OutOfMemoryError:
        """The error for a variable-size request of ``size`` bytes that no free block can hold.

        >>> error = OutOfMemoryError.for_request(100, free=120, largest_free=64)
        >>> "free memory is fragmented (120 bytes free, largest free block 64)" in str(error)
        True
        >>> error.requested, error.free, error.largest_free
        (100, 120, 64)
        """
        why = "not enough free memory" if free < size else "free memory is fragmented"
        noun = "byte" if size == 1 else "bytes"
        return cls(
            f"cannot allocate {size} {noun}: {why} ({free} bytes free, largest free block "
            f"{largest_free}); {advice} and try again",
            requested=size,
            free=free,
            largest_free=largest_free,
        )


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


__all__ += ["MemoryCorruptionError"]  # appended here so that parallel additions do not collide


class MemoryCorruptionError(InvariantError):
    """Debug mode found a block's memory changed where no one may write.

    A freed object's poison changed (a write after free), or the red zone
    after a live block did (a write past its end).  ``offset`` and ``size``
    name the object or block.
    """

    def __init__(self, message: str, *, offset: int, size: int) -> None:
        super().__init__(message)
        self.offset = offset
        self.size = size


# -- the heap shared by processes (slaballoc.shared) ----------------------------------------
# Kept together at the end of the file, __all__ included, so that branches adding errors merge.

__all__ += [
    "InvalidHandleError",
    "LayoutVersionError",
    "NotASegmentError",
    "NumpyUnavailableError",
    "ProcessTableFullError",
    "SegmentExistsError",
    "SegmentNotFoundError",
    "SegmentTooLargeError",
    "UnsupportedPlatformError",
]


class InvalidHandleError(InvalidFreeError):
    """A handle does not name a live block of this shared heap."""


class SegmentNotFoundError(SlabError, FileNotFoundError):
    """No shared-memory segment has that name."""


class SegmentExistsError(SlabError, FileExistsError):
    """A shared-memory segment of that name exists already."""


class NotASegmentError(SlabError, ValueError):
    """The named shared memory is not a slaballoc heap (or is not finished yet)."""


class LayoutVersionError(NotASegmentError):
    """The segment was written by a slaballoc with a different layout."""


class SegmentTooLargeError(SlabError, MemoryError):
    """The segment would not fit in the space left in ``/dev/shm``."""


class NumpyUnavailableError(SlabError, ModuleNotFoundError):
    """A numpy feature was asked for, but numpy is not installed."""


class ProcessTableFullError(SlabError, RuntimeError):
    """Every process slot of a shared heap is held by a live process."""


class UnsupportedPlatformError(SlabError, OSError):
    """This system lacks what ``SharedHeap`` needs (Linux's OFD locks and ``/proc``)."""
