"""Allocation traces in the CS:APP malloclab ``.rep`` format.

A trace starts with four integers (a suggested heap size, the number of ids,
the number of operations, a weight), one per line, then one operation a line::

    a ID SIZE    allocate SIZE bytes and call the block ID
    r ID SIZE    resize block ID to SIZE bytes (an allocation if ID is not live)
    f ID         free block ID; ``f -1`` frees nothing

An id may be allocated again once it is freed.  A file may be gzip-compressed
(``.rep.gz``) and may start with a UTF-8 byte-order mark.

What is checked here is the *format*: a malformed line, a negative or
impossibly large number, or a header whose operation count disagrees with the
file raises :class:`TraceFormatError` naming the line and what is wrong with
it.  What a program *did* (freeing a block twice, freeing an id it never
allocated, allocating an id that is still live) is well-formed and is counted
as an anomaly when the trace is replayed (:mod:`.interpreter`).
"""

from __future__ import annotations

import gzip
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import SlabError

__all__ = [
    "ALLOC",
    "FREE",
    "MAX_SIZE",
    "REALLOC",
    "Trace",
    "TraceFormatError",
    "decode_trace",
    "parse_trace",
    "read_trace",
]

ALLOC, FREE, REALLOC = 0, 1, 2
_KINDS = {"a": ALLOC, "f": FREE, "r": REALLOC}
_LETTERS = "afr"
_HEADER = ("heap size", "number of ids", "number of operations", "weight")

#: The largest request a trace may make: 4 GiB, already more than a replay's
#: arena can hold in the memory of most machines.
MAX_SIZE = 1 << 32
#: Ids are indexes into per-id tables, so they must be dense: below the
#: number of operations (each id needs one to be allocated), or this many in a
#: small hand-written trace.
_SMALL_TRACE_IDS = 1 << 16
_GZIP_MAGIC = b"\x1f\x8b"


class TraceFormatError(SlabError, ValueError):
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
    id_count: int  # one more than the largest id: the size of a per-id table

    def __len__(self) -> int:
        return len(self.kinds)

    def max_size(self) -> int:
        """The largest single request."""
        return max(self.sizes, default=0)

    def operation(self, index: int) -> str:
        """Operation ``index`` (0-based) as the file writes it.

        >>> parse_trace("0\\n1\\n2\\n1\\na 0 16\\nf 0\\n").operation(0)
        'a 0 16'
        """
        kind, ident = self.kinds[index], self.ids[index]
        text = f"{_LETTERS[kind]} {ident}"
        return text if kind == FREE else f"{text} {self.sizes[index]}"


def read_trace(path: str | Path, name: str | None = None) -> Trace:
    """Parse the ``.rep`` or ``.rep.gz`` file at ``path``; ``name`` defaults to the file's.

    The name drops a ``.gz`` suffix: ``perl.rep.gz`` is the trace ``perl.rep``.
    """
    path = Path(path)
    return decode_trace(path.read_bytes(), name or path.name.removesuffix(".gz"))


def decode_trace(data: bytes, name: str) -> Trace:
    """Parse a trace from the bytes of a ``.rep`` file, gzip-compressed or not.  O(its size).

    >>> text = b"\\xef\\xbb\\xbf0\\n1\\n1\\n1\\na 0 8\\n"  # with a byte-order mark
    >>> len(decode_trace(gzip.compress(text), "t.rep")), len(decode_trace(text, "t.rep"))
    (1, 1)
    """
    if data.startswith(_GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise TraceFormatError(name, 1, f"not a readable gzip file ({error})") from None
    # ASCII in practice; "utf-8-sig" also accepts a byte-order mark, and a stray
    # byte becomes U+FFFD, which the line it is on then reports as malformed.
    return parse_trace(data.decode("utf-8-sig", errors="replace"), name=name)


def parse_trace(text: str, name: str = "<trace>") -> Trace:
    """Parse the text of a ``.rep`` trace.  O(number of lines).

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
    op_count, op_count_line = _header(nonblank, name)
    id_limit = max(op_count, _SMALL_TRACE_IDS)
    kinds = bytearray()
    ids, sizes = array("q"), array("q")
    for number, fields in nonblank:
        kind, ident, size = _operation(fields, name, number, id_limit)
        kinds.append(kind)
        ids.append(ident)
        sizes.append(size)
    if len(kinds) != op_count:
        raise TraceFormatError(
            name,
            op_count_line,
            f"the header promises {op_count:,} operations, the file has {len(kinds):,}",
        )
    return Trace(name, bytes(kinds), ids, sizes, max(ids, default=-1) + 1)


def _header(lines: Iterator[tuple[int, list[str]]], name: str) -> tuple[int, int]:
    """Read the four header lines; return the number of operations and its line."""
    header: list[int] = []
    number = 0
    for number, fields in lines:
        what = _HEADER[len(header)]
        if len(fields) != 1:
            raise TraceFormatError(
                name, number, f"the header line for the {what} must hold one number"
            )
        header.append(_integer(fields[0], name, number, what))
        if len(header) == 3:
            op_count, op_count_line = header[2], number
            if op_count < 0:
                raise TraceFormatError(name, number, f"the {what} {op_count} is negative")
        if len(header) == len(_HEADER):
            return op_count, op_count_line
    missing = _HEADER[len(header)]
    raise TraceFormatError(name, number + 1, f"the header ends early: no {missing}")


def _operation(fields: list[str], name: str, number: int, id_limit: int) -> tuple[int, int, int]:
    """One operation line, checked: its kind, id and size."""
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
    if ident >= id_limit:
        raise TraceFormatError(
            name,
            number,
            f"id {ident} is too large: ids number the blocks from 0 and must stay below "
            f"{id_limit:,} (the number of operations, or {_SMALL_TRACE_IDS:,} in a short trace)",
        )
    if size < 0:
        raise TraceFormatError(name, number, f"size {size} is negative")
    if size > MAX_SIZE:
        raise TraceFormatError(
            name, number, f"size {size:,} is larger than a replay can serve (at most 4 GiB)"
        )
    return kind, ident, size


def _integer(text: str, source: str, line: int, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise TraceFormatError(source, line, f"the {what} {text!r} is not an integer") from None
