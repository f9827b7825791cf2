"""The memory layer, written once for every allocator.

A placement policy (see :mod:`slaballoc.policies.contract`) decides which offset
each block gets.  A :class:`BlockAllocator` turns those offsets into memoryviews of one
buffer and keeps the books of who holds what:

* every view it hands out is registered in ``_live`` (keyed by ``id(view)``,
  holding the view itself so that the id cannot be reused while it is live);
* ``free(view)`` accepts only a registered view, so a foreign object, a slice
  of a block or a block freed already is refused before anything changes;
* in the default (safe) mode ``free`` releases the view, so using it after the
  free raises instead of touching memory that may belong to someone else;
* in fast mode views are never released: fixed-size slabs build one view per
  slot and hand the same object out again, as the seed does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import NoReturn, TypeVar

from .errors import (
    AllocatorClosedError,
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


class BlockAllocator:
    """Base class of every allocator: views, safety and bookkeeping over a policy.

    Subclasses add ``alloc`` (and, for variable sizes, ``realloc``); everything
    else (freeing, the facts, ``check()``, closing) lives here.
    """

    __slots__ = ("_closed", "_fast", "_live", "_memory", "_policy", "_put", "_take")

    def __init__(
        self,
        policy: Placement,
        take: Callable[..., int],
        put: Callable[[int], object],
        memory: memoryview,
        *,
        fast: bool = False,
    ) -> None:
        self._policy = policy
        # The policy's primitives: the live table below vouches for every offset
        # given back, so the unchecked ones are safe here.
        self._take = take
        self._memory = memory
        self._fast = bool(fast)
        self._closed = False
        # id(view) -> (offset, view) for every block handed out and not yet freed.
        self._live: dict[int, tuple[int, memoryview]] = {}
        self._put = put

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
        """
        try:
            offset, _ = self._live.pop(id(view))
        except KeyError:
            raise self._not_live(view) from None
        self._put(offset)
        if not self._fast:
            view.release()

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
        seen: set[int] = set()
        for view in batch:
            if id(view) in seen:
                raise DoubleFreeError("free_many() was given the same block twice")
            if id(view) not in self._live:
                raise self._not_live(view)
            seen.add(id(view))
        for view in batch:
            self.free(view)

    # -- facts ----------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """Bytes managed."""
        return self._policy.capacity

    @property
    def used(self) -> int:
        """Bytes handed out (for variable sizes, alignment padding included)."""
        return self._policy.used

    @property
    def largest_free(self) -> int:
        """The largest block that could be allocated now."""
        return self._policy.largest_free

    @property
    def fast(self) -> bool:
        """True if views are cached and never released (the seed's behaviour)."""
        return self._fast

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

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
        return self._policy.blocks()

    def stats(self) -> ArenaStats:
        """A snapshot of the memory's use.  O(1) for slots, O(log n) for ``DynamicSlab``.

        >>> from slaballoc import FreeListSlab
        >>> slab = FreeListSlab()
        >>> _ = slab.alloc_many(16)
        >>> stats = slab.stats()
        >>> stats.used, stats.live_blocks, stats.utilization
        (1024, 16, 0.25)
        """
        return self._policy.stats()

    def check(self) -> None:
        """Verify every invariant of the policy and of the live views.

        Raises :class:`~slaballoc.errors.InvariantError` describing the first
        fault found.  O(n log n); meant for tests and debugging.

        >>> from slaballoc import DynamicSlab
        >>> slab = DynamicSlab()
        >>> _ = slab.alloc(10)
        >>> slab.check()  # silent when all is well
        """
        self._policy.check()
        if len(self._live) != len(self._policy):
            raise InvariantError(
                f"{len(self._live)} views are live but the policy counts {len(self._policy)}"
            )
        for key, (offset, view) in self._live.items():
            if key != id(view):
                raise InvariantError(f"the view of offset {offset} is filed under a wrong id")
            if not self._fast and view.obj is not self._memory.obj:
                raise InvariantError(f"the view of offset {offset} is not a view of this memory")
            if self._policy.size_of(offset) < view.nbytes:
                raise InvariantError(f"the view of offset {offset} is larger than its block")

    # -- closing --------------------------------------------------------------------

    def close(self) -> None:
        """Release every view this allocator made, then its hold on the memory.

        Afterwards the buffer can be resized or closed (``SharedMemory.close()``
        and ``mmap.close()`` refuse while views of them exist), and every use of
        the allocator raises :class:`~slaballoc.errors.AllocatorClosedError`.
        Views derived from blocks by the caller must be released by the caller.
        Closing twice is harmless.  O(n).

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
        if self._closed:
            return
        self._closed = True
        self._take = self._refuse_closed
        for _, view in self._live.values():
            view.release()
        self._live.clear()
        self._forget_views()
        self._memory.release()

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- for subclasses and errors --------------------------------------------------------

    def _forget_views(self) -> None:
        """Release views the subclass caches (fast mode)."""

    def _require_open(self) -> None:
        if self._closed:
            self._refuse_closed()

    def _refuse_closed(self, *_: object) -> NoReturn:
        raise AllocatorClosedError(f"{type(self).__name__} is closed: create a new one")

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

    def __repr__(self) -> str:
        if self._closed:
            return f"<{type(self).__name__} closed>"
        live = len(self._live)
        mode = ", fast" if self._fast else ""
        return (
            f"<{type(self).__name__} {live} live block{'' if live == 1 else 's'}, "
            f"{self.used}/{self.capacity} B used{mode}>"
        )
