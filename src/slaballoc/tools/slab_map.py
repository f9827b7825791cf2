"""The slab map: a :class:`~slaballoc.SlabCache`'s buffer as slabs, large blocks and free space.

Each slab is a region coloured by its state: **full** (every object live),
**partial** or **empty** (no object live; its objects may be cached in
magazines, or free in the slab, which the cache keeps for the next request of
its class).  Blocks too large for any class sit between the slabs, and the
rest of the buffer is free.  :func:`slab_text_map` and :func:`slab_svg_map`
draw them with :mod:`.render`'s pictures by category.
"""

from __future__ import annotations

from ..slab_cache import SlabCache, SlabRecord
from . import palette
from .render import Region, category_svg_map, category_text_map

__all__ = [
    "CATEGORIES",
    "LARGE",
    "STATES",
    "slab_label",
    "slab_regions",
    "slab_svg_map",
    "slab_text_map",
]

#: The states of a slab, and the categories of a slab map: always all four, in
#: this order, so that each keeps its letter in the text map (A is full, ...).
STATES = ("full", "partial", "empty")
LARGE = "large block"
CATEGORIES = (*STATES, LARGE)
_UNITS = dict.fromkeys(STATES, "slab")
_COLOURS = {**palette.SLAB_STATES, LARGE: palette.LARGE_BLOCK}


def slab_label(record: SlabRecord) -> str:
    """What a slab holds, in words.

    >>> slab_label(SlabRecord(0, 12288, 1536, 3, 2, 8))
    '1536 B class, 3/8 live, 2 cached'
    """
    cached = f", {record.cached} cached" if record.cached else ""
    return f"{record.object_size} B class, {record.live}/{record.capacity} live{cached}"


def slab_regions(cache: SlabCache) -> list[Region]:
    """Every slab (by state), large block and free block of ``cache``, in address order.

    O(blocks + slabs + live blocks x log slabs).

    >>> cache = SlabCache(capacity=32768, magazine_size=0)
    >>> _ = cache.alloc_many(1500, 8); _ = cache.alloc(20_000)  # past the largest class
    >>> for region in slab_regions(cache):
    ...     print(region)
    Region(offset=0, size=12288, category='full', label='1536 B class, 8/8 live')
    Region(offset=12288, size=20000, category='large block', label='large block, 20,000 B')
    Region(offset=32288, size=480, category=None, label='')
    """
    slabs = {record.offset: record for record in cache.slabs()}
    regions = []
    for block in cache.blocks():
        record = slabs.get(block.offset)
        if record is not None:
            regions.append(Region(block.offset, block.size, record.state, slab_label(record)))
        elif block.live:
            regions.append(
                Region(block.offset, block.size, LARGE, f"large block, {block.size:,} B")
            )
        else:
            regions.append(Region(block.offset, block.size, None))
    return regions


def slab_text_map(cache: SlabCache, *, cells: int = 64, colour: bool = False) -> str:
    """The slab map as one line of text and its key (see :func:`.render.category_text_map`).

    >>> cache = SlabCache(capacity=32768, magazine_size=0)
    >>> _ = cache.alloc_many(1500, 8)
    >>> print(slab_text_map(cache, cells=8).replace("; ", "\\n"))
    [AAA.....]  A = full: 1 slab, 12,288 B
    B = partial: 0 slabs, 0 B
    C = empty: 0 slabs, 0 B
    D = large block: 0 blocks, 0 B
    . = free: 20,480 B
    """
    regions = slab_regions(cache)
    return category_text_map(
        regions,
        cache.capacity,
        cells=cells,
        colour=colour,
        categories=CATEGORIES,
        ansi=palette.ANSI_SLAB_STATES,
        unit=_UNITS,
    )


def slab_svg_map(cache: SlabCache, *, title: str = "") -> str:
    """The slab map as SVG: slabs labelled with their class and objects live.

    >>> cache = SlabCache(capacity=32768)
    >>> _ = cache.alloc(60)  # a 64 B object: its slab is one page of 64
    >>> "partial: 1 slab, 4,096 B" in slab_svg_map(cache)
    True
    """
    regions = slab_regions(cache)
    return category_svg_map(
        regions,
        cache.capacity,
        title=title,
        categories=CATEGORIES,
        colours=_COLOURS,
        unit=_UNITS,
    )
