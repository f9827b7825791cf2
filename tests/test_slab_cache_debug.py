"""Debug mode: write after free, overflow into a red zone, and the leak report."""

from __future__ import annotations

import pytest

from slaballoc import InvariantError, MemoryCorruptionError, SlabCache


def test_write_after_free_through_a_slice_is_reported() -> None:
    cache = SlabCache(debug=True)
    block = cache.alloc(40)
    offset = cache.offset_of(block)
    escaped = block[8:16]  # a slice survives the release of the block's view
    cache.free(block)
    escaped[2] = 0x41  # a write after free
    with pytest.raises(InvariantError, match="written after free"):
        cache.check()
    with pytest.raises(MemoryCorruptionError) as raised:
        cache.alloc(40)
    error = raised.value
    assert (error.offset, error.size) == (offset, 48)
    assert f"48-byte object at offset {offset} was written after it was freed" in str(error)
    assert f"byte 10 (offset {offset + 10}) is 0x41" in str(error)
    # The poison is restored and the object stays free: the next alloc gets it, clean.
    again = cache.alloc(40)
    assert cache.offset_of(again) == offset
    cache.check()


def test_an_overflow_into_the_red_zone_is_reported() -> None:
    cache = SlabCache(debug=True)
    block = cache.alloc(40)  # a 48-byte object, then a 16-byte red zone
    offset = cache.offset_of(block)
    cache.memory[offset + 40] = 0  # one byte past the end, as C code or another process might
    with pytest.raises(InvariantError, match="red zone"):
        cache.check()
    with pytest.raises(MemoryCorruptionError) as raised:
        cache.free(block)
    message = str(raised.value)
    assert f"40-byte block at offset {offset} was written past its end" in message
    assert "1 past the end" in message
    assert "block = cache.alloc(40)" in message  # where it was allocated
    assert len(cache) == 0  # the free was done
    cache.check()


def test_an_overflow_into_the_objects_own_slack_is_reported() -> None:
    cache = SlabCache(debug=True)
    block = cache.alloc(33)  # a 48-byte object: bytes 33..47 are slack
    offset = cache.offset_of(block)
    cache.memory[offset + 47] = 7
    with pytest.raises(MemoryCorruptionError, match="15 past the end"):
        cache.free(block)


def test_the_leak_report_names_the_allocating_line() -> None:
    cache = SlabCache(debug=True)
    kept = cache.alloc(100)  # the leaking line
    freed = cache.alloc(100)
    cache.free(freed)
    leaks = cache.leaks()
    assert [(leak.offset, leak.size) for leak in leaks] == [(cache.offset_of(kept), 100)]
    report = str(leaks[0])
    assert __file__ in report
    assert "kept = cache.alloc(100)  # the leaking line" in report
    with pytest.warns(ResourceWarning, match=r"1 block\(s\) still live") as caught:
        cache.close()
    assert "kept = cache.alloc(100)" in str(caught[0].message)


def test_without_debug_there_is_no_poison_and_no_traceback() -> None:
    cache = SlabCache()
    block = cache.alloc(40)
    assert cache.leaks()[0].allocated_at is None
    escaped = block[0:8]
    cache.free(block)
    escaped[0] = 0x41
    cache.alloc(40)  # not checked
    cache.check()


def test_debug_objects_keep_their_alignment() -> None:
    cache = SlabCache(debug=True)
    views = cache.alloc_many(16, 50)
    assert all(cache.offset_of(view) % 16 == 0 for view in views)
    cache.free_many(views)
    cache.check()
