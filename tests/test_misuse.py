"""Misuse a new user or an attacker tries: exported views, almost-integers, half-made allocators.

Every refusal must be a typed error (a SlabError and the built-in that fits) and
must change nothing: the state and every live block's bytes stay as they were.
"""

from __future__ import annotations

import mmap
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.shared_memory import SharedMemory

import pytest

from conftest import Allocator, state, take
from slaballoc import (
    AllocatorClosedError,
    BestFit,
    BlockInUseError,
    BufferTypeError,
    DynamicSlab,
    FreeList,
    FreeListSlab,
    InvalidBufferError,
    InvalidFreeError,
    InvalidSizeError,
    LinearSearch,
    LinearSlab,
    SizeTooLargeError,
    SizeTypeError,
    SlabError,
)

Make = Callable[..., Allocator]


def _filled(allocator: Allocator) -> list[memoryview]:
    """Two blocks with distinct bytes, so that "nothing changed" covers their contents."""
    views = [take(allocator, 24), take(allocator, 40)]
    for number, view in enumerate(views, start=1):
        view[:] = bytes([number]) * len(view)
    return views


# -- 1. a block whose view is still exported is never handed to anyone else -----------------


def test_free_of_an_exported_view_is_refused_and_changes_nothing(make: Make) -> None:
    allocator = make()
    block, _ = _filled(allocator)
    export = pickle.PickleBuffer(block)
    before = state(allocator)
    with pytest.raises(BlockInUseError, match="still exports its view") as error:
        allocator.free(block)
    assert isinstance(error.value, SlabError)
    assert isinstance(error.value, BufferError)
    assert state(allocator) == before
    block[0] = 9  # the view is still the owner's
    allocator.check()
    export.release()
    allocator.free(block)  # and it can go once the export is gone
    allocator.check()
    assert take(allocator, 24) is not None


def test_free_during_a_threads_readinto_waits_for_the_io(make: Make) -> None:
    allocator = make()
    block = take(allocator, 16)
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        reading = threading.Event()

        def read() -> None:
            reading.set()
            pipe.readinto(block)

        reader = threading.Thread(target=read)
        reader.start()
        assert reading.wait(timeout=30)
        time.sleep(0.2)  # readinto is now blocked on the empty pipe, holding an export of the view
        try:
            before = state(allocator)
            with pytest.raises(BlockInUseError):
                allocator.free(block)
            assert state(allocator) == before
        finally:
            os.write(write_end, b"x" * 16)
            reader.join()
            os.close(write_end)
    assert bytes(block[:16]) == b"x" * 16
    allocator.free(block)
    allocator.check()


def test_a_derived_memoryview_is_not_an_export_as_documented(make: Make) -> None:
    # memoryview(view), slices, numpy.frombuffer(view) register on the same buffer
    # as siblings, not as exports of the view: free() cannot see them (README, Safety).
    allocator = make()
    block = take(allocator, 16)
    derived = memoryview(block)
    allocator.free(block)
    assert derived[0] == 0


@pytest.mark.parametrize(
    ("first", "new_size"),
    [(24, 40), (24, 8), (24, 2000)],  # grow in place, shrink in place, move
    ids=["grow", "shrink", "move"],
)
def test_realloc_of_an_exported_view_changes_nothing(first: int, new_size: int) -> None:
    slab = DynamicSlab()
    block = slab.alloc(first)
    block[:] = b"\x07" * first
    if new_size == 2000:
        slab.alloc(8)  # in the way: growing must move
    export = pickle.PickleBuffer(block)
    before = state(slab)
    with pytest.raises(BlockInUseError, match="cannot realloc"):
        slab.realloc(block, new_size)
    assert state(slab) == before  # no leaked new block, the old one as it was
    assert bytes(block) == b"\x07" * first
    slab.check()
    export.release()
    assert len(slab.realloc(block, new_size)) == new_size
    slab.check()


def test_free_many_with_one_exported_view_frees_none(make: Make) -> None:
    allocator = make()
    first, second = _filled(allocator)
    export = pickle.PickleBuffer(second)
    with pytest.raises(BlockInUseError):
        allocator.free_many([first, second])
    assert len(allocator) == 2
    allocator.check()
    export.release()
    allocator.free_many([first, second])
    assert len(allocator) == 0


def test_close_with_an_exported_view_stays_open(make: Make) -> None:
    region = mmap.mmap(-1, 4096)
    allocator = make(buffer=region)
    block = take(allocator, 16)
    export = pickle.PickleBuffer(block)
    with pytest.raises(BlockInUseError, match="cannot close"):
        allocator.close()
    assert not allocator.closed
    assert len(allocator) == 1
    block[0] = 1  # the exported block is intact and still usable
    allocator.check()
    take(allocator, 16)  # and so is the allocator
    export.release()
    allocator.close()
    assert allocator.closed
    region.close()  # the allocator let go of the buffer


