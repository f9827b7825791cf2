"""Replaying allocation traces through an allocator: speed, and what memory it needed.

Two passes over each trace:

* :func:`time_replay` runs the operations alone, as fast as the allocator
  goes, for any :class:`Contender` (ours or a peer), and reports ops/s;
* :func:`audit_replay` runs them through a :class:`~slaballoc.DynamicSlab`
  untimed, filling every block with its own pattern, checking that realloc
  kept the contents and, at the end, that every live byte is intact; it
  reports the high-water mark, utilization, failures and realloc copies.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from ..dynamic import DynamicSlab
from ..errors import SlabError
from ..sizes import round_up
from .interpreter import TraceInterpreter, peak_live_bytes
from .peers import DynamicContender, MultiprocessingHeap, SeedDynamic
from .timing import Progress, no_progress
from .traces import ALLOC, FREE, Trace

__all__ = [
    "PEERS",
    "Anomaly",
    "Audit",
    "CapacityTooSmallError",
    "Contender",
    "ReplayCorruptionError",
    "Timing",
    "TraceComparison",
    "audit_replay",
    "capacity_for",
    "check_capacity",
    "compare_on_trace",
    "pattern",
    "time_replay",
]

_CHUNK = 4096  # operations between two looks at the clock


class Contender(Protocol):
    """An allocator as the replay drives it: any handle type, three calls."""

    name: str

    def alloc(self, size: int) -> Any: ...
    def free(self, handle: Any) -> None: ...
    def realloc(self, handle: Any, size: int) -> Any: ...


@dataclass(frozen=True)
class Timing:
    """One timed replay."""

    contender: str
    ops: int  # operations done (fewer than the trace's if the budget ran out)
    seconds: float
    failed: int
    finished: bool

    @property
    def ops_per_second(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Anomaly:
    """How often a trace did one wrong thing (a double free, say), and where first."""

    count: int
    first: str  # "op N"


@dataclass(frozen=True)
class Audit:
    """What an untimed, verified replay through ``DynamicSlab`` found."""

    ops: int
    capacity: int
    peak_live: int  # largest total of requested bytes live at once
    high_water: int  # highest byte ever part of a block, plus one
    failed: int
    first_failure: str | None  # "line N: a ID SIZE" of the first failed request
    realloc_copies: int  # reallocs that had to move the block
    verified_bytes: int  # live bytes compared with their pattern at the end
    anomalies: dict[str, Anomaly]  # by kind (see .interpreter): what the program did wrong

    @property
    def utilization(self) -> float:
        """Peak live bytes over the high-water mark: 1.0 would waste nothing."""
        return self.peak_live / self.high_water if self.high_water else 1.0


def capacity_for(trace: Trace, alignment: int = 8) -> int:
    """An arena size that the trace should never exhaust.

    Twice the peak of live bytes (rounded up per block) leaves room for
    fragmentation, plus the largest request, which a realloc needs twice.
    """
    peak = peak_live_bytes(trace) + len(trace) // 2 * (alignment - 1)
    return round_up(2 * peak + 2 * trace.max_size() + (1 << 16), 1 << 12)


class CapacityTooSmallError(SlabError, ValueError):
    """An arena asked for that cannot hold the trace's largest request."""


def check_capacity(trace: Trace, capacity: int, alignment: int = 8) -> None:
    """Raise :class:`CapacityTooSmallError` unless ``capacity`` can hold every single request.

    A capacity below the peak of live bytes is allowed: the requests that do
    not fit are counted as failures, which is what such a replay measures.

    >>> from .traces import parse_trace
    >>> trace = parse_trace("0\\n1\\n1\\n1\\na 0 100\\n", "t.rep")
    >>> check_capacity(trace, 64)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    slaballoc.tools.replay.CapacityTooSmallError: ... its largest request needs 104 bytes ...
    """
    largest = round_up(max(trace.max_size(), 1), alignment)
    if capacity < largest:
        raise CapacityTooSmallError(
            f"a capacity of {capacity:,} bytes is too small for {trace.name}: its largest request "
            f"needs {largest:,} bytes (at alignment {alignment}); give at least that, or leave "
            "the capacity out to size the arena from the trace"
        )


