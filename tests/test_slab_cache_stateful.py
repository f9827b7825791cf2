"""SlabCache against a model: random allocs and frees, single and bulk, across classes and threads.

Every live block holds its own pattern; after every step no block's bytes
changed, no two blocks overlap, ``check()`` passes and the counts are exact.
Frees sometimes run on a second thread, so objects cross between threads'
magazines.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import count

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from conftest import assert_disjoint
from slaballoc import InvalidFreeError, OutOfMemoryError, SlabCache

CAPACITY = 256 << 10
# Sizes across small, middle and large classes, and above the largest class.
SIZES = st.one_of(st.integers(1, 128), st.integers(129, 4096), st.integers(4097, 40_000))


def pattern(serial: int, size: int) -> bytes:
    stamp = serial.to_bytes(4, "little")
    return (stamp * (size // 4 + 1))[:size]


class SlabCacheMachine(RuleBasedStateMachine):
    debug = False

    def __init__(self) -> None:
        super().__init__()
        self.cache = SlabCache(capacity=CAPACITY, keep_empty=1, debug=self.debug)
        self.expected: dict[int, tuple[memoryview, bytes]] = {}
        self.freed: list[memoryview] = []
        self.serials = count(1)
        self.other_thread = ThreadPoolExecutor(max_workers=1)

    def teardown(self) -> None:
        self.other_thread.shutdown()

    def remember(self, view: memoryview) -> None:
        contents = pattern(next(self.serials), len(view))
        view[:] = contents
        self.expected[id(view)] = (view, contents)

    def pick(self, data: st.DataObject) -> memoryview:
        key = data.draw(st.sampled_from(list(self.expected)))  # insertion order: reproducible
        return self.expected.pop(key)[0]

    @rule(size=SIZES)
    def alloc(self, size: int) -> None:
        try:
            self.remember(self.cache.alloc(size))
        except OutOfMemoryError:
            assert len(self.cache) == len(self.expected)

    @rule(size=SIZES, how_many=st.integers(0, 12))
    def alloc_many(self, size: int, how_many: int) -> None:
        before = len(self.cache)
        try:
            views = self.cache.alloc_many(size, how_many)
        except OutOfMemoryError:
            assert len(self.cache) == before  # all or nothing
            return
        assert [len(view) for view in views] == [size] * how_many
        for view in views:
            self.remember(view)

    @precondition(lambda self: self.expected)
    @rule(data=st.data(), elsewhere=st.booleans())
    def free(self, data: st.DataObject, elsewhere: bool) -> None:
        view = self.pick(data)
        if elsewhere:
            self.other_thread.submit(self.cache.free, view).result()
        else:
            self.cache.free(view)
        self.freed.append(view)

    @precondition(lambda self: self.expected)
    @rule(data=st.data(), elsewhere=st.booleans())
    def free_many(self, data: st.DataObject, elsewhere: bool) -> None:
        views = [self.pick(data) for _ in range(data.draw(st.integers(1, len(self.expected))))]
        if elsewhere:
            self.other_thread.submit(self.cache.free_many, views).result()
        else:
            self.cache.free_many(views)
        self.freed.extend(views)

    @precondition(lambda self: self.expected)
    @rule(data=st.data(), size=SIZES)
    def realloc(self, data: st.DataObject, size: int) -> None:
        view = self.pick(data)
        contents = bytes(view)
        try:
            moved = self.cache.realloc(view, size)
        except OutOfMemoryError:
            self.expected[id(view)] = (view, contents)
            return
        keep = min(len(contents), size)
        assert bytes(moved[:keep]) == contents[:keep]
        self.remember(moved)

    @precondition(lambda self: self.freed)
    @rule()
    def stale_free_is_refused(self) -> None:
        with pytest.raises(InvalidFreeError):
            self.cache.free(self.freed[-1])

    @invariant()
    def contents_are_untouched(self) -> None:
        for view, contents in self.expected.values():
            assert bytes(view) == contents

    @invariant()
    def no_two_blocks_overlap(self) -> None:
        assert_disjoint((self.cache.offset_of(v), len(v)) for v, _ in self.expected.values())

    @invariant()
    def books_are_exact(self) -> None:
        self.cache.check()
        stats = self.cache.stats()
        assert stats.live_blocks == len(self.cache) == len(self.expected)
        assert stats.live_bytes == sum(len(view) for view, _ in self.expected.values())
        assert stats.allocs - stats.frees == sum(row.active_objects for row in stats.classes)


class DebugSlabCacheMachine(SlabCacheMachine):
    debug = True


TestSlabCache = SlabCacheMachine.TestCase
TestDebugSlabCache = DebugSlabCacheMachine.TestCase
for case in (TestSlabCache, TestDebugSlabCache):
    case.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
del case  # a module-level TestCase name would be collected a second time
