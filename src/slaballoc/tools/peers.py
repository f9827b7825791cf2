"""What our allocators are measured against, as replay contenders.

* :class:`DynamicContender`: our :class:`~slaballoc.DynamicSlab` (or, with
  ``pure=True``, its pure-Python specification, to time both in one run).
* :class:`SlabCacheContender`: our :class:`~slaballoc.SlabCache`.
* :class:`MultiprocessingHeap`: CPython's ``multiprocessing.heap.Heap``, what a
  Python user has today for variable-size blocks in shared memory.  Each block
  gets the memoryview that ``multiprocessing.sharedctypes`` makes of it, so
  that both sides hand out usable buffers; realloc is malloc, copy, free.
* :class:`~slaballoc.tools.seed_port.SeedDynamic`: the seed's own algorithm,
  ported as plainly as possible (its own module).
"""

from __future__ import annotations

from multiprocessing.heap import Heap
from typing import Any

from ..dynamic import DynamicSlab, PureDynamicSlab
from ..slab_cache import SlabCache
from .seed_port import SeedDynamic

__all__ = ["DynamicContender", "MultiprocessingHeap", "SeedDynamic", "SlabCacheContender"]

_Block = tuple[tuple[Any, int, int], memoryview]


class DynamicContender:
    """``DynamicSlab`` as a replay contender: its own three methods, unwrapped."""

    def __init__(
        self, capacity: int, alignment: int = 8, *, fast: bool = False, pure: bool = False
    ) -> None:
        cls = PureDynamicSlab if pure else DynamicSlab
        self.slab = cls(capacity, alignment=alignment, fast=fast)
        self.name = "DynamicSlab" + (" (fast)" if fast else "") + (" [python]" if pure else "")
        self.alloc = self.slab.alloc
        self.free = self.slab.free
        self.realloc = self.slab.realloc


class SlabCacheContender:
    """``SlabCache`` as a replay contender: its own three methods, unwrapped."""

    def __init__(self, cache: SlabCache, name: str = "SlabCache") -> None:
        self.cache = cache
        self.name = name
        self.alloc = cache.alloc
        self.free = cache.free
        self.realloc = cache.realloc


class MultiprocessingHeap:
    """``multiprocessing.heap.Heap``, with the memoryview a caller makes of each block."""

    name = "multiprocessing.heap"

    def __init__(self) -> None:
        self.heap = Heap()

    def alloc(self, size: int) -> _Block:
        block = self.heap.malloc(size)
        arena, start, _ = block
        return block, memoryview(arena.buffer)[start : start + size]

    def free(self, handle: _Block) -> None:
        block, view = handle
        view.release()
        self.heap.free(block)

    def realloc(self, handle: _Block, size: int) -> _Block:
        new = self.alloc(size)
        keep = min(len(handle[1]), size)
        new[1][:keep] = handle[1][:keep]
        self.free(handle)
        return new