def time_replay(
    trace: Trace,
    contender: Contender,
    *,
    budget: float | None = None,
    free_leftovers: bool = True,
) -> Timing:
    """Run every operation of ``trace`` through ``contender``; time it.

    The rules are :mod:`.interpreter`'s, written out inline because this loop
    is what is timed; a test checks that it makes exactly the interpreter's
    calls.  A request of 0 bytes is served as 1 byte (``malloc(0)`` returns a
    unique block).  With ``budget`` (seconds) the replay stops early, between
    two chunks, once the budget is spent, and says so.  The blocks still live at
    the end are freed (untimed) unless ``free_leftovers`` is False, which leaves
    the contender as the trace left it.
    """
    alloc, free, realloc = contender.alloc, contender.free, contender.realloc
    handles: list[Any] = [None] * trace.id_count
    kinds, ids, sizes = trace.kinds, trace.ids, trace.sizes
    failed = done = 0
    clock = time.perf_counter
    elapsed = 0.0
    for chunk_start in range(0, len(kinds), _CHUNK):
        chunk_end = min(chunk_start + _CHUNK, len(kinds))
        started = clock()
        for index in range(chunk_start, chunk_end):
            kind, ident = kinds[index], ids[index]
            if kind == FREE:
                if ident >= 0 and handles[ident] is not None:
                    free(handles[ident])
                    handles[ident] = None
                continue
            handle = handles[ident]
            if handle is not None and kind == ALLOC:  # an alloc of a live id: free it first
                free(handle)
                handle = handles[ident] = None
            try:
                if handle is None:
                    handles[ident] = alloc(sizes[index] or 1)
                else:
                    handles[ident] = realloc(handle, sizes[index] or 1)
            except MemoryError:
                failed += 1
        elapsed += clock() - started
        done = chunk_end
        if budget is not None and elapsed > budget:
            break
    for handle in handles if free_leftovers else ():
        if handle is not None:
            free(handle)
    return Timing(contender.name, done, elapsed, failed, done == len(kinds))


