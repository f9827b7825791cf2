/* live_table.c: offset -> (view, size) for every block handed out.
 *
 * Open addressing with linear probing; deletion shifts the entries that
 * follow back (no tombstones), so lookups stay short however many frees
 * there have been.  The table is kept at most half full.
 */
#include "core.h"

static uint64_t hash_offset(int64_t offset)
{
    /* Offsets are multiples of the alignment: mix the low bits up (Fibonacci hashing). */
    return (uint64_t)offset * UINT64_C(0x9E3779B97F4A7C15);
}

static SlabLiveEntry *new_entries(Py_ssize_t capacity)
{
    SlabLiveEntry *entries = PyMem_New(SlabLiveEntry, capacity);
    if (entries == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < capacity; i++) {
        entries[i].offset = -1;
        entries[i].view = NULL;
        entries[i].size = 0;
    }
    return entries;
}

int slab_live_init(SlabLiveTable *table, Py_ssize_t expected)
{
    Py_ssize_t capacity = 8;
    while (capacity < 2 * expected) {
        capacity *= 2;
    }
    table->entries = new_entries(capacity);
    table->mask = capacity - 1;
    table->count = 0;
    return table->entries == NULL ? -1 : 0;
}

void slab_live_clear(SlabLiveTable *table)
{
    if (table->entries == NULL) {
        return;
    }
    for (Py_ssize_t i = 0; i <= table->mask; i++) {
        Py_CLEAR(table->entries[i].view);
    }
    PyMem_Free(table->entries);
    table->entries = NULL;
    table->mask = -1;
    table->count = 0;
}

static Py_ssize_t home(const SlabLiveTable *table, int64_t offset)
{
    return (Py_ssize_t)(hash_offset(offset) >> 32) & table->mask;
}

SlabLiveEntry *slab_live_find(const SlabLiveTable *table, int64_t offset)
{
    if (table->entries == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = home(table, offset);; i = (i + 1) & table->mask) {
        SlabLiveEntry *entry = &table->entries[i];
        if (entry->offset == offset) {
            return entry;
        }
        if (entry->offset < 0) {
            return NULL;
        }
    }
}

static void place(SlabLiveTable *table, SlabLiveEntry entry)
{
    Py_ssize_t i = home(table, entry.offset);
    while (table->entries[i].offset >= 0) {
        i = (i + 1) & table->mask;
    }
    table->entries[i] = entry;
}

int slab_live_reserve(SlabLiveTable *table, Py_ssize_t extra)
{
    Py_ssize_t needed = table->count + extra;
    if (needed <= (table->mask + 1) / 2) {
        return 0;
    }
    Py_ssize_t capacity = table->mask + 1;
    while (capacity / 2 < needed) {
        if (capacity > PY_SSIZE_T_MAX / 4) {
            PyErr_NoMemory();
            return -1;
        }
        capacity *= 2;
    }
    SlabLiveEntry *old = table->entries;
    Py_ssize_t old_capacity = table->mask + 1;
    SlabLiveEntry *entries = new_entries(capacity);
    if (entries == NULL) {
        return -1;
    }
    table->entries = entries;
    table->mask = capacity - 1;
    for (Py_ssize_t i = 0; i < old_capacity; i++) {
        if (old[i].offset >= 0) {
            place(table, old[i]);
        }
    }
    PyMem_Free(old);
    return 0;
}

void slab_live_insert(SlabLiveTable *table, int64_t offset, PyObject *view, int64_t size)
{
    SlabLiveEntry entry = {offset, view, size};
    place(table, entry);
    table->count++;
}

PyObject *slab_live_remove(SlabLiveTable *table, SlabLiveEntry *entry)
{
    PyObject *view = entry->view;
    Py_ssize_t hole = entry - table->entries;
    /* Backward shift: move up every following entry whose probe passes the hole. */
    for (Py_ssize_t i = (hole + 1) & table->mask; table->entries[i].offset >= 0;
         i = (i + 1) & table->mask) {
        Py_ssize_t want = home(table, table->entries[i].offset);
        if (((i - want) & table->mask) >= ((i - hole) & table->mask)) {
            table->entries[hole] = table->entries[i];
            hole = i;
        }
    }
    table->entries[hole].offset = -1;
    table->entries[hole].view = NULL;
    table->entries[hole].size = 0;
    table->count--;
    return view;
}
