"""Pictures of memory: text maps for the terminal and SVG drawings.

Two kinds of picture, each in text and in SVG:

* **live and free** (:func:`text_map`, :func:`svg_map`, :func:`svg_map_of`):
  the blocks an allocator reports (``allocator.blocks()``: every block, live
  or free, in address order) and its capacity, so they draw any allocator;
* **by category** (:func:`category_text_map`, :func:`category_svg_map`): any
  list of :class:`Region` (offset, size, category, label), for pictures where
  the question is *whose* memory it is: the owner process of a shared heap's
  blocks, the size class or the state (full, partial, empty) of a slab.

Colours come from :mod:`.palette`, the same as the plots and the replay page.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO
from xml.sax.saxutils import escape

from ..policies.blocks import Block
from . import palette

__all__ = [
    "FREE",
    "LIVE",
    "MIXED",
    "Region",
    "block_list",
    "category_svg_map",
    "category_text_map",
    "next_slot",
    "share_grid",
    "svg_map",
    "svg_map_of",
    "text_map",
    "use_colour",
]

LIVE = "#"
FREE = "."
MIXED = ":"

_ANSI = {LIVE: palette.ANSI["live"], MIXED: palette.ANSI["partial"], FREE: palette.ANSI["free"]}
_RESET = "\x1b[0m"


def use_colour(stream: TextIO = sys.stdout) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    return hasattr(stream, "isatty") and stream.isatty()


# -- text -------------------------------------------------------------------------------------


def text_map(
    blocks: Sequence[Block], capacity: int, *, cells: int = 64, colour: bool = False
) -> str:
    """Draw ``capacity`` bytes as ``cells`` characters, left to right.

    A cell is ``#`` when every byte in it is in a live block, ``.`` when every
    byte is free and ``:`` when it holds both, so the map reads without colour;
    ``colour=True`` adds ANSI colours on top.  O(cells + blocks).

    >>> print(text_map([Block(0, 32, True), Block(32, 96, False)], 128, cells=8))
    [##......]  32/128 B used in 1 live block, 1 free
    """
    if capacity <= 0:
        return "[]  empty"
    cells = max(1, min(cells, capacity))
    live_bytes = [0] * cells
    for block in blocks:
        if block.live:
            for cell, covered in _cells_covered(block.offset, block.size, capacity, cells):
                live_bytes[cell] += covered
    marks = [_cell_mark(used, _cell_span(c, capacity, cells)) for c, used in enumerate(live_bytes)]
    row = "".join(f"{_ANSI[m]}{m}{_RESET}" for m in marks) if colour else "".join(marks)
    live = sum(1 for block in blocks if block.live)
    used = sum(block.size for block in blocks if block.live)
    noun = "block" if live == 1 else "blocks"
    return f"[{row}]  {used}/{capacity} B used in {live} live {noun}, {len(blocks) - live} free"


def _cell_span(cell: int, capacity: int, cells: int) -> tuple[int, int]:
    return -(-cell * capacity // cells), -(-(cell + 1) * capacity // cells)


def _cells_covered(offset: int, size: int, capacity: int, cells: int) -> Iterator[tuple[int, int]]:
    """The cells ``[offset, offset + size)`` touches, and how many of its bytes fall in each."""
    end = offset + size
    for cell in range(
        offset * cells // capacity, min(cells - 1, (end - 1) * cells // capacity) + 1
    ):
        start, stop = _cell_span(cell, capacity, cells)
        yield cell, min(end, stop) - max(offset, start)


def _cell_mark(used: int, span: tuple[int, int]) -> str:
    if used == 0:
        return FREE
    return LIVE if used >= span[1] - span[0] else MIXED


def share_grid(
    blocks: Sequence[Block], *, cell_bytes: int, columns: int, rows: int
) -> list[list[float]]:
    """Memory in two dimensions: the share of each cell's bytes that is live.

    Cell ``(row, column)`` holds bytes ``[k * cell_bytes, (k + 1) * cell_bytes)``
    with ``k = row * columns + column``: rows of the arena read like text.
    Bytes past the last cell are left out.  O(blocks + cells).

    >>> share_grid([Block(0, 6, True), Block(6, 10, False)], cell_bytes=4, columns=2, rows=2)
    [[1.0, 0.5], [0.0, 0.0]]
    """
    cells = columns * rows
    live = [0] * cells
    for block in blocks:
        if not block.live:
            continue
        first, last = block.offset // cell_bytes, min(cells - 1, (block.end - 1) // cell_bytes)
        for cell in range(first, last + 1):
            live[cell] += min(block.end, (cell + 1) * cell_bytes) - max(
                block.offset, cell * cell_bytes
            )
    return [[live[r * columns + c] / cell_bytes for c in range(columns)] for r in range(rows)]


def block_list(blocks: Sequence[Block], *, limit: int = 12) -> str:
    """List blocks as ``offset+size`` with ``#`` for live and ``.`` for free.

    >>> block_list([Block(0, 16, True), Block(16, 240, False)])
    '#0+16 .16+240'
    """
    shown = " ".join(f"{LIVE if b.live else FREE}{b.offset}+{b.size}" for b in blocks[:limit])
    hidden = len(blocks) - limit
    return f"{shown} ... ({hidden} more)" if hidden > 0 else shown


@dataclass(frozen=True)
class Region:
    """A stretch of memory and what it belongs to, for the pictures by category.

    ``category`` is who or what holds it (``"pid 4242"``, ``"64 B class"``,
    ``"partial"``); ``None`` means free.  ``label`` is optional text drawn on
    it when it is wide enough (``"block 7"``, ``"slab 3"``).
    """

    offset: int
    size: int
    category: str | None
    label: str = ""

    @property
    def end(self) -> int:
        return self.offset + self.size


def _categories(regions: Sequence[Region], given: Sequence[str] | None) -> list[str]:
    """The categories in a stable order: ``given`` first, then as they appear."""
    order = list(given or [])
    for region in regions:
        if region.category is not None and region.category not in order:
            order.append(region.category)
    return order


def category_text_map(
    regions: Sequence[Region],
    capacity: int,
    *,
    cells: int = 64,
    colour: bool = False,
    categories: Sequence[str] | None = None,
    ansi: Mapping[str, str] | None = None,
    unit: str | Mapping[str, str] = "block",
) -> str:
    """Draw memory by category: a letter per cell, then a key.  O(cells + regions).

    Each cell shows the category holding most of its bytes: ``A`` for the
    first category, ``B`` for the second and so on (``categories`` fixes the
    order; otherwise it is the order of first appearance), in lower case when
    part of the cell is free, ``.`` when all of it is free.  ``colour=True``
    adds a background colour per category (:data:`palette.ANSI_OWNERS`, unless
    ``ansi`` names them, e.g. :data:`palette.ANSI_SLAB_STATES`).
    The key counts regions as ``unit`` (``"block"``; ``"slab"`` for a slab map),
    or as the unit a mapping gives each category (``"block"`` when it has none).

    >>> regions = [Region(0, 64, "pid 10"), Region(64, 64, None), Region(128, 32, "pid 11")]
    >>> print(category_text_map(regions, 256, cells=8))
    [AA..B...]  A = pid 10: 1 block, 64 B; B = pid 11: 1 block, 32 B; . = free: 160 B
    """
    if capacity <= 0:
        return "[]  empty"
    order = _categories(regions, categories)
    cells = max(1, min(cells, capacity))
    held: list[dict[int, int]] = [{} for _ in range(cells)]
    for region in regions:
        if region.category is None:
            continue
        index = order.index(region.category)
        for cell, covered in _cells_covered(region.offset, region.size, capacity, cells):
            held[cell][index] = held[cell].get(index, 0) + covered
    marks = []
    for cell, owners in enumerate(held):
        if not owners:
            marks.append(FREE if not colour else f"{palette.ANSI['free']}{FREE}{_RESET}")
            continue
        index = max(owners, key=lambda k: (owners[k], -k))
        start, stop = _cell_span(cell, capacity, cells)
        letter = _letter(index)
        letter = letter if sum(owners.values()) >= stop - start else letter.lower()
        if colour:
            owner = palette.ANSI_OWNERS[index % len(palette.ANSI_OWNERS)]
            letter = f"{(ansi or {}).get(order[index], owner)}{letter}{_RESET}"
        marks.append(letter)
    key = [
        f"{_letter(index)} = {_key_entry(category, regions, unit)}"
        for index, category in enumerate(order)
    ]
    free = capacity - sum(r.size for r in regions if r.category is not None)
    key.append(f"{FREE} = free: {free:,} B")
    return f"[{''.join(marks)}]  " + "; ".join(key)


def _key_entry(category: str, regions: Sequence[Region], unit: str | Mapping[str, str]) -> str:
    """``"pid 7: 2 blocks, 128 B"``: a category, its regions counted in its unit, its bytes."""
    mine = [r for r in regions if r.category == category]
    noun = unit if isinstance(unit, str) else unit.get(category, "block")
    plural = "" if len(mine) == 1 else "s"
    return f"{category}: {len(mine)} {noun}{plural}, {sum(r.size for r in mine):,} B"


def _letter(index: int) -> str:
    return chr(ord("A") + index % 26)


# -- SVG --------------------------------------------------------------------------------------

_MARGIN_LEFT, _MARGIN_RIGHT, _TOP = 76, 16, 58
_ROW_HEIGHT, _TICK_BAND, _ROW_GAP = 40, 18, 8


@dataclass(frozen=True)
class _Piece:
    """One row's part of a region: a region that crosses a row's end is cut into pieces."""

    region: Region
    offset: int
    size: int
    first: bool  # the region starts here
    last: bool  # the region ends here


def _pieces(region: Region, row_bytes: int) -> list[_Piece]:
    bounds = []
    offset = region.offset
    while offset < region.end:
        stop = min(region.end, (offset // row_bytes + 1) * row_bytes)
        bounds.append((offset, stop - offset))
        offset = stop
    return [_Piece(region, o, s, k == 0, k == len(bounds) - 1) for k, (o, s) in enumerate(bounds)]


class _Canvas:
    """The rows of an SVG memory map: where each offset is drawn."""

    def __init__(
        self,
        capacity: int,
        width: int,
        row_bytes: int | None,
        legend: Sequence[tuple[str, str, bool]] = (),
    ) -> None:
        self.capacity = max(capacity, 1)
        self.row_bytes = row_bytes or max(64, -(-self.capacity // 4))
        self.rows = -(-self.capacity // self.row_bytes)
        self.width = width
        self.scale = (width - _MARGIN_LEFT - _MARGIN_RIGHT) / self.row_bytes
        self.legend_lines = 1 + max((line for _, line in _legend_places(legend, width)), default=0)
        self.height = (
            _TOP + self.rows * (_ROW_HEIGHT + _TICK_BAND + _ROW_GAP) + 22 + 18 * self.legend_lines
        )

    def x(self, offset: int) -> float:
        return _MARGIN_LEFT + offset % self.row_bytes * self.scale

    def y(self, offset: int) -> int:
        return _TOP + offset // self.row_bytes * (_ROW_HEIGHT + _TICK_BAND + _ROW_GAP)

    def start(self, title: str, summary: str) -> list[str]:
        w, h = self.width, self.height
        return [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
            f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">',
            f'<rect width="{w}" height="{h}" fill="white"/>',
            f'<text x="16" y="22" font-size="16" font-weight="bold">{escape(title)}</text>',
            f'<text x="16" y="42">{escape(summary)}</text>',
        ]

    def ticks(self) -> list[str]:
        """Each row's first offset on the left, and offset ticks under every row."""
        step = 1 << max(0, (self.row_bytes // 8).bit_length() - 1)  # a power of two, ~8 a row
        parts = []
        for row in range(self.rows):
            first = row * self.row_bytes
            y = self.y(first)
            parts.append(
                f'<text x="{_MARGIN_LEFT - 6}" y="{y + _ROW_HEIGHT / 2 + 4}" '
                f'text-anchor="end">{first:,}</text>'
            )
            for offset in range(first, min(first + self.row_bytes, self.capacity) + 1, step):
                x = _MARGIN_LEFT + (offset - first) * self.scale
                base = y + _ROW_HEIGHT
                parts.append(
                    f'<line x1="{x:.2f}" y1="{base}" x2="{x:.2f}" y2="{base + 4}" stroke="#555"/>'
                )
                if offset > first:
                    parts.append(
                        f'<text x="{x:.2f}" y="{base + 15}" font-size="10" fill="#555" '
                        f'text-anchor="middle">{offset:,}</text>'
                    )
        return parts

    def boxes(self, region: Region) -> Iterator[tuple[_Piece, float, int, float]]:
        """Each row's piece of ``region`` with its box: left edge, top and width (at least 0.5)."""
        for piece in _pieces(region, self.row_bytes):
            yield (
                piece,
                self.x(piece.offset),
                self.y(piece.offset),
                max(piece.size * self.scale, 0.5),
            )

    def region(self, region: Region, fill: str, tooltip: str) -> list[str]:
        """A region, cut where it crosses rows: each piece labelled, continuations marked."""
        parts = []
        text_colour = palette.text_on(fill)
        label = region.label or f"{region.size:,}"
        for piece, x, y, w in self.boxes(region):
            more = "" if piece.first and piece.last else " (drawn across rows)"
            parts.append(
                f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{_ROW_HEIGHT}" fill="{fill}" '
                f'stroke="white" stroke-width="1"><title>{escape(tooltip)}{more}</title></rect>'
            )
            # A cut edge: dashed, so the two pieces read as one block, not two.
            if not piece.last:
                parts.append(_cut(x + w, y, text_colour))
            if not piece.first:
                parts.append(_cut(x, y, text_colour))
            # A piece that goes on says so (→); one that continues from the row above, too (↪).
            text = ("" if piece.first else "\u21aa ") + label + ("" if piece.last else " \u2192")
            # The label in normal type where it fits, in small type where only that fits.
            size = 12 if w > 7 * len(text) + 6 else 9 if w > 5.2 * len(text) + 2 else 0
            if size:
                parts.append(
                    f'<text x="{x + w / 2:.2f}" y="{y + _ROW_HEIGHT / 2 + 4}" font-size="{size}" '
                    f'fill="{text_colour}" text-anchor="middle">{escape(text)}</text>'
                )
        return parts

    def outline(self, region: Region, colour: str, label: str) -> list[str]:
        parts = []
        for _, x, y, w in self.boxes(region):
            parts.append(
                f'<rect x="{x + 1.5:.2f}" y="{y + 1.5}" width="{max(w - 3, 0.5):.2f}" '
                f'height="{_ROW_HEIGHT - 3}" fill="none" stroke="{colour}" stroke-width="3" '
                f'stroke-dasharray="6 3"><title>{escape(label)}</title></rect>'
            )
        return parts

    def legend(self, entries: Sequence[tuple[str, str, bool]]) -> list[str]:
        """Swatches along the bottom, wrapped into lines: (colour, text, outlined)."""
        parts = []
        for (x, line), (colour, text, outlined) in zip(
            _legend_places(entries, self.width), entries, strict=True
        ):
            y = self.height - 16 - (self.legend_lines - 1 - line) * 18
            paint = (
                f'fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="4 2"'
                if outlined
                else f'fill="{colour}" stroke="#999" stroke-width="0.5"'
            )
            parts.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" {paint}/>')
            parts.append(f'<text x="{x + 18}" y="{y}">{escape(text)}</text>')
        return parts


def _legend_places(entries: Sequence[tuple[str, str, bool]], width: int) -> list[tuple[int, int]]:
    """Where each legend entry goes: (x, line), wrapping before the right edge."""
    places, x, line = [], 16, 0
    for _, text, _ in entries:
        room = 30 + 7 * len(text)
        if x > 16 and x + room > width - _MARGIN_RIGHT:
            x, line = 16, line + 1
        places.append((x, line))
        x += room
    return places


def _cut(x: float, y: int, colour: str) -> str:
    return (
        f'<line x1="{x:.2f}" y1="{y}" x2="{x:.2f}" y2="{y + _ROW_HEIGHT}" stroke="{colour}" '
        'stroke-width="1.5" stroke-dasharray="3 3"/>'
    )


def svg_map(
    blocks: Sequence[Block],
    capacity: int,
    *,
    title: str = "",
    width: int = 960,
    row_bytes: int | None = None,
    slots: bool = False,
    next_slot: int | None = None,
) -> str:
    """An SVG drawing of the memory: every block at its offset, to scale.

    The memory is laid out in rows of ``row_bytes`` (by default a quarter of
    the capacity, at least 64), left to right, top to bottom, like text, with
    each row's first offset on the left and offset ticks under it.  Live
    blocks are green, free blocks light grey; each block wide enough carries
    its size; a block that runs on into the next row is marked where it is
    cut (``→`` and ``↪``).  For variable sizes the largest free block is
    outlined in red (or the legend says the arena is full); for fixed-size
    slots (``slots=True``), where every free slot is as large as the next,
    the slot the allocator hands out next is outlined instead, when known.
    O(blocks + rows).

    >>> svg = svg_map([Block(0, 64, True), Block(64, 192, False)], 256, title="demo")
    >>> svg.startswith("<svg") and "largest free: 192 B" in svg
    True
    >>> "arena full" in svg_map([Block(0, 256, True)], 256)
    True
    """
    live = [b for b in blocks if b.live]
    used = sum(b.size for b in live)
    free_count = len(blocks) - len(live)
    legend = [(palette.LIVE, "live", False), (palette.FREE, "free", False)]
    marked: tuple[Region, str, str] | None = None  # the outlined block: where, colour, note
    if slots and next_slot is not None:
        size = next(b.size for b in blocks if b.offset == next_slot)
        note = f"next alloc() gets this slot (offset {next_slot:,})"
        marked = (Region(next_slot, size, "next"), palette.NEXT_SLOT, note)
    elif slots and free_count == 0:
        legend.append((palette.TEXT, "full: every slot is live, the next alloc() fails", False))
    elif slots:
        legend.append((palette.TEXT, "next alloc(): not marked (the policy does not say)", False))
    elif not slots:
        free = [b for b in blocks if not b.live]
        largest = max(free, key=lambda b: (b.size, -b.offset), default=None)
        if largest is None:
            legend.append((palette.TEXT, "arena full: no free block, alloc() fails", False))
        else:
            note = f"largest free: {largest.size:,} B"
            marked = (Region(largest.offset, largest.size, "largest"), palette.LARGEST, note)
    if marked:
        legend.append((marked[1], marked[2], True))
    canvas = _Canvas(capacity, width, row_bytes, legend)
    parts = canvas.start(
        title,
        f"{used:,} of {capacity:,} bytes live in {len(live)} blocks, {free_count} free "
        f"blocks; {canvas.row_bytes:,} bytes per row",
    )
    for block in blocks:
        kind = "live" if block.live else "free"
        parts += canvas.region(
            Region(block.offset, block.size, kind),
            palette.LIVE if block.live else palette.FREE,
            f"{kind} block at {block.offset:,}, {block.size:,} B",
        )
    parts += canvas.ticks()
    if marked:
        parts += canvas.outline(*marked)
    parts += canvas.legend(legend)
    return "\n".join([*parts, "</svg>"]) + "\n"


def next_slot(policy: object) -> int | None:
    """The offset a fixed-size slot policy hands out next (its ``next_offset()``), or None.

    >>> from slaballoc import LinearSearch
    >>> slots = LinearSearch(capacity=256)
    >>> _ = slots.allocate(), slots.allocate()
    >>> slots.release(0)
    64
    >>> next_slot(slots)
    0
    """
    own = getattr(policy, "next_offset", None)
    if not callable(own):
        return None
    answer = own()
    return None if answer is None else int(answer)


def svg_map_of(allocator: object, *, title: str = "") -> str:
    """:func:`svg_map` of an allocator (anything with ``blocks()``, ``capacity`` and ``policy``).

    >>> from slaballoc import LinearSlab
    >>> "next alloc() gets this slot (offset 0)" in svg_map_of(LinearSlab())
    True
    """
    policy = getattr(allocator, "policy", None)
    blocks = list(allocator.blocks())  # type: ignore[attr-defined]
    capacity: int = allocator.capacity  # type: ignore[attr-defined]
    if hasattr(policy, "slot_size"):  # a fixed-size slot policy, pure or C
        return svg_map(blocks, capacity, title=title, slots=True, next_slot=next_slot(policy))
    return svg_map(blocks, capacity, title=title)


def category_svg_map(
    regions: Sequence[Region],
    capacity: int,
    *,
    title: str = "",
    width: int = 960,
    row_bytes: int | None = None,
    categories: Sequence[str] | None = None,
    colours: Mapping[str, str] | None = None,
    unit: str | Mapping[str, str] = "block",
) -> str:
    """An SVG drawing of memory by category: each region coloured by who or what holds it.

    Laid out like :func:`svg_map` (rows, offset ticks, marked continuations);
    free memory (category ``None``, and any byte no region covers) is light
    grey.  Colours are :data:`palette.OWNERS` in the order of ``categories``
    (by default, the order of first appearance) unless ``colours`` names
    them, e.g. :data:`palette.SLAB_STATES` for full, partial and empty slabs.
    Each region shows its label (or its size) where it fits; the legend counts
    regions as ``unit`` (``"block"``, ``"slab"``..., or one per category).
    O(regions + rows).

    >>> svg = category_svg_map([Region(0, 64, "pid 7", "block 1"), Region(64, 64, None)], 256)
    >>> "pid 7: 1 block, 64 B" in svg and "block 1" in svg
    True
    """
    order = _categories(regions, categories)
    fill = {c: (colours or {}).get(c, palette.owner_colour(k)) for k, c in enumerate(order)}
    held = sum(r.size for r in regions if r.category is not None)
    legend = []
    for category in order:
        legend.append((fill[category], _key_entry(category, regions, unit), False))
    legend.append((palette.FREE, f"free: {capacity - held:,} B", False))
    canvas = _Canvas(capacity, width, row_bytes, legend)
    noun = "category" if len(order) == 1 else "categories"
    parts = canvas.start(
        title,
        f"{held:,} of {capacity:,} bytes held, by {len(order)} {noun}; "
        f"{canvas.row_bytes:,} bytes per row",
    )
    for row in range(canvas.rows):  # bytes no region covers read as free
        first = row * canvas.row_bytes
        row_width = (min(first + canvas.row_bytes, canvas.capacity) - first) * canvas.scale
        parts.append(
            f'<rect x="{_MARGIN_LEFT}" y="{canvas.y(first)}" width="{row_width:.2f}" '
            f'height="{_ROW_HEIGHT}" fill="{palette.FREE}"/>'
        )
    for region in regions:
        what = "free" if region.category is None else region.category
        named = f"{region.label}: " if region.label else ""
        parts += canvas.region(
            region,
            palette.FREE if region.category is None else fill[region.category],
            f"{named}{what}, {region.size:,} B at {region.offset:,}",
        )
    parts += canvas.ticks()
    parts += canvas.legend(legend)
    return "\n".join([*parts, "</svg>"]) + "\n"
