"""The C best fit against its specification: the same random sequences through both.

Every operation goes to the pure-Python class and to the C-backed one; the
test compares what each returned (offsets, sizes, view lengths), every error
(type and message), and after every step the blocks, the facts and every
byte of the memory.  Bad input is mixed in: freed, never-allocated,
out-of-range and mid-block offsets, non-ints, floats, bools, huge sizes,
foreign and released views, exported views.
"""

# The lambdas below are called at once, in the loop iteration that made them.
# ruff: noqa: B023

from __future__ import annotations

import pickle
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slaballoc import IMPLEMENTATION
from slaballoc.dynamic import DynamicSlab, PureDynamicSlab
from slaballoc.policies.best_fit import BestFit, PureBestFit

pytestmark = pytest.mark.skipif(IMPLEMENTATION != "c", reason="the C core is not built")

Outcome = tuple[Any, ...]


def outcome(action: Callable[[], Any]) -> Outcome:
    """What an action did: its result, or its error's type and message."""
    try:
        return ("ok", action())
    except Exception as error:
        return ("error", type(error), str(error))


def same(pure: Callable[[], Any], fast: Callable[[], Any]) -> Outcome:
    expected, actual = outcome(pure), outcome(fast)
    assert actual == expected
    return expected


# Sizes: mostly plausible, sometimes wrong in every way a caller can be wrong.
ODD_SIZES = [0, -1, -(2**70), 2**64, 2**70, 10**30, 8.0, 1.5, True, False, None, "8", b"8"]
sizes = st.one_of(
    st.integers(1, 300),
    st.integers(1, 5000),
    st.sampled_from(ODD_SIZES),
)
capacities = st.one_of(st.integers(0, 70), st.integers(0, 5000), st.just(4096))
alignments = st.sampled_from([1, 2, 4, 8, 16, 32, 64])


def odd_offset(choice: int, capacity: int, live: list[int], freed: list[int]) -> object:
    """An offset that is not (or no longer) a live block's, chosen by ``choice``."""
    candidates: list[object] = [
        -1,
        capacity,
        capacity + 8,
        2**64,
        2**70,
        -(2**70),
        8.0,
        0.0,
        True,
        "0",
        None,
    ]
    candidates += freed[-3:]
    candidates += [offset + 1 for offset in live[:3]]  # mid-block (or the next block)
    return candidates[choice % len(candidates)]


def compare_heaps(pure: PureBestFit, fast: BestFit) -> None:
    assert list(fast.blocks()) == list(pure.blocks())
    assert (fast.used, fast.free, fast.largest_free, len(fast)) == (
        pure.used,
        pure.free,
        pure.largest_free,
        len(pure),
    )
    assert fast.stats() == pure.stats()
    assert sorted(fast.free_sizes()) == sorted(pure.free_sizes())
    assert repr(fast) == repr(pure)
    fast.check()


