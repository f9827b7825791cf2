"""The memory layer, written once for every allocator.

A placement policy (see :mod:`slaballoc.policies.contract`) decides which offset
each block gets.  A :class:`BlockAllocator` turns those offsets into memoryviews
of one buffer and keeps the books of who holds what:

* every view it hands out is registered in ``_live`` (keyed by ``id(view)``,
  holding the view itself so that the id cannot be reused while it is live);
* ``free(view)`` accepts only a registered view, so a foreign object, a slice
  of a block or a block freed already is refused before anything changes;
* in the default (safe) mode ``free`` releases the view *before* the offset
  goes back to the policy: using it after the free raises instead of touching
  memory that may belong to someone else, and a view that something still
  exports (``PickleBuffer(view)``, a ``readinto`` in progress) cannot be
  released, so the block stays live and nothing changes;
* in fast mode views are never released: fixed-size slabs build one view per
  slot and hand the same object out again, as the seed does;
* one lock per allocator serialises every operation, so that threads can share
  it; ``thread_safe=False`` lets ``alloc``, ``free`` and ``realloc`` skip it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import NoReturn, TypeVar

from .errors import (
    AllocatorClosedError,
    BlockInUseError,
    DoubleFreeError,
    InvalidFreeError,
    InvariantError,
    SlabError,
)
from .policies.blocks import Block
from .policies.contract import Placement
from .stats import ArenaStats

__all__ = ["BlockAllocator"]

_Self = TypeVar("_Self", bound="BlockAllocator")

#: What still exports a view when it cannot be released, and what to do.
_EXPORTED = (
    "something still exports its view (pickle.PickleBuffer(view), a readinto/recv_into "
    "in progress in another thread...); nothing was changed: "
    "release that export or let the I/O finish, then try again"
)


def _is_released(view: memoryview) -> bool:
    """True if ``view.release()`` was called (memoryview has no attribute for it)."""
    try:
        view.obj  # noqa: B018  (reading it is the test)
    except ValueError:
        return True
    return False


class BlockAllocator:
    """Base class of every allocator: views, safety and bookkeeping over a policy.

    Subclasses add ``alloc`` (and, for variable sizes, ``realloc``); everything
    else (freeing, the facts, ``check()``, closing, the lock) lives here.  Each
    public operation takes the lock and runs its body, a method of the same
    name with a leading underscore, which never takes it (so bodies can call
    each other).
    """

    __slots__ = (
        "__dict__",  # room for the unlocked shortcuts of thread_safe=False
        "_closed",
        "_fast",
        "_live",
        "_lock",
        "_lock_acquire",
        "_lock_release",
        "_memory",
        "_policy",
        "_put",
        "_take",
        "_unmanaged",
    )

    #: The operations that ``thread_safe=False`` lets skip the lock.
    _UNLOCKED_SHORTCUTS: tuple[str, ...] = ("alloc", "free")

    def __init__(
        self,
        policy: Placement,
        take: Callable[..., int],
        memory: memoryview,
        *,
        fast: bool = False,
        thread_safe: bool = True,
    ) -> None:
        self._policy = policy
        # The policy's primitives: the live table below vouches for every offset
        # given back, so the unchecked ones are safe here.
        self._take = take
        self._put = policy._put
        self._memory = memory
        self._unmanaged = memory.nbytes - policy.capacity
        self._fast = bool(fast)
        self._closed = False
        # id(view) -> (offset, view) for every block handed out and not yet freed.
        self._live: dict[int, tuple[int, memoryview]] = {}
        self._lock = threading.Lock()
        # The hot operations call these instead of ``with self._lock``: measured 150 ns
        # cheaper per operation here (CPython 3.11), where the lock costs 300-500 ns.
        self._lock_acquire = self._lock.acquire
        self._lock_release = self._lock.release
        if not thread_safe:
            # An instance attribute shadows the locking method: a call goes straight
            # to the body.  (Bound methods make a reference cycle: such an allocator
            # is freed by the garbage collector, so close() it to let go of a buffer.)
            for name in self._UNLOCKED_SHORTCUTS:
                self.__dict__[name] = getattr(self, "_" + name)

    # -- giving memory back ---------------------------------------------------------

    def free(self, view: memoryview) -> None:
        """Give back a block that ``alloc`` returned.  O(1) plus the policy's release.

        In safe mode (the default) the view is released: any later use of it
        raises ``ValueError`` instead of reading or writing memory that may now
        belong to another block.  Raises :class:`~slaballoc.errors.InvalidFreeError`
        for anything that is not a live block of this allocator, and
        :class:`~slaballoc.errors.DoubleFreeError` for a block freed already;
        neither changes anything.

        >>> from slaballoc import FreeListSlab
        >>> slab = FreeListSlab()
        >>> block = slab.alloc()
        >>> slab.free(block)
        >>> slab.free(block)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        slaballoc.errors.DoubleFreeError: this view has been released: ... (double free)

        A view that something still exports cannot be released, so its block
        cannot be handed to anyone else yet: :class:`~slaballoc.errors.BlockInUseError`,
        and the block stays live.

        >>> import pickle
        >>> block = slab.alloc()
        >>> export = pickle.PickleBuffer(block)
        >>> slab.free(block)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        slaballoc.errors.BlockInUseError: cannot free the block at offset 0: something still ...
        >>> export.release()
        >>> slab.free(block)  # now it can go
        """
        self._lock_acquire()
        try:
            self._free(view)
        finally:
            self._lock_release()

    def _free(self, view: memoryview) -> None:
        key = id(view)
        try:
            entry = self._live.pop(key)
        except KeyError:
            raise self._not_live(view) from None
        if not self._fast:
            try:
                view.release()  # first: while it is exported, the block must stay live
            except BufferError:
                self._live[key] = entry
                raise self._in_use(entry[0], "free") from None
        self._put(entry[0])

    def free_many(self, views: Iterable[memoryview]) -> None:
        """Free several blocks: all of them, or (if any is not live) none of them.  O(k).

        >>> from slaballoc import FreeListSlab
        >>> slab = FreeListSlab()
        >>> first, second = slab.alloc(), slab.alloc()
        >>> slab.free_many([first, bytearray(8)])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        slaballoc.errors.InvalidFreeError: cannot free a bytearray: ...
        >>> len(slab)  # nothing was freed
        2
        >>> slab.free_many([first, second]); len(slab)
        0
        """
        batch = list(views)
        with self._lock:
            refusal = self._batch_refusal(batch)
            if refusal is not None:
                raise refusal
            if not self._fast:
                self._release_all(batch, "free_many")
            for view in batch:
                self._free(view)

    # -- facts ----------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """Bytes managed."""
        return self._policy.capacity

    @property
    def used(self) -> int:
        """Bytes handed out (for variable sizes, alignment padding included)."""
        with self._lock:
            self._require_open()
            return self._policy.used

    @property
    def largest_free(self) -> int:
        """The largest block that could be allocated now."""
        with self._lock:
            self._require_open()
            return self._policy.largest_free

    @property
    def unmanaged(self) -> int:
        """Bytes at the end of the memory that no block can use.

        The managed capacity is the memory's size rounded down to whole slots
        (or alignment units); the rest is left alone, and shown by ``repr``.

        >>> from slaballoc import FreeListSlab
        >>> slab = FreeListSlab(capacity=1000)  # 15 slots of 64 bytes
        >>> slab.capacity, slab.unmanaged
        (960, 40)
        >>> slab
        <FreeListSlab 0/15 slots of 64 B in use, 40 B unmanaged>
        """
        return self._unmanaged

    @property
    def fast(self) -> bool:
        """True if views are cached and never released (the seed's behaviour)."""
        return self._fast

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    @property
    def thread_safe(self) -> bool:
        """True unless made with ``thread_safe=False``.

        Then ``alloc``, ``free`` (and ``realloc``) skip the lock, for a
        single-threaded program's speed; the other methods still take it.

        >>> from slaballoc import FreeListSlab
        >>> FreeListSlab().thread_safe, FreeListSlab(thread_safe=False).thread_safe
        (True, False)
        """
        return "free" not in self.__dict__

    @property
    def policy(self) -> Placement:
        """The placement policy that decides which offset each block gets."""
        return self._policy

    @property
    def memory(self) -> memoryview:
        """The whole managed memory (for offset-based access; bypasses the safety)."""
        self._require_open()
        return self._memory

    def __len__(self) -> int:
        """Number of live blocks.  O(1)."""
        return len(self._live)

    def offset_of(self, view: memoryview) -> int:
        """The offset of a live block: a small handle that names it in ``memory``.

        Another process mapping the same memory (``SharedMemory``) finds the
        block at ``memory[offset:offset + len(view)]``.  O(1).

        >>> from slaballoc import DynamicSlab
        >>> slab = DynamicSlab()
        >>> block = slab.alloc(5)
        >>> block[:] = b"hello"
        >>> handle = slab.offset_of(block)
        >>> bytes(slab.memory[handle:handle + 5])
        b'hello'
        """
        with self._lock:
            entry = self._live.get(id(view))
            if entry is None:
                raise self._not_live(view)
            return entry[0]

    def blocks(self) -> Iterator[Block]:
        """Every block (live and free) in address order.  O(n log n).

        >>> from slaballoc import DynamicSlab
        >>> slab = DynamicSlab(capacity=256)
        >>> _ = slab.alloc(100)
        >>> list(slab.blocks())
        [Block(offset=0, size=104, live=True), Block(offset=104, size=152, live=False)]
        """
        with self._lock:
            self._require_open()
            return iter(list(self._policy.blocks()))  # a snapshot: other threads go on

    def stats(self) -> ArenaStats:
        """A snapshot of the memory's use.  O(1) for slots, O(log n) for ``DynamicSlab``.

        >>> from slaballoc import FreeListSlab
        >>> slab = FreeListSlab()
        >>> _ = slab.alloc_many(16)
        >>> stats = slab.stats()
        >>> stats.used, stats.live_blocks, stats.utilization
        (1024, 16, 0.25)
        """
        with self._lock:
            self._require_open()
            return self._policy.stats()

    def check(self) -> None:
        """Verify every invariant of the policy and of the live views.

        Raises :class:`~slaballoc.errors.InvariantError` describing the first
        fault found, and :class:`~slaballoc.errors.AllocatorClosedError` after
        :meth:`close` (there is nothing left to check).  A live block whose view
        its owner released (``with slab.alloc() as view:``) is fine: it stays
        live until freed.  O(n log n); meant for tests and debugging.

        >>> from slaballoc import DynamicSlab
        >>> slab = DynamicSlab()
        >>> _ = slab.alloc(10)
        >>> slab.check()  # silent when all is well
        """
        with self._lock:
            self._require_open()
            self._check()

    def _check(self) -> None:
        self._policy.check()
        if len(self._live) != len(self._policy):
            raise InvariantError(
                f"{len(self._live)} views are live but the policy counts {len(self._policy)}"
            )
        for key, (offset, view) in self._live.items():
            if key != id(view):
                raise InvariantError(f"the view of offset {offset} is filed under a wrong id")
            if _is_released(view):
                continue
            if view.obj is not self._memory.obj:
                raise InvariantError(f"the view of offset {offset} is not a view of this memory")
            if self._policy.size_of(offset) < view.nbytes:
                raise InvariantError(f"the view of offset {offset} is larger than its block")

    # -- closing --------------------------------------------------------------------

    def close(self) -> None:
        """Release every view this allocator made, then its hold on the memory.

        Afterwards the buffer can be resized or closed (``SharedMemory.close()``
        and ``mmap.close()`` refuse while views of them exist), and every use of
        the allocator's blocks raises :class:`~slaballoc.errors.AllocatorClosedError`
        (``stats()``, ``check()``, ``blocks()``, ``used``... included);
        ``capacity`` and the settings stay readable and ``len()`` is 0.
        Views derived from blocks by the caller must be released by the caller.
        Closing twice is harmless.  O(n).

        If a view cannot be released because something still exports it,
        :class:`~slaballoc.errors.BlockInUseError` is raised and the allocator
        stays open with every block live.  A memoryview cannot be un-released,
        so the views released before the exported one was met stay released
        (their blocks stay live: free them as usual), and ``memory`` is a new
        view of the same bytes; release exports before closing.  If
        ``memory`` itself is exported, nothing at all changes.

        >>> import mmap
        >>> from slaballoc import FreeListSlab
        >>> region = mmap.mmap(-1, 4096)
        >>> with FreeListSlab(buffer=region) as slab:
        ...     block = slab.alloc()
        >>> region.close()  # possible: the slab released every view it made
        >>> block[0]
        Traceback (most recent call last):
        ...
        ValueError: operation forbidden on released memoryview object
        """
        with self._lock:
            if self._closed:
                return
            # The whole memory first, keeping a spare so that a refusal later on
            # can put it back: then a failure anywhere leaves the allocator usable.
            memory = self._memory
            spare = memory[:]
            try:
                memory.release()
            except BufferError:
                spare.release()
                raise BlockInUseError(
                    f"cannot close this {type(self).__name__}: something still exports its "
                    "whole memory (slab.memory); nothing was changed: release that export, "
                    "then close again"
                ) from None
            try:
                self._release_all(self._views(), "close")
            except BlockInUseError:
                self._memory = spare
                raise
            spare.release()
            self._closed = True
            self._take = self._refuse_closed
            self._live.clear()
            self._forget_views()

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- for subclasses and errors --------------------------------------------------------

    def _views(self) -> list[memoryview]:
        """Every view this allocator still holds: live ones, and any its subclass keeps."""
        return [view for _, view in self._live.values()]

    def _forget_views(self) -> None:
        """Drop the views the subclass keeps (released already by ``close``)."""

    def _release_all(self, views: Iterable[memoryview], operation: str) -> None:
        """Release every view, or raise :class:`BlockInUseError` at the first exported one."""
        for view in views:
            try:
                view.release()
            except BufferError:
                entry = self._live.get(id(view))
                raise self._in_use(-1 if entry is None else entry[0], operation) from None

    def _in_use(self, offset: int, operation: str) -> BlockInUseError:
        where = "a freed block's view" if offset < 0 else f"the block at offset {offset}"
        return BlockInUseError(f"cannot {operation} {where}: {_EXPORTED}")

    def _require_open(self) -> None:
        if self._closed:
            self._refuse_closed()

    def _refuse_closed(self, *_: object) -> NoReturn:
        raise AllocatorClosedError(f"{type(self).__name__} is closed: create a new one")

    def _batch_refusal(self, batch: list[memoryview]) -> SlabError | None:
        """The error for ``batch``'s first block that is not live or comes twice; None if none.

        O(k).  ``free_many`` asks under the lock before it frees anything; ``SlabCache``'s
        asks to explain a refusal its own fast check has found.
        """
        seen: set[int] = set()
        for view in batch:
            if id(view) in seen:
                return DoubleFreeError(
                    "free_many() was given the same block twice: pass each block once"
                )
            if id(view) not in self._live:
                return self._not_live(view)
            seen.add(id(view))
        return None

    def _not_live(self, obj: object) -> SlabError:
        """Explain why ``obj`` is not a live block of this allocator."""
        name = type(self).__name__
        if self._closed:
            return AllocatorClosedError(f"{name} is closed: its blocks were released")
        if obj is None:
            return InvalidFreeError(
                "cannot free None: alloc() never returns None (it raises OutOfMemoryError)"
            )
        if not isinstance(obj, memoryview):
            return InvalidFreeError(
                f"cannot free a {type(obj).__name__}: pass a memoryview that alloc() returned"
            )
        try:
            owner = obj.obj
        except ValueError:
            return DoubleFreeError(
                "this view has been released: its block was freed already (double free)"
            )
        if owner is self._memory.obj:
            return self._not_live_view_of_this_memory(obj)
        return InvalidFreeError(f"this view is not a block of this {name}: it views other memory")

    def _not_live_view_of_this_memory(self, view: memoryview) -> SlabError:
        del view
        return InvalidFreeError(
            "this view shows this allocator's memory but is not a live block: it is a slice or "
            "copy of one, or (in fast mode) a block freed already; free the view alloc() returned"
        )

    def _repr_notes(self) -> str:
        """The settings and the unmanaged tail, for ``repr``."""
        notes = ", fast" if self._fast else ""
        if not self.thread_safe:
            notes += ", not thread-safe"
        if self._unmanaged:
            notes += f", {self._unmanaged} B unmanaged"
        return notes

    def __repr__(self) -> str:
        if self._closed:
            return f"<{type(self).__name__} closed>"
        live = len(self._live)
        return (
            f"<{type(self).__name__} {live} live block{'' if live == 1 else 's'}, "
            f"{self._policy.used}/{self.capacity} B used{self._repr_notes()}>"
        )
