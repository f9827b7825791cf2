"""What every fixed-size slot policy shares: the geometry and the bookkeeping.

The memory is cut into ``slot_count`` slots of ``slot_size`` bytes; slot ``n``
starts at offset ``n * slot_size``.  ``_in_use`` holds one byte per slot
(1 = handed out), which is what makes a bad or repeated ``release`` detectable
in O(1).  Subclasses decide only *which* free slot ``allocate`` returns.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import DoubleFreeError, InvalidFreeError, InvariantError, OutOfMemoryError
from ..sizes import require_count
from ..stats import ArenaStats
from .blocks import Block

__all__ = ["SlotPolicy"]

FREE = 0
IN_USE = 1


class SlotPolicy:
    """Base class of the fixed-size policies; not used directly."""

    __slots__ = ("_in_use", "_live", "capacity", "slot_count", "slot_size")

    def __init__(self, capacity: int, slot_size: int = 64) -> None:
        capacity = require_count(capacity, "capacity", minimum=0)
        self.slot_size: int = require_count(slot_size, "slot_size")
        #: Number of slots; bytes past the last whole slot are not managed.
        self.slot_count: int = capacity // self.slot_size
        #: Bytes managed: ``slot_count * slot_size``.
        self.capacity: int = self.slot_count * self.slot_size
        self._in_use = bytearray(self.slot_count)
        self._live = 0

    # -- the operations -------------------------------------------------------------

    def allocate(self) -> int:
        """Hand out a free slot and return its offset."""
        raise NotImplementedError

    def release(self, offset: int) -> int:
        """Take back the slot at ``offset``; return its size.  O(1) plus the subclass."""
        slot = self._slot_at(offset)
        if not self._in_use[slot]:
            raise DoubleFreeError(
                f"slot {slot} (offset {offset}) is free already: each allocation is freed once"
            )
        self._in_use[slot] = FREE
        self._live -= 1
        self._slot_freed(slot)
        return self.slot_size

    def size_of(self, offset: int) -> int:
        """The size of the live slot at ``offset`` (always ``slot_size``)."""
        slot = self._slot_at(offset)
        if not self._in_use[slot]:
            raise InvalidFreeError(f"slot {slot} (offset {offset}) is not live")
        return self.slot_size

    # -- facts ----------------------------------------------------------------------

    @property
    def used(self) -> int:
        """Bytes handed out."""
        return self._live * self.slot_size

    @property
    def free(self) -> int:
        """Bytes not handed out."""
        return self.capacity - self.used

    @property
    def largest_free(self) -> int:
        """The largest request that would succeed now: a slot, or 0 when full."""
        return self.slot_size if self._live < self.slot_count else 0

    def stats(self) -> ArenaStats:
        """A snapshot of the memory's use.  O(1)."""
        return ArenaStats(
            capacity=self.capacity,
            used=self.used,
            live_blocks=self._live,
            free_blocks=self.slot_count - self._live,
            largest_free=self.largest_free,
            fragmentation=0.0,
        )

    def __len__(self) -> int:
        """Number of live slots."""
        return self._live

    def blocks(self) -> Iterator[Block]:
        """Every slot in address order, live or free."""
        size = self.slot_size
        for slot, flag in enumerate(self._in_use):
            yield Block(slot * size, size, flag == IN_USE)

    def check(self) -> None:
        """Verify the bookkeeping; raise :class:`InvariantError` describing any fault."""
        live = self._in_use.count(IN_USE)
        if live + self._in_use.count(FREE) != self.slot_count:
            raise InvariantError("a slot flag is neither free nor in use")
        if live != self._live:
            raise InvariantError(f"{live} slots are flagged in use but the count says {self._live}")
        self._check_free_slots()

    # -- for subclasses ----------------------------------------------------------------

    def _slot_freed(self, slot: int) -> None:
        """Record that ``slot`` is free again."""

    def _check_free_slots(self) -> None:
        """Verify the subclass's own record of free slots."""

    def _out_of_memory(self) -> OutOfMemoryError:
        return OutOfMemoryError(
            f"all {self.slot_count} slots of {self.slot_size} bytes are in use: "
            "free one, or create a larger slab",
            requested=self.slot_size,
            free=0,
            largest_free=0,
        )

    def _slot_at(self, offset: int) -> int:
        if type(offset) is not int:
            raise InvalidFreeError(
                f"a slot is named by its integer offset, got {type(offset).__name__}"
            )
        slot, misalignment = divmod(offset, self.slot_size)
        if misalignment or not 0 <= slot < self.slot_count:
            raise InvalidFreeError(
                f"offset {offset} is not the start of a slot: slots start at multiples of "
                f"{self.slot_size} below {self.capacity}"
            )
        return slot

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self._live}/{self.slot_count} slots of "
            f"{self.slot_size} B in use>"
        )
