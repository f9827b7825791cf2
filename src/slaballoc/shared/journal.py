"""The undo log that makes every change to a shared heap all-or-nothing.

Before a metadata word changes, its index and old value are appended to the
log in the segment, and only then is the word written.  Committing empties
the log with one store.  A process killed at any instruction in between
leaves a non-empty log; the next process to take the heap's lock finds it and
writes the old values back, newest first, which restores the heap exactly as
it was before the interrupted operation began (PMDK's ``ulog`` does the same
with a redo log).  The order of the stores is what makes it safe:

1. ``entry = (index, old)``  -- not yet counted, so a crash here is harmless;
2. ``count += 1``            -- from now on recovery restores ``old``;
3. ``word[index] = new``     -- undone by recovery if the operation never commits.

Each store is one aligned 8-byte write, which no crash can tear.

**Fault injection.**  Setting the environment variable
``SLABALLOC_SHARED_CRASH_AT=N`` (read at import) or calling
:func:`crash_at` makes the process SIGKILL itself just before its N-th store
into a journaled segment (the log's own stores and those of a rollback
included), which is how the tests kill a process at every point of an
operation, and of a recovery.
"""

from __future__ import annotations

import os
import signal

from .._implementation import core
from ..errors import InvariantError
from .layout import H_SPARE, H_USED, HEADER_WORDS

__all__ = ["CRASH_ENV", "Journal", "crash_at"]

#: The environment variable that arms :func:`crash_at` when the module is imported.
CRASH_ENV = "SLABALLOC_SHARED_CRASH_AT"

_stores_left = 0


def crash_at(store: int) -> None:
    """Kill this process (SIGKILL) just before its ``store``-th journaled store; 0 disarms.

    For tests of crash recovery only.  While armed, every operation runs in
    Python (the C core's transactions step aside: only Python counts stores).
    """
    global _stores_left  # noqa: PLW0603 -- one countdown per process, by design
    _stores_left = store
    if core is not None:
        core.shared_crash_armed(store != 0)


def _count_store() -> None:
    global _stores_left  # noqa: PLW0603
    _stores_left -= 1
    if _stores_left == 0:
        os.kill(os.getpid(), signal.SIGKILL)


crash_at(int(os.environ.get(CRASH_ENV, "0") or 0))


class Journal:
    """An undo log of ``capacity`` entries at word ``at`` of ``words``.

    The log may hold only the header's mutable totals and the words past the
    header that are not its own (never the mutex's): a count or entry that says
    otherwise is a damaged segment, refused with :class:`InvariantError`.

    >>> words = memoryview(bytearray(8 * 80)).cast("q")
    >>> journal = Journal(words, at=64, capacity=3)
    >>> journal.put(71, 10); journal.put(72, 20); journal.put(71, 11)
    >>> words[71], words[72], journal.pending()
    (11, 20, 3)
    >>> journal.rollback()  # as recovery does after a crash
    3
    >>> words[71], words[72], journal.pending()
    (0, 0, 0)
    """

    __slots__ = ("_at", "_capacity", "_words")

    def __init__(self, words: memoryview, at: int, capacity: int) -> None:
        self._words = words
        self._at = at
        self._capacity = capacity

    def put(self, index: int, value: int) -> None:
        """Set ``words[index] = value``, logging the old value first.  O(1)."""
        words, at = self._words, self._at
        if _stores_left:
            self._put_counting(index, value)
            return
        count = words[at]
        if count == self._capacity:
            self._overflow()
        self._check(count, index)
        entry = at + 1 + 2 * count
        words[entry] = index
        words[entry + 1] = words[index]
        words[at] = count + 1
        words[index] = value

    def _put_counting(self, index: int, value: int) -> None:
        """:meth:`put`, one store at a time, each counted towards :func:`crash_at`."""
        words, at = self._words, self._at
        count = words[at]
        if count == self._capacity:
            self._overflow()
        self._check(count, index)
        entry = at + 1 + 2 * count
        _count_store()
        words[entry] = index
        _count_store()
        words[entry + 1] = words[index]
        _count_store()
        words[at] = count + 1
        _count_store()
        words[index] = value

    def commit(self) -> None:
        """Make every logged change permanent: one store empties the log.  O(1)."""
        if _stores_left:
            _count_store()
        self._words[self._at] = 0

    def pending(self) -> int:
        """Entries in the log: non-zero only inside an operation, or after a crash in one."""
        count: int = self._words[self._at]
        return count

    def rollback(self) -> int:
        """Undo every logged change, newest first; return how many.  O(entries).

        Safe to interrupt: the count shrinks only after its entry was undone, and
        undoing an entry twice writes the same old value twice.
        """
        words, at = self._words, self._at
        count = undone = words[at]
        self._check(count)
        while count:
            count -= 1
            entry = at + 1 + 2 * count
            self._check(count, words[entry])
            if _stores_left:
                _count_store()
            words[words[entry]] = words[entry + 1]
            if _stores_left:
                _count_store()
            words[at] = count
        return int(undone)

    def _writable(self, index: int) -> bool:
        """Whether the log may hold ``index`` (the C core's ``writable``)."""
        if H_USED <= index <= H_SPARE:
            return True
        end = self._at + 2 * self._capacity  # the log's last word
        return HEADER_WORDS <= index < len(self._words) and not self._at <= index <= end

    def _check(self, count: int, index: int | None = None) -> None:
        """Refuse a count outside ``0..capacity`` or an index the log may not hold."""
        if not 0 <= count <= self._capacity or (index is not None and not self._writable(index)):
            raise InvariantError(
                f"the undo log is damaged (count {count} of {self._capacity}, index {index}): "
                "the heap cannot be repaired; copy out what you need and remove it "
                "(slaballoc shm rm)"
            )

    def _overflow(self) -> None:
        self.rollback()
        raise InvariantError(
            f"the journal's {self._capacity} entries are full: the operation was rolled back "
            "(a bug: no operation should write that many words)"
        )
