/* shared_heap.c: SharedHeap's alloc and free in C, over the segment's int64 words.
 *
 * A line-by-line port of slaballoc/shared/engine.py (the specification): the
 * same records, treap, hash table and undo-log protocol, the same stores in
 * the same order, so that the log a killed process leaves is the one the
 * Python code would have left (tests/test_shared_core.py compares every word,
 * the log included, after each operation).  Word indices are those of
 * slaballoc/shared/layout.py.
 *
 * The SharedHeap type's alloc and free also do what heap.py's _transact does
 * around an operation (take the robust mutex in the segment's header, roll
 * back what a dead holder left, commit, unlock): one C call per operation,
 * no Python frame.  shared_allocate and shared_release are the bare
 * operations, for the differential test.
 *
 * Only the common case is handled here.  For anything else (a size or handle
 * that is not valid, no room, a full block table, a damaged segment) the C
 * code undoes its own stores and hands the call to the pure-Python method
 * (the bare functions return None instead), which does the operation itself
 * and raises its own error: error text lives in Python.
 *
 * The words are read and written through a volatile pointer, so the compiler
 * keeps the stores in program order: the log entry, then the count, then the
 * word.  A process killed between two stores leaves them done in that order
 * (x86 and ARM both drain a dead process's retired stores).
 */
#include "core.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The header (layout.py: H_*). */
enum {
    H_CAPACITY = 3,
    H_ALIGNMENT = 4,
    H_MAX_BLOCKS = 5,
    H_HASH_SLOTS = 7,
    H_JOURNAL_ENTRIES = 9,
    H_JOURNAL_AT = 10,
    H_NODES_AT = 12,
    H_HASH_AT = 13,
    H_USED = 32,
    H_LIVE = 33,
    H_FREE_BLOCKS = 34,
    H_ROOT = 35,
    H_SPARE = 36,
    H_LOCK_FIRST = 48, /* LOCK_AT / 8: the mutex takes the header's last 16 words */
    H_WORDS = 64,
};

/* lock.py's WAIT_SLICE, in nanoseconds.  (heap.py checks the segment's lock
 * kind, H_LOCK_KIND, before it hands the words to _c_open.) */
#define WAIT_SLICE_NS 50000000L

_Static_assert(sizeof(pthread_mutex_t) <= (H_WORDS - H_LOCK_FIRST) * 8,
               "layout.py's LOCK_BYTES must hold a pthread_mutex_t");

/* A block record (layout.py: N_*). */
enum {
    N_START,
    N_SIZE,
    N_STATE,
    N_REQUEST,
    N_PID,
    N_BORN,
    N_PREV,
    N_NEXT,
    N_LEFT,
    N_RIGHT,
    N_PARENT,
    N_PRIORITY,
    NODE_WORDS,
};

enum { SPARE = 0, FREE = 1, LIVE = 2 };

#define GOLDEN UINT64_C(0x9E3779B97F4A7C15)

typedef struct {
    volatile int64_t *w;
    int64_t words;    /* how many words the buffer holds */
    int64_t journal;  /* word index of the log's count */
    int64_t entries;  /* the log's capacity */
    int64_t start;    /* the log's count when this operation began */
    int64_t nodes_at; /* the node records: [nodes_at, hash_at), NODE_WORDS each */
    int64_t hash_at, hash_mask;
    int shift, hash_drop;
    int64_t mask;
    int bad; /* an index out of the buffer, or a full log: undo and let Python decide */
    int journal_ok; /* the log lies inside the buffer: undo() may use it */
} Heap;

/* A word, or 0 (and the heap marked bad) for an index outside the buffer. */
static inline int64_t
rd(Heap *h, int64_t index)
{
    if ((uint64_t)index >= (uint64_t)h->words) {
        h->bad = 1;
        return 0;
    }
    return h->w[index];
}

/* A node index read from the segment (a hash slot, a link, H_ROOT, H_SPARE):
 * 0 (none) or the first word of a record in the node region, else 0 and the
 * heap marked bad.  Every `node + N_*` is then a word of that record. */
static inline int64_t
node_at(Heap *h, int64_t index)
{
    int64_t node = rd(h, index);
    if (node != 0 && (node < h->nodes_at || node >= h->hash_at ||
                      (node - h->nodes_at) % NODE_WORDS != 0)) {
        h->bad = 1;
        return 0;
    }
    return node;
}

