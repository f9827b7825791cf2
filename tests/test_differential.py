"""The C core against its specification: the same random sequences, the same outcomes.

Each test drives a pure-Python object and its C counterpart side by side
through one random sequence of operations (good and bad inputs mixed) and
compares, after every step, the result or the error (its type and its
message), then the whole observable state: every byte of the memory, the
blocks, the stats, the length and the repr.
"""

from __future__ import annotations

import gc
import pickle
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import outcome
from slaballoc import IMPLEMENTATION, BlockInUseError
from slaballoc.policies.free_list import FreeList, PureFreeList
from slaballoc.policies.linear_search import LinearSearch, PureLinearSearch
from slaballoc.slabs import FreeListSlab, LinearSlab, PureFreeListSlab, PureLinearSlab

pytestmark = pytest.mark.skipif(IMPLEMENTATION != "c", reason="the C core is not built")

SLABS = [(PureLinearSlab, LinearSlab), (PureFreeListSlab, FreeListSlab)]
POLICIES = [(PureLinearSearch, LinearSearch), (PureFreeList, FreeList)]


def observe(allocator: Any) -> tuple[Any, ...]:
    """Everything a user can see of an allocator's state."""
    return (
        outcome(lambda: bytes(allocator.memory)),
        outcome(lambda: list(allocator.blocks())),
        outcome(allocator.stats),
        outcome(allocator.check),
        len(allocator),
        repr(allocator),
        allocator.closed,
        allocator.capacity,
        allocator.unmanaged,
    )


class Twins:
    """One pure and one C allocator, and the views each handed out, in step."""

    def __init__(self, pure: Any, fast: Any) -> None:
        self.pure, self.c = pure, fast
        self.views: list[tuple[Any, Any]] = []  # every view ever handed out, pure and C
        self.exports: list[tuple[Any, Any]] = []

    def both(self, action: Callable[[Any, int], Any], describe: Callable[..., Any]) -> bool:
        """Run ``action(allocator, side)`` on each side and require the same outcome.

        False when the states may rightly differ from now on: a ``close()``
        refused because a block is exported.  Python cannot tell an exported
        view without trying to release it, so the specification has released
        the views it met before that one (its docstring says so); the C core
        checks every export first and releases none.
        """
        pure = outcome(lambda: action(self.pure, 0), lambda r: describe(self.pure, r))
        c = outcome(lambda: action(self.c, 1), lambda r: describe(self.c, r))
        if pure[0] == "raised" and pure[1] is BlockInUseError and "cannot close" in pure[2]:
            # Which exported block is named depends on the order each side looks in
            # (allocation order in Python, address order in C): both name an exported one.
            assert c[:2] == pure[:2]
            assert c[2].startswith("cannot close ")
            return False
        assert pure == c
        assert observe(self.pure) == observe(self.c)
        return True

    def describe_views(self, allocator: Any, result: Any) -> Any:
        """Views by offset, length and bytes; remembered for later steps."""
        views = result if isinstance(result, list) else [result]
        if result is None:
            return None
        described = [(allocator.offset_of(view), len(view), bytes(view)) for view in views]
        side = 0 if allocator is self.pure else 1
        for index, view in enumerate(views):
            if side == 0:
                self.views.append((view, None))
            else:
                # The C side runs second: pair its view with the pure one made just before.
                position = len(self.views) - len(views) + index
                self.views[position] = (self.views[position][0], view)
        return described


