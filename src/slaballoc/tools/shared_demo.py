"""``slaballoc demo shared``: several processes share one heap, and one of them dies.

Two producers write messages into blocks and pass the handles to a consumer
through a queue; the consumer reads them in place, keeps some (adopting
them) and frees the rest; a third process is SIGKILLed in the middle of
allocating; the next lock holder repairs the heap, and ``reclaim_dead()``
gives the dead process's blocks back.  A map lettered by owner process is
drawn after each step (the demo's own process is the pid its first line
names).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue
from pathlib import Path
from typing import TextIO

from ..errors import OutOfMemoryError
from ..shared import SharedHeap
from .shm_cli import owner_svg_map, owner_text_map

__all__ = ["SVG_STEP", "run_shared_demo"]

#: The step whose map ``--svg`` draws: the blocks of a process that was killed.
SVG_STEP = 3

_MESSAGES = 4


def _produce(name: str, who: str, handles: Queue[tuple[int, int]], size: int) -> None:
    """Write ``_MESSAGES`` messages into blocks of ``size`` bytes; send their handles."""
    with SharedHeap.attach(name) as heap:
        for number in range(_MESSAGES):
            text = f"message {number} from {who} (pid {os.getpid()})".encode()
            handle = heap.alloc(size)
            heap.view(handle)[: len(text)] = text
            handles.put((handle, len(text)))


def _consume(name: str, handles: Queue[tuple[int, int]], report: Connection) -> None:
    """Read every message in place; adopt the even ones, free the odd ones; wait to be told."""
    with SharedHeap.attach(name) as heap:
        lines = []
        for count in range(2 * _MESSAGES):
            handle, length = handles.get()
            text = bytes(heap.view(handle)[:length]).decode()
            if count % 2:
                heap.free(handle)
                lines.append(f"read and freed  handle {handle:>6}: {text!r}")
            else:
                heap.adopt(handle)
                lines.append(f"read and kept   handle {handle:>6}: {text!r}")
        report.send(lines)
        report.recv()  # keep the adopted blocks until the demo ends
        for block in heap.blocks():
            if block.live and block.pid == os.getpid():
                heap.free(block.offset)
        report.send("done")


def _churn_until_killed(name: str, ready: Connection) -> None:
    """Hold a few blocks, then allocate and free in a tight loop until SIGKILLed."""
    heap = SharedHeap.attach(name)
    held = [heap.alloc(size) for size in (3000, 9000, 20000)]
    ready.send(held)
    live: list[int] = []
    while True:
        with contextlib.suppress(OutOfMemoryError):  # full: the loop frees and goes on
            live.append(heap.alloc(1000 + 64 * len(live)))
        if len(live) > 4:
            heap.free(live.pop(0))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _show(out: TextIO, heap: SharedHeap, title: str, colour: bool) -> None:
    blocks, stats = heap.blocks(), heap.stats()
    print(f"\n== {title}", file=out)
    print(owner_text_map(blocks, stats.capacity, colour=colour), file=out)
    print(
        f"   {stats.used:,}/{stats.capacity:,} B used in {_count(stats.live_blocks, 'live block')}",
        file=out,
    )


def run_shared_demo(out: TextIO, *, colour: bool = False, svg: Path | None = None) -> None:
    """Run the demo, printing to ``out``; raise if the heap is not whole at the end.

    With ``svg``, also draw the heap by owner after step :data:`SVG_STEP` there.
    """
    spawn = multiprocessing.get_context("spawn")
    with SharedHeap.create(size=128 << 10, max_blocks=256) as heap:
        print(f"SharedHeap {heap.name!r}: {heap.capacity:,} B, made by pid {os.getpid()}", file=out)
        mine = heap.alloc(4096)
        _show(out, heap, "1. the demo process holds one block", colour)

        handles: Queue[tuple[int, int]] = spawn.Queue()
        report, consumer_end = spawn.Pipe()
        consumer = spawn.Process(target=_consume, args=(heap.name, handles, consumer_end))
        producers = [
            spawn.Process(target=_produce, args=(heap.name, who, handles, size))
            for who, size in (("producer-1", 2000), ("producer-2", 5000))
        ]
        for process in (consumer, *producers):
            process.start()
        for process in producers:
            process.join()
        for line in report.recv():
            print(f"   consumer: {line}", file=out)
        _show(out, heap, "2. producers exited; the consumer adopted half their blocks", colour)

        ready, victim_end = spawn.Pipe()
        victim = spawn.Process(target=_churn_until_killed, args=(heap.name, victim_end))
        victim.start()
        ready.recv()
        time.sleep(0.05)  # let it churn: the kill lands in the middle of its work
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)
        victim.join()
        pending = heap._journal.pending()
        interrupted = "inside an operation" if pending else "between operations"
        _show(out, heap, f"3. pid {victim.pid} SIGKILLed {interrupted}", colour)
        if svg is not None:
            title = f"SharedHeap after step {SVG_STEP} of slaballoc demo shared: blocks by owner"
            svg.write_text(owner_svg_map(heap.blocks(), heap.capacity, title=title))

        heap.check()
        repair = (
            f"rolled back {pending} journaled word changes"
            if pending
            else "found nothing to roll back (the kill fell between two operations)"
        )
        print(f"\n   check(): the next lock holder {repair}; the heap checks clean", file=out)
        reclaimed = heap.reclaim_dead()
        print(
            f"   reclaim_dead(): {reclaimed.blocks} blocks, {reclaimed.bytes:,} B "
            f"of {reclaimed.processes} dead process{'' if reclaimed.processes == 1 else 'es'} "
            "given back",
            file=out,
        )
        _show(out, heap, "4. after reclaim_dead()", colour)

        report.send("finish")
        report.recv()
        consumer.join()
        heap.free(mine)
        heap.check()
        _show(out, heap, "5. the consumer freed what it kept; the demo freed its block", colour)
        if heap.stats().used:
            raise RuntimeError("the shared demo ended with blocks still live")
    print(f"\n{heap.name} unlinked by its creator", file=out)
    if svg is not None:
        print(f"wrote {svg}: the heap by owner after step {SVG_STEP}", file=out)