/* a + b, or 0 and the heap marked bad if it does not fit (a damaged segment). */
static inline int64_t
sum(Heap *h, int64_t a, int64_t b)
{
    int64_t total;
    if (__builtin_add_overflow(a, b, &total)) {
        h->bad = 1;
        return 0;
    }
    return total;
}

/* Whether the log may hold `index` (journal.py's Journal._writable): the
 * header's mutable totals, or a word past the header that is not the log's
 * own.  Never the header's constants, nor the mutex's words. */
static inline int
writable(Heap *h, int64_t index)
{
    if (index >= H_USED && index <= H_SPARE) {
        return 1;
    }
    return index >= H_WORDS && index < h->words &&
           (index < h->journal || index > h->journal + 2 * h->entries);
}

/* The log's count, or -1 (and the heap marked bad) if it is not 0..entries. */
static inline int64_t
log_count(Heap *h)
{
    int64_t count = h->w[h->journal];
    if (count < 0 || count > h->entries) {
        h->bad = 1;
        return -1;
    }
    return count;
}

/* journal.py's Journal.put: log (index, old), count it, then store. */
static void
put(Heap *h, int64_t index, int64_t value)
{
    if (h->bad) {
        return;
    }
    volatile int64_t *w = h->w;
    int64_t count = log_count(h);
    if (count < 0 || count == h->entries || !writable(h, index)) {
        h->bad = 1;
        return;
    }
    int64_t entry = h->journal + 1 + 2 * count; /* < words: open_words checked entries */
    w[entry] = index;
    w[entry + 1] = w[index];
    w[h->journal] = count + 1;
    w[index] = value;
}

/* Undo the stores logged since h->start, newest first (journal.py's
 * Journal.rollback).  A count outside 0..entries or an entry whose index the
 * log may not hold stops it there with h->bad set: the Python path meets the
 * same entry and raises InvariantError, as a C undo must not guess. */
static void
undo(Heap *h)
{
    volatile int64_t *w = h->w;
    int64_t count = log_count(h);
    while (count > h->start) {
        count--;
        int64_t entry = h->journal + 1 + 2 * count;
        int64_t index = w[entry];
        if (!writable(h, index)) {
            h->bad = 1;
            return;
        }
        w[index] = w[entry + 1];
        w[h->journal] = count;
    }
}

static inline uint64_t
home(Heap *h, int64_t start)
{
    return ((uint64_t)(start >> h->shift) * GOLDEN) >> h->hash_drop;
}

static int64_t
find(Heap *h, int64_t start)
{
    uint64_t slot = home(h, start);
    for (int64_t probes = 0; probes <= h->hash_mask && !h->bad; probes++) {
        int64_t node = node_at(h, h->hash_at + (int64_t)slot);
        if (!node || rd(h, node + N_START) == start) {
            return node;
        }
        slot = (slot + 1) & (uint64_t)h->hash_mask;
    }
    h->bad = 1;
    return 0;
}

static void
hash_insert(Heap *h, int64_t node)
{
    uint64_t slot = home(h, rd(h, node + N_START));
    for (int64_t probes = 0; node_at(h, h->hash_at + (int64_t)slot); probes++) {
        if (probes > h->hash_mask || h->bad) {
            h->bad = 1;
            return;
        }
        slot = (slot + 1) & (uint64_t)h->hash_mask;
    }
    put(h, h->hash_at + (int64_t)slot, node);
}

static void
hash_delete(Heap *h, int64_t node)
{
    uint64_t mask = (uint64_t)h->hash_mask;
    uint64_t hole = home(h, rd(h, node + N_START));
    for (int64_t probes = 0; node_at(h, h->hash_at + (int64_t)hole) != node; probes++) {
        if (probes > h->hash_mask || h->bad) {
            h->bad = 1;
            return;
        }
        hole = (hole + 1) & mask;
    }
    uint64_t slot = hole;
    for (int64_t probes = 0; probes <= h->hash_mask && !h->bad; probes++) {
        slot = (slot + 1) & mask;
        int64_t other = node_at(h, h->hash_at + (int64_t)slot);
        if (!other) {
            break;
        }
        uint64_t at = home(h, rd(h, other + N_START));
        int stays = hole <= slot ? (hole < at && at <= slot) : (hole < at || at <= slot);
        if (stays) {
            continue;
        }
        put(h, h->hash_at + (int64_t)hole, other);
        hole = slot;
    }
    put(h, h->hash_at + (int64_t)hole, 0);
}

