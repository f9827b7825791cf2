"""What a :class:`~slaballoc.SlabCache` reports: one row per class, and the totals."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..stats import ArenaStats

__all__ = ["CacheStats", "SlabInfo", "SlabRecord"]


@dataclass(frozen=True)
class SlabRecord:
    """One slab: where it is, its class, and how many of its objects are in each state.

    ``size`` is the bytes the slab holds in the buffer (its objects and the
    unused end); of its ``capacity`` objects, ``live`` are live blocks,
    ``cached`` are free but in a magazine, and the rest are free in the slab.
    """

    offset: int
    size: int
    object_size: int
    live: int
    cached: int
    capacity: int

    @property
    def state(self) -> str:
        """``"full"`` when every object is live, ``"empty"`` when none is, else ``"partial"``.

        >>> SlabRecord(0, 4096, 64, 64, 0, 64).state, SlabRecord(0, 4096, 64, 0, 3, 64).state
        ('full', 'empty')
        """
        if self.live == self.capacity:
            return "full"
        return "empty" if self.live == 0 else "partial"


@dataclass(frozen=True)
class SlabInfo:
    """One size class, as a row of Linux's ``/proc/slabinfo``.

    Objects of a class are in exactly one of three states: **active** (a live
    block), **cached** (free, in a magazine) or free in their slab, so
    ``active_objects + cached_objects <= total_objects``.  ``wasted_bytes`` is
    what rounding costs now: each active object's size minus the bytes
    requested, plus the unused end of every slab.
    """

    object_size: int
    active_objects: int
    cached_objects: int
    total_objects: int
    slabs: int
    peak_slabs: int
    objects_per_slab: int
    slab_bytes: int
    requested_bytes: int  # bytes the active blocks asked for
    wasted_bytes: int
    magazine_size: int
    magazine_hits: int
    magazine_misses: int
    allocs: int  # cumulative
    frees: int  # cumulative

    @property
    def hit_rate(self) -> float:
        """Share of allocs and frees served by the thread's own magazines."""
        total = self.magazine_hits + self.magazine_misses
        return self.magazine_hits / total if total else 0.0

    def as_dict(self) -> dict[str, int | float]:
        """The fields and the hit rate, for JSON."""
        return {**asdict(self), "hit_rate": self.hit_rate}


@dataclass(frozen=True)
class CacheStats(ArenaStats):
    """What ``SlabCache.stats()`` reports: the backing store's figures and the cache's own.

    The inherited fields describe the backing store: ``used`` is the bytes
    held in slabs and large blocks, ``free_blocks`` and ``largest_free`` its
    free space; ``live_blocks`` counts the blocks handed to callers.
    """

    live_bytes: int  # bytes requested by the live blocks
    peak_used: int  # the most bytes ever held from the backing store at once
    high_water: int  # the end of the highest block the backing store ever handed out
    large_blocks: int  # live blocks too large for any class
    allocs: int  # cumulative, class objects (bulk calls count each block)
    frees: int
    magazine_hits: int
    magazine_misses: int
    classes: tuple[SlabInfo, ...] = field(repr=False)  # one row per class, as slabinfo()

    @property
    def hit_rate(self) -> float:
        """Share of class allocs and frees served by the thread's own magazines."""
        total = self.magazine_hits + self.magazine_misses
        return self.magazine_hits / total if total else 0.0

    def as_dict(self) -> dict[str, int | float]:
        """The totals and derived figures, for JSON (the classes are in ``slabinfo()``)."""
        figures = {key: value for key, value in asdict(self).items() if key != "classes"}
        return {
            **figures,
            "free": self.free,
            "utilization": self.utilization,
            "hit_rate": self.hit_rate,
        }
