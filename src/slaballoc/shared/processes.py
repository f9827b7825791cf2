"""Who is attached, and who is still alive: processes named by pid *and* start time.

A pid alone is not a name: once a process has exited, the kernel may give its
pid to a new one.  The start time (field 22 of ``/proc/PID/stat``, in clock
ticks since boot) never repeats for one pid, so ``(pid, start time)`` names a
process for as long as the machine is up.  A zombie (killed, not yet waited
for) counts as dead: it will never touch the heap again.

The process table in the segment has one slot per attached process: its
name and how many open ``SharedHeap`` objects it has.  Like every metadata
word, slots change only through the journal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

from ..errors import ProcessTableFullError
from .layout import P_ATTACHED, P_BORN, P_PID, Layout

__all__ = [
    "ProcessName",
    "attach_process",
    "attached_processes",
    "detach_process",
    "forget_dead",
    "is_alive",
]

Put = Callable[[int, int], None]


class ProcessName(NamedTuple):
    """A process, named so that a reused pid cannot be mistaken for it."""

    pid: int
    born: int  # start time in clock ticks since boot

    @classmethod
    def of(cls, pid: int) -> ProcessName | None:
        """The name of the running process ``pid``, or None if there is none (or a zombie).

        >>> import os
        >>> me = ProcessName.of(os.getpid())
        >>> me is not None and me.pid == os.getpid() and is_alive(*me)
        True
        """
        fields = _stat_fields(pid)
        if fields is None or fields[0] in ("Z", "X"):
            return None
        return cls(pid, int(fields[19]))


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3 onwards of ``/proc/PID/stat`` (after the command name, which may hold spaces)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(b")") + 2 :].decode().split()


def is_alive(pid: int, born: int) -> bool:
    """True if process ``pid`` runs and is the one that started at ``born``.  O(1).

    >>> import os
    >>> is_alive(os.getpid(), 0)  # this pid, but not a process that started at boot
    False
    """
    return ProcessName.of(pid) == (pid, born)


def attached_processes(words: memoryview, layout: Layout) -> Iterator[tuple[int, ProcessName, int]]:
    """``(slot, process, attachments)`` for every occupied slot of the table.  O(slots)."""
    for slot in layout.process_slot_ids():
        pid = words[slot + P_PID]
        if pid:
            yield slot, ProcessName(pid, words[slot + P_BORN]), words[slot + P_ATTACHED]


def attach_process(words: memoryview, put: Put, layout: Layout, me: ProcessName) -> None:
    """Count one more attachment of ``me``, taking a slot (freeing dead ones) if needed."""
    empty = None
    for slot, process, attachments in attached_processes(words, layout):
        if process == me:
            put(slot + P_ATTACHED, attachments + 1)
            return
    for slot in layout.process_slot_ids():
        pid = words[slot + P_PID]
        if pid and not is_alive(pid, words[slot + P_BORN]):
            _clear(put, slot)
            pid = 0
        if not pid and empty is None:
            empty = slot
    if empty is None:
        raise ProcessTableFullError(
            f"all {layout.process_slots} process slots of this heap are taken by live "
            "processes: close the heap in some of them, or create a heap with more slots"
        )
    put(empty + P_PID, me.pid)
    put(empty + P_BORN, me.born)
    put(empty + P_ATTACHED, 1)


def detach_process(words: memoryview, put: Put, layout: Layout, me: ProcessName) -> None:
    """Count one attachment of ``me`` fewer, freeing its slot at zero."""
    for slot, process, attachments in attached_processes(words, layout):
        if process == me:
            if attachments > 1:
                put(slot + P_ATTACHED, attachments - 1)
            else:
                _clear(put, slot)
            return


def forget_dead(words: memoryview, put: Put, layout: Layout) -> int:
    """Free the slots of processes that have exited; return how many."""
    dead = [
        slot for slot, process, _ in attached_processes(words, layout) if not is_alive(*process)
    ]
    for slot in dead:
        _clear(put, slot)
    return len(dead)


def _clear(put: Put, slot: int) -> None:
    put(slot + P_PID, 0)
    put(slot + P_BORN, 0)
    put(slot + P_ATTACHED, 0)
