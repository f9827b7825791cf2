"""Debugging, off by default: poison, red zones and allocation tracebacks, as SLUB's ``slub_debug``.

With ``SlabCache(debug=True)`` every object of a class is followed by a red
zone of :data:`RED_ZONE_BYTES` bytes, and (values from Linux
``include/linux/poison.h``):

* a **free** object is filled with :data:`POISON_FREE` (``0x6b``); the next
  alloc of it verifies the poison, so a write after free (through a slice
  or a view derived from a freed block, which survive the block's release)
  is reported with the object's offset and size and the byte that changed;
* a **live** block's bytes from its requested size to the end of its object,
  and the red zone after it, hold :data:`RED_ACTIVE` (``0xcc``); the free
  verifies them, so a write past the block's end (through ``memory``, an
  offset handle in another process, or C code) is reported;
* every allocation's traceback is kept, so that :meth:`SlabCache.leaks` and
  ``close()`` name the line that allocated each block still live.

A report is a :class:`~slaballoc.errors.MemoryCorruptionError` raised after the
operation has completed (the free is done; the alloc is refused and the poison
restored), so the cache stays consistent and the next alloc proceeds.
Blocks too large for any class get leak tracking only.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path

from ..errors import MemoryCorruptionError
from .slab import Slab

__all__ = ["POISON_FREE", "RED_ACTIVE", "RED_ZONE_BYTES", "DebugChecks", "Leak"]

POISON_FREE = 0x6B  # Linux POISON_FREE
RED_ACTIVE = 0xCC  # Linux SLUB_RED_ACTIVE
#: Red zone after every object: a multiple of 16, so objects stay 16-byte aligned.
RED_ZONE_BYTES = 16

_PACKAGE = str(Path(__file__).resolve().parent.parent)


@dataclass(frozen=True)
class Leak:
    """A block still live: where it is, how large, and (in debug mode) who allocated it."""

    offset: int
    size: int
    allocated_at: traceback.StackSummary | None

    def __str__(self) -> str:
        head = f"{self.size} bytes at offset {self.offset}"
        if self.allocated_at is None:
            return head + " (allocation traceback kept only with debug=True)"
        return head + ", allocated at:\n" + "".join(self.allocated_at.format()).rstrip()


class DebugChecks:
    """Poisons, red zones and allocation tracebacks over one cache's memory.

    ``stride`` is an object's size plus :data:`RED_ZONE_BYTES`; ``size`` is what
    the caller requested.  Every method is O(stride), but ``note_origin``,
    O(stack depth).

    >>> from slaballoc.slab_cache.slab import Slab
    >>> memory = memoryview(bytearray(4096))
    >>> checks, slab = DebugChecks(memory), Slab(0, 48 + RED_ZONE_BYTES, 4)
    >>> checks.poison_slab(slab, 48)
    >>> checks.on_alloc(0, 40, 48, slab.stride); bytes(memory[38:42]).hex()
    '6b6bcccc'
    >>> memory[40] = 0  # one byte past the end
    >>> checks.on_free(0, 40, 48, slab.stride)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    slaballoc.errors.MemoryCorruptionError: the 40-byte block at offset 0 was written past ...
    >>> checks.verify_free(0, 48, slab.stride)  # poisoned all the same
    True
    """

    __slots__ = ("_free_images", "_memory", "_origins")

    def __init__(self, memory: memoryview) -> None:
        self._memory = memory
        # offset -> (allocation traceback, requested size) of every live block
        self._origins: dict[int, tuple[traceback.StackSummary, int]] = {}
        self._free_images: dict[tuple[int, int], bytes] = {}  # (object size, stride) -> bytes

    def poison_slab(self, slab: Slab, object_size: int) -> None:
        """Make every object of a new slab look freed."""
        image = self._free_image(object_size, slab.stride)
        self._memory[slab.start : slab.end] = image * slab.count

    def on_alloc(self, offset: int, size: int, object_size: int, stride: int) -> None:
        """Verify a free object's poison; then mark its slack and red zone as live.

        Raises :class:`MemoryCorruptionError` (after restoring the poison, the
        object still free) when a byte changed while it was free.
        """
        memory, image = self._memory, self._free_image(object_size, stride)
        if memory[offset : offset + stride] != image:
            where = _first_difference(memory[offset : offset + stride], image)
            found = memory[offset + where]
            memory[offset : offset + stride] = image
            raise MemoryCorruptionError(
                f"the {object_size}-byte object at offset {offset} was written after it was "
                f"freed: byte {where} (offset {offset + where}) is {found:#04x}, not the poison "
                f"{image[where]:#04x}; look for a slice or view of a freed block still in use "
                "(the poison was restored and the object stays free)",
                offset=offset,
                size=object_size,
            )
        memory[offset + size : offset + stride] = bytes([RED_ACTIVE]) * (stride - size)
        self.note_origin(offset, size)

    def on_free(self, offset: int, size: int, object_size: int, stride: int) -> None:
        """Poison a freed object, after checking the red zone after its block.

        Raises :class:`MemoryCorruptionError` after poisoning (the free is done)
        when a byte past the block's end changed.
        """
        memory = self._memory
        red = bytes([RED_ACTIVE]) * (stride - size)
        damaged = memory[offset + size : offset + stride] != red
        where = _first_difference(memory[offset + size : offset + stride], red) if damaged else 0
        found = memory[offset + size + where]
        origin = self._origins.pop(offset, None)
        memory[offset : offset + stride] = self._free_image(object_size, stride)
        if damaged:
            line = _allocating_line(None if origin is None else origin[0])
            raise MemoryCorruptionError(
                f"the {size}-byte block at offset {offset} was written past its end: "
                f"byte {size + where} (offset {offset + size + where}, {where + 1} past the end) "
                f"is {found:#04x}, not the red zone's {RED_ACTIVE:#04x}{line}; the block was freed",
                offset=offset,
                size=size,
            )

    def note_origin(self, offset: int, size: int) -> None:
        """Keep the caller's traceback, and the size asked for, for the block at ``offset``."""
        stack = traceback.extract_stack()
        while stack and stack[-1].filename.startswith(_PACKAGE):
            stack.pop()  # slaballoc's own frames say nothing about the caller
        self._origins[offset] = (stack, size)

    def forget_origin(self, offset: int) -> None:
        """The block at ``offset`` was freed (blocks without poison)."""
        self._origins.pop(offset, None)

    def origin(self, offset: int) -> traceback.StackSummary | None:
        """Where the live block at ``offset`` was allocated."""
        entry = self._origins.get(offset)
        return None if entry is None else entry[0]

    def requested(self, offset: int) -> int | None:
        """The size the live block at ``offset`` was asked for."""
        entry = self._origins.get(offset)
        return None if entry is None else entry[1]

    def verify_free(self, offset: int, object_size: int, stride: int) -> bool:
        """True if a free object's poison is intact (for ``check()``)."""
        return self._memory[offset : offset + stride] == self._free_image(object_size, stride)

    def verify_live(self, offset: int, size: int, stride: int) -> bool:
        """True if a live block's red zone is intact (for ``check()``)."""
        return self._memory[offset + size : offset + stride] == bytes([RED_ACTIVE]) * (
            stride - size
        )

    def _free_image(self, object_size: int, stride: int) -> bytes:
        image = self._free_images.get((object_size, stride))
        if image is None:
            image = bytes([POISON_FREE]) * object_size + bytes([RED_ACTIVE]) * (
                stride - object_size
            )
            self._free_images[object_size, stride] = image
        return image


def _first_difference(actual: memoryview, expected: bytes) -> int:
    return next(i for i, (a, b) in enumerate(zip(bytes(actual), expected, strict=True)) if a != b)


def _allocating_line(origin: traceback.StackSummary | None) -> str:
    if not origin:
        return ""
    frame = origin[-1]
    return f" (allocated at {frame.filename}:{frame.lineno}: {frame.line})"
