"""The magazine layer: per-thread caches of free objects, and the depot they trade with.

Bonwick and Adams, "Magazines and Vmem" (USENIX 2001), with threads for CPUs.
A magazine is a stack of free objects of one class (here a plain list of
offsets).  Each thread has, for every class, a **loaded** and a **previous**
magazine:

* ``alloc`` pops from the loaded magazine; ``free`` pushes onto it (up to the
  magazine size).  Neither touches anything shared: that is the common case,
  a magazine **hit**.
* When the loaded magazine is empty (alloc) or full (free) and the previous
  one is the opposite, the two swap: still a hit.
* Otherwise the thread goes to the shared **depot** under the lock (a
  **miss**): an alloc takes a full magazine from it, or refills its loaded
  magazine from the slab layer in bulk; a free gives its previous (full)
  magazine to the depot (or, past ``depot_limit`` full magazines, flushes it
  to the slabs in bulk) and starts an empty one.

Objects carry no owner: a block freed by another thread simply becomes one of
that thread's free objects of the class, and reaches its slab when a magazine
is flushed.  Magazine size: ``0`` turns magazines off (every operation goes to
the slab layer under the lock); a number fixes it; ``None`` (the default)
starts each class at a size inversely proportional to its object size and
doubles it, as Bonwick and Adams do, whenever the depot lock of that class is
found taken ``GROW_AFTER`` times.

Memory cached in magazines is not lost: when the backing store cannot serve a
request, :meth:`Magazines.reclaim` flushes the depot, the calling thread's
magazines and those of threads that have exited, and gives every empty slab
back.  A live thread's own magazines (at most two per class) are only ever
touched by that thread, so no lock is needed on the hot path.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Iterator
from types import TracebackType
from typing import Protocol

from ..errors import InvalidSizeError
from ..sizes import require_count
from .class_slabs import ClassSlabs

__all__ = [
    "GROW_AFTER",
    "MAX_MAGAZINE",
    "Lock",
    "Magazines",
    "NoLock",
    "ThreadMagazines",
    "default_magazine_size",
    "require_magazine_size",
]

#: The largest magazine the adaptive sizing grows to.
MAX_MAGAZINE = 256
#: Contended depot-lock acquisitions of one class that double its magazine size.
GROW_AFTER = 8
#: Full magazines the depot keeps per class before it flushes to the slabs.
DEPOT_LIMIT = 4


class Lock(Protocol):
    """What the layers need of a lock: ``threading.Lock`` or :class:`NoLock`."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> bool: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class NoLock:
    """A lock that never waits, for a cache used by one thread only (``thread_safe=False``)."""

    __slots__ = ()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Succeed at once."""
        del blocking, timeout
        return True

    def release(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> bool:
        return True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None


def require_magazine_size(value: object) -> int | None:
    """``None`` (adaptive), or an integer from 0 (no magazines) to :data:`MAX_MAGAZINE`.

    >>> require_magazine_size(300)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    slaballoc.errors.InvalidSizeError: magazine_size must be at most 256, got 300: ...
    """
    if value is None:
        return None
    size = require_count(value, "magazine_size", minimum=0)
    if size > MAX_MAGAZINE:
        raise InvalidSizeError(
            f"magazine_size must be at most {MAX_MAGAZINE}, got {size}: larger magazines "
            "only hoard free objects"
        )
    return size


def default_magazine_size(object_size: int) -> int:
    """The starting magazine size: about 4 KiB of objects, from 4 to 64.

    >>> default_magazine_size(16), default_magazine_size(1536), default_magazine_size(16384)
    (64, 4, 4)
    """
    return max(4, min(64, 4096 // object_size))


class ThreadMagazines:
    """One thread's loaded and previous magazine for every class, and its counters.

    Only the owning thread touches it, except :meth:`Magazines.reclaim` once the
    thread has exited, and reports (which read it).  The counters are arrays of
    64-bit unsigned integers rather than lists: the same to this code, and the
    C core's magazine hit adds to them in place instead of making an int.
    """

    __slots__ = ("alloc_misses", "allocs", "free_misses", "frees", "loaded", "previous", "thread")

    def __init__(self, classes: int, thread: threading.Thread | None) -> None:
        self.thread = thread
        self.loaded: list[list[int]] = [[] for _ in range(classes)]
        self.previous: list[list[int]] = [[] for _ in range(classes)]
        self.allocs = _counters(classes)  # every object handed out through this thread
        self.frees = _counters(classes)
        self.alloc_misses = _counters(classes)  # objects that came from the depot or the slabs
        self.free_misses = _counters(classes)  # objects that went to the depot or the slabs

    def cached(self, index: int) -> int:
        """Free objects of class ``index`` in this thread's magazines.  O(1)."""
        return len(self.loaded[index]) + len(self.previous[index])

    def absorb(self, other: ThreadMagazines) -> None:
        """Add ``other``'s counters to these (when ``other``'s thread has exited).  O(classes)."""
        for mine, theirs in (
            (self.allocs, other.allocs),
            (self.frees, other.frees),
            (self.alloc_misses, other.alloc_misses),
            (self.free_misses, other.free_misses),
        ):
            for index, count in enumerate(theirs):
                mine[index] += count


