"""Address-ordered best fit over flat int64 words: the shared heap's placement.

This is :class:`~slaballoc.policies.BestFit`'s algorithm (same requests, same
offsets) with every index kept as words in the segment instead of Python
objects, so that every process sees the same heap.  It knows nothing of
files, locks or processes: it reads ``words`` and changes them only through
``put`` (the journal), so that an operation cut short can be undone.

Each block, live or free, has a node record (see :mod:`.layout`):

* **address order**: ``prev``/``next`` links, so a freed block finds its
  neighbours, and merges with the free ones, in O(1);
* **best fit**: the free blocks form a treap ordered by ``(size, start)``;
  the best fit for ``need`` bytes is the first node with ``size >= need``, a
  lower-bound descent in O(log n) expected (priorities are random, fixed when
  the segment is made, so the tree's shape does not depend on the requests);
* **by offset**: an open-addressing hash table (linear probing, deletion by
  backward shift, load <= 1/2) maps each block's start to its node, so a
  handle is checked and found in O(1) expected.

Unused records are chained through ``next`` from the header's ``spare`` word.
"""

from __future__ import annotations

import contextlib
import operator
import random
from collections.abc import Callable, Iterator
from typing import NamedTuple

from ..errors import (
    DoubleFreeError,
    InvalidHandleError,
    InvariantError,
    OutOfMemoryError,
    SizeTooLargeError,
)
from ..sizes import require_count
from .layout import (
    FREE,
    H_FREE_BLOCKS,
    H_LIVE,
    H_ROOT,
    H_SPARE,
    H_USED,
    LIVE,
    N_BORN,
    N_LEFT,
    N_NEXT,
    N_PARENT,
    N_PID,
    N_PREV,
    N_PRIORITY,
    N_REQUEST,
    N_RIGHT,
    N_SIZE,
    N_START,
    N_STATE,
    SPARE,
    Layout,
)

__all__ = ["FlatBestFit", "SharedBlock"]

Put = Callable[[int, int], None]

_GOLDEN = 0x9E3779B97F4A7C15  # Fibonacci hashing: spreads offsets that share low bits
_U64 = (1 << 64) - 1


class SharedBlock(NamedTuple):
    """A block of a shared heap: where, how large, and (when live) whose.

    ``pid`` and ``born`` name the owner process (0 for a free block);
    ``request`` is the size asked for, ``size`` the bytes it occupies.
    """

    offset: int
    size: int
    live: bool
    request: int = 0
    pid: int = 0
    born: int = 0

    @property
    def end(self) -> int:
        """The first byte past the block."""
        return self.offset + self.size


