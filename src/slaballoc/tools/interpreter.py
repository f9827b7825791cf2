"""The rules of a trace, coded once: which call each operation makes, and what is an anomaly.

A :class:`TraceInterpreter` walks a :class:`~.traces.Trace` and calls a
:class:`TraceTarget`'s ``alloc(ident, size)``, ``free(ident)`` and
``realloc(ident, size)``; the target keeps whatever it needs per id (a view, a
handle, a size).  The rules:

* ``a ID SIZE`` allocates; ``r ID SIZE`` resizes a live id and allocates one
  that is not live (C's ``realloc(NULL, n)``); ``f ID`` frees a live id and
  ``f -1`` does nothing (the format's no-op).
* A target that cannot serve a request raises :class:`MemoryError`; the
  request is counted as failed and changes nothing: a failed allocation
  leaves the id empty, a failed resize leaves the block as it was (C again).
  A later free of an id whose allocation failed is ``free(NULL)``: nothing.
* Anomalies are what a *program* did wrong, recorded faithfully; they are
  counted, never raised:

  - ``double free``: ``f ID`` for an id already freed (skipped);
  - ``free of an unknown id``: ``f ID`` for an id never allocated (skipped);
  - ``alloc of a live id``: ``a ID`` while ID is live.  A recorder that misses
    a free (one made inside libc, say) writes this; the live block is freed
    first, as the program must have done, then the allocation is made.

The timed replay (:func:`.replay.time_replay`) keeps its own tight loop for
speed; a test proves it makes exactly the calls this interpreter makes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from .traces import ALLOC, FREE, Trace

__all__ = [
    "ALLOC_OF_LIVE_ID",
    "DOUBLE_FREE",
    "UNKNOWN_FREE",
    "TraceInterpreter",
    "TraceTally",
    "TraceTarget",
    "peak_live_bytes",
]

DOUBLE_FREE = "double free"
UNKNOWN_FREE = "free of an unknown id"
ALLOC_OF_LIVE_ID = "alloc of a live id"

# What the interpreter knows of each id.
_NEVER, _LIVE, _FREED, _REFUSED = 0, 1, 2, 3


class TraceTarget(Protocol):
    """What a trace drives: three calls by block id.  ``MemoryError`` means "cannot"."""

    def alloc(self, ident: int, size: int) -> None: ...
    def free(self, ident: int) -> None: ...
    def realloc(self, ident: int, size: int) -> None: ...


@dataclass
class TraceTally:
    """What a walk through a trace counted (operation numbers are 0-based indexes)."""

    ops: int = 0  # operations walked so far
    failed: int = 0  # requests the target could not serve
    first_failure: int | None = None
    anomalies: dict[str, int] = field(default_factory=dict)  # by kind, in order of first sight
    first_anomaly: dict[str, int] = field(default_factory=dict)  # kind -> first operation


class TraceInterpreter:
    """Walks one trace through one target; :attr:`tally` counts as it goes.

    >>> from .traces import parse_trace
    >>> class Log:
    ...     def alloc(self, ident, size): print("alloc", ident, size)
    ...     def free(self, ident): print("free", ident)
    ...     def realloc(self, ident, size): print("realloc", ident, size)
    >>> trace = parse_trace("0\\n2\\n5\\n1\\na 0 8\\nr 0 16\\nf 0\\nf 0\\nr 1 4\\n")
    >>> TraceInterpreter(trace, Log()).run().anomalies
    alloc 0 8
    realloc 0 16
    free 0
    alloc 1 4
    {'double free': 1}
    """

    def __init__(self, trace: Trace, target: TraceTarget) -> None:
        self.trace = trace
        self.target = target
        self.tally = TraceTally()
        self.position = 0  # the operation being interpreted, for a target's messages
        self._states = bytearray(trace.id_count)

    def run(self) -> TraceTally:
        """Interpret every operation; return the tally.  O(operations) calls to the target."""
        for _ in self.steps():
            pass
        return self.tally

    def steps(self) -> Iterator[int]:
        """Interpret the operations one by one, yielding each one's index once it is done.

        For a caller that looks at the target between operations (to draw it).
        One loop, its names local: it is the cost every walk pays per operation.
        """
        trace, tally, states = self.trace, self.tally, self._states
        alloc, free, realloc = self.target.alloc, self.target.free, self.target.realloc
        for index, (kind, ident, size) in enumerate(
            zip(trace.kinds, trace.ids, trace.sizes, strict=True)
        ):
            self.position = index
            if kind == FREE:
                if ident >= 0:  # ``f -1`` does nothing
                    state = states[ident]
                    if state == _LIVE:
                        free(ident)
                        states[ident] = _FREED
                    elif state == _REFUSED:  # its allocation failed: ``free(NULL)``
                        states[ident] = _FREED
                    else:
                        self._anomaly(DOUBLE_FREE if state == _FREED else UNKNOWN_FREE, index)
            else:
                if kind == ALLOC and states[ident] == _LIVE:
                    self._anomaly(ALLOC_OF_LIVE_ID, index)
                    free(ident)
                    states[ident] = _FREED
                try:
                    if states[ident] == _LIVE:
                        realloc(ident, size)
                    else:
                        alloc(ident, size)
                        states[ident] = _LIVE
                except MemoryError:
                    self._failed(index, ident)
            tally.ops = index + 1
            yield index

    def _failed(self, index: int, ident: int) -> None:
        tally = self.tally
        tally.failed += 1
        if tally.first_failure is None:
            tally.first_failure = index
        if self._states[ident] != _LIVE:  # a failed resize leaves the block live
            self._states[ident] = _REFUSED

    def _anomaly(self, kind: str, index: int) -> None:
        anomalies = self.tally.anomalies
        anomalies[kind] = anomalies.get(kind, 0) + 1
        self.tally.first_anomaly.setdefault(kind, index)


class _LiveBytes:
    """A target that only adds up the requested sizes of the live blocks."""

    def __init__(self, id_count: int) -> None:
        self.sizes = [0] * id_count
        self.live = self.peak = 0

    def alloc(self, ident: int, size: int) -> None:
        self.sizes[ident] = size
        self.live += size
        self.peak = max(self.peak, self.live)

    def free(self, ident: int) -> None:
        self.live -= self.sizes[ident]

    def realloc(self, ident: int, size: int) -> None:
        self.free(ident)
        self.alloc(ident, size)


def peak_live_bytes(trace: Trace) -> int:
    """The largest total of requested sizes live at any moment.  O(operations).

    >>> from .traces import parse_trace
    >>> peak_live_bytes(parse_trace("0\\n2\\n4\\n1\\na 0 16\\na 1 8\\nf 0\\nr 1 32\\n"))
    32
    """
    target = _LiveBytes(trace.id_count)
    TraceInterpreter(trace, target).run()
    return target.peak