def test_close_with_the_whole_memory_exported_changes_nothing(make: Make) -> None:
    allocator = make()
    block = take(allocator, 16)
    export = pickle.PickleBuffer(allocator.memory)
    before = state(allocator)
    with pytest.raises(BlockInUseError, match="whole memory"):
        allocator.close()
    assert not allocator.closed
    assert state(allocator) == before
    block[0] = 3
    export.release()
    allocator.close()


# -- 2. fast mode --------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [LinearSlab, FreeListSlab])
def test_fast_mode_replaces_a_cached_view_its_owner_released(
    cls: type[LinearSlab] | type[FreeListSlab],
) -> None:
    slab = cls(capacity=128, fast=True)
    with slab.alloc() as view:
        view[0] = 1
    slab.check()  # a live block whose view was released is fine
    slab.free(view)
    for _ in range(3):
        again = slab.alloc()
        again[0] = 2  # a working view, not the released one
        slab.check()
        slab.free(again)
    assert again is not view


def test_fast_dynamic_close_releases_views_freed_but_still_referenced() -> None:
    region = mmap.mmap(-1, 4096)
    slab = DynamicSlab(buffer=region, fast=True)
    old = slab.alloc(16)
    slab.free(old)  # fast mode: not released, and the caller still holds it
    moved = slab.realloc(slab.alloc(8), 1000)
    slab.close()
    region.close()  # would raise BufferError if `old` still exported the mmap
    del moved, old


# -- 3. almost-integers ------------------------------------------------------------------