def pick(data: st.DataObject, twins: Twins) -> Callable[[int], object]:
    """Something to give back: a view handed out (live or not), or a bad object."""
    kinds = ["foreign", "none", "bytes", "int"]
    if twins.views:
        kinds += ["handed out"] * 6 + ["slice"]
    kind = data.draw(st.sampled_from(kinds))
    if kind == "handed out":
        pair = twins.views[data.draw(st.integers(0, len(twins.views) - 1))]
        return lambda side: pair[side]
    if kind == "slice":
        pair = twins.views[data.draw(st.integers(0, len(twins.views) - 1))]

        def sliced(side: int) -> object:
            try:
                return pair[side][1:]
            except ValueError:  # released: a released view
                return pair[side]

        return sliced
    foreign = {"foreign": memoryview(bytearray(64)), "none": None, "bytes": b"x" * 64, "int": 0}
    return lambda side: foreign[kind]


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    classes=st.sampled_from(SLABS),
    capacity=st.one_of(st.integers(0, 1200), st.sampled_from([None, -1, 2**64, 10.0])),
    slot_size=st.one_of(st.integers(1, 100), st.sampled_from([0, -8, True, "64"])),
    modes=st.tuples(st.booleans(), st.booleans()),
)
def test_slabs_behave_as_their_specification(
    data: st.DataObject,
    classes: tuple[type, type],
    capacity: Any,
    slot_size: Any,
    modes: tuple[bool, bool],
) -> None:
    fast, thread_safe = modes

    def make(cls: type) -> Any:
        return cls(capacity=capacity, slot_size=slot_size, fast=fast, thread_safe=thread_safe)

    made = [outcome(partial(make, cls), lambda slab: None) for cls in classes]
    assert made[0] == made[1]
    if made[0][0] == "raised":
        return
    twins = Twins(make(classes[0]), make(classes[1]))
    assert observe(twins.pure) == observe(twins.c)
    for _ in range(data.draw(st.integers(1, 40))):
        if not run_step(data, twins):
            return


def run_step(data: st.DataObject, twins: Twins) -> bool:  # noqa: PLR0911  (one return per kind)
    """One random operation on both slabs; False when their states may rightly part."""
    step = data.draw(
        st.sampled_from(
            ["alloc"] * 4
            + ["free"] * 4
            + ["alloc_many", "free_many", "offset_of", "write", "export", "unexport"]
            + ["close"]
        )
    )
    if step == "alloc":
        return twins.both(lambda slab, side: slab.alloc(), twins.describe_views)
    if step == "alloc_many":
        count = data.draw(st.one_of(st.integers(-2, 20), st.sampled_from([2.0, True, "3"])))
        return twins.both(lambda slab, side: slab.alloc_many(count), twins.describe_views)
    if step in ("free", "offset_of"):
        target = pick(data, twins)
        return twins.both(lambda slab, side: getattr(slab, step)(target(side)), ignore)
    if step == "free_many":
        targets = [pick(data, twins) for _ in range(data.draw(st.integers(0, 4)))]
        return twins.both(lambda slab, side: slab.free_many(t(side) for t in targets), ignore)
    if step == "write" and twins.views:
        pair = twins.views[data.draw(st.integers(0, len(twins.views) - 1))]
        byte = data.draw(st.integers(0, 255))

        def write(slab: Any, side: int) -> None:
            view = pair[side]
            view[: len(view)] = bytes([byte]) * len(view)

        return twins.both(write, ignore)
    if step == "export" and twins.views:
        pair = twins.views[data.draw(st.integers(0, len(twins.views) - 1))]

        def export(slab: Any, side: int) -> None:
            buffer = pickle.PickleBuffer(pair[side])
            if side == 0:
                twins.exports.append((buffer, None))
            else:
                twins.exports[-1] = (twins.exports[-1][0], buffer)

        return twins.both(export, ignore)
    if step == "unexport" and twins.exports:
        exported = twins.exports.pop(data.draw(st.integers(0, len(twins.exports) - 1)))
        return twins.both(lambda slab, side: exported[side].release(), ignore)
    if step == "close":
        return twins.both(lambda slab, side: slab.close(), ignore)
    return True


