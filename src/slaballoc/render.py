"""Pictures of memory: a text map for the terminal."""

from __future__ import annotations

from collections.abc import Sequence

from .policies.blocks import Block

__all__ = ["FREE", "LIVE", "MIXED", "block_list", "text_map"]

LIVE = "#"
FREE = "."
MIXED = ":"


def text_map(blocks: Sequence[Block], capacity: int, *, cells: int = 64) -> str:
    """Draw ``capacity`` bytes as ``cells`` characters, left to right.

    A cell is ``#`` when every byte in it is in a live block, ``.`` when every
    byte is free and ``:`` when it holds both.

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
            cell_start = -(-cell * capacity // cells)
            cell_end = -(-(cell + 1) * capacity // cells)
            live_bytes[cell] += min(block.end, cell_end) - max(block.offset, cell_start)
    row = "".join(_cell_mark(used, capacity, cells, cell) for cell, used in enumerate(live_bytes))
    live = sum(1 for block in blocks if block.live)
    used = sum(block.size for block in blocks if block.live)
    noun = "block" if live == 1 else "blocks"
    return f"[{row}]  {used}/{capacity} B used in {live} live {noun}, {len(blocks) - live} free"


def _cell_mark(used: int, capacity: int, cells: int, cell: int) -> str:
    size = -(-(cell + 1) * capacity // cells) - -(-cell * capacity // cells)
    if used == 0:
        return FREE
    return LIVE if used >= size else MIXED


def block_list(blocks: Sequence[Block], *, limit: int = 12) -> str:
    """List blocks as ``offset+size`` with ``#`` for live and ``.`` for free.

    >>> block_list([Block(0, 16, True), Block(16, 240, False)])
    '#0+16 .16+240'
    """
    shown = " ".join(f"{LIVE if b.live else FREE}{b.offset}+{b.size}" for b in blocks[:limit])
    hidden = len(blocks) - limit
    return f"{shown} ... ({hidden} more)" if hidden > 0 else shown
