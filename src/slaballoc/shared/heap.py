"""``SharedHeap``: one best-fit heap that independent processes share by name.

The memory handling lives here: opening the segment, taking the lock,
recovering from a crashed holder, running each operation as one journaled
transaction, and turning handles into views and numpy arrays.  Which offset
each block gets is :mod:`.engine`'s business; where each word lives is
:mod:`.layout`'s.

This pure-Python class is the specification.  With the C core, the public
``SharedHeap`` is built from it and the C base ``_core.SharedHeap``
(:func:`~slaballoc._accelerate.accelerated`): ``alloc`` and ``free`` are then
one C call each, lock and transaction included, and everything else (and
every error) is this class's code.
"""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from .._accelerate import accelerated
from .._implementation import core
from ..errors import (
    AllocatorClosedError,
    InvalidHandleError,
    InvariantError,
    LayoutVersionError,
    NotASegmentError,
    NumpyUnavailableError,
    UnsupportedPlatformError,
)
from ..sizes import require_count, require_power_of_two
from ..stats import ArenaStats
from .engine import FlatBestFit, SharedBlock
from .journal import Journal
from .layout import (
    H_CREATOR_PID,
    H_LOCK_KIND,
    H_MAGIC,
    H_VERSION,
    HEADER_WORDS,
    LOCK_AT,
    MAGIC,
    VERSION,
    WORD,
    Layout,
)
from .lock import ROBUST_MUTEX, HeapLock
from .processes import (
    ProcessName,
    attach_process,
    attached_processes,
    detach_process,
    forget_dead,
    is_alive,
)
from .segment import Segment, new_name

__all__ = ["DEFAULT_SHARED_ALIGNMENT", "AttachedProcess", "Reclaimed", "SharedHeap"]

#: Blocks start on cache lines: no false sharing between processes' blocks, and
#: any numpy dtype (and SIMD) is aligned.  Fewer, larger units also keep the
#: hash table small.
DEFAULT_SHARED_ALIGNMENT = 64

_T = TypeVar("_T")


class Reclaimed(NamedTuple):
    """What :meth:`SharedHeap.reclaim_dead` gave back."""

    blocks: int
    bytes: int
    processes: int  # dead processes whose blocks or process slots were cleared


class AttachedProcess(NamedTuple):
    """A process in the heap's process table."""

    pid: int
    born: int
    attachments: int
    alive: bool


def _identity() -> ProcessName:
    me = ProcessName.of(os.getpid())
    if me is None:  # pragma: no cover - /proc is always there on Linux
        raise UnsupportedPlatformError(
            "cannot read /proc/self/stat: SharedHeap needs Linux's /proc"
        )
    return me


