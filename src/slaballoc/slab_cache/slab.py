"""A slab: one span of the buffer carved into equal objects, with its own free list.

A slab of ``count`` objects spaced ``stride`` bytes apart starts at ``start``;
object ``k`` is at ``start + k * stride``.  Its free list is a stack of the
free objects' offsets, lowest on top when the slab is new, so that a fresh slab
hands its objects out in address order.

Invariant: ``0 <= len(free) <= count``, every entry is distinct, inside the
slab and on an object boundary.  ``check()`` verifies it.
"""

from __future__ import annotations

from ..errors import InvariantError

__all__ = ["Slab", "slab_geometry"]

#: Slabs are whole pages, as in Bonwick's allocator and jemalloc.
PAGE = 4096
#: How many more pages than the minimum a slab may span to waste less at its end.
_EXTRA_PAGES = 7


class Slab:
    """``count`` objects of ``stride`` bytes from offset ``start``.

    >>> slab = Slab(start=4096, stride=64, count=4)
    >>> slab.free.pop(), slab.free.pop(), slab.in_use
    (4096, 4160, 2)
    >>> slab.free.append(4096); slab.in_use
    1
    """

    __slots__ = ("count", "end", "free", "start", "stride")

    def __init__(self, start: int, stride: int, count: int) -> None:
        self.start = start
        self.stride = stride
        self.count = count
        self.end = start + stride * count
        self.free: list[int] = list(range(self.end - stride, start - 1, -stride))

    @property
    def in_use(self) -> int:
        """Objects out of the slab (live, or cached in a magazine)."""
        return self.count - len(self.free)

    def check(self) -> None:
        """Verify the free list.  O(count)."""
        if len(set(self.free)) != len(self.free):
            raise InvariantError(f"slab at {self.start} lists a free object twice")
        for offset in self.free:
            if not self.start <= offset < self.end or (offset - self.start) % self.stride:
                raise InvariantError(
                    f"slab at {self.start} lists {offset} as free, which is not one of its objects"
                )

    def __repr__(self) -> str:
        return f"<Slab at {self.start}: {self.in_use}/{self.count} objects of {self.stride} B out>"


def slab_geometry(stride: int, limit: int | None = None) -> tuple[int, int]:
    """The bytes of a slab for objects of ``stride`` bytes, and how many objects it holds.

    A slab spans whole pages: the fewest (from the fewest that hold one object
    up to seven more) that leave the smallest share unused at the slab's end.
    jemalloc sizes its slabs the same way; most default classes waste nothing.
    A slab is never larger than ``limit`` (the buffer): in a small buffer it is
    as many objects as fit.

    >>> slab_geometry(64), slab_geometry(80), slab_geometry(1536), slab_geometry(14336)
    ((4096, 64), (20480, 256), (12288, 8), (28672, 2))
    >>> slab_geometry(64, limit=1000)
    (960, 15)
    """
    least = -(-stride // PAGE)
    pages = [
        count
        for count in range(least, least + _EXTRA_PAGES + 1)
        if limit is None or count * PAGE <= limit
    ]
    if not pages:
        objects = max(1, (limit or stride) // stride)
        return objects * stride, objects
    best = min(pages, key=lambda count: ((count * PAGE) % stride / (count * PAGE), count))
    return best * PAGE, best * PAGE // stride