class Magazines:
    """Every thread's magazines over the slab layers of the classes, and the depot.

    >>> from slaballoc.policies import BestFit
    >>> backing = BestFit(1 << 20, alignment=16)
    >>> layer = Magazines([ClassSlabs(64, 64, backing, keep_empty=1)], NoLock())
    >>> mine = layer.mine()
    >>> first = layer.refill(mine, 0)  # a miss: the loaded magazine is filled in bulk
    >>> first, len(mine.loaded[0]), layer.capacity[0]
    (0, 63, 64)
    """

    __slots__ = (
        "_contention",
        "_full",
        "_lock",
        "_retired",
        "_slabs",
        "_threads",
        "adaptive",
        "capacity",
        "depot_limit",
        "local",
    )

    def __init__(
        self,
        slabs: list[ClassSlabs],
        lock: Lock,
        magazine_size: int | None = None,
        *,
        depot_limit: int = DEPOT_LIMIT,
    ) -> None:
        self._slabs = slabs
        self._lock = lock
        magazine_size = require_magazine_size(magazine_size)
        self.adaptive = magazine_size is None
        if magazine_size is None:
            self.capacity = [default_magazine_size(layer.object_size) for layer in slabs]
        else:
            self.capacity = [magazine_size] * len(slabs)
        self.depot_limit = depot_limit
        self._contention = [0] * len(slabs)
        self._full: list[list[list[int]]] = [[] for _ in slabs]  # the depot: full magazines
        self._threads: list[ThreadMagazines] = []
        self._retired = ThreadMagazines(len(slabs), None)  # counters of exited threads
        self.local = threading.local()  # .mags: the calling thread's ThreadMagazines

    # -- the calling thread ---------------------------------------------------------

    def mine(self) -> ThreadMagazines:
        """The calling thread's magazines, made on first use.  O(1); O(threads) the first time."""
        try:
            mags: ThreadMagazines = self.local.mags
        except AttributeError:
            mags = ThreadMagazines(len(self._slabs), threading.current_thread())
            with self._lock:
                self._retire_exited()
                self._threads.append(mags)
            self.local.mags = mags
        return mags

    def refill(self, mags: ThreadMagazines, index: int) -> int:
        """Serve an alloc whose loaded magazine is empty; return an object's offset.

        Swaps with a non-empty previous magazine (a hit), else under the lock
        loads a full magazine from the depot, else fills one from the slabs in
        bulk (misses).  Raises ``OutOfMemoryError`` when even after
        :meth:`reclaim` no slab can be had; nothing changes then.  O(1) for a
        swap or a depot magazine, O(magazine size) for a refill from the slabs.
        """
        previous = mags.previous[index]
        if previous:
            mags.loaded[index], mags.previous[index] = previous, mags.loaded[index]
            return previous.pop()
        self._acquire(index)
        try:
            depot = self._full[index]
            if depot:
                mags.alloc_misses[index] += 1
                loaded = mags.loaded[index] = depot.pop()
                return loaded.pop()
            slabs = self._slabs[index]
            batch = min(self.capacity[index], slabs.free_objects or slabs.objects_per_slab)
            objects = self._take_from_slabs(index, max(batch, 1))
            mags.alloc_misses[index] += 1
            offset = objects.pop(0)
            objects.reverse()  # lowest address on top
            mags.loaded[index].extend(objects)
            return offset
        finally:
            self._lock.release()

    def spill(self, mags: ThreadMagazines, index: int, offset: int) -> None:
        """Take a freed object whose loaded magazine is full (or magazines are off).

        Swaps with an empty previous magazine (a hit), else under the lock gives
        the previous (full) magazine to the depot, or flushes it to the slabs in
        bulk when the depot is full, and starts a new one (a miss).  O(1), or
        O(magazine size) for a flush.

        >>> from slaballoc.policies import BestFit
        >>> slabs = ClassSlabs(64, 64, BestFit(1 << 20, alignment=16), keep_empty=1)
        >>> layer = Magazines([slabs], NoLock(), magazine_size=2)
        >>> mine = layer.mine()
        >>> objects = layer.take_many(mine, 0, 7)
        >>> for offset in objects[:5]:  # as free() does: loaded fills, swaps, fills, spills
        ...     if len(mine.loaded[0]) < 2:
        ...         mine.loaded[0].append(offset)
        ...     else:
        ...         layer.spill(mine, 0, offset)
        >>> mine.loaded[0], mine.previous[0], layer.cached(0), mine.free_misses[0]
        ([256], [128, 192], 5, 1)
        >>> layer.give_many(mine, 0, objects[5:]); layer.cached(0), slabs.free_objects
        (6, 58)
        >>> layer.reclaim(); layer.cached(0), slabs.slab_count  # everything back, slab returned
        (0, 0)
        """
        previous = mags.previous[index]
        capacity = self.capacity[index]
        if capacity and not previous:
            mags.loaded[index], mags.previous[index] = previous, mags.loaded[index]
            previous.append(offset)
            return
        self._acquire(index)
        try:
            mags.free_misses[index] += 1
            if not capacity:
                self._slabs[index].give_back((offset,))
                return
            depot = self._full[index]
            if len(depot) < self.depot_limit:
                depot.append(previous)
            else:
                self._slabs[index].give_back(previous)  # a bulk flush
            mags.previous[index] = mags.loaded[index]
            mags.loaded[index] = [offset]
        finally:
            self._lock.release()

    def take_many(self, mags: ThreadMagazines, index: int, count: int) -> list[int]:
        """Take ``count`` objects: from the thread's magazines, the depot, then the slabs.

        All or nothing: the new slabs needed are taken (with a :meth:`reclaim`
        if the backing store is short) before any object moves.  O(count).
        """
        loaded, previous = mags.loaded[index], mags.previous[index]
        if len(loaded) >= count:
            return _pop_many(loaded, count)
        self._acquire(index)
        try:
            depot = self._full[index]
            slabs = self._slabs[index]
            cached = len(loaded) + len(previous) + sum(map(len, depot))
            if count > cached:
                try:
                    slabs.grow(slabs.slabs_needed(count - cached))
                except MemoryError:
                    self.reclaim()  # the cached objects are now free in the slabs
                    slabs.grow(slabs.slabs_needed(count))  # if this fails, nothing else moves
            taken = _pop_many(loaded, min(count, len(loaded)))
            taken += _pop_many(previous, min(count - len(taken), len(previous)))
            while depot and len(taken) < count:
                magazine = depot[-1]
                taken += _pop_many(magazine, min(count - len(taken), len(magazine)))
                if not magazine:
                    depot.pop()
            misses = count - len(taken)
            if misses:
                taken += slabs.take(misses)
            mags.alloc_misses[index] += misses
            return taken
        finally:
            self._lock.release()

    def give_many(self, mags: ThreadMagazines, index: int, offsets: list[int]) -> None:
        """Take ``offsets`` back: the loaded magazine while it has room, the rest to the slabs.

        O(k), with one lock for the k objects that go to the slabs.
        """
        loaded = mags.loaded[index]
        room = max(0, self.capacity[index] - len(loaded))
        loaded.extend(offsets[:room])
        rest = offsets[room:]
        if rest:
            self._acquire(index)
            try:
                mags.free_misses[index] += len(rest)
                self._slabs[index].give_back(rest)
            finally:
                self._lock.release()

    # -- shared ---------------------------------------------------------------------

    def reclaim(self) -> None:
        """Flush the depot, the calling thread's magazines and exited threads' to the slabs,
        and give every empty slab back to the backing store.  The caller holds the lock.

        O(objects cached + slabs emptied x log n).
        """
        self._retire_exited()
        mags: ThreadMagazines | None = getattr(self.local, "mags", None)
        for index, slabs in enumerate(self._slabs):
            for magazine in self._full[index]:
                slabs.give_back(magazine, keep_empty=0)
            self._full[index].clear()
            if mags is not None:
                for magazine in (mags.loaded[index], mags.previous[index]):
                    slabs.give_back(magazine, keep_empty=0)
                    magazine.clear()
            slabs.trim(0)

    def cached(self, index: int) -> int:
        """Free objects of class ``index`` in all threads' magazines and the depot.  O(threads)."""
        return sum(mags.cached(index) for mags in self._threads) + sum(map(len, self._full[index]))

    def cached_offsets(self, index: int) -> Iterator[int]:
        """Every free object of class ``index`` in a magazine (for ``check()``).  O(objects)."""
        for mags in self._threads:
            yield from mags.loaded[index]
            yield from mags.previous[index]
        for magazine in self._full[index]:
            yield from magazine

    def totals(self) -> ThreadMagazines:
        """Every thread's counters added up (exited threads' included).  O(threads x classes)."""
        total = ThreadMagazines(len(self._slabs), None)
        total.absorb(self._retired)
        for mags in list(self._threads):
            total.absorb(mags)
        return total

    def forget(self) -> None:
        """Drop every magazine (when the cache closes).  O(threads x classes)."""
        for mags in self._threads:
            for magazine in (*mags.loaded, *mags.previous):
                magazine.clear()
        for depot in self._full:
            depot.clear()

    # -- internals ------------------------------------------------------------------

    def _acquire(self, index: int) -> None:
        """Take the lock; a contended acquisition counts towards growing the class's magazines."""
        lock = self._lock
        if lock.acquire(blocking=False):
            return
        lock.acquire()
        if self.adaptive:
            self._contention[index] += 1
            if self._contention[index] >= GROW_AFTER:
                self._contention[index] = 0
                self.capacity[index] = min(MAX_MAGAZINE, 2 * self.capacity[index])

    def _take_from_slabs(self, index: int, count: int) -> list[int]:
        """``count`` objects from the slabs; reclaim cached memory if the backing store is short."""
        slabs = self._slabs[index]
        try:
            return slabs.take(count)
        except MemoryError:
            self.reclaim()
            return slabs.take(min(count, max(slabs.free_objects, slabs.objects_per_slab)))

    def _retire_exited(self) -> None:
        """Flush the magazines of threads that have exited and keep their counters."""
        alive = []
        for mags in self._threads:
            if mags.thread is not None and mags.thread.is_alive():
                alive.append(mags)
                continue
            for index, slabs in enumerate(self._slabs):
                slabs.give_back(mags.loaded[index])
                slabs.give_back(mags.previous[index])
            self._retired.absorb(mags)
        self._threads[:] = alive


def _counters(classes: int) -> array[int]:
    """One zero per class, as 64-bit unsigned integers."""
    return array("Q", bytes(8 * classes))


def _pop_many(magazine: list[int], count: int) -> list[int]:
    """Pop ``count`` objects off the top of ``magazine``."""
    if count <= 0:
        return []
    taken = magazine[-count:]
    del magazine[-count:]
    return taken
