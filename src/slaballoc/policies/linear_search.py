"""The seed's first design: find a free slot by looking at each one in turn."""

from __future__ import annotations

from .._accelerate import accelerated
from .._implementation import core
from .slots import SlotPolicy

__all__ = ["LinearSearch", "PureLinearSearch"]

_FREE, _LIVE = 0, 1


class LinearSearch(SlotPolicy):
    """Fixed-size slots; a free slot is found by scanning a flag per slot.

    ``_take`` hands out the *lowest* free slot: O(n) in the number of slots,
    slower as the slab fills.  ``_put`` is O(1).  The only metadata is one
    flag byte per slot (two with the checked API's).

    >>> slots = LinearSearch(capacity=256, slot_size=64)
    >>> [slots.allocate() for _ in range(3)]
    [0, 64, 128]
    >>> slots.release(64)
    64
    >>> slots.allocate()  # the lowest free slot, wherever it is
    64
    """

    __slots__ = ("_live", "_used")

    def __init__(self, capacity: int, slot_size: int = 64) -> None:
        super().__init__(capacity, slot_size)
        self._used = bytearray(self.slot_count)
        self._live = 0

    def _take(self) -> int:
        """The scan: O(n), done at C speed by ``bytearray.find``."""
        slot = self._used.find(_FREE)
        if slot < 0:
            raise self.out_of_memory()
        self._used[slot] = _LIVE
        self._live += 1
        return slot * self.slot_size

    def _put(self, offset: int) -> None:
        self._used[offset // self.slot_size] = _FREE
        self._live -= 1

    def __len__(self) -> int:
        return self._live

    def free_slots(self) -> set[int]:
        size = self.slot_size
        return {slot * size for slot, flag in enumerate(self._used) if flag == _FREE}


#: The pure-Python class: the specification, and what runs without the C core.
PureLinearSearch = LinearSearch
if core is not None:
    LinearSearch = accelerated(core.LinearSearch, PureLinearSearch)  # type: ignore[misc]
