"""The C core's SharedHeap engine against the Python specification, word for word."""

from __future__ import annotations

import random

import pytest

from shared_workers import run_child
from slaballoc import SharedHeap
from slaballoc._implementation import core
from slaballoc.errors import SlabError
from slaballoc.shared.engine import FlatBestFit
from slaballoc.shared.journal import Journal
from slaballoc.shared.layout import (
    H_ALIGNMENT,
    H_CAPACITY,
    H_HASH_SLOTS,
    H_JOURNAL_AT,
    H_JOURNAL_ENTRIES,
    H_NODES_AT,
    H_ROOT,
    H_SPARE,
    HEADER_WORDS,
    LOCK_AT,
    N_LEFT,
    N_NEXT,
    N_PARENT,
    N_PREV,
    N_RIGHT,
    NODE_WORDS,
    Layout,
)

pytestmark = pytest.mark.skipif(
    core is None or not hasattr(core, "shared_allocate"), reason="the C core is not built"
)


def _formatted(layout: Layout) -> bytearray:
    buffer = bytearray(layout.data_at)
    words = memoryview(buffer).cast("q")
    for index, value in layout.header_words().items():
        words[index] = value

    def store(index: int, value: int) -> None:
        words[index] = value

    FlatBestFit.format(words, store, layout)
    words.release()
    return buffer


class _Side:
    """One copy of the segment's words, with its journal and the Python engine over it."""

    def __init__(self, buffer: bytearray, layout: Layout) -> None:
        self.buffer = buffer
        self.words = memoryview(buffer).cast("q")
        self.journal = Journal(self.words, layout.journal_at, layout.journal_entries)
        self.engine = FlatBestFit(self.words, self.journal.put, layout)


def _outcome(action: object) -> object:
    try:
        return action()  # type: ignore[operator]
    except SlabError as error:
        return type(error).__name__, str(error)


