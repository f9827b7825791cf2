"""SharedHeap in one process (and a few children): placement, handles, errors, lifecycle."""

from __future__ import annotations

import contextlib
import mmap
import multiprocessing
import os
import random
from collections.abc import Iterator

import pytest

from conftest import run_threads
from shared_workers import allocate_and_exit, free_handle
from slaballoc import BestFit, OutOfMemoryError, SharedHeap
from slaballoc.errors import (
    AllocatorClosedError,
    DoubleFreeError,
    InvalidFreeError,
    InvalidHandleError,
    InvalidSizeError,
    InvariantError,
    LayoutVersionError,
    NotASegmentError,
    ProcessTableFullError,
    SegmentExistsError,
    SegmentNotFoundError,
    SegmentTooLargeError,
    SizeTooLargeError,
    SizeTypeError,
    SlabError,
    UnsupportedPlatformError,
)
from slaballoc.shared.heap import PureSharedHeap
from slaballoc.shared.layout import (
    H_HASH_AT,
    H_JOURNAL_AT,
    H_JOURNAL_ENTRIES,
    H_LOCK_KIND,
    H_NODES_AT,
    H_ROOT,
    H_SPARE,
    H_VERSION,
    HEADER_WORDS,
    LOCK_AT,
    N_NEXT,
    N_PARENT,
)
from slaballoc.shared.processes import ProcessName, is_alive

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def heap() -> Iterator[SharedHeap]:
    with SharedHeap.create(size=1 << 16, max_blocks=256) as made:
        yield made


def snapshot(heap: SharedHeap) -> tuple[object, ...]:
    """Everything an error must leave unchanged: blocks, stats and every byte."""
    return (
        heap.blocks(),
        heap.stats(),
        [bytes(heap.view(block.offset)) for block in heap.blocks() if block.live],
    )


# -- placement ------------------------------------------------------------------------


@pytest.mark.parametrize("alignment", [8, 64])
def test_same_offsets_as_best_fit(alignment: int) -> None:
    """A differential test: the same requests give BestFit's offsets, OOMs included."""
    rng = random.Random(alignment)
    capacity = 1 << 15
    reference = BestFit(capacity, alignment)
    with SharedHeap.create(
        size=capacity, alignment=alignment, max_blocks=capacity // alignment
    ) as heap:
        live: list[int] = []
        refused = 0
        for step in range(6000):
            if live and rng.random() < 0.48:
                handle = live.pop(rng.randrange(len(live)))
                assert heap.size_of(handle) == reference.release(handle)
                heap.free(handle)
            else:
                size = rng.choice((rng.randint(1, 64), rng.randint(1, 1500)))
                try:
                    expected = reference.allocate(size)
                except OutOfMemoryError:
                    with pytest.raises(OutOfMemoryError):
                        heap.alloc(size)
                    refused += 1
                    continue
                assert heap.alloc(size) == expected, f"step {step}"
                live.append(expected)
            if step % 500 == 0:
                heap.check()
                assert [(b.offset, b.size, b.live) for b in heap.blocks()] == [
                    tuple(block) for block in reference.blocks()
                ]
        heap.check()
        stats, expected_stats = heap.stats(), reference.stats()
        assert stats == expected_stats
        assert refused > 0, "the run never filled the heap: raise the load"
        for handle in live:
            heap.free(handle)
        assert heap.stats().used == 0
        assert len(heap.blocks()) == 1


def test_views_are_zero_copy_across_attachments(heap: SharedHeap) -> None:
    handle = heap.alloc(11)
    other = SharedHeap.attach(heap.name)
    try:
        view = other.view(handle)
        assert len(view) == 11
        view[:] = b"hello world"
        assert bytes(heap.view(handle)) == b"hello world"
        other.free(handle)  # any attachment may free any block
        assert heap.stats().used == 0
    finally:
        del view
        other.close()


def test_numpy_arrays_in_blocks(heap: SharedHeap) -> None:
    np = pytest.importorskip("numpy")
    handle, frame = heap.ndarray((48, 64, 3), "uint8")
    handles = np.array([handle])  # handles kept in an array come back as numpy integers
    assert heap.size_of(handles[0]) == heap.size_of(handle)
    frame[:] = 9
    same = heap.array(handle, (48, 64, 3), "uint8")
    assert np.shares_memory(frame, same) or same.ctypes.data == frame.ctypes.data
    assert int(same.sum()) == 9 * 48 * 64 * 3
    assert frame.ctypes.data % heap.alignment == 0
    with pytest.raises(InvalidHandleError, match="needs"):
        heap.array(handle, (100, 100, 3), "uint8")
    del frame, same
    heap.free(handle)


# -- owners, adoption, dead processes ---------------------------------------------------


