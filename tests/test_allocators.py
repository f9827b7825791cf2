"""The three allocators through their public API: the seed's scenarios and bad input."""

from __future__ import annotations

import mmap
from collections.abc import Callable
from multiprocessing.shared_memory import SharedMemory

import pytest

from conftest import Allocator, state, take
from slaballoc import (
    AllocatorClosedError,
    DoubleFreeError,
    DynamicSlab,
    FreeListSlab,
    InvalidFreeError,
    InvalidSizeError,
    LinearSlab,
    OutOfMemoryError,
    SizeTooLargeError,
    SizeTypeError,
)

Make = Callable[..., Allocator]


# -- construction ----------------------------------------------------------------------


def test_default_is_the_seeds_4096_bytes(make: Make) -> None:
    allocator = make()
    assert allocator.capacity == 4096
    assert (allocator.used, len(allocator)) == (0, 0)


def test_fixed_slabs_default_to_64_slots_of_64_bytes() -> None:
    for cls in (LinearSlab, FreeListSlab):
        slab = cls()
        assert (slab.slot_count, slab.slot_size) == (64, 64)


def test_buffer_is_managed_in_place_without_copying(make: Make) -> None:
    backing = bytearray(1024)
    allocator = make(buffer=backing)
    view = take(allocator)
    view[0:3] = b"abc"
    offset = allocator.offset_of(view)
    assert backing[offset : offset + 3] == b"abc"


def test_mmap_buffer_and_close_lets_the_mmap_close(make: Make) -> None:
    region = mmap.mmap(-1, 4096)
    allocator = make(buffer=region)
    take(allocator)[0] = 7
    allocator.close()
    region.close()  # would raise BufferError if a view were still exported


def test_shared_memory_round_trip(make: Make) -> None:
    shared = SharedMemory(create=True, size=4096)
    try:
        with make(buffer=shared.buf) as allocator:
            view = take(allocator, 16)
            view[:5] = b"hello"
            offset = allocator.offset_of(view)
        other = SharedMemory(name=shared.name)  # as another process would attach
        assert other.buf is not None
        assert bytes(other.buf[offset : offset + 5]) == b"hello"
        other.close()
    finally:
        shared.close()
        shared.unlink()


