"""``slaballoc bench --slab``: SlabCache measured against its alternatives, in one run.

Every comparison runs its alternatives in the same process, interleaved and
repeated (:func:`~slaballoc.tools.timing.interleaved`); the tables show medians
and ratios.

* **pairs**: ``free(alloc(n))`` on a ``SlabCache`` and a ``DynamicSlab``, beside
  ``bytearray(n)``, for n from 16 to 4096, and what the pair spends its time on
  (each step of its hot path timed alone);
* **bulk**: ``alloc_many``/``free_many`` of 64 blocks against 64 single calls;
* **threads**: 4 threads doing alloc/free pairs on one cache, magazines on
  (adaptive) against off (every operation under the lock, to the slabs);
* **traces**: each ``.rep`` trace replayed through ``SlabCache`` and
  ``DynamicSlab`` (speed), and what memory each needed: the most bytes held
  at once, the high-water mark (memory touched), utilization (peak live bytes
  over the high-water mark, as ``slaballoc replay`` reports it) and the
  internal waste of rounding each request to its class against best fit's
  rounding to 8 bytes.
"""

from __future__ import annotations

import argparse
import threading
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from .. import __version__
from ..dynamic import DynamicSlab
from ..sizes import round_up
from ..slab_cache import SlabCache
from ..slabs import FreeListSlab
from .arguments import warn, write_json
from .interpreter import peak_live_bytes
from .peers import DynamicContender, SlabCacheContender
from .replay import audit_replay, capacity_for, time_replay
from .reports import machine, machine_line
from .tables import format_table
from .timing import Progress, interleaved, no_progress
from .traces import FREE, Trace, TraceFormatError, read_trace

__all__ = [
    "PAIR_SIZES",
    "TraceFigures",
    "measure_bulk",
    "measure_pair_steps",
    "measure_pairs",
    "measure_threads",
    "measure_trace",
    "pairs_table",
    "steps_table",
    "traces_table",
]

PAIR_SIZES = (16, 64, 256, 1024, 4096)


def measure_pairs(
    sizes: Sequence[int] = PAIR_SIZES, number: int = 20_000, repeats: int = 7
) -> dict[int, dict[str, float]]:
    """Seconds per ``free(alloc(n))`` pair (and per ``bytearray(n)``), by size."""
    cache = SlabCache(capacity=4 << 20)
    slab = DynamicSlab(capacity=4 << 20)
    cases: dict[str, Callable[[], float]] = {}
    for size in sizes:
        for name, alloc, free in (
            ("SlabCache", cache.alloc, cache.free),
            ("DynamicSlab", slab.alloc, slab.free),
        ):
            timer = timeit.Timer(
                "free(alloc(n))", globals={"alloc": alloc, "free": free, "n": size}
            )
            cases[f"{size}\0{name}"] = partial(_per_call, timer, number)
        cases[f"{size}\0bytearray"] = partial(
            _per_call, timeit.Timer("bytearray(n)", globals={"n": size}), number
        )
    medians = interleaved(cases, repeats)
    result: dict[int, dict[str, float]] = {}
    for key, seconds in medians.items():
        label, name = key.split("\0")
        result.setdefault(int(label), {})[name] = seconds
    return result


#: The steps of a ``free(alloc(64))`` pair on a magazine hit that Python can time alone:
#: what the C hot path (``csrc/slab_cache.c``) spends the pair on.  The rest (finding the
#: thread's magazines by thread-state id, the class table, the live table's insert and
#: delete, two counters) has no statement of its own: the table shows it as the remainder.
PAIR_STEPS = {
    "two calls of a one-argument C function": "callable(view); callable(view)",
    "slice a view and release it": "v = memory[64:128]; v.release()",
    "magazine pop and append": "magazine.append(magazine.pop())",
}


def measure_pair_steps(number: int = 100_000, repeats: int = 7) -> dict[str, float]:
    """Seconds for the whole pair, ``bytearray(64)``, the C ``FreeListSlab`` pair (a view
    per block, its live table a bitmap) and each step of :data:`PAIR_STEPS`.
    """
    cache = SlabCache()
    slab = FreeListSlab()
    memory = memoryview(bytearray(4096))
    names = {
        "cache": cache,
        "slab": slab,
        "memory": memory,
        "view": memory[:64],
        "magazine": [64, 128],
    }
    statements = {
        "the pair: cache.free(cache.alloc(64))": "cache.free(cache.alloc(64))",
        "bytearray(64)": "bytearray(64)",
        "FreeListSlab pair, for comparison": "slab.free(slab.alloc())",
        **PAIR_STEPS,
    }
    return interleaved(
        {
            name: partial(_per_call, timeit.Timer(statement, globals=names), number)
            for name, statement in statements.items()
        },
        repeats,
    )