class _IndexOnly:
    """An object with __index__ and nothing else: no +, no comparison."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


def test_an_index_only_size_becomes_a_real_int() -> None:
    slab = DynamicSlab()
    block = slab.alloc(_IndexOnly(16))  # type: ignore[arg-type]
    assert len(block) == 16
    grown = slab.realloc(block, _IndexOnly(32))  # type: ignore[arg-type]
    assert len(grown) == 32
    assert [len(view) for view in slab.alloc_many([_IndexOnly(8)])] == [8]  # type: ignore[list-item]
    slab.check()


@pytest.mark.parametrize("offset", [24.0, False, True, "24", None])
def test_best_fit_refuses_offsets_that_are_not_ints(offset: object) -> None:
    heap = BestFit(256)
    for _ in range(4):
        heap.allocate(24)
    before = (list(heap.blocks()), heap.used, heap.stats())
    for operation in (heap.release, heap.size_of, lambda o: heap.resize(o, 48)):
        with pytest.raises(InvalidFreeError, match="an offset is an int"):
            operation(offset)  # type: ignore[arg-type]
        assert (list(heap.blocks()), heap.used, heap.stats()) == before
    heap.check()


@pytest.mark.parametrize("size", [24.0, False, _IndexOnly(24)])
def test_best_fit_resize_refuses_sizes_that_are_not_ints(size: object) -> None:
    heap = BestFit(256)
    offset = heap.allocate(8)
    if isinstance(size, _IndexOnly):  # accepted, as an int
        assert heap.resize(offset, size)  # type: ignore[arg-type]
        assert heap.size_of(offset) == 24
        return
    with pytest.raises(SizeTypeError):
        heap.resize(offset, size)  # type: ignore[arg-type]
    assert heap.size_of(offset) == 8
    heap.check()


@pytest.mark.parametrize("policy", [FreeList, LinearSearch])
@pytest.mark.parametrize("offset", [64.0, False, True])
def test_slot_policies_refuse_offsets_that_are_not_ints(
    policy: type[FreeList] | type[LinearSearch], offset: object
) -> None:
    slots = policy(256)
    slots.allocate()
    slots.allocate()
    with pytest.raises(InvalidFreeError, match="integer offset"):
        slots.release(offset)  # type: ignore[arg-type]
    assert len(slots) == 2
    slots.check()


# -- 4. all or nothing, whatever is raised ---------------------------------------------------


class _Raising:
    """A size whose conversion to int raises: an interruption half-way through the blocks."""

    def __init__(self, raised: type[BaseException]) -> None:
        self.raised = raised

    def __index__(self) -> int:
        raise self.raised("interrupted")


@pytest.mark.parametrize("raised", [ValueError, KeyboardInterrupt])
def test_dynamic_alloc_many_gives_back_everything_whatever_is_raised(
    raised: type[BaseException],
) -> None:
    slab = DynamicSlab()
    keep = slab.alloc(8)
    before = state(slab)

    def sizes() -> Iterator[int]:
        yield 16
        yield 32
        raise raised("the caller's own failure")

    with pytest.raises(raised):
        slab.alloc_many(sizes())
    assert state(slab) == before
    with pytest.raises(raised):
        slab.alloc_many([16, 32, _Raising(raised)])  # type: ignore[list-item]
    assert state(slab) == before
    assert len(slab) == 1
    slab.free(keep)
    assert [(block.size, block.live) for block in slab.blocks()] == [(4096, False)]


def test_alloc_many_of_sizes_that_allocate_themselves_does_not_deadlock() -> None:
    slab = DynamicSlab()
    result: list[list[memoryview]] = []

    def sizes() -> Iterator[int]:
        yield len(slab.alloc(8))  # the caller's iterable uses the same allocator

    worker = threading.Thread(target=lambda: result.append(slab.alloc_many(sizes())))
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "alloc_many() held its lock while reading the sizes"
    assert [len(view) for view in result[0]] == [8]
    assert len(slab) == 2


# -- 5. closing always lets go of the buffer -------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (FreeListSlab, {"slot_size": 0}),
        (LinearSlab, {"slot_size": -1}),
        (FreeListSlab, {"slot_size": 8192}),
        (DynamicSlab, {"alignment": 3}),
        (DynamicSlab, {"alignment": 8192}),
        (FreeListSlab, {"capacity": 8192}),
    ],
)
def test_a_refused_construction_lets_go_of_the_buffer(
    cls: Callable[..., Allocator], kwargs: dict[str, object]
) -> None:
    refusals: list[SlabError] = []  # kept, as a caller's log would: their tracebacks hold frames
    region = mmap.mmap(-1, 4096)
    try:
        cls(buffer=region, **kwargs)
    except SlabError as error:
        refusals.append(error)
    region.close()  # BufferError here if the refused allocator still held a view
    shared = SharedMemory(create=True, size=4096)
    try:
        try:
            cls(buffer=shared.buf, **kwargs)
        except SlabError as error:
            refusals.append(error)
    finally:
        shared.close()
        shared.unlink()
    assert len(refusals) == 2


# -- 6. an allocator that can hold nothing ---------------------------------------------------


@pytest.mark.parametrize(
    ("make_it", "why"),
    [
        (lambda: FreeListSlab(capacity=10), "10 bytes hold no slot of 64 bytes"),
        (lambda: LinearSlab(buffer=bytearray(32)), "32 bytes hold no slot of 64 bytes"),
        (lambda: DynamicSlab(alignment=8192), "4096 bytes hold no block aligned to 8192"),
        (lambda: DynamicSlab(0), "0 bytes hold no block"),
        (lambda: DynamicSlab(7), "7 bytes hold no block aligned to 8"),
    ],
)
def test_an_allocator_that_could_hold_nothing_is_refused(
    make_it: Callable[[], object], why: str
) -> None:
    with pytest.raises(InvalidSizeError, match=why):
        make_it()


def test_unmanaged_bytes_are_visible() -> None:
    slab = FreeListSlab(capacity=1000)
    assert (slab.capacity, slab.unmanaged) == (960, 40)
    assert "40 B unmanaged" in repr(slab)
    heap = DynamicSlab(capacity=1001)
    assert (heap.capacity, heap.unmanaged) == (1000, 1)
    assert "1 B unmanaged" in repr(heap)
    assert "unmanaged" not in repr(DynamicSlab())


# -- 7. typed errors for bad buffers; closed allocators -------------------------------------


def test_bad_buffers_get_typed_errors(make: Make) -> None:
    with pytest.raises(BufferTypeError, match="read-only"):
        make(buffer=b"read-only")
    with pytest.raises(BufferTypeError, match="buffer protocol"):
        make(buffer=object())
    with pytest.raises(InvalidBufferError, match="C-contiguous"):
        make(buffer=memoryview(bytearray(8192))[::2])
    with pytest.raises(InvalidBufferError, match="capacity 8192 exceeds the buffer's 4096 bytes"):
        make(capacity=8192, buffer=bytearray(4096))
    with pytest.raises(SizeTooLargeError, match="more memory than this machine"):
        make(capacity=2**64)
    assert issubclass(BufferTypeError, TypeError)
    assert issubclass(InvalidBufferError, ValueError)


def test_a_closed_allocator_refuses_every_question_about_blocks(make: Make) -> None:
    allocator = make()
    take(allocator)
    allocator.close()
    for question in (
        allocator.check,
        allocator.stats,
        allocator.blocks,
        lambda: allocator.used,
        lambda: allocator.largest_free,
        lambda: allocator.memory,
        lambda: take(allocator),
    ):
        with pytest.raises(AllocatorClosedError):
            question()
    assert len(allocator) == 0
    assert allocator.capacity == 4096
    assert repr(allocator) == f"<{type(allocator).__name__} closed>"
