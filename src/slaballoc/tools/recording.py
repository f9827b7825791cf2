"""A replay recorded for the pictures: where every block went, and counters over time.

A trace is replayed through a :class:`~slaballoc.DynamicSlab` once.  Two
things are kept:

* the **placement log**: for every operation, the offset and size of the
  block it made (an allocation, or a resize's result), or that it freed one,
  or that it failed.  With the trace itself this is enough to rebuild the
  exact memory after any operation, so the page can draw and zoom to the
  byte, and say which operation made the block under the mouse.  The
  operations follow :mod:`.interpreter`'s rules; in the log, an id is empty
  after a free (of anything) and after a failed allocation (an ``a`` of a
  live id frees that block first), and a failed resize changes nothing;
* **frames**: the counters after at most ``max_frames`` evenly spaced
  operations (every operation when there are fewer): live bytes, the
  high-water mark, live and free blocks, and the free blocks by size
  (powers of two), as the allocator itself reports them.
"""

from __future__ import annotations

import base64
import sys
import zlib
from array import array
from dataclasses import dataclass, field
from typing import Any

from ..dynamic import DynamicSlab
from ..policies.blocks import Block
from ..sizes import round_up
from .interpreter import TraceInterpreter
from .replay import capacity_for
from .traces import ALLOC, FREE, Trace

__all__ = ["FAILED", "FREED", "HISTOGRAM_BUCKETS", "Frame", "Recording", "record_replay"]

HISTOGRAM_BUCKETS = 32  # free blocks of 2**k to 2**(k + 1) - 1 bytes
FREED = -1  # in the placement log: the operation freed its block
FAILED = -2  # in the placement log: the operation failed and changed nothing
_INT32 = (1 << 31) - 1  # the page reads the log as 32-bit integers


@dataclass
class Frame:
    """The counters after operation ``op`` (0-based)."""

    op: int
    live_bytes: int  # the requested sizes of the live blocks
    high_water: int
    peak_live: int
    live_blocks: int
    free_blocks: int  # in the whole arena, the space above the high-water mark included
    histogram: list[int]  # free blocks per power-of-two size bucket

    @property
    def utilization(self) -> float:
        return self.peak_live / self.high_water if self.high_water else 1.0


@dataclass
class Recording:
    """A whole recorded replay: the trace, where each operation put its block, the frames."""

    trace: Trace
    capacity: int
    alignment: int
    offsets: array[int]  # per operation: the block's offset, FREED or FAILED
    block_sizes: array[int]  # per operation: the block's size in the arena (0 if none)
    frames: list[Frame] = field(default_factory=list)

    @property
    def ops(self) -> int:
        return len(self.trace)

    @property
    def span(self) -> int:
        """The bytes the replay ever used: its final high-water mark (at least 1)."""
        return max((f.high_water for f in self.frames), default=0) or 1

    def peak_frame(self) -> Frame:
        """The first frame with the most live bytes."""
        return max(self.frames, key=lambda frame: (frame.live_bytes, -frame.op))

    def blocks_after(self, op: int) -> list[Block]:
        """The arena after operation ``op``: every block to the span, in address order.  O(n log n).

        Free blocks are the gaps between live ones, as the allocator coalesces them.
        """
        where: dict[int, tuple[int, int]] = {}
        kinds, ids = self.trace.kinds, self.trace.ids
        for index in range(op + 1):
            offset = self.offsets[index]
            if offset >= 0:
                where[ids[index]] = (offset, self.block_sizes[index])
            elif offset == FREED or kinds[index] == ALLOC:  # a failed ``a`` leaves its id empty
                where.pop(ids[index], None)
        blocks: list[Block] = []
        end = 0
        for offset, size in sorted(where.values()):
            if offset > end:
                blocks.append(Block(end, offset - end, False))
            blocks.append(Block(offset, size, True))
            end = offset + size
        if end < self.span:
            blocks.append(Block(end, self.span - end, False))
        return blocks

    def to_json(self) -> dict[str, Any]:
        """The recording as JSON data for the page.

        The trace and the placement log travel as one zlib-compressed, base64
        string: the kinds as bytes, then little-endian int32 columns (ids, sizes, offsets,
        and each block's size minus its aligned request, nearly always 0), which
        the browser inflates itself; the frames as plain arrays.
        """
        n = self.ops
        sizes, align = self.trace.sizes, self.alignment
        slack = array(
            "i",
            (
                block - round_up(max(size, 1), align) if block else 0
                for size, block in zip(sizes, self.block_sizes, strict=True)
            ),
        )
        columns = [array("i", self.trace.ids), array("i", sizes), array("i", self.offsets), slack]
        padding = bytes(-n % 4)  # the int32 columns start at a multiple of 4
        raw = self.trace.kinds + padding + b"".join(_little_endian(c) for c in columns)
        return {
            "trace": self.trace.name,
            "ops": n,
            "capacity": self.capacity,
            "alignment": align,
            "span": self.span,
            "log": base64.b64encode(zlib.compress(raw, 9)).decode("ascii"),
            "frames": {
                "op": [f.op for f in self.frames],
                "live": [f.live_bytes for f in self.frames],
                "highWater": [f.high_water for f in self.frames],
                "peak": [f.peak_live for f in self.frames],
                "liveBlocks": [f.live_blocks for f in self.frames],
                "freeBlocks": [f.free_blocks for f in self.frames],
                "histogram": [f.histogram for f in self.frames],
            },
        }


