"""Allocation traces in the CS:APP malloclab ``.rep`` format.

A trace starts with four integers (a suggested heap size, the number of ids,
the number of operations, a weight), one per line, then one operation a line::

    a ID SIZE    allocate SIZE bytes and call the block ID
    r ID SIZE    resize block ID to SIZE bytes (an allocation if ID is not live)
    f ID         free block ID; ``f -1`` frees nothing

An id may be allocated again once it is freed.  A malformed line raises
:class:`TraceFormatError` naming the line and what is wrong with it.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ALLOC", "FREE", "REALLOC", "Trace", "TraceFormatError", "parse_trace", "read_trace"]

ALLOC, FREE, REALLOC = 0, 1, 2
_KINDS = {"a": ALLOC, "f": FREE, "r": REALLOC}
_HEADER = ("heap size", "number of ids", "number of operations", "weight")


class TraceFormatError(ValueError):
    """A trace file that does not follow the ``.rep`` format."""

    def __init__(self, source: str, line: int, problem: str) -> None:
        super().__init__(f"{source}, line {line}: {problem}")
        self.source = source
        self.line = line
        self.problem = problem


@dataclass(frozen=True)
class Trace:
    """A parsed trace: three parallel arrays, one entry per operation."""

    name: str
    kinds: bytes  # ALLOC, FREE or REALLOC
    ids: array[int]  # the block id (-1 for ``f -1``)
    sizes: array[int]  # bytes for ALLOC and REALLOC, 0 for FREE
    id_count: int

    def __len__(self) -> int:
        return len(self.kinds)

    def peak_live_bytes(self) -> int:
        """The largest total of requested sizes live at any moment."""
        live: dict[int, int] = {}
        total = peak = 0
        for kind, ident, size in zip(self.kinds, self.ids, self.sizes, strict=True):
            if kind == FREE:
                total -= live.pop(ident, 0)
                continue
            total += size - live.get(ident, 0)
            live[ident] = size
            peak = max(peak, total)
        return peak

    def max_size(self) -> int:
        """The largest single request."""
        return max(self.sizes, default=0)


def read_trace(path: str | Path) -> Trace:
    """Parse the ``.rep`` file at ``path``."""
    path = Path(path)
    return parse_trace(path.read_text(encoding="ascii", errors="replace"), name=path.name)


def parse_trace(text: str, name: str = "<trace>") -> Trace:
    """Parse the text of a ``.rep`` trace.

    >>> trace = parse_trace("0\\n2\\n4\\n1\\na 0 16\\na 1 8\\nr 0 32\\nf 0\\n")
    >>> len(trace), trace.id_count, list(trace.sizes)
    (4, 2, [16, 8, 32, 0])
    >>> parse_trace("0\\n1\\n1\\n1\\nx 0 16\\n", name="bad.rep")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    slaballoc.tools.traces.TraceFormatError: bad.rep, line 5: unknown operation 'x' (expected ...)
    """
    numbered = ((n, line.split()) for n, line in enumerate(text.splitlines(), start=1))
    nonblank = ((n, fields) for n, fields in numbered if fields)
    header: list[int] = []
    number = 0
    for number, fields in nonblank:
        if len(fields) != 1:
            raise TraceFormatError(
                name, number, f"the header line for the {_HEADER[len(header)]} must hold one number"
            )
        header.append(_integer(fields[0], name, number, _HEADER[len(header)]))
        if len(header) == len(_HEADER):
            break
    else:
        missing = _HEADER[len(header)]
        raise TraceFormatError(name, number + 1, f"the header ends early: no {missing}")
    op_count = header[2]
    kinds = bytearray()
    ids, sizes = array("q"), array("q")
    for number, fields in nonblank:
        kind = _KINDS.get(fields[0])
        if kind is None:
            raise TraceFormatError(
                name, number, f"unknown operation {fields[0]!r} (expected a, f or r)"
            )
        wanted = 2 if kind == FREE else 3
        if len(fields) != wanted:
            raise TraceFormatError(
                name, number, f"'{fields[0]}' takes {wanted - 1} numbers, got {len(fields) - 1}"
            )
        ident = _integer(fields[1], name, number, "id")
        size = 0 if kind == FREE else _integer(fields[2], name, number, "size")
        if ident < -1 or (ident == -1 and kind != FREE):
            raise TraceFormatError(name, number, f"id {ident} is negative")
        if size < 0:
            raise TraceFormatError(name, number, f"size {size} is negative")
        kinds.append(kind)
        ids.append(ident)
        sizes.append(size)
    if len(kinds) != op_count:
        raise TraceFormatError(
            name, number, f"the header promises {op_count} operations, the file has {len(kinds)}"
        )
    return Trace(name, bytes(kinds), ids, sizes, max(header[1], max(ids, default=-1) + 1))


def _integer(text: str, source: str, line: int, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise TraceFormatError(source, line, f"the {what} {text!r} is not an integer") from None
