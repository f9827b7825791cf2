"""Shared helpers: one way to allocate from any of the allocators.

``make`` gives the seed's three; ``test_slab_cache_shared.py`` runs the tests
that fit every allocator on ``SlabCache`` too.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from itertools import pairwise
from typing import Any

import pytest

from slaballoc import DynamicSlab, FreeListSlab, LinearSlab, SlabCache

Allocator = LinearSlab | FreeListSlab | DynamicSlab | SlabCache
ALLOCATORS: list[type[Allocator]] = [LinearSlab, FreeListSlab, DynamicSlab]


def take(allocator: Allocator, size: int = 64) -> memoryview:
    """Allocate ``size`` bytes (one slot for the fixed-size slabs)."""
    if isinstance(allocator, (DynamicSlab, SlabCache)):
        return allocator.alloc(size)
    return allocator.alloc()


def state(allocator: Allocator) -> tuple[object, ...]:
    """Everything an error must leave unchanged."""
    return (
        tuple(allocator.blocks()),
        allocator.used,
        len(allocator),
        bytes(allocator.memory),
        allocator.stats(),
    )


def outcome(action: Callable[[], Any], describe: Callable[[Any], Any] = repr) -> tuple[Any, ...]:
    """What an action did: its described result, or its error's type and message."""
    try:
        result = action()
    except Exception as error:  # every error is compared, whatever it is
        return ("raised", type(error), str(error))
    return ("returned", describe(result))


def assert_disjoint(spans: Iterable[tuple[int, int]]) -> None:
    """No two blocks, given as ``(offset, size)`` in any order, share a byte."""
    for (start, size), (next_start, _) in pairwise(sorted(spans)):
        assert start + size <= next_start, f"[{start}, {start + size}) overlaps {next_start}"


def run_threads(
    target: Callable[..., object], argument_lists: Iterable[tuple[object, ...]]
) -> None:
    """Run ``target`` in one thread per argument tuple, all at once; wait for every one."""
    threads = [threading.Thread(target=target, args=args) for args in argument_lists]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.fixture(params=ALLOCATORS, ids=lambda cls: cls.__name__)
def make(request: pytest.FixtureRequest) -> Callable[..., Allocator]:
    """A factory for each allocator class in turn."""
    cls: type[Allocator] = request.param
    return cls


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads as often as the interpreter can (to expose races); then restore it."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


@pytest.fixture(scope="session", autouse=True)
def no_shared_memory_left() -> Iterator[None]:
    """The suite leaves no SharedHeap segment in /dev/shm.

    Only segments this process created count (their header names the creator),
    so that another test run on the same machine cannot fail this one.
    """

    def ours() -> set[str]:
        if not os.path.isdir("/dev/shm"):
            return set()
        names = set()
        for name in os.listdir("/dev/shm"):
            try:
                with open(os.path.join("/dev/shm", name), "rb") as segment:
                    header = segment.read(16 * 8)
            except OSError:
                continue
            if header[:8] == b"SLABHEAP" and int.from_bytes(header[120:128], "little") == pid:
                names.add(name)
        return names

    pid = os.getpid()
    before = ours()
    yield
    left = ours() - before
    assert not left, f"the tests left shared memory behind: {sorted(left)}"
