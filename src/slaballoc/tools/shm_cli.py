"""``slaballoc shm``: list, inspect and remove the shared heaps in ``/dev/shm``.

Also the owner map that ``inspect`` and ``slaballoc demo shared`` draw: each
live block a :class:`~.render.Region` of its owner process (``pid N``, or
``pid N (dead)`` once that process has exited), free space ``None``, drawn by
:func:`~.render.category_text_map` (a letter per owner, ``.`` for free; colour
on a terminal) or :func:`~.render.category_svg_map` (``inspect --svg``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import SlabError
from ..shared import SharedBlock, SharedHeap
from ..shared.layout import MAGIC, WORD
from ..shared.processes import is_alive
from ..shared.segment import Segment, path_of, segment_names
from .arguments import check_output, count_between, warn
from .render import Region, category_svg_map, category_text_map, use_colour
from .tables import format_table

__all__ = [
    "DEAD_NOTE",
    "add_arguments",
    "owner_regions",
    "owner_svg_map",
    "owner_text_map",
    "run",
]

#: Said under a map that shows a dead owner's blocks.
DEAD_NOTE = "(dead): the process exited holding these blocks; reclaim_dead() frees them"


def owner_regions(blocks: Sequence[SharedBlock]) -> tuple[list[Region], list[str]]:
    """Each block as a region of its owner (free: ``None``), and the owners, oldest first.

    The owners are in the order their processes started, so that each keeps
    its letter in the text map while others come and go.  O(blocks + owners).

    >>> from slaballoc.shared.processes import ProcessName
    >>> me = ProcessName.of(os.getpid())  # (pid, start time): this process
    >>> gone = (me.pid, me.born - 1)  # our pid, but an earlier process: exited
    >>> regions, owners = owner_regions([SharedBlock(0, 64, True, 60, *gone),
    ...                                  SharedBlock(64, 64, True, 60, *me),
    ...                                  SharedBlock(128, 128, False)])
    >>> [r.category for r in regions] == [f"pid {me.pid} (dead)", f"pid {me.pid}", None]
    True
    >>> owners == [f"pid {me.pid} (dead)", f"pid {me.pid}"]  # oldest first
    True
    """
    names: dict[tuple[int, int], str] = {}
    for block in blocks:
        owner = (block.pid, block.born)
        if block.live and owner not in names:
            names[owner] = f"pid {block.pid}" + ("" if is_alive(*owner) else " (dead)")
    regions = [
        Region(block.offset, block.size, names[(block.pid, block.born)] if block.live else None)
        for block in blocks
    ]
    return regions, [names[owner] for owner in sorted(names, key=lambda o: (o[1], o[0]))]


def owner_text_map(
    blocks: Sequence[SharedBlock], capacity: int, *, cells: int = 64, colour: bool = False
) -> str:
    """The heap by owner process as text: a letter per owner, the key, and a note on the dead.

    >>> from slaballoc.shared.processes import ProcessName
    >>> me = ProcessName.of(os.getpid())
    >>> text = owner_text_map([SharedBlock(0, 64, True, 60, *me), SharedBlock(64, 192, False)],
    ...                       256, cells=8)
    >>> text == f"[AA......]  A = pid {me.pid}: 1 block, 64 B; . = free: 192 B"
    True
    """
    regions, owners = owner_regions(blocks)
    text = category_text_map(regions, capacity, cells=cells, colour=colour, categories=owners)
    dead = any(owner.endswith("(dead)") for owner in owners)
    return f"{text}\n{DEAD_NOTE}" if dead else text


def owner_svg_map(blocks: Sequence[SharedBlock], capacity: int, *, title: str) -> str:
    """The heap by owner process as SVG, coloured as the text map is lettered (oldest first).

    >>> "free: 256 B" in owner_svg_map([SharedBlock(0, 256, False)], 256, title="empty heap")
    True
    """
    regions, owners = owner_regions(blocks)
    return category_svg_map(regions, capacity, title=title, categories=owners)


# -- the commands ---------------------------------------------------------------------------


def _is_heap(name: str) -> bool:
    try:
        fd = os.open(path_of(name), os.O_RDONLY)
    except (OSError, SlabError):
        return False
    try:
        head = os.pread(fd, WORD, 0)
    finally:
        os.close(fd)
    return len(head) == WORD and int.from_bytes(head, "little") == MAGIC


def _list(args: argparse.Namespace) -> int:
    del args
    rows: list[list[Any]] = []
    for name in segment_names():
        if not _is_heap(name):
            continue
        try:
            with SharedHeap.attach(name) as heap:
                stats = heap.stats()
                others = [p for p in heap.processes() if p.pid != os.getpid()]
                rows.append(
                    [
                        name,
                        f"{stats.capacity:,}",
                        f"{stats.used:,}",
                        stats.live_blocks,
                        sum(p.alive for p in others),
                        sum(not p.alive for p in others),
                    ]
                )
        except SlabError as error:
            rows.append([name, f"unreadable: {error}", "", "", "", ""])
    if not rows:
        print("no slaballoc heaps in /dev/shm")
        return 0
    headers = ["name", "size B", "used B", "live blocks", "processes alive", "dead"]
    print(format_table(headers, rows))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    check_output(args.svg, "--svg")
    with SharedHeap.attach(args.name) as heap:
        blocks, stats = heap.blocks(), heap.stats()
        others = [p for p in heap.processes() if p.pid != os.getpid()]
        layout = heap.layout
    print(
        f"heap {args.name!r}: {stats.capacity:,} B of blocks in a {layout.file_size:,} B segment, "
        f"alignment {layout.alignment}, at most {layout.max_blocks:,} live blocks"
    )
    print(
        f"used {stats.used:,} B ({stats.utilization:.1%}) in {stats.live_blocks} live blocks, "
        f"{stats.free_blocks} free; largest free block {stats.largest_free:,} B, "
        f"fragmentation {stats.fragmentation:.1%}"
    )
    alive = sum(p.alive for p in others)
    print(f"attached processes: {alive} alive, {len(others) - alive} dead")
    print(owner_text_map(blocks, stats.capacity, cells=args.cells, colour=use_colour(sys.stdout)))
    if args.svg:
        title = f"SharedHeap {args.name!r} by owner process"
        Path(args.svg).write_text(owner_svg_map(blocks, stats.capacity, title=title))
        print(f"wrote {args.svg}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    if not _is_heap(args.name):
        path = path_of(args.name)
        what = "does not exist" if not os.path.exists(path) else "is not a slaballoc heap"
        warn("shm rm", f"{path} {what}; nothing removed")
        return 1
    Segment.unlink(args.name)
    print(f"removed {args.name} (processes still attached keep their mapping until they close)")
    return 0


def run(args: argparse.Namespace) -> int:
    """``slaballoc shm ACTION``: run the action; slaballoc's errors become one line, status 1."""
    try:
        status: int = args.shm_action(args)
    except SlabError as error:
        warn(f"shm {args.shm_command}", str(error))
        return 1
    return status


def add_arguments(shm: argparse.ArgumentParser) -> None:
    """The actions of ``slaballoc shm``: list, inspect, rm."""
    actions = shm.add_subparsers(dest="shm_command", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list", help="every heap: size, used, live blocks, attached processes"
    )
    listing.set_defaults(shm_action=_list)
    inspect = actions.add_parser("inspect", help="one heap's figures and a map by owner process")
    inspect.add_argument("name", help="the heap's name (as `slaballoc shm list` shows it)")
    inspect.add_argument(
        "--cells", type=count_between(1, 10_000), default=64, help="map width (default 64)"
    )
    inspect.add_argument(
        "--svg", metavar="FILE", help="also draw the map by owner process as SVG to FILE"
    )
    inspect.set_defaults(shm_action=_inspect)
    remove = actions.add_parser("rm", help="remove a heap's name (attached processes keep it)")
    remove.add_argument("name", help="the heap's name")
    remove.set_defaults(shm_action=_remove)
