"""Shared helpers: one way to allocate from any of the allocators.

``make`` gives the seed's three; ``test_slab_cache_shared.py`` runs the tests
that fit every allocator on ``SlabCache`` too.
"""

from __future__ import annotations

from collections.abc import Callable

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


@pytest.fixture(params=ALLOCATORS, ids=lambda cls: cls.__name__)
def make(request: pytest.FixtureRequest) -> Callable[..., Allocator]:
    """A factory for each allocator class in turn."""
    cls: type[Allocator] = request.param
    return cls
