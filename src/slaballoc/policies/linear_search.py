"""The seed's first design: find a free slot by looking at each one in turn."""

from __future__ import annotations

from .slots import FREE, IN_USE, SlotPolicy

__all__ = ["LinearSearch"]


class LinearSearch(SlotPolicy):
    """Fixed-size slots; ``allocate`` scans the slot flags for the lowest free slot.

    Allocation is O(n) in the number of slots and slows as the slab fills;
    release is O(1).  The only metadata is one flag byte per slot.

    >>> slots = LinearSearch(capacity=256, slot_size=64)
    >>> [slots.allocate() for _ in range(3)]
    [0, 64, 128]
    >>> slots.release(64)
    64
    >>> slots.allocate()  # the lowest free slot, wherever it is
    64
    """

    __slots__ = ("_live",)

    def __init__(self, capacity: int, slot_size: int = 64) -> None:
        super().__init__(capacity, slot_size)
        self._live = 0

    def allocate(self) -> int:
        """Return the offset of the lowest free slot.  O(n): a scan of the flags."""
        slot = self._in_use.find(FREE)  # the search, at C speed
        if slot < 0:
            raise self._out_of_memory()
        self._in_use[slot] = IN_USE
        self._live += 1
        return slot * self.slot_size

    def release_unchecked(self, offset: int) -> None:
        """Clear the slot's flag.  O(1)."""
        self._in_use[offset // self.slot_size] = FREE
        self._live -= 1

    def __len__(self) -> int:
        return self._live
