"""The seed's two fixed-size slabs: every block is one slot of ``slot_size`` bytes."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from ._accelerate import accelerated
from ._implementation import core
from .allocator import BlockAllocator
from .errors import DoubleFreeError, OutOfMemoryError, SlabError
from .memory import open_memory
from .policies import FreeList, LinearSearch
from .policies.free_list import PureFreeList
from .policies.linear_search import PureLinearSearch
from .policies.slots import SlotPolicy
from .sizes import require_count

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["FreeListSlab", "LinearSlab", "PureFreeListSlab", "PureLinearSlab"]


class _SlotAllocator(BlockAllocator):
    """A fixed-size slab: the memory layer over the slot policy a subclass names."""

    __slots__ = ("_cache", "_cached_ids", "_slot_size", "_slots")
    _placement: type[SlotPolicy]

    def __init__(
        self,
        capacity: int | None = None,
        *,
        slot_size: int = 64,
        buffer: Buffer | None = None,
        fast: bool = False,
        thread_safe: bool = True,
    ) -> None:
        memory, slots = open_memory(capacity, buffer, partial(self._placement, slot_size=slot_size))
        super().__init__(slots, slots._take, memory, fast=fast, thread_safe=thread_safe)
        self._slots = slots
        self._slot_size = slots.slot_size
        # Fast mode only: one view per slot, built on first use and reused for ever
        # (rebuilt if its owner released it, as ``with slab.alloc() as view:`` does).
        self._cache: dict[int, memoryview] = {}
        self._cached_ids: set[int] = set()

    @property
    def slot_size(self) -> int:
        """Bytes in every block."""
        return self._slot_size

    @property
    def slot_count(self) -> int:
        """Number of slots."""
        return self._slots.slot_count

    def alloc(self) -> memoryview:
        """Return a writable memoryview of one free slot (``slot_size`` bytes).

        O(1) for ``FreeListSlab``, O(n) for ``LinearSlab``.  Raises
        :class:`~slaballoc.errors.OutOfMemoryError` when every slot is in use.

        >>> slab = FreeListSlab(capacity=128)
        >>> len(slab.alloc()), len(slab.alloc())
        (64, 64)
        >>> slab.alloc()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        slaballoc.errors.OutOfMemoryError: all 2 slots of 64 bytes are in use: ...
        """
        self._lock_acquire()
        try:
            return self._alloc()
        finally:
            self._lock_release()

    def _alloc(self) -> memoryview:
        try:
            offset = self._take()
        except IndexError:
            raise self._slots.out_of_memory() from None
        if self._fast:
            try:
                view = self._cache[offset]
                view.obj  # noqa: B018  (raises ValueError if its owner released it)
            except (KeyError, ValueError):
                view = self._cache_view(offset)
        else:
            view = self._memory[offset : offset + self._slot_size]
        self._live[id(view)] = (offset, view)
        return view

    def alloc_many(self, count: int) -> list[memoryview]:
        """Allocate ``count`` slots at once: all of them, or (if too few are free) none.

        O(count) for ``FreeListSlab``.

        >>> slab = FreeListSlab()  # 64 slots
        >>> len(slab.alloc_many(60))
        60
        >>> slab.alloc_many(5)
        Traceback (most recent call last):
        ...
        slaballoc.errors.OutOfMemoryError: cannot allocate 5 slots: only 4 are free
        >>> len(slab)
        60
        """
        count = require_count(count, "count", minimum=0)
        with self._lock:
            self._require_open()
            free = self._slots.slot_count - len(self._slots)
            if count > free:
                raise OutOfMemoryError(
                    f"cannot allocate {count} slots: only {free} are free",
                    requested=count * self._slot_size,
                    free=free * self._slot_size,
                    largest_free=self._slots.largest_free,
                )
            views: list[memoryview] = []
            try:
                for _ in range(count):
                    views.append(self._alloc())
            except BaseException:  # KeyboardInterrupt included: give back what was taken
                for view in views:
                    self._free(view)
                raise
            return views

    def _cache_view(self, offset: int) -> memoryview:
        released = self._cache.get(offset)
        if released is not None:
            self._cached_ids.discard(id(released))
        view = self._cache[offset] = self._memory[offset : offset + self._slot_size]
        self._cached_ids.add(id(view))
        return view

    def _views(self) -> list[memoryview]:
        return [*super()._views(), *self._cache.values()]

    def _forget_views(self) -> None:
        self._cache.clear()
        self._cached_ids.clear()

    def _not_live_view_of_this_memory(self, view: memoryview) -> SlabError:
        if id(view) in self._cached_ids:
            return DoubleFreeError("this slot was freed already (double free)")
        return super()._not_live_view_of_this_memory(view)

    def __repr__(self) -> str:
        if self._closed:
            return super().__repr__()
        return (
            f"<{type(self).__name__} {len(self._live)}/{self.slot_count} slots of "
            f"{self._slot_size} B in use{self._repr_notes()}>"
        )


class LinearSlab(_SlotAllocator):
    """Fixed-size slots found by linear search: the seed's ``slab_linear.js``.

    ``alloc()`` hands out the lowest free slot, found by scanning one flag byte
    per slot: O(n), slower as the slab fills.  ``free()`` is O(1).  The only
    metadata is the flags; views are made on demand.

    >>> slab = LinearSlab(capacity=4096, slot_size=64)
    >>> slot = slab.alloc()
    >>> slot[0] = 0x42
    >>> slot[63] = 0xFF
    >>> len(slot), slab.offset_of(slot), slab.used
    (64, 0, 64)
    >>> slab.free(slot)
    >>> slot[0]
    Traceback (most recent call last):
    ...
    ValueError: operation forbidden on released memoryview object
    """

    __slots__ = ()
    _placement: type[SlotPolicy] = PureLinearSearch


class FreeListSlab(_SlotAllocator):
    """Fixed-size slots kept on a free list: the seed's ``slab_freelist.js``.

    ``alloc()`` and ``free()`` are O(1) at any occupancy.  The free list is a
    stack: the slot freed last is handed out next ("gets same slot back").

    >>> slab = FreeListSlab()  # 4096 bytes: 64 slots of 64 bytes
    >>> slot = slab.alloc()
    >>> slab.free(slot)
    >>> reused = slab.alloc()  # the same slot comes back
    >>> slab.offset_of(reused), len(slab), slab.slot_count
    (0, 1, 64)
    """

    __slots__ = ()
    _placement: type[SlotPolicy] = PureFreeList


#: The pure-Python classes: the specification, and what runs without the C core.
PureLinearSlab = LinearSlab
PureFreeListSlab = FreeListSlab
if core is not None:
    LinearSlab = accelerated(core.SlotSlab, PureLinearSlab, _placement=LinearSearch)  # type: ignore[misc]
    FreeListSlab = accelerated(core.SlotSlab, PureFreeListSlab, _placement=FreeList)  # type: ignore[misc]
