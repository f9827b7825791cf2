"""``slaballoc bench --shared``: what a heap shared by processes buys, measured.

Every measure compares alternatives in one run, interleaved and repeated,
and reports medians (see :mod:`.timing`):

* **handing arrays to another process**: a producer copies a numpy array
  into a ``SharedHeap`` block and sends only the handle through a
  ``multiprocessing.Queue``; the consumer maps the block as an array, reads
  it and frees it.  Beside it, the same array put on the Queue itself
  (pickled, sent through a pipe, unpickled), and one ``SharedMemory``
  segment per array (create, copy, send the name, attach, unlink).  Each
  time covers ``count`` arrays from the first send until the consumer says
  it has them all;
* **the alloc+free pair**, uncontended, beside ``DynamicSlab``'s in-process pair;
* **contention**: total pairs per second of 4 processes on one heap, beside 1.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.context import SpawnContext
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

from ..dynamic import DynamicSlab
from ..shared import SharedHeap
from .timing import Progress, interleaved, no_progress

__all__ = ["HandOff", "SharedBenchResult", "run_shared_bench"]

Message = tuple[Any, ...]


@dataclass(frozen=True)
class HandOff:
    """One array hand-off size: ``count`` arrays of ``nbytes`` bytes per timed run."""

    label: str
    nbytes: int
    count: int


HAND_OFFS = [
    HandOff("1 KiB", 1 << 10, 2000),
    HandOff("1 MiB", 1 << 20, 64),
    HandOff("16 MiB", 16 << 20, 8),
]
QUICK_HAND_OFFS = [HandOff("1 KiB", 1 << 10, 50), HandOff("1 MiB", 1 << 20, 4)]


@dataclass(frozen=True)
class SharedBenchResult:
    """Medians in seconds, by measure and contender."""

    hand_offs: dict[str, dict[str, float]]  # size label -> contender -> seconds per array
    pairs: dict[str, float]  # contender -> seconds per alloc+free pair
    contention: dict[int, float]  # processes -> total pairs per second


# -- the consumer process ---------------------------------------------------------------------


def _consume(heap_name: str, inbox: Queue[Message], outbox: Queue[int]) -> None:
    """Take arrays in any of the three forms, read each, give its memory back."""
    from multiprocessing.shared_memory import SharedMemory  # noqa: PLC0415 -- child only

    import numpy  # noqa: PLC0415 -- the benchmark needs it; the library does not

    heap = SharedHeap.attach(heap_name)
    outbox.put(0)  # ready: the timing starts only now
    received = 0
    checksum = 0
    while True:
        message = inbox.get()
        kind = message[0]
        if kind == "handle":
            _, handle, nbytes = message
            array = heap.array(handle, nbytes, "uint8")
            checksum += int(array[0]) + int(array[-1])
            del array
            heap.free(handle)
        elif kind == "array":
            array = message[1]
            checksum += int(array[0]) + int(array[-1])
        elif kind == "shm":
            _, name, nbytes = message
            segment = SharedMemory(name)
            array = numpy.ndarray(nbytes, "uint8", buffer=segment.buf)
            checksum += int(array[0]) + int(array[-1])
            del array
            segment.close()
            segment.unlink()
        elif kind == "done":
            outbox.put(received)
            received = 0
            continue
        elif kind == "stop":
            break
        received += 1
    heap.close()


# -- the producer's three ways -----------------------------------------------------------------


def _hand_off_cases(
    heap: SharedHeap, size: HandOff, inbox: Queue[Message], outbox: Queue[int]
) -> dict[str, Callable[[], float]]:
    from multiprocessing.shared_memory import SharedMemory  # noqa: PLC0415

    import numpy  # noqa: PLC0415

    source = numpy.arange(size.nbytes, dtype=numpy.uint64).astype(numpy.uint8)

    def finish(started: float) -> float:
        inbox.put(("done",))
        if outbox.get() != size.count:
            raise RuntimeError("the consumer lost an array")
        return (time.perf_counter() - started) / size.count

    def by_handle() -> float:
        started = time.perf_counter()
        for _ in range(size.count):
            handle, block = heap.ndarray(size.nbytes, "uint8")
            block[:] = source
            del block
            inbox.put(("handle", handle, size.nbytes))
        return finish(started)

    def by_value() -> float:
        started = time.perf_counter()
        for _ in range(size.count):
            inbox.put(("array", source))
        return finish(started)

    def by_segment() -> float:
        started = time.perf_counter()
        for _ in range(size.count):
            segment = SharedMemory(create=True, size=size.nbytes)
            numpy.ndarray(size.nbytes, "uint8", buffer=segment.buf)[:] = source
            inbox.put(("shm", segment.name, size.nbytes))
            segment.close()
        return finish(started)

    return {
        "SharedHeap handle": by_handle,
        "array on the Queue": by_value,
        "SharedMemory per array": by_segment,
    }


# -- pairs and contention ---------------------------------------------------------------------


def _pair_cases(heap: SharedHeap, number: int) -> dict[str, Callable[[], float]]:
    slab = DynamicSlab(capacity=1 << 20)

    def shared() -> float:
        alloc, free = heap.alloc, heap.free
        started = time.perf_counter()
        for _ in range(number):
            free(alloc(64))
        return (time.perf_counter() - started) / number

    def local() -> float:
        alloc, free = slab.alloc, slab.free
        started = time.perf_counter()
        for _ in range(number):
            free(alloc(64))
        return (time.perf_counter() - started) / number

    return {"SharedHeap pair": shared, "DynamicSlab pair": local}


def _contend(heap_name: str, start: Event, seconds: float, results: Queue[int]) -> None:
    """Wait for the start, then alloc+free pairs for ``seconds``; report how many."""
    heap = SharedHeap.attach(heap_name)
    alloc, free = heap.alloc, heap.free
    start.wait()
    deadline = time.perf_counter() + seconds
    pairs = 0
    while time.perf_counter() < deadline:
        for _ in range(50):
            free(alloc(64))
        pairs += 50
    results.put(pairs)
    heap.close()


def _contention_rate(heap_name: str, processes: int, seconds: float, spawn: SpawnContext) -> float:
    start = spawn.Event()
    results: Queue[int] = spawn.Queue()
    workers = [
        spawn.Process(target=_contend, args=(heap_name, start, seconds, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    time.sleep(0.5)  # every worker attached and waiting
    start.set()
    total = sum(results.get() for _ in workers)
    for worker in workers:
        worker.join()
    return total / seconds


# -- the whole run ------------------------------------------------------------------------------


def run_shared_bench(
    *, repeats: int, quick: bool = False, progress: Progress = no_progress
) -> SharedBenchResult:
    """Measure everything; ``quick`` is a smoke run at tiny sizes."""
    spawn = multiprocessing.get_context("spawn")
    sizes = QUICK_HAND_OFFS if quick else HAND_OFFS
    room = max(size.nbytes * size.count for size in sizes) + (4 << 20)
    blocks = max(size.count for size in sizes) + 64
    hand_offs: dict[str, dict[str, float]] = {}
    with SharedHeap.create(size=room, max_blocks=blocks) as heap:
        inbox: Queue[Message] = spawn.Queue()
        outbox: Queue[int] = spawn.Queue()
        consumer = spawn.Process(target=_consume, args=(heap.name, inbox, outbox))
        consumer.start()
        outbox.get()  # the consumer is up, numpy imported, heap attached
        try:
            for size in sizes:
                cases = _hand_off_cases(heap, size, inbox, outbox)
                hand_offs[size.label] = interleaved(cases, repeats, progress)
        finally:
            inbox.put(("stop",))
            consumer.join()
        pairs = interleaved(_pair_cases(heap, 500 if quick else 20_000), repeats, progress)
        seconds = 0.2 if quick else 1.0
        contention: dict[int, list[float]] = {1: [], 4: []}
        for round_ in range(repeats):
            for processes, rates in contention.items():
                progress(round_, repeats, f"{processes} contending")
                rates.append(_contention_rate(heap.name, processes, seconds, spawn))
    return SharedBenchResult(
        hand_offs=hand_offs,
        pairs=pairs,
        contention={n: sorted(rates)[len(rates) // 2] for n, rates in contention.items()},
    )


def _shared_bench_rows(result: SharedBenchResult) -> list[list[str]]:
    """The issue's table: measure, figures, ratio, target."""
    rows = []
    targets = {"1 MiB": ">= 10x", "16 MiB": ">= 15x", "1 KiB": "report"}
    for label, times in result.hand_offs.items():
        handle = times["SharedHeap handle"]
        for rival, target in (
            ("array on the Queue", targets.get(label, "")),
            ("SharedMemory per array", ">= 3x" if label == "1 MiB" else "report"),
        ):
            rows.append(
                [
                    f"hand a {label} array: handle vs {rival}",
                    f"{handle * 1e6:,.0f} us vs {times[rival] * 1e6:,.0f} us",
                    f"{times[rival] / handle:.1f}x faster",
                    target,
                ]
            )
    shared, local = result.pairs["SharedHeap pair"], result.pairs["DynamicSlab pair"]
    rows.append(
        [
            "alloc+free pair: SharedHeap vs DynamicSlab",
            f"{shared * 1e6:.1f} us vs {local * 1e6:.1f} us",
            f"{shared / local:.1f}x the time",
            "<= 2x",
        ]
    )
    one, four = result.contention[1], result.contention[4]
    rows.append(
        [
            "4 processes contending vs 1: total pairs/s",
            f"{four:,.0f} vs {one:,.0f}",
            f"{four / one:.2f}x",
            ">= 0.8x",
        ]
    )
    return rows


def bench_command(
    *, repeats: int, quick: bool, json_path: str | None, progress: Progress = no_progress
) -> int:
    """``slaballoc bench --shared``: measure, print the table, optionally write JSON."""
    from dataclasses import asdict  # noqa: PLC0415

    from .arguments import warn, write_json  # noqa: PLC0415
    from .reports import machine, machine_line  # noqa: PLC0415
    from .tables import format_table  # noqa: PLC0415

    try:
        import numpy  # noqa: F401, PLC0415
    except ModuleNotFoundError:
        warn("bench --shared", "needs numpy (pip install numpy)")
        return 1
    print(f"SharedHeap bench: {machine_line()}; medians of {repeats} interleaved runs\n")
    result = run_shared_bench(repeats=repeats, quick=quick, progress=progress)
    headers = ["measure", "figures", "ratio", "target"]
    print(format_table(headers, _shared_bench_rows(result)))
    if json_path:
        document = {"machine": machine(), "repeats": repeats, "shared": asdict(result)}
        write_json(json_path, document)
    return 0
