"""The seed's second design: keep the free slots on a list, so none is searched for."""

from __future__ import annotations

from array import array

from .._accelerate import accelerated
from .._implementation import core
from ..errors import InvariantError
from .slots import SlotPolicy

__all__ = ["FreeList", "PureFreeList"]


class FreeList(SlotPolicy):
    """Fixed-size slots; the free ones are kept on a stack, reused last-in first-out.

    ``_take`` pops the stack and ``_put`` pushes onto it: both O(1) whatever the
    occupancy, and both are the stack's own (C) methods, so they cost no Python
    call.  The slot freed last is the next one handed out, which keeps recently
    touched memory hot in the cache (and is the seed's "gets same slot back").
    Metadata: an 8-byte stack entry per free slot, plus the checked API's flag
    byte per slot.

    >>> slots = FreeList(capacity=256, slot_size=64)
    >>> first, second = slots.allocate(), slots.allocate()
    >>> (first, second)
    (0, 64)
    >>> slots.release(first)
    64
    >>> slots.allocate()  # the slot freed last comes back first
    0
    """

    __slots__ = ("_put", "_stack", "_take")

    def __init__(self, capacity: int, slot_size: int = 64) -> None:
        super().__init__(capacity, slot_size)
        # Offsets, highest first, so that a new slab hands out offset 0 first, as the seed does.
        size = self.slot_size
        self._stack = array("q", range(self.capacity - size, -1, -size))
        self._take = self._stack.pop  # raises IndexError when empty
        self._put = self._stack.append

    def __len__(self) -> int:
        return self.slot_count - len(self._stack)

    def free_slots(self) -> set[int]:
        free = set(self._stack)
        if len(free) != len(self._stack):
            raise InvariantError("a slot is on the free stack twice")
        return free


#: The pure-Python class: the specification, and what runs without the C core.
PureFreeList = FreeList
if core is not None:
    FreeList = accelerated(core.FreeList, PureFreeList)  # type: ignore[misc]
