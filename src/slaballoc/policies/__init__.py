"""Placement policies: which offset goes to whom.

A policy knows nothing of buffers or views.  It manages ``capacity`` bytes as
integer offsets and is usable on its own, so that a block can be named by a
small integer handle: stored in an array, or sent to another process that maps
the same memory.  Each policy validates what it is given and raises the errors
of :mod:`slaballoc.errors`, leaving its state unchanged when it does.

- :class:`LinearSearch`: fixed-size slots, the lowest free slot found by a scan.
- :class:`FreeList`: fixed-size slots, a LIFO stack of free slots.
- :class:`BestFit`: variable sizes, exact best fit with splitting and coalescing.

What an allocator needs of a policy (the facts, and the two unchecked
primitives ``_take`` and ``_put``) is defined in :mod:`.contract`.
"""

from .best_fit import BestFit
from .blocks import Block
from .contract import Placement, SizedPlacement, SlotPlacement
from .free_list import FreeList
from .linear_search import LinearSearch

__all__ = [
    "BestFit",
    "Block",
    "FreeList",
    "LinearSearch",
    "Placement",
    "SizedPlacement",
    "SlotPlacement",
]