def test_numpy_array_as_buffer(make: Make) -> None:
    numpy = pytest.importorskip("numpy")
    array = numpy.zeros((16, 64), dtype=numpy.float64)  # 8192 bytes, two dimensions
    allocator = make(buffer=array)
    assert allocator.capacity == 8192
    view = take(allocator, 64)
    offset = allocator.offset_of(view)
    view.cast("d")[0] = 2.5
    assert array.reshape(-1)[offset // 8] == 2.5


def test_capacity_limits_a_buffer_to_its_start(make: Make) -> None:
    allocator = make(capacity=512, buffer=bytearray(1024))
    assert allocator.capacity == 512


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"buffer": b"read-only"}, TypeError),
        ({"buffer": 12}, TypeError),
        ({"capacity": 2048, "buffer": bytearray(1024)}, ValueError),
        ({"capacity": -1}, InvalidSizeError),
        ({"capacity": 1.5}, SizeTypeError),
    ],
)
def test_bad_construction_is_refused(make: Make, kwargs: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        make(**kwargs)


def test_non_contiguous_buffer_is_refused() -> None:
    numpy = pytest.importorskip("numpy")
    with pytest.raises(ValueError, match="contiguous"):
        FreeListSlab(buffer=numpy.zeros((64, 64), dtype=numpy.uint8)[:, ::2])


@pytest.mark.parametrize("slot_size", [0, -64, True, "64"])
def test_bad_slot_size_is_refused(slot_size: object) -> None:
    with pytest.raises((InvalidSizeError, SizeTypeError)):
        FreeListSlab(slot_size=slot_size)  # type: ignore[arg-type]


@pytest.mark.parametrize("alignment", [0, 3, 12, -8])
def test_alignment_must_be_a_power_of_two(alignment: int) -> None:
    with pytest.raises(InvalidSizeError, match="power of two"):
        DynamicSlab(alignment=alignment)


# -- the seed's scenarios ----------------------------------------------------------------


def test_alloc_returns_writable_view_of_exact_size(make: Make) -> None:
    allocator = make()
    view = take(allocator, 10)
    assert isinstance(view, memoryview)
    assert not view.readonly
    assert len(view) == (10 if isinstance(allocator, DynamicSlab) else 64)
    view[0] = 0x42
    view[-1] = 0xFF
    assert (view[0], view[-1]) == (0x42, 0xFF)


@pytest.mark.parametrize(
    ("cls", "reused_slots"),
    [
        (FreeListSlab, [3, 1]),  # last freed, first reused
        (LinearSlab, [1, 3]),  # the lowest free slot, whatever the order of the frees
    ],
)
def test_reuse_order(cls: type[Allocator], reused_slots: list[int]) -> None:
    slab = cls()
    views = [take(slab) for _ in range(5)]
    slab.free(views[1])
    slab.free(views[3])
    assert [slab.offset_of(take(slab)) // 64 for _ in reused_slots] == reused_slots


def test_fill_then_out_of_memory_changes_nothing(make: Make) -> None:
    allocator = make()
    views = [take(allocator, 64) for _ in range(64)]
    for number, view in enumerate(views):
        view[0] = number
    assert allocator.used == allocator.capacity
    before = state(allocator)
    with pytest.raises(OutOfMemoryError) as caught:
        take(allocator, 1)
    assert isinstance(caught.value, MemoryError)
    assert "free" in str(caught.value)
    assert state(allocator) == before
    assert [view[0] for view in views] == list(range(64))


def test_free_all_then_allocate_again(make: Make) -> None:
    allocator = make()
    views = [take(allocator, size) for size in (10, 256, 1000, 64, 500)]
    for view in views:
        allocator.free(view)
    assert (allocator.used, len(allocator)) == (0, 0)
    allocator.check()
    assert len(take(allocator, 64)) == 64


def test_dynamic_coalesces_to_one_block_whatever_the_free_order() -> None:
    slab = DynamicSlab()
    views = [slab.alloc(size) for size in (10, 256, 1000, 64, 500)]
    for index in (1, 3, 0, 4, 2):
        slab.free(views[index])
        slab.check()
    assert [(b.offset, b.size, b.live) for b in slab.blocks()] == [(0, 4096, False)]
    assert len(slab.alloc(4096)) == 4096


def test_dynamic_best_fit_prefers_smallest_hole_then_lowest_address() -> None:
    slab = DynamicSlab(capacity=4096)
    a, _, b, _, c, _ = (slab.alloc(n) for n in (300, 8, 100, 8, 100, 8))
    slab.free(a)  # 304-byte hole at 0
    slab.free(b)  # 104-byte hole
    slab.free(c)  # 104-byte hole, higher
    low = slab.alloc(90)  # smallest fit: the lower 104-byte hole, not the 304 one
    assert slab.offset_of(low) == 312
    assert slab.offset_of(slab.alloc(90)) == 424
    assert slab.offset_of(slab.alloc(90)) == 0  # now only the 304-byte hole fits


def test_dynamic_alignment_applies_to_every_block() -> None:
    slab = DynamicSlab(capacity=4096, alignment=64)
    offsets = [slab.offset_of(slab.alloc(size)) for size in (1, 65, 7, 200)]
    assert all(offset % 64 == 0 for offset in offsets)
    assert offsets == [0, 64, 192, 256]


def test_dynamic_realloc_in_place_shrink_and_grow() -> None:
    slab = DynamicSlab()
    view = slab.alloc(100)
    view[:4] = b"data"
    smaller = slab.realloc(view, 40)
    assert (slab.offset_of(smaller), len(smaller), bytes(smaller[:4])) == (0, 40, b"data")
    with pytest.raises(ValueError, match="released"):
        view[0]
    larger = slab.realloc(smaller, 2000)  # grows into the free space after it
    assert (slab.offset_of(larger), len(larger), bytes(larger[:4])) == (0, 2000, b"data")
    slab.check()


def test_dynamic_realloc_moves_when_it_must_and_keeps_contents() -> None:
    slab = DynamicSlab()
    first = slab.alloc(64)
    first[:] = bytes(range(64))
    blocker = slab.alloc(64)
    moved = slab.realloc(first, 128)
    assert slab.offset_of(moved) == 128
    assert bytes(moved[:64]) == bytes(range(64))
    assert slab.offset_of(blocker) == 64
    slab.check()


def test_dynamic_realloc_failure_changes_nothing() -> None:
    slab = DynamicSlab()
    view = slab.alloc(2048)
    other = slab.alloc(1024)
    view[0] = 9
    before = state(slab)
    with pytest.raises(OutOfMemoryError):
        slab.realloc(view, 3000)
    with pytest.raises(InvalidSizeError):
        slab.realloc(view, 0)
    with pytest.raises(SizeTooLargeError):
        slab.realloc(view, 5000)
    assert state(slab) == before
    assert (view[0], len(other)) == (9, 1024)


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "error"),
    [
        (0, InvalidSizeError),
        (-5, InvalidSizeError),
        (4097, SizeTooLargeError),
        (2.0, SizeTypeError),
        ("8", SizeTypeError),
        (True, SizeTypeError),
        (None, SizeTypeError),
    ],
)
def test_bad_sizes_are_refused_and_change_nothing(size: object, error: type) -> None:
    slab = DynamicSlab()
    keep = slab.alloc(8)
    keep[0] = 1
    before = state(slab)
    with pytest.raises(error):
        slab.alloc(size)  # type: ignore[arg-type]
    assert state(slab) == before