static void
rotate_up(Heap *h, int64_t node)
{
    int64_t parent = node_at(h, node + N_PARENT);
    int64_t grand = node_at(h, parent + N_PARENT);
    int inner_side, outer_side;
    if (rd(h, parent + N_LEFT) == node) {
        inner_side = N_RIGHT;
        outer_side = N_LEFT;
    }
    else {
        inner_side = N_LEFT;
        outer_side = N_RIGHT;
    }
    int64_t inner = node_at(h, node + inner_side);
    put(h, parent + outer_side, inner);
    if (inner) {
        put(h, inner + N_PARENT, parent);
    }
    put(h, node + inner_side, parent);
    put(h, parent + N_PARENT, node);
    put(h, node + N_PARENT, grand);
    if (!grand) {
        put(h, H_ROOT, node);
    }
    else {
        put(h, grand + (rd(h, grand + N_LEFT) == parent ? N_LEFT : N_RIGHT), node);
    }
}

static void
file_free(Heap *h, int64_t node)
{
    put(h, node + N_STATE, FREE);
    int64_t size = rd(h, node + N_SIZE), start = rd(h, node + N_START);
    int64_t parent = 0, child = node_at(h, H_ROOT);
    int went_left = 0;
    for (int64_t depth = 0; child && !h->bad; depth++) {
        if (depth > h->words) {
            h->bad = 1;
            return;
        }
        parent = child;
        int64_t child_size = rd(h, child + N_SIZE);
        went_left = size < child_size || (size == child_size && start < rd(h, child + N_START));
        child = node_at(h, child + (went_left ? N_LEFT : N_RIGHT));
    }
    put(h, node + N_PARENT, parent);
    if (!parent) {
        put(h, H_ROOT, node);
    }
    else {
        put(h, parent + (went_left ? N_LEFT : N_RIGHT), node);
    }
    int64_t priority = rd(h, node + N_PRIORITY);
    parent = node_at(h, node + N_PARENT);
    /* Each rotation lifts the node one level: more than `words` means a cycle. */
    for (int64_t steps = 0; parent && rd(h, parent + N_PRIORITY) < priority && !h->bad; steps++) {
        if (steps > h->words) {
            h->bad = 1;
            return;
        }
        rotate_up(h, node);
        parent = node_at(h, node + N_PARENT);
    }
}

static void
unfile_free(Heap *h, int64_t node)
{
    for (int64_t steps = 0; !h->bad; steps++) {
        int64_t left = node_at(h, node + N_LEFT), right = node_at(h, node + N_RIGHT);
        if (!left && !right) {
            break;
        }
        if (steps > h->words) { /* a cycle in a damaged tree */
            h->bad = 1;
            return;
        }
        if (!right || (left && rd(h, left + N_PRIORITY) > rd(h, right + N_PRIORITY))) {
            rotate_up(h, left);
        }
        else {
            rotate_up(h, right);
        }
    }
    int64_t parent = node_at(h, node + N_PARENT);
    if (!parent) {
        put(h, H_ROOT, 0);
    }
    else {
        put(h, parent + (rd(h, parent + N_LEFT) == node ? N_LEFT : N_RIGHT), 0);
        put(h, node + N_PARENT, 0);
    }
}

static int64_t
new_node(Heap *h, int64_t start, int64_t size, int64_t before, int64_t after)
{
    int64_t node = node_at(h, H_SPARE);
    if (!node) {
        h->bad = 1;
        return 0;
    }
    put(h, H_SPARE, node_at(h, node + N_NEXT));
    put(h, node + N_START, start);
    put(h, node + N_SIZE, size);
    put(h, node + N_PREV, before);
    put(h, node + N_NEXT, after);
    if (before) {
        put(h, before + N_NEXT, node);
    }
    if (after) {
        put(h, after + N_PREV, node);
    }
    hash_insert(h, node);
    return node;
}

static void
absorb_next(Heap *h, int64_t node)
{
    int64_t gone = node_at(h, node + N_NEXT);
    int64_t after = node_at(h, gone + N_NEXT);
    put(h, node + N_SIZE, sum(h, rd(h, node + N_SIZE), rd(h, gone + N_SIZE)));
    put(h, node + N_NEXT, after);
    if (after) {
        put(h, after + N_PREV, node);
    }
    hash_delete(h, gone);
    put(h, gone + N_STATE, SPARE);
    put(h, gone + N_NEXT, node_at(h, H_SPARE));
    put(h, H_SPARE, gone);
}

