"""The seed's variable-size allocator: best fit, splitting and coalescing."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING

from ._accelerate import accelerated
from ._implementation import core
from .allocator import BlockAllocator
from .memory import open_memory
from .policies.best_fit import BestFit, PureBestFit
from .sizes import as_integer

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["DEFAULT_ALIGNMENT", "DynamicSlab", "PureDynamicSlab"]

#: Every block starts at a multiple of this many bytes by default: the size of
#: the widest scalar most code stores (double, int64, pointer), so a block can
#: be cast to any of them.  Use 16 or 64 for SIMD or cache-line alignment.
DEFAULT_ALIGNMENT = 8


class DynamicSlab(BlockAllocator):
    """Blocks of any size from 1 byte to the capacity: the seed's ``slab_dynamic.js``.

    Placement is best fit (the smallest free block that fits, ties to the lowest
    address), the rest of the block is split off, and a freed block merges with
    its free neighbours at once, so freeing everything leaves one free block of
    the whole capacity.  Alloc, free and realloc are O(log n) (see
    :class:`~slaballoc.policies.BestFit`).

    >>> slab = DynamicSlab()  # 4096 bytes
    >>> small, medium, large = slab.alloc(10), slab.alloc(256), slab.alloc(1000)
    >>> small[0] = 0x42
    >>> medium[100] = 0xFF
    >>> len(small), len(medium), len(large)
    (10, 256, 1000)
    >>> slab.free(medium)
    >>> slab.free(small)
    >>> slab.free(large)  # all merged back into one 4096-byte block
    >>> [(block.size, block.live) for block in slab.blocks()]
    [(4096, False)]
    """

    __slots__ = ("_heap", "_retired", "_retired_limit")

    _UNLOCKED_SHORTCUTS = ("alloc", "free", "realloc")
    _placement: type[PureBestFit] = PureBestFit

    def __init__(
        self,
        capacity: int | None = None,
        *,
        alignment: int = DEFAULT_ALIGNMENT,
        buffer: Buffer | None = None,
        fast: bool = False,
        thread_safe: bool = True,
    ) -> None:
        memory, heap = open_memory(capacity, buffer, partial(self._placement, alignment=alignment))
        super().__init__(heap, heap._take, memory, fast=fast, thread_safe=thread_safe)
        self._heap = heap
        # Fast mode: views freed or replaced but not released, weakly, so that close()
        # can release those still referenced and let go of the buffer.
        self._retired: list[weakref.ref[memoryview]] = []
        self._retired_limit = 64

    @property
    def alignment(self) -> int:
        """Every block starts at a multiple of this, counted from the buffer's start."""
        return self._heap.alignment

    def alloc(self, size: int) -> memoryview:
        """Return a writable memoryview of exactly ``size`` bytes.  O(log n).

        Raises :class:`~slaballoc.errors.OutOfMemoryError` when no free block is
        large enough, :class:`~slaballoc.errors.SizeTooLargeError` when even an
        empty allocator could not hold it, and ``TypeError``/``ValueError``
        subclasses for a size that is not a positive integer.

        >>> slab = DynamicSlab(capacity=64)
        >>> len(slab.alloc(24)), len(slab.alloc(40))
        (24, 40)
        >>> slab.alloc(0)
        Traceback (most recent call last):
        ...
        slaballoc.errors.InvalidSizeError: size must be at least 1, got 0
        """
        self._lock_acquire()
        try:
            return self._alloc(size)
        finally:
            self._lock_release()

    def _alloc(self, size: int) -> memoryview:
        if type(size) is not int:  # validated once: slicing below needs a real int
            size = as_integer(size, "size")
        offset = self._take(size)
        view = self._memory[offset : offset + size]
        self._live[id(view)] = (offset, view)
        return view

    def alloc_many(self, sizes: Iterable[int]) -> list[memoryview]:
        """Allocate a block of each size: all of them, or (if one fails) none.

        O(k log n) for k sizes.  The sizes are read first, so an iterable that
        raises allocates nothing; whatever interrupts the allocations (an
        error, Ctrl-C), the blocks allocated so far are given back.

        >>> slab = DynamicSlab(capacity=256)
        >>> [len(view) for view in slab.alloc_many([8, 16, 32])]
        [8, 16, 32]
        >>> slab.alloc_many([100, 200])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        slaballoc.errors.OutOfMemoryError: cannot allocate 200 bytes: ...
        >>> len(slab)  # the 100-byte block was given back
        3
        """
        wanted = list(sizes)  # before the lock: the iterable may be code that allocates too
        views: list[memoryview] = []
        with self._lock:
            try:
                for size in wanted:
                    views.append(self._alloc(size))
            except BaseException:
                for view in views:  # coalescing restores exactly the free blocks there were
                    self._free(view)
                raise
        return views

    def realloc(self, view: memoryview, size: int) -> memoryview:
        """Resize a live block, keeping its contents; return the view to use from now on.

        The block stays where it is when it can (shrinking, or growing into a
        free block right after it); otherwise it moves to a best-fit block and
        the first ``min(old, new)`` bytes are copied.  The old view is released
        (safe mode), even when the block did not move, because a memoryview's
        length cannot change.  On any error nothing changes, including
        :class:`~slaballoc.errors.BlockInUseError` when the old view is still
        exported.  O(log n) plus the copy.

        >>> slab = DynamicSlab()
        >>> block = slab.alloc(4)
        >>> block[:] = b"data"
        >>> grown = slab.realloc(block, 1000)  # grows in place into the free space after it
        >>> slab.offset_of(grown), len(grown), bytes(grown[:4])
        (0, 1000, b'data')
        """
        self._lock_acquire()
        try:
            return self._realloc(view, size)
        finally:
            self._lock_release()

    def _realloc(self, view: memoryview, size: int) -> memoryview:
        key = id(view)
        entry = self._live.get(key)
        if entry is None:
            raise self._not_live(view)
        if type(size) is not int:
            size = as_integer(size, "size")
        offset = entry[0]
        heap = self._heap
        old_size = heap.size_of(offset)
        undo: Callable[[], object]
        if heap.resize(offset, size):
            new_offset = offset
            undo = partial(heap.resize, offset, old_size)  # always fits: that space is free
        else:
            new_offset = self._take(size)
            undo = partial(heap._put, new_offset)
        self._retire(view, undo)
        if new_offset != offset:
            keep = min(old_size, size)
            memory = self._memory
            memory[new_offset : new_offset + keep] = memory[offset : offset + keep]
            heap._put(offset)
        del self._live[key]
        new_view = self._memory[new_offset : new_offset + size]
        self._live[id(new_view)] = (new_offset, new_view)
        return new_view

    def _free(self, view: memoryview) -> None:
        super()._free(view)
        if self._fast:
            self._retire(view, None)

    def _retire(self, view: memoryview, undo: Callable[[], object] | None) -> None:
        """Make ``view`` unusable (safe mode) or remember it for close() (fast mode).

        In safe mode, if something still exports it, ``undo()`` puts the
        policy back as it was and :class:`BlockInUseError` is raised.
        """
        if not self._fast:
            try:
                view.release()
            except BufferError:
                if undo is not None:
                    undo()
                raise self._in_use(self._live[id(view)][0], "realloc") from None
            return
        retired = self._retired
        retired.append(weakref.ref(view))
        if len(retired) > self._retired_limit:  # drop the dead ones: amortised O(1)
            retired[:] = [ref for ref in retired if ref() is not None]
            self._retired_limit = 2 * len(retired) + 64

    def _views(self) -> list[memoryview]:
        alive = [ref() for ref in self._retired]
        return [*super()._views(), *(view for view in alive if view is not None)]

    def _forget_views(self) -> None:
        self._retired.clear()


#: The pure-Python class: the specification, and what runs without the C core.
PureDynamicSlab = DynamicSlab
if core is not None:
    DynamicSlab = accelerated(core.DynamicSlab, PureDynamicSlab, _placement=BestFit)  # type: ignore[misc]