def test_size_errors_are_the_builtin_kinds() -> None:
    assert issubclass(SizeTypeError, TypeError)
    assert issubclass(InvalidSizeError, ValueError)
    assert issubclass(DoubleFreeError, InvalidFreeError)
    assert issubclass(InvalidFreeError, ValueError)


def test_numpy_integer_sizes_are_accepted() -> None:
    numpy = pytest.importorskip("numpy")
    slab = DynamicSlab()
    assert len(slab.alloc(numpy.int64(24))) == 24


def _foreign_things(allocator: Allocator) -> list[tuple[str, object, type]]:
    other = type(allocator)()
    return [
        ("None", None, InvalidFreeError),
        ("bytearray", bytearray(64), InvalidFreeError),
        ("int", 0, InvalidFreeError),
        ("other allocator's block", take(other), InvalidFreeError),
        ("plain memoryview", memoryview(bytearray(64)), InvalidFreeError),
    ]


def test_invalid_frees_are_refused_and_change_nothing(make: Make) -> None:
    allocator = make()
    live = take(allocator, 32)
    live[0] = 0x42
    for _name, thing, error in _foreign_things(allocator):
        before = state(allocator)
        with pytest.raises(error):
            allocator.free(thing)  # type: ignore[arg-type]
        assert state(allocator) == before
    assert live[0] == 0x42


def test_slice_of_a_block_is_not_a_block(make: Make) -> None:
    allocator = make()
    view = take(allocator, 32)
    before = state(allocator)
    with pytest.raises(InvalidFreeError, match="slice"):
        allocator.free(view[0:8])
    assert state(allocator) == before


@pytest.mark.parametrize("fast", [False, True])
def test_double_free_is_refused_and_changes_nothing(make: Make, fast: bool) -> None:
    allocator = make(fast=fast)
    view = take(allocator, 32)
    other = take(allocator, 32)
    other[0] = 5
    allocator.free(view)
    before = state(allocator)
    expected = InvalidFreeError if fast and isinstance(allocator, DynamicSlab) else DoubleFreeError
    with pytest.raises(expected):
        allocator.free(view)
    assert state(allocator) == before
    assert other[0] == 5


# -- safety ------------------------------------------------------------------------------


def test_use_after_free_raises_in_safe_mode(make: Make) -> None:
    allocator = make()
    view = take(allocator, 64)
    view[0] = 0x42
    allocator.free(view)
    with pytest.raises(ValueError, match="released"):
        view[0]
    with pytest.raises(ValueError, match="released"):
        view[0] = 0xFF
    newcomer = take(allocator, 64)
    newcomer[0] = 0x11
    assert newcomer[0] == 0x11


