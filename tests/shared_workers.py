"""Code that runs in the child processes of the shared-heap tests (importable by spawn)."""

from __future__ import annotations

import mmap
import os
import random
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

import slaballoc.shared.heap as shared_heap_module
from slaballoc import OutOfMemoryError, SharedHeap
from slaballoc.shared import journal


def stress(name: str, claims_path: str, worker: int, seconds: float, seed: int) -> dict[str, int]:
    """Allocate and free at random for ``seconds``, each block filled with this worker's pattern.

    ``claims_path`` is a file with one byte per alignment unit of the heap: a
    worker marks the units of each block it gets and unmarks them before
    freeing it, so a range handed to two processes at once is caught.
    """
    rng = random.Random(seed)
    heap = SharedHeap.attach(name)
    unit = heap.alignment
    fd = os.open(claims_path, os.O_RDWR)
    claims = mmap.mmap(fd, 0)
    os.close(fd)
    mine: dict[int, int] = {}  # handle -> size
    counts = {"allocs": 0, "frees": 0, "out_of_memory": 0, "overlaps": 0, "corrupted": 0}
    tag = worker + 1

    def pattern(handle: int, size: int) -> bytes:
        return (
            bytes([tag]) * (size - 8) + handle.to_bytes(8, "little")
            if size >= 8
            else bytes([tag]) * size
        )

    def release(handle: int) -> None:
        size = mine.pop(handle)
        if bytes(heap.view(handle)) != pattern(handle, size):
            counts["corrupted"] += 1
        first = handle // unit
        claims[first : first + -(-size // unit)] = bytes(-(-size // unit))
        heap.free(handle)
        counts["frees"] += 1

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if mine and (rng.random() < 0.45 or len(mine) > 64):
            release(rng.choice(list(mine)))
            continue
        size = rng.choice((rng.randint(1, 256), rng.randint(1, 8192)))
        try:
            handle = heap.alloc(size)
        except OutOfMemoryError:
            counts["out_of_memory"] += 1
            continue
        counts["allocs"] += 1
        first, units = handle // unit, -(-size // unit)
        if any(claims[first : first + units]):
            counts["overlaps"] += 1
        claims[first : first + units] = bytes([tag]) * units
        heap.view(handle)[:] = pattern(handle, size)
        mine[handle] = size
    for handle in list(mine):
        release(handle)
    claims.close()
    heap.close()
    return counts


def churn(name: str, ready: Connection, seed: int, python_engine: bool = False) -> None:
    """Allocate and free in a tight loop, forever (until killed), keeping a few blocks live.

    With ``python_engine`` the process runs the pure-Python transactions even
    where the C core is built: they are longer, so a random kill lands inside
    one far more often, and the other (C) process must repair what it left.
    """
    rng = random.Random(seed)
    # The specification's class runs every transaction in Python, over the same
    # segment and the same mutex as the C core's in other processes.
    heap = (shared_heap_module.PureSharedHeap if python_engine else SharedHeap).attach(name)
    live: list[int] = []
    ready.send(True)
    while True:
        if live and (len(live) > 8 or rng.random() < 0.5):
            heap.free(live.pop(rng.randrange(len(live))))
        else:
            try:
                live.append(heap.alloc(rng.randint(1, 3000)))
            except OutOfMemoryError:
                heap.free(live.pop())


def allocate_and_exit(name: str, sizes: list[int], results: Connection) -> None:
    """Allocate blocks, report their handles, and exit without freeing them."""
    heap = SharedHeap.attach(name)
    results.send([heap.alloc(size) for size in sizes])
    heap.close()


def free_handle(name: str, handle: int, results: Connection) -> None:
    """Free one block; report None, or the error's type name."""
    heap = SharedHeap.attach(name)
    try:
        heap.free(handle)
    except Exception as error:  # reported to the parent, which asserts on it
        results.send(type(error).__name__)
    else:
        results.send(None)
    finally:
        heap.close()


def run_child(work: Callable[[], None], crash_at: int) -> int | None:
    """Fork a child that SIGKILLs itself before its ``crash_at``-th store (0: never).

    The hook is armed before the fork, so the stores a forked child makes to
    attach itself count too.  Returns the signal that ended the child, or None.
    """
    journal.crash_at(crash_at)
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            work()
            status = 0
        finally:
            os._exit(status)
    journal.crash_at(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return os.WTERMSIG(status)
    assert os.waitstatus_to_exitcode(status) == 0, "the child failed"
    return None


def hold_the_lock(name: str, ready: Connection) -> None:
    """Attach, take the heap's mutex, say so, and wait (to be killed holding it)."""
    heap = SharedHeap.attach(name)
    heap._lock.acquire()
    ready.send(True)
    time.sleep(600)
