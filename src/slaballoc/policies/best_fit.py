"""The seed's third design: variable sizes, best fit, splitting and coalescing.

The seed finds the best fit by walking every free block (O(n)) and merges by
scanning for neighbours (O(n^2)).  Here the same placement decisions are made
with indexes, so that no operation looks at more than a handful of blocks:

* **Best fit.**  Free blocks are binned by exact size; :class:`SizeIndex`
  finds the smallest non-empty bin at least as large as the request in
  O(log64 capacity), and each bin is a min-heap of offsets, so ties go to the
  lowest address (address-ordered best fit).
* **Splitting.**  The request is carved from the low end of the chosen block;
  the rest goes back to its bin.
* **Coalescing.**  Free blocks are indexed by start and by end (boundary tags),
  so a freed block finds its free neighbours with two dict lookups and merges
  with them at once.  Two free blocks are therefore never adjacent, and freeing
  everything leaves one block of the whole capacity.
* **The top block.**  The free block that reaches the end of the arena (dlmalloc's
  "top chunk") is kept out of the bins and compared with the best bin on each
  request.  The placement is the same as if it were binned (it is the best fit
  only when it is strictly smaller than every other block that fits, having
  the highest address), but carving from it, the most common case while an
  arena fills, touches no index at all.

Merged-away blocks are not dug out of their bin's heap: their entries go stale
and are skipped when they surface (a heap entry is valid while ``_free_at``
still maps that offset to that size).  A bin whose heap has grown mostly stale
is rebuilt (a sort of its valid entries, paid for by the pushes since the
last rebuild), so stale entries cost amortised O(log n).
"""

from __future__ import annotations

from collections.abc import Iterator
from heapq import heappop, heappush

from .._accelerate import accelerated
from .._implementation import core
from ..errors import (
    DoubleFreeError,
    InvalidFreeError,
    InvalidSizeError,
    InvariantError,
    OutOfMemoryError,
    SizeTooLargeError,
)
from ..sizes import require_count, require_power_of_two
from ..stats import ArenaStats
from .blocks import Block
from .size_index import SizeIndex

__all__ = ["BestFit", "PureBestFit"]


