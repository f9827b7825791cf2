"""Property-based tests: random alloc/free/realloc sequences against a model.

Every live block is filled with its own pattern when allocated.  After every
step: no live block's bytes changed, no two live blocks overlap, ``check()``
passes, and ``used`` and ``len()`` are exactly what the model says.
"""

from __future__ import annotations

import pickle
from itertools import count

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
)

from conftest import assert_disjoint
from slaballoc import (
    BlockInUseError,
    DynamicSlab,
    FreeListSlab,
    InvalidFreeError,
    LinearSlab,
    OutOfMemoryError,
)
from slaballoc.sizes import round_up

CAPACITY = 2048


def pattern(serial: int, size: int) -> bytes:
    """Bytes no other block holds: the block's serial number, repeated."""
    stamp = serial.to_bytes(4, "little")
    return (stamp * (size // 4 + 1))[:size]


class AllocatorMachine(RuleBasedStateMachine):
    """Shared rules and invariants; subclasses choose the allocator."""

    blocks = Bundle("blocks")
    thread_safe = True

    def __init__(self) -> None:
        super().__init__()
        self.allocator = self.create()
        self.expected: dict[int, tuple[memoryview, bytes]] = {}  # id -> (view, contents)
        self.serials = count(1)

    def create(self) -> LinearSlab | FreeListSlab | DynamicSlab:
        raise NotImplementedError

    def block_size(self, view: memoryview) -> int:
        raise NotImplementedError

    def remember(self, view: memoryview) -> memoryview:
        contents = pattern(next(self.serials), len(view))
        view[:] = contents
        self.expected[id(view)] = (view, contents)
        return view

    @rule(target=blocks, view=consumes(blocks))
    def free(self, view: memoryview) -> memoryview:
        """Free a block, or be refused for a stale or foreign one; keep it to try again."""
        if id(view) in self.expected:
            self.allocator.free(view)
            del self.expected[id(view)]
        else:
            with pytest.raises(InvalidFreeError):
                self.allocator.free(view)
        return view

    @rule(view=blocks)
    def exported_block_is_not_freed(self, view: memoryview) -> None:
        """While PickleBuffer(view) exists, free() refuses and changes nothing (safe mode)."""
        if id(view) not in self.expected or self.allocator.fast:
            return
        export = pickle.PickleBuffer(view)
        with pytest.raises(BlockInUseError):
            self.allocator.free(view)
        export.release()

    @rule(kind=st.sampled_from(["none", "foreign view", "bytes"]))
    def foreign_free_is_refused(self, kind: str) -> None:
        thing = {"none": None, "foreign view": memoryview(bytearray(8)), "bytes": b"x"}[kind]
        with pytest.raises(InvalidFreeError):
            self.allocator.free(thing)  # type: ignore[arg-type]

    @invariant()
    def contents_are_untouched(self) -> None:
        for view, contents in self.expected.values():
            assert bytes(view) == contents

    @invariant()
    def no_two_blocks_overlap(self) -> None:
        assert_disjoint(
            (self.allocator.offset_of(view), self.block_size(view))
            for view, _ in self.expected.values()
        )

    @invariant()
    def books_are_exact(self) -> None:
        self.allocator.check()
        assert len(self.allocator) == len(self.expected)
        used = sum(self.block_size(view) for view, _ in self.expected.values())
        assert self.allocator.used == used


class FixedSlabMachine(AllocatorMachine):
    cls: type[LinearSlab] | type[FreeListSlab] = FreeListSlab
    fast = False

    def create(self) -> LinearSlab | FreeListSlab:
        return self.cls(
            capacity=CAPACITY, slot_size=64, fast=self.fast, thread_safe=self.thread_safe
        )

    def block_size(self, view: memoryview) -> int:
        return 64

    @rule(target=AllocatorMachine.blocks)
    def alloc(self) -> memoryview:
        slab = self.allocator
        assert not isinstance(slab, DynamicSlab)
        if len(slab) == slab.slot_count:
            with pytest.raises(OutOfMemoryError):
                slab.alloc()
            return memoryview(bytearray(64))  # a foreign block for the bundle
        return self.remember(slab.alloc())


class LinearSlabMachine(FixedSlabMachine):
    cls = LinearSlab


class FastFreeListSlabMachine(FixedSlabMachine):
    fast = True


class FastLinearSlabMachine(LinearSlabMachine):
    fast = True


class DynamicSlabMachine(AllocatorMachine):
    fast = False

    def create(self) -> DynamicSlab:
        return DynamicSlab(
            capacity=CAPACITY, alignment=8, fast=self.fast, thread_safe=self.thread_safe
        )

    def block_size(self, view: memoryview) -> int:
        return round_up(len(view), 8)

    @property
    def slab(self) -> DynamicSlab:
        assert isinstance(self.allocator, DynamicSlab)
        return self.allocator

    @rule(target=AllocatorMachine.blocks, size=st.integers(1, 700))
    def alloc(self, size: int) -> memoryview:
        try:
            return self.remember(self.slab.alloc(size))
        except OutOfMemoryError:
            assert self.slab.largest_free < round_up(size, 8)
            return memoryview(bytearray(size))

    @rule(
        target=AllocatorMachine.blocks,
        view=consumes(AllocatorMachine.blocks),
        size=st.integers(1, 900),
    )
    def realloc(self, view: memoryview, size: int) -> memoryview:
        entry = self.expected.get(id(view))
        if entry is None:  # stale or foreign: must be refused
            with pytest.raises(InvalidFreeError):
                self.slab.realloc(view, size)
            return view
        try:
            moved = self.slab.realloc(view, size)
        except OutOfMemoryError:
            return view
        del self.expected[id(view)]
        kept = entry[1][: min(len(entry[1]), size)]
        assert bytes(moved[: len(kept)]) == kept
        return self.remember(moved)


class FastDynamicSlabMachine(DynamicSlabMachine):
    fast = True


class UnlockedFreeListSlabMachine(FixedSlabMachine):
    thread_safe = False


class UnlockedDynamicSlabMachine(DynamicSlabMachine):
    thread_safe = False


settings_for_ci = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestFreeListSlab = FixedSlabMachine.TestCase
TestLinearSlab = LinearSlabMachine.TestCase
TestDynamicSlab = DynamicSlabMachine.TestCase
TestFastFreeListSlab = FastFreeListSlabMachine.TestCase
TestFastLinearSlab = FastLinearSlabMachine.TestCase
TestFastDynamicSlab = FastDynamicSlabMachine.TestCase
TestUnlockedFreeListSlab = UnlockedFreeListSlabMachine.TestCase
TestUnlockedDynamicSlab = UnlockedDynamicSlabMachine.TestCase
for case in (
    TestFreeListSlab,
    TestLinearSlab,
    TestDynamicSlab,
    TestFastFreeListSlab,
    TestFastLinearSlab,
    TestFastDynamicSlab,
    TestUnlockedFreeListSlab,
    TestUnlockedDynamicSlab,
):
    case.settings = settings_for_ci
del case  # a module-level TestCase name would be collected a second time