/* Read the geometry of the `bytes` bytes of words at `buffer` from their
 * header; h->bad if it is not one a transaction can trust.  Every word is the
 * segment's, so possibly damaged: each region must lie inside the buffer,
 * checked without an addition that could overflow. */
static void
open_words(Heap *h, void *buffer, Py_ssize_t bytes)
{
    h->w = (volatile int64_t *)buffer;
    h->words = bytes / 8;
    h->journal_ok = 0;
    h->bad = h->words < H_WORDS || (uintptr_t)buffer % 8 != 0;
    if (h->bad) {
        return;
    }
    int64_t alignment = h->w[H_ALIGNMENT], slots = h->w[H_HASH_SLOTS];
    h->journal = h->w[H_JOURNAL_AT];
    h->entries = h->w[H_JOURNAL_ENTRIES];
    h->nodes_at = h->w[H_NODES_AT];
    h->hash_at = h->w[H_HASH_AT];
    /* (in uint64_t: INT64_MIN - 1 would overflow; both are used only once checked) */
    h->hash_mask = (int64_t)((uint64_t)slots - 1);
    h->mask = (int64_t)((uint64_t)alignment - 1);
    h->shift = 0;
    while (h->shift < 62 && ((int64_t)1 << h->shift) < alignment) {
        h->shift++;
    }
    int slot_bits = 0;
    while (slot_bits < 62 && ((int64_t)1 << slot_bits) < slots) {
        slot_bits++;
    }
    h->hash_drop = 64 - slot_bits;
    /* The log: its count and 2 words per entry, past the header, inside the buffer. */
    h->journal_ok = h->journal >= H_WORDS && h->journal < h->words && h->entries >= 0 &&
                    h->entries <= (h->words - h->journal - 1) / 2;
    h->start = h->journal_ok ? h->w[h->journal] : 0;
    h->bad = !h->journal_ok || h->start < 0 || h->start > h->entries || alignment <= 0 ||
             (alignment & h->mask) || slots < 2 || (slots & h->hash_mask) ||
             h->hash_at < H_WORDS || h->hash_at >= h->words || slots > h->words - h->hash_at ||
             h->nodes_at < H_WORDS || h->nodes_at > h->hash_at ||
             (h->hash_at - h->nodes_at) % NODE_WORDS != 0;
}

