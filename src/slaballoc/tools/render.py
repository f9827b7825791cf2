"""Pictures of memory: a text map for the terminal and an SVG drawing.

Both take the blocks an allocator reports (``allocator.blocks()``: every
block, live or free, in address order) and its capacity, so they draw any
allocator, and the replay page draws the same way.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TextIO
from xml.sax.saxutils import escape

from ..policies.blocks import Block

__all__ = ["FREE", "LIVE", "MIXED", "block_list", "svg_map", "text_map", "use_colour"]

LIVE = "#"
FREE = "."
MIXED = ":"

_ANSI = {LIVE: "\x1b[42;30m", MIXED: "\x1b[43;30m", FREE: "\x1b[2m"}
_RESET = "\x1b[0m"

LIVE_FILL = "#3a7d44"
FREE_FILL = "#e8e8e8"
LARGEST_STROKE = "#c0392b"


def use_colour(stream: TextIO = sys.stdout) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def text_map(
    blocks: Sequence[Block], capacity: int, *, cells: int = 64, colour: bool = False
) -> str:
    """Draw ``capacity`` bytes as ``cells`` characters, left to right.

    A cell is ``#`` when every byte in it is in a live block, ``.`` when every
    byte is free and ``:`` when it holds both, so the map reads without colour;
    ``colour=True`` adds ANSI colours on top.

    >>> print(text_map([Block(0, 32, True), Block(32, 96, False)], 128, cells=8))
    [##......]  32/128 B used in 1 live block, 1 free
    """
    if capacity <= 0:
        return "[]  empty"
    cells = max(1, min(cells, capacity))
    live_bytes = [0] * cells
    for block in blocks:
        if not block.live:
            continue
        first = block.offset * cells // capacity
        last = (block.end - 1) * cells // capacity
        for cell in range(first, last + 1):
            start, end = _cell_span(cell, capacity, cells)
            live_bytes[cell] += min(block.end, end) - max(block.offset, start)
    marks = [_cell_mark(used, _cell_span(c, capacity, cells)) for c, used in enumerate(live_bytes)]
    row = "".join(f"{_ANSI[m]}{m}{_RESET}" for m in marks) if colour else "".join(marks)
    live = sum(1 for block in blocks if block.live)
    used = sum(block.size for block in blocks if block.live)
    noun = "block" if live == 1 else "blocks"
    return f"[{row}]  {used}/{capacity} B used in {live} live {noun}, {len(blocks) - live} free"


def _cell_span(cell: int, capacity: int, cells: int) -> tuple[int, int]:
    return -(-cell * capacity // cells), -(-(cell + 1) * capacity // cells)


def _cell_mark(used: int, span: tuple[int, int]) -> str:
    if used == 0:
        return FREE
    return LIVE if used >= span[1] - span[0] else MIXED


def block_list(blocks: Sequence[Block], *, limit: int = 12) -> str:
    """List blocks as ``offset+size`` with ``#`` for live and ``.`` for free.

    >>> block_list([Block(0, 16, True), Block(16, 240, False)])
    '#0+16 .16+240'
    """
    shown = " ".join(f"{LIVE if b.live else FREE}{b.offset}+{b.size}" for b in blocks[:limit])
    hidden = len(blocks) - limit
    return f"{shown} ... ({hidden} more)" if hidden > 0 else shown


def svg_map(
    blocks: Sequence[Block],
    capacity: int,
    *,
    title: str = "",
    width: int = 960,
    row_bytes: int | None = None,
) -> str:
    """An SVG drawing of the memory: every block at its offset, to scale.

    The memory is laid out in rows of ``row_bytes`` (by default a quarter of
    the capacity, at least 64), left to right, top to bottom, like text.  Live
    blocks are filled green, free blocks light grey; each block wide enough
    carries its size, and the largest free block is outlined in red.

    >>> svg = svg_map([Block(0, 64, True), Block(64, 192, False)], 256, title="demo")
    >>> svg.startswith("<svg") and "largest free: 192 B" in svg
    True
    """
    capacity = max(capacity, 1)
    row_bytes = row_bytes or max(64, -(-capacity // 4))
    rows = -(-capacity // row_bytes)
    margin, row_height, gap, top = 16, 44, 10, 56
    scale = (width - 2 * margin) / row_bytes
    height = top + rows * (row_height + gap) + 40
    free_blocks = [b for b in blocks if not b.live]
    largest = max(free_blocks, key=lambda b: (b.size, -b.offset), default=None)
    live = [b for b in blocks if b.live]
    used = sum(b.size for b in live)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{margin}" y="22" font-size="16" font-weight="bold">{escape(title)}</text>',
        f'<text x="{margin}" y="42">{used:,} of {capacity:,} bytes live in {len(live)} blocks, '
        f"{len(blocks) - len(live)} free blocks; {row_bytes:,} bytes per row</text>",
    ]
    for block in blocks:
        pieces = _row_pieces(block.offset, block.size, row_bytes)
        labelled = max(pieces, key=lambda piece: piece[1])  # one label, on the widest piece
        for offset, size in pieces:
            row, column = divmod(offset, row_bytes)
            x, y = margin + column * scale, top + row * (row_height + gap)
            w = max(size * scale, 0.5)
            fill = LIVE_FILL if block.live else FREE_FILL
            kind = "live" if block.live else "free"
            parts.append(
                f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{row_height}" fill="{fill}" '
                f'stroke="white" stroke-width="1"><title>{kind} block at {block.offset:,}, '
                f"{block.size:,} B</title></rect>"
            )
            label = f"{block.size:,}"
            if (offset, size) == labelled and w > 7 * len(label) + 4:
                colour = "white" if block.live else "#333"
                parts.append(
                    f'<text x="{x + w / 2:.2f}" y="{y + row_height / 2 + 4}" fill="{colour}" '
                    f'text-anchor="middle">{label}</text>'
                )
            if block is largest:
                parts.append(
                    f'<rect x="{x + 1:.2f}" y="{y + 1}" width="{max(w - 2, 0.5):.2f}" '
                    f'height="{row_height - 2}" fill="none" stroke="{LARGEST_STROKE}" '
                    'stroke-width="2" stroke-dasharray="6 3"/>'
                )
    legend_y = height - 16
    parts += [
        f'<rect x="{margin}" y="{legend_y - 10}" width="12" height="12" fill="{LIVE_FILL}"/>',
        f'<text x="{margin + 18}" y="{legend_y}">live</text>',
        f'<rect x="{margin + 60}" y="{legend_y - 10}" width="12" height="12" fill="{FREE_FILL}"/>',
        f'<text x="{margin + 78}" y="{legend_y}">free</text>',
        f'<rect x="{margin + 120}" y="{legend_y - 10}" width="12" height="12" fill="none" '
        f'stroke="{LARGEST_STROKE}" stroke-width="2" stroke-dasharray="4 2"/>',
        f'<text x="{margin + 138}" y="{legend_y}">largest free: '
        f"{largest.size if largest else 0:,} B</text>",
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def _row_pieces(offset: int, size: int, row_bytes: int) -> list[tuple[int, int]]:
    """Cut ``[offset, offset + size)`` where it crosses row boundaries."""
    pieces = []
    end = offset + size
    while offset < end:
        row_end = (offset // row_bytes + 1) * row_bytes
        pieces.append((offset, min(end, row_end) - offset))
        offset = min(end, row_end)
    return pieces
