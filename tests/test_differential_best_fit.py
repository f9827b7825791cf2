"""The C best fit against its specification: the same random sequences through both.

Every operation goes to the pure-Python class and to the C-backed one; the
test compares what each returned (offsets, sizes, view lengths), every error
(type and message), and after every step the blocks, the facts and every
byte of the memory.  Bad input is mixed in: freed, never-allocated,
out-of-range and mid-block offsets, non-ints, floats, bools, huge sizes,
foreign and released views, exported views.
"""

from __future__ import annotations

import pickle
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
    except Exception as error:  # noqa: BLE001  (every error is compared)
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
    import random

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
            result = same(lambda: pure.allocate(size), lambda: fast.allocate(size))  # noqa: B023
            if result[0] == "ok":
                live.append(result[1])
        if step % 5000 == 0:
            compare_heaps(pure, fast)
    compare_heaps(pure, fast)


# -- DynamicSlab ---------------------------------------------------------------------------


class Twin:
    """One pure and one C DynamicSlab driven in step; views kept in pairs."""

    def __init__(self, capacity: int, alignment: int, fast: bool) -> None:
        self.pure = PureDynamicSlab(capacity, alignment=alignment, fast=fast)
        self.fast = DynamicSlab(capacity, alignment=alignment, fast=fast)
        self.views: list[tuple[memoryview, memoryview]] = []
        self.dead: list[tuple[memoryview, memoryview]] = []  # freed or replaced
        self.stamp = 0

    def fill(self, pair: tuple[memoryview, memoryview]) -> None:
        """Write the same new pattern into both blocks."""
        self.stamp += 1
        pattern = bytes((self.stamp + i) & 0xFF for i in range(len(pair[0])))
        pair[0][:] = pattern
        pair[1][:] = pattern

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
            assert len(fast_view) == len(pure_view)
        fast.check()


def run_both(twin: Twin, pure_action: Callable[[], Any], fast_action: Callable[[], Any]) -> Any:
    """Run both; compare errors; return both results when they succeeded."""
    pure_result, fast_result = outcome(pure_action), outcome(fast_action)
    assert fast_result[0] == pure_result[0], (pure_result, fast_result)
    if pure_result[0] == "error":
        assert fast_result == pure_result
        return None
    return pure_result[1], fast_result[1]


slab_operations = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "alloc",
                "alloc",
                "free",
                "realloc",
                "realloc",
                "alloc_many",
                "free_many",
                "bad_free",
                "exported",
                "close",
            ]
        ),
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
        pair = twin.views[pick % len(twin.views)] if twin.views else None
        if kind == "close" and pick % 7:
            continue  # close rarely: it ends the interesting part
        if kind == "alloc":
            got = run_both(twin, lambda: twin.pure.alloc(size), lambda: twin.fast.alloc(size))  # type: ignore[arg-type]
            if got is not None:
                twin.views.append(got)
                twin.fill(got)
        elif kind == "free" and pair is not None:
            run_both(twin, lambda: twin.pure.free(pair[0]), lambda: twin.fast.free(pair[1]))
            twin.views.remove(pair)
            twin.dead.append(pair)
        elif kind == "realloc" and pair is not None:
            got = run_both(
                twin,
                lambda: twin.pure.realloc(pair[0], size),  # type: ignore[arg-type]
                lambda: twin.fast.realloc(pair[1], size),  # type: ignore[arg-type]
            )
            if got is not None:
                twin.views[twin.views.index(pair)] = got
                twin.dead.append(pair)
                twin.fill(got)
        elif kind == "alloc_many":
            got = run_both(
                twin, lambda: twin.pure.alloc_many(many), lambda: twin.fast.alloc_many(many)  # type: ignore[arg-type]
            )
            if got is not None:
                for new_pair in zip(*got, strict=True):
                    twin.views.append(new_pair)
                    twin.fill(new_pair)
        elif kind == "free_many":
            chosen = [twin.views[(pick + i) % len(twin.views)] for i in range(pick % 4)] if twin.views else []
            if pick % 3 == 0 and twin.dead:
                chosen.append(twin.dead[pick % len(twin.dead)])  # one freed already
            got = run_both(
                twin,
                lambda: twin.pure.free_many([p for p, _ in chosen]),
                lambda: twin.fast.free_many([f for _, f in chosen]),
            )
            if got is not None:
                for gone in chosen:
                    twin.views.remove(gone)
                    twin.dead.append(gone)
        elif kind == "bad_free":
            bad_pairs: list[tuple[object, object]] = [
                (None, None),
                (bytearray(8), bytearray(8)),
                (memoryview(bytearray(8)), memoryview(bytearray(8))),
            ]
            if twin.dead:
                bad_pairs.append(twin.dead[pick % len(twin.dead)])
            if pair is not None and len(pair[0]) > 1:
                bad_pairs.append((pair[0][1:], pair[1][1:]))  # a slice of a live block
            if not twin.pure.closed:
                bad_pairs.append((twin.pure.memory, twin.fast.memory))
            bad_pure, bad_fast = bad_pairs[pick % len(bad_pairs)]
            run_both(twin, lambda: twin.pure.free(bad_pure), lambda: twin.fast.free(bad_fast))  # type: ignore[arg-type]
            run_both(
                twin, lambda: twin.pure.offset_of(bad_pure), lambda: twin.fast.offset_of(bad_fast)  # type: ignore[arg-type]
            )
            run_both(
                twin,
                lambda: twin.pure.realloc(bad_pure, 8),  # type: ignore[arg-type]
                lambda: twin.fast.realloc(bad_fast, 8),  # type: ignore[arg-type]
            )
        elif kind == "exported" and pair is not None:
            # Something holds an export of the view: in safe mode free, realloc and
            # close refuse (fast mode never releases views, so they go ahead).
            pure_export, fast_export = pickle.PickleBuffer(pair[0]), pickle.PickleBuffer(pair[1])
            if pick % 3 == 0:
                if run_both(twin, lambda: twin.pure.free(pair[0]), lambda: twin.fast.free(pair[1])):
                    twin.views.remove(pair)
                    twin.dead.append(pair)
            elif pick % 3 == 1:
                got = run_both(
                    twin,
                    lambda: twin.pure.realloc(pair[0], size),  # type: ignore[arg-type]
                    lambda: twin.fast.realloc(pair[1], size),  # type: ignore[arg-type]
                )
                if got is not None:
                    twin.views[twin.views.index(pair)] = got
                    twin.dead.append(pair)
                    twin.fill(got)
            elif len(twin.views) == 1:  # close releases views in its own order: one view only
                run_both(twin, twin.pure.close, twin.fast.close)
                if twin.pure.closed:
                    twin.dead += twin.views
                    twin.views = []
            pure_export.release()
            fast_export.release()
        elif kind == "close":
            run_both(twin, twin.pure.close, twin.fast.close)
            if twin.pure.closed:
                twin.dead += twin.views
                twin.views = []
        twin.compare()
    if not twin.pure.closed:
        for pair in twin.views:
            assert bytes(pair[1]) == bytes(pair[0])