def ignore(allocator: Any, result: Any) -> Any:
    """Describe a result that needs no translation between the two sides."""
    return result


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    classes=st.sampled_from(POLICIES),
    capacity=st.integers(0, 1200),
    slot_size=st.integers(1, 100),
)
def test_slot_policies_behave_as_their_specification(
    data: st.DataObject, classes: tuple[type, type], capacity: int, slot_size: int
) -> None:
    made = [outcome(partial(cls, capacity, slot_size), lambda policy: None) for cls in classes]
    assert made[0] == made[1]
    if made[0][0] == "raised":  # a policy that could hold nothing
        return
    pure, c = classes[0](capacity, slot_size), classes[1](capacity, slot_size)

    def state(policy: Any) -> tuple[Any, ...]:
        return (
            sorted(policy.free_slots()),
            list(policy.blocks()),
            policy.stats(),
            len(policy),
            repr(policy),
            policy.free_sizes(),
            outcome(policy.check),
        )

    offsets = st.one_of(
        st.integers(-2 * slot_size, capacity + slot_size),
        st.sampled_from([24.0, True, False, None, "0", 2**70, -(2**70)]),
    )
    for _ in range(data.draw(st.integers(1, 50))):
        step = data.draw(st.sampled_from(["allocate", "allocate", "release", "size_of"]))
        if step == "allocate":
            results = outcome(pure.allocate), outcome(c.allocate)
        else:
            method, offset = step, data.draw(offsets)
            results = (
                outcome(partial(getattr(pure, method), offset)),
                outcome(partial(getattr(c, method), offset)),
            )
        assert results[0] == results[1]
        assert state(pure) == state(c)


def test_the_c_classes_are_in_use() -> None:
    # Guard against a build that silently fell back to Python.
    assert type(FreeListSlab()).__mro__[-2].__module__ == "slaballoc._core"
    assert FreeListSlab is not PureFreeListSlab


@pytest.mark.parametrize("fast", [False, True])
def test_block_views_are_exactly_slices_of_the_memory(fast: bool) -> None:
    # The C core builds views by narrowing a new view of the memory (views.c), relying on
    # CPython's memoryview layout: on every version, it must be what slicing would give.
    slab = FreeListSlab(capacity=64 * 8, slot_size=64, fast=fast)
    view = slab.alloc_many(3)[2]
    offset = slab.offset_of(view)
    expected = slab.memory[offset : offset + 64]
    for attribute in ("format", "itemsize", "ndim", "shape", "strides", "suboffsets", "readonly"):
        assert getattr(view, attribute) == getattr(expected, attribute), attribute
    assert (view.nbytes, view.c_contiguous, view.contiguous) == (64, True, True)
    assert view.obj is expected.obj
    view[:] = bytes(range(64))
    assert bytes(slab.memory[offset : offset + 64]) == bytes(range(64))
    assert bytes(slab.memory[offset - 64 : offset]) == bytes(64)  # nothing written before it
    assert view[1:3].tobytes() == b"\x01\x02"
    assert view.cast("I")[1] == int.from_bytes(bytes(range(4, 8)), sys.byteorder)
    with pytest.raises(IndexError):
        view[64]


def test_a_finalizer_run_while_a_view_is_made_cannot_corrupt_the_slab() -> None:
    # Making a view can run the garbage collector (CPython 3.10 and 3.11 collect inside the
    # allocation), and a finalizer may free a block of the same slab meanwhile: the C core
    # must notice and start over, not commit a plan made before the free.
    slab = FreeListSlab(capacity=64 * 3)
    victim, kept = slab.alloc(), slab.alloc()  # one slot left free

    class FreesOnCollection:
        def __init__(self) -> None:
            self.cycle = self

        def __del__(self) -> None:
            slab.free(victim)

    FreesOnCollection()
    threshold = gc.get_threshold()
    gc.set_threshold(1)
    try:
        view = slab.alloc()
    finally:
        gc.set_threshold(*threshold)
    gc.collect()  # on versions that collect later, the finalizer runs here
    slab.check()
    last = slab.alloc()  # the one slot still free: never one already handed out
    offsets = {slab.offset_of(block) for block in (kept, view, last)}
    assert offsets == {0, 64, 128}
    assert slab.stats().free_blocks == 0
