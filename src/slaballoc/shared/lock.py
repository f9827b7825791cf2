"""The heap's lock: a robust, process-shared pthread mutex inside the segment's header.

**One holder at a time, across processes and threads.**  The mutex is made
``PTHREAD_PROCESS_SHARED`` by the process that creates the segment, so every
process that maps the segment uses the same mutex, and it belongs to a
*thread*: threads of one process exclude each other exactly as processes do,
with no lock of the process's own on top.  Taking and giving back a free mutex
is one atomic instruction each in user space (a futex): no system call unless
a thread has to wait.

**The kernel gives it back when its holder dies.**  The mutex is also
``PTHREAD_MUTEX_ROBUST``: the C library keeps every robust mutex a thread
holds on a list the kernel knows (``set_robust_list``), and when the thread
dies, however it dies, the kernel marks each one "owner died" and wakes a
waiter.  The next ``pthread_mutex_lock`` then succeeds with ``EOWNERDEAD``.
This lock calls ``pthread_mutex_consistent`` at once and tells its caller,
whose undo log (:mod:`.journal`) is what actually repairs the heap: every
holder rolls back a non-empty log before anything else, whatever the mutex
said.  Declaring the mutex consistent *before* the repair is safe for that
reason: a holder killed during the repair leaves the log non-empty and the
mutex on its robust list, so the next holder gets ``EOWNERDEAD`` and repairs
again; and an exception during the repair cannot leave the mutex
``ENOTRECOVERABLE`` (which unlocking without ``pthread_mutex_consistent``
would, for good).

**Reachable from pure Python.**  ``ctypes`` (standard library) calls the C
library's ``pthread_mutex_*`` on the mutex's address in the mapping, so a
process without the C core, or with ``SLABALLOC_PURE=1``, takes the very same
mutex as the C core's ``alloc``/``free`` (``csrc/shared_heap.c``) in other
processes or threads.  A ``ctypes`` call lets go of the GIL while it runs, so
a thread waiting for the mutex never holds the GIL (see the C file for why
that order cannot deadlock).  A busy mutex is first tried again
:data:`YIELDS` times, each after giving the CPU away (``sched_yield``: a
holder keeps it for well under a microsecond, and may be waiting for a CPU),
then waited for in slices of :data:`WAIT_SLICE` seconds, so that Ctrl-C
reaches a process waiting behind a stopped holder.

**Which lock a segment uses** is a word of its header (``H_LOCK_KIND``),
written by its creator before the segment can be attached: processes can
never disagree.  There is one kind, :data:`ROBUST_MUTEX`; a system without
robust process-shared mutexes (macOS has none) gets an
:class:`~slaballoc.errors.UnsupportedPlatformError` (the heap needs Linux
anyway: ``/proc`` names its processes).
"""

from __future__ import annotations

import errno
import os
import sys
import time
from typing import Any

try:
    import ctypes
except ImportError:  # pragma: no cover - a CPython built without libffi
    ctypes = None  # type: ignore[assignment]

from ..errors import InvariantError, UnsupportedPlatformError

__all__ = ["ROBUST_MUTEX", "WAIT_SLICE", "YIELDS", "HeapLock"]

#: The lock kind of every segment this slaballoc makes: the header's ``H_LOCK_KIND``.
ROBUST_MUTEX = 1
#: How many times a busy mutex is tried again, each after ``sched_yield``, before
#: the waiter sleeps: sleeping at once made every unlock a system call (a futex
#: wake) and four processes on two CPUs half as fast as one (csrc/shared_heap.c).
YIELDS = 200
#: The longest a waiter sleeps before it lets signal handlers (Ctrl-C) run.
WAIT_SLICE = 0.05

# <pthread.h> on Linux (glibc and musl alike).
_PTHREAD_PROCESS_SHARED = 1
_PTHREAD_MUTEX_ROBUST = 1
# sizeof(pthread_mutexattr_t) is 4 on Linux; a generous buffer costs nothing.
_ATTRIBUTES_BYTES = 64

_library: Any = None


