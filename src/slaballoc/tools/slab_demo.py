"""``slaballoc demo slab``: a ``SlabCache`` in five steps, its slab map after each.

Blocks of two sizes and one too large for any class; a slab filling up; a
block freed into the thread's magazine and handed straight back (a magazine
hit); a slab emptied; everything freed.  Each step checks what it claims and
raises :class:`~.demo.DemoFailedError` if the cache does otherwise, so the
demo doubles as a test.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from ..slab_cache import SlabCache
from .demo import DemoFailedError
from .slab_map import slab_label, slab_svg_map, slab_text_map

__all__ = ["SVG_STEP", "run_slab_demo"]

_SMALL, _MEDIUM, _FULL, _LARGE = 60, 1500, 3000, 20_000  # classes 64, 1536, 3072 B; none
#: The step whose map ``--svg`` draws: every state of a slab, and a large block.
SVG_STEP = 4


def _show(out: TextIO, cache: SlabCache, title: str, colour: bool) -> None:
    print(f"\n== {title}", file=out)
    print(slab_text_map(cache, colour=colour), file=out)
    for record in cache.slabs():
        print(f"   slab at {record.offset:>6,}: {slab_label(record)} ({record.state})", file=out)


def _expect(claim: bool, what: str) -> None:
    if not claim:
        raise DemoFailedError(f"SlabCache: expected {what}")


def _states(cache: SlabCache) -> dict[int, str]:
    """The state of each class's slab, by object size (one slab per class in this demo)."""
    return {record.object_size: record.state for record in cache.slabs()}


def run_slab_demo(out: TextIO, *, colour: bool = False, svg: Path | None = None) -> None:
    """Run the demo, printing to ``out``; raise DemoFailedError if a step misbehaves.

    With ``svg``, also draw the slab map after step :data:`SVG_STEP` there.
    """
    cache = SlabCache(capacity=64 << 10, magazine_size=4)
    print(
        f"SlabCache of {cache.capacity:,} B: a request is rounded up to its size class and "
        "served from a slab of that class (pages cut into equal objects); a request too large "
        "for every class is a block of its own.  Each character of the map is "
        f"{cache.capacity // 64:,} B.",
        file=out,
    )
    small = [cache.alloc(_SMALL) for _ in range(3)]
    medium = [cache.alloc(_MEDIUM) for _ in range(2)]
    full = [cache.alloc(_FULL) for _ in range(4)]
    large = cache.alloc(_LARGE)
    _show(
        out,
        cache,
        f"1. three {_SMALL} B, two {_MEDIUM:,} B, four {_FULL:,} B and one {_LARGE:,} B block",
        colour,
    )
    _expect(
        _states(cache) == {64: "partial", 1536: "partial", 3072: "full"},
        "two partial slabs and a full one (a 3072 B slab holds four objects)",
    )
    print(
        "   (cached: objects taken from the slab into this thread's magazine, ready for the "
        "next request of the class)",
        file=out,
    )

    medium += [cache.alloc(_MEDIUM) for _ in range(6)]
    _show(out, cache, f"2. six more {_MEDIUM:,} B blocks: the 1536 B class's slab is full", colour)
    _expect(_states(cache)[1536] == "full", "the 1536 B slab full")

    freed = cache.offset_of(small[1])
    cache.free(small[1])
    hits = cache.stats().magazine_hits
    small[1] = cache.alloc(_SMALL)
    again = cache.offset_of(small[1])
    _show(out, cache, f"3. free one {_SMALL} B block, then allocate {_SMALL} B again", colour)
    print(
        f"   magazine hit: the block freed at offset {freed:,} went to the magazine, and the "
        f"next {_SMALL} B request got it back at {again:,}, touching no slab",
        file=out,
    )
    _expect(again == freed and cache.stats().magazine_hits == hits + 1, "a magazine hit")

    cache.free_many(medium)
    _show(out, cache, f"4. free the eight {_MEDIUM:,} B blocks: their slab is empty", colour)
    _expect(_states(cache)[1536] == "empty", "the 1536 B slab empty")
    if svg is not None:
        title = f"SlabCache after step {SVG_STEP} of slaballoc demo slab: slabs by state"
        svg.write_text(slab_svg_map(cache, title=title))
    print(
        "   empty, but kept: its cached objects wait in the magazine for the next 1536 B "
        "request, and the cache keeps one empty slab per class (keep_empty=1)",
        file=out,
    )

    cache.free_many([*small, *full, large])
    _show(out, cache, "5. free everything: no live block, the large block's bytes are free", colour)
    cache.check()
    _expect(len(cache) == 0 and all(r.state == "empty" for r in cache.slabs()), "no live block")
    cache.close()
    print("\nEvery step behaved as expected; cache.check() found the cache whole.", file=out)
    if svg is not None:
        print(f"wrote {svg}: the slab map after step {SVG_STEP}", file=out)