@pytest.mark.parametrize(("alignment", "seed"), [(8, 1), (64, 2), (16, 3)])
def test_c_makes_the_same_stores_as_python(alignment: int, seed: int) -> None:
    """After every operation, both segments are identical, the undo log included.

    Identical logs mean the same words were changed in the same order, so a
    process killed inside the C code leaves what the Python code would have.
    """
    rng = random.Random(seed)
    capacity = 1 << 14
    layout = Layout.plan(capacity, alignment, max_blocks=capacity // alignment // 4)
    c_side = _Side(_formatted(layout), layout)
    py_side = _Side(bytearray(c_side.buffer), layout)
    live: list[int] = []
    declined = allocated = 0
    for step in range(4000):
        roll = rng.random()
        allocating = True
        if roll < 0.45 and live:
            allocating = False
            handle = live.pop(rng.randrange(len(live)))
            c_result = core.shared_release(c_side.words, handle)  # type: ignore[union-attr]
            py_result = _outcome(lambda h=handle: py_side.engine.release(h))
        elif roll < 0.5:  # a bad handle, a freed one, or a size that cannot be served
            bad = rng.choice([-8, capacity, capacity + 8, 3, rng.randrange(0, capacity, 8)])
            if bad in live:
                bad += 1
            if rng.random() < 0.5:
                allocating = False
                c_result = core.shared_release(c_side.words, bad)  # type: ignore[union-attr]
                py_result = _outcome(lambda b=bad: py_side.engine.release(b))
            else:
                size = rng.choice([0, -1, capacity + 1, capacity])
                c_result = core.shared_allocate(c_side.words, size, 7, 9)  # type: ignore[union-attr]
                py_result = _outcome(lambda s=size: py_side.engine.allocate(s, 7, 9))
        else:
            size = rng.choice((rng.randint(1, 64), rng.randint(1, 900)))
            c_result = core.shared_allocate(c_side.words, size, 7, 9)  # type: ignore[union-attr]
            py_result = _outcome(lambda s=size: py_side.engine.allocate(s, 7, 9))
        if allocating and isinstance(py_result, int):  # (the "bad" size capacity fits)
            live.append(py_result)
            allocated += 1
        if c_result is None:  # declined: changed nothing, and Python refused too
            declined += 1
            assert isinstance(py_result, tuple), f"step {step}: C declined what Python did"
            assert c_side.journal.pending() == 0
            py_side.journal.rollback()
        else:
            assert c_result == py_result, f"step {step}"
        assert c_side.buffer == py_side.buffer, f"step {step}: the segments differ"
        c_side.journal.commit()
        py_side.journal.commit()
        if step % 500 == 0:
            py_side.engine.check()
    py_side.engine.check()
    assert declined > 100 and allocated > 1000


def test_c_declines_a_damaged_segment_without_writing() -> None:
    """Indices read from the segment are checked: a damaged one is declined, not followed."""
    layout = Layout.plan(1 << 12, 8, max_blocks=16)
    buffer = _formatted(layout)
    words = memoryview(buffer).cast("q")
    assert core.shared_allocate(words[:10], 8, 1, 1) is None  # type: ignore[union-attr]
    hash_at = words[13]
    words[13] = 1 << 40  # the hash table "starts" far outside the buffer
    damaged = bytes(buffer)
    assert core.shared_allocate(words, 8, 1, 1) is None  # type: ignore[union-attr]
    assert core.shared_release(words, 0) is None  # type: ignore[union-attr]
    assert bytes(buffer) == damaged  # nothing written
    words[13] = hash_at
    assert core.shared_allocate(words, 8, 1, 1) == 0  # type: ignore[union-attr]
    words.release()


_FAR = 1 << 62


def _without_log_entries(buffer: bytes | bytearray, layout: Layout) -> bytes:
    """The words that hold state: all but the undo log's entries (scratch past its count)."""
    first, end = 8 * (layout.journal_at + 1), 8 * layout.processes_at
    return bytes(buffer[:first] + buffer[end:])


@pytest.mark.parametrize(
    "damage",
    [
        {"journal": -(1 << 40)},  # a negative count would write before the log
        {"journal": "entries+1"},  # a count past the log's capacity
        {H_JOURNAL_ENTRIES: _FAR},  # journal + 1 + 2 * entries overflows
        {H_JOURNAL_ENTRIES: _FAR, "journal": 1 << 40},
        {H_JOURNAL_AT: _FAR},
        {H_JOURNAL_AT: -1},
        {H_NODES_AT: "nodes_at+1"},  # records no longer NODE_WORDS apart from the hash table
        {H_HASH_SLOTS: _FAR},
        {H_HASH_SLOTS: -(1 << 63)},  # slots - 1 overflows
        {H_ALIGNMENT: -(1 << 63)},
        {H_ALIGNMENT: 1 << 62, H_CAPACITY: (1 << 63) - 1},  # size + alignment - 1 overflows
        {H_ROOT: _FAR},
        {H_ROOT: "nodes_at+1"},  # inside a record, not at its start
        {H_SPARE: _FAR},
        {"slots": _FAR},
        {"slots": -NODE_WORDS},
        {"links": _FAR},
    ],
    ids=repr,
)
def test_c_declines_damaged_indices_without_writing(damage: dict[int | str, int | str]) -> None:
    """Every index, count and size read from the segment is checked before use: a call
    that meets a damaged one declines (None) and writes nothing; a call that does not
    meet it makes the same stores as Python."""
    layout = Layout.plan(1 << 12, 8, max_blocks=16)
    buffer = _formatted(layout)
    words = memoryview(buffer).cast("q")
    handles = [core.shared_allocate(words, 64, 1, 1) for _ in range(4)]  # type: ignore[union-attr]
    assert core.shared_release(words, handles[1]) == 64  # type: ignore[union-attr]
    words[layout.journal_at] = 0  # (the bare functions leave the commit to the caller)
    named = {"entries+1": layout.journal_entries + 1, "nodes_at+1": layout.nodes_at + 1}
    for where, given in damage.items():
        value = named[given] if isinstance(given, str) else given
        if where == "journal":
            words[layout.journal_at] = value
        elif where == "slots":
            for slot in range(layout.hash_at, layout.hash_at + layout.hash_slots):
                words[slot] = value if words[slot] else 0
        elif where == "links":
            for node in layout.node_ids():
                for link in (N_PREV, N_NEXT, N_LEFT, N_RIGHT, N_PARENT):
                    words[node + link] = value if words[node + link] else 0
        else:
            assert isinstance(where, int)
            words[where] = value
    words.release()
    damaged = bytes(buffer)
    calls = [("allocate", [size, 1, 1]) for size in (10, 64, 1000, (1 << 63) - 1)]
    calls += [("release", [handle]) for handle in handles]
    declined = 0
    for name, arguments in calls:
        c_side = _Side(bytearray(damaged), layout)
        result = getattr(core, f"shared_{name}")(c_side.words, *arguments)
        if result is None:
            declined += 1
            # (undone: every word as it was, but the log's entries past its count)
            assert _without_log_entries(c_side.buffer, layout) == _without_log_entries(
                damaged, layout
            ), f"{name}{arguments} declined but left a change"
        else:  # the damage is not on this call's path: it must do what Python does
            py_side = _Side(bytearray(damaged), layout)
            assert getattr(py_side.engine, name)(*arguments) == result
            assert c_side.buffer == py_side.buffer
        c_side.words.release()
    assert declined > 0


def test_c_declines_unaligned_words() -> None:
    layout = Layout.plan(1 << 12, 8, max_blocks=16)
    buffer = bytearray(1) + _formatted(layout)
    formatted = bytes(buffer[1:])
    with memoryview(buffer)[1:] as unaligned:
        assert core.shared_allocate(unaligned, 8, 1, 1) is None  # type: ignore[union-attr]
        with SharedHeap.create(size=4096) as heap, pytest.raises(ValueError, match="aligned"):
            heap._c_open(unaligned, LOCK_AT, 1, 1)  # type: ignore[attr-defined]
    assert buffer[1:] == formatted


@pytest.mark.parametrize("crash_at", [20, 35, 60, 90])
def test_c_transaction_recovers_as_python_does(crash_at: int) -> None:
    """After a process died mid-alloc, C's whole transaction (lock, roll back, allocate,
    commit) leaves every word as Python's _transact does."""
    with SharedHeap.create(size=1 << 14, alignment=8, max_blocks=64) as heap:
        for size in (64, 200, 64):
            heap.alloc(size)
        heap.free(64)
        assert run_child(lambda: heap.free(heap.alloc(40)), crash_at) is not None
        assert heap._journal.pending() > 0  # the child died inside an operation
        crashed = heap._words.tobytes()
        handle = heap.alloc(100)  # C: EOWNERDEAD, roll back, allocate, commit
        by_c = heap._words.tobytes()
        # Put every word back but the mutex's (free now): Python rolls back and allocates.
        heap._words[: LOCK_AT // 8] = memoryview(crashed[:LOCK_AT]).cast("q")
        heap._words[HEADER_WORDS:] = memoryview(crashed[HEADER_WORDS * 8 :]).cast("q")
        python = FlatBestFit(heap._words, heap._journal.put, heap.layout)
        assert heap._transact(python.allocate, 100, *heap._me) == handle
        assert heap._words.tobytes() == by_c
        heap.reclaim_dead()
        heap.check()
