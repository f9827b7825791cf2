"""The backing store: best fit over the cache's whole buffer, remembering its peaks.

Slabs of every class and blocks too large for any class are carved from the
same :class:`~slaballoc.policies.BestFit`, so an empty slab given back
coalesces with its free neighbours and serves any class or a large request.
"""

from __future__ import annotations

from ..policies import BestFit

__all__ = ["BackingStore"]


class BackingStore(BestFit):
    """:class:`~slaballoc.policies.BestFit` that also records the most bytes ever in use,
    and the high-water mark: the end of the highest block ever handed out.

    >>> store = BackingStore(8192, alignment=16)
    >>> _ = store.allocate(100); _ = store.release(store.allocate(4096))
    >>> store.used, store.peak_used, store.high_water
    (112, 4208, 4208)
    """

    __slots__ = ("high_water", "peak_used")

    def __init__(self, capacity: int, alignment: int = 16) -> None:
        super().__init__(capacity, alignment)
        self.peak_used = 0
        self.high_water = 0

    # Both entry points are wrapped: the pure BestFit's allocate() calls _take(),
    # but the C one does not call back into Python.
    def allocate(self, size: int) -> int:
        """As :meth:`BestFit.allocate`, and update the peaks.  O(log n)."""
        offset = super().allocate(size)
        self._record(offset)
        return offset

    def _take(self, size: int) -> int:
        """As :meth:`BestFit._take`, and update the peaks.  O(log n)."""
        offset = super()._take(size)
        self._record(offset)
        return offset

    def resize(self, offset: int, size: int) -> bool:
        """As :meth:`BestFit.resize`, and update the peaks.  O(log n)."""
        resized = super().resize(offset, size)
        self._record(offset)
        return resized

    def _record(self, offset: int) -> None:
        self.peak_used = max(self.peak_used, self.used)
        self.high_water = max(self.high_water, offset + self.size_of(offset))