def steps_table(steps: dict[str, float]) -> str:
    """Each step's ns and its share of ``bytearray(64)``, their sum, and the rest of the pair."""
    base = steps["bytearray(64)"]
    rows: list[list[object]] = [
        [name, f"{t * 1e9:,.0f}", f"{t / base:.2f}x"] for name, t in steps.items()
    ]
    total = sum(steps[name] for name in PAIR_STEPS)
    rest = steps["the pair: cache.free(cache.alloc(64))"] - total
    rows.append(["sum of the steps", f"{total * 1e9:,.0f}", f"{total / base:.2f}x"])
    rows.append(["the rest (pair minus the steps)", f"{rest * 1e9:,.0f}", f"{rest / base:.2f}x"])
    return format_table(["", "ns", "x bytearray(64)"], rows)


def measure_bulk(count: int = 64, number: int = 300, repeats: int = 7) -> dict[str, float]:
    """Seconds per block: ``alloc_many``/``free_many`` against single calls, 64-byte blocks."""
    cache = SlabCache(capacity=4 << 20)

    def bulk() -> None:
        cache.free_many(cache.alloc_many(64, count))

    def single() -> None:
        alloc, free = cache.alloc, cache.free
        views = [alloc(64) for _ in range(count)]
        for view in views:
            free(view)

    per_block = count * number
    return interleaved(
        {
            "alloc_many + free_many": lambda: timeit.timeit(bulk, number=number) / per_block,
            "alloc + free, one by one": lambda: timeit.timeit(single, number=number) / per_block,
        },
        repeats,
    )


def measure_threads(threads: int = 4, pairs: int = 5_000, repeats: int = 5) -> dict[str, float]:
    """Seconds per pair with ``threads`` threads sharing one cache, magazines on and off.

    Each thread keeps 16 blocks of mixed sizes live and frees and reallocates
    them in turn; the time is the wall clock from a common start to the last
    thread's end, over every thread's pairs.
    """

    def run(magazine_size: int | None) -> float:
        cache = SlabCache(capacity=16 << 20, magazine_size=magazine_size)
        barrier = threading.Barrier(threads + 1)

        def work(seed: int) -> None:
            sizes = [16 + 48 * ((seed + k) % 20) for k in range(16)]
            live = [cache.alloc(size) for size in sizes]
            barrier.wait()
            for step in range(pairs):
                slot = step % 16
                cache.free(live[slot])
                live[slot] = cache.alloc(sizes[slot])
            barrier.wait()

        workers = [threading.Thread(target=work, args=(seed,)) for seed in range(threads)]
        for worker in workers:
            worker.start()
        barrier.wait()
        started = time.perf_counter()
        barrier.wait()
        elapsed = time.perf_counter() - started
        for worker in workers:
            worker.join()
        return elapsed / (threads * pairs)

    return interleaved(
        {"magazines on (adaptive)": partial(run, None), "magazines off": partial(run, 0)},
        repeats,
    )


