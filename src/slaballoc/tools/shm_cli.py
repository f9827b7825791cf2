"""``slaballoc shm``: list, inspect and remove the shared heaps in ``/dev/shm``.

Also the owner map that ``inspect`` and ``slaballoc demo shared`` draw: each
live block lettered by the process that owns it (``A``, ``B``, ...), free
space as ``.``, so the map reads without colour; colour is added on a
terminal.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import SlabError
from ..shared import SharedBlock, SharedHeap
from ..shared.layout import MAGIC, WORD
from ..shared.processes import is_alive
from ..shared.segment import Segment, path_of, segment_names
from .arguments import count_between, warn
from .render import use_colour
from .tables import format_table

__all__ = ["add_arguments", "owner_legend", "owner_map", "run"]

_FREE = "."
_MIXED = ":"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PALETTE = ["42", "44", "45", "46", "43", "41", "102", "104", "105", "106"]  # ANSI backgrounds


def _owners(blocks: Sequence[SharedBlock]) -> dict[tuple[int, int], str]:
    """A letter for each owner process, in order of first block."""
    letters: dict[tuple[int, int], str] = {}
    for block in blocks:
        owner = (block.pid, block.born)
        if block.live and owner not in letters:
            letters[owner] = _LETTERS[len(letters) % len(_LETTERS)]
    return letters


def owner_map(
    blocks: Sequence[SharedBlock], capacity: int, *, cells: int = 64, colour: bool = False
) -> str:
    """Draw the heap as ``cells`` characters: each cell the letter of the owner of most of it.

    A cell with live bytes of no single owner for all of them and some free
    bytes is still lettered by its main owner; a cell with no live byte is
    ``.``.

    >>> blocks = [SharedBlock(0, 64, True, 64, 10, 1), SharedBlock(64, 64, True, 64, 11, 1),
    ...           SharedBlock(128, 128, False)]
    >>> owner_map(blocks, 256, cells=8)
    '[AABB....]'
    """
    if capacity <= 0:
        return "[]"
    letters = _owners(blocks)
    cells = max(1, min(cells, capacity))
    shares: list[dict[str, int]] = [{} for _ in range(cells)]
    for block in blocks:
        if not block.live:
            continue
        letter = letters[(block.pid, block.born)]
        for cell in range(
            block.offset * cells // capacity, (block.end - 1) * cells // capacity + 1
        ):
            start, end = cell * capacity // cells, (cell + 1) * capacity // cells
            overlap = min(block.end, end) - max(block.offset, start)
            if overlap > 0:
                shares[cell][letter] = shares[cell].get(letter, 0) + overlap
    marks = [max(share, key=share.__getitem__) if share else _FREE for share in shares]
    if not colour:
        return "[" + "".join(marks) + "]"
    palette = {letter: _PALETTE[i % len(_PALETTE)] for i, letter in enumerate(letters.values())}
    painted = [
        f"\x1b[{palette[mark]};30m{mark}\x1b[0m" if mark in palette else f"\x1b[2m{mark}\x1b[0m"
        for mark in marks
    ]
    return "[" + "".join(painted) + "]"


def owner_legend(blocks: Sequence[SharedBlock], *, me: int | None = None) -> str:
    """One line per owner: its letter, pid, whether it lives, its blocks and bytes."""
    letters = _owners(blocks)
    lines = []
    for (pid, born), letter in letters.items():
        mine = [b for b in blocks if b.live and (b.pid, b.born) == (pid, born)]
        state = "alive" if is_alive(pid, born) else "DEAD (reclaim_dead() frees its blocks)"
        who = " (this process)" if pid == me else ""
        noun = "block" if len(mine) == 1 else "blocks"
        lines.append(
            f"  {letter} = pid {pid}{who}: {state}, {len(mine)} {noun}, "
            f"{sum(b.size for b in mine):,} B"
        )
    return "\n".join(lines) if lines else "  (no live blocks)"


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
    print(owner_map(blocks, stats.capacity, cells=args.cells, colour=use_colour(sys.stdout)))
    print(owner_legend(blocks))
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
    inspect.set_defaults(shm_action=_inspect)
    remove = actions.add_parser("rm", help="remove a heap's name (attached processes keep it)")
    remove.add_argument("name", help="the heap's name")
    remove.set_defaults(shm_action=_remove)
