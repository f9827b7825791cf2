"""SlabCache: classes, slabs, magazines, bulk calls, reports, errors that change nothing."""

from __future__ import annotations

import pickle
import threading

import pytest

from conftest import assert_disjoint
from slaballoc import (
    AllocatorClosedError,
    BlockInUseError,
    DoubleFreeError,
    InvalidFreeError,
    InvalidSizeError,
    OutOfMemoryError,
    SizeClasses,
    SizeTooLargeError,
    SizeTypeError,
    SlabCache,
    SlabError,
)

MIB = 1 << 20


def snapshot(cache: SlabCache) -> tuple[object, ...]:
    """What an error must leave unchanged: every live block, its bytes, and the memory map."""
    memory = cache.memory
    live = [
        (leak.offset, bytes(memory[leak.offset : leak.offset + leak.size]))
        for leak in cache.leaks()
    ]
    return (tuple(live), tuple(cache.blocks()), cache.used, len(cache))


def fill(cache: SlabCache, sizes: list[int]) -> list[memoryview]:
    views = [cache.alloc(size) for size in sizes]
    for number, view in enumerate(views):
        view[:] = bytes([number % 251 + 1]) * len(view)
    return views


def test_what_users_get() -> None:
    cache = SlabCache(capacity=64 << 20)
    buf = cache.alloc(1500)
    assert len(buf) == 1500
    row = next(r for r in cache.slabinfo() if r.active_objects)
    assert row.object_size == 1536
    assert row.wasted_bytes == 36 + row.slabs * (row.slab_bytes - row.objects_per_slab * 1536)
    cache.free(buf)
    views = cache.alloc_many(1500, 32)
    assert [len(view) for view in views] == [1500] * 32
    cache.free_many(views)
    stats = cache.stats()
    assert (stats.allocs, stats.frees, stats.live_blocks) == (33, 33, 0)
    cache.check()


def test_blocks_are_distinct_objects_of_their_class() -> None:
    cache = SlabCache(capacity=MIB)
    sizes = [1, 16, 17, 64, 100, 1500, 4096, 16384, 16385, 100_000]
    views = fill(cache, sizes)
    assert_disjoint((cache.offset_of(v), len(v)) for v in views)
    for number, view in enumerate(views):
        assert bytes(view) == bytes([number % 251 + 1]) * len(view)
        assert cache.offset_of(view) % 16 == 0
    cache.check()