def pattern(ident: int, size: int) -> bytes:
    """The bytes block ``ident`` holds: its id plus one (never zeros), repeated."""
    stamp = ((ident + 1) & 0xFFFFFFFF).to_bytes(4, "little")
    return (stamp * (size // 4 + 1))[:size]


class ReplayCorruptionError(AssertionError):
    """A block's bytes changed while it was live: a bug in the allocator."""


def audit_replay(trace: Trace, capacity: int | None = None, alignment: int = 8) -> Audit:
    """Replay ``trace`` through a ``DynamicSlab``, verifying every byte; see :class:`Audit`.

    Raises :class:`ReplayCorruptionError`, naming the operation, if a live
    block's bytes changed.
    """
    capacity = capacity_for(trace, alignment) if capacity is None else capacity
    auditor = _Auditor(trace.id_count, DynamicSlab(capacity, alignment=alignment))
    interpreter = TraceInterpreter(trace, auditor)
    try:
        tally = interpreter.run()
    except ReplayCorruptionError as error:
        index = interpreter.position
        where = f"op {index + 1} ({trace.operation(index)})"
        raise ReplayCorruptionError(f"{trace.name}, {where}: {error}") from None
    try:
        verified = auditor.verify_all()
    except ReplayCorruptionError as error:
        raise ReplayCorruptionError(f"{trace.name}, at the end: {error}") from None
    auditor.slab.check()
    first = tally.first_failure
    return Audit(
        ops=tally.ops,
        capacity=capacity,
        peak_live=auditor.peak,
        high_water=auditor.high_water,
        failed=tally.failed,
        first_failure=None if first is None else f"op {first + 1}: {trace.operation(first)}",
        realloc_copies=auditor.copies,
        verified_bytes=verified,
        anomalies={
            kind: Anomaly(count, f"op {tally.first_anomaly[kind] + 1}")
            for kind, count in tally.anomalies.items()
        },
    )


class _Auditor:
    """A :class:`~.interpreter.TraceTarget`: every block's view, requested size and pattern."""

    def __init__(self, id_count: int, slab: DynamicSlab) -> None:
        self.slab = slab
        self.views: list[memoryview | None] = [None] * id_count
        self.requested = [0] * id_count
        self.live = self.peak = self.high_water = self.copies = 0

    def alloc(self, ident: int, size: int) -> None:
        self._placed(ident, self.slab.alloc(size or 1), size)

    def free(self, ident: int) -> None:
        view = self._verified(ident)
        self.slab.free(view)
        self.views[ident] = None
        self.live -= self.requested[ident]

    def realloc(self, ident: int, size: int) -> None:
        old = self._verified(ident)
        old_offset, old_size = self.slab.offset_of(old), len(old)
        view = self.slab.realloc(old, size or 1)
        self.copies += self.slab.offset_of(view) != old_offset
        kept = min(old_size, len(view))
        if view[:kept] != pattern(ident, kept):
            raise ReplayCorruptionError(f"realloc lost block {ident}'s contents")
        self.live -= self.requested[ident]
        self._placed(ident, view, size)

    def _placed(self, ident: int, view: memoryview, size: int) -> None:
        view[:] = pattern(ident, len(view))
        self.views[ident] = view
        self.requested[ident] = size
        self.live += size
        self.peak = max(self.peak, self.live)
        end = self.slab.offset_of(view) + round_up(len(view), self.slab.alignment)
        self.high_water = max(self.high_water, end)

    def _verified(self, ident: int) -> memoryview:
        view = self.views[ident]
        assert view is not None  # the interpreter calls free and realloc for live ids only
        if view != pattern(ident, len(view)):
            raise ReplayCorruptionError(f"block {ident}'s bytes changed while it was live")
        return view

    def verify_all(self) -> int:
        """Check every live block's bytes; return how many were compared."""
        return sum(
            len(self._verified(ident)) for ident, v in enumerate(self.views) if v is not None
        )


#: The peers a replay can be compared with, by the name ``--peers`` takes.
PEERS = ("mp", "seed")


@dataclass(frozen=True)
class TraceComparison:
    """One trace: each contender's median timed run, and the verified audit."""

    trace: str
    capacity: int
    timings: dict[str, Timing]  # by contender; "ours" is DynamicSlab
    audit: Audit

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain JSON data."""
        return {
            "trace": self.trace,
            "capacity": self.capacity,
            "timings": {
                name: {**asdict(timing), "ops_per_second": timing.ops_per_second}
                for name, timing in self.timings.items()
            },
            "audit": {**asdict(self.audit), "utilization": self.audit.utilization},
        }


def compare_on_trace(
    trace: Trace,
    *,
    capacity: int | None = None,
    alignment: int = 8,
    repeats: int = 3,
    peers: Sequence[str] = PEERS,
    seed_budget: float = 60.0,
    progress: Progress = no_progress,
) -> TraceComparison:
    """Time ``trace`` on ``DynamicSlab`` and its peers (interleaved, medians), then audit it.

    Each contender's timing is its median run by ops/s.
    """
    capacity = capacity_for(trace, alignment) if capacity is None else capacity
    makers: dict[str, Callable[[], Contender]] = {
        "ours": lambda: DynamicContender(capacity, alignment)
    }
    budgets: dict[str, float | None] = {"ours": None}
    if "mp" in peers:
        makers["multiprocessing.heap"] = MultiprocessingHeap
        budgets["multiprocessing.heap"] = None
    if "seed" in peers:
        makers["seed algorithm"] = lambda: SeedDynamic(capacity, alignment)
        budgets["seed algorithm"] = seed_budget
    runs: dict[str, list[Timing]] = {name: [] for name in makers}
    total = repeats * len(makers) + 1
    for round_ in range(repeats):
        for position, (name, make) in enumerate(makers.items()):
            progress(round_ * len(makers) + position, total, f"{trace.name}: {name}")
            budget = budgets[name]
            if budget is not None and runs[name] and not runs[name][0].finished:
                continue  # a contender that ran out of time once is not run again
            runs[name].append(time_replay(trace, make(), budget=budget))
    progress(total - 1, total, f"{trace.name}: verifying every byte")
    audit = audit_replay(trace, capacity, alignment)
    progress(total, total, "")
    timings = {
        name: sorted(times, key=lambda t: t.ops_per_second)[len(times) // 2]
        for name, times in runs.items()
    }
    return TraceComparison(trace.name, capacity, timings, audit)