class BestFit:
    """Variable-size blocks in ``capacity`` bytes, placed by address-ordered best fit.

    Every block starts at a multiple of ``alignment`` and its size is the
    request rounded up to a multiple of ``alignment``.  Bytes past the last
    whole alignment unit of ``capacity`` are not managed.

    >>> heap = BestFit(capacity=4096, alignment=8)
    >>> small, medium, large = heap.allocate(10), heap.allocate(256), heap.allocate(1000)
    >>> (small, medium, large), heap.size_of(small)
    ((0, 16, 272), 16)
    >>> heap.release(medium)
    256
    >>> heap.allocate(200)  # the 256-byte hole is the best fit
    16
    >>> for offset in (small, 16, large):
    ...     _ = heap.release(offset)
    >>> list(heap.blocks())  # everything coalesced back into one block
    [Block(offset=0, size=4096, live=False)]
    """

    __slots__ = (
        "_bin_counts",
        "_bins",
        "_free_at",
        "_free_ending_at",
        "_mask",
        "_sizes",
        "_top",
        "_used",
        "_used_bytes",
        "alignment",
        "capacity",
    )

    def __init__(self, capacity: int, alignment: int = 8) -> None:
        capacity = require_count(capacity, "capacity", minimum=0)
        self.alignment: int = require_power_of_two(alignment, "alignment")
        self.capacity: int = capacity - capacity % self.alignment
        if not self.capacity:
            raise InvalidSizeError(
                f"{capacity} bytes hold no block aligned to {self.alignment} bytes, so nothing "
                f"could ever be allocated: give at least {self.alignment} bytes or a smaller "
                "alignment"
            )
        self._mask = self.alignment - 1
        self._used: dict[int, int] = {}  # offset -> size of each live block
        self._used_bytes = 0
        self._top = 0  # the top block is [_top, capacity): free, and empty when full
        # The other free blocks:
        self._free_at: dict[int, int] = {}  # offset -> size
        self._free_ending_at: dict[int, int] = {}  # end -> offset
        self._bins: dict[int, list[int]] = {}  # size -> heap of offsets (some stale)
        self._bin_counts: dict[int, int] = {}  # size -> number of free blocks of that size
        self._sizes = SizeIndex(self.capacity // self.alignment + 1)  # sizes with a bin, in units

    # -- the operations -------------------------------------------------------------

    def allocate(self, size: int) -> int:
        """Place a block of at least ``size`` bytes and return its offset.

        O(log n): one index search, one heap pop, at most one heap push.

        >>> heap = BestFit(64)
        >>> heap.allocate(24), heap.allocate(1), heap.allocate(32)
        (0, 24, 32)
        >>> heap.allocate(1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        slaballoc.errors.OutOfMemoryError: cannot allocate 1 byte: not enough free memory ...
        """
        return self._take(size if type(size) is int else self._require_size(size))

    def _take(self, size: int) -> int:
        """The primitive: ``allocate`` for a ``size`` that is an ``int`` already."""
        if not 0 < size <= self.capacity:
            size = self._require_size(size)
        need = (size + self._mask) & ~self._mask
        counts = self._bin_counts
        if counts.get(need):  # an exact fit: nothing can fit better
            block_size = need
        else:
            block_size = self._sizes.successor(need // self.alignment) * self.alignment
            top = self._top
            top_size = self.capacity - top
            if block_size < 0 or need <= top_size < block_size:
                if top_size < need:
                    raise self._out_of_memory(size)
                self._top = top + need
                self._used[top] = need
                self._used_bytes += need
                return top
        # Take the lowest-addressed block of the bin, skipping stale entries.
        bin_, free_at = self._bins[block_size], self._free_at
        offset = heappop(bin_)
        while free_at.get(offset) != block_size:
            offset = heappop(bin_)
        del free_at[offset], self._free_ending_at[offset + block_size]
        count = counts[block_size] - 1
        if count:
            counts[block_size] = count
        else:
            self._drop_bin(block_size)
        if block_size > need:
            self._add_free(offset + need, block_size - need)
        self._used[offset] = need
        self._used_bytes += need
        return offset

    def release(self, offset: int) -> int:
        """Free the block at ``offset``, merging it with free neighbours; return its size.

        O(log n): two dict lookups find the neighbours, one heap push files the result.

        >>> heap = BestFit(64)
        >>> first, second = heap.allocate(8), heap.allocate(8)
        >>> heap.release(first), heap.release(second), len(list(heap.blocks()))
        (8, 8, 1)
        >>> heap.release(0.0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        slaballoc.errors.InvalidFreeError: an offset is an int, got float 0.0: ...
        """
        if type(offset) is not int:
            raise self._not_live(offset)
        return self._put(offset)

    def _put(self, offset: int) -> int:
        """The primitive: ``release`` for an ``offset`` that is an ``int`` already."""
        try:
            size = self._used.pop(offset)
        except KeyError:
            raise self._not_live(offset) from None
        self._used_bytes -= size
        self._add_free_merged(offset, offset + size)
        return size

    def resize(self, offset: int, size: int) -> bool:
        """Change the live block at ``offset`` to hold ``size`` bytes without moving it.

        Shrinking always succeeds (the tail is freed); growing succeeds when the
        free block right after it is large enough.  Returns False, changing
        nothing, when the block would have to move.  O(log n).

        >>> heap = BestFit(128)
        >>> first, second = heap.allocate(8), heap.allocate(8)
        >>> heap.resize(first, 16)  # second is in the way
        False
        >>> heap.resize(second, 120), heap.size_of(second)  # grows to the end of the arena
        (True, 120)
        """
        old = self.size_of(offset)
        if type(size) is not int or not 0 < size <= self.capacity:
            size = self._require_size(size)
        need = (size + self._mask) & ~self._mask
        end = offset + old
        if need < old:
            self._add_free_merged(offset + need, end)
        elif need > old:
            if end == self._top:
                if self.capacity - end < need - old:
                    return False
                self._top = offset + need
            else:
                room = self._free_at.get(end, 0)
                if old + room < need:
                    return False
                self._remove_free(end)
                if old + room > need:
                    self._add_free(offset + need, old + room - need)
        self._used[offset] = need
        self._used_bytes += need - old
        return True

    def size_of(self, offset: int) -> int:
        """The size of the live block at ``offset`` (the request rounded up).  O(1).

        >>> heap = BestFit(64, alignment=16)
        >>> heap.size_of(heap.allocate(20))
        32
        """
        if type(offset) is not int:
            raise self._not_live(offset)
        try:
            return self._used[offset]
        except KeyError:
            raise self._not_live(offset) from None

    # -- facts ----------------------------------------------------------------------

    @property
    def used(self) -> int:
        """Bytes in live blocks, alignment padding included."""
        return self._used_bytes

    @property
    def free(self) -> int:
        """Bytes in free blocks."""
        return self.capacity - self.used

    @property
    def largest_free(self) -> int:
        """The size of the largest free block.  O(log n)."""
        return max(self._sizes.maximum() * self.alignment, self.capacity - self._top)

    def stats(self) -> ArenaStats:
        """A snapshot of the memory's use.  O(log n).

        >>> heap = BestFit(256)
        >>> first, _ = heap.allocate(64), heap.allocate(64)
        >>> _ = heap.release(first)
        >>> stats = heap.stats()
        >>> stats.used, stats.free_blocks, stats.largest_free, round(stats.fragmentation, 3)
        (64, 2, 128, 0.333)
        """
        free, largest = self.free, self.largest_free
        return ArenaStats(
            capacity=self.capacity,
            used=self.used,
            live_blocks=len(self),
            free_blocks=self._free_block_count(),
            largest_free=largest,
            fragmentation=1 - largest / free if free else 0.0,
        )

    def __len__(self) -> int:
        """Number of live blocks."""
        return len(self._used)

    def _free_block_count(self) -> int:
        return len(self._free_at) + (self._top < self.capacity)

    def free_sizes(self) -> list[int]:
        """The size of every free block, in no particular order.  O(free blocks).

        >>> heap = BestFit(256)
        >>> first, _ = heap.allocate(64), heap.allocate(64)
        >>> _ = heap.release(first)
        >>> sorted(heap.free_sizes())
        [64, 128]
        """
        sizes = list(self._free_at.values())
        if self._top < self.capacity:
            sizes.append(self.capacity - self._top)
        return sizes

    def blocks(self) -> Iterator[Block]:
        """Every block in address order, live or free.  O(n log n)."""
        live = [Block(offset, size, True) for offset, size in self._used.items()]
        free = [Block(offset, size, False) for offset, size in self._free_at.items()]
        if self._top < self.capacity:
            free.append(Block(self._top, self.capacity - self._top, False))
        return iter(sorted(live + free))

    def check(self) -> None:
        """Verify every invariant; raise :class:`InvariantError` on any fault.  O(n log n).

        >>> heap = BestFit(256)
        >>> _ = heap.allocate(10)
        >>> heap.check()  # silent when all is well
        """
        expected_offset = live_bytes = 0
        previous_free = False
        for block in self.blocks():
            if block.offset != expected_offset:
                kind = "overlaps" if block.offset < expected_offset else "leaves a gap before"
                raise InvariantError(f"block at {block.offset} {kind} the previous one")
            if block.size <= 0 or block.offset % self.alignment or block.size % self.alignment:
                raise InvariantError(f"{block} is empty or not aligned to {self.alignment}")
            if block.live is False and previous_free:
                raise InvariantError(f"free block at {block.offset} follows a free block")
            previous_free = not block.live
            live_bytes += block.size if block.live else 0
            expected_offset = block.end
        if expected_offset != self.capacity:
            raise InvariantError(f"blocks cover {expected_offset} of {self.capacity} bytes")
        if live_bytes != self.used:
            raise InvariantError("the used-byte count disagrees with the live blocks")
        self._check_indexes()

    # -- internals ------------------------------------------------------------------

    def _check_indexes(self) -> None:
        """The invariants of this implementation's own indexes (the C core has its own)."""
        if any(offset >= self._top for offset in self._used):
            raise InvariantError("a live block lies in the top block")
        ends = {offset + size: offset for offset, size in self._free_at.items()}
        if ends != self._free_ending_at:
            raise InvariantError("the end index disagrees with the free blocks")
        bins = set(self._bins)
        if sorted(size // self.alignment for size in bins) != self._sizes.members():
            raise InvariantError("the size index disagrees with the bins")
        if set(self._bin_counts) != bins or set(self._free_at.values()) != bins:
            raise InvariantError("a bin exists for a size with no free block, or vice versa")
        for size in bins:
            actual = {o for o, s in self._free_at.items() if s == size}
            valid = {o for o in self._bins[size] if self._free_at.get(o) == size}
            if valid != actual or self._bin_counts[size] != len(actual):
                raise InvariantError(f"bin {size} disagrees with the free blocks of that size")

    def _uncount(self, size: int) -> None:
        """One free block of ``size`` fewer; drop its bin when it empties."""
        count = self._bin_counts[size] - 1
        if count:
            self._bin_counts[size] = count
        else:
            self._drop_bin(size)

    def _drop_bin(self, size: int) -> None:
        """Forget an empty bin; any entries left in its heap were stale."""
        del self._bin_counts[size], self._bins[size]
        self._sizes.discard(size // self.alignment)

    def _add_free(self, offset: int, size: int) -> None:
        """File a free block (never the top one) in its bin."""
        self._free_at[offset] = size
        self._free_ending_at[offset + size] = offset
        count = self._bin_counts.get(size)
        if count is None:
            self._bin_counts[size] = 1
            self._bins[size] = [offset]
            self._sizes.add(size // self.alignment)
            return
        self._bin_counts[size] = count + 1
        bin_ = self._bins[size]
        heappush(bin_, offset)
        if len(bin_) > 2 * count + 16:  # mostly stale: rebuild, amortised O(1)
            free_at = self._free_at
            # A set, because a block merged away and re-created at the same place
            # has two entries that both look valid.  A sorted list is a heap.
            bin_[:] = sorted({o for o in bin_ if free_at.get(o) == size})

    def _add_free_merged(self, start: int, end: int) -> None:
        """Make ``[start, end)`` free, merged with the free blocks touching it."""
        free_at, ending_at = self._free_at, self._free_ending_at
        left = ending_at.pop(start, None)
        if left is not None:  # merge with the free block before
            self._uncount(free_at.pop(left))
            start = left
        if end == self._top:
            self._top = start
            return
        right = free_at.pop(end, None)
        if right is not None:  # merge with the free block after
            del ending_at[end + right]
            self._uncount(right)
            end += right
        self._add_free(start, end - start)

    def _remove_free(self, offset: int) -> None:
        """Forget a binned free block; its heap entry goes stale."""
        size = self._free_at.pop(offset)
        del self._free_ending_at[offset + size]
        self._uncount(size)

    def _require_size(self, size: object) -> int:
        number = require_count(size, "size")
        if number > self.capacity:
            raise SizeTooLargeError(
                f"size {number} exceeds the arena's capacity of {self.capacity} bytes: "
                "no block can ever be that large; create a larger arena"
            )
        return number

    def _out_of_memory(self, size: int) -> OutOfMemoryError:
        return OutOfMemoryError.for_request(size, free=self.free, largest_free=self.largest_free)

    def _not_live(self, offset: object) -> InvalidFreeError:
        if type(offset) is not int:
            return InvalidFreeError(
                f"an offset is an int, got {type(offset).__name__} {offset!r}: "
                "pass the offset that allocate() returned"
            )
        if self._is_free_start(offset):
            return DoubleFreeError(
                f"the block at offset {offset} is free already: each allocation is freed once"
            )
        return InvalidFreeError(
            f"{offset!r} is not the offset of a live block of this arena: "
            "pass the offset that allocate() returned"
        )

    def _is_free_start(self, offset: int) -> bool:
        """True if a free block starts at ``offset``."""
        return offset in self._free_at or offset == self._top < self.capacity

    def __repr__(self) -> str:
        return (
            f"<BestFit {len(self)} live blocks, {self.used}/{self.capacity} B "
            f"used, {self.stats().free_blocks} free blocks>"
        )


#: What the C core's engine (``csrc/best_fit.c``) reports by code when its
#: own indexes are inconsistent: the words are here, as every message is.
_ENGINE_FAULTS = {
    1: "blocks do not tile the arena in address order at offset {}",
    2: "the block at {} is empty or not aligned",
    3: "the free block at {} follows a free block",
    4: "the used, live or free counts disagree with the blocks",
    5: "the free-block tree is broken near offset {}",
    6: "the start index does not find the block at {}",
    7: "the block links or the unused-node list are broken near offset {}",
}


def engine_fault(code: int, offset: int) -> InvariantError:
    """The error for a fault that the C engine's ``check`` found (used by the C core)."""
    return InvariantError(_ENGINE_FAULTS[code].format(offset))


#: The pure-Python class: the specification, and what runs without the C core.
PureBestFit = BestFit
if core is not None:
    BestFit = accelerated(core.BestFit, PureBestFit)  # type: ignore[misc]
