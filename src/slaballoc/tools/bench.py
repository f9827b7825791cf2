"""``slaballoc bench``: the seed's linear-search versus free-list comparison, in Python.

Every scenario runs for every contender in the same process, interleaved and
repeated; the tables show medians.  Beside the two slabs (each in its safe
default and its fast mode) stand two baselines doing the same work:

* ``bytearray``: what a Python user does without us, a new ``bytearray(64)``
  per request (freeing is dropping it);
* ``list floor``: the interpreter's floor for any pool, a bare
  ``list.pop()``/``list.append()`` of ready-made buffers with no checks at all.

When the C core runs, the pair timings also time the pure-Python slabs (the
specification, marked ``[python]``) in the same process, so that one run
shows C, Python and ``bytearray`` side by side.
"""

from __future__ import annotations

import random
import sys
import time
import timeit
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .._implementation import IMPLEMENTATION
from ..slabs import FreeListSlab, LinearSlab, PureFreeListSlab
from .timing import Progress, interleaved, no_progress, timed

__all__ = [
    "CONTENDERS",
    "LARGE_SIZE",
    "PAIR_CONTENDERS",
    "SCENARIOS",
    "SEED_SIZE",
    "UNLOCKED",
    "SeedComparison",
    "Size",
    "measure_batches",
    "measure_memory",
    "measure_pairs",
    "run_comparison",
]

SLOT = 64

Alloc = Callable[[], Any]
Free = Callable[[Any], object]


@dataclass(frozen=True)
class Contender:
    """Something that hands out 64-byte buffers and takes them back."""

    name: str
    make: Callable[[int], tuple[Alloc, Free]]  # slot count -> (alloc, free)


def _slab(
    cls: type[LinearSlab | FreeListSlab], fast: bool, slots: int, *, thread_safe: bool = True
) -> tuple[Alloc, Free]:
    slab = cls(capacity=slots * SLOT, slot_size=SLOT, fast=fast, thread_safe=thread_safe)
    return slab.alloc, slab.free


def _bytearray(slots: int) -> tuple[Alloc, Free]:
    del slots
    return partial(bytearray, SLOT), id  # freeing a bytearray is forgetting it


def _list_floor(slots: int) -> tuple[Alloc, Free]:
    memory = memoryview(bytearray(slots * SLOT))
    pool = [memory[offset : offset + SLOT] for offset in range(0, slots * SLOT, SLOT)]
    pool.reverse()
    return pool.pop, pool.append


CONTENDERS: list[Contender] = [
    Contender("LinearSlab", partial(_slab, LinearSlab, False)),
    Contender("LinearSlab fast", partial(_slab, LinearSlab, True)),
    Contender("FreeListSlab", partial(_slab, FreeListSlab, False)),
    Contender("FreeListSlab fast", partial(_slab, FreeListSlab, True)),
    Contender("bytearray", _bytearray),
    Contender("list floor", _list_floor),
]

#: Timed in the pairs only: what the lock costs, against the same slab without it.
UNLOCKED: list[Contender] = [
    Contender("FreeListSlab unlocked", partial(_slab, FreeListSlab, False, thread_safe=False)),
]

#: The pair timings' contenders: the pure-Python slabs too when the C core runs.
PAIR_CONTENDERS: list[Contender] = [
    *CONTENDERS,
    *UNLOCKED,
    *(
        [
            Contender("FreeListSlab [python]", partial(_slab, PureFreeListSlab, False)),
            Contender("FreeListSlab fast [python]", partial(_slab, PureFreeListSlab, True)),
            Contender(
                "FreeListSlab unlocked [python]",
                partial(_slab, PureFreeListSlab, False, thread_safe=False),
            ),
        ]
        if IMPLEMENTATION == "c"
        else []
    ),
]


# -- the seed's scenarios ------------------------------------------------------------


