"""Recording an allocator's operations as a .rep trace, and replaying it to the same state."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from slaballoc import (
    DynamicSlab,
    FreeListSlab,
    InvalidFreeError,
    LinearSlab,
    SizeTooLargeError,
    SlabCache,
    TraceRecorder,
    record_trace,
)
from slaballoc.tools.replay import time_replay
from slaballoc.tools.traces import parse_trace, read_trace

Factory = Callable[[], Any]
VARIABLE: dict[str, Factory] = {
    "DynamicSlab": lambda: DynamicSlab(capacity=1 << 20),
    "SlabCache": lambda: SlabCache(capacity=1 << 20),
}
FIXED: dict[str, Factory] = {
    "LinearSlab": lambda: LinearSlab(capacity=1 << 14),
    "FreeListSlab": lambda: FreeListSlab(capacity=1 << 14),
}


class Replayed:
    """Any of our allocators as a replay contender (fixed-size slabs ignore the size)."""

    def __init__(self, allocator: Any) -> None:
        self.allocator = allocator
        self.name = type(allocator).__name__
        self.variable = hasattr(allocator, "realloc")

    def alloc(self, size: int) -> memoryview:
        view: memoryview = self.allocator.alloc(size) if self.variable else self.allocator.alloc()
        return view

    def free(self, view: memoryview) -> None:
        self.allocator.free(view)

    def realloc(self, view: memoryview, size: int) -> memoryview:
        new: memoryview = self.allocator.realloc(view, size)
        return new


def workload(allocator: TraceRecorder, variable: bool, seed: int = 7) -> None:
    """A random program: single and bulk allocs and frees, and reallocs where there are any."""
    rng = random.Random(seed)
    live: list[memoryview] = []
    for _ in range(300):
        roll = rng.random()
        size = rng.choice([1, 24, 64, 200, 1500, 20_000]) if variable else 64
        if roll < 0.4 or not live:
            live.append(allocator.alloc(size) if variable else allocator.alloc())
        elif roll < 0.5:
            live.extend(alloc_three(allocator, size))
        elif roll < 0.6 and variable:
            index = rng.randrange(len(live))
            live[index] = allocator.realloc(live[index], size)
        elif roll < 0.7:
            batch = [live.pop(rng.randrange(len(live))) for _ in range(min(3, len(live)))]
            allocator.free_many(batch)
        else:
            allocator.free(live.pop(rng.randrange(len(live))))
        if not variable and len(live) > 200:
            allocator.free_many(live[:100])
            del live[:100]


def alloc_three(recorder: TraceRecorder, size: int) -> list[memoryview]:
    """``alloc_many`` in each allocator's own signature."""
    allocator = recorder.allocator
    if isinstance(allocator, DynamicSlab):
        return recorder.alloc_many([size] * 3)
    if isinstance(allocator, SlabCache):
        return recorder.alloc_many(size, 3)
    return recorder.alloc_many(3)


def final_state(allocator: Any) -> tuple[object, ...]:
    """The live blocks; for the seed allocators, where each one is, too.

    A trace records what the program did, not where a SlabCache's magazines
    happened to hold which free object (a bulk call and single calls can pick
    different ones), so for it the state is the live blocks' sizes and each
    class's active objects.
    """
    if isinstance(allocator, SlabCache):
        sizes = sorted(leak.size for leak in allocator.leaks())
        return (sizes, [row.active_objects for row in allocator.slabinfo()])
    return (tuple(allocator.blocks()), len(allocator), allocator.used)


@pytest.mark.parametrize("name", [*VARIABLE, *FIXED])
def test_a_recorded_workload_replays_to_the_same_state(name: str, tmp_path: Path) -> None:
    make = {**VARIABLE, **FIXED}[name]
    path = tmp_path / "workload.rep"
    with record_trace(make(), path) as recorder:
        workload(recorder, name in VARIABLE)
        expected = final_state(recorder.allocator)
        recorder.check()  # everything else is the allocator's own
    trace = read_trace(path)
    assert len(trace) > 300
    contender = Replayed(make())
    timing = time_replay(trace, contender, free_leftovers=False)
    assert timing.failed == 0 and timing.finished
    assert final_state(contender.allocator) == expected
    contender.allocator.check()


def test_failed_calls_are_not_recorded() -> None:
    recorder = TraceRecorder(SlabCache())
    block = recorder.alloc(10)
    recorder.free(block)
    with pytest.raises(InvalidFreeError):
        recorder.free(block)
    with pytest.raises(SizeTooLargeError):
        recorder.alloc(1 << 30)
    trace = parse_trace(recorder.text())
    assert len(trace) == 2
    assert len(recorder) == 0