def test_a_class_memory_comes_back_to_serve_a_large_block() -> None:
    cache = SlabCache(capacity=MIB)
    blocks = []
    while True:
        try:
            blocks.append(cache.alloc(64))
        except OutOfMemoryError:
            break
    assert len(blocks) == MIB // 64  # 64-byte slabs waste nothing
    for block in blocks:
        cache.free(block)
    half = cache.alloc(MIB // 2)
    assert len(half) == MIB // 2
    cache.check()


def test_one_class_memory_serves_another() -> None:
    cache = SlabCache(capacity=MIB, keep_empty=0)
    small = cache.alloc_many(64, MIB // 64)
    cache.free_many(small)
    large_objects = cache.alloc_many(4096, MIB // 4096)
    assert len(large_objects) == MIB // 4096
    cache.check()


def test_partial_slabs_are_preferred_and_empty_slabs_go_back() -> None:
    cache = SlabCache(capacity=MIB, magazine_size=0, keep_empty=1)
    per_slab = 4096 // 64
    first, second, third = (cache.alloc_many(64, per_slab) for _ in range(3))
    assert cache.slabinfo()[3].slabs == 3
    cache.free(first[0])  # the first slab is now partial
    again = cache.alloc(64)
    assert cache.offset_of(again) < cache.offset_of(second[0])  # taken from the partial slab
    cache.free_many([*second, *third])  # two slabs empty: one kept, one given back
    assert cache.slabinfo()[3].slabs == 2
    cache.check()


def test_magazines_hit_on_the_common_path() -> None:
    cache = SlabCache(capacity=MIB)
    for _ in range(1000):
        cache.free(cache.alloc(64))
    row = cache.slabinfo()[3]
    assert (row.allocs, row.frees) == (1000, 1000)
    assert row.magazine_misses == 1  # the first alloc filled the magazine in bulk
    assert cache.stats().hit_rate > 0.99


def test_magazines_off_go_to_the_slabs_every_time() -> None:
    cache = SlabCache(capacity=MIB, magazine_size=0)
    for _ in range(10):
        cache.free(cache.alloc(64))
    row = cache.slabinfo()[3]
    assert (row.magazine_hits, row.magazine_misses, row.cached_objects) == (0, 20, 0)
    cache.check()


def test_a_block_freed_by_another_thread_goes_back() -> None:
    cache = SlabCache(capacity=MIB)
    blocks = cache.alloc_many(64, 200)
    worker = threading.Thread(target=cache.free_many, args=(blocks,))
    worker.start()
    worker.join()
    assert len(cache) == 0
    cache.check()
    # The exited thread's magazines return to the slabs when memory runs short.
    assert len(cache.alloc(MIB - 4096)) == MIB - 4096
    cache.check()


def test_users_own_classes() -> None:
    cache = SlabCache(capacity=MIB, size_classes=[24, 40, 1000], alignment=8)
    assert cache.size_classes == (24, 40, 1000)
    block = cache.alloc(30)
    assert [row.active_objects for row in cache.slabinfo()] == [0, 1, 0]
    assert cache.offset_of(block) % 8 == 0
    assert len(cache.alloc(1001)) == 1001  # larger than every class: the backing store
    cache.check()


def test_default_classes_bound_the_waste() -> None:
    classes = SizeClasses()
    for size in range(1, classes.largest + 1):
        object_size = classes.sizes[classes.index_of(size)]
        assert object_size >= size
        assert object_size - size <= classes.waste_bound(object_size)
        assert classes.waste_bound(object_size) <= max(15, object_size // 5)  # the documented bound


def test_realloc_keeps_contents_in_place_or_moved() -> None:
    cache = SlabCache(capacity=MIB)
    block = cache.alloc(20)
    block[:] = bytes(range(20))
    same = cache.realloc(block, 30)
    assert bytes(same[:20]) == bytes(range(20))
    moved = cache.realloc(same, 5000)
    assert bytes(moved[:20]) == bytes(range(20))
    large = cache.realloc(moved, 50_000)
    assert bytes(large[:20]) == bytes(range(20))
    back = cache.realloc(large, 10)
    assert bytes(back) == bytes(range(10))
    assert len(cache) == 1
    cache.check()


BAD_SIZES = [
    (0, InvalidSizeError),
    (-5, InvalidSizeError),
    (1.5, SizeTypeError),
    (True, SizeTypeError),
    ("64", SizeTypeError),
    (None, SizeTypeError),
    (MIB + 1, SizeTooLargeError),
]


@pytest.mark.parametrize(("size", "error"), BAD_SIZES)
def test_bad_sizes_change_nothing(size: object, error: type[SlabError]) -> None:
    cache = SlabCache(capacity=MIB)
    views = fill(cache, [10, 100, 20_000])
    before = snapshot(cache)
    with pytest.raises(error):
        cache.alloc(size)  # type: ignore[arg-type]
    with pytest.raises(error):
        cache.alloc_many(size, 2)  # type: ignore[arg-type]
    with pytest.raises(error):
        cache.realloc(views[0], size)  # type: ignore[arg-type]
    assert snapshot(cache) == before
    cache.check()


@pytest.mark.parametrize("count", [-1, 1.0, "2"])
def test_bad_counts_change_nothing(count: object) -> None:
    cache = SlabCache(capacity=MIB)
    fill(cache, [10])
    before = snapshot(cache)
    with pytest.raises((InvalidSizeError, SizeTypeError)):
        cache.alloc_many(64, count)  # type: ignore[arg-type]
    assert snapshot(cache) == before


def test_bad_frees_change_nothing() -> None:
    cache = SlabCache(capacity=MIB)
    views = fill(cache, [10, 100, 20_000])
    freed = cache.alloc(64)
    cache.free(freed)
    other = SlabCache(capacity=MIB).alloc(10)
    before = snapshot(cache)
    with pytest.raises(InvalidFreeError, match="None"):
        cache.free(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidFreeError, match="bytearray"):
        cache.free(bytearray(8))  # type: ignore[arg-type]
    with pytest.raises(InvalidFreeError, match="slice"):
        cache.free(views[1][2:5])
    with pytest.raises(InvalidFreeError, match="other memory"):
        cache.free(other)
    with pytest.raises(DoubleFreeError):
        cache.free(freed)
    with pytest.raises(DoubleFreeError):
        cache.free_many([views[0], views[0]])
    with pytest.raises(InvalidFreeError):
        cache.free_many([views[0], views[1][1:]])
    with pytest.raises(DoubleFreeError):
        cache.realloc(freed, 10)
    assert snapshot(cache) == before
    cache.check()


def test_running_out_changes_nothing() -> None:
    cache = SlabCache(capacity=64 << 10)
    views = fill(cache, [10, 100, 3000, 20_000])
    before = snapshot(cache)
    with pytest.raises(OutOfMemoryError) as raised:
        cache.alloc(40_000)
    assert raised.value.requested == 40_000
    with pytest.raises(OutOfMemoryError, match="100 blocks of 4000 bytes"):
        cache.alloc_many(4000, 100)
    with pytest.raises(OutOfMemoryError):
        cache.alloc_many(50_000, 1)
    with pytest.raises(OutOfMemoryError):
        cache.realloc(views[3], 60_000)
    assert snapshot(cache) == before
    cache.check()


def test_closed_cache_refuses_everything() -> None:
    cache = SlabCache(capacity=MIB)
    block = cache.alloc(64)
    cache.close()
    with pytest.raises(AllocatorClosedError):
        cache.alloc(64)
    with pytest.raises(AllocatorClosedError):
        cache.alloc(100_000)
    with pytest.raises(AllocatorClosedError):
        cache.alloc_many(64, 2)
    with pytest.raises(AllocatorClosedError):
        cache.free(block)
    with pytest.raises(ValueError, match="released"):
        block[0]
    cache.close()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"size_classes": []}, InvalidSizeError),
        ({"size_classes": [32, 16]}, InvalidSizeError),
        ({"size_classes": [24]}, InvalidSizeError),  # not a multiple of 16
        ({"size_classes": 64}, SizeTypeError),
        ({"magazine_size": -1}, InvalidSizeError),
        ({"magazine_size": 10_000}, InvalidSizeError),
        ({"keep_empty": -1}, InvalidSizeError),
        ({"alignment": 12}, InvalidSizeError),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], error: type[SlabError]) -> None:
    with pytest.raises(error):
        SlabCache(capacity=MIB, **options)  # type: ignore[arg-type]


def test_buffer_is_used_in_place() -> None:
    memory = bytearray(MIB)
    cache = SlabCache(buffer=memory)
    block = cache.alloc(5)
    block[:] = b"hello"
    offset = cache.offset_of(block)
    assert memory[offset : offset + 5] == b"hello"


@pytest.mark.parametrize(("old", "new"), [(20, 30), (20, 5000), (20_000, 40_000), (40_000, 20_000)])
def test_realloc_of_an_exported_view_changes_nothing(old: int, new: int) -> None:
    cache = SlabCache(capacity=MIB)
    block = fill(cache, [old])[0]
    before = snapshot(cache)
    export = pickle.PickleBuffer(block)
    with pytest.raises(BlockInUseError):
        cache.realloc(block, new)
    assert snapshot(cache) == before
    cache.check()
    export.release()
    assert len(cache.realloc(block, new)) == new