def _little_endian(column: array[int]) -> bytes:
    if sys.byteorder == "big":
        column = array(column.typecode, column)
        column.byteswap()
    return column.tobytes()


def record_replay(
    trace: Trace, *, capacity: int | None = None, alignment: int = 8, max_frames: int = 1500
) -> Recording:
    """Replay ``trace`` and record it; see the module docstring.  O(operations).

    Raises :class:`ValueError` when the arena would be too large for the page
    (2 GiB or more).

    >>> from slaballoc.tools.traces import parse_trace
    >>> recording = record_replay(parse_trace("0\\n2\\n3\\n1\\na 0 10\\na 1 20\\nf 0\\n"))
    >>> list(recording.offsets), list(recording.block_sizes)
    ([0, 16, -1], [16, 24, 0])
    >>> recording.blocks_after(2)
    [Block(offset=0, size=16, live=False), Block(offset=16, size=24, live=True)]
    """
    capacity = capacity_for(trace, alignment) if capacity is None else capacity
    if capacity > _INT32:
        raise ValueError(
            f"an arena of {capacity:,} bytes is too large to record for the page "
            f"(at most {_INT32:,}): replay a shorter trace or pass a smaller capacity"
        )
    recorder = _Recorder(DynamicSlab(capacity, alignment=alignment), trace.id_count)
    interpreter = TraceInterpreter(trace, recorder)
    tally = interpreter.tally
    n = len(trace)
    frames_wanted = min(n, max_frames)
    frame_ends = {(k + 1) * n // frames_wanted - 1 for k in range(frames_wanted)}
    offsets, block_sizes = array("i", bytes(4 * n)), array("i", bytes(4 * n))
    kinds = trace.kinds
    failed = 0
    frames: list[Frame] = []
    for index in interpreter.steps():
        if kinds[index] == FREE:
            offsets[index] = FREED  # a free of nothing too: the id is empty after it
        elif tally.failed != failed:
            failed = tally.failed
            offsets[index] = FAILED
        else:
            offsets[index], block_sizes[index] = recorder.offset, recorder.block_size
        if index in frame_ends:
            frames.append(recorder.frame(index))
    return Recording(trace, capacity, alignment, offsets, block_sizes, frames)


class _Recorder:
    """A :class:`~.interpreter.TraceTarget`: each id's view, and the counters the frames show.

    After each allocation or resize, :attr:`offset` and :attr:`block_size` say
    where its block went.
    """

    def __init__(self, slab: DynamicSlab, id_count: int) -> None:
        self.slab = slab
        self.views: dict[int, memoryview] = {}
        self.requested = [0] * id_count  # each live id's requested size
        self.live = self.peak = self.high_water = 0
        self.offset = self.block_size = 0
        # Bound once: _placed runs for nearly every operation, and a recording must not be
        # slower than the replay loop it replaced.
        self._offset_of, self._size_of = slab.offset_of, slab.policy.size_of

    def alloc(self, ident: int, size: int) -> None:
        self._placed(ident, self.slab.alloc(size or 1), size)  # malloc(0) is a unique block

    def free(self, ident: int) -> None:
        self.slab.free(self.views.pop(ident))
        self.live -= self.requested[ident]

    def realloc(self, ident: int, size: int) -> None:
        view = self.slab.realloc(self.views[ident], size or 1)
        self.live -= self.requested[ident]
        self._placed(ident, view, size)

    def _placed(self, ident: int, view: memoryview, size: int) -> None:
        self.views[ident] = view
        self.requested[ident] = size
        self.live = live = self.live + size
        if live > self.peak:  # noqa: PLR1730 - a comparison, not a call to max(): per operation
            self.peak = live
        self.offset = offset = self._offset_of(view)
        self.block_size = block_size = self._size_of(offset)
        if offset + block_size > self.high_water:  # noqa: PLR1730 - as above
            self.high_water = offset + block_size

    def frame(self, index: int) -> Frame:
        """The counters now, after operation ``index``."""
        free_sizes = self.slab.policy.free_sizes()
        histogram = [0] * HISTOGRAM_BUCKETS
        for size in free_sizes:
            histogram[min(size.bit_length() - 1, HISTOGRAM_BUCKETS - 1)] += 1
        return Frame(
            index, self.live, self.high_water, self.peak, len(self.slab), len(free_sizes), histogram
        )
