"""What our allocators are measured against, as replay contenders.

* :class:`DynamicContender`: our :class:`~slaballoc.DynamicSlab`.
* :class:`MultiprocessingHeap`: CPython's ``multiprocessing.heap.Heap``, what a
  Python user has today for variable-size blocks in shared memory.  Each block
  gets the memoryview that ``multiprocessing.sharedctypes`` makes of it, so
  that both sides hand out usable buffers; realloc is malloc, copy, free.
* The seed's own algorithm, ported as plainly as possible, lives in the
  source tree's ``benchmarks/seed_dynamic.py`` (not in the package) and is
  loaded from there by :func:`load_seed_port` when it is present.
"""

from __future__ import annotations

import importlib.util
from multiprocessing.heap import Heap
from pathlib import Path
from typing import Any

from .dynamic import DynamicSlab

__all__ = ["DynamicContender", "MultiprocessingHeap", "find_seed_port", "load_seed_port"]

_Block = tuple[tuple[Any, int, int], memoryview]


class DynamicContender:
    """``DynamicSlab`` as a replay contender: its own three methods, unwrapped."""

    def __init__(self, capacity: int, alignment: int = 8, *, fast: bool = False) -> None:
        self.slab = DynamicSlab(capacity, alignment=alignment, fast=fast)
        self.name = "DynamicSlab" + (" (fast)" if fast else "")
        self.alloc = self.slab.alloc
        self.free = self.slab.free
        self.realloc = self.slab.realloc


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


def find_seed_port() -> Path | None:
    """Where ``benchmarks/seed_dynamic.py`` is: beside an editable install, or below the cwd."""
    candidates = [
        Path(__file__).resolve().parents[2] / "benchmarks" / "seed_dynamic.py",
        Path.cwd() / "benchmarks" / "seed_dynamic.py",
    ]
    return next((path for path in candidates if path.is_file()), None)


def load_seed_port(path: Path) -> type[Any]:
    """Import the seed port's ``SeedDynamic`` contender class from ``path``."""
    spec = importlib.util.spec_from_file_location("slaballoc_seed_port", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the seed port from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    contender: type[Any] = module.SeedDynamic
    return contender