def test_blocks_name_their_owner_and_adopt_moves_it(heap: SharedHeap) -> None:
    receiver, sender = SPAWN.Pipe(duplex=False)
    child = SPAWN.Process(target=allocate_and_exit, args=(heap.name, [100, 200, 300], sender))
    child.start()
    handles = receiver.recv()
    child.join()
    owners = {block.offset: block.pid for block in heap.blocks() if block.live}
    assert owners == dict.fromkeys(handles, child.pid)
    heap.adopt(handles[1])
    assert heap.owner(handles[1]).pid == os.getpid()
    reclaimed = heap.reclaim_dead()
    assert (reclaimed.blocks, reclaimed.bytes) == (2, 128 + 320)
    assert [block.offset for block in heap.blocks() if block.live] == [handles[1]]
    heap.check()


def test_a_reused_pid_is_not_mistaken_for_the_dead_owner(heap: SharedHeap) -> None:
    me = ProcessName.of(os.getpid())
    assert me is not None
    mine, impostor = heap.alloc(10), heap.alloc(10)
    # The record names this pid with another start time: the process that had
    # this pid before us, now dead.  (Written through the heap's own transaction.)
    heap._transact(heap._engine.adopt, impostor, me.pid, me.born - 1)
    assert not is_alive(me.pid, me.born - 1)
    assert heap.reclaim_dead().blocks == 1
    assert [block.offset for block in heap.blocks() if block.live] == [mine]


def test_forked_child_allocates_as_itself(heap: SharedHeap) -> None:
    kept = heap.alloc(64)
    pid = os.fork()
    if pid == 0:  # the child: allocate, leave the creator's `with`, exit without freeing
        try:
            heap.alloc(100)
            heap.__exit__(None, None, None)
            os._exit(0)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert os.path.exists(f"/dev/shm/{heap.name}")  # only the creator's own exit unlinks
    assert {block.pid for block in heap.blocks() if block.live} == {os.getpid(), pid}
    assert heap.reclaim_dead().blocks == 1
    assert [block.offset for block in heap.blocks() if block.live] == [kept]


# -- errors: typed, explained, and changing nothing -------------------------------------


def test_bad_handles_are_refused_and_change_nothing(heap: SharedHeap) -> None:
    first, second = heap.alloc(100), heap.alloc(100)
    heap.view(first)[:] = bytes(range(100))
    heap.free(second)
    before = snapshot(heap)
    cases: list[tuple[object, type[Exception], str]] = [
        (second, DoubleFreeError, "free already"),  # freed, still a block start
        (first + 64, InvalidHandleError, "not the start of a live block"),  # inside a block
        (4096, InvalidHandleError, "not the start of a live block"),  # never allocated
        (1 << 40, InvalidHandleError, "out of range"),
        (-64, InvalidHandleError, "out of range"),
        (first + 1, InvalidHandleError, "not the start"),
        ("0", InvalidHandleError, "int that alloc"),
        (None, InvalidHandleError, "int that alloc"),
    ]
    for handle, error, words in cases:
        for operation in (heap.free, heap.view, heap.adopt, heap.size_of):
            with pytest.raises(error, match=words):
                operation(handle)  # type: ignore[arg-type]
            assert snapshot(heap) == before
    assert issubclass(InvalidHandleError, InvalidFreeError)
    assert issubclass(InvalidHandleError, ValueError)


def test_double_free_from_another_process(heap: SharedHeap) -> None:
    handle = heap.alloc(50)
    heap.free(handle)
    receiver, sender = SPAWN.Pipe(duplex=False)
    child = SPAWN.Process(target=free_handle, args=(heap.name, handle, sender))
    child.start()
    assert receiver.recv() == "DoubleFreeError"
    child.join()
    heap.check()


def test_bad_sizes_change_nothing(heap: SharedHeap) -> None:
    heap.alloc(10)
    before = snapshot(heap)
    for size, error in [
        (0, InvalidSizeError),
        (-1, InvalidSizeError),
        (1.5, SizeTypeError),
        (True, SizeTypeError),
        (1 << 17, SizeTooLargeError),
        ((1 << 16) - 63, OutOfMemoryError),
    ]:
        with pytest.raises(error):
            heap.alloc(size)  # type: ignore[arg-type]
        assert snapshot(heap) == before


def test_the_block_table_limit_is_an_out_of_memory_error() -> None:
    with SharedHeap.create(size=4096, alignment=8, max_blocks=3) as heap:
        for _ in range(3):
            heap.alloc(8)
        with pytest.raises(OutOfMemoryError, match="larger max_blocks"):
            heap.alloc(8)
        heap.check()