def churn_plan(slots: int, start: int, ops: int, seed: int = 1) -> list[int]:
    """A random alloc/free sequence that keeps occupancy near ``start`` live blocks.

    ``-1`` means allocate; ``k >= 0`` means free the ``k``-th live block.
    Occupancy wanders at most 2% of the slots (at least 2) from ``start`` and
    never leaves ``[0, slots]``.
    """
    rng = random.Random(seed)
    spread = max(2, slots // 50)
    low, high = max(0, start - spread), min(slots, start + spread)
    live, plan = start, []
    for _ in range(ops):
        grow = live < high and (live <= low or rng.random() < 0.5)
        if grow:
            plan.append(-1)
            live += 1
        else:
            plan.append(rng.randrange(live))
            live -= 1
    return plan


def _fill(alloc: Alloc, count: int) -> list[Any]:
    return [alloc() for _ in range(count)]


def _free_all(free: Free, live: list[Any]) -> None:
    for block in live:
        free(block)
    live.clear()


def _churn(alloc: Alloc, free: Free, live: list[Any], plan: list[int]) -> None:
    append, pop = live.append, live.pop
    for step in plan:
        if step < 0:
            append(alloc())
        else:
            live[step], live[-1] = live[-1], live[step]
            free(pop())


@dataclass(frozen=True)
class Size:
    """One configuration of the comparison."""

    label: str
    slots: int
    occupancy: float  # fraction of slots live during the fill and churn
    churn_ops: int
    inner: int  # how many times each scenario runs per sample, to time short ones


SEED_SIZE = Size("seed size: 64 slots of 64 B, 10,000 operations", 64, 1.0, 10_000, 50)
LARGE_SIZE = Size("large: 65,536 slots of 64 B at 99% occupancy", 65_536, 0.99, 10_000, 1)

SCENARIOS = ("initialisation", "allocation", "reallocation", "heavy churn")


def _scenario_cases(contender: Contender, size: Size) -> dict[str, Callable[[], float]]:
    fill = int(size.slots * size.occupancy)
    # The seed churns around half occupancy; the large size stays near its occupancy.
    churn_start = fill if size.occupancy < 1 else size.slots // 2
    plan = churn_plan(size.slots, churn_start, size.churn_ops)

    def initialisation() -> float:
        return sum(timed(partial(contender.make, size.slots)) for _ in range(size.inner))

    def allocation() -> float:
        total = 0.0
        for _ in range(size.inner):
            alloc, _ = contender.make(size.slots)
            total += timed(partial(_fill, alloc, fill))
        return total

    def reallocation() -> float:
        alloc, free = contender.make(size.slots)
        live = _fill(alloc, fill)
        total = 0.0
        for _ in range(size.inner):
            started = time.perf_counter()
            _free_all(free, live)
            live = _fill(alloc, fill)
            total += time.perf_counter() - started
        return total

    def heavy_churn() -> float:
        alloc, free = contender.make(size.slots)
        live = _fill(alloc, churn_start)
        return timed(partial(_churn, alloc, free, live, plan))

    return {
        "initialisation": initialisation,
        "allocation": allocation,
        "reallocation": reallocation,
        "heavy churn": heavy_churn,
    }


@dataclass
class SeedComparison:
    """Medians in seconds: ``times[size label][scenario][contender]``."""

    repeats: int
    times: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)


def run_comparison(
    sizes: list[Size],
    repeats: int = 5,
    contenders: list[Contender] = CONTENDERS,
    progress: Progress = no_progress,
) -> SeedComparison:
    """Time every scenario of every size for every contender."""
    result = SeedComparison(repeats)
    for size in sizes:
        cases = {}
        for contender in contenders:
            for scenario, case in _scenario_cases(contender, size).items():
                cases[f"{scenario}\0{contender.name}"] = case
        medians = interleaved(cases, repeats, _labelled(progress, size.label))
        table: dict[str, dict[str, float]] = {}
        for key, seconds in medians.items():
            scenario, name = key.split("\0")
            table.setdefault(scenario, {})[name] = seconds
        table["overall"] = {
            contender.name: sum(table[s][contender.name] for s in SCENARIOS)
            for contender in contenders
        }
        result.times[size.label] = table
    return result


