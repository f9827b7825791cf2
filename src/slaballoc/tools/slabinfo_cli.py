"""``slaballoc slabinfo``: a workload replayed through a ``SlabCache``, shown like ``slabtop``.

The workload is a malloclab ``.rep`` trace (``slaballoc slabinfo TRACE``) or,
with ``--sample``, a small built-in one.  The table shows each class in use as
the trace leaves it: objects active and cached in magazines, slabs, rounding
waste and magazine hits; the header line gives the totals and peaks.  Under
it, the slab map: the buffer as full, partial and empty slabs, large blocks
and free space (``--svg FILE`` draws it as SVG too).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from ..slab_cache import SlabCache, SlabInfo
from .arguments import check_output, non_negative, positive, warn, write_json
from .peers import SlabCacheContender
from .render import use_colour
from .replay import capacity_for, time_replay
from .samples import UnknownSampleError, read_trace_argument
from .slab_map import slab_svg_map, slab_text_map
from .tables import format_table
from .traces import Trace, TraceFormatError, parse_trace

__all__ = ["add_arguments", "run", "sample_trace", "slabinfo_for_trace", "slabinfo_table"]

HEADERS = [
    "OBJ SIZE",
    "ACTIVE",
    "CACHED",
    "TOTAL",
    "USE",
    "SLABS",
    "OBJ/SLAB",
    "SLAB KiB",
    "WASTE B",
    "MAG",
    "HITS",
    "MISSES",
    "HIT RATE",
]


def sample_trace(ops: int = 20_000, seed: int = 1) -> Trace:
    """A small mixed workload: many small objects, some medium, a few large, with churn."""
    rng = random.Random(seed)
    lines: list[str] = []
    live: list[int] = []
    next_id = 0
    for _ in range(ops):
        if live and rng.random() < 0.45:
            lines.append(f"f {live.pop(rng.randrange(len(live)))}")
            continue
        roll = rng.random()
        size = (
            rng.randint(1, 128)
            if roll < 0.7
            else rng.randint(129, 4096)
            if roll < 0.97
            else rng.randint(4097, 40_000)
        )
        lines.append(f"a {next_id} {size}")
        live.append(next_id)
        next_id += 1
    text = "\n".join(["0", str(next_id), str(len(lines)), "1", *lines]) + "\n"
    return parse_trace(text, name="sample")


def slabinfo_for_trace(
    trace: Trace, *, capacity: int | None = None, magazine_size: int | None = None
) -> tuple[SlabCache, int]:
    """Replay ``trace`` through a new ``SlabCache``; return it as the trace leaves it,
    and the number of requests that failed.

    The default capacity is twice what a best-fit replay is sized for, as
    size classes round requests up and keep partly used slabs.
    """
    capacity = 2 * capacity_for(trace, 16) if capacity is None else capacity
    cache = SlabCache(capacity, magazine_size=magazine_size)
    timing = time_replay(trace, SlabCacheContender(cache), free_leftovers=False)
    return cache, timing.failed


def slabinfo_table(rows: list[SlabInfo]) -> str:
    """The classes that ever held a slab, one line each."""
    return format_table(
        HEADERS,
        [
            [
                row.object_size,
                f"{row.active_objects:,}",
                f"{row.cached_objects:,}",
                f"{row.total_objects:,}",
                f"{row.active_objects / row.total_objects:.0%}" if row.total_objects else "",
                row.slabs,
                row.objects_per_slab,
                row.slab_bytes // 1024,
                f"{row.wasted_bytes:,}",
                row.magazine_size,
                f"{row.magazine_hits:,}",
                f"{row.magazine_misses:,}",
                f"{row.hit_rate:.1%}",
            ]
            for row in rows
            if row.peak_slabs
        ],
    )


def run(args: argparse.Namespace) -> int:
    """``slaballoc slabinfo``: replay, then print the table (and write ``--json``)."""
    if args.sample == (args.trace is not None):
        warn("slabinfo", "give a TRACE file or --sample (one of them)")
        return 2
    check_output(args.json, "--json")
    check_output(args.svg, "--svg")
    try:
        trace = sample_trace() if args.sample else read_trace_argument(args.trace)
    except (OSError, TraceFormatError, UnknownSampleError) as error:
        warn("slabinfo", str(error))
        return 2
    try:
        cache, failed = slabinfo_for_trace(
            trace, capacity=args.capacity, magazine_size=args.magazine_size
        )
    except (ValueError, TypeError) as error:  # e.g. a magazine size out of range
        warn("slabinfo", str(error))
        return 2
    stats = cache.stats()
    print(
        f"{trace.name}: {len(trace):,} operations replayed through SlabCache "
        f"({cache.capacity:,} B); {failed:,} requests failed\n"
        f"live {stats.live_blocks:,} blocks, {stats.live_bytes:,} B requested; "
        f"{stats.used:,} B held from the backing store (peak {stats.peak_used:,}, "
        f"high-water {stats.high_water:,}); "
        f"{stats.large_blocks:,} large blocks; magazine hit rate {stats.hit_rate:.1%}\n"
    )
    rows = cache.slabinfo()
    print(slabinfo_table(rows))
    print("\nthe buffer as slabs (by state), large blocks and free space:")
    print(slab_text_map(cache, colour=use_colour(sys.stdout)))
    if args.svg:
        title = f"SlabCache after {trace.name}: slabs by state"
        Path(args.svg).write_text(slab_svg_map(cache, title=title))
        print(f"wrote {args.svg}")
    if args.json:
        document = {
            "trace": trace.name,
            "failed": failed,
            "stats": stats.as_dict(),
            "classes": [row.as_dict() for row in rows],
        }
        write_json(args.json, document)
    return 0


def add_arguments(command: argparse.ArgumentParser) -> None:
    """The arguments of ``slaballoc slabinfo``."""
    command.add_argument(
        "trace", nargs="?", metavar="TRACE", help="a .rep or .rep.gz trace, or sample:NAME"
    )
    command.add_argument("--sample", action="store_true", help="use a small built-in workload")
    command.add_argument("--capacity", type=positive, help="buffer bytes (default: from the trace)")
    command.add_argument(
        "--magazine-size",
        type=non_negative,
        help="objects per magazine, 0 for none (default: adaptive)",
    )
    command.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    command.add_argument(
        "--svg", metavar="FILE", help="also draw the slab map (slabs by state) as SVG to FILE"
    )
