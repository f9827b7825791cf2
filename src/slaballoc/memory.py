"""Turning "some memory" into the flat, writable byte view the allocators manage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .sizes import require_count

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["DEFAULT_CAPACITY", "open_memory"]

#: The seed's buffer: 4 KiB.
DEFAULT_CAPACITY = 4096


def open_memory(capacity: int | None, buffer: Buffer | None) -> memoryview:
    """Return a writable, one-dimensional byte view of the memory to manage.

    With ``buffer`` the allocator works in that memory in place (a ``bytearray``,
    an ``mmap.mmap``, a C-contiguous numpy array, ``SharedMemory.buf``...), and
    ``capacity``, if given, limits it to its first ``capacity`` bytes.  Without
    it, a new zero-filled ``bytearray`` of ``capacity`` bytes (default 4096).

    >>> open_memory(16, None).nbytes
    16
    >>> open_memory(None, bytes(8))
    Traceback (most recent call last):
    ...
    TypeError: buffer must be writable, but bytes is read-only
    """
    if buffer is None:
        size = (
            DEFAULT_CAPACITY if capacity is None else require_count(capacity, "capacity", minimum=0)
        )
        return memoryview(bytearray(size))
    try:
        view = memoryview(buffer)
    except TypeError:
        raise TypeError(
            f"buffer must support the buffer protocol (bytearray, mmap, numpy array...), "
            f"got {type(buffer).__name__}"
        ) from None
    if view.readonly:
        view.release()
        raise TypeError(f"buffer must be writable, but {type(buffer).__name__} is read-only")
    if not view.c_contiguous:
        view.release()
        raise ValueError("buffer must be C-contiguous: one flat run of bytes")
    size = view.nbytes if capacity is None else require_count(capacity, "capacity", minimum=0)
    if size > view.nbytes:
        view.release()
        raise ValueError(f"capacity {size} exceeds the buffer's {view.nbytes} bytes")
    # Keep exactly one view exported, so that closing the allocator frees the
    # exporter (SharedMemory.close() and mmap.resize() refuse while views live).
    with view:
        flat = view.cast("B")
    with flat:
        return flat[:size]
