"""The slab layer of one size class: slabs taken from and given back to the backing store.

As in Bonwick's allocator:

* objects are taken from **partial** slabs first (some objects out, some free),
  so that the free objects of a class are packed into as few slabs as possible
  and the others can empty;
* a slab whose objects all come back is **empty**; at most ``keep_empty`` empty
  slabs stay with the class (a burst of allocations need not go back to the
  backing store), the others are given back at once, where they coalesce
  with their neighbours and serve any class or a large request;
* a new slab is taken from the backing store only when no slab has a free object.

The caller holds the cache's lock around every method: the layer is shared
by every thread.  Offsets given back are trusted (the cache's live table and
magazines vouch for them); ``check()`` verifies everything.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Callable, Iterable

from ..errors import InvariantError
from ..policies import BestFit
from .slab import Slab, slab_geometry

__all__ = ["ClassSlabs"]

#: Called with each new slab when a new slab is carved: the debug checks poison it.
OnNewSlab = Callable[[Slab], None]


class ClassSlabs:
    """Every slab of one class, for objects of ``object_size`` bytes spaced ``stride`` apart.

    >>> backing = BestFit(64 << 10, alignment=16)
    >>> slabs = ClassSlabs(64, 64, backing, keep_empty=0)
    >>> objects = slabs.take(3)
    >>> objects, slabs.slab_count, slabs.free_objects
    ([0, 64, 128], 1, 61)
    >>> slabs.give_back(objects); slabs.slab_count, backing.used
    (0, 0)

    Partial slabs first: an object freed in a full slab is handed out before
    the objects of an empty one.

    >>> slabs = ClassSlabs(64, 64, backing, keep_empty=1)
    >>> objects = slabs.take(128)  # two full slabs
    >>> slabs.give_back(objects[64:]); slabs.give_back(objects[:1])  # one empty, one partial
    >>> slabs.take(1) == objects[:1], slabs.slab_count
    (True, 2)
    """

    __slots__ = (
        "_backing",
        "_on_new_slab",
        "_partial",
        "_slab_at",
        "_starts",
        "empty",
        "free_objects",
        "keep_empty",
        "object_size",
        "objects_per_slab",
        "peak_slabs",
        "slab_bytes",
        "stride",
    )

    def __init__(
        self,
        object_size: int,
        stride: int,
        backing: BestFit,
        *,
        keep_empty: int,
        on_new_slab: OnNewSlab | None = None,
    ) -> None:
        self.object_size = object_size
        self.stride = stride  # object_size, plus the red zone in debug mode
        self.slab_bytes, self.objects_per_slab = slab_geometry(stride, backing.capacity)
        self.keep_empty = keep_empty
        self._backing = backing
        self._on_new_slab = on_new_slab
        self._starts: list[int] = []  # every slab's start, sorted: finds an object's slab
        self._slab_at: dict[int, Slab] = {}  # start -> slab
        self._partial: dict[int, Slab] = {}  # start -> slab with objects both out and free
        self.empty: list[Slab] = []  # slabs with every object free, at most keep_empty
        self.free_objects = 0  # objects free in all slabs
        self.peak_slabs = 0

    @property
    def slab_count(self) -> int:
        """Slabs this class holds (full, partial and empty).  O(1)."""
        return len(self._starts)

    @property
    def total_objects(self) -> int:
        """Objects in this class's slabs.  O(1)."""
        return len(self._starts) * self.objects_per_slab

    def slabs_needed(self, count: int) -> int:
        """New slabs that taking ``count`` objects would need.  O(1)."""
        short = count - self.free_objects
        return -(-short // self.objects_per_slab) if short > 0 else 0

    def take(self, count: int) -> list[int]:
        """Take exactly ``count`` objects, partial slabs first; return their offsets.

        New slabs are taken from the backing store first, so that a failure
        (``OutOfMemoryError``) gives back the ones taken and changes nothing.
        O(count + slabs needed).
        """
        self.grow(self.slabs_needed(count))
        taken: list[int] = []
        partial, empty = self._partial, self.empty
        while len(taken) < count:
            if partial:
                slab = next(iter(partial.values()))
            else:
                slab = empty.pop()
                partial[slab.start] = slab
            want = count - len(taken)
            free = slab.free
            if want >= len(free):
                taken.extend(reversed(free))
                free.clear()
                del partial[slab.start]  # now full
            else:
                taken.extend(free[: -want - 1 : -1])
                del free[-want:]
        self.free_objects -= count
        return taken

    def grow(self, slabs: int) -> None:
        """Take ``slabs`` new slabs from the backing store, all or none.  O(slabs log n)."""
        starts: list[int] = []
        try:
            for _ in range(slabs):
                starts.append(self._backing.allocate(self.slab_bytes))
        except MemoryError:
            for start in reversed(starts):  # coalescing restores the free blocks there were
                self._backing.release(start)
            raise
        for start in starts:
            slab = Slab(start, self.stride, self.objects_per_slab)
            if self._on_new_slab is not None:
                self._on_new_slab(slab)
            insort(self._starts, start)
            self._slab_at[start] = slab
            self.empty.append(slab)
        self.free_objects += slabs * self.objects_per_slab
        self.peak_slabs = max(self.peak_slabs, len(self._starts))

    def give_back(self, offsets: Iterable[int], *, keep_empty: int | None = None) -> None:
        """Return objects to their slabs; give back empty slabs beyond ``keep_empty``.

        O(k log slabs) for k objects.
        """
        starts, slab_at, partial = self._starts, self._slab_at, self._partial
        per_slab = self.objects_per_slab
        count = 0
        emptied: list[Slab] = []
        for offset in offsets:
            slab = slab_at[starts[bisect_right(starts, offset) - 1]]
            free = slab.free
            free.append(offset)
            count += 1
            if len(free) == 1:
                partial[slab.start] = slab  # was full
            if len(free) == per_slab:
                del partial[slab.start]
                emptied.append(slab)
        self.free_objects += count
        self.empty.extend(emptied)
        self.trim(self.keep_empty if keep_empty is None else keep_empty)

    def trim(self, keep: int) -> int:
        """Give every empty slab beyond ``keep`` back to the backing store; return how many.

        O(slabs given back x log n).
        """
        released = 0
        while len(self.empty) > keep:
            slab = self.empty.pop(0)  # the longest empty: the least likely to be wanted
            del self._slab_at[slab.start]
            del self._starts[bisect_right(self._starts, slab.start) - 1]
            self._backing.release(slab.start)
            self.free_objects -= self.objects_per_slab
            released += 1
        return released

    def slab_of(self, offset: int) -> Slab | None:
        """The slab holding ``offset``, if any.  O(log slabs)."""
        index = bisect_right(self._starts, offset) - 1
        if index < 0:
            return None
        slab = self._slab_at[self._starts[index]]
        return slab if offset < slab.end else None

    def slabs(self) -> list[Slab]:
        """Every slab, in address order.  O(slabs)."""
        return [self._slab_at[start] for start in self._starts]

    def check(self) -> None:
        """Verify every slab and the partial/empty classification.  O(objects)."""
        if self._starts != sorted(self._slab_at):
            raise InvariantError(f"class {self.object_size}: the slab index is out of order")
        free = 0
        for slab in self.slabs():
            slab.check()
            if self._backing.size_of(slab.start) < self.slab_bytes:
                raise InvariantError(f"slab at {slab.start} is larger than its backing block")
            free += len(slab.free)
            is_partial = 0 < len(slab.free) < slab.count
            if is_partial != (slab.start in self._partial):
                raise InvariantError(f"slab at {slab.start} is misfiled as partial or not")
            if (len(slab.free) == slab.count) != (slab in self.empty):
                raise InvariantError(f"slab at {slab.start} is misfiled as empty or not")
        if free != self.free_objects:
            raise InvariantError(
                f"class {self.object_size}: {free} objects are free in slabs, "
                f"the count says {self.free_objects}"
            )
        if len(self.empty) > max(self.keep_empty, 0):
            raise InvariantError(f"class {self.object_size} keeps more empty slabs than allowed")

    def __repr__(self) -> str:
        return (
            f"<ClassSlabs {self.object_size} B: {len(self._starts)} slabs of "
            f"{self.objects_per_slab} objects, {self.free_objects} free>"
        )