class FlatBestFit:
    """Best-fit placement whose whole state is ``words`` (changed only through ``put``).

    >>> from slaballoc.shared.layout import Layout
    >>> layout = Layout.plan(capacity=4096, alignment=8, max_blocks=16)
    >>> words = memoryview(bytearray(layout.data_at)).cast("q")
    >>> def put(index, value): words[index] = value
    >>> heap = FlatBestFit.format(words, put, layout)
    >>> small, medium, large = (heap.allocate(n, 1, 1) for n in (10, 256, 1000))
    >>> (small, medium, large), heap.size_of(small)
    ((0, 16, 272), 16)
    >>> heap.release(medium)
    256
    >>> heap.allocate(200, 1, 1)  # the 256-byte hole is the best fit
    16
    """

    __slots__ = (
        "_hash_at",
        "_hash_drop",
        "_hash_mask",
        "_mask",
        "_put",
        "_shift",
        "_words",
        "alignment",
        "capacity",
        "layout",
        "max_blocks",
    )

    def __init__(self, words: memoryview, put: Put, layout: Layout) -> None:
        self._words = words
        self._put = put
        self.layout = layout
        self.capacity = layout.capacity
        self.alignment = layout.alignment
        self.max_blocks = layout.max_blocks
        self._mask = layout.alignment - 1
        self._shift = layout.alignment.bit_length() - 1
        self._hash_at = layout.hash_at
        self._hash_mask = layout.hash_slots - 1
        self._hash_drop = 64 - (layout.hash_slots.bit_length() - 1)

    @classmethod
    def format(cls, words: memoryview, put: Put, layout: Layout) -> FlatBestFit:
        """Write an empty heap (one free block of the whole capacity) into zeroed ``words``."""
        priorities = random.Random()  # the treap's balance needs only independence from keys
        ids = layout.node_ids()
        for node, following in zip(ids, [*ids[1:], 0], strict=True):
            words[node + N_PRIORITY] = priorities.getrandbits(62)
            words[node + N_NEXT] = following
        words[H_SPARE] = ids[0]
        heap = cls(words, put, layout)
        if layout.capacity:
            heap._file_free(heap._new_node(0, layout.capacity, 0, 0))
            put(H_FREE_BLOCKS, 1)
        return heap

    # -- the operations -------------------------------------------------------------

    def allocate(self, size: int, pid: int, born: int) -> int:
        """Place a block of at least ``size`` bytes for process ``(pid, born)``; its offset.

        O(log n) expected: a treap descent, one removal, at most one insertion.
        """
        if type(size) is not int or not 0 < size <= self.capacity:
            size = self._require_size(size)
        need = (size + self._mask) & ~self._mask
        words, put = self._words, self._put
        best, node = 0, words[H_ROOT]
        while node:  # lower bound of (need, any start): sizes tie-break by start
            if words[node + N_SIZE] >= need:
                best, node = node, words[node + N_LEFT]
            else:
                node = words[node + N_RIGHT]
        if not best:
            raise self._out_of_memory(size)
        live = words[H_LIVE]
        if live == self.max_blocks:
            raise self._table_full(size)
        self._unfile_free(best)
        block_size, start = words[best + N_SIZE], words[best + N_START]
        if block_size > need:  # split: the rest stays free, right after
            rest = self._new_node(start + need, block_size - need, best, words[best + N_NEXT])
            self._file_free(rest)
            put(best + N_SIZE, need)
        else:
            put(H_FREE_BLOCKS, words[H_FREE_BLOCKS] - 1)
        put(best + N_STATE, LIVE)
        put(best + N_REQUEST, size)
        put(best + N_PID, pid)
        put(best + N_BORN, born)
        put(H_USED, words[H_USED] + need)
        put(H_LIVE, live + 1)
        return int(start)

    def release(self, offset: int) -> int:
        """Free the live block at ``offset``, merging it with free neighbours; its size.

        O(log n) expected: a hash lookup, up to two treap removals, one insertion.
        """
        node = self._live_node(offset)
        words, put = self._words, self._put
        size = words[node + N_SIZE]
        put(H_USED, words[H_USED] - size)
        put(H_LIVE, words[H_LIVE] - 1)
        free_blocks = words[H_FREE_BLOCKS] + 1
        before = words[node + N_PREV]
        if before and words[before + N_STATE] == FREE:
            self._unfile_free(before)
            self._absorb_next(before)
            node = before
            free_blocks -= 1
        after = words[node + N_NEXT]
        if after and words[after + N_STATE] == FREE:
            self._unfile_free(after)
            self._absorb_next(node)
            free_blocks -= 1
        self._file_free(node)
        if free_blocks != words[H_FREE_BLOCKS]:
            put(H_FREE_BLOCKS, free_blocks)
        return int(size)

    def adopt(self, offset: int, pid: int, born: int) -> None:
        """Make process ``(pid, born)`` the owner of the live block at ``offset``.  O(1)."""
        node = self._live_node(offset)
        self._put(node + N_PID, pid)
        self._put(node + N_BORN, born)

    # -- facts ----------------------------------------------------------------------

    def block_at(self, offset: int) -> SharedBlock:
        """The live block at ``offset``; raise :class:`InvalidHandleError` if there is none.

        O(1) expected.
        """
        return self._block(self._live_node(offset))

    def size_of(self, offset: int) -> int:
        """Bytes the live block at ``offset`` occupies.  O(1) expected."""
        return int(self._words[self._live_node(offset) + N_SIZE])

    @property
    def used(self) -> int:
        """Bytes in live blocks, alignment padding included."""
        return int(self._words[H_USED])

    @property
    def live_blocks(self) -> int:
        """Number of live blocks."""
        return int(self._words[H_LIVE])

    @property
    def free_blocks(self) -> int:
        """Number of free blocks."""
        return int(self._words[H_FREE_BLOCKS])

    @property
    def largest_free(self) -> int:
        """The size of the largest free block: the treap's rightmost node.  O(log n)."""
        words, node, size = self._words, self._words[H_ROOT], 0
        while node:
            size, node = words[node + N_SIZE], words[node + N_RIGHT]
        return int(size)

    def blocks(self) -> Iterator[SharedBlock]:
        """Every block, live or free, in address order.  O(n)."""
        node = self._find(0) if self.capacity else 0
        while node:
            yield self._block(node)
            node = self._words[node + N_NEXT]

    def check(self) -> None:
        """Verify every invariant; raise :class:`InvariantError` naming the first fault.

        O(n log n).
        """
        words = self._words
        nodes = self._check_address_order()
        if self._check_hash() != len(nodes):
            raise InvariantError("the hash table's entries disagree with the blocks")
        free = [node for node in nodes if words[node + N_STATE] == FREE]
        tree = self._check_treap()
        if sorted(tree) != sorted(free):
            raise InvariantError("the free-block tree does not hold exactly the free blocks")
        spares, node = 0, words[H_SPARE]
        while node:
            if words[node + N_STATE] != SPARE:
                raise InvariantError(f"spare record {node} is in use")
            spares, node = spares + 1, words[node + N_NEXT]
        if spares + len(nodes) != self.layout.nodes:
            raise InvariantError(
                f"{spares} spare + {len(nodes)} used records != {self.layout.nodes}"
            )
        live = [node for node in nodes if words[node + N_STATE] == LIVE]
        if len(live) != words[H_LIVE] or len(free) != words[H_FREE_BLOCKS]:
            raise InvariantError("the live or free block count disagrees with the blocks")
        if sum(words[node + N_SIZE] for node in live) != words[H_USED]:
            raise InvariantError("the used-byte count disagrees with the live blocks")

    # -- internals: records ---------------------------------------------------------

    def _block(self, node: int) -> SharedBlock:
        words = self._words
        if words[node + N_STATE] == LIVE:
            return SharedBlock(
                int(words[node + N_START]),
                int(words[node + N_SIZE]),
                True,
                int(words[node + N_REQUEST]),
                int(words[node + N_PID]),
                int(words[node + N_BORN]),
            )
        return SharedBlock(int(words[node + N_START]), int(words[node + N_SIZE]), False)

    def _new_node(self, start: int, size: int, before: int, after: int) -> int:
        """Take a spare record for block ``[start, start + size)`` between two blocks."""
        words, put = self._words, self._put
        node = words[H_SPARE]
        put(H_SPARE, words[node + N_NEXT])
        put(node + N_START, start)
        put(node + N_SIZE, size)
        put(node + N_PREV, before)
        put(node + N_NEXT, after)
        if before:
            put(before + N_NEXT, node)
        if after:
            put(after + N_PREV, node)
        self._hash_insert(node)
        return int(node)

    def _absorb_next(self, node: int) -> None:
        """Merge the block after ``node`` into it and give its record back."""
        words, put = self._words, self._put
        gone = words[node + N_NEXT]
        after = words[gone + N_NEXT]
        put(node + N_SIZE, words[node + N_SIZE] + words[gone + N_SIZE])
        put(node + N_NEXT, after)
        if after:
            put(after + N_PREV, node)
        self._hash_delete(gone)
        # Only the state and the chain matter in a spare record: every other field
        # is written when it is taken again (and a block leaves the treap as a leaf).
        put(gone + N_STATE, SPARE)
        put(gone + N_NEXT, words[H_SPARE])
        put(H_SPARE, gone)

    def _live_node(self, offset: object) -> int:
        if type(offset) is not int and not isinstance(offset, bool):
            with contextlib.suppress(TypeError):  # a numpy integer read back from an array
                offset = operator.index(offset)  # type: ignore[arg-type]
        if type(offset) is int and 0 <= offset < self.capacity and not offset & self._mask:
            node = self._find(offset)
            if node and self._words[node + N_STATE] == LIVE:
                return node
            if node:
                raise DoubleFreeError(
                    f"the block at handle {offset} is free already (freed by this or another "
                    "process): each block is freed once"
                )
        raise self._bad_handle(offset)

    # -- internals: the treap of free blocks ----------------------------------------

    def _file_free(self, node: int) -> None:
        """Mark ``node`` free and insert it in the treap.  O(log n) expected."""
        words, put = self._words, self._put
        put(node + N_STATE, FREE)  # request and owner go stale: read only while live
        size, start = words[node + N_SIZE], words[node + N_START]
        parent, child = 0, words[H_ROOT]
        went_left = False
        while child:
            parent = child
            child_size = words[child + N_SIZE]
            went_left = size < child_size or (size == child_size and start < words[child + N_START])
            child = words[child + (N_LEFT if went_left else N_RIGHT)]
        put(node + N_PARENT, parent)
        if not parent:
            put(H_ROOT, node)
        else:
            put(parent + (N_LEFT if went_left else N_RIGHT), node)
        priority = words[node + N_PRIORITY]
        parent = words[node + N_PARENT]
        while parent and words[parent + N_PRIORITY] < priority:
            self._rotate_up(node)
            parent = words[node + N_PARENT]

    def _unfile_free(self, node: int) -> None:
        """Remove ``node`` from the treap: rotate it down to a leaf, then cut it off."""
        words, put = self._words, self._put
        while True:
            left, right = words[node + N_LEFT], words[node + N_RIGHT]
            if not left and not right:
                break
            if not right or (left and words[left + N_PRIORITY] > words[right + N_PRIORITY]):
                self._rotate_up(left)
            else:
                self._rotate_up(right)
        parent = words[node + N_PARENT]
        if not parent:
            put(H_ROOT, 0)
        else:
            put(parent + (N_LEFT if words[parent + N_LEFT] == node else N_RIGHT), 0)
            put(node + N_PARENT, 0)

    def _rotate_up(self, node: int) -> None:
        """Rotate ``node`` above its parent, keeping the in-order sequence."""
        words, put = self._words, self._put
        parent = words[node + N_PARENT]
        grand = words[parent + N_PARENT]
        if words[parent + N_LEFT] == node:
            inner_side, outer_side = N_RIGHT, N_LEFT
        else:
            inner_side, outer_side = N_LEFT, N_RIGHT
        inner = words[node + inner_side]
        put(parent + outer_side, inner)
        if inner:
            put(inner + N_PARENT, parent)
        put(node + inner_side, parent)
        put(parent + N_PARENT, node)
        put(node + N_PARENT, grand)
        if not grand:
            put(H_ROOT, node)
        else:
            put(grand + (N_LEFT if words[grand + N_LEFT] == parent else N_RIGHT), node)

    # -- internals: the start -> node hash table ------------------------------------

    def _home(self, start: int) -> int:
        return (((start >> self._shift) * _GOLDEN) & _U64) >> self._hash_drop

    def _find(self, start: int) -> int:
        words, at, mask = self._words, self._hash_at, self._hash_mask
        slot = self._home(start)
        while True:
            node = words[at + slot]
            if not node or words[node + N_START] == start:
                return int(node)
            slot = (slot + 1) & mask

    def _hash_insert(self, node: int) -> None:
        words, at, mask = self._words, self._hash_at, self._hash_mask
        slot = self._home(words[node + N_START])
        while words[at + slot]:
            slot = (slot + 1) & mask
        self._put(at + slot, node)

    def _hash_delete(self, node: int) -> None:
        """Empty ``node``'s slot, shifting back later entries of its probe run."""
        words, at, mask, put = self._words, self._hash_at, self._hash_mask, self._put
        hole = self._home(words[node + N_START])
        while words[at + hole] != node:
            hole = (hole + 1) & mask
        slot = hole
        while True:
            slot = (slot + 1) & mask
            other = words[at + slot]
            if not other:
                break
            home = self._home(words[other + N_START])
            # ``other`` may move back into the hole unless its home lies in (hole, slot].
            if (hole < home <= slot) if hole <= slot else (hole < home or home <= slot):
                continue
            put(at + hole, other)
            hole = slot
        put(at + hole, 0)

    # -- internals: checks ----------------------------------------------------------

    def _check_address_order(self) -> list[int]:
        words = self._words
        nodes: list[int] = []
        expected, before, previous_free = 0, 0, False
        node = self._find(0) if self.capacity else 0
        while node:
            start, size, state = (words[node + f] for f in (N_START, N_SIZE, N_STATE))
            if start != expected:
                kind = "overlaps" if start < expected else "leaves a gap before"
                raise InvariantError(f"block at {start} {kind} the previous one")
            if size <= 0 or start & self._mask or size & self._mask:
                raise InvariantError(f"block at {start} of {size} B is empty or not aligned")
            if state not in (FREE, LIVE) or words[node + N_PREV] != before:
                raise InvariantError(f"block at {start} has a bad state or back link")
            if state == FREE and previous_free:
                raise InvariantError(f"free block at {start} follows a free block")
            if state == LIVE and not 0 < words[node + N_REQUEST] <= size:
                raise InvariantError(f"live block at {start} records a bad requested size")
            nodes.append(node)
            if len(nodes) > self.layout.nodes:
                raise InvariantError("the address-order links form a cycle")
            expected, before, previous_free = start + size, node, state == FREE
            node = words[node + N_NEXT]
        if expected != self.capacity:
            raise InvariantError(f"blocks cover {expected} of {self.capacity} bytes")
        return nodes

    def _check_hash(self) -> int:
        words, at = self._words, self._hash_at
        entries = 0
        for slot in range(self.layout.hash_slots):
            node = words[at + slot]
            if node:
                entries += 1
                if self._find(words[node + N_START]) != node:
                    raise InvariantError(f"hash slot {slot} cannot be found from its block")
        return entries

    def _check_treap(self) -> list[int]:
        """The treap's nodes in order, checking order, heap priorities and parent links."""
        words = self._words
        order: list[int] = []
        stack: list[int] = []
        node, limit = words[H_ROOT], self.layout.nodes
        if node and words[node + N_PARENT]:
            raise InvariantError("the tree's root has a parent")
        while stack or node:
            while node:
                for side in (N_LEFT, N_RIGHT):
                    child = words[node + side]
                    if child and (
                        words[child + N_PARENT] != node
                        or words[child + N_PRIORITY] > words[node + N_PRIORITY]
                    ):
                        raise InvariantError(f"tree node {child} has a bad parent or priority")
                stack.append(node)
                node = words[node + N_LEFT]
            node = stack.pop()
            if order:
                last = order[-1]
                key = (words[node + N_SIZE], words[node + N_START])
                if (words[last + N_SIZE], words[last + N_START]) >= key:
                    raise InvariantError("the free-block tree is out of (size, start) order")
            order.append(node)
            if len(order) > limit:
                raise InvariantError("the free-block tree has a cycle")
            node = words[node + N_RIGHT]
        return order

    # -- internals: errors ----------------------------------------------------------

    def _require_size(self, size: object) -> int:
        number = require_count(size, "size")
        if number > self.capacity:
            raise SizeTooLargeError(
                f"size {number} exceeds the heap's capacity of {self.capacity} bytes: "
                "no block can ever be that large; create a larger heap"
            )
        return number

    def _out_of_memory(self, size: int) -> OutOfMemoryError:
        return OutOfMemoryError.for_request(
            size,
            free=self.capacity - self.used,
            largest_free=self.largest_free,
            advice="free some blocks (or reclaim_dead())",
        )

    def _table_full(self, size: int) -> OutOfMemoryError:
        free = self.capacity - self.used
        return OutOfMemoryError(
            f"cannot allocate {size} bytes: the heap holds its maximum of {self.max_blocks} live "
            "blocks; free some, or create the heap with a larger max_blocks",
            requested=size,
            free=free,
            largest_free=self.largest_free,
        )

    def _bad_handle(self, offset: object) -> InvalidHandleError:
        if type(offset) is not int:
            return InvalidHandleError(
                f"a handle is the int that alloc() returned, got {type(offset).__name__} {offset!r}"
            )
        if not 0 <= offset < self.capacity:
            return InvalidHandleError(
                f"handle {offset} is out of range: this heap's handles are 0 to "
                f"{self.capacity - 1}; was it made by another heap?"
            )
        return InvalidHandleError(
            f"handle {offset} is not the start of a live block: it was freed already (and "
            "merged), never allocated, or points inside a block; pass the int alloc() returned"
        )