class SharedHeap:
    """A best-fit heap in a named shared-memory segment, usable from any process.

    Every process that attaches sees the same blocks; a block is named by an
    int handle (its offset), cheap to send through a queue, pipe or socket.
    Placement is exact address-ordered best fit, as
    :class:`~slaballoc.policies.BestFit`; alloc and free are O(log n).  The
    lock is released by the kernel if its holder dies, and an undo log lets
    the next holder repair whatever a killed process left half done.

    >>> with SharedHeap.create(size=1 << 16) as heap:
    ...     handle = heap.alloc(100)
    ...     heap.view(handle)[:5] = b"hello"
    ...     other = SharedHeap.attach(heap.name)  # as another process would
    ...     bytes(other.view(handle)[:5]), other.size_of(handle)
    ...     other.free(handle)
    ...     other.close()
    ...     heap.stats().used
    (b'hello', 128)
    0
    """

    __slots__ = (
        "__weakref__",
        "_closed",
        "_created",
        "_data",
        "_engine",
        "_journal",
        "_lock",
        "_me",
        "_segment",
        "_words",
        "layout",
    )

    def __init__(self, segment: Segment, layout: Layout, *, created: bool) -> None:
        """Use :meth:`create` or :meth:`attach`."""
        assert segment.map is not None, "a heap's segment is mapped"
        memory = memoryview(segment.map)
        self._segment = segment
        self.layout = layout
        self._created = created
        self._closed = False
        self._words = memory[: layout.data_at].cast("q")
        self._data = memory[layout.data_at : layout.data_at + layout.capacity]
        memory.release()
        self._journal = Journal(self._words, layout.journal_at, layout.journal_entries)
        self._engine = FlatBestFit(self._words, self._journal.put, layout)
        self._lock = HeapLock(self._words, LOCK_AT)
        self._me = _identity()
        _open_heaps.add(self)

    # -- opening --------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        name: str | None = None,
        *,
        size: int,
        alignment: int = DEFAULT_SHARED_ALIGNMENT,
        max_blocks: int | None = None,
    ) -> SharedHeap:
        """Make a new heap of ``size`` bytes of blocks in segment ``name`` (generated if None).

        ``max_blocks`` bounds the live blocks (default: one per 4 KiB of
        ``size``, at least 64): the block records are made up front, about
        100 bytes each.  Used in a ``with`` statement, the creator removes the
        segment on exit.  O(max_blocks).

        >>> with SharedHeap.create("slaballoc-doctest", size=4096) as heap:
        ...     heap.name, heap.capacity, heap.alignment
        ('slaballoc-doctest', 4096, 64)
        """
        size = require_count(size, "size")
        alignment = require_power_of_two(alignment, "alignment")
        capacity = size - size % alignment
        if max_blocks is None:
            max_blocks = max(64, capacity // 4096)
        max_blocks = min(require_count(max_blocks, "max_blocks"), max(1, capacity // alignment))
        layout = Layout.plan(capacity, alignment, max_blocks)
        name = new_name() if name is None else name
        segment = Segment.create(name, layout.file_size)
        try:
            heap = cls(segment, layout, created=True)
            heap._lock.initialise()  # before the magic: no other process can see it yet
            with heap._lock:
                heap._format()
        except BaseException:
            segment.close()
            Segment.unlink(name)
            raise
        return heap

    @classmethod
    def attach(cls, name: str) -> SharedHeap:
        """Open the heap in segment ``name``, made by any process.  O(process slots).

        Attaching never arranges for the segment to be removed: it lives until
        its creator's ``with`` ends, someone calls :meth:`unlink`, or
        ``slaballoc shm rm NAME``.

        >>> with SharedHeap.create(size=4096) as heap:
        ...     with SharedHeap.attach(heap.name) as other:
        ...         other.alloc(100) == heap.blocks()[0].offset
        True
        """
        segment = Segment.open(name)
        try:
            layout = _read_layout(segment)
            heap = cls(segment, layout, created=False)
        except BaseException:
            segment.close()
            raise
        try:
            heap._transact(heap._attach_me)
        except BaseException:
            heap._release_memory()
            raise
        return heap

    def _format(self) -> None:
        """Write the empty heap; the magic last, so a half-made segment is never attached."""
        words = self._words

        def store(index: int, value: int) -> None:
            words[index] = value  # nothing to undo: no other process can see it yet

        for index, value in self.layout.header_words().items():
            words[index] = value
        words[H_CREATOR_PID] = self._me.pid
        words[H_LOCK_KIND] = ROBUST_MUTEX
        FlatBestFit.format(words, store, self.layout)
        attach_process(words, store, self.layout, self._me)
        words[H_MAGIC] = MAGIC

    # -- the operations -------------------------------------------------------------

    def alloc(self, size: int) -> int:
        """Allocate a block of at least ``size`` bytes owned by this process; its handle.

        O(log n).  Raises :class:`~slaballoc.errors.OutOfMemoryError` when no
        free block is large enough (or the heap holds ``max_blocks`` blocks),
        :class:`~slaballoc.errors.SizeTooLargeError` beyond the capacity.

        >>> with SharedHeap.create(size=4096) as heap:
        ...     heap.alloc(10), heap.alloc(100), heap.alloc(10)
        (0, 64, 192)
        """
        me = self._me
        return self._transact(self._engine.allocate, size, me.pid, me.born)

    def free(self, handle: int) -> None:
        """Free the block ``handle``, whoever allocated it.  O(log n).

        Raises :class:`~slaballoc.errors.DoubleFreeError` if the block is free
        already and :class:`~slaballoc.errors.InvalidHandleError` for anything
        else that is not a live block's handle; neither changes anything.

        >>> with SharedHeap.create(size=4096) as heap:
        ...     handle = heap.alloc(10)
        ...     heap.free(handle)
        ...     heap.free(handle)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        slaballoc.errors.DoubleFreeError: the block at handle 0 is free already ...
        """
        self._transact(self._engine.release, handle)

    def adopt(self, handle: int) -> None:
        """Make this process the owner of block ``handle`` (so it outlives its maker).  O(1).

        >>> with SharedHeap.create(size=4096) as heap:
        ...     handle = heap.alloc(10)
        ...     heap.adopt(handle)
        ...     heap.owner(handle).pid == os.getpid()
        True
        """
        me = self._me
        self._transact(self._engine.adopt, handle, me.pid, me.born)

    def view(self, handle: int) -> memoryview:
        """A writable memoryview of exactly the bytes asked for when ``handle`` was allocated.

        Zero copy: every process's view of a block shows the same memory.  A
        view stays usable after the block is freed (no process can revoke
        another's mapping): stop using it before freeing.  O(1).

        >>> with SharedHeap.create(size=4096) as heap:
        ...     view = heap.view(heap.alloc(3))
        ...     view[:] = b"abc"
        ...     len(view), bytes(view)
        (3, b'abc')
        """
        block = self._transact(self._engine.block_at, handle)
        return self._data[block.offset : block.offset + block.request]

    def ndarray(self, shape: int | tuple[int, ...], dtype: Any = "float64") -> tuple[int, Any]:
        """Allocate a block for a numpy array; return ``(handle, array)``.  Needs numpy.

        Another process gets the same array with :meth:`array`.  O(log n).

        >>> import numpy
        >>> with SharedHeap.create(size=1 << 16) as heap:
        ...     handle, frame = heap.ndarray((4, 6), "uint8")
        ...     frame[:] = 7
        ...     int(heap.array(handle, (4, 6), "uint8").sum())
        168
        """
        np = _numpy()
        dims = (shape,) if isinstance(shape, int) else tuple(shape)
        kind = np.dtype(dtype)
        count = math.prod(dims)
        handle = self.alloc(count * kind.itemsize)
        # The block was just made to measure: no need to look it up again (a lock round trip).
        view = self._data[handle : handle + count * kind.itemsize]
        return handle, np.frombuffer(view, dtype=kind, count=count).reshape(dims)

    def array(self, handle: int, shape: int | tuple[int, ...], dtype: Any = "float64") -> Any:
        """The numpy array of ``shape`` and ``dtype`` in block ``handle``, zero copy.  O(1).

        What another process calls on a handle :meth:`ndarray` made (see there).
        """
        np = _numpy()
        dims = (shape,) if isinstance(shape, int) else tuple(shape)
        kind = np.dtype(dtype)
        view = self.view(handle)
        need = math.prod(dims) * kind.itemsize
        if need > len(view):
            raise InvalidHandleError(
                f"an array of shape {dims} and dtype {kind} needs {need} bytes but block "
                f"{handle} holds {len(view)}: pass the shape and dtype it was made with"
            )
        array = np.frombuffer(view, dtype=kind, count=math.prod(dims))
        return array.reshape(dims)

    def reclaim_dead(self) -> Reclaimed:
        """Free every block whose owner process has exited; clear dead processes' slots.

        A process is named by pid and start time, so a new process that got a
        dead one's pid does not keep its blocks alive.  One transaction per
        block.  O(n).

        >>> with SharedHeap.create(size=4096) as heap:
        ...     _ = heap.alloc(10)
        ...     heap.reclaim_dead()  # this process is alive: nothing to give back
        Reclaimed(blocks=0, bytes=0, processes=0)
        """
        return self._transact(self._reclaim_dead)

    def _reclaim_dead(self) -> Reclaimed:
        engine, journal = self._engine, self._journal
        verdicts: dict[tuple[int, int], bool] = {}
        dead_blocks = []
        for block in engine.blocks():
            if block.live:
                owner = (block.pid, block.born)
                if owner not in verdicts:
                    verdicts[owner] = is_alive(*owner)
                if not verdicts[owner]:
                    dead_blocks.append(block.offset)
        freed = 0
        for offset in dead_blocks:
            freed += engine.release(offset)
            journal.commit()
        slots = forget_dead(self._words, journal.put, self.layout)
        dead = {owner for owner, alive in verdicts.items() if not alive}
        return Reclaimed(len(dead_blocks), freed, max(len(dead), slots))

    # -- facts ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The segment's name: what :meth:`attach` takes."""
        return self._segment.name

    @property
    def capacity(self) -> int:
        """Bytes of blocks the heap manages."""
        return self.layout.capacity

    @property
    def alignment(self) -> int:
        """Every block's offset and size are multiples of this."""
        return self.layout.alignment

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def size_of(self, handle: int) -> int:
        """Bytes block ``handle`` occupies (its request rounded up to the alignment).  O(1).

        >>> with SharedHeap.create(size=4096) as heap:
        ...     heap.size_of(heap.alloc(100)), len(heap.view(0))
        (128, 100)
        """
        return self._transact(self._engine.size_of, handle)

    def owner(self, handle: int) -> ProcessName:
        """The process that owns block ``handle``: pid and start time.  O(1).

        >>> with SharedHeap.create(size=4096) as heap:
        ...     heap.owner(heap.alloc(10)).pid == os.getpid()
        True
        """
        block = self._transact(self._engine.block_at, handle)
        return ProcessName(block.pid, block.born)

    def blocks(self) -> list[SharedBlock]:
        """Every block in address order; a live one names its owner's pid and start time.

        O(n).

        >>> with SharedHeap.create(size=4096) as heap:
        ...     _ = heap.alloc(100)
        ...     [(b.offset, b.size, b.live, b.pid == os.getpid()) for b in heap.blocks()]
        [(0, 128, True, True), (128, 3968, False, False)]
        """
        return self._transact(lambda: list(self._engine.blocks()))

    def stats(self) -> ArenaStats:
        """A snapshot of the heap's use.  O(log n).

        >>> with SharedHeap.create(size=4096) as heap:
        ...     _ = heap.alloc(1000)
        ...     stats = heap.stats()
        ...     stats.used, stats.live_blocks, stats.largest_free
        (1024, 1, 3072)
        """
        return self._transact(self._stats)

    def _stats(self) -> ArenaStats:
        engine = self._engine
        free, largest = engine.capacity - engine.used, engine.largest_free
        return ArenaStats(
            capacity=engine.capacity,
            used=engine.used,
            live_blocks=engine.live_blocks,
            free_blocks=engine.free_blocks,
            largest_free=largest,
            fragmentation=1 - largest / free if free else 0.0,
        )

    def __len__(self) -> int:
        """Number of live blocks.  O(1)."""
        return self._transact(lambda: self._engine.live_blocks)

    def processes(self) -> list[AttachedProcess]:
        """The processes attached now (or that died attached), with their liveness.

        O(process slots).

        >>> with SharedHeap.create(size=4096) as heap:
        ...     [(p.pid == os.getpid(), p.attachments, p.alive) for p in heap.processes()]
        [(True, 1, True)]
        """

        def table() -> list[AttachedProcess]:
            return [
                AttachedProcess(process.pid, process.born, count, is_alive(*process))
                for _, process, count in attached_processes(self._words, self.layout)
            ]

        return self._transact(table)

    def check(self) -> None:
        """Repair a crashed operation if one is pending, then verify every invariant.

        Raises :class:`~slaballoc.errors.InvariantError` naming the first fault.
        O(n log n).

        >>> with SharedHeap.create(size=4096) as heap:
        ...     heap.check()  # silent when all is well
        """
        self._transact(self._engine.check)

    # -- closing --------------------------------------------------------------------

    def close(self) -> None:
        """Detach this process and unmap the segment (it stays for other processes).

        Views and arrays made from this heap stay valid (they keep the mapping
        alive until they go), so none can ever touch unmapped memory.  Closing
        twice is harmless.  O(process slots).

        >>> heap = SharedHeap.create(size=4096)
        >>> heap.close(); heap.close()
        >>> heap.alloc(1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        slaballoc.errors.AllocatorClosedError: this SharedHeap (...) is closed: attach again ...
        >>> heap.unlink()
        """
        if self._closed:
            return
        try:
            self._transact(self._detach_me)
        finally:
            self._release_memory()

    def unlink(self) -> None:
        """Remove the segment's name: no process can attach any more.

        Processes attached keep using it; the memory goes when the last one
        closes.  Harmless if the segment is gone already.  O(1).

        >>> heap = SharedHeap.create(size=4096)
        >>> heap.unlink()
        >>> SharedHeap.attach(heap.name)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        slaballoc.errors.SegmentNotFoundError: no shared-memory segment is named ...
        >>> heap.alloc(10)  # still usable here
        0
        >>> heap.close()
        """
        Segment.unlink(self._segment.name)

    def __enter__(self) -> SharedHeap:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close; the creator also unlinks."""
        self.close()
        if self._created:
            self.unlink()

    def __repr__(self) -> str:
        if self._closed:
            return f"<SharedHeap {self.name!r} closed>"
        stats = self.stats()
        return (
            f"<SharedHeap {self.name!r} {stats.live_blocks} live blocks, "
            f"{stats.used}/{stats.capacity} B used>"
        )

    # -- internals ------------------------------------------------------------------

    def _transact(self, operation: Callable[..., _T], *args: Any) -> _T:
        """Run ``operation`` under the lock as one transaction: all of it, or nothing."""
        mapping = self._segment.map
        if self._closed or mapping is None:
            raise self._closed_error()
        lock, journal = self._lock, self._journal
        # The mapping is pinned until the transaction ends: another thread may close
        # the heap while this one waits, and the mutex and the words must stay mapped.
        with memoryview(mapping):
            lock.acquire()  # (True if the last holder died holding it: the log says what to undo)
            try:
                if self._closed:  # by another thread, while this one waited
                    raise self._closed_error()
                if journal.pending():  # the last holder died mid-operation
                    journal.rollback()
                try:
                    result = operation(*args)
                except IndexError as error:
                    # Every index the engine follows comes from the segment's words: one
                    # outside them is a damaged segment, not a caller's mistake.
                    journal.rollback()
                    raise InvariantError(
                        f"heap {self.name!r} is damaged: a word points outside the segment "
                        f"({error}); copy out what you need and remove it (slaballoc shm rm)"
                    ) from None
                except BaseException:
                    journal.rollback()
                    raise
                journal.commit()
            finally:
                lock.release()
        return result

    def _closed_error(self) -> AllocatorClosedError:
        return AllocatorClosedError(
            f"this SharedHeap ({self.name!r}) is closed: attach again to use the heap"
        )

    def _attach_me(self) -> None:
        attach_process(self._words, self._journal.put, self.layout, self._me)

    def _detach_me(self) -> None:
        detach_process(self._words, self._journal.put, self.layout, self._me)

    def _release_memory(self) -> None:
        self._closed = True
        _open_heaps.discard(self)
        self._words.release()
        self._data.release()
        self._segment.close()

    def _forked(self) -> None:
        """In a forked child: attach as the new process it is.

        The mutex needs nothing: it is the same one, in the same shared memory,
        and belongs to threads (one of the parent's that holds it at the fork
        gives it back in the parent).  The child did not create the segment:
        leaving a ``with`` there only closes.
        """
        self._created = False
        self._me = _identity()
        self._transact(self._attach_me)


def _read_layout(segment: Segment) -> Layout:
    """Validate the segment's header; its layout."""
    name = segment.name
    size = os.fstat(segment.fd).st_size
    if segment.map is None or size < HEADER_WORDS * WORD:
        raise NotASegmentError(
            f"shared memory {name!r} ({size} bytes) is not a slaballoc heap: "
            "check the name (slaballoc shm list shows the heaps)"
        )
    with memoryview(segment.map) as memory, memory[: HEADER_WORDS * WORD].cast("q") as header:
        if header[H_MAGIC] != MAGIC:
            raise NotASegmentError(
                f"shared memory {name!r} is not a slaballoc heap (or is still being created): "
                "check the name (slaballoc shm list shows the heaps)"
            )
        if header[H_VERSION] != VERSION:
            raise LayoutVersionError(
                f"heap {name!r} has layout version {header[H_VERSION]}, this slaballoc "
                f"reads version {VERSION}: use the same slaballoc version in every process"
            )
        if header[H_LOCK_KIND] != ROBUST_MUTEX:
            raise LayoutVersionError(
                f"heap {name!r} uses lock kind {header[H_LOCK_KIND]}, this slaballoc knows only "
                f"kind {ROBUST_MUTEX} (a robust mutex): use the same slaballoc version in every "
                "process"
            )
        layout = Layout.from_header(header)
    if layout.file_size != size:
        raise InvariantError(
            f"heap {name!r} says it is {layout.file_size} bytes but its file has {size}: "
            "the segment was damaged; remove it (slaballoc shm rm)"
        )
    return layout


def _numpy() -> Any:
    try:
        import numpy  # noqa: PLC0415 -- optional: only these methods need it
    except ModuleNotFoundError:
        raise NumpyUnavailableError(
            "numpy is not installed: pip install numpy, or use view() for raw bytes"
        ) from None
    return numpy


# Every open heap, so that a forked child can take locks of its own (see _forked).
_open_heaps: weakref.WeakSet[SharedHeap] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for heap in list(_open_heaps):
        heap._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)


#: The pure-Python class: the specification, and what runs without the C core.
PureSharedHeap = SharedHeap

if core is not None and hasattr(core, "SharedHeap"):  # not on a free-threaded build
    # The C base serves alloc and free over the words it is handed (_c_open) until
    # it gives them back (_c_close); these three steps of the pure class's life
    # tell it, and everything else is the pure class's own code.

    def _c_init(self: Any, segment: Segment, layout: Layout, *, created: bool) -> None:
        PureSharedHeap.__init__(self, segment, layout, created=created)
        self._c_open(self._words, LOCK_AT, self._me.pid, self._me.born)

    def _c_release_memory(self: Any) -> None:
        self._c_close()  # the C base's buffer of the words goes first, or they cannot
        PureSharedHeap._release_memory(self)

    def _c_forked(self: Any) -> None:
        PureSharedHeap._forked(self)
        self._c_open(self._words, LOCK_AT, self._me.pid, self._me.born)  # the child's name

    SharedHeap = accelerated(  # type: ignore[misc]
        core.SharedHeap,
        PureSharedHeap,
        __init__=_c_init,
        _release_memory=_c_release_memory,
        _forked=_c_forked,
    )
