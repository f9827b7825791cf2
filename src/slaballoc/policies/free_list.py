"""The seed's second design: keep the free slots on a list, so none is searched for."""

from __future__ import annotations

from array import array

from ..errors import InvariantError
from .slots import FREE, IN_USE, SlotPolicy

__all__ = ["FreeList"]


class FreeList(SlotPolicy):
    """Fixed-size slots; the free ones are kept on a stack, reused last-in first-out.

    Allocation pops the stack and release pushes onto it: both O(1), whatever
    the occupancy.  The slot freed last is the next one handed out, which keeps
    recently touched memory hot in the cache (and is the seed's "gets same slot
    back").  Metadata: the stack (4 bytes per slot) and one flag byte per slot.

    >>> slots = FreeList(capacity=256, slot_size=64)
    >>> first, second = slots.allocate(), slots.allocate()
    >>> (first, second)
    (0, 64)
    >>> slots.release(first)
    64
    >>> slots.allocate()  # the slot freed last comes back first
    0
    """

    __slots__ = ("_pop_free", "_push_free", "_stack")

    def __init__(self, capacity: int, slot_size: int = 64) -> None:
        super().__init__(capacity, slot_size)
        # Built in reverse so that a fresh slab hands out slot 0 first, as the seed does.
        typecode = "I" if self.slot_count < 2**32 else "Q"
        self._stack = array(typecode, range(self.slot_count - 1, -1, -1))
        self._pop_free = self._stack.pop
        self._push_free = self._stack.append

    def allocate(self) -> int:
        """Pop a free slot and return its offset.  O(1)."""
        try:
            slot = self._pop_free()
        except IndexError:
            raise self._out_of_memory() from None
        self._in_use[slot] = IN_USE
        return slot * self.slot_size

    def release_unchecked(self, offset: int) -> None:
        """Push the slot back on the free stack.  O(1)."""
        slot = offset // self.slot_size
        self._in_use[slot] = FREE
        self._push_free(slot)

    def __len__(self) -> int:
        return self.slot_count - len(self._stack)

    def _check_free_slots(self) -> None:
        stacked = set(self._stack)
        if len(stacked) != len(self._stack):
            raise InvariantError("a slot is on the free stack twice")
        flagged_free = {slot for slot, flag in enumerate(self._in_use) if flag != IN_USE}
        if stacked != flagged_free:
            raise InvariantError(
                f"free stack and flags disagree: slots {sorted(stacked ^ flagged_free)[:8]}"
            )
