"""Shared helpers: one way to allocate from any of the three allocators."""

from __future__ import annotations

from collections.abc import Callable

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
