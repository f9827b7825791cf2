"""SlabCache under threads: 8 threads, a tiny switch interval, blocks freed across threads."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import run_threads
from slaballoc import OutOfMemoryError, SlabCache

THREADS = 8
ROUNDS = 400
SIZES = [8, 64, 100, 1500, 5000, 20_000]  # small, middle and large classes, and a large block


class Workload:
    """Threads allocating, freeing and handing blocks to each other, with an ownership map."""

    def __init__(self, cache: SlabCache) -> None:
        self.cache = cache
        self.owners: dict[int, bytes] = {}  # offset -> the bytes its owner wrote
        self.lock = threading.Lock()
        self.handoff: list[memoryview] = []  # allocated by one thread, to be freed by another
        self.cross_thread_frees = 0
        self.failures: list[BaseException] = []
        self.barrier = threading.Barrier(THREADS)

    def claim(self, view: memoryview, stamp: bytes) -> None:
        view[:] = stamp
        with self.lock:
            offset = self.cache.offset_of(view)
            assert offset not in self.owners, f"offset {offset} handed out twice"
            self.owners[offset] = stamp

    def release(self, view: memoryview) -> None:
        with self.lock:
            offset = self.cache.offset_of(view)
            stamp = self.owners.pop(offset)
            assert bytes(view) == stamp, f"block at {offset} changed while live"
        self.cache.free(view)

    def run(self, me: int) -> None:
        try:
            self.barrier.wait()
            self.steps(me, random.Random(me))
        except BaseException as error:  # reported by the main thread
            self.failures.append(error)

    def steps(self, me: int, rng: random.Random) -> None:
        mine: list[memoryview] = []
        for step in range(ROUNDS):
            choice = rng.random()
            if choice < 0.45 or not mine:
                size = rng.choice(SIZES)
                try:
                    view = self.cache.alloc(size)
                except OutOfMemoryError:
                    continue
                self.claim(view, (bytes([me + 1, step % 256]) * size)[:size])
                mine.append(view)
            elif choice < 0.55:
                try:
                    batch = self.cache.alloc_many(48, 5)
                except OutOfMemoryError:
                    continue
                for view in batch:
                    self.claim(view, bytes([me + 1]) * 48)
                    mine.append(view)
            elif choice < 0.65:
                self.handoff.append(mine.pop(rng.randrange(len(mine))))
            elif choice < 0.75 and self.handoff:
                try:
                    view = self.handoff.pop()
                except IndexError:  # another thread took the last one
                    continue
                self.release(view)
                with self.lock:
                    self.cross_thread_frees += 1
            else:
                self.release(mine.pop(rng.randrange(len(mine))))
        for view in mine:  # the rest in one bulk free
            with self.lock:
                assert bytes(view) == self.owners.pop(self.cache.offset_of(view))
        self.cache.free_many(mine)


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize("magazine_size", [None, 0, 2])
def test_eight_threads_share_one_cache(magazine_size: int | None) -> None:
    cache = SlabCache(capacity=4 << 20, magazine_size=magazine_size)
    workload = Workload(cache)
    run_threads(workload.run, [(me,) for me in range(THREADS)])
    assert not workload.failures, workload.failures[0]
    assert workload.cross_thread_frees > 0
    for view in workload.handoff:
        workload.release(view)
    assert not workload.owners
    assert len(cache) == 0
    cache.check()
    stats = cache.stats()
    assert stats.allocs == stats.frees > 0


@pytest.mark.usefixtures("fast_switching")
def test_reports_while_other_threads_allocate() -> None:
    """stats() and slabinfo() take the lock and copy what they read: safe at any moment."""
    cache = SlabCache(capacity=4 << 20)
    stop = threading.Event()
    failures: list[BaseException] = []

    def churn(seed: int) -> None:
        rng = random.Random(seed)
        live: list[memoryview] = []
        try:
            while not stop.is_set():
                if live and rng.random() < 0.5:
                    cache.free(live.pop(rng.randrange(len(live))))
                else:
                    live.append(cache.alloc(rng.choice(SIZES)))
            cache.free_many(live)
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    workers = [threading.Thread(target=churn, args=(seed,)) for seed in range(4)]
    for worker in workers:
        worker.start()
    try:
        for _ in range(50):
            stats = cache.stats()
            assert stats.live_blocks >= 0 and len(cache.slabinfo()) == len(cache.size_classes)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert not failures, failures[0]
    cache.check()  # exact once the other threads have stopped
    assert len(cache) == 0


def test_magazines_grow_when_the_depot_lock_is_contended() -> None:
    """Bonwick and Adams's rule: a class whose depot lock is found taken gets larger magazines."""
    cache = SlabCache(capacity=4 << 20)
    row = 3  # the 64-byte class
    start = cache.slabinfo()[row].magazine_size

    def batch() -> None:  # more than a magazine holds: a trip to the depot under the lock
        cache.free_many(cache.alloc_many(64, 4 * start))

    with ThreadPoolExecutor(max_workers=1) as worker:  # one thread: its magazines exist already
        worker.submit(batch).result()
        for _ in range(200):  # each round, the worker finds the lock taken if it gets there in time
            cache._lock.acquire()
            done = worker.submit(batch)
            time.sleep(0.005)
            cache._lock.release()
            done.result()
            if cache.slabinfo()[row].magazine_size > start:
                break
    assert cache.slabinfo()[row].magazine_size == 2 * start
    assert SlabCache(capacity=4 << 20, magazine_size=8).slabinfo()[row].magazine_size == 8
    cache.check()