def test_fast_mode_keeps_the_seeds_use_after_free(make: Make) -> None:
    allocator = make(fast=True)
    assert allocator.fast
    view = take(allocator, 64)
    view[0] = 0x42
    allocator.free(view)
    assert view[0] == 0x42  # the seed's bug, kept on purpose
    newcomer = take(allocator, 64)
    view[0] = 0xFF
    assert newcomer[0] == 0xFF


def test_fast_fixed_slabs_reuse_the_same_view_object() -> None:
    for cls in (LinearSlab, FreeListSlab):
        slab = cls(fast=True)
        view = slab.alloc()
        slab.free(view)
        assert slab.alloc() is view


def test_derived_views_survive_free_as_documented(make: Make) -> None:
    allocator = make()
    view = take(allocator, 64)
    derived = view[0:8]  # the README says slices escape the release
    allocator.free(view)
    derived[0] = 1  # no error: this is the documented limit of the protection
    assert derived[0] == 1


def test_close_releases_views_and_refuses_further_use(make: Make) -> None:
    allocator = make()
    view = take(allocator, 64)
    allocator.close()
    assert allocator.closed
    with pytest.raises(ValueError, match="released"):
        view[0]
    with pytest.raises(AllocatorClosedError):
        take(allocator, 64)
    with pytest.raises(AllocatorClosedError):
        allocator.free(view)
    with pytest.raises(AllocatorClosedError):
        allocator.memory  # noqa: B018
    allocator.close()  # twice is harmless


# -- bulk operations and facts -------------------------------------------------------------


def test_fixed_alloc_many_is_all_or_nothing() -> None:
    slab = FreeListSlab()
    views = slab.alloc_many(60)
    assert len(views) == 60 == len(slab)
    before = state(slab)
    with pytest.raises(OutOfMemoryError, match="only 4"):
        slab.alloc_many(5)
    assert state(slab) == before
    slab.free_many(views)
    assert len(slab) == 0


def test_dynamic_alloc_many_rolls_back_on_failure() -> None:
    slab = DynamicSlab()
    keep = slab.alloc(1000)
    before = state(slab)
    with pytest.raises(OutOfMemoryError):
        slab.alloc_many([1000, 1000, 1000, 1000])
    assert state(slab) == before
    with pytest.raises(InvalidSizeError):
        slab.alloc_many([8, 0])
    assert state(slab) == before
    assert [len(v) for v in slab.alloc_many([8, 16])] == [8, 16]
    assert len(keep) == 1000


def test_free_many_is_all_or_nothing(make: Make) -> None:
    allocator = make()
    first, second = take(allocator), take(allocator)
    before = state(allocator)
    with pytest.raises(DoubleFreeError):
        allocator.free_many([first, first])
    with pytest.raises(InvalidFreeError):
        allocator.free_many([first, bytearray(3)])  # type: ignore[list-item]
    assert state(allocator) == before
    allocator.free_many([first, second])
    assert len(allocator) == 0


def test_stats_report_use_and_fragmentation() -> None:
    slab = DynamicSlab()
    views = [slab.alloc(512) for _ in range(8)]
    for view in views[::2]:
        slab.free(view)
    stats = slab.stats()
    assert (stats.used, stats.free, stats.live_blocks, stats.free_blocks) == (2048, 2048, 4, 4)
    assert stats.largest_free == 512
    assert stats.fragmentation == pytest.approx(0.75)
    assert stats.as_dict()["utilization"] == 0.5


def test_repr_says_what_it_holds(make: Make) -> None:
    allocator = make()
    take(allocator, 64)
    name = type(allocator).__name__
    if isinstance(allocator, DynamicSlab):
        assert repr(allocator) == f"<{name} 1 live block, 64/4096 B used>"
    else:
        assert repr(allocator) == f"<{name} 1/64 slots of 64 B in use>"
    allocator.close()
    assert repr(allocator) == f"<{name} closed>"
