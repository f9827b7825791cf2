"""Where everything lives in a shared heap's segment: one table of int64 words.

The segment is a file in ``/dev/shm`` that every process maps.  Its metadata is
an array of signed 64-bit words (native byte order), so that every process,
in Python or C, reads and writes it the same way; the blocks' bytes follow,
page-aligned.  A "node" or "slot" is named by the index of its first word, so
that no multiplication stands between a reference and its fields, and 0 (the
magic word) serves as "none".

=========  ===================================================================
region     words
=========  ===================================================================
header     :data:`HEADER_WORDS` words: the constants below, then the mutable
           totals (every change to them goes through the journal), then the
           heap's lock (a pthread mutex, in :data:`LOCK_BYTES` bytes at byte
           :data:`LOCK_AT`: never journaled, only ever changed by
           ``pthread_mutex_*``)
journal    1 count + 2 words (index, old value) per entry: the undo log
processes  :data:`PROCESS_WORDS` per attached process: pid, start time, count
nodes      :data:`NODE_WORDS` per block record (free, live, or spare)
hash       one word per slot: the node of the block starting at a given offset
data       the blocks themselves, at a page boundary
=========  ===================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAGIC", "VERSION", "Layout"]

#: The first eight bytes of every slaballoc heap segment.
MAGIC = int.from_bytes(b"SLABHEAP", "little")
#: Bumped whenever the meaning of any word changes: a mismatch refuses to attach.
VERSION = 2  # 2: the lock is a robust mutex in the header (H_LOCK_KIND, LOCK_AT)

WORD = 8
PAGE = 4096
HEADER_WORDS = 64

# -- header: constants, written once when the segment is created -------------------------
H_MAGIC = 0  # written last, so that a half-made segment is never attached
H_VERSION = 1
H_FILE_SIZE = 2
H_CAPACITY = 3
H_ALIGNMENT = 4
H_MAX_BLOCKS = 5
H_NODES = 6  # node records
H_HASH_SLOTS = 7  # a power of two
H_PROCESS_SLOTS = 8
H_JOURNAL_ENTRIES = 9
H_JOURNAL_AT = 10  # word index of the journal's count
H_PROCESSES_AT = 11
H_NODES_AT = 12
H_HASH_AT = 13
H_DATA_AT = 14  # BYTE offset of the data region
H_CREATOR_PID = 15
H_LOCK_KIND = 16  # which lock the segment uses (lock.py): every process must use that one

# Which header word holds which field of a Layout: written by header_words(),
# read back by from_header(), so the two cannot disagree.
_HEADER_FIELDS = {
    H_FILE_SIZE: "file_size",
    H_CAPACITY: "capacity",
    H_ALIGNMENT: "alignment",
    H_MAX_BLOCKS: "max_blocks",
    H_NODES: "nodes",
    H_HASH_SLOTS: "hash_slots",
    H_PROCESS_SLOTS: "process_slots",
    H_JOURNAL_ENTRIES: "journal_entries",
    H_JOURNAL_AT: "journal_at",
    H_PROCESSES_AT: "processes_at",
    H_NODES_AT: "nodes_at",
    H_HASH_AT: "hash_at",
    H_DATA_AT: "data_at",
}

# -- header: mutable totals (journaled) ---------------------------------------------------
H_USED = 32  # bytes in live blocks
H_LIVE = 33  # live blocks
H_FREE_BLOCKS = 34
H_ROOT = 35  # root node of the free-block tree, or 0
H_SPARE = 36  # first unused node record, chained through N_NEXT, or 0

# -- header: the lock ---------------------------------------------------------------------
#: The byte offset of the heap's pthread mutex: the last 16 words of the header,
#: room for a ``pthread_mutex_t`` on every Linux ABI (40 or 48 bytes on 64-bit
#: glibc and musl, 24 or 32 on 32-bit); the C core asserts it fits.
LOCK_AT = 48 * WORD
LOCK_BYTES = (HEADER_WORDS - 48) * WORD

# -- a node: one block, or a spare record -------------------------------------------------
N_START = 0  # offset of the block in the data region
N_SIZE = 1  # bytes, a multiple of the alignment
N_STATE = 2  # SPARE, FREE or LIVE
N_REQUEST = 3  # live: the size asked for (what view() shows)
N_PID = 4  # live: the owner process's pid ...
N_BORN = 5  # ... and its start time, so that a reused pid is not mistaken for it
N_PREV = 6  # the block just before in address order, or 0
N_NEXT = 7  # the block just after, or 0 (spare records: the next spare)
N_LEFT = 8  # free blocks only: the treap ordered by (size, start)
N_RIGHT = 9
N_PARENT = 10
N_PRIORITY = 11  # the treap's heap priority: random, written at creation, never changed
NODE_WORDS = 12

SPARE, FREE, LIVE = 0, 1, 2

# -- a process slot ------------------------------------------------------------------------
P_PID = 0
P_BORN = 1
P_ATTACHED = 2  # how many open SharedHeap objects that process has
PROCESS_WORDS = 3

DEFAULT_PROCESS_SLOTS = 256
#: Undo-log entries: an alloc or free writes a few dozen words plus about
#: seven per treap rotation; the treap's depth stays logarithmic, so this is
#: generous by an order of magnitude (an overflow rolls back and raises).
DEFAULT_JOURNAL_ENTRIES = 2048


def _page_up(size: int) -> int:
    return -(-size // PAGE) * PAGE


@dataclass(frozen=True)
class Layout:
    """The geometry of one segment: sizes and where each region starts.

    >>> layout = Layout.plan(capacity=1 << 20, alignment=64, max_blocks=100)
    >>> layout.nodes, layout.hash_slots, layout.data_at % 4096
    (201, 512, 0)
    >>> Layout.from_header(layout.header_words()) == layout
    True
    """

    capacity: int
    alignment: int
    max_blocks: int
    nodes: int
    hash_slots: int
    process_slots: int
    journal_entries: int
    journal_at: int
    processes_at: int
    nodes_at: int
    hash_at: int
    data_at: int
    file_size: int

    @classmethod
    def plan(
        cls,
        capacity: int,
        alignment: int,
        max_blocks: int,
        *,
        process_slots: int = DEFAULT_PROCESS_SLOTS,
        journal_entries: int = DEFAULT_JOURNAL_ENTRIES,
    ) -> Layout:
        """Lay out a segment for ``capacity`` bytes of blocks and ``max_blocks`` live blocks.

        Free blocks are never adjacent, so there are at most ``max_blocks + 1``
        of them: ``2 * max_blocks + 1`` node records always suffice.  The hash
        table has at least twice as many slots as records (load <= 1/2).
        """
        nodes = 2 * max_blocks + 1
        hash_slots = 1 << max(4, (2 * nodes - 1).bit_length())
        journal_at = HEADER_WORDS
        processes_at = journal_at + 1 + 2 * journal_entries
        nodes_at = processes_at + PROCESS_WORDS * process_slots
        hash_at = nodes_at + NODE_WORDS * nodes
        data_at = _page_up((hash_at + hash_slots) * WORD)
        return cls(
            capacity=capacity,
            alignment=alignment,
            max_blocks=max_blocks,
            nodes=nodes,
            hash_slots=hash_slots,
            process_slots=process_slots,
            journal_entries=journal_entries,
            journal_at=journal_at,
            processes_at=processes_at,
            nodes_at=nodes_at,
            hash_at=hash_at,
            data_at=data_at,
            file_size=data_at + _page_up(capacity),
        )

    def header_words(self) -> dict[int, int]:
        """The constant header words, by index (the magic excluded: it is written last)."""
        return {H_VERSION: VERSION} | {
            index: getattr(self, field) for index, field in _HEADER_FIELDS.items()
        }

    @classmethod
    def from_header(cls, words: dict[int, int] | memoryview) -> Layout:
        """Read the geometry back from a segment's header words."""
        return cls(**{field: words[index] for index, field in _HEADER_FIELDS.items()})

    def node_ids(self) -> range:
        """The word index of every node record."""
        return range(self.nodes_at, self.hash_at, NODE_WORDS)

    def process_slot_ids(self) -> range:
        """The word index of every process slot."""
        return range(self.processes_at, self.nodes_at, PROCESS_WORDS)