/* Borrow the words of a buffer object; read the geometry from their header. */
static int
open_heap(Heap *h, Py_buffer *view, PyObject *words)
{
    if (PyObject_GetBuffer(words, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        return -1;
    }
    open_words(h, view->buf, view->len);
    return 0;
}

/* The end of every operation: undo it if anything went wrong (then None), else ``result``. */
static PyObject *
close_heap(Heap *h, Py_buffer *view, int64_t result)
{
    if (h->bad && h->journal_ok) {
        undo(h);
    }
    PyBuffer_Release(view);
    if (h->bad) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLongLong(result);
}

/* engine.py FlatBestFit.allocate, on an open heap: the offset, or h->bad set. */
static int64_t
do_allocate(Heap *h, long long size, long long pid, long long born)
{
    if (size <= 0 || size > h->w[H_CAPACITY]) {
        h->bad = 1;
        return 0;
    }
    int64_t need = 0, best = 0, node = node_at(h, H_ROOT);
    if (__builtin_add_overflow(size, h->mask, &need)) {
        h->bad = 1; /* a damaged capacity or alignment: Python decides */
        return 0;
    }
    need &= ~h->mask;
    for (int64_t depth = 0; node && !h->bad; depth++) {
        if (depth > h->words) {
            h->bad = 1;
            return 0;
        }
        if (rd(h, node + N_SIZE) >= need) {
            best = node;
            node = node_at(h, node + N_LEFT);
        }
        else {
            node = node_at(h, node + N_RIGHT);
        }
    }
    int64_t live = rd(h, H_LIVE);
    if (!best || live == rd(h, H_MAX_BLOCKS)) {
        h->bad = 1; /* no room or no record: Python raises OutOfMemoryError */
        return 0;
    }
    unfile_free(h, best);
    int64_t block_size = rd(h, best + N_SIZE), start = rd(h, best + N_START);
    if (block_size > need) {
        int64_t rest = new_node(h, sum(h, start, need), block_size - need, best, node_at(h, best + N_NEXT));
        if (!h->bad) {
            file_free(h, rest);
        }
        put(h, best + N_SIZE, need);
    }
    else {
        put(h, H_FREE_BLOCKS, sum(h, rd(h, H_FREE_BLOCKS), -1));
    }
    put(h, best + N_STATE, LIVE);
    put(h, best + N_REQUEST, size);
    put(h, best + N_PID, pid);
    put(h, best + N_BORN, born);
    put(h, H_USED, sum(h, rd(h, H_USED), need));
    put(h, H_LIVE, sum(h, live, 1));
    return start;
}

/* engine.py FlatBestFit.release, on an open heap: the size, or h->bad set. */
static int64_t
do_release(Heap *h, long long offset)
{
    if (offset < 0 || offset >= h->w[H_CAPACITY] || (offset & h->mask)) {
        h->bad = 1;
        return 0;
    }
    int64_t node = find(h, offset);
    if (!node || rd(h, node + N_STATE) != LIVE) {
        h->bad = 1; /* Python tells a double free from a bad handle */
        return 0;
    }
    int64_t size = rd(h, node + N_SIZE);
    if (size < 0) { /* a damaged record (and -size could overflow) */
        h->bad = 1;
        return 0;
    }
    put(h, H_USED, sum(h, rd(h, H_USED), -size));
    put(h, H_LIVE, sum(h, rd(h, H_LIVE), -1));
    int64_t free_blocks = sum(h, rd(h, H_FREE_BLOCKS), 1);
    int64_t before = node_at(h, node + N_PREV);
    if (before && rd(h, before + N_STATE) == FREE) {
        unfile_free(h, before);
        absorb_next(h, before);
        node = before;
        free_blocks--;
    }
    int64_t after = node_at(h, node + N_NEXT);
    if (after && rd(h, after + N_STATE) == FREE) {
        unfile_free(h, after);
        absorb_next(h, node);
        free_blocks--;
    }
    file_free(h, node);
    if (free_blocks != rd(h, H_FREE_BLOCKS)) {
        put(h, H_FREE_BLOCKS, free_blocks);
    }
    return size;
}

/* -- the heap object: SharedHeap's alloc and free, each one C call -------------- */

/* The C base of slaballoc.SharedHeap (heap.py builds the public class from it
 * and the pure-Python class with _accelerate.accelerated).  It holds what the
 * hot path needs: the segment's words (a buffer of heap._words, taken by
 * _c_open and given back by _c_close before heap.py releases them), where
 * the mutex is, and this process's name (pid, start time).  Everything else
 * lives in the instance's __dict__, written and read by the Python methods. */
typedef struct {
    PyObject_HEAD
    PyObject *dict;
    PyObject *weakreflist;
    Py_buffer words;
    int open; /* words is held: the fast path may run */
    PyObject *mapping; /* what the words are a view of (the segment's mmap): pinned by waiters */
    pthread_mutex_t *mutex;
    long long pid, born;
} SharedHeapObject;

/* Whether journal.crash_at() counts this process's stores down: then every
 * operation runs in Python, which alone counts them. */
static int crash_armed;

/* lock.py's YIELDS: how many times a busy mutex is tried again, each after
 * giving the CPU away (sched_yield), before the thread sleeps on it.  A holder
 * keeps it for a few hundred nanoseconds.  Sleeping at once costs both sides
 * a system call each time (the futex wait, and the wake at every unlock while
 * anyone sleeps) and a context switch: four processes on two CPUs got 0.46x
 * the pairs per second of one.  Spinning on trylock was worse (0.31x): it
 * pulls the mutex's cache line away from the holder, and burns the CPU a
 * preempted holder needs.  Yielding gives that CPU to it: 1.0x, steadily with
 * 200 yields (20 gave 0.75x in some runs: a preempted holder can take longer
 * to come back).  With nothing else to run, 200 yields take some 100 us: a
 * waiter behind a long holder (check() in Python) then sleeps. */
#define YIELDS 200

/* Take the heap's robust mutex.  0: held (a dead holder's log is left to the
 * caller to roll back); 1: it cannot be taken here, or the heap was closed
 * while this thread waited (the Python code will try, and raise its own
 * error); -1: a signal handler raised while waiting.
 *
 * Before letting go of the GIL, the thread pins the mapping (a buffer export
 * of the segment's mmap, kept in *pin until the operation ends): another
 * thread may close the heap meanwhile, and the mapping, the mutex in it and
 * the words this operation reads must outlive the wait (mmap.close() refuses
 * while an export lives: Segment.close leaves the unmapping to the last one).
 *
 * Why this cannot deadlock with the GIL: a thread waits for the mutex only
 * without the GIL (a free mutex is taken by trylock, with the GIL; a busy one
 * is yielded for and waited for between Py_BEGIN/END_ALLOW_THREADS, and
 * lock.py's ctypes calls let go of the GIL too).  The one wait made while holding the mutex is for
 * the GIL, in Py_END_ALLOW_THREADS; the GIL's holder is then never waiting
 * for the mutex, so it runs on and lets the GIL go (at the latest at its next
 * switch interval, or when it blocks).  No cycle can form.  A mutex holder in
 * another process waits only for its own process's GIL, by the same argument.
 * While the mutex is held here, no Python code runs (no call back into Python
 * between taking and giving it back), so no finalizer can try to take it
 * again in this thread. */
static int
take_mutex(SharedHeapObject *self, pthread_mutex_t *mutex, Py_buffer *pin)
{
    int status = pthread_mutex_trylock(mutex);
    if (status == EBUSY && PyObject_GetBuffer(self->mapping, pin, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    for (int yield = 0; status == EBUSY && yield < YIELDS; yield++) {
        Py_BEGIN_ALLOW_THREADS
        sched_yield();
        Py_END_ALLOW_THREADS
        status = pthread_mutex_trylock(mutex);
    }
    while (status == EBUSY || status == ETIMEDOUT) {
        Py_BEGIN_ALLOW_THREADS
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += WAIT_SLICE_NS; /* lock.py's WAIT_SLICE: then signals are checked */
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec += 1;
            until.tv_nsec -= 1000000000L;
        }
        status = pthread_mutex_timedlock(mutex, &until);
        Py_END_ALLOW_THREADS
        if (status == ETIMEDOUT && PyErr_CheckSignals() < 0) {
            return -1;
        }
    }
    if (status == EOWNERDEAD) {
        /* Consistent at once, as lock.py does: the undo log, not the mutex, says
         * whether the heap needs repair, and the caller rolls it back. */
        status = pthread_mutex_consistent(mutex);
        if (status != 0) { /* (cannot happen for a robust mutex held after EOWNERDEAD) */
            pthread_mutex_unlock(mutex);
            return 1;
        }
    }
    if (status == 0 && !self->open) { /* closed by another thread while this one waited */
        pthread_mutex_unlock(mutex);
        return 1;
    }
    return status == 0 ? 0 : 1;
}

enum { ALLOCATE, RELEASE };

/* One operation as heap.py's _transact runs it: lock, roll back what a dead
 * holder left, operate, commit, unlock.  Anything but the common case (closed
 * heap, crash hook armed, an argument that is not a plain int, a size or
 * handle the C code declines, a lock it cannot take) is the specification's:
 * the pure method of the same name runs and does the operation or raises its
 * own error.  Nothing has changed when it does (the C code undid its stores). */
static PyObject *
heap_operation(SharedHeapObject *self, int operation, PyObject *argument)
{
    const char *method = operation == ALLOCATE ? "alloc" : "free";
    int overflow = 0;
    long long number = 0;
    if (self->open && !crash_armed && PyLong_CheckExact(argument)) {
        number = PyLong_AsLongLongAndOverflow(argument, &overflow);
    }
    else {
        overflow = 1;
    }
    Heap h;
    if (!overflow) {
        open_words(&h, self->words.buf, self->words.len);
    }
    if (!overflow && !h.bad) {
        pthread_mutex_t *mutex = self->mutex;
        Py_buffer pin = {.obj = NULL};
        int taken = take_mutex(self, mutex, &pin);
        int status = 0;
        int64_t done = 0; /* the offset allocated, or the size freed */
        if (taken == 0) {
            h.start = 0;
            undo(&h); /* the last holder died mid-operation: roll it back */
            if (!h.bad) {
                done = operation == ALLOCATE ? do_allocate(&h, number, self->pid, self->born)
                                             : do_release(&h, number);
            }
            if (h.bad) {
                undo(&h);
            }
            else {
                h.w[h.journal] = 0; /* commit */
            }
            status = pthread_mutex_unlock(mutex);
        }
        if (pin.obj != NULL) {
            PyBuffer_Release(&pin);
        }
        if (taken < 0) {
            return NULL;
        }
        /* An unlock that fails after a commit does not undo the operation: it
         * happened, and raising would tell the caller it was refused ("a refused
         * call changes nothing" would no longer hold), so its result is returned.
         * (pthread_mutex_unlock fails only for a mutex this thread does not hold,
         * which take_mutex rules out.)  After a declined operation nothing
         * changed, and the error is raised rather than handing a mutex in an
         * unknown state to the Python path. */
        if (status != 0 && (taken != 0 || h.bad)) {
            errno = status;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (taken == 0 && !h.bad) {
            if (operation == ALLOCATE) {
                return PyLong_FromLongLong(done);
            }
            Py_RETURN_NONE;
        }
    }
    PyObject *args = PyTuple_Pack(1, argument);
    if (args == NULL) {
        return NULL;
    }
    PyObject *result = slab_spec_call((PyObject *)self, method, args);
    Py_DECREF(args);
    return result;
}

static PyObject *
heap_alloc(SharedHeapObject *self, PyObject *size)
{
    return heap_operation(self, ALLOCATE, size);
}

static PyObject *
heap_free(SharedHeapObject *self, PyObject *handle)
{
    return heap_operation(self, RELEASE, handle);
}

/* Give the words back: the fast path stops (the Python methods then refuse). */
static void
heap_close_words(SharedHeapObject *self)
{
    if (self->open) {
        self->open = 0;
        self->mutex = NULL;
        PyBuffer_Release(&self->words);
        Py_CLEAR(self->mapping);
    }
}

/* _c_open(words, lock_at, pid, born): serve alloc and free in C over `words`
 * (the segment's metadata words) for process (pid, born), the mutex at byte
 * `lock_at`.  Called again after a fork, with the child's name. */
static PyObject *
heap_c_open(SharedHeapObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "_c_open(words, lock_at, pid, born)");
        return NULL;
    }
    Py_ssize_t lock_at = PyLong_AsSsize_t(args[1]);
    long long pid = PyLong_AsLongLong(args[2]);
    long long born = PyLong_AsLongLong(args[3]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer words;
    if (PyObject_GetBuffer(args[0], &words, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        return NULL;
    }
    /* The words must be aligned as int64s are; the mutex must lie in the
     * header, aligned, past every word the heap uses. */
    if ((uintptr_t)words.buf % 8 != 0) {
        PyBuffer_Release(&words);
        PyErr_SetString(PyExc_ValueError, "_c_open: the words must be 8-byte aligned");
        return NULL;
    }
    if (words.len < H_WORDS * 8 || lock_at < H_LOCK_FIRST * 8 ||
        lock_at % (Py_ssize_t)_Alignof(pthread_mutex_t) != 0 ||
        lock_at > H_WORDS * 8 - (Py_ssize_t)sizeof(pthread_mutex_t)) {
        PyBuffer_Release(&words);
        PyErr_SetString(PyExc_ValueError, "_c_open: the mutex must lie in the header's last words");
        return NULL;
    }
    heap_close_words(self);
    /* A memoryview made by PyMemoryView_FromMemory has no base: pin the view itself. */
    PyObject *base = PyMemoryView_Check(args[0]) ? PyMemoryView_GET_BASE(args[0]) : NULL;
    self->mapping = Py_NewRef(base != NULL ? base : args[0]);
    self->words = words;
    self->mutex = (pthread_mutex_t *)((char *)words.buf + lock_at);
    self->pid = pid;
    self->born = born;
    self->open = 1;
    Py_RETURN_NONE;
}

static PyObject *
heap_c_close(SharedHeapObject *self, PyObject *unused)
{
    heap_close_words(self);
    Py_RETURN_NONE;
}

static int
heap_traverse(SharedHeapObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->dict);
    return 0;
}

static int
heap_clear(SharedHeapObject *self)
{
    Py_CLEAR(self->dict);
    return 0;
}

static void
heap_dealloc(SharedHeapObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    heap_close_words(self);
    Py_CLEAR(self->dict);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef heap_methods[] = {
    {"alloc", (PyCFunction)heap_alloc, METH_O,
     "alloc(size) -> handle: see the pure-Python SharedHeap.alloc (one C call)."},
    {"free", (PyCFunction)heap_free, METH_O,
     "free(handle): see the pure-Python SharedHeap.free (one C call)."},
    {"_c_open", (PyCFunction)(void (*)(void))heap_c_open, METH_FASTCALL,
     "_c_open(words, lock_at, pid, born): serve alloc and free in C over these words."},
    {"_c_close", (PyCFunction)heap_c_close, METH_NOARGS,
     "_c_close(): give the words back (before they are released)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SharedHeapType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "slaballoc._core.SharedHeap",
    .tp_basicsize = sizeof(SharedHeapObject),
    .tp_dealloc = (destructor)heap_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)heap_traverse,
    .tp_clear = (inquiry)heap_clear,
    .tp_free = PyObject_GC_Del,
    .tp_doc = "C base of slaballoc.SharedHeap: alloc and free, lock and transaction in one call.",
    .tp_methods = heap_methods,
    .tp_dictoffset = offsetof(SharedHeapObject, dict),
    .tp_weaklistoffset = offsetof(SharedHeapObject, weakreflist),
    .tp_new = PyType_GenericNew,
};

/* Only exact ints go the fast way: anything else is Python's to convert or refuse. */
static int
exact_ints(PyObject *const *args, Py_ssize_t first, Py_ssize_t nargs)
{
    for (Py_ssize_t i = first; i < nargs; i++) {
        if (!PyLong_CheckExact(args[i])) {
            return 0;
        }
    }
    return 1;
}

/* The bare operations, without lock or commit (the differential test's view). */
static PyObject *
bare_operation(int operation, PyObject *const *args)
{
    int overflow = 0;
    long long number = PyLong_AsLongLongAndOverflow(args[1], &overflow);
    long long pid = operation == ALLOCATE ? PyLong_AsLongLong(args[2]) : 0;
    long long born = operation == ALLOCATE ? PyLong_AsLongLong(args[3]) : 0;
    if (PyErr_Occurred()) {
        return NULL;
    }
    Heap h;
    Py_buffer view;
    if (open_heap(&h, &view, args[0]) < 0) {
        return NULL;
    }
    h.bad |= overflow;
    int64_t result = 0;
    if (!h.bad) {
        result = operation == ALLOCATE ? do_allocate(&h, number, pid, born) : do_release(&h, number);
    }
    return close_heap(&h, &view, result);
}

static PyObject *
shared_allocate(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !exact_ints(args, 1, nargs)) {
        Py_RETURN_NONE;
    }
    return bare_operation(ALLOCATE, args);
}

static PyObject *
shared_release(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !exact_ints(args, 1, nargs)) {
        Py_RETURN_NONE;
    }
    return bare_operation(RELEASE, args);
}

/* journal.crash_at() tells the C core whether it counts stores. */
static PyObject *
shared_crash_armed(PyObject *module, PyObject *armed)
{
    int flag = PyObject_IsTrue(armed);
    if (flag < 0) {
        return NULL;
    }
    crash_armed = flag;
    Py_RETURN_NONE;
}

static PyMethodDef shared_heap_functions[] = {
    {"shared_allocate", (PyCFunction)(void (*)(void))shared_allocate, METH_FASTCALL,
     "shared_allocate(words, size, pid, born) -> offset or None: FlatBestFit.allocate in C."},
    {"shared_release", (PyCFunction)(void (*)(void))shared_release, METH_FASTCALL,
     "shared_release(words, offset) -> size or None: FlatBestFit.release in C."},
    {"shared_crash_armed", (PyCFunction)shared_crash_armed, METH_O,
     "shared_crash_armed(flag): while true, SharedHeap's alloc and free run in Python."},
    {NULL, NULL, 0, NULL},
};

int
_slaballoc_add_shared_heap(PyObject *module)
{
#ifdef Py_GIL_DISABLED
    /* The type's alloc and free run without a critical section: another thread's
     * close could unmap the words under an operation that took the mutex by
     * trylock.  Free-threaded builds get only the bare functions, and
     * slaballoc/shared/heap.py then uses the pure SharedHeap (as for SlabCache). */
    return PyModule_AddFunctions(module, shared_heap_functions);
#endif
    if (PyType_Ready(&SharedHeapType) < 0 ||
        PyModule_AddObjectRef(module, "SharedHeap", (PyObject *)&SharedHeapType) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(module, shared_heap_functions);
}
