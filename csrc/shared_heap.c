/* shared_heap.c: SharedHeap's alloc and free in C, over the segment's int64 words.
 *
 * A line-by-line port of slaballoc/shared/engine.py (the specification): the
 * same records, treap, hash table and undo-log protocol, the same stores in
 * the same order, so that the log a killed process leaves is the one the
 * Python code would have left (tests/test_shared_core.py compares every word,
 * the log included, after each operation).  Word indices are those of
 * slaballoc/shared/layout.py.
 *
 * shared_locked_allocate and shared_locked_release also do what heap.py's
 * _transact does around an operation (take the OFD lock, roll back what a dead
 * holder left, commit, unlock), saving the Python calls of a transaction; the
 * caller holds the heap's thread lock, as _transact does.
 *
 * Only the common case is handled here.  For anything else (a size or handle
 * that is not valid, no room, a full block table, a damaged segment) the C
 * code undoes its own stores and returns None, and the Python engine then does
 * the operation itself and raises its own error: error text lives in Python.
 *
 * The words are read and written through a volatile pointer, so the compiler
 * keeps the stores in program order: the log entry, then the count, then the
 * word.  A process killed between two stores leaves them done in that order
 * (x86 and ARM both drain a dead process's retired stores).
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

/* The header (layout.py: H_*). */
enum {
    H_CAPACITY = 3,
    H_ALIGNMENT = 4,
    H_MAX_BLOCKS = 5,
    H_HASH_SLOTS = 7,
    H_JOURNAL_ENTRIES = 9,
    H_JOURNAL_AT = 10,
    H_HASH_AT = 13,
    H_USED = 32,
    H_LIVE = 33,
    H_FREE_BLOCKS = 34,
    H_ROOT = 35,
    H_SPARE = 36,
    H_WORDS = 64,
};

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
};

enum { SPARE = 0, FREE = 1, LIVE = 2 };

#define GOLDEN UINT64_C(0x9E3779B97F4A7C15)