def test_segment_errors() -> None:
    with pytest.raises(SegmentNotFoundError, match=r"SharedHeap\.create"):
        SharedHeap.attach("slaballoc-test-no-such-heap")
    with pytest.raises(NotASegmentError, match="one file name"):
        SharedHeap.attach("../etc/passwd")
    with pytest.raises(SegmentTooLargeError, match="shm-size") as caught:
        SharedHeap.create("slaballoc-test-too-large", size=1 << 50)
    assert isinstance(caught.value, MemoryError)
    assert not os.path.exists("/dev/shm/slaballoc-test-too-large")
    with SharedHeap.create(size=4096) as heap:
        with pytest.raises(SegmentExistsError, match="attach"):
            SharedHeap.create(heap.name, size=4096)
        assert heap.stats().capacity == 4096  # the existing heap is untouched


def test_a_file_that_is_not_a_heap_is_refused() -> None:
    path = "/dev/shm/slaballoc-test-not-a-heap"
    with open(path, "wb") as file:
        file.write(b"just some bytes" * 100)
    try:
        with pytest.raises(NotASegmentError, match="not a slaballoc heap"):
            SharedHeap.attach(os.path.basename(path))
        with open(path, "rb") as file:
            assert file.read() == b"just some bytes" * 100  # nothing written
    finally:
        os.unlink(path)


@pytest.mark.parametrize("word", [H_VERSION, H_LOCK_KIND], ids=["version", "lock kind"])
def test_a_layout_version_or_lock_kind_mismatch_is_refused(heap: SharedHeap, word: int) -> None:
    """Every process must use the segment's own lock: an unknown kind is refused."""
    fd = os.open(f"/dev/shm/{heap.name}", os.O_RDWR)
    raw = mmap.mmap(fd, 4096)
    os.close(fd)
    words = memoryview(raw).cast("q")
    words[word] += 1
    try:
        with pytest.raises(LayoutVersionError, match="same slaballoc version"):
            SharedHeap.attach(heap.name)
    finally:
        words[word] -= 1
        words.release()
        raw.close()
    SharedHeap.attach(heap.name).close()


def test_every_error_is_a_slab_error_and_a_builtin() -> None:
    pairs = [
        (InvalidHandleError, ValueError),
        (SegmentNotFoundError, FileNotFoundError),
        (SegmentExistsError, FileExistsError),
        (NotASegmentError, ValueError),
        (LayoutVersionError, ValueError),
        (SegmentTooLargeError, MemoryError),
        (ProcessTableFullError, RuntimeError),
        (UnsupportedPlatformError, OSError),
    ]
    for error, builtin in pairs:
        assert issubclass(error, SlabError)
        assert issubclass(error, builtin)


# -- lifecycle ----------------------------------------------------------------------------


def test_lifecycle_creator_unlinks_attachers_do_not() -> None:
    with SharedHeap.create(size=4096) as heap:
        name = heap.name
        with SharedHeap.attach(name) as other:
            other.alloc(10)
        assert os.path.exists(f"/dev/shm/{name}")  # leaving an attachment removes nothing
        assert [process.attachments for process in heap.processes()] == [1]
    assert not os.path.exists(f"/dev/shm/{name}")
    with pytest.raises(AllocatorClosedError, match="closed"):
        heap.alloc(1)
    heap.close()  # twice is harmless
    assert "closed" in repr(heap)


def test_a_view_outlives_close_safely() -> None:
    heap = SharedHeap.create(size=4096)
    try:
        view = heap.view(heap.alloc(4))
        heap.close()
        view[:] = b"safe"  # the mapping stays while a view holds it
        assert bytes(view) == b"safe"
    finally:
        heap.unlink()


@pytest.mark.parametrize("mixed", [False, True], ids=["one object", "C and Python objects"])
def test_threads_of_one_process_share_a_heap(heap: SharedHeap, mixed: bool) -> None:
    """The mutex belongs to threads: threads of one process exclude each other by it alone.

    Mixed, two threads use the pure-Python class, which holds the mutex while
    running Python code (so the GIL changes hands under it), and two the C
    core's alloc and free, which then find it busy and wait without the GIL.
    """
    errors: list[BaseException] = []
    other = PureSharedHeap.attach(heap.name) if mixed else heap

    def churn(seed: int) -> None:
        heap_of_thread = other if seed % 2 else heap
        rng = random.Random(seed)
        mine: list[int] = []
        try:
            for _ in range(1500):
                if mine and rng.random() < 0.5:
                    handle = mine.pop(rng.randrange(len(mine)))
                    assert heap_of_thread.view(handle)[0] == seed
                    heap_of_thread.free(handle)
                else:
                    with contextlib.suppress(OutOfMemoryError):
                        handle = heap_of_thread.alloc(rng.randint(1, 600))
                        heap_of_thread.view(handle)[0] = seed
                        mine.append(handle)
            for handle in mine:
                heap_of_thread.free(handle)
        except BaseException as error:  # reported to the main thread
            errors.append(error)

    run_threads(churn, [(seed,) for seed in range(4)])
    if mixed:
        other.close()
    assert errors == []
    heap.check()
    assert heap.stats().used == 0