def _labelled(progress: Progress, label: str) -> Progress:
    def report(done: int, total: int, case: str) -> None:
        progress(done, total, case and f"{label}: {case.replace(chr(0), ' / ')}")

    return report


# -- alloc+free pairs and memory -----------------------------------------------------------


def measure_pairs(
    slots: int = 65_536, occupancy: float = 0.99, number: int = 20_000, repeats: int = 7
) -> dict[str, float]:
    """Seconds per ``free(alloc())`` pair, with ``occupancy`` of the slots live.

    The baselines are timed the same way: ``bytearray(64)`` alone, and a
    ``pool.append(pool.pop())`` pair.  ``FreeListSlab unlocked``
    (``thread_safe=False``) shows what the lock costs per pair.
    """
    statements: dict[str, Callable[[], float]] = {}
    for contender in PAIR_CONTENDERS:
        alloc, free = contender.make(slots)
        keep = _fill(alloc, int(slots * occupancy))
        if contender.name == "bytearray":
            timer = timeit.Timer("bytearray(64)")
        else:
            timer = timeit.Timer("free(alloc())", globals={"alloc": alloc, "free": free})
        statements[contender.name] = partial(_per_call, timer, number, keep)
    return interleaved(statements, repeats)


def measure_batches(
    slots: int = 65_536,
    occupancy: float = 0.99,
    batch: int = 64,
    number: int = 300,
    repeats: int = 7,
) -> dict[str, float]:
    """Seconds per block: ``free_many(alloc_many(batch))`` against ``free(alloc())`` pairs.

    Safe-mode ``FreeListSlab`` (and its pure-Python form when the C core
    runs), ``occupancy`` of the slots live; each timing covers ``number``
    batches, or as many blocks in single pairs.
    """
    classes = {"FreeListSlab": FreeListSlab}
    if IMPLEMENTATION == "c":
        classes["FreeListSlab [python]"] = PureFreeListSlab
    statements: dict[str, Callable[[], float]] = {}
    for name, cls in classes.items():
        slab = cls(capacity=slots * SLOT, slot_size=SLOT)
        keep = _fill(slab.alloc, min(int(slots * occupancy), slots - batch))
        many = timeit.Timer(
            "free_many(alloc_many(batch))",
            globals={"free_many": slab.free_many, "alloc_many": slab.alloc_many, "batch": batch},
        )
        pair = timeit.Timer("free(alloc())", globals={"free": slab.free, "alloc": slab.alloc})
        statements[f"{name} alloc_many({batch})+free_many"] = partial(
            _per_call, many, number, keep, batch
        )
        statements[f"{name} pair"] = partial(_per_call, pair, number * batch, keep)
    return interleaved(statements, repeats)


def _per_call(timer: timeit.Timer, number: int, keep: object, blocks: int = 1) -> float:
    del keep  # held only so that the occupancy stays while timing
    return timer.timeit(number) / (number * blocks)


def measure_memory(slots: int = 65_536) -> dict[str, dict[str, float]]:
    """Bytes of allocator metadata per slot (tracemalloc), idle and with every slot live.

    The managed buffer itself is passed in, so it is not counted.  "full"
    counts what the allocator holds for its live blocks (its live table, and
    for fast mode its view cache) but not the views in the caller's hands.
    """
    result: dict[str, dict[str, float]] = {}
    for cls, fast in ((LinearSlab, False), (FreeListSlab, False), (FreeListSlab, True)):
        name = cls.__name__ + (" fast" if fast else "")
        buffer = bytearray(slots * SLOT)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            slab = cls(buffer=buffer, slot_size=SLOT, fast=fast)
            idle = tracemalloc.get_traced_memory()[0] - before
            holder: list[memoryview] = []
            holder_base = tracemalloc.get_traced_memory()[0]
            holder.extend(slab.alloc() for _ in range(slots))
            views = len(holder) * sys.getsizeof(memoryview(b""))
            full = tracemalloc.get_traced_memory()[0] - holder_base - views - sys.getsizeof(holder)
        finally:
            tracemalloc.stop()
        result[name] = {"idle": idle / slots, "full": (idle + full) / slots}
        slab.close()
    return result
