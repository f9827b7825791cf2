"""SharedHeap under real processes: contention, and processes killed in the middle of work."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from shared_workers import churn, hold_the_lock, run_child, stress
from slaballoc import SharedHeap
from slaballoc._implementation import core
from slaballoc.errors import AllocatorClosedError
from slaballoc.shared.heap import PureSharedHeap

# The heap classes whose alloc and free a test runs: the C core's (when built) and Python's.
HEAP_CLASSES = [
    pytest.param(SharedHeap, id="c", marks=pytest.mark.skipif(core is None, reason="no C core")),
    pytest.param(PureSharedHeap, id="python"),
]


def test_four_processes_share_one_heap(
    tmp_path: os.PathLike[str], capfd: pytest.CaptureFixture[str]
) -> None:
    """Four spawned processes attach by name and churn for seconds; no range is given twice."""
    with SharedHeap.create(size=1 << 18, max_blocks=1024) as heap:
        claims = os.path.join(tmp_path, "claims")
        with open(claims, "wb") as file:
            file.write(bytes(heap.capacity // heap.alignment))
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(4, mp_context=spawn) as pool:
            futures = [
                pool.submit(stress, heap.name, claims, worker, 3.0, worker) for worker in range(4)
            ]
            results = [future.result() for future in futures]
        for counts in results:
            assert counts["overlaps"] == 0 and counts["corrupted"] == 0, counts
            assert counts["allocs"] == counts["frees"] > 500, counts
        assert sum(counts["out_of_memory"] for counts in results) > 0, "raise the load"
        heap.check()
        assert heap.stats().used == 0
        assert len(heap.blocks()) == 1
        assert [p for p in heap.processes() if p.pid != os.getpid()] == []
    assert "leaked" not in capfd.readouterr().err


def test_hundreds_of_random_sigkills() -> None:
    """Kill a process in a tight alloc/free loop at random moments, 200 times over.

    After each kill: the heap repairs itself, checks clean, and reclaiming the
    dead process's blocks leaves exactly this process's blocks, bytes intact.
    """
    rng = random.Random(20261127)
    # Spawned children start a fresh interpreter that never saw the heap: each
    # attaches by name, as an unrelated process would.
    spawn = multiprocessing.get_context("spawn")
    kills = repaired = 0
    with SharedHeap.create(size=1 << 18, max_blocks=512) as heap:
        mine = {heap.alloc(size): bytes([size % 251]) * size for size in (100, 3000, 64)}
        for handle, content in mine.items():
            heap.view(handle)[:] = content
        own_used = heap.stats().used
        baseline = heap.blocks()
        while kills < 200:
            receiver, sender = spawn.Pipe(duplex=False)
            # Every other child runs the Python transactions (the C core's are so short
            # that few random kills land inside one): this process repairs both kinds.
            python_engine = kills % 2 == 1
            child = spawn.Process(target=churn, args=(heap.name, sender, kills, python_engine))
            child.start()
            assert receiver.poll(30), "the child never started"
            receiver.recv()
            time.sleep(rng.uniform(0, 0.004))
            os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
            child.join()
            receiver.close()
            kills += 1
            repaired += heap._journal.pending() > 0  # killed inside an operation
            heap.check()  # takes the lock: rolls the dead process's operation back first
            heap.reclaim_dead()
            stats = heap.stats()
            assert stats.used == own_used and stats.live_blocks == len(mine)
            assert heap.blocks() == baseline
            for handle, content in mine.items():
                assert bytes(heap.view(handle)) == content
    # Some kills must land inside an operation (measured: about 30% with the Python
    # engine, under 5% with the C core, whose operations are short); every point of
    # an operation is covered by test_a_kill_between_any_two_stores_is_repaired.
    assert repaired >= 3, f"only {repaired} of {kills} kills interrupted an operation"


def test_a_kill_between_any_two_stores_is_repaired() -> None:
    """Kill a child before each store of a scripted sequence, one store further each time.

    The script attaches (a fork attaches as a new process), splits blocks,
    takes an exact fit, frees with merges on neither, one and both sides,
    adopts, and dies.  Whatever store it dies before, the next holder rolls
    the interrupted operation back, check() passes, and reclaim_dead() gives
    the heap back exactly as it was, bytes included.
    """
    with SharedHeap.create(size=1 << 14, alignment=8, max_blocks=64) as heap:
        fence = [heap.alloc(size) for size in (64, 256, 64, 512, 64)]  # holes between fences
        heap.free(fence[1])
        heap.free(fence[3])
        for handle in (fence[0], fence[2], fence[4]):
            heap.view(handle)[:] = bytes([handle % 256]) * 64
        before = heap.blocks()

        def script() -> None:
            a = heap.alloc(100)  # split the 256-byte hole
            b = heap.alloc(512)  # the exact fit
            c = heap.alloc(40)
            d = heap.alloc(40)
            heap.free(c)  # its right neighbour d is live, its left neighbour a too: no merge
            heap.free(a)  # merges with c's hole on its right
            heap.adopt(b)
            heap.free(d)  # merges on both sides
            heap.alloc(1000)  # from the top block, kept by the dead child

        point, finished = 0, False
        while not finished:
            point += 1
            signal_number = run_child(script, point)
            finished = signal_number is None
            if not finished:
                assert signal_number == signal.SIGKILL
            heap.check()
            heap.reclaim_dead()
            heap.check()
            assert heap.blocks() == before, f"not repaired after a kill at store {point}"
            for handle in (fence[0], fence[2], fence[4]):
                assert bytes(heap.view(handle)) == bytes([handle % 256]) * 64
            assert [p.pid for p in heap.processes()] == [os.getpid()]
        assert point > 300, f"the script made only {point - 1} stores"


@pytest.mark.parametrize("store", [1, 2, 3, 4, 5])
def test_a_kill_inside_the_rollback_itself_is_repaired(store: int) -> None:
    """Recovery is idempotent: a process killed while rolling back is rolled back again."""
    with SharedHeap.create(size=1 << 12, alignment=8) as heap:
        before = heap.blocks()
        # Attaching takes 13 stores; die 20 stores into the alloc that follows.
        assert run_child(lambda: heap.free(heap.alloc(10)), 33) == signal.SIGKILL
        assert heap._journal.pending() >= 3
        # The next child starts by rolling that back, and dies at ``store`` of the rollback.
        assert run_child(lambda: None, store) == signal.SIGKILL
        assert heap._journal.pending() > 0
        heap.check()
        heap.reclaim_dead()
        assert heap.blocks() == before


@pytest.mark.parametrize("repairer", HEAP_CLASSES)
@pytest.mark.parametrize("holder", HEAP_CLASSES)
def test_a_holder_killed_inside_an_alloc_is_repaired_by_the_next_locker(
    holder: type[SharedHeap], repairer: type[SharedHeap]
) -> None:
    """A process dies holding the mutex, its alloc half done; the next alloc repairs it.

    The next locker gets EOWNERDEAD, marks the mutex consistent and rolls the
    dead process's undo log back before its own alloc, in C or in Python, and
    whichever implementation the dead process ran.
    """
    with SharedHeap.create(size=1 << 14, alignment=8, max_blocks=64) as heap:
        kept = heap.alloc(64)
        before = heap.blocks()

        def die_inside_an_alloc() -> None:
            holder.attach(heap.name).alloc(40)

        # A forked child attaches twice (as itself, then by name): 26 stores; the
        # alloc's stores follow.
        assert run_child(die_inside_an_alloc, 26 + 15) == signal.SIGKILL
        assert heap._journal.pending() > 0  # it died inside the alloc, holding the mutex
        # (Attaching locks first: then the attach repairs, in Python.)
        next_one = repairer.attach(heap.name) if repairer is PureSharedHeap else heap
        handle = next_one.alloc(100)
        assert heap._journal.pending() == 0
        assert next_one._lock.acquire() is False  # marked consistent, not unrecoverable
        next_one._lock.release()
        next_one.free(handle)
        if next_one is not heap:
            next_one.close()
        heap.check()
        heap.reclaim_dead()
        assert heap.blocks() == before
        assert [block.offset for block in heap.blocks() if block.live] == [kept]


def holding_the_mutex(name: str) -> multiprocessing.process.BaseProcess:
    """A spawned process that has attached to heap ``name`` and holds its mutex (until killed)."""
    spawn = multiprocessing.get_context("spawn")
    receiver, sender = spawn.Pipe(duplex=False)
    child = spawn.Process(target=hold_the_lock, args=(name, sender))
    child.start()
    with receiver:
        assert receiver.poll(30), "the child never took the mutex"
        receiver.recv()
    return child


@pytest.mark.parametrize("waiter", HEAP_CLASSES)
def test_a_waiter_gets_the_mutex_when_its_holder_is_killed(waiter: type[SharedHeap]) -> None:
    """A process blocked holding the mutex is SIGKILLed while a thread here waits for it.

    The kernel hands the mutex over ("owner died"); the waiting alloc goes on,
    and the heap checks clean.  Waiting lets go of the GIL: the main thread
    runs meanwhile.
    """
    with SharedHeap.create(size=1 << 14, max_blocks=64) as heap:
        mine = waiter.attach(heap.name) if waiter is PureSharedHeap else heap
        child = holding_the_mutex(heap.name)
        got: list[int] = []
        thread = threading.Thread(target=lambda: got.append(mine.alloc(100)))
        thread.start()
        time.sleep(0.2)
        assert not got and thread.is_alive(), "the alloc did not wait for the holder"
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join()
        thread.join(10)
        assert got, "the waiter never got the mutex of the killed holder"
        mine.free(got[0])
        if mine is not heap:
            mine.close()
        heap.check()
        heap.reclaim_dead()
        assert heap.stats().used == 0


@pytest.mark.parametrize("waiter", HEAP_CLASSES)
def test_closing_while_a_thread_waits_for_the_mutex_cannot_unmap_it(
    waiter: type[SharedHeap],
) -> None:
    """A thread waits for the mutex; another closes the heap object meanwhile.

    The waiter pinned the mapping before it let go of the GIL, so the mutex
    and the words stay mapped: when it gets the mutex it finds the heap
    closed and raises AllocatorClosedError (without the pin: a segfault).
    """
    with SharedHeap.create(size=1 << 14, max_blocks=64) as heap:
        mine = waiter.attach(heap.name)
        child = holding_the_mutex(heap.name)
        outcome: list[object] = []

        def alloc() -> None:
            try:
                outcome.append(mine.alloc(100))
            except AllocatorClosedError as error:
                outcome.append(error)

        thread = threading.Thread(target=alloc)
        thread.start()
        time.sleep(0.2)
        assert thread.is_alive(), "the alloc did not wait for the holder"
        mine._release_memory()  # what close() ends with, even when detaching failed
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join()
        thread.join(10)
        assert len(outcome) == 1 and isinstance(outcome[0], AllocatorClosedError), outcome
        heap.check()
        assert heap.stats().used == 0
