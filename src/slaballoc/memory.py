"""Turning "some memory" into the flat, writable byte view the allocators manage."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from .errors import BufferTypeError, InvalidBufferError, SizeTooLargeError
from .sizes import require_count

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["DEFAULT_CAPACITY", "open_memory"]

#: The seed's buffer: 4 KiB.
DEFAULT_CAPACITY = 4096

_Policy = TypeVar("_Policy")


def open_memory(
    capacity: int | None, buffer: Buffer | None, policy: Callable[[int], _Policy]
) -> tuple[memoryview, _Policy]:
    """Return a writable, one-dimensional byte view of the memory, and its policy.

    With ``buffer`` the allocator works in that memory in place (a ``bytearray``,
    an ``mmap.mmap``, a C-contiguous numpy array, ``SharedMemory.buf``...), and
    ``capacity``, if given, limits it to its first ``capacity`` bytes.  Without
    it, a new zero-filled ``bytearray`` of ``capacity`` bytes (default 4096).
    ``policy(nbytes)`` builds the placement policy; if it (or anything here)
    refuses, the buffer is let go, so that ``mmap.close()`` still works.

    >>> memory, size = open_memory(16, None, int)
    >>> memory.nbytes, size
    (16, 16)
    >>> open_memory(None, bytes(8), int)
    Traceback (most recent call last):
    ...
    slaballoc.errors.BufferTypeError: buffer must be writable, but bytes is read-only
    """
    size = None if capacity is None else require_count(capacity, "capacity", minimum=0)
    memory = _new_memory(size) if buffer is None else _wrap(buffer, size)
    try:
        return memory, policy(memory.nbytes)
    except BaseException:
        memory.release()
        raise


def _new_memory(size: int | None) -> memoryview:
    if size is None:
        size = DEFAULT_CAPACITY
    try:
        return memoryview(bytearray(size))
    except (OverflowError, MemoryError):
        raise SizeTooLargeError(
            f"capacity {size} is more memory than this machine can give: ask for less"
        ) from None


def _wrap(buffer: Buffer, size: int | None) -> memoryview:
    try:
        view = memoryview(buffer)
    except TypeError:
        raise BufferTypeError(
            f"buffer must support the buffer protocol (bytearray, mmap, numpy array...), "
            f"got {type(buffer).__name__}"
        ) from None
    with view:  # released on every path: only the flat view below stays exported
        if view.readonly:
            raise BufferTypeError(
                f"buffer must be writable, but {type(buffer).__name__} is read-only"
            )
        if not view.c_contiguous:
            raise InvalidBufferError("buffer must be C-contiguous: one flat run of bytes")
        available = view.nbytes
        if size is None:
            size = available
        elif size > available:
            raise InvalidBufferError(
                f"capacity {size} exceeds the buffer's {available} bytes: "
                "pass a smaller capacity or a larger buffer"
            )
        # Keep exactly one view exported, so that closing the allocator frees the
        # exporter (SharedMemory.close() and mmap.resize() refuse while views live).
        flat = view.cast("B")
    with flat:
        return flat[:size]
