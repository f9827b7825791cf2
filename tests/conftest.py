"""Shared helpers: one way to allocate from any of the three allocators."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from slaballoc import DynamicSlab, FreeListSlab, LinearSlab

Allocator = LinearSlab | FreeListSlab | DynamicSlab
ALLOCATORS: list[type[Allocator]] = [LinearSlab, FreeListSlab, DynamicSlab]


def take(allocator: Allocator, size: int = 64) -> memoryview:
    """Allocate ``size`` bytes (one slot for the fixed-size slabs)."""
    if isinstance(allocator, DynamicSlab):
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


@pytest.fixture(params=ALLOCATORS, ids=lambda cls: cls.__name__)
def make(request: pytest.FixtureRequest) -> Callable[..., Allocator]:
    """A factory for each allocator class in turn."""
    cls: type[Allocator] = request.param
    return cls


@pytest.fixture(scope="session", autouse=True)
def no_shared_memory_left() -> Iterator[None]:
    """The suite leaves no slaballoc segment in /dev/shm (SharedHeap tests name theirs so)."""

    def ours() -> set[str]:
        if not os.path.isdir("/dev/shm"):
            return set()
        return {name for name in os.listdir("/dev/shm") if name.startswith("slaballoc-")}

    before = ours()
    yield
    left = ours() - before
    assert not left, f"the tests left shared memory behind: {sorted(left)}"
