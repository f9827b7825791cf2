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

    __slots__ = ("_in_use", "capacity", "slot_count", "slot_size")

    def __init__(self, capacity: int, slot_size: int = 64) -> None:
        capacity = require_count(capacity, "capacity", minimum=0)
        self.slot_size: int = require_count(slot_size, "slot_size")
        #: Number of slots; bytes past the last whole slot are not managed.
        self.slot_count: int = capacity // self.slot_size
        #: Bytes managed: ``slot_count * slot_size``.
        self.capacity: int = self.slot_count * self.slot_size
        self._in_use = bytearray(self.slot_count)

    # -- the operations -------------------------------------------------------------

    def allocate(self) -> int:
        """Hand out a free slot and return its offset."""
        raise NotImplementedError

    def release_unchecked(self, offset: int) -> None:
        """Take back a slot the caller knows is live (skips :meth:`release`'s checks)."""
        raise NotImplementedError

    def release(self, offset: int) -> int:
        """Take back the live slot at ``offset``; return its size.  O(1).

        Raises :class:`~slaballoc.errors.InvalidFreeError` for an offset that is
        not the start of a slot, :class:`~slaballoc.errors.DoubleFreeError` for
        a slot that is free; neither changes anything.
        """
        slot = self._slot_at(offset)
        if not self._in_use[slot]:
            raise DoubleFreeError(
                f"slot {slot} (offset {offset}) is free already: each allocation is freed once"
            )
        self.release_unchecked(offset)
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
        return len(self) * self.slot_size

    @property
    def free(self) -> int:
        """Bytes not handed out."""
        return self.capacity - self.used

    @property
    def largest_free(self) -> int:
        """The largest request that would succeed now: a slot, or 0 when full."""
        return self.slot_size if len(self) < self.slot_count else 0

    def stats(self) -> ArenaStats:
        """A snapshot of the memory's use.  O(1)."""
        live = len(self)
        return ArenaStats(
            capacity=self.capacity,
            used=live * self.slot_size,
            live_blocks=live,
            free_blocks=self.slot_count - live,
            largest_free=self.largest_free,
            fragmentation=0.0,
        )

    def __len__(self) -> int:
        """Number of live slots."""
        raise NotImplementedError

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
        if live != len(self):
            raise InvariantError(f"{live} slots are flagged in use but the count says {len(self)}")
        self._check_free_slots()

    # -- for subclasses ----------------------------------------------------------------

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
            f"<{type(self).__name__} {len(self)}/{self.slot_count} slots of "
            f"{self.slot_size} B in use>"
        )
