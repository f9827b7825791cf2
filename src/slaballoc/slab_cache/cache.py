"""``SlabCache``: size classes served from slabs, with per-thread magazines, over one buffer.

Three layers, each in its own module, as in Bonwick's allocator:

* :mod:`.magazines`: each thread's loaded and previous magazine per class and
  the shared depot: the common alloc and free touch nothing shared;
* :mod:`.class_slabs`: per class, slabs of equal objects, partial slabs first,
  few empty slabs kept;
* :mod:`.backing_store`: best fit over the whole buffer, which gives slabs to
  every class and takes them back, and serves requests too large for any class.

This module adds the memory layer: the view of exactly the requested size,
the live table, the typed errors, statistics and ``check()``.  Which class
serves a request is :mod:`.size_classes`; debugging is :mod:`.debug`.

With the C core, ``SlabCache`` is this class over a C base (``csrc/slab_cache.c``)
that does ``alloc``, ``free``, ``alloc_many`` and ``free_many`` on a magazine hit
and calls the methods below for every other case; ``PureSlabCache`` is this
class as written, the specification.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, cast

from .._accelerate import accelerated
from .._implementation import core
from ..allocator import BlockAllocator, _is_released
from ..errors import (
    DoubleFreeError,
    InvariantError,
    OutOfMemoryError,
    SizeTooLargeError,
    SlabError,
)
from ..memory import open_memory
from ..sizes import require_count
from .backing_store import BackingStore
from .class_slabs import ClassSlabs
from .debug import RED_ZONE_BYTES, DebugChecks, Leak
from .magazines import Lock, Magazines, NoLock, ThreadMagazines, require_magazine_size

if TYPE_CHECKING:
    import threading
from .size_classes import SizeClasses
from .slab import Slab
from .slab_stats import CacheStats, SlabInfo, SlabRecord

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["DEFAULT_CACHE_CAPACITY", "PureSlabCache", "SlabCache"]

#: The buffer a ``SlabCache()`` makes when given neither ``capacity`` nor ``buffer``.
DEFAULT_CACHE_CAPACITY = 1 << 20


class SlabCache(BlockAllocator):
    """Blocks of any size from one buffer: size classes, slabs and per-thread magazines.

    A request up to the largest class (16 KiB by default) is rounded up to its
    class (jemalloc's spacing: at most 15 bytes or under 20% wasted) and served
    from that class's slabs through the calling thread's magazines; a larger one
    goes straight to the best-fit backing store, which also holds the slabs.
    Every block is a writable memoryview of exactly the requested size.

    It subclasses :class:`~slaballoc.allocator.BlockAllocator` for the live
    table, the error messages, releasing views (``BlockInUseError`` for an
    exported one), ``offset_of``, ``memory`` and ``close``.  It replaces
    ``free`` and ``free_many``, because the base class takes its lock around
    every call and gives each offset straight back to the policy, while here
    the common free must touch nothing shared (the object goes to the calling
    thread's magazine); and ``stats``/``check``, which have three layers to
    report and verify.  The backing store is its ``policy``: ``used``,
    ``blocks()`` and ``largest_free`` describe the buffer as slabs and large
    blocks.

    Thread-safe by default: the depot, the slabs and the backing store are
    shared under the allocator's lock, taken only on a magazine miss;
    ``thread_safe=False`` drops even that, for a cache used by one thread.
    ``check()`` and the reports are exact when no other thread is allocating.

    Alloc and free: O(1) on a magazine hit; a miss is O(magazine size) for the
    bulk refill or flush, plus O(log n) when a slab is taken or given back.

    >>> cache = SlabCache(capacity=1 << 20)
    >>> buf = cache.alloc(1500)  # from the 1536-byte class
    >>> len(buf), cache.slabinfo()[21].object_size, cache.slabinfo()[21].active_objects
    (1500, 1536, 1)
    >>> cache.free(buf)
    >>> views = cache.alloc_many(1500, 32); cache.free_many(views)
    >>> len(cache), cache.stats().allocs
    (0, 33)
    >>> cache.check()
    """

    __slots__ = (
        "_backing",
        "_capacity_of",
        "_classes",
        "_debug",
        "_largest",
        "_local",
        "_magazines",
        "_shift",
        "_slabs",
        "_table",
    )

    def __init__(
        self,
        capacity: int | None = None,
        *,
        buffer: Buffer | None = None,
        size_classes: Iterable[int] | None = None,
        alignment: int = 16,
        magazine_size: int | None = None,
        keep_empty: int = 1,
        debug: bool = False,
        thread_safe: bool = True,
    ) -> None:
        classes = SizeClasses(size_classes, alignment=alignment)
        keep_empty = require_count(keep_empty, "keep_empty", minimum=0)
        if capacity is None and buffer is None:
            capacity = DEFAULT_CACHE_CAPACITY
        magazine_size = require_magazine_size(magazine_size)  # all checked before the buffer
        memory, backing = open_memory(
            capacity, buffer, partial(BackingStore, alignment=classes.alignment)
        )
        super().__init__(backing, backing._take, memory)
        self._backing = backing
        self._classes = classes
        self._debug = DebugChecks(memory) if debug else None
        red_zone = RED_ZONE_BYTES if debug else 0
        self._slabs = [
            ClassSlabs(
                size,
                size + red_zone,
                backing,
                keep_empty=keep_empty,
                on_new_slab=None if self._debug is None else self._debug_new_slab,
            )
            for size in classes
        ]
        if not thread_safe:
            # NoLock has the lock's interface: the base class's ``with self._lock`` works too.
            self._lock = cast("threading.Lock", NoLock())
        self._magazines = Magazines(self._slabs, cast("Lock", self._lock), magazine_size)
        # Bound for the hot paths (read on every alloc and free):
        self._local = self._magazines.local
        self._capacity_of = self._magazines.capacity  # magazine size per class (adapts in place)
        self._table = classes.table
        self._shift = classes.shift
        self._largest = classes.largest  # 0 once closed: every request takes the checked path

    # -- allocating -----------------------------------------------------------------

    def alloc(self, size: int) -> memoryview:
        """Return a writable memoryview of exactly ``size`` bytes.  O(1) on a magazine hit.

        Raises :class:`~slaballoc.errors.OutOfMemoryError` when neither the
        class nor the backing store can serve it (after reclaiming cached free
        memory), :class:`~slaballoc.errors.SizeTooLargeError` above the
        capacity, and ``TypeError``/``ValueError`` subclasses for a size that is
        not a positive integer.  No live block and none of its bytes change
        then; the only trace an out-of-memory leaves is the reclaim itself
        (free objects cached in magazines and empty slabs went back to the
        backing store, as they would have to anyway).

        >>> cache = SlabCache()
        >>> len(cache.alloc(10)), len(cache.alloc(100_000))  # a class object; a large block
        (10, 100000)
        >>> cache.alloc(-1)
        Traceback (most recent call last):
        ...
        slaballoc.errors.InvalidSizeError: size must be at least 1, got -1
        """
        if type(size) is not int or not 0 < size <= self._largest:
            return self._alloc_checked(size)
        index = self._table[(size - 1) >> self._shift]
        try:
            mags: ThreadMagazines = self._local.mags
        except AttributeError:
            mags = self._magazines.mine()
        try:
            offset = mags.loaded[index].pop()
        except IndexError:
            offset = self._refill(mags, index, size)
        if self._debug is not None:
            self._debug_alloc(mags, index, offset, size)
        mags.allocs[index] += 1
        view = self._memory[offset : offset + size]
        self._live[id(view)] = (offset, view)
        return view

    def alloc_many(self, size: int, count: int) -> list[memoryview]:
        """Allocate ``count`` blocks of ``size`` bytes: all of them, or (on failure) none.

        Faster per block than ``alloc``: one trip to the depot and slabs for
        the whole batch.  O(count).

        >>> cache = SlabCache(capacity=64 << 10)
        >>> [len(view) for view in cache.alloc_many(24, 3)]
        [24, 24, 24]
        >>> cache.alloc_many(4000, 100)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        slaballoc.errors.OutOfMemoryError: cannot allocate 100 blocks of 4000 bytes ...
        >>> len(cache)
        3
        """
        self._require_open()
        size = require_count(size, "size")
        count = require_count(count, "count", minimum=0)
        if size > self._largest or self._debug is not None:
            return self._alloc_each(size, count)
        index = self._table[(size - 1) >> self._shift]
        mags = self._magazines.mine()
        try:
            offsets = self._magazines.take_many(mags, index, count)
        except (OutOfMemoryError, SizeTooLargeError):
            raise self._out_of_memory(size, index, count) from None
        mags.allocs[index] += count
        memory, live = self._memory, self._live
        views = [memory[offset : offset + size] for offset in offsets]
        # One C loop, no bytecode per block:
        live.update(zip(map(id, views), zip(offsets, views, strict=True), strict=True))
        return views

    def realloc(self, view: memoryview, size: int) -> memoryview:
        """Resize a live block, keeping its contents; return the view to use from now on.

        Within the same class (and, for large blocks, when the backing store can
        resize in place) the block stays where it is; otherwise a new block is
        allocated, the first ``min(old, new)`` bytes copied and the old one
        freed.  The old view is released.  On any error nothing changes.
        O(1) in place, else an alloc, a copy and a free.

        >>> cache = SlabCache()
        >>> block = cache.alloc(20)
        >>> block[:4] = b"data"
        >>> grown = cache.realloc(block, 30)  # same 32-byte class: it stays put
        >>> cache.offset_of(grown) == 0, len(grown), bytes(grown[:4])
        (True, 30, b'data')
        """
        entry = self._live.get(id(view))
        if entry is None:
            raise self._not_live(view)
        offset = entry[0]
        self._require_open()
        size = require_count(size, "size")
        with self._lock:
            old = self._size_of(offset, view)
        largest = self._largest
        if self._debug is None and (
            (size <= largest and old <= largest and self._class_of(size) == self._class_of(old))
            or (size > largest and old > largest and self._resize_large(view, offset, old, size))
        ):
            try:
                view.release()  # a no-op if _resize_large released it
            except BufferError:
                raise self._in_use(offset, "realloc") from None
            new_view = self._memory[offset : offset + size]
            del self._live[id(view)]
            self._live[id(new_view)] = (offset, new_view)
            return new_view
        return self._move(view, offset, old, size)

    # -- freeing --------------------------------------------------------------------

    def free(self, view: memoryview) -> None:
        """Give back a block that ``alloc`` returned; its view is released.  O(1) on a hit.

        Any thread may free any block.  Raises
        :class:`~slaballoc.errors.InvalidFreeError` for anything that is not a
        live block and :class:`~slaballoc.errors.DoubleFreeError` for a block
        freed already; neither changes anything.

        >>> cache = SlabCache()
        >>> block = cache.alloc(64)
        >>> cache.free(block)
        >>> cache.free(block)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        slaballoc.errors.DoubleFreeError: this view has been released: ... (double free)
        """
        key = id(view)
        entry = self._live.get(key)
        if entry is None:
            raise self._not_live(view)
        offset = entry[0]
        try:
            size = view.nbytes
            view.release()  # first: while it is exported, the block must stay live
        except ValueError:  # its owner released it already: the block is still live
            with self._lock:
                size = self._released_size(offset)
        except BufferError:
            raise self._in_use(offset, "free") from None
        if self._live.pop(key, None) is None:
            raise DoubleFreeError("this block was freed by another thread at the same time")
        if size > self._largest:
            self._free_large(offset)
            return
        index = self._table[(size - 1) >> self._shift]
        try:
            mags: ThreadMagazines = self._local.mags
        except AttributeError:
            mags = self._magazines.mine()
        mags.frees[index] += 1
        corruption = self._debug_free(index, offset, size) if self._debug is not None else None
        loaded = mags.loaded[index]
        if len(loaded) < self._capacity_of[index]:
            loaded.append(offset)
        else:
            self._magazines.spill(mags, index, offset)
        if corruption is not None:
            raise corruption

    def free_many(self, views: Iterable[memoryview]) -> None:
        """Free several blocks: all of them, or (if any is not live) none.  O(k).

        Faster per block than ``free``: the objects of each class go back to the
        thread's magazine and the slabs in one batch.

        >>> cache = SlabCache()
        >>> blocks = cache.alloc_many(64, 3)
        >>> cache.free_many([*blocks, bytearray(8)])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        slaballoc.errors.InvalidFreeError: cannot free a bytearray: ...
        >>> cache.free_many(blocks); len(cache)
        0
        """
        batch = list(views)
        live = self._live
        keys = list(map(id, batch))
        entries = list(map(live.get, keys))
        if None in entries or len(set(keys)) != len(keys):
            raise self._first_not_live(batch)
        try:
            sizes = [view.nbytes for view in batch]
        except ValueError:  # one was released by its owner
            with self._lock:
                sizes = [self._size_of(live[id(view)][0], view) for view in batch]
        self._release_all(batch, "free_many")
        try:
            for key in keys:
                del live[key]
        except KeyError:
            raise DoubleFreeError("a block was freed by another thread at the same time") from None
        offsets = [entry[0] for entry in entries if entry is not None]
        table, shift, largest = self._table, self._shift, self._largest
        classes = [table[(size - 1) >> shift] if size <= largest else -1 for size in sizes]
        corruption: Exception | None = None
        if self._debug is not None:
            for index, offset, size in zip(classes, offsets, sizes, strict=True):
                if index >= 0:
                    corruption = self._debug_free(index, offset, size) or corruption
        by_class = _grouped(classes, offsets)
        for offset in by_class.pop(-1, ()):
            self._free_large(offset)
        mags = self._magazines.mine()
        for index, objects in by_class.items():
            mags.frees[index] += len(objects)
            self._magazines.give_many(mags, index, objects)
        if corruption is not None:
            raise corruption

    # -- reports --------------------------------------------------------------------

    def slabinfo(self) -> list[SlabInfo]:
        """One row per size class, like ``/proc/slabinfo``.  O(live blocks + classes).

        >>> cache = SlabCache()
        >>> _ = cache.alloc_many(100, 10)
        >>> row = cache.slabinfo()[6]
        >>> row.object_size, row.active_objects, row.slabs, row.objects_per_slab, row.wasted_bytes
        (112, 10, 1, 256, 120)
        """
        with self._lock:
            self._require_open()
            return self._slabinfo(self._live_sizes())

    def _slabinfo(self, live: list[tuple[int, int]]) -> list[SlabInfo]:
        active = [0] * len(self._slabs)
        requested = [0] * len(self._slabs)
        for _, size in live:
            if size <= self._classes.largest:
                index = self._table[(size - 1) >> self._shift]
                active[index] += 1
                requested[index] += size
        totals = self._magazines.totals()
        rows = []
        for index, slabs in enumerate(self._slabs):
            tail = slabs.slab_bytes - slabs.objects_per_slab * slabs.stride
            misses = totals.alloc_misses[index] + totals.free_misses[index]
            rows.append(
                SlabInfo(
                    object_size=slabs.object_size,
                    active_objects=active[index],
                    cached_objects=self._magazines.cached(index),
                    total_objects=slabs.total_objects,
                    slabs=slabs.slab_count,
                    peak_slabs=slabs.peak_slabs,
                    objects_per_slab=slabs.objects_per_slab,
                    slab_bytes=slabs.slab_bytes,
                    requested_bytes=requested[index],
                    wasted_bytes=active[index] * slabs.object_size
                    - requested[index]
                    + slabs.slab_count * tail,
                    magazine_size=self._capacity_of[index],
                    magazine_hits=totals.allocs[index] + totals.frees[index] - misses,
                    magazine_misses=misses,
                    allocs=totals.allocs[index],
                    frees=totals.frees[index],
                )
            )
        return rows

    def slabs(self) -> list[SlabRecord]:
        """Every slab of every class, in address order, with its live and cached objects.

        For pictures and reports: a snapshot, read under the lock.  The other
        blocks of the backing store (``blocks()``) are large blocks and free
        space.  O(live blocks x log slabs + slabs log slabs).

        >>> cache = SlabCache(magazine_size=0)
        >>> blocks = cache.alloc_many(1500, 3)
        >>> cache.slabs()
        [SlabRecord(offset=0, size=12288, object_size=1536, live=3, cached=0, capacity=8)]
        """
        with self._lock:
            self._require_open()
            live: dict[int, int] = {}
            for offset, size in self._live_sizes():
                if size <= self._classes.largest:
                    slab = self._slabs[self._class_of(size)].slab_of(offset)
                    if slab is not None:
                        live[slab.start] = live.get(slab.start, 0) + 1
            records = [
                SlabRecord(
                    offset=slab.start,
                    size=self._backing.size_of(slab.start),
                    object_size=slabs.object_size,
                    live=live.get(slab.start, 0),
                    cached=slab.in_use - live.get(slab.start, 0),
                    capacity=slab.count,
                )
                for slabs in self._slabs
                for slab in slabs.slabs()
            ]
        return sorted(records, key=lambda record: record.offset)

    def stats(self) -> CacheStats:
        """The backing store's figures, the cache's totals and peaks, and every class's row.

        O(live blocks + classes x threads).

        >>> cache = SlabCache()
        >>> cache.free(cache.alloc(64))
        >>> stats = cache.stats()
        >>> stats.allocs, stats.frees, stats.magazine_hits, stats.magazine_misses, stats.peak_used
        (1, 1, 1, 1, 4096)
        """
        with self._lock:
            self._require_open()
            live = self._live_sizes()
            rows = tuple(self._slabinfo(live))
            backing = self._backing.stats()
            peak = self._backing.peak_used
            high_water = self._backing.high_water
        large = [size for _, size in live if size > self._classes.largest]
        return CacheStats(
            capacity=backing.capacity,
            used=backing.used,
            live_blocks=len(live),
            free_blocks=backing.free_blocks,
            largest_free=backing.largest_free,
            fragmentation=backing.fragmentation,
            live_bytes=sum(row.requested_bytes for row in rows) + sum(large),
            peak_used=peak,
            high_water=high_water,
            large_blocks=len(large),
            allocs=sum(row.allocs for row in rows),
            frees=sum(row.frees for row in rows),
            magazine_hits=sum(row.magazine_hits for row in rows),
            magazine_misses=sum(row.magazine_misses for row in rows),
            classes=rows,
        )

    @property
    def size_classes(self) -> tuple[int, ...]:
        """The object size of every class, ascending."""
        return self._classes.sizes

    def leaks(self) -> list[Leak]:
        """Every block still live, by offset, with its allocation traceback in debug mode.

        O(n log n).

        >>> cache = SlabCache(debug=True)
        >>> block = cache.alloc(40)
        >>> print(cache.leaks()[0])  # doctest: +ELLIPSIS
        40 bytes at offset 0, allocated at:
        ...
            block = cache.alloc(40)
        """
        debug = self._debug
        with self._lock:
            self._require_open()
            live = self._live_sizes()
        return sorted(
            (
                Leak(offset, size, None if debug is None else debug.origin(offset))
                for offset, size in live
            ),
            key=lambda leak: leak.offset,
        )

    def check(self) -> None:
        """Verify every invariant of the three layers and the live table.  O(n log n).

        Every object of every slab is in exactly one state (live, cached in a
        magazine, or free in its slab); every live block is inside its class's
        slab on an object boundary, or is a block of the backing store; the
        backing store holds exactly the slabs and the large blocks.  In debug
        mode, every free object's poison and every live block's red zone too.
        Raises :class:`~slaballoc.errors.InvariantError` naming the first fault.

        >>> cache = SlabCache()
        >>> _ = cache.alloc(10)
        >>> cache.check()  # silent when all is well
        """
        super().check()  # takes the lock, then runs _check

    def _check(self) -> None:
        self._backing.check()
        for slabs in self._slabs:
            slabs.check()
        large = self._check_live()
        self._check_cached()
        held = sum(slabs.slab_count for slabs in self._slabs) + large
        if held != len(self._backing):
            raise InvariantError(
                f"the backing store holds {len(self._backing)} blocks, but the classes "
                f"hold {held - large} slabs and {large} blocks are large"
            )

    # -- closing --------------------------------------------------------------------

    def close(self) -> None:
        """Release every view and the memory; in debug mode, warn of blocks still live.

        As :meth:`BlockAllocator.close <slaballoc.allocator.BlockAllocator.close>`
        (an exported view keeps the cache open); the warning is a
        ``ResourceWarning`` listing each leak and the line that allocated it.
        Closing twice is harmless.  O(n).

        >>> with SlabCache() as cache:
        ...     block = cache.alloc(10)
        >>> cache.alloc(10)
        Traceback (most recent call last):
        ...
        slaballoc.errors.AllocatorClosedError: SlabCache is closed: create a new one
        """
        if self._closed:
            return
        leaks = self.leaks() if self._debug is not None else []
        super().close()
        self._largest = 0  # every request now takes the checked path, which refuses
        self._magazines.forget()
        if leaks:
            report = "\n".join(str(leak) for leak in leaks)
            warnings.warn(
                f"SlabCache closed with {len(leaks)} block(s) still live:\n{report}",
                ResourceWarning,
                stacklevel=2,
            )

    @property
    def thread_safe(self) -> bool:
        """True unless made with ``thread_safe=False`` (then even a miss takes no lock)."""
        return not isinstance(self._lock, NoLock)

    # -- internals ------------------------------------------------------------------

    def _first_not_live(self, batch: list[memoryview]) -> SlabError:
        """The error for the first block of ``batch`` that is not live, or given twice."""
        refusal = self._batch_refusal(batch)
        return refusal or DoubleFreeError("a block was freed by another thread at the same time")

    def _live_sizes(self) -> list[tuple[int, int]]:
        """(offset, requested size) of every live block.  The caller holds the lock."""
        return [(offset, self._size_of(offset, view)) for offset, view in list(self._live.values())]

    def _size_of(self, offset: int, view: memoryview) -> int:
        try:
            return view.nbytes
        except ValueError:  # released by its owner: the block is live all the same
            return self._released_size(offset)

    def _released_size(self, offset: int) -> int:
        """The size of a live block whose view its owner released (the caller holds the lock).

        The size asked for is kept only in debug mode; otherwise the whole
        object (or large block) counts, which serves its class all the same.
        """
        if self._debug is not None:
            requested = self._debug.requested(offset)
            if requested is not None:
                return requested
        for slabs in self._slabs:
            if slabs.slab_of(offset) is not None:
                return slabs.object_size
        return self._backing.size_of(offset)

    def _class_of(self, size: int) -> int:
        return self._table[(size - 1) >> self._shift]

    def _alloc_checked(self, size: object) -> memoryview:
        """The path of every request the hot path does not take: validate, then serve."""
        self._require_open()
        number = require_count(size, "size")
        if number <= self._largest:
            return self.alloc(number)  # an integer type other than int
        return self._alloc_large(number)

    def _refill(self, mags: ThreadMagazines, index: int, size: int) -> int:
        try:
            return self._magazines.refill(mags, index)
        except (OutOfMemoryError, SizeTooLargeError):  # no room, or a slab beyond the capacity
            raise self._out_of_memory(size, index, 1) from None

    def _alloc_large(self, size: int) -> memoryview:
        with self._lock:
            try:
                offset = self._backing.allocate(size)
            except OutOfMemoryError:
                self._magazines.reclaim()
                offset = self._backing.allocate(size)
        if self._debug is not None:
            self._debug.note_origin(offset, size)
        view = self._memory[offset : offset + size]
        self._live[id(view)] = (offset, view)
        return view

    def _alloc_each(self, size: int, count: int) -> list[memoryview]:
        """``alloc_many`` one block at a time: large blocks, and debug mode's checks."""
        views: list[memoryview] = []
        try:
            for _ in range(count):
                views.append(self.alloc(size))
        except Exception:
            for view in reversed(views):  # coalescing restores the free blocks there were
                self.free(view)
            raise
        return views

    def _move(self, view: memoryview, offset: int, old: int, size: int) -> memoryview:
        """``realloc`` when the block must move: place the new block, release the old view
        (or, if it is exported, undo the placement exactly), copy, give the old block back.
        """
        mags = self._magazines.mine()
        memory = self._memory
        with self._lock:
            new_offset, undo = self._place(mags, size)
            try:
                view.release()
            except BufferError:
                undo()
                raise self._in_use(offset, "realloc") from None
            keep = min(old, size)
            memory[new_offset : new_offset + keep] = memory[offset : offset + keep]
            del self._live[id(view)]
            corruption = self._give_back_moved(mags, offset, old)
        new_view = memory[new_offset : new_offset + size]
        self._live[id(new_view)] = (new_offset, new_view)
        if corruption is not None:
            raise corruption
        return new_view

    def _place(self, mags: ThreadMagazines, size: int) -> tuple[int, Callable[[], None]]:
        """A block for ``_move``, straight from the slabs or the backing store, and the exact
        undo of taking it.  The caller holds the lock.
        """
        backing, debug = self._backing, self._debug
        if size > self._largest:
            try:
                offset = backing.allocate(size)
            except OutOfMemoryError:
                self._magazines.reclaim()
                offset = backing.allocate(size)
            if debug is not None:
                debug.note_origin(offset, size)

            def undo_large() -> None:
                backing.release(offset)  # coalescing restores the free blocks there were
                if debug is not None:
                    debug.forget_origin(offset)

            return offset, undo_large
        index = self._class_of(size)
        slabs = self._slabs[index]
        try:
            grew = not slabs.free_objects  # then no slab is empty, and a new one is taken
            (offset,) = slabs.take(1)
        except (OutOfMemoryError, SizeTooLargeError):
            self._magazines.reclaim()
            try:
                grew = not slabs.free_objects
                (offset,) = slabs.take(1)
            except (OutOfMemoryError, SizeTooLargeError):
                raise self._out_of_memory(size, index, 1) from None
        if debug is not None:
            try:
                debug.on_alloc(offset, size, slabs.object_size, slabs.stride)
            except InvariantError:
                slabs.give_back((offset,), keep_empty=0 if grew else None)
                raise
        mags.allocs[index] += 1
        mags.alloc_misses[index] += 1

        def undo_object() -> None:
            mags.allocs[index] -= 1
            mags.alloc_misses[index] -= 1
            if debug is not None:
                debug.on_free(offset, size, slabs.object_size, slabs.stride)
            slabs.give_back((offset,), keep_empty=0 if grew else None)

        return offset, undo_object

    def _give_back_moved(
        self, mags: ThreadMagazines, offset: int, size: int
    ) -> InvariantError | None:
        """Free the old block of a move (the caller holds the lock); a debug report, if any."""
        if size > self._largest:
            if self._debug is not None:
                self._debug.forget_origin(offset)
            self._backing.release(offset)
            return None
        index = self._class_of(size)
        slabs = self._slabs[index]
        corruption = None
        if self._debug is not None:
            try:
                self._debug.on_free(offset, size, slabs.object_size, slabs.stride)
            except InvariantError as report:
                corruption = report
        mags.frees[index] += 1
        mags.free_misses[index] += 1
        slabs.give_back((offset,))
        return corruption

    def _resize_large(self, view: memoryview, offset: int, old: int, size: int) -> bool:
        """Resize a large block in place and release its old view, or change nothing."""
        with self._lock:
            if not self._backing.resize(offset, size):
                return False
            try:
                view.release()
            except BufferError:
                self._backing.resize(offset, old)  # undo: the bytes it had are still free
                raise self._in_use(offset, "realloc") from None
            return True

    def _free_large(self, offset: int) -> None:
        if self._debug is not None:
            self._debug.forget_origin(offset)
        with self._lock:
            self._backing.release(offset)

    def _out_of_memory(self, size: int, index: int, count: int) -> OutOfMemoryError:
        slabs = self._slabs[index]
        backing = self._backing
        what = f"{count} blocks of {size} bytes" if count != 1 else f"{size} bytes"
        return OutOfMemoryError(
            f"cannot allocate {what} ({slabs.object_size}-byte objects): the class has too few "
            f"free objects and the backing store no room for a {slabs.slab_bytes}-byte slab "
            f"({backing.free} bytes free, largest free block {backing.largest_free}); "
            "free some blocks and try again",
            requested=size * count,
            free=backing.free,
            largest_free=backing.largest_free,
        )

    def _debug_new_slab(self, slab: Slab) -> None:
        assert self._debug is not None  # only installed in debug mode
        self._debug.poison_slab(slab, slab.stride - RED_ZONE_BYTES)

    def _debug_alloc(self, mags: ThreadMagazines, index: int, offset: int, size: int) -> None:
        assert self._debug is not None  # only called in debug mode
        slabs = self._slabs[index]
        try:
            self._debug.on_alloc(offset, size, slabs.object_size, slabs.stride)
        except Exception:
            mags.loaded[index].append(offset)  # the object stays free, its poison restored
            raise

    def _debug_free(self, index: int, offset: int, size: int) -> Exception | None:
        assert self._debug is not None  # only called in debug mode
        slabs = self._slabs[index]
        try:
            self._debug.on_free(offset, size, slabs.object_size, slabs.stride)
        except InvariantError as corruption:
            return corruption
        return None

    def _check_live(self) -> int:
        """Check the live table against the slabs; return the number of large blocks."""
        large = 0
        for key, (offset, view) in list(self._live.items()):
            released = _is_released(view)  # by its owner: the block stays live until freed
            if key != id(view) or not (released or view.obj is self._memory.obj):
                raise InvariantError(f"the view of offset {offset} is misfiled or foreign")
            size = self._size_of(offset, view)
            if size > self._classes.largest:
                large += 1
                if self._backing.size_of(offset) < size:
                    raise InvariantError(f"the large block at {offset} is smaller than its view")
                continue
            index = self._class_of(size)
            slab = self._slabs[index].slab_of(offset)
            if slab is None or (offset - slab.start) % slab.stride or offset in slab.free:
                raise InvariantError(
                    f"the live {size}-byte block at {offset} is not an object out of a slab "
                    f"of its class ({self._slabs[index].object_size} B)"
                )
            if self._debug is not None and not self._debug.verify_live(offset, size, slab.stride):
                raise InvariantError(f"the red zone after the block at {offset} was overwritten")
        return large

    def _check_cached(self) -> None:
        """Every cached object is out of its slab, not live, and cached once; counts add up."""
        live = self._live_sizes()
        live_offsets = {offset for offset, _ in live}
        active = [0] * len(self._slabs)
        for _, size in live:
            if size <= self._classes.largest:
                active[self._class_of(size)] += 1
        for index, slabs in enumerate(self._slabs):
            cached = list(self._magazines.cached_offsets(index))
            if len(set(cached)) != len(cached):
                raise InvariantError(f"class {slabs.object_size}: an object is cached twice")
            for offset in cached:
                slab = slabs.slab_of(offset)
                if slab is None or offset in slab.free or offset in live_offsets:
                    raise InvariantError(
                        f"class {slabs.object_size}: cached object {offset} is not out of a slab, "
                        "or is also live"
                    )
                if self._debug is not None and not self._debug.verify_free(
                    offset, slabs.object_size, slabs.stride
                ):
                    raise InvariantError(f"the free object at {offset} was written after free")
            out = slabs.total_objects - slabs.free_objects
            if out != active[index] + len(cached):
                raise InvariantError(
                    f"class {slabs.object_size}: {out} objects are out of the slabs, but "
                    f"{active[index]} are live and {len(cached)} cached"
                )


#: The pure-Python class: the specification, and what runs without the C core.
PureSlabCache = SlabCache
if core is not None and hasattr(core, "SlabCache"):  # not on a free-threaded build
    # The C base does alloc and free on a magazine hit and hands every other case to the
    # methods above; it stands where BlockAllocator.__init__ stands, so this __init__ runs.
    SlabCache = accelerated(  # type: ignore[misc]
        core.SlabCache, PureSlabCache, __init__=PureSlabCache.__init__
    )


def _grouped(classes: list[int], offsets: list[int]) -> dict[int, list[int]]:
    """The offsets by class index (-1: large blocks)."""
    if classes and classes.count(classes[0]) == len(classes):
        return {classes[0]: offsets}  # the common case: one class, no loop
    by_class: dict[int, list[int]] = {}
    for index, offset in zip(classes, offsets, strict=True):
        by_class.setdefault(index, []).append(offset)
    return by_class
