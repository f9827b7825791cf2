"""A named shared-memory segment: a file in ``/dev/shm``, opened and mapped by hand.

``multiprocessing.shared_memory.SharedMemory`` registers every segment it
opens with ``resource_tracker``, which unlinks it when *that* process exits,
even a process that only attached (cpython#82300; ``track=False`` exists only
from 3.13), and warns about "leaked" segments.  Opening the file with
``os.open`` and mapping it with ``mmap`` involves no tracker at all: a segment
lives until someone unlinks it, on every supported Python.

The name of a segment is the name of its file, as for ``shm_open``, so
``SharedHeap.attach(name)`` finds a heap made by any process.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import secrets
from collections.abc import Iterator

from ..errors import (
    NotASegmentError,
    SegmentExistsError,
    SegmentNotFoundError,
    SegmentTooLargeError,
)

__all__ = ["SHM_DIR", "Segment", "new_name", "path_of", "segment_names"]

SHM_DIR = "/dev/shm"
_PREFIX = "slaballoc-"


def new_name() -> str:
    """A fresh, unguessable segment name.

    >>> new_name().startswith("slaballoc-")
    True
    """
    return _PREFIX + secrets.token_hex(6)


def path_of(name: object) -> str:
    """The file of segment ``name``; refuse names that are not one plain file name.

    >>> path_of("frames")
    '/dev/shm/frames'
    >>> path_of("../etc/passwd")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    slaballoc.errors.NotASegmentError: a segment name is one file name ...
    """
    if not isinstance(name, str):
        raise NotASegmentError(f"a segment name is a str, got {type(name).__name__}")
    text = name.removeprefix("/")  # shm_open style "/name" is accepted
    if not text or "/" in text or text in (".", "..") or "\0" in text or len(text) > 255:
        raise NotASegmentError(
            f"a segment name is one file name (no '/', at most 255 characters), got {name!r}"
        )
    return os.path.join(SHM_DIR, text)


def segment_names() -> Iterator[str]:
    """The name of every regular file in ``/dev/shm`` (slaballoc's or not)."""
    try:
        entries = list(os.scandir(SHM_DIR))
    except FileNotFoundError:
        return
    for entry in sorted(entries, key=lambda entry: entry.name):
        if entry.is_file(follow_symlinks=False):
            yield entry.name


class Segment:
    """An open, mapped segment: its descriptor, its mapping and its name.

    Closing unmaps and closes; it does not remove the segment (:meth:`unlink`
    does).  If views of the mapping are still held when it closes, the mapping
    stays valid until the last of them goes (Python's ``mmap`` refuses to unmap
    under a live export), so a stale view can never fault.
    """

    __slots__ = ("fd", "map", "name", "path")

    def __init__(self, name: str, path: str, fd: int, size: int) -> None:
        self.name = name
        self.path = path
        self.fd = fd
        self.map: mmap.mmap | None = mmap.mmap(fd, size) if size else None

    @classmethod
    def create(cls, name: str, size: int) -> Segment:
        """Make a new segment of ``size`` bytes; fail if the name is taken or it cannot fit."""
        path = path_of(name)
        _require_room(size)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise SegmentExistsError(
                f"a shared-memory segment named {name!r} exists already: attach to it with "
                "SharedHeap.attach(), choose another name, or remove it "
                f"(slaballoc shm rm {name})"
            ) from None
        try:
            os.ftruncate(fd, size)
            return cls(name, path, fd, size)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise

    @classmethod
    def open(cls, name: str) -> Segment:
        """Open and map an existing segment, whatever it holds."""
        path = path_of(name)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            raise SegmentNotFoundError(
                f"no shared-memory segment is named {name!r}: create it with "
                "SharedHeap.create(), or see `slaballoc shm list`"
            ) from None
        try:
            return cls(name, path, fd, os.fstat(fd).st_size)
        except BaseException:
            os.close(fd)
            raise

    def close(self) -> None:
        """Unmap (when no view is left) and close the descriptor.  Closing twice is harmless."""
        if self.map is not None:
            with contextlib.suppress(BufferError):  # views remain: the mapping goes
                self.map.close()  # with the last of them
            self.map = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    @staticmethod
    def unlink(name: str) -> bool:
        """Remove segment ``name``; False if it was gone already.  Processes attached keep it."""
        try:
            os.unlink(path_of(name))
        except FileNotFoundError:
            return False
        return True


def _require_room(size: int) -> None:
    """Refuse a segment that ``/dev/shm`` has no room for, before any byte is written.

    Without this, ``ftruncate`` succeeds and the first write beyond the room
    kills the process with SIGBUS (Docker gives containers 64 MiB of
    ``/dev/shm`` by default).
    """
    try:
        stats = os.statvfs(SHM_DIR)
    except OSError as error:
        if error.errno == errno.ENOENT:
            raise SegmentNotFoundError(
                f"{SHM_DIR} does not exist: SharedHeap needs Linux shared memory"
            ) from None
        raise
    room = stats.f_bavail * stats.f_frsize
    if size > room:
        raise SegmentTooLargeError(
            f"a segment of {size:,} bytes does not fit: {SHM_DIR} has {room:,} bytes free; "
            "ask for a smaller heap, free space in /dev/shm (slaballoc shm list), or give the "
            "container more (docker run --shm-size=1g)"
        )
