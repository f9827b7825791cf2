"""What every fixed-size slot policy shares: the geometry and the checked API.

The memory is cut into ``slot_count`` slots of ``slot_size`` bytes; slot ``n``
starts at offset ``n * slot_size``.  A subclass provides the two unchecked
primitives of :class:`~slaballoc.policies.contract.SlotPlacement`:

* ``_take()``: hand out a free slot's offset (O(1) or O(n), by design);
* ``_put(offset)``: take back a slot its caller knows is live.

They trust their caller, so that an allocator that already keeps a record
of every live block (:class:`~slaballoc.allocator.BlockAllocator`) pays for no
second check.  :meth:`allocate` and :meth:`release` are the checked API for callers
that use the policy on its own: they keep one flag byte per slot
(``_handed_out``), which makes a bad or repeated release detectable in O(1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..errors import (
    DoubleFreeError,
    InvalidFreeError,
    InvalidSizeError,
    InvariantError,
    OutOfMemoryError,
)
from ..sizes import require_count
from ..stats import ArenaStats
from .blocks import Block

__all__ = ["SlotPolicy"]


class SlotPolicy:
    """Base class of the fixed-size policies; not used directly."""

    __slots__ = ("_handed_out", "capacity", "slot_count", "slot_size")

    #: Hand out a free slot; raises IndexError or OutOfMemoryError when none is free.
    _take: Callable[[], int]
    #: Take back a live slot, unchecked.
    _put: Callable[[int], None]

    def __init__(self, capacity: int, slot_size: int = 64) -> None:
        capacity = require_count(capacity, "capacity", minimum=0)
        self.slot_size: int = require_count(slot_size, "slot_size")
        #: Number of slots; bytes past the last whole slot are not managed.
        self.slot_count: int = capacity // self.slot_size
        if not self.slot_count:
            raise InvalidSizeError(
                f"{capacity} bytes hold no slot of {self.slot_size} bytes, so nothing could "
                f"ever be allocated: give at least {self.slot_size} bytes or a smaller slot_size"
            )
        #: Bytes managed: ``slot_count * slot_size``.
        self.capacity: int = self.slot_count * self.slot_size
        self._handed_out = bytearray(self.slot_count)  # 1 = live through allocate()

    # -- the checked API ---------------------------------------------------------------

    def allocate(self) -> int:
        """Hand out a free slot and return its offset; see the subclass for the cost.

        Raises :class:`~slaballoc.errors.OutOfMemoryError` when every slot is live.

        >>> from slaballoc import FreeList
        >>> slots = FreeList(capacity=128)
        >>> slots.allocate(), slots.allocate()
        (0, 64)
        """
        try:
            offset = self._take()
        except IndexError:
            raise self.out_of_memory() from None
        self._handed_out[offset // self.slot_size] = 1
        return offset

    def release(self, offset: int) -> int:
        """Take back a slot that :meth:`allocate` handed out; return its size.  O(1).

        Raises :class:`~slaballoc.errors.InvalidFreeError` for an offset that is
        not the start of a slot and :class:`~slaballoc.errors.DoubleFreeError`
        for a slot that is not live; neither changes anything.

        >>> from slaballoc import LinearSearch
        >>> slots = LinearSearch(capacity=128)
        >>> slots.release(slots.allocate())
        64
        >>> slots.release(0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        slaballoc.errors.DoubleFreeError: slot 0 (offset 0) is not live: it was freed already, ...
        >>> slots.release(32)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        slaballoc.errors.InvalidFreeError: offset 32 is not the start of a slot: ...
        """
        slot = self._slot_at(offset)
        if not self._handed_out[slot]:
            raise DoubleFreeError(
                f"slot {slot} (offset {offset}) is not live: it was freed already, "
                "or never allocated"
            )
        self._handed_out[slot] = 0
        self._put(offset)
        return self.slot_size

    def size_of(self, offset: int) -> int:
        """The size of the slot at ``offset``: always ``slot_size``.  O(1).

        >>> from slaballoc import FreeList
        >>> FreeList(capacity=256, slot_size=32).size_of(64)
        32
        """
        self._slot_at(offset)
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
        """A snapshot of the memory's use.  O(1).

        >>> from slaballoc import FreeList
        >>> slots = FreeList(capacity=256)
        >>> _ = slots.allocate()
        >>> slots.stats().live_blocks, slots.stats().free_blocks
        (1, 3)
        """
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

    def free_slots(self) -> set[int]:
        """The offsets of the free slots.  O(n).

        >>> from slaballoc import LinearSearch
        >>> slots = LinearSearch(capacity=192)
        >>> _ = slots.allocate()
        >>> sorted(slots.free_slots())
        [64, 128]
        """
        raise NotImplementedError

    def free_sizes(self) -> list[int]:
        """The size of every free block: one slot each.  O(1) per free slot.

        >>> from slaballoc import FreeList
        >>> FreeList(capacity=128).free_sizes()
        [64, 64]
        """
        return [self.slot_size] * (self.slot_count - len(self))

    def blocks(self) -> Iterator[Block]:
        """Every slot in address order, live or free.  O(n).

        >>> from slaballoc import FreeList
        >>> slots = FreeList(capacity=128)
        >>> _ = slots.allocate()
        >>> list(slots.blocks())
        [Block(offset=0, size=64, live=True), Block(offset=64, size=64, live=False)]
        """
        free = self.free_slots()
        size = self.slot_size
        for offset in range(0, self.capacity, size):
            yield Block(offset, size, offset not in free)

    def check(self) -> None:
        """Verify the bookkeeping; raise :class:`~slaballoc.errors.InvariantError`.  O(n).

        >>> from slaballoc import FreeList
        >>> FreeList(capacity=128).check()  # silent when all is well
        """
        free = self.free_slots()
        if len(free) + len(self) != self.slot_count:
            raise InvariantError(
                f"{len(free)} free and {len(self)} live slots do not add up to {self.slot_count}"
            )
        if any(offset % self.slot_size or not 0 <= offset < self.capacity for offset in free):
            raise InvariantError("a free slot's offset is not the start of a slot")
        handed_out = {slot * self.slot_size for slot, f in enumerate(self._handed_out) if f}
        if handed_out & free:
            raise InvariantError(f"slots {sorted(handed_out & free)[:8]} are live and free")

    # -- helpers ----------------------------------------------------------------------

    def out_of_memory(self) -> OutOfMemoryError:
        """The error for a request that finds every slot live."""
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