def _pthread() -> Any:
    """The C library's pthread functions through ``ctypes``, typed; found once."""
    global _library  # noqa: PLW0603 -- one handle per process
    if _library is not None:
        return _library
    if ctypes is None or not sys.platform.startswith("linux"):
        raise _unsupported()
    library = ctypes.CDLL(None)  # the C library, as linked into this interpreter
    pointer, number = ctypes.c_void_p, ctypes.c_int
    signatures = {
        "pthread_mutexattr_init": [pointer],
        "pthread_mutexattr_setpshared": [pointer, number],
        "pthread_mutexattr_setrobust": [pointer, number],
        "pthread_mutexattr_destroy": [pointer],
        "pthread_mutex_init": [pointer, pointer],
        "pthread_mutex_trylock": [pointer],
        "pthread_mutex_timedlock": [pointer, pointer],  # (mutex, const struct timespec *)
        "pthread_mutex_unlock": [pointer],
        "pthread_mutex_consistent": [pointer],
    }
    if not all(hasattr(library, name) for name in signatures):
        raise _unsupported()
    for name, arguments in signatures.items():
        function = getattr(library, name)
        function.restype = number
        function.argtypes = arguments
    _library = library
    return library


class HeapLock:
    """The robust process-shared mutex at byte ``at`` of the buffer under ``words``.

    ``words`` must stay unreleased while the lock is used (it keeps the
    mapping, and so the address, valid).

    >>> words = memoryview(bytearray(512)).cast("q")
    >>> lock = HeapLock(words, 384)
    >>> lock.initialise()  # once, by whoever makes the memory
    >>> lock.acquire()  # False: the last holder did not die holding it
    False
    >>> lock.release()
    """

    __slots__ = ("_address",)

    def __init__(self, words: memoryview, at: int) -> None:
        _pthread()  # refuse a system without robust mutexes before anything else
        # The ctypes object that exports the buffer to find the address is dropped
        # at once (an export would keep the mapping from ever closing); the address
        # stays valid for as long as ``words`` is not released.
        self._address: int = ctypes.addressof(ctypes.c_char.from_buffer(words, at))

    def initialise(self) -> None:
        """Make the mutex: process-shared and robust.  Only the creator, before attaching."""
        pthread = _pthread()
        attributes = ctypes.create_string_buffer(_ATTRIBUTES_BYTES)
        _check(pthread.pthread_mutexattr_init(attributes), "pthread_mutexattr_init")
        try:
            _check(
                pthread.pthread_mutexattr_setpshared(attributes, _PTHREAD_PROCESS_SHARED),
                "pthread_mutexattr_setpshared",
            )
            _check(
                pthread.pthread_mutexattr_setrobust(attributes, _PTHREAD_MUTEX_ROBUST),
                "pthread_mutexattr_setrobust",
            )
            _check(
                pthread.pthread_mutex_init(self._address, attributes),
                "pthread_mutex_init",
            )
        finally:
            pthread.pthread_mutexattr_destroy(attributes)

    def acquire(self) -> bool:
        """Wait for the mutex; True if its last holder died holding it (repair the heap).

        Waits without the GIL, in slices of :data:`WAIT_SLICE` seconds
        between which signal handlers run.
        """
        pthread, address = _pthread(), self._address
        status = pthread.pthread_mutex_trylock(address)  # a free mutex: no clock, no wait
        for _ in range(YIELDS):
            if status != errno.EBUSY:
                break
            os.sched_yield()  # (lets go of the GIL)
            status = pthread.pthread_mutex_trylock(address)
        while status in (errno.EBUSY, errno.ETIMEDOUT):
            deadline = time.time() + WAIT_SLICE
            seconds = int(deadline)
            until = (ctypes.c_long * 2)(seconds, int((deadline - seconds) * 1e9))  # timespec
            status = pthread.pthread_mutex_timedlock(address, until)
        if status == errno.EOWNERDEAD:
            # Consistent at once: the journal, not the mutex, says whether to repair.
            status = pthread.pthread_mutex_consistent(address)
            if status:  # (cannot happen for a robust mutex held after EOWNERDEAD)
                pthread.pthread_mutex_unlock(address)
                _check(status, "pthread_mutex_consistent")
            return True
        if status == errno.ENOTRECOVERABLE:  # (glibc tells the first caller only)
            raise InvariantError(
                "the heap's lock cannot be recovered (a process gave it back after its holder "
                "died, without marking it consistent: not slaballoc): remove the heap "
                "(slaballoc shm rm) and create it again"
            )
        _check(status, "pthread_mutex_timedlock")
        return False

    def release(self) -> None:
        """Let the next waiter in."""
        _check(_pthread().pthread_mutex_unlock(self._address), "pthread_mutex_unlock")

    def __enter__(self) -> HeapLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _unsupported() -> UnsupportedPlatformError:
    return UnsupportedPlatformError(
        "this system has no robust process-shared mutexes (pthread_mutex_consistent): "
        "SharedHeap needs Linux"
    )


def _check(status: int, function: str) -> None:
    if status:
        raise OSError(status, f"{function}: {os.strerror(status)}")