# -- a damaged segment ------------------------------------------------------------------

_FAR = 1 << 62  # far outside any segment


def _damage(heap: SharedHeap, how: str) -> None:
    """Write one damaged word (or two) into the heap's metadata, as a stray write would."""
    words, layout = heap._words, heap.layout
    root = words[H_ROOT]
    changes = {
        "log count negative": {layout.journal_at: -(1 << 40)},
        "log count past capacity": {layout.journal_at: layout.journal_entries + 1},
        "log capacity huge, count past it": {
            H_JOURNAL_ENTRIES: _FAR,
            layout.journal_at: 1 << 40,
        },
        "log entry into the mutex": {
            layout.journal_at: 1,
            layout.journal_at + 1: LOCK_AT // 8 + 1,
            layout.journal_at + 2: -1,
        },
        "log entry into a header constant": {
            layout.journal_at: 1,
            layout.journal_at + 1: H_JOURNAL_AT,
            layout.journal_at + 2: -1,
        },
        "log capacity huge": {H_JOURNAL_ENTRIES: _FAR},
        "log far away": {H_JOURNAL_AT: _FAR},
        "log before the buffer": {H_JOURNAL_AT: -1},
        "node records misaligned": {H_NODES_AT: layout.nodes_at + 1},
        "hash table far away": {H_HASH_AT: _FAR},
        "root far away": {H_ROOT: _FAR},
        "spare far away": {H_SPARE: _FAR},
        "root's parent far away": {root + N_PARENT: _FAR},
        "a hash slot far away": {
            next(
                slot
                for slot in range(layout.hash_at, layout.hash_at + layout.hash_slots)
                if words[slot]
            ): _FAR
        },
        "a hash slot inside a record": {
            next(
                slot
                for slot in range(layout.hash_at, layout.hash_at + layout.hash_slots)
                if words[slot]
            ): layout.nodes_at + 1
        },
        "every next link far away": {node + N_NEXT: _FAR for node in layout.node_ids()},
    }[how]
    for index, value in changes.items():
        words[index] = value


# A damaged log cannot be trusted to roll back: every call refuses.  A damaged header
# constant is one the C core reads at each call: it declines, and the Python code
# (which read the geometry at attach) does the operation.  A damaged link is
# followed by either: the first call that meets it reports it.
_LOG_DAMAGE = [
    "log count negative",
    "log count past capacity",
    "log capacity huge, count past it",
    "log entry into the mutex",
    "log entry into a header constant",
]
_HEADER_DAMAGE = [
    "log capacity huge",
    "log far away",
    "log before the buffer",
    "node records misaligned",
    "hash table far away",
]
_LINK_DAMAGE = [
    "root far away",
    "spare far away",
    "root's parent far away",
    "a hash slot far away",
    "a hash slot inside a record",
    "every next link far away",
]


@pytest.mark.parametrize("how", _LOG_DAMAGE + _HEADER_DAMAGE + _LINK_DAMAGE)
def test_a_damaged_segment_gives_typed_errors_never_a_crash(how: str) -> None:
    with SharedHeap.create(size=1 << 14, alignment=8, max_blocks=32) as heap:
        handles = [heap.alloc(64) for _ in range(4)]
        heap.free(handles[1])
        words = heap._words
        healthy = words.tobytes()
        _damage(heap, how)
        outcomes: list[object] = []
        for call in (lambda: heap.alloc(10), lambda: heap.free(handles[2]), heap.check):
            try:
                outcomes.append(call())
            except SlabError as error:
                outcomes.append(error)
        if how in _LOG_DAMAGE:
            assert all(isinstance(outcome, InvariantError) for outcome in outcomes), outcomes
            assert "undo log is damaged" in str(outcomes[0])
        elif how in _HEADER_DAMAGE:
            assert outcomes == [handles[1], None, None]
        else:
            # (a free may rewrite the damaged link before check() runs)
            assert any(isinstance(outcome, InvariantError) for outcome in outcomes), outcomes
        # Repair every word but the mutex's (free now), so that the heap closes cleanly.
        words[: LOCK_AT // 8] = memoryview(healthy[:LOCK_AT]).cast("q")
        words[HEADER_WORDS:] = memoryview(healthy[HEADER_WORDS * 8 :]).cast("q")
        heap.check()
    assert not os.path.exists(f"/dev/shm/{heap.name}")