@dataclass(frozen=True)
class TraceFigures:
    """One trace through SlabCache and DynamicSlab: speed and the memory each needed."""

    trace: str
    ops: int
    slab_cache_ops_per_second: float
    dynamic_ops_per_second: float
    peak_live: int  # most bytes requested live at once
    slab_cache_peak_used: int  # most bytes held from the backing store (slabs + large)
    dynamic_peak_used: int  # most bytes in live blocks (requests rounded up to 8)
    slab_cache_high_water: int  # the end of the highest block ever used: memory touched
    dynamic_high_water: int
    class_rounding: float  # bytes added by rounding each class request, over those requested
    alignment_rounding: float  # the same for best fit's 8-byte rounding
    failed: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_trace(trace: Trace, repeats: int = 3, progress: Progress = no_progress) -> TraceFigures:
    """Time ``trace`` on both allocators (interleaved, medians), then measure their memory."""
    capacity = capacity_for(trace)
    cache_capacity = 2 * capacity  # size classes round up and keep partly used slabs

    def timed(make: Callable[[], Any]) -> float:
        timing = time_replay(trace, make())
        return timing.seconds

    seconds = interleaved(
        {
            "SlabCache": lambda: timed(lambda: SlabCacheContender(SlabCache(cache_capacity))),
            "DynamicSlab": lambda: timed(lambda: DynamicContender(capacity)),
        },
        repeats,
        progress,
    )
    cache = SlabCache(cache_capacity)
    failed = time_replay(trace, SlabCacheContender(cache)).failed
    tracker = _PeakUsed(DynamicSlab(capacity))
    failed += time_replay(trace, tracker).failed
    audit = audit_replay(trace, capacity)  # DynamicSlab's high-water mark, every byte verified
    failed += audit.failed
    stats = cache.stats()
    class_rounding, alignment_rounding = _rounding(trace, cache)
    return TraceFigures(
        trace=trace.name,
        ops=len(trace),
        slab_cache_ops_per_second=len(trace) / seconds["SlabCache"],
        dynamic_ops_per_second=len(trace) / seconds["DynamicSlab"],
        peak_live=peak_live_bytes(trace),
        slab_cache_peak_used=stats.peak_used,
        dynamic_peak_used=tracker.peak,
        slab_cache_high_water=stats.high_water,
        dynamic_high_water=audit.high_water,
        class_rounding=class_rounding,
        alignment_rounding=alignment_rounding,
        failed=failed,
    )


class _PeakUsed:
    """A ``DynamicSlab`` contender that records the most bytes ever in live blocks."""

    name = "DynamicSlab (peak tracked)"

    def __init__(self, slab: DynamicSlab) -> None:
        self.slab = slab
        self.peak = 0

    def alloc(self, size: int) -> memoryview:
        view = self.slab.alloc(size)
        self.peak = max(self.peak, self.slab.used)
        return view

    def free(self, view: memoryview) -> None:
        self.slab.free(view)

    def realloc(self, view: memoryview, size: int) -> memoryview:
        new = self.slab.realloc(view, size)
        self.peak = max(self.peak, self.slab.used)
        return new


def _rounding(trace: Trace, cache: SlabCache) -> tuple[float, float]:
    """Bytes added by rounding, over bytes requested: to classes, and to 8 bytes."""
    classes = cache.size_classes
    largest = classes[-1]
    table = [0] * (largest + 1)  # request -> its class size
    size = 1
    for object_size in classes:
        while size <= object_size:
            table[size] = object_size
            size += 1
    requested = to_class = to_eight = 0
    for kind, asked in zip(trace.kinds, trace.sizes, strict=True):
        if kind == FREE:
            continue
        size = asked or 1  # as the replay serves it
        requested += size
        to_class += table[size] if size <= largest else round_up(size, 16)
        to_eight += round_up(size, 8)
    return to_class / requested - 1, to_eight / requested - 1


def _per_call(timer: timeit.Timer, number: int) -> float:
    return timer.timeit(number) / number


# -- tables ---------------------------------------------------------------------------


def pairs_table(pairs: dict[int, dict[str, float]]) -> str:
    """ns per pair by size, and each allocator's ratio to ``bytearray(n)``."""
    rows = []
    for size, times in pairs.items():
        base = times["bytearray"]
        rows.append(
            [
                size,
                f"{times['SlabCache'] * 1e9:,.0f}",
                f"{times['DynamicSlab'] * 1e9:,.0f}",
                f"{base * 1e9:,.0f}",
                f"{times['SlabCache'] / base:.2f}x",
                f"{times['DynamicSlab'] / base:.2f}x",
            ]
        )
    headers = ["n", "SlabCache ns", "DynamicSlab ns", "bytearray(n) ns", "SlabCache/ba", "Dyn/ba"]
    return format_table(headers, rows)


def _ratio_table(times: dict[str, float], unit: str = "ns per block") -> str:
    """Each alternative's time and its ratio to the first."""
    first = next(iter(times.values()))
    rows = [[name, f"{t * 1e9:,.0f}", f"{t / first:.2f}x"] for name, t in times.items()]
    return format_table(["", unit, "ratio"], rows)


