"""Recording an allocator's own operations as a malloclab ``.rep`` trace, while a program runs.

Like RMM's ``logging_resource_adaptor``: wrap any allocator of this package
(``LinearSlab``, ``FreeListSlab``, ``DynamicSlab``, ``SlabCache``) and use the
wrapper in its place; every successful ``alloc``, ``alloc_many``, ``realloc``,
``free`` and ``free_many`` becomes a line of the trace, so that a real
workload can be replayed, compared and drawn with ``slaballoc replay``::

    with record_trace(SlabCache(), "workload.rep") as cache:
        run_my_program(cache)

Each block gets a trace id when it is allocated; a realloc keeps its id (the
``r`` line); a free writes ``f ID``.  Failed calls change nothing and are not
recorded.  A block allocated before the wrapping is unknown to the trace: freeing
it is not recorded.  The wrapper holds a lock around each call and its line,
so that the trace's order is an order the allocator really saw.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Recordable", "TraceRecorder", "record_trace"]


class Recordable(Protocol):
    """What the recorder needs: an allocator that hands out and takes back memoryviews."""

    def free(self, view: memoryview) -> None: ...


class TraceRecorder:
    """An allocator wrapper that writes what it does as a ``.rep`` trace.

    Every attribute it does not record (``check``, ``stats``, ``memory``...)
    is the wrapped allocator's.

    >>> from slaballoc import DynamicSlab
    >>> slab = TraceRecorder(DynamicSlab())
    >>> block = slab.alloc(100)
    >>> block = slab.realloc(block, 200)
    >>> slab.free(block)
    >>> print(slab.text(), end="")
    0
    1
    3
    1
    a 0 100
    r 0 200
    f 0

    Bulk calls write one line per block.  Each call costs the wrapped
    allocator's, plus O(1) per block recorded.

    >>> blocks = slab.alloc_many([8, 16])
    >>> slab.free_many(blocks)
    >>> slab.text().splitlines()[-4:]
    ['a 1 8', 'a 2 16', 'f 1', 'f 2']
    """

    def __init__(self, allocator: Recordable) -> None:
        self._allocator: Any = allocator
        self._lock = threading.Lock()
        self._ids: dict[int, int] = {}  # id(view) -> trace id, for every live block it saw
        self._lines: list[str] = []
        self._next_id = 0

    @property
    def allocator(self) -> Any:
        """The wrapped allocator."""
        return self._allocator

    def alloc(self, *args: Any) -> memoryview:
        """The allocator's ``alloc``, recorded as ``a ID SIZE``."""
        with self._lock:
            view: memoryview = self._allocator.alloc(*args)
            self._allocated(view)
        return view

    def alloc_many(self, *args: Any) -> list[memoryview]:
        """The allocator's ``alloc_many``, recorded as one ``a`` line per block."""
        with self._lock:
            views: list[memoryview] = self._allocator.alloc_many(*args)
            for view in views:
                self._allocated(view)
        return views

    def realloc(self, view: memoryview, size: int) -> memoryview:
        """The allocator's ``realloc``, recorded as ``r ID SIZE``."""
        with self._lock:
            ident = self._ids.get(id(view))
            new: memoryview = self._allocator.realloc(view, size)
            if ident is None:
                self._allocated(new)
            else:
                del self._ids[id(view)]
                self._ids[id(new)] = ident
                self._lines.append(f"r {ident} {len(new)}")
        return new

    def free(self, view: memoryview) -> None:
        """The allocator's ``free``, recorded as ``f ID``."""
        with self._lock:
            self._allocator.free(view)
            self._freed(view)

    def free_many(self, views: Iterable[memoryview]) -> None:
        """The allocator's ``free_many``, recorded as one ``f`` line per block."""
        batch = list(views)
        with self._lock:
            self._allocator.free_many(batch)
            for view in batch:
                self._freed(view)

    def text(self) -> str:
        """The trace so far, in ``.rep`` format.  O(operations)."""
        with self._lock:
            header = [0, self._next_id, len(self._lines), 1]
            return "".join(f"{line}\n" for line in [*map(str, header), *self._lines])

    def save(self, path: str | Path) -> None:
        """Write the trace so far to ``path``."""
        Path(path).write_text(self.text(), encoding="ascii")

    def __len__(self) -> int:
        return len(self._allocator)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._allocator, name)

    def __repr__(self) -> str:
        return f"<TraceRecorder of {self._allocator!r}: {len(self._lines)} operations>"

    def _allocated(self, view: memoryview) -> None:
        ident = self._ids[id(view)] = self._next_id
        self._next_id += 1
        self._lines.append(f"a {ident} {len(view)}")

    def _freed(self, view: memoryview) -> None:
        ident = self._ids.pop(id(view), None)
        if ident is not None:
            self._lines.append(f"f {ident}")


@contextmanager
def record_trace(allocator: Recordable, path: str | Path) -> Iterator[TraceRecorder]:
    """Use ``allocator`` through a :class:`TraceRecorder`; write the trace to ``path`` at the end.

    The trace is written even when the block raises, so that the operations
    leading to an error can be replayed.
    """
    recorder = TraceRecorder(allocator)
    try:
        yield recorder
    finally:
        recorder.save(path)
