"""The heap's lock: one holder at a time, and the kernel frees it when the holder dies.

Between processes it is a Linux open-file-description lock (``F_OFD_SETLKW``)
on the whole segment file.  Unlike a classic POSIX record lock (``lockf``),
which belongs to the process and is silently dropped when the process closes
*any* descriptor of the file, an OFD lock belongs to the descriptor this lock
opened, and the kernel releases it when the last reference to that descriptor
goes, including when its holder is killed.  A robust pthread mutex would
give the same guarantee but cannot be reached from pure Python.

Threads of one process share the descriptor, and an OFD lock does not
exclude its own descriptor, so a ``threading.Lock`` is taken first.
"""

from __future__ import annotations

import fcntl
import struct
import threading

from ..errors import UnsupportedPlatformError

__all__ = ["HeapLock"]

# struct flock {short l_type; short l_whence; off_t l_start; off_t l_len; pid_t l_pid;}
# with native alignment; l_pid must be 0 for OFD locks; the whole file (len 0).
_FLOCK = "hhqqi4x"
_LOCK = struct.pack(_FLOCK, fcntl.F_WRLCK, 0, 0, 0, 0)
_UNLOCK = struct.pack(_FLOCK, fcntl.F_UNLCK, 0, 0, 0, 0)
_SETLKW: int | None = getattr(fcntl, "F_OFD_SETLKW", None)
_SETLK: int | None = getattr(fcntl, "F_OFD_SETLK", None)


class HeapLock:
    """A process-shared, crash-released lock on the file open as ``fd``.

    >>> import tempfile
    >>> with tempfile.TemporaryFile() as file:
    ...     lock = HeapLock(file.fileno())
    ...     with lock:
    ...         lock.held()
    True
    """

    __slots__ = ("_fd", "_held", "_thread_lock")

    def __init__(self, fd: int) -> None:
        if _SETLKW is None:
            raise UnsupportedPlatformError(
                "this system has no open-file-description locks (F_OFD_SETLKW): "
                "SharedHeap needs Linux 3.15 or newer"
            )
        self._fd = fd
        self._thread_lock = threading.Lock()
        self._held = False

    def acquire(self) -> None:
        """Wait for the lock: first this process's threads, then other processes."""
        self._thread_lock.acquire()
        try:
            fcntl.fcntl(self._fd, _SETLKW, _LOCK)  # type: ignore[arg-type]
        except BaseException:
            self._thread_lock.release()
            raise
        self._held = True

    def release(self) -> None:
        """Let the next waiter in."""
        self._held = False
        try:
            fcntl.fcntl(self._fd, _SETLK, _UNLOCK)  # type: ignore[arg-type]
        finally:
            self._thread_lock.release()

    @property
    def threads(self) -> threading.Lock:
        """The per-process half alone, for a caller whose C code takes the OFD half itself."""
        return self._thread_lock

    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._held

    def __enter__(self) -> HeapLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