typedef struct {
    volatile int64_t *w;
    int64_t words;    /* how many words the buffer holds */
    int64_t journal;  /* word index of the log's count */
    int64_t entries;  /* the log's capacity */
    int64_t start;    /* the log's count when this operation began */
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

/* journal.py's Journal.put: log (index, old), count it, then store. */
static void
put(Heap *h, int64_t index, int64_t value)
{
    if (h->bad) {
        return;
    }
    volatile int64_t *w = h->w;
    int64_t count = w[h->journal];
    if ((uint64_t)index >= (uint64_t)h->words || count >= h->entries) {
        h->bad = 1;
        return;
    }
    int64_t entry = h->journal + 1 + 2 * count;
    w[entry] = index;
    w[entry + 1] = w[index];
    w[h->journal] = count + 1;
    w[index] = value;
}

/* Undo this operation's own stores (the ones logged since it began). */
static void
undo(Heap *h)
{
    volatile int64_t *w = h->w;
    int64_t count = w[h->journal];
    while (count > h->start) {
        count--;
        int64_t entry = h->journal + 1 + 2 * count;
        int64_t index = w[entry];
        if ((uint64_t)index < (uint64_t)h->words) {
            w[index] = w[entry + 1];
        }
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
        int64_t node = rd(h, h->hash_at + (int64_t)slot);
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
    for (int64_t probes = 0; rd(h, h->hash_at + (int64_t)slot); probes++) {
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
    for (int64_t probes = 0; rd(h, h->hash_at + (int64_t)hole) != node; probes++) {
        if (probes > h->hash_mask || h->bad) {
            h->bad = 1;
            return;
        }
        hole = (hole + 1) & mask;
    }
    uint64_t slot = hole;
    for (int64_t probes = 0; probes <= h->hash_mask && !h->bad; probes++) {
        slot = (slot + 1) & mask;
        int64_t other = rd(h, h->hash_at + (int64_t)slot);
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
    int64_t parent = rd(h, node + N_PARENT);
    int64_t grand = rd(h, parent + N_PARENT);
    int inner_side, outer_side;
    if (rd(h, parent + N_LEFT) == node) {
        inner_side = N_RIGHT;
        outer_side = N_LEFT;
    }
    else {
        inner_side = N_LEFT;
        outer_side = N_RIGHT;
    }
    int64_t inner = rd(h, node + inner_side);
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
    int64_t parent = 0, child = rd(h, H_ROOT);
    int went_left = 0;
    for (int64_t depth = 0; child && !h->bad; depth++) {
        if (depth > h->words) {
            h->bad = 1;
            return;
        }
        parent = child;
        int64_t child_size = rd(h, child + N_SIZE);
        went_left = size < child_size || (size == child_size && start < rd(h, child + N_START));
        child = rd(h, child + (went_left ? N_LEFT : N_RIGHT));
    }
    put(h, node + N_PARENT, parent);
    if (!parent) {
        put(h, H_ROOT, node);
    }
    else {
        put(h, parent + (went_left ? N_LEFT : N_RIGHT), node);
    }
    int64_t priority = rd(h, node + N_PRIORITY);
    parent = rd(h, node + N_PARENT);
    while (parent && rd(h, parent + N_PRIORITY) < priority && !h->bad) {
        rotate_up(h, node);
        parent = rd(h, node + N_PARENT);
    }
}

static void
unfile_free(Heap *h, int64_t node)
{
    while (!h->bad) {
        int64_t left = rd(h, node + N_LEFT), right = rd(h, node + N_RIGHT);
        if (!left && !right) {
            break;
        }
        if (!right || (left && rd(h, left + N_PRIORITY) > rd(h, right + N_PRIORITY))) {
            rotate_up(h, left);
        }
        else {
            rotate_up(h, right);
        }
    }
    int64_t parent = rd(h, node + N_PARENT);
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
    int64_t node = rd(h, H_SPARE);
    if (!node) {
        h->bad = 1;
        return 0;
    }
    put(h, H_SPARE, rd(h, node + N_NEXT));
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
    int64_t gone = rd(h, node + N_NEXT);
    int64_t after = rd(h, gone + N_NEXT);
    put(h, node + N_SIZE, rd(h, node + N_SIZE) + rd(h, gone + N_SIZE));
    put(h, node + N_NEXT, after);
    if (after) {
        put(h, after + N_PREV, node);
    }
    hash_delete(h, gone);
    put(h, gone + N_STATE, SPARE);
    put(h, gone + N_NEXT, rd(h, H_SPARE));
    put(h, H_SPARE, gone);
}

/* Borrow the words; read the geometry from their header. */
static int
open_heap(Heap *h, Py_buffer *view, PyObject *words)
{
    if (PyObject_GetBuffer(words, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        return -1;
    }
    h->w = (volatile int64_t *)view->buf;
    h->words = view->len / 8;
    h->journal_ok = 0;
    h->bad = h->words < H_WORDS;
    if (h->bad) {
        return 0;
    }
    int64_t alignment = h->w[H_ALIGNMENT], slots = h->w[H_HASH_SLOTS];
    h->journal = h->w[H_JOURNAL_AT];
    h->entries = h->w[H_JOURNAL_ENTRIES];
    h->hash_at = h->w[H_HASH_AT];
    h->hash_mask = slots - 1;
    h->mask = alignment - 1;
    h->shift = 0;
    while (h->shift < 62 && ((int64_t)1 << h->shift) < alignment) {
        h->shift++;
    }
    int slot_bits = 0;
    while (slot_bits < 62 && ((int64_t)1 << slot_bits) < slots) {
        slot_bits++;
    }
    h->hash_drop = 64 - slot_bits;
    h->journal_ok = h->journal >= H_WORDS && h->entries >= 0 &&
                    h->journal + 1 + 2 * h->entries <= h->words;
    h->start = h->journal_ok ? h->w[h->journal] : 0;
    h->bad = !h->journal_ok || alignment <= 0 || (alignment & h->mask) || slots < 2 ||
             (slots & h->hash_mask) || h->hash_at <= 0 || h->hash_at + slots > h->words;
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
    int64_t need = (size + h->mask) & ~h->mask;
    int64_t best = 0, node = rd(h, H_ROOT);
    for (int64_t depth = 0; node && !h->bad; depth++) {
        if (depth > h->words) {
            h->bad = 1;
            return 0;
        }
        if (rd(h, node + N_SIZE) >= need) {
            best = node;
            node = rd(h, node + N_LEFT);
        }
        else {
            node = rd(h, node + N_RIGHT);
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
        int64_t rest = new_node(h, start + need, block_size - need, best, rd(h, best + N_NEXT));
        if (!h->bad) {
            file_free(h, rest);
        }
        put(h, best + N_SIZE, need);
    }
    else {
        put(h, H_FREE_BLOCKS, rd(h, H_FREE_BLOCKS) - 1);
    }
    put(h, best + N_STATE, LIVE);
    put(h, best + N_REQUEST, size);
    put(h, best + N_PID, pid);
    put(h, best + N_BORN, born);
    put(h, H_USED, rd(h, H_USED) + need);
    put(h, H_LIVE, live + 1);
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
    put(h, H_USED, rd(h, H_USED) - size);
    put(h, H_LIVE, rd(h, H_LIVE) - 1);
    int64_t free_blocks = rd(h, H_FREE_BLOCKS) + 1;
    int64_t before = rd(h, node + N_PREV);
    if (before && rd(h, before + N_STATE) == FREE) {
        unfile_free(h, before);
        absorb_next(h, before);
        node = before;
        free_blocks--;
    }
    int64_t after = rd(h, node + N_NEXT);
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

/* lock.py's HeapLock, the process half: an OFD write lock on the whole file, or
 * its release.  Waiting happens without the GIL; a signal gets its handler run. */
static int
ofd_lock(int fd, short type)
{
    struct flock request;
    memset(&request, 0, sizeof request);
    request.l_type = type;
    request.l_whence = SEEK_SET;
    for (;;) {
        int rc, error;
        Py_BEGIN_ALLOW_THREADS
        rc = fcntl(fd, type == F_UNLCK ? F_OFD_SETLK : F_OFD_SETLKW, &request);
        error = errno;
        Py_END_ALLOW_THREADS
        if (rc == 0) {
            return 0;
        }
        if (error != EINTR) {
            errno = error;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        if (PyErr_CheckSignals() < 0) {
            return -1;
        }
    }
}

enum { ALLOCATE, RELEASE };

/* One operation as heap.py's _transact runs it: lock, recover, operate, commit, unlock.
 * The caller holds the heap's thread lock.  None when the operation is declined. */
static PyObject *
locked_operation(int operation, PyObject *const *args)
{
    long descriptor = PyLong_AsLong(args[1]);
    int fd = descriptor < 0 || descriptor > INT_MAX ? -1 : (int)descriptor;
    int overflow = 0;
    long long number = PyLong_AsLongLongAndOverflow(args[2], &overflow);
    long long pid = operation == ALLOCATE ? PyLong_AsLongLong(args[3]) : 0;
    long long born = operation == ALLOCATE ? PyLong_AsLongLong(args[4]) : 0;
    if (PyErr_Occurred()) {
        return NULL;
    }
    Heap h;
    Py_buffer view;
    if (open_heap(&h, &view, args[0]) < 0) {
        return NULL;
    }
    if (h.bad || overflow) {
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
    }
    if (ofd_lock(fd, F_WRLCK) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    h.start = 0;
    undo(&h); /* the last holder died mid-operation: roll it back, as _transact does */
    int64_t result =
        operation == ALLOCATE ? do_allocate(&h, number, pid, born) : do_release(&h, number);
    if (h.bad) {
        undo(&h);
    }
    else {
        h.w[h.journal] = 0; /* commit */
    }
    int unlocked = ofd_lock(fd, F_UNLCK);
    PyBuffer_Release(&view);
    if (unlocked < 0) {
        return NULL;
    }
    if (h.bad) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLongLong(result);
}

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

static PyObject *
shared_locked_allocate(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !exact_ints(args, 1, nargs)) {
        Py_RETURN_NONE;
    }
    return locked_operation(ALLOCATE, args);
}

static PyObject *
shared_locked_release(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !exact_ints(args, 1, nargs)) {
        Py_RETURN_NONE;
    }
    return locked_operation(RELEASE, args);
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

static PyMethodDef shared_heap_functions[] = {
    {"shared_allocate", (PyCFunction)(void (*)(void))shared_allocate, METH_FASTCALL,
     "shared_allocate(words, size, pid, born) -> offset or None: FlatBestFit.allocate in C."},
    {"shared_release", (PyCFunction)(void (*)(void))shared_release, METH_FASTCALL,
     "shared_release(words, offset) -> size or None: FlatBestFit.release in C."},
    {"shared_locked_allocate", (PyCFunction)(void (*)(void))shared_locked_allocate, METH_FASTCALL,
     "shared_locked_allocate(words, fd, size, pid, born) -> offset or None: a whole\n"
     "transaction (OFD lock, recovery, allocate, commit, unlock); hold the thread lock."},
    {"shared_locked_release", (PyCFunction)(void (*)(void))shared_locked_release, METH_FASTCALL,
     "shared_locked_release(words, fd, offset) -> size or None: the same for release."},
    {NULL, NULL, 0, NULL},
};

int
_slaballoc_add_shared_heap(PyObject *module)
{
    return PyModule_AddFunctions(module, shared_heap_functions);
}