operations = st.lists(
    st.tuples(
        st.sampled_from(["allocate", "allocate", "release", "resize", "size_of", "bad"]),
        st.integers(0, 10**6),
        sizes,
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(capacities, alignments, operations)
def test_best_fit_in_c_does_what_the_specification_does(
    capacity: int, alignment: int, ops: list[tuple[str, int, object]]
) -> None:
    made = same(
        lambda: PureBestFit(capacity, alignment).capacity,
        lambda: BestFit(capacity, alignment).capacity,
    )
    if made[0] == "error":
        return  # too small for one block: both refused alike
    pure, fast = PureBestFit(capacity, alignment), BestFit(capacity, alignment)
    live: list[int] = []
    freed: list[int] = []
    for kind, pick, size in ops:
        if kind == "allocate":
            result = same(lambda: pure.allocate(size), lambda: fast.allocate(size))  # type: ignore[arg-type]
            if result[0] == "ok":
                live.append(result[1])
        elif kind in ("release", "resize", "size_of") and live and pick % 5:
            offset = live[pick % len(live)]
            if kind == "release":
                result = same(lambda: pure.release(offset), lambda: fast.release(offset))
                live.remove(offset)
                freed.append(offset)
            elif kind == "resize":
                same(lambda: pure.resize(offset, size), lambda: fast.resize(offset, size))  # type: ignore[arg-type]
            else:
                same(lambda: pure.size_of(offset), lambda: fast.size_of(offset))
        else:
            bad = odd_offset(pick, capacity, live, freed)
            same(lambda: pure.release(bad), lambda: fast.release(bad))  # type: ignore[arg-type]
            same(lambda: pure.size_of(bad), lambda: fast.size_of(bad))  # type: ignore[arg-type]
            same(lambda: pure.resize(bad, 8), lambda: fast.resize(bad, 8))  # type: ignore[arg-type]
        compare_heaps(pure, fast)


@pytest.mark.parametrize(
    ("capacity", "alignment"),
    [
        (-1, 8),
        (0, 8),
        (7, 8),
        (8.0, 8),
        (True, 8),
        (None, 8),
        (64, 0),
        (64, 3),
        (64, -8),
        (64, 8.0),
        (64, True),
    ],
)
def test_best_fit_constructors_refuse_alike(capacity: object, alignment: object) -> None:
    same(
        lambda: PureBestFit(capacity, alignment),  # type: ignore[arg-type]
        lambda: BestFit(capacity, alignment),  # type: ignore[arg-type]
    )


def test_long_best_fit_runs_agree() -> None:
    """Thousands of blocks: deep trees, many merges, region growth."""
    rng = random.Random(8)
    pure, fast = PureBestFit(1 << 22, 16), BestFit(1 << 22, 16)
    live: list[int] = []
    for step in range(30_000):
        if live and rng.random() < 0.45:
            offset = live.pop(rng.randrange(len(live)))
            assert fast.release(offset) == pure.release(offset)
        elif live and rng.random() < 0.2:
            offset = rng.choice(live)
            size = rng.randint(1, 3000)
            assert fast.resize(offset, size) == pure.resize(offset, size)
        else:
            size = rng.randint(1, 3000)
            result = same(lambda: pure.allocate(size), lambda: fast.allocate(size))
            if result[0] == "ok":
                live.append(result[1])
        if step % 5000 == 0:
            compare_heaps(pure, fast)
    compare_heaps(pure, fast)


# -- DynamicSlab ---------------------------------------------------------------------------


Pair = tuple[memoryview, memoryview]  # the pure slab's view, the C slab's view


class Twin:
    """One pure and one C DynamicSlab driven in step; views kept in pairs.

    Each ``op_*`` method does one kind of operation to both, given a number
    ``pick`` that chooses among the live blocks, a size and a list of sizes.
    """

    def __init__(self, capacity: int, alignment: int, fast: bool) -> None:
        self.pure = PureDynamicSlab(capacity, alignment=alignment, fast=fast)
        self.fast = DynamicSlab(capacity, alignment=alignment, fast=fast)
        self.views: list[Pair] = []
        self.dead: list[Pair] = []  # freed or replaced
        self.stamp = 0

    def both(self, pure_action: Callable[[], Any], fast_action: Callable[[], Any]) -> Any:
        """Run both; compare errors; return both results when they succeeded."""
        pure_result, fast_result = outcome(pure_action), outcome(fast_action)
        assert fast_result[0] == pure_result[0], (pure_result, fast_result)
        if pure_result[0] == "error":
            assert fast_result == pure_result
            return None
        return pure_result[1], fast_result[1]

    def pick(self, pick: int) -> Pair | None:
        return self.views[pick % len(self.views)] if self.views else None

    def born(self, pair: Pair) -> None:
        """A new block: write the same new pattern into both."""
        self.stamp += 1
        pattern = bytes((self.stamp + i) & 0xFF for i in range(len(pair[0])))
        pair[0][:] = pattern
        pair[1][:] = pattern
        self.views.append(pair)

    def gone(self, pair: Pair) -> None:
        self.views.remove(pair)
        self.dead.append(pair)

    def op_alloc(self, pick: int, size: Any, many: list[Any]) -> None:
        got = self.both(lambda: self.pure.alloc(size), lambda: self.fast.alloc(size))
        if got is not None:
            self.born(got)

    def op_free(self, pick: int, size: Any, many: list[Any]) -> None:
        pair = self.pick(pick)
        if pair is not None and self.both(
            lambda: self.pure.free(pair[0]), lambda: self.fast.free(pair[1])
        ):
            self.gone(pair)

    def op_realloc(self, pick: int, size: Any, many: list[Any]) -> None:
        pair = self.pick(pick)
        if pair is None:
            return
        got = self.both(
            lambda: self.pure.realloc(pair[0], size), lambda: self.fast.realloc(pair[1], size)
        )
        if got is not None:
            self.gone(pair)
            self.born(got)

    def op_alloc_many(self, pick: int, size: Any, many: list[Any]) -> None:
        got = self.both(lambda: self.pure.alloc_many(many), lambda: self.fast.alloc_many(many))
        if got is not None:
            for pair in zip(*got, strict=True):
                self.born(pair)

    def op_free_many(self, pick: int, size: Any, many: list[Any]) -> None:
        chosen = [
            self.views[(pick + i) % len(self.views)] for i in range(pick % 4 if self.views else 0)
        ]
        if pick % 3 == 0 and self.dead:
            chosen.append(self.dead[pick % len(self.dead)])  # one freed already
        got = self.both(
            lambda: self.pure.free_many([p for p, _ in chosen]),
            lambda: self.fast.free_many([f for _, f in chosen]),
        )
        if got is not None:
            for pair in chosen:
                self.gone(pair)

    def op_bad_free(self, pick: int, size: Any, many: list[Any]) -> None:
        """Things that are not live blocks: each refused alike by free, offset_of, realloc."""
        bad: list[tuple[Any, Any]] = [
            (None, None),
            (bytearray(8), bytearray(8)),
            (memoryview(bytearray(8)), memoryview(bytearray(8))),
        ]
        if self.dead:
            bad.append(self.dead[pick % len(self.dead)])
        pair = self.pick(pick)
        if pair is not None and len(pair[0]) > 1:
            bad.append((pair[0][1:], pair[1][1:]))  # a slice of a live block
        if not self.pure.closed:
            bad.append((self.pure.memory, self.fast.memory))
        pure_obj, fast_obj = bad[pick % len(bad)]
        self.both(lambda: self.pure.free(pure_obj), lambda: self.fast.free(fast_obj))
        self.both(lambda: self.pure.offset_of(pure_obj), lambda: self.fast.offset_of(fast_obj))
        self.both(lambda: self.pure.realloc(pure_obj, 8), lambda: self.fast.realloc(fast_obj, 8))

    def op_exported(self, pick: int, size: Any, many: list[Any]) -> None:
        """Something exports a view: in safe mode free, realloc and close refuse it.

        (Fast mode never releases views, so there they go ahead.)
        """
        pair = self.pick(pick)
        if pair is None:
            return
        exports = pickle.PickleBuffer(pair[0]), pickle.PickleBuffer(pair[1])
        if pick % 3 == 0:
            self.op_free(self.views.index(pair), size, many)
        elif pick % 3 == 1:
            self.op_realloc(self.views.index(pair), size, many)
        elif len(self.views) == 1:  # close releases views in its own order: one view only
            self.op_close(0, size, many)
        for export in exports:
            export.release()

    def op_close(self, pick: int, size: Any, many: list[Any]) -> None:
        if pick % 7 == 0:  # rarely: it ends the interesting part
            self.both(self.pure.close, self.fast.close)
            if self.pure.closed:
                self.dead += self.views
                self.views = []

    def compare(self) -> None:
        pure, fast = self.pure, self.fast
        assert len(fast) == len(pure)
        assert fast.closed == pure.closed
        if pure.closed:
            return
        assert list(fast.blocks()) == list(pure.blocks())
        assert fast.stats() == pure.stats()
        assert bytes(fast.memory) == bytes(pure.memory)
        assert repr(fast) == repr(pure)
        for pure_view, fast_view in self.views:
            assert fast.offset_of(fast_view) == pure.offset_of(pure_view)
            assert bytes(fast_view) == bytes(pure_view)
        fast.check()


KINDS = ["alloc", "alloc", "free", "realloc", "realloc", "alloc_many", "free_many", "bad_free"]
slab_operations = st.lists(
    st.tuples(
        st.sampled_from([*KINDS, "exported", "close"]),
        st.integers(0, 10**6),
        sizes,
        st.lists(sizes, max_size=5),
    ),
    max_size=50,
)


@settings(max_examples=200, deadline=None)
@given(capacities, alignments, st.booleans(), slab_operations)
def test_dynamic_slab_in_c_does_what_the_specification_does(
    capacity: int, alignment: int, fast: bool, ops: list[tuple[str, int, object, list[object]]]
) -> None:
    made = same(
        lambda: PureDynamicSlab(capacity, alignment=alignment, fast=fast).capacity,
        lambda: DynamicSlab(capacity, alignment=alignment, fast=fast).capacity,
    )
    if made[0] == "error":
        return  # too small for one block: both refused alike
    twin = Twin(capacity, alignment, fast)
    for kind, pick, size, many in ops:
        getattr(twin, "op_" + kind)(pick, size, many)
        twin.compare()
