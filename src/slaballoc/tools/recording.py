"""A replay recorded as frames: what the plots and the animated page draw.

A trace of ``n`` operations is replayed through a :class:`~slaballoc.DynamicSlab`
and sampled into at most ``max_frames`` frames, evenly spaced: with fewer
operations than that every operation is a frame, otherwise each frame batches
the ``n / max_frames`` operations since the one before.  A frame holds the
counters after its last operation, the free blocks by size (powers of two),
and the memory map as ``cells`` buckets of the span the replay ever used
(its high-water mark), each the fraction of its bytes in live blocks.  When
the arena holds few blocks, the frame also lists them exactly, so that a
learner sees every split and merge.
"""

from __future__ import annotations

import base64
from array import array
from dataclasses import dataclass, field
from typing import Any

from ..dynamic import DynamicSlab
from ..sizes import round_up
from .replay import capacity_for
from .traces import ALLOC, FREE, Trace

__all__ = ["Frame", "Recording", "record_replay"]

HISTOGRAM_BUCKETS = 32  # free blocks of 2**k to 2**(k + 1) - 1 bytes
EXACT_BLOCKS_UP_TO = 400


@dataclass
class Frame:
    """The state after operation ``op`` (0-based)."""

    op: int
    text: str  # the operation, as the trace writes it
    live_bytes: int
    high_water: int
    peak_live: int
    live_blocks: int
    free_blocks: int
    histogram: list[int]  # free blocks per power-of-two size bucket
    blocks: list[tuple[int, int, bool]] | None  # (offset, size, live) when few
    cells: bytes = b""  # live fraction of each cell, 0 to 255

    @property
    def utilization(self) -> float:
        return self.peak_live / self.high_water if self.high_water else 1.0


@dataclass
class Recording:
    """A whole recorded replay."""

    trace: str
    ops: int
    capacity: int
    alignment: int
    span: int  # the bytes the map covers: the final high-water mark
    cells: int
    frames: list[Frame] = field(default_factory=list)

    def peak_frame(self) -> Frame:
        """The first frame with the most live bytes."""
        return max(self.frames, key=lambda frame: (frame.live_bytes, -frame.op))

    def to_json(self) -> dict[str, Any]:
        """The recording as plain JSON data (cells base64-encoded)."""
        return {
            "trace": self.trace,
            "ops": self.ops,
            "capacity": self.capacity,
            "alignment": self.alignment,
            "span": self.span,
            "cells": self.cells,
            "frames": [
                {
                    "op": f.op,
                    "text": f.text,
                    "live": f.live_bytes,
                    "highWater": f.high_water,
                    "peak": f.peak_live,
                    "liveBlocks": f.live_blocks,
                    "freeBlocks": f.free_blocks,
                    "histogram": f.histogram,
                    "blocks": f.blocks,
                    "cells": base64.b64encode(f.cells).decode("ascii"),
                }
                for f in self.frames
            ],
        }


def record_replay(
    trace: Trace,
    *,
    capacity: int | None = None,
    alignment: int = 8,
    max_frames: int = 1500,
    cells: int = 720,
) -> Recording:
    """Replay ``trace`` and record it as frames; see the module docstring."""
    capacity = capacity_for(trace, alignment) if capacity is None else capacity
    slab = DynamicSlab(capacity, alignment=alignment)
    n = len(trace)
    last_op_of_frame = {(k + 1) * n // min(n, max_frames) - 1 for k in range(min(n, max_frames))}
    # Block changes, in order: +size when a block appears, -size when it goes.
    changes_at, changes_size, frame_change_counts = array("q"), array("q"), []
    views: list[memoryview | None] = [None] * trace.id_count
    requested = [0] * trace.id_count
    live = peak = high_water = 0
    frames: list[Frame] = []

    def gone(view: memoryview) -> None:
        changes_at.append(slab.offset_of(view))
        changes_size.append(-round_up(len(view), alignment))

    def came(view: memoryview) -> None:
        nonlocal high_water
        offset, size = slab.offset_of(view), round_up(len(view), alignment)
        changes_at.append(offset)
        changes_size.append(size)
        high_water = max(high_water, offset + size)

    for index, (kind, ident, size) in enumerate(
        zip(trace.kinds, trace.ids, trace.sizes, strict=True)
    ):
        old = views[ident] if ident >= 0 else None
        try:
            if kind == FREE:
                if old is not None:
                    gone(old)
                    slab.free(old)
                    views[ident] = None
                    live -= requested[ident]
            else:
                if old is not None and kind != ALLOC:
                    gone(old)
                    new = slab.realloc(old, size or 1)
                    live -= requested[ident]
                else:
                    new = slab.alloc(size or 1)
                came(new)
                views[ident], requested[ident] = new, size
                live += size
                peak = max(peak, live)
        except MemoryError:
            pass  # a failed request changes nothing; the audit counts failures
        if index in last_op_of_frame:
            frame_change_counts.append(len(changes_at))
            frames.append(_frame(index, trace, slab, live=live, high_water=high_water, peak=peak))
    span = max(high_water, 1)
    _fill_cells(frames, frame_change_counts, (changes_at, changes_size), span=span, cells=cells)
    return Recording(trace.name, n, capacity, alignment, span, cells, frames)


def _frame(
    index: int, trace: Trace, slab: DynamicSlab, *, live: int, high_water: int, peak: int
) -> Frame:
    free_sizes = slab.policy.free_sizes()
    live_blocks = len(slab)
    histogram = [0] * HISTOGRAM_BUCKETS
    for size in free_sizes:
        histogram[min(size.bit_length() - 1, HISTOGRAM_BUCKETS - 1)] += 1
    exact = None
    if live_blocks + len(free_sizes) <= EXACT_BLOCKS_UP_TO:
        exact = [(b.offset, b.size, b.live) for b in slab.blocks() if b.offset < high_water]
    kind, ident, size = trace.kinds[index], trace.ids[index], trace.sizes[index]
    text = f"f {ident}" if kind == FREE else f"{'a' if kind == ALLOC else 'r'} {ident} {size}"
    return Frame(
        index, text, live, high_water, peak, live_blocks, len(free_sizes), histogram, exact
    )


def _fill_cells(
    frames: list[Frame],
    change_counts: list[int],
    changes: tuple[array[int], array[int]],
    *,
    span: int,
    cells: int,
) -> None:
    """Give each frame its map, applying the block changes up to it in order."""
    changes_at, changes_size = changes
    live_bytes = [0] * cells
    cell_bytes = [_cell_end(c, span, cells) - _cell_end(c - 1, span, cells) for c in range(cells)]
    applied = 0
    for frame, upto in zip(frames, change_counts, strict=True):
        for position in range(applied, upto):
            offset, size = changes_at[position], changes_size[position]
            sign, size = (1, size) if size > 0 else (-1, -size)
            end = offset + size
            cell = offset * cells // span
            while cell < cells and _cell_end(cell - 1, span, cells) < end:
                cell_start = _cell_end(cell - 1, span, cells)
                cell_stop = _cell_end(cell, span, cells)
                live_bytes[cell] += sign * (min(end, cell_stop) - max(offset, cell_start))
                cell += 1
        applied = upto
        frame.cells = bytes(
            min(255, live * 255 // total) if total else 0
            for live, total in zip(live_bytes, cell_bytes, strict=True)
        )


def _cell_end(cell: int, span: int, cells: int) -> int:
    """The first byte after ``cell`` (cell -1 ends at 0)."""
    return -(-(cell + 1) * span // cells)
