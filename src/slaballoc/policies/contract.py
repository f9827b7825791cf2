"""The placement-policy contract: what an allocator needs of a policy.  Read this first.

A placement policy decides which offset each block gets; it knows nothing of
buffers or views.  An allocator (:class:`~slaballoc.allocator.BlockAllocator`)
drives it through two kinds of members:

* **facts** (:class:`Placement`): ``capacity``, ``used``, ``largest_free``,
  ``len()``, ``size_of(offset)``, ``blocks()``, ``free_sizes()``, ``stats()``
  and ``check()``; reading them changes nothing;
* **two unchecked primitives**, private because they trust their caller:
  ``_take`` hands out an offset and ``_put`` takes one back.  The allocator
  calls them because its live table has already vouched for every offset it
  gives back, so the policy pays for no second check.  Each policy also has a
  checked public API (``allocate``/``release``) for callers that use it on its
  own.

Invariants every policy keeps (``check()`` verifies them):

1. the blocks (live and free) tile ``[0, capacity)`` without gap or overlap;
2. ``used`` is the sum of the live blocks' sizes and ``len()`` their number;
3. ``_take`` either returns the offset of a block that was free and is now
   live, or raises and changes nothing;
4. ``_put(offset)``, given the offset of a live block, makes it free; given
   anything else its behaviour is undefined (that is what "unchecked" means);
5. a policy is not thread-safe: its allocator serialises every call.

Two shapes exist, for fixed-size slots and for variable sizes:

* :class:`SlotPlacement`: ``_take()`` takes no argument (every block is one
  slot) and raises ``IndexError`` or
  :class:`~slaballoc.errors.OutOfMemoryError` when every slot is live;
* :class:`SizedPlacement`: ``_take(size)`` takes a size that is already an
  ``int`` (the allocator converts almost-integers once) and range-checks it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from ..errors import OutOfMemoryError
from ..stats import ArenaStats
from .blocks import Block

__all__ = ["Placement", "SizedPlacement", "SlotPlacement"]


class Placement(Protocol):
    """The facts every policy reports, and the primitive that takes a block back."""

    @property
    def capacity(self) -> int:
        """Bytes managed (the memory's size rounded down to whole units)."""

    @property
    def used(self) -> int:
        """Bytes in live blocks."""

    @property
    def largest_free(self) -> int:
        """The largest block that could be handed out now."""

    def size_of(self, offset: int) -> int:
        """The size of the live block at ``offset``; raises for anything else."""

    def blocks(self) -> Iterator[Block]:
        """Every block, live and free, in address order."""

    def free_sizes(self) -> list[int]:
        """The size of every free block."""

    def stats(self) -> ArenaStats:
        """A snapshot of the memory's use."""

    def check(self) -> None:
        """Raise :class:`~slaballoc.errors.InvariantError` if an invariant is broken."""

    def __len__(self) -> int:
        """Number of live blocks."""

    @property
    def _put(self) -> Callable[[int], object]:
        """Unchecked: make the live block at this offset free."""


class SlotPlacement(Placement, Protocol):
    """A fixed-size policy: every block is one slot of ``slot_size`` bytes."""

    @property
    def slot_size(self) -> int:
        """Bytes in every slot."""

    @property
    def slot_count(self) -> int:
        """Number of slots."""

    @property
    def _take(self) -> Callable[[], int]:
        """Unchecked: hand out a free slot; ``IndexError`` or ``OutOfMemoryError`` if none."""

    def out_of_memory(self) -> OutOfMemoryError:
        """The error for a request that finds every slot live."""


class SizedPlacement(Placement, Protocol):
    """A variable-size policy: blocks of any size, rounded up to ``alignment``."""

    @property
    def alignment(self) -> int:
        """Every block starts at, and is sized in, multiples of this."""

    @property
    def _take(self) -> Callable[[int], int]:
        """Hand out a block of at least ``size`` bytes (an ``int``, range-checked)."""

    def resize(self, offset: int, size: int) -> bool:
        """Resize the live block at ``offset`` in place; False (nothing changed) if it cannot."""
