"""How per-operation cost grows with the number of live blocks.

For each size, every contender is filled to ``live`` blocks (untimed), then
times ``ops`` steps of churn: free a random live block, allocate a new one.
A contender whose churn runs past a time budget stops there and is not run at
larger sizes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from .._implementation import IMPLEMENTATION
from ..slabs import FreeListSlab
from .peers import DynamicContender, MultiprocessingHeap, SeedDynamic
from .timing import Progress, interleaved, no_progress

__all__ = ["LIVE_COUNTS", "ScalingRow", "run_scaling"]

LIVE_COUNTS = (1_000, 10_000, 100_000, 1_000_000)
_LARGE_SIZES_UP_TO = 100_000  # random sizes 16..4096 up to here, 16..256 beyond


@dataclass(frozen=True)
class ScalingRow:
    """Median seconds per churn step for one contender at one live-block count."""

    contender: str
    live: int
    seconds_per_op: float | None  # None: not run (over budget at a smaller size)


def _sizes(live: int, count: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    top = 4096 if live <= _LARGE_SIZES_UP_TO else 256
    return [rng.randint(16, top) for _ in range(count)]


def _churn_case(
    make: Callable[[int], Any], live: int, ops: int, *, budget: float, stopped: set[str], name: str
) -> Callable[[], float]:
    fill_sizes = _sizes(live, live, seed=live)
    steps = _sizes(live, ops, seed=live + 1)
    rng = random.Random(live + 2)
    victims = [rng.randrange(live) for _ in range(ops)]

    def case() -> float:
        allocator = make(sum(fill_sizes) * 2 + 2 * 4096 * ops)
        alloc, free = allocator.alloc, allocator.free
        blocks = [alloc(size) for size in fill_sizes]
        clock = time.perf_counter
        started = clock()
        done = 0
        for start in range(0, ops, 256):
            batch = zip(victims[start : start + 256], steps[start : start + 256], strict=True)
            for victim, size in batch:
                free(blocks[victim])
                blocks[victim] = alloc(size)
            done = min(start + 256, ops)
            if clock() - started > budget:
                stopped.add(name)
                break
        # No teardown: freeing a million blocks one by one would cost the seed's
        # algorithm minutes, and dropping the allocator frees everything anyway.
        return (clock() - started) / max(done, 1)

    return case


class _FixedSlabContender:
    """``FreeListSlab`` with slots as large as the largest request, driven like the rest."""

    def __init__(self, capacity: int, slot_size: int) -> None:
        self.slab = FreeListSlab(capacity=capacity, slot_size=slot_size)
        self.free = self.slab.free

    def alloc(self, size: int) -> memoryview:
        del size
        return self.slab.alloc()


def _contenders(live: int) -> dict[str, Callable[[int], Any]]:
    slot = 4096 if live <= _LARGE_SIZES_UP_TO else 256
    contenders: dict[str, Callable[[int], Any]] = {
        "FreeListSlab": lambda _: _FixedSlabContender((live + 1) * slot, slot),
        "DynamicSlab": DynamicContender,
        "multiprocessing.heap": lambda _: MultiprocessingHeap(),
        "seed algorithm": SeedDynamic,
    }
    if IMPLEMENTATION == "c":  # the specification too, timed in the same run
        contenders["DynamicSlab [python]"] = partial(DynamicContender, pure=True)
    return contenders


def run_scaling(
    live_counts: Sequence[int] = LIVE_COUNTS,
    ops: int = 10_000,
    repeats: int = 3,
    budget: float = 10.0,
    progress: Progress = no_progress,
) -> list[ScalingRow]:
    """Per-op cost for each contender at each live count; see the module docstring.

    A run whose churn takes longer than ``budget`` seconds stops there (its
    cost per step is taken over the steps it did), and that contender is not
    run at larger sizes.
    """
    rows: list[ScalingRow] = []
    stopped: set[str] = set()
    for live in live_counts:
        contenders = _contenders(live)
        cases = {
            name: _churn_case(make, live, ops, budget=budget, stopped=stopped, name=name)
            for name, make in contenders.items()
            if name not in stopped
        }
        medians = interleaved(cases, repeats, _labelled(progress, live))
        rows += [ScalingRow(name, live, medians.get(name)) for name in contenders]
    return rows


def _labelled(progress: Progress, live: int) -> Progress:
    def report(done: int, total: int, name: str) -> None:
        progress(done, total, name and f"{live:,} live blocks: {name}")

    return report