def traces_table(figures: Sequence[TraceFigures]) -> str:
    """Speed and memory of SlabCache against DynamicSlab, one row per trace."""
    rows = []
    for f in figures:
        rows.append(
            [
                f.trace,
                f"{f.ops:,}",
                f"{f.slab_cache_ops_per_second:,.0f}",
                f"{f.dynamic_ops_per_second:,.0f}",
                f"{f.slab_cache_ops_per_second / f.dynamic_ops_per_second:.2f}x",
                f"{f.peak_live:,}",
                f"{f.slab_cache_peak_used:,}",
                f"{f.dynamic_peak_used:,}",
                f"{f.slab_cache_high_water:,}",
                f"{f.dynamic_high_water:,}",
                f"{f.peak_live / f.slab_cache_high_water:.1%}",
                f"{f.peak_live / f.dynamic_high_water:.1%}",
                f"{f.class_rounding:.1%}",
                f"{f.alignment_rounding:.1%}",
                f.failed,
            ]
        )
    headers = [
        "trace",
        "ops",
        "Cache ops/s",
        "Dyn ops/s",
        "Cache/Dyn",
        "peak live B",
        "Cache peak held B",
        "Dyn peak held B",
        "Cache high-water B",
        "Dyn high-water B",
        "Cache util",
        "Dyn util",
        "class rounding",
        "8-B rounding",
        "failed",
    ]
    return format_table(headers, rows)


def run(
    traces: Sequence[Trace],
    *,
    repeats: int,
    quick: bool,
    progress: Progress = no_progress,
) -> tuple[str, dict[str, Any]]:
    """Every SlabCache measurement; return the printed report and the JSON document."""
    number = 2_000 if quick else 20_000
    parts: list[str] = []
    document: dict[str, Any] = {}
    pairs = measure_pairs(number=number, repeats=repeats)
    parts.append(f"free(alloc(n)) pair against bytearray(n), median of {repeats}\n")
    parts.append(pairs_table(pairs) + "\n\n")
    document["pairs_seconds"] = pairs
    steps = measure_pair_steps(number=number * 5, repeats=repeats)
    parts.append("where a pair's time goes: each step alone, beside the whole\n")
    parts.append(steps_table(steps) + "\n\n")
    document["pair_steps_seconds"] = steps
    bulk = measure_bulk(number=30 if quick else 300, repeats=repeats)
    parts.append("64 blocks of 64 B: bulk against single calls\n" + _ratio_table(bulk) + "\n\n")
    document["bulk_seconds_per_block"] = bulk
    threads = measure_threads(pairs=500 if quick else 5_000, repeats=repeats)
    parts.append("4 threads, alloc/free pairs on one cache\n")
    parts.append(_ratio_table(threads, "ns per pair") + "\n\n")
    document["threads_seconds_per_pair"] = threads
    figures = [measure_trace(trace, repeats, progress) for trace in traces]
    if figures:
        parts.append(f"traces: SlabCache against DynamicSlab, ops/s median of {repeats}\n")
        parts.append(traces_table(figures) + "\n")
        document["traces"] = [f.as_dict() for f in figures]
    return "".join(parts), document


def _default_traces() -> list[Path]:
    """The project's shared traces, ``../shared/traces/*.rep``, if the checkout has them."""
    return sorted(Path("../shared/traces").glob("*.rep"))


# -- the command line ---------------------------------------------------------------------


def add_options(bench: argparse.ArgumentParser) -> None:
    """Add ``--slab`` and ``--traces`` to ``slaballoc bench``."""
    bench.add_argument(
        "--slab",
        action="store_true",
        help="measure SlabCache instead: pairs, bulk, 4 threads, and the traces",
    )
    bench.add_argument(
        "--traces",
        nargs="*",
        metavar="TRACE",
        help="with --slab: .rep traces to replay (default: ../shared/traces/*.rep)",
    )


def main(args: argparse.Namespace, progress: Progress) -> int:
    """``slaballoc bench --slab``: print the report; write ``--json``."""
    paths = _default_traces() if args.traces is None else [Path(p) for p in args.traces]
    try:
        traces = [read_trace(path) for path in paths]
    except (OSError, TraceFormatError) as error:
        warn("bench", str(error))
        return 2
    if args.quick:  # a smoke run: the first 20,000 operations of each trace
        traces = [_head(trace, 20_000) for trace in traces]
    print(f"slaballoc {__version__} bench --slab: {machine_line()}\n")
    report, document = run(traces, repeats=args.repeats, quick=args.quick, progress=progress)
    print(report)
    if args.json:
        document["machine"] = machine()
        write_json(args.json, document)
    return 0


def _head(trace: Trace, ops: int) -> Trace:
    return Trace(trace.name, trace.kinds[:ops], trace.ids[:ops], trace.sizes[:ops], trace.id_count)
