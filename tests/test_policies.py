"""The placement policies on their own: offsets in, offsets out."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slaballoc import (
    IMPLEMENTATION,
    BestFit,
    Block,
    DoubleFreeError,
    FreeList,
    InvalidFreeError,
    InvariantError,
    LinearSearch,
    OutOfMemoryError,
)
from slaballoc.policies.best_fit import PureBestFit
from slaballoc.policies.size_index import SizeIndex
from slaballoc.sizes import round_up


class SeedBestFit:
    """The seed's algorithm, kept as an oracle: a list scan and merge by scanning."""

    def __init__(self, capacity: int, alignment: int) -> None:
        self.alignment = alignment
        self.free = [(0, capacity)]  # (offset, size), address order
        self.used: dict[int, int] = {}

    def allocate(self, size: int) -> int | None:
        need = round_up(size, self.alignment)
        fits = [(s, o) for o, s in self.free if s >= need]
        if not fits:
            return None
        size_found, offset = min(fits)
        self.free.remove((offset, size_found))
        if size_found > need:
            self.free.append((offset + need, size_found - need))
        self.free.sort()
        self.used[offset] = need
        return offset

    def release(self, offset: int) -> None:
        self.free.append((offset, self.used.pop(offset)))
        self.free.sort()
        merged: list[tuple[int, int]] = []
        for start, size in self.free:
            if merged and merged[-1][0] + merged[-1][1] == start:
                merged[-1] = (merged[-1][0], merged[-1][1] + size)
            else:
                merged.append((start, size))
        self.free = merged


operations = st.lists(
    st.tuples(st.sampled_from(["alloc", "free"]), st.integers(1, 600), st.integers(0, 10**6)),
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(operations, st.sampled_from([1, 8, 16, 64]))
def test_best_fit_places_every_block_where_the_seeds_scan_would(
    ops: list[tuple[str, int, int]], alignment: int
) -> None:
    fast, oracle = BestFit(4096, alignment), SeedBestFit(4096, alignment)
    live: list[int] = []
    for op, size, pick in ops:
        if op == "alloc":
            expected = oracle.allocate(size)
            if expected is None:
                with pytest.raises(OutOfMemoryError):
                    fast.allocate(size)
            else:
                assert fast.allocate(size) == expected
                live.append(expected)
        elif live:
            offset = live.pop(pick % len(live))
            oracle.release(offset)
            fast.release(offset)
        fast.check()
    free_blocks = [(b.offset, b.size) for b in fast.blocks() if not b.live]
    assert free_blocks == oracle.free


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5000))), st.integers(0, 5001))
def test_size_index_matches_a_sorted_set(ops: list[tuple[bool, int]], probe: int) -> None:
    index, model = SizeIndex(5001), set()
    for add, key in ops:
        if add:
            index.add(key)
            model.add(key)
        elif key in model:
            index.discard(key)
            model.discard(key)
    assert index.members() == sorted(model)
    assert index.successor(probe) == min((k for k in model if k >= probe), default=-1)
    assert index.maximum() == max(model, default=-1)
    assert (probe in index) == (probe in model)


def test_slot_policies_validate_offsets() -> None:
    for cls in (LinearSearch, FreeList):
        slots = cls(capacity=256, slot_size=64)
        offset = slots.allocate()
        for bad in (1, 256, -64, "0", None):
            with pytest.raises(InvalidFreeError):
                slots.release(bad)  # type: ignore[arg-type]
        slots.release(offset)
        with pytest.raises(DoubleFreeError):
            slots.release(offset)
        slots.check()


def test_slot_policy_capacity_ignores_a_partial_last_slot() -> None:
    slots = FreeList(capacity=200, slot_size=64)
    assert (slots.slot_count, slots.capacity) == (3, 192)
    assert [slots.allocate() for _ in range(3)] == [0, 64, 128]
    with pytest.raises(OutOfMemoryError):
        slots.allocate()


def test_best_fit_offsets_are_handles() -> None:
    heap = BestFit(1024, alignment=16)
    handles = [heap.allocate(size) for size in (1, 17, 100)]
    assert handles == [0, 16, 48]
    assert [heap.size_of(h) for h in handles] == [16, 32, 112]
    with pytest.raises(InvalidFreeError):
        heap.release(8)
    heap.release(16)
    with pytest.raises(DoubleFreeError):
        heap.release(16)
    with pytest.raises(InvalidFreeError):
        heap.size_of(16)


def test_best_fit_resize_grows_only_into_a_free_neighbour() -> None:
    heap = BestFit(256, alignment=8)
    first, second = heap.allocate(64), heap.allocate(64)
    assert not heap.resize(first, 65)  # second is in the way
    assert heap.resize(second, 192)  # up to the end of the arena
    assert not heap.resize(second, 193)
    assert heap.resize(second, 8)
    assert list(heap.blocks()) == [Block(0, 64, True), Block(64, 8, True), Block(72, 184, False)]
    heap.check()


def test_best_fit_ignores_the_unaligned_tail() -> None:
    heap = BestFit(100, alignment=16)
    assert heap.capacity == 96
    assert list(heap.blocks()) == [Block(0, 96, False)]


def test_best_fit_stale_heap_entries_are_compacted() -> None:
    heap = PureBestFit(1 << 20, alignment=8)  # the pure implementation's own bins
    blocks = [heap.allocate(8) for _ in range(2010)]
    heap.release(blocks[2001])  # an 8-byte hole that stays: the bin never empties
    for offset in blocks[0:2000:2] + blocks[1:2000:2]:
        heap.release(offset)  # 1000 holes, then merged away: 1000 stale heap entries
    assert len(heap._bins[8]) > 1000
    heap.release(blocks[2003])  # filing one more 8-byte hole rebuilds the mostly stale bin
    assert sorted(heap._bins[8]) == [blocks[2001], blocks[2003]]
    heap.check()


def test_check_reports_corruption() -> None:
    heap = PureBestFit(1024)  # corrupted through the pure implementation's own table
    offset = heap.allocate(64)
    heap._used[offset] = 72  # corrupt it: the block now overlaps the free one
    with pytest.raises(InvariantError, match="overlaps"):
        heap.check()
    slots = FreeList(256)
    slots._put(slots.allocate())  # the unchecked primitive: handed out, yet on the free stack
    with pytest.raises(InvariantError):
        slots.check()


@pytest.mark.parametrize(("alignment", "share"), [(8, 64), (64, 512)])
def test_best_fit_idle_metadata_is_capacity_over_eight_times_the_alignment(
    alignment: int, share: int
) -> None:
    # The README's figure: the size index costs capacity / 64 bytes at 8-byte alignment.
    capacity = 64 << 20
    heap, cost = _idle_cost(lambda: PureBestFit(capacity, alignment))
    assert heap.capacity == capacity
    assert capacity / share * 0.95 < cost < capacity / share * 1.10


def _idle_cost(make: Callable[[], BestFit]) -> tuple[BestFit, int]:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        heap = make()
        return heap, tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


@pytest.mark.skipif(IMPLEMENTATION != "c", reason="the C core is not built")
def test_best_fit_in_c_idle_metadata_does_not_grow_with_the_capacity() -> None:
    # The C engine keeps one node per block and a fixed header (the small-size
    # trees' roots and bitmap), not an index over every size.
    small = _idle_cost(lambda: BestFit(4096))[1]
    large = _idle_cost(lambda: BestFit(1 << 40))[1]
    assert small == large < 4096
