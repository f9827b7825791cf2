/* slab_cache.c: SlabCache's magazine hit in C, and the live table it shares
 * with the specification.
 *
 * Specification: slaballoc/slab_cache/cache.py (SlabCache.alloc and .free) and
 * magazines.py.  Only the common case is here: a request of a size class
 * served from (or a freed object pushed onto) the calling thread's loaded
 * magazine.  Everything else (a miss: the magazine empty or full; a large
 * block; debug mode; a bad argument; a closed cache; a view released by its
 * owner or exported) is handed, before anything changes, to the pure method
 * of the same name (slab_spec_call), which runs on this object: the
 * magazines, depot, slabs and backing store stay the pure-Python objects they
 * are, stored in the instance __dict__, and the pure code changes them.
 *
 * What the hot path reads and writes is the pure state itself:
 *   - this thread's ThreadMagazines: `loaded` (a list per class of free
 *     offsets, Python ints) and the `allocs`/`frees` counters (array('Q'),
 *     incremented in place through their buffers);
 *   - `_capacity_of` (the magazine size per class, a list the pure code
 *     grows in place), `_table`/`_shift`/`_largest` (size -> class), `_debug`,
 *     `_memory`: members of this type, so the pure __init__ assigns them here;
 *   - `_live`: a LiveTable (below), the one table of live blocks for both.
 * The int object of an offset moves from the magazine to the live table on
 * alloc and back on free: a pair allocates nothing but the view.
 *
 * This thread's magazines are found by PyThreadState_GetID(): a number the
 * interpreter gives each thread state and never gives again, so a new thread
 * whose OS thread id (or PyThreadState address) was reused cannot be taken
 * for the exited one (whose magazines the pure code flushes to the slabs).
 * One thread's magazines are cached (a pointer compare on a hit); another
 * thread's first operation after a switch asks Magazines.mine() (the
 * threading.local) once and caches its answer.
 *
 * Atomicity: with the GIL a C call is atomic unless it runs Python code.
 * Making the view (a GC object) can run the collector, whose finalizers may
 * use this cache or switch threads: alloc plans (the offset on top of the
 * magazine), makes the view, then commits only if the plan still holds
 * (same magazine, same size, same top object, still open), else starts
 * over.  free runs no Python code between its checks and its commit.  Not
 * for the free-threaded build (lists are changed without their critical
 * sections): there the type is not registered and the pure SlabCache runs.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

#include "structmember.h"

/* -- the live table: view -> offset, as BlockAllocator._live -------------------- */

/* Open addressing on the view's address, linear probing, deletion by backward
 * shift (no tombstones), at most half full.  Each entry owns a reference to
 * the view and to its offset (an int).  The pure code uses it through the
 * dict operations BlockAllocator and SlabCache use on `_live` (keyed by
 * id(view), valued (offset, view)); the C code directly. */
typedef struct {
    PyObject *view; /* NULL: empty */
    PyObject *offset;
    uint64_t order; /* when it was added: values() and items() come in this order, as a dict's */
} LiveEntry;

typedef struct {
    PyObject_HEAD
    LiveEntry *entries;
    Py_ssize_t mask; /* size - 1, size a power of two */
    Py_ssize_t count;
    uint64_t added; /* entries ever added */
} LiveTableObject;

static PyTypeObject LiveTableType;

static Py_ssize_t live_home(const LiveTableObject *t, const void *view)
{
    uint64_t h = (uint64_t)(uintptr_t)view * UINT64_C(0x9E3779B97F4A7C15);
    return (Py_ssize_t)((h >> 32) & (uint64_t)t->mask);
}

/* The entry of `view`, or -1 (for NULL too: a key that names no address, see
 * live_key, must not match the first empty slot). */
static Py_ssize_t live_find(const LiveTableObject *t, const void *view)
{
    if (view == NULL || t->entries == NULL) {
        return -1;
    }
    for (Py_ssize_t i = live_home(t, view);; i = (i + 1) & t->mask) {
        if (t->entries[i].view == view) {
            return i;
        }
        if (t->entries[i].view == NULL) {
            return -1;
        }
    }
}

/* Room for `more` entries (grows the array, runs no Python code); 0 or -1 (MemoryError). */
static int live_reserve(LiveTableObject *t, Py_ssize_t more)
{
    Py_ssize_t size = t->entries == NULL ? 0 : t->mask + 1;
    if ((t->count + more) * 2 <= size) {
        return 0;
    }
    Py_ssize_t new_size = size == 0 ? 64 : size * 2;
    while ((t->count + more) * 2 > new_size) {
        if (new_size > PY_SSIZE_T_MAX / 4 / (Py_ssize_t)sizeof(LiveEntry)) {
            PyErr_NoMemory();
            return -1;
        }
        new_size *= 2;
    }
    LiveEntry *entries = PyMem_Calloc((size_t)new_size, sizeof(LiveEntry));
    if (entries == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    LiveEntry *old = t->entries;
    t->entries = entries;
    t->mask = new_size - 1;
    for (Py_ssize_t i = 0; i < size; i++) {
        if (old[i].view != NULL) {
            Py_ssize_t j = live_home(t, old[i].view);
            while (entries[j].view != NULL) {
                j = (j + 1) & t->mask;
            }
            entries[j] = old[i];
        }
    }
    PyMem_Free(old);
    return 0;
}

/* True if `more` entries fit without growing (as live_reserve leaves it; none: always). */
static int live_has_room(const LiveTableObject *t, Py_ssize_t more)
{
    Py_ssize_t size = t->entries == NULL ? 0 : t->mask + 1;
    return (t->count + more) * 2 <= size;
}

/* Add `view` (absent) with `offset`; takes over both references.  Needs live_reserve(). */
static void live_insert(LiveTableObject *t, PyObject *view, PyObject *offset)
{
    Py_ssize_t i = live_home(t, view);
    while (t->entries[i].view != NULL) {
        i = (i + 1) & t->mask;
    }
    t->entries[i].view = view;
    t->entries[i].offset = offset;
    t->entries[i].order = t->added++;
    t->count++;
}

/* Remove entry `i`; its references pass to *view and *offset. */
static void live_remove(LiveTableObject *t, Py_ssize_t i, PyObject **view, PyObject **offset)
{
    LiveEntry *e = t->entries;
    *view = e[i].view;
    *offset = e[i].offset;
    for (Py_ssize_t j = (i + 1) & t->mask; e[j].view != NULL; j = (j + 1) & t->mask) {
        /* An entry may move back to the hole if the hole lies on its probe path. */
        Py_ssize_t home = live_home(t, e[j].view);
        if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
            e[i] = e[j];
            i = j;
        }
    }
    e[i].view = NULL;
    e[i].offset = NULL;
    t->count--;
}

/* The address a key (an id()) names, or NULL if it names none. */
static void *live_key(PyObject *key)
{
    if (!PyLong_Check(key)) {
        return NULL;
    }
    void *pointer = PyLong_AsVoidPtr(key);
    if (pointer == NULL && PyErr_Occurred()) {
        PyErr_Clear(); /* negative, or too large: no view is there */
    }
    return pointer;
}

static PyObject *live_pair(const LiveEntry *e)
{
    return PyTuple_Pack(2, e->offset, e->view);
}

static Py_ssize_t LiveTable_length(LiveTableObject *self)
{
    return self->count;
}

static PyObject *LiveTable_subscript(LiveTableObject *self, PyObject *key)
{
    Py_ssize_t i = live_find(self, live_key(key));
    if (i < 0) {
        PyErr_SetObject(PyExc_KeyError, key);
        return NULL;
    }
    return live_pair(&self->entries[i]);
}

static int LiveTable_contains(LiveTableObject *self, PyObject *key)
{
    return live_find(self, live_key(key)) >= 0;
}

/* live[id(view)] = (offset, view), and del live[id(view)]. */
static int LiveTable_ass_subscript(LiveTableObject *self, PyObject *key, PyObject *value)
{
    void *pointer = live_key(key);
    Py_ssize_t i = live_find(self, pointer);
    if (value == NULL) {
        if (i < 0) {
            PyErr_SetObject(PyExc_KeyError, key);
            return -1;
        }
        PyObject *view, *offset;
        live_remove(self, i, &view, &offset);
        Py_DECREF(view);
        Py_DECREF(offset);
        return 0;
    }
    if (!PyTuple_Check(value) || PyTuple_GET_SIZE(value) != 2 ||
        !PyLong_CheckExact(PyTuple_GET_ITEM(value, 0)) ||
        !PyMemoryView_Check(PyTuple_GET_ITEM(value, 1)) ||
        (void *)PyTuple_GET_ITEM(value, 1) != pointer) {
        PyErr_SetString(PyExc_TypeError,
                        "slaballoc: a live table entry is live[id(view)] = (offset, view)");
        return -1;
    }
    PyObject *offset = Py_NewRef(PyTuple_GET_ITEM(value, 0));
    if (i >= 0) {
        Py_SETREF(self->entries[i].offset, offset);
        return 0;
    }
    if (live_reserve(self, 1) < 0) {
        Py_DECREF(offset);
        return -1;
    }
    live_insert(self, Py_NewRef(PyTuple_GET_ITEM(value, 1)), offset);
    return 0;
}

/* get() and pop() take a key and an optional default. */
static int check_arguments(const char *name, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError, "%s expected 1 or 2 arguments, got %zd", name, nargs);
        return 0;
    }
    return 1;
}

static PyObject *LiveTable_get(LiveTableObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!check_arguments("get", nargs)) {
        return NULL;
    }
    Py_ssize_t i = live_find(self, live_key(args[0]));
    if (i < 0) {
        return Py_NewRef(nargs > 1 ? args[1] : Py_None);
    }
    return live_pair(&self->entries[i]);
}

static PyObject *LiveTable_pop(LiveTableObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!check_arguments("pop", nargs)) {
        return NULL;
    }
    Py_ssize_t i = live_find(self, live_key(args[0]));
    if (i < 0) {
        if (nargs > 1) {
            return Py_NewRef(args[1]);
        }
        PyErr_SetObject(PyExc_KeyError, args[0]);
        return NULL;
    }
    PyObject *pair = live_pair(&self->entries[i]);
    /* Making the tuple can run the collector: find the entry again. */
    i = pair == NULL ? -1 : live_find(self, live_key(args[0]));
    if (i >= 0) {
        PyObject *view, *offset;
        live_remove(self, i, &view, &offset);
        Py_DECREF(view);
        Py_DECREF(offset);
    }
    return pair;
}

static int by_order(const void *a, const void *b)
{
    uint64_t x = ((const LiveEntry *)a)->order, y = ((const LiveEntry *)b)->order;
    return (x > y) - (x < y);
}

/* Every entry as (offset, view), or with_keys as (id(view), (offset, view)), in the
 * order they were added: the pure code's close() releases views in that order.  A
 * snapshot (with references) first: making tuples can run the collector, whose
 * finalizers may change the table. */
static PyObject *live_list(LiveTableObject *self, int with_keys)
{
    LiveEntry *sorted = PyMem_Malloc(sizeof(LiveEntry) * (size_t)(self->count + 1));
    if (sorted == NULL) {
        return PyErr_NoMemory();
    }
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; self->entries != NULL && i <= self->mask; i++) {
        if (self->entries[i].view != NULL) {
            sorted[count] = self->entries[i];
            Py_INCREF(sorted[count].view);
            Py_INCREF(sorted[count].offset);
            count++;
        }
    }
    qsort(sorted, (size_t)count, sizeof(LiveEntry), by_order);
    PyObject *list = PyList_New(count);
    for (Py_ssize_t i = 0; list != NULL && i < count; i++) {
        PyObject *item = live_pair(&sorted[i]);
        if (item != NULL && with_keys) {
            PyObject *key = PyLong_FromVoidPtr(sorted[i].view);
            Py_SETREF(item, key == NULL ? NULL : PyTuple_Pack(2, key, item));
            Py_XDECREF(key);
        }
        if (item == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, item);
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_DECREF(sorted[i].view);
        Py_DECREF(sorted[i].offset);
    }
    PyMem_Free(sorted);
    return list;
}

static PyObject *LiveTable_values(LiveTableObject *self, PyObject *unused)
{
    return live_list(self, 0);
}

static PyObject *LiveTable_items(LiveTableObject *self, PyObject *unused)
{
    return live_list(self, 1);
}

static PyObject *LiveTable_update(LiveTableObject *self, PyObject *pairs)
{
    PyObject *iterator = PyObject_GetIter(pairs);
    if (iterator == NULL) {
        return NULL;
    }
    PyObject *pair;
    while ((pair = PyIter_Next(iterator)) != NULL) {
        int failed = !PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2;
        if (failed) {
            PyErr_SetString(PyExc_TypeError, "slaballoc: update() takes (key, value) pairs");
        }
        else {
            failed = LiveTable_ass_subscript(self, PyTuple_GET_ITEM(pair, 0),
                                             PyTuple_GET_ITEM(pair, 1)) < 0;
        }
        Py_DECREF(pair);
        if (failed) {
            Py_DECREF(iterator);
            return NULL;
        }
    }
    Py_DECREF(iterator);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Empty the table; the references are dropped once it is consistent. */
static void live_clear(LiveTableObject *self)
{
    LiveEntry *entries = self->entries;
    Py_ssize_t size = entries == NULL ? 0 : self->mask + 1;
    self->entries = NULL;
    self->mask = 0;
    self->count = 0;
    self->added = 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        Py_XDECREF(entries[i].view);
        Py_XDECREF(entries[i].offset);
    }
    PyMem_Free(entries);
}

static PyObject *LiveTable_clear(LiveTableObject *self, PyObject *unused)
{
    live_clear(self);
    Py_RETURN_NONE;
}

static int LiveTable_traverse(LiveTableObject *self, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; self->entries != NULL && i <= self->mask; i++) {
        Py_VISIT(self->entries[i].view);
    }
    return 0;
}

static int LiveTable_gc_clear(LiveTableObject *self)
{
    live_clear(self);
    return 0;
}

static void LiveTable_dealloc(LiveTableObject *self)
{
    PyObject_GC_UnTrack(self);
    live_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef LiveTable_methods[] = {
    {"get", (PyCFunction)(void (*)(void))LiveTable_get, METH_FASTCALL, "As dict.get."},
    {"pop", (PyCFunction)(void (*)(void))LiveTable_pop, METH_FASTCALL, "As dict.pop."},
    {"values", (PyCFunction)LiveTable_values, METH_NOARGS, "Every (offset, view), as a list."},
    {"items", (PyCFunction)LiveTable_items, METH_NOARGS,
     "Every (id(view), (offset, view)), as a list."},
    {"update", (PyCFunction)LiveTable_update, METH_O, "Add (id(view), (offset, view)) pairs."},
    {"clear", (PyCFunction)LiveTable_clear, METH_NOARGS, "Forget every entry."},
    {NULL},
};

static PyMappingMethods LiveTable_as_mapping = {
    .mp_length = (lenfunc)LiveTable_length,
    .mp_subscript = (binaryfunc)LiveTable_subscript,
    .mp_ass_subscript = (objobjargproc)LiveTable_ass_subscript,
};

static PySequenceMethods LiveTable_as_sequence = {.sq_contains = (objobjproc)LiveTable_contains};

static PyTypeObject LiveTableType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "slaballoc._core.LiveTable",
    .tp_basicsize = sizeof(LiveTableObject),
    .tp_dealloc = (destructor)LiveTable_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)LiveTable_traverse,
    .tp_clear = (inquiry)LiveTable_gc_clear,
    .tp_free = PyObject_GC_Del,
    .tp_doc = "id(view) -> (offset, view) for SlabCache's live blocks: the dict operations "
              "BlockAllocator uses on _live, over a hash table the C hot path reads directly.",
    .tp_methods = LiveTable_methods,
    .tp_as_mapping = &LiveTable_as_mapping,
    .tp_as_sequence = &LiveTable_as_sequence,
    .tp_new = PyType_GenericNew,
};

/* -- the cache ------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *dict;         /* __dict__: every other attribute of the specification */
    LiveTableObject *live;  /* _live */
    PyObject *memory;       /* _memory: a flat byte memoryview */
    PyObject *debug;        /* _debug: None, else every operation goes to the specification */
    PyObject *capacity_of;  /* _capacity_of: magazine size per class (list of ints) */
    PyObject *table_list;   /* _table as assigned (a list of class indices) */
    int32_t *table;         /* the same, copied */
    Py_ssize_t table_len;
    Py_ssize_t largest;     /* _largest: 0 once closed */
    Py_ssize_t shift;       /* _shift */
    /* The magazines of the thread that used the cache last (see the top). */
    uint64_t mine_thread;   /* its PyThreadState_GetID(); 0: none cached */
    PyObject *mine;         /* its ThreadMagazines */
    PyObject *mine_loaded;  /* mine.loaded: a list (per class) of lists of offsets */
    Py_buffer mine_allocs;  /* mine.allocs and mine.frees: array('Q'), one per class */
    Py_buffer mine_frees;
    Py_ssize_t mine_classes; /* entries in each */
} SlabCacheObject;

/* Everything the hot paths read is set (the specification's __init__ ran to its end). */
static int cache_require_ready(SlabCacheObject *self)
{
    if (self->live == NULL || self->memory == NULL || self->debug == NULL ||
        self->capacity_of == NULL || self->table == NULL) {
        PyErr_Format(PyExc_TypeError, "%.100s.__init__() was not called", Py_TYPE(self)->tp_name);
        return -1;
    }
    return 0;
}

/* Forget the cached magazines (references dropped, counter buffers released). */
static void mine_forget(SlabCacheObject *self)
{
    self->mine_thread = 0;
    self->mine_classes = 0;
    if (self->mine_allocs.obj != NULL) {
        PyBuffer_Release(&self->mine_allocs);
    }
    if (self->mine_frees.obj != NULL) {
        PyBuffer_Release(&self->mine_frees);
    }
    Py_CLEAR(self->mine_loaded);
    Py_CLEAR(self->mine);
}

static int counters_buffer(PyObject *mags, const char *name, Py_buffer *buffer)
{
    PyObject *counters = PyObject_GetAttrString(mags, name);
    if (counters == NULL) {
        return -1;
    }
    int result = PyObject_GetBuffer(counters, buffer, PyBUF_WRITABLE | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS);
    Py_DECREF(counters);
    if (result < 0) {
        return -1;
    }
    if (buffer->itemsize != 8 || buffer->format == NULL || strcmp(buffer->format, "Q") != 0) {
        PyBuffer_Release(buffer);
        PyErr_Format(PyExc_SystemError, "slaballoc: ThreadMagazines.%s must be array('Q')", name);
        return -1;
    }
    return 0;
}

/* Make the calling thread's magazines the cached ones: Magazines.mine() (the
 * specification's threading.local), then its lists and counters.  Runs Python
 * code: callers read no state before it. */
static int mine_refresh(SlabCacheObject *self, uint64_t thread)
{
    PyObject *magazines = PyObject_GetAttrString((PyObject *)self, "_magazines");
    PyObject *mags = magazines == NULL ? NULL : PyObject_CallMethod(magazines, "mine", NULL);
    Py_XDECREF(magazines);
    PyObject *loaded = mags == NULL ? NULL : PyObject_GetAttrString(mags, "loaded");
    Py_buffer allocs = {0}, frees = {0};
    if (loaded == NULL || counters_buffer(mags, "allocs", &allocs) < 0 ||
        counters_buffer(mags, "frees", &frees) < 0) {
        if (allocs.obj != NULL) {
            PyBuffer_Release(&allocs);
        }
        Py_XDECREF(loaded);
        Py_XDECREF(mags);
        return -1;
    }
    if (!PyList_CheckExact(loaded)) {
        PyBuffer_Release(&allocs);
        PyBuffer_Release(&frees);
        Py_DECREF(loaded);
        Py_DECREF(mags);
        PyErr_SetString(PyExc_SystemError, "slaballoc: ThreadMagazines.loaded must be a list");
        return -1;
    }
    /* Nothing below runs Python code (releasing an array's buffer does not). */
    mine_forget(self);
    self->mine = mags;
    self->mine_loaded = loaded;
    self->mine_allocs = allocs;
    self->mine_frees = frees;
    Py_ssize_t classes = Py_MIN(allocs.len, frees.len) / 8;
    self->mine_classes = Py_MIN(classes, PyList_GET_SIZE(loaded));
    self->mine_thread = thread;
    return 0;
}

static uint64_t current_thread(void)
{
    return PyThreadState_GetID(PyThreadState_Get());
}

/* Make sure the cached magazines are the calling thread's.  0 or -1. */
static int mine(SlabCacheObject *self)
{
    uint64_t thread = current_thread();
    return thread == self->mine_thread ? 0 : mine_refresh(self, thread);
}

/* The class of a request of `size` bytes (1 <= size <= largest), or -1 if the table has none. */
static Py_ssize_t class_of(const SlabCacheObject *self, Py_ssize_t size)
{
    if (self->shift < 0 || self->shift >= 63) {
        return -1;
    }
    Py_ssize_t slot = (size - 1) >> self->shift;
    return slot < self->table_len ? self->table[slot] : -1;
}

/* This thread's loaded magazine of class `index` (borrowed), or NULL if the
 * cached state does not hold one (then the specification takes the call). */
static PyObject *loaded_magazine(const SlabCacheObject *self, Py_ssize_t index)
{
    if (index < 0 || index >= self->mine_classes || index >= PyList_GET_SIZE(self->mine_loaded)) {
        return NULL;
    }
    PyObject *magazine = PyList_GET_ITEM(self->mine_loaded, index);
    return PyList_CheckExact(magazine) ? magazine : NULL;
}

/* The specification's method `name` called as this call was (keywords included). */
static PyObject *spec_vectorcall(SlabCacheObject *self, const char *name, PyObject *const *args,
                                 Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *specification = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "_specification");
    PyObject *function = specification == NULL ? NULL : PyObject_GetAttrString(specification, name);
    Py_XDECREF(specification);
    if (function == NULL) {
        return NULL;
    }
    Py_ssize_t total = nargs + (kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames));
    PyObject **stack = PyMem_Malloc(sizeof(PyObject *) * (size_t)(total + 1));
    if (stack == NULL) {
        Py_DECREF(function);
        return PyErr_NoMemory();
    }
    stack[0] = (PyObject *)self;
    for (Py_ssize_t i = 0; i < total; i++) {
        stack[i + 1] = args[i];
    }
    PyObject *result = PyObject_Vectorcall(function, stack, (size_t)nargs + 1, kwnames);
    PyMem_Free(stack);
    Py_DECREF(function);
    return result;
}

static PyObject *spec_call1(SlabCacheObject *self, const char *name, PyObject *arg)
{
    PyObject *args = PyTuple_Pack(1, arg);
    PyObject *result = args == NULL ? NULL : slab_spec_call((PyObject *)self, name, args);
    Py_XDECREF(args);
    return result;
}

static int memory_usable(const SlabCacheObject *self)
{
    return self->memory != NULL && !slab_view_released(self->memory);
}

static PyObject *SlabCache_alloc(SlabCacheObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames)
{
    if (cache_require_ready(self) < 0) {
        return NULL;
    }
    if (nargs != 1 || kwnames != NULL) {
        return spec_vectorcall(self, "alloc", args, nargs, kwnames);
    }
    PyObject *size_arg = args[0];
    for (;;) {
        Py_ssize_t size = PyLong_CheckExact(size_arg) ? PyLong_AsSsize_t(size_arg) : -1;
        if (size == -1 && PyErr_Occurred()) {
            PyErr_Clear(); /* too large: the specification says so */
        }
        if (size <= 0 || size > self->largest || self->debug != Py_None) {
            return spec_call1(self, "alloc", size_arg);
        }
        Py_ssize_t index = class_of(self, size);
        if (mine(self) < 0) {
            return NULL;
        }
        PyObject *magazine = loaded_magazine(self, index);
        Py_ssize_t count = magazine == NULL ? 0 : PyList_GET_SIZE(magazine);
        if (count == 0 || !memory_usable(self)) {
            return spec_call1(self, "alloc", size_arg); /* a miss: refill, swap... */
        }
        PyObject *top = PyList_GET_ITEM(magazine, count - 1);
        Py_ssize_t offset = PyLong_CheckExact(top) ? PyLong_AsSsize_t(top) : -1;
        if (offset < 0 || offset > PyMemoryView_GET_BUFFER(self->memory)->len - size) {
            PyErr_Clear();
            return spec_call1(self, "alloc", size_arg);
        }
        if (live_reserve(self->live, 1) < 0) {
            return NULL;
        }
        /* The plan's own reference: making the view may run Python code, which could
         * drop top and put a new int at its address; the identity check needs it alive. */
        Py_INCREF(top);
        PyObject *view = slab_view_new(self->memory, offset, size);
        if (view == NULL) {
            Py_DECREF(top);
            return NULL;
        }
        /* Making the view may have run Python code: commit only if the plan still holds. */
        int holds = self->mine_thread == current_thread() &&
                    loaded_magazine(self, index) == magazine && PyList_GET_SIZE(magazine) == count &&
                    PyList_GET_ITEM(magazine, count - 1) == top && size <= self->largest &&
                    self->debug == Py_None && memory_usable(self) && live_has_room(self->live, 1);
        if (holds) {
            Py_SET_SIZE(magazine, count - 1); /* list.pop(): its reference to top passes on */
            live_insert(self->live, Py_NewRef(view), top);
            ((unsigned long long *)self->mine_allocs.buf)[index]++;
        }
        else {
            Py_CLEAR(view);
        }
        Py_DECREF(top); /* the plan's; last, as it may run Python code (not on a commit) */
        if (view != NULL) {
            return view;
        }
    }
}

static PyObject *SlabCache_free_one(SlabCacheObject *self, PyObject *view);

static PyObject *SlabCache_free(SlabCacheObject *self, PyObject *const *args, Py_ssize_t nargs,
                                PyObject *kwnames)
{
    if (cache_require_ready(self) < 0) {
        return NULL;
    }
    if (nargs != 1 || kwnames != NULL) {
        return spec_vectorcall(self, "free", args, nargs, kwnames);
    }
    return SlabCache_free_one(self, args[0]);
}

static PyObject *SlabCache_free_one(SlabCacheObject *self, PyObject *view)
{
    if (self->debug != Py_None) {
        return spec_call1(self, "free", view);
    }
    /* As the specification, this thread's magazines are looked up only for a live
     * object of a class (their first lookup retires exited threads' magazines). */
    Py_ssize_t entry = live_find(self->live, view);
    if (entry < 0 || slab_view_released(view) || slab_view_exports(view) > 0 ||
        !memory_usable(self)) {
        return spec_call1(self, "free", view); /* not live, released by its owner, exported */
    }
    Py_ssize_t size = PyMemoryView_GET_BUFFER(view)->len;
    Py_ssize_t index = size > 0 && size <= self->largest ? class_of(self, size) : -1;
    if (index < 0 || !PyList_CheckExact(self->capacity_of) ||
        index >= PyList_GET_SIZE(self->capacity_of)) {
        return spec_call1(self, "free", view); /* a large block */
    }
    uint64_t thread = current_thread();
    if (thread != self->mine_thread) {
        /* Python code runs: look again from the start once it is done. */
        if (mine_refresh(self, thread) < 0) {
            return NULL;
        }
        return SlabCache_free_one(self, view);
    }
    /* From here on nothing runs Python code until the block is freed. */
    PyObject *magazine = loaded_magazine(self, index);
    Py_ssize_t room = PyLong_AsSsize_t(PyList_GET_ITEM(self->capacity_of, index));
    if (room == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t count = magazine == NULL ? 0 : PyList_GET_SIZE(magazine);
    if (magazine == NULL || count >= room) {
        return spec_call1(self, "free", view); /* the magazine is full: spill */
    }
    PyObject *offset = self->live->entries[entry].offset;
    if (PyList_Append(magazine, offset) < 0) {
        return NULL; /* nothing changed */
    }
    if (slab_view_release(view) < 0) {
        Py_SET_SIZE(magazine, count); /* undo the append (not reached: no export) */
        Py_DECREF(offset);
        return NULL;
    }
    PyObject *dropped_view, *dropped_offset;
    live_remove(self->live, entry, &dropped_view, &dropped_offset);
    ((unsigned long long *)self->mine_frees.buf)[index]++;
    Py_DECREF(dropped_offset); /* the magazine holds it now */
    Py_DECREF(dropped_view);   /* last: a weakref callback may run */
    Py_RETURN_NONE;
}

/* A request size or count given as an exact int (else -1: the specification decides). */
static Py_ssize_t exact_count(PyObject *value)
{
    Py_ssize_t number = PyLong_CheckExact(value) ? PyLong_AsSsize_t(value) : -1;
    if (number == -1 && PyErr_Occurred()) {
        PyErr_Clear();
    }
    return number;
}

/* alloc_many(size, count) when this thread's loaded magazine holds `count` objects:
 * Magazines.take_many's first case (the top `count` offsets, in list order). */
static PyObject *SlabCache_alloc_many(SlabCacheObject *self, PyObject *const *args,
                                      Py_ssize_t nargs, PyObject *kwnames)
{
    if (cache_require_ready(self) < 0) {
        return NULL;
    }
    if (nargs != 2 || kwnames != NULL || self->debug != Py_None) {
        return spec_vectorcall(self, "alloc_many", args, nargs, kwnames);
    }
    Py_ssize_t size = exact_count(args[0]), count = exact_count(args[1]);
    if (size <= 0 || size > self->largest || count < 0) {
        return spec_vectorcall(self, "alloc_many", args, nargs, kwnames);
    }
    Py_ssize_t index = class_of(self, size);
    for (;;) {
        if (mine(self) < 0) {
            return NULL;
        }
        /* Python code may have run (mine(), or making the views of a plan that did not
         * hold): the commit needs these, so check them again as alloc does. */
        if (size > self->largest || self->debug != Py_None) {
            return spec_vectorcall(self, "alloc_many", args, nargs, kwnames);
        }
        PyObject *magazine = loaded_magazine(self, index);
        Py_ssize_t have = magazine == NULL ? -1 : PyList_GET_SIZE(magazine);
        int usable = have >= count && memory_usable(self);
        Py_ssize_t limit = usable ? PyMemoryView_GET_BUFFER(self->memory)->len - size : 0;
        for (Py_ssize_t i = have - count; usable && i < have; i++) {
            Py_ssize_t offset = exact_count(PyList_GET_ITEM(magazine, i));
            usable = offset >= 0 && offset <= limit;
        }
        if (!usable) {
            return spec_vectorcall(self, "alloc_many", args, nargs, kwnames); /* a miss */
        }
        if (live_reserve(self->live, count) < 0) {
            return NULL;
        }
        /* The plan: the top `count` objects (referenced, in case the list changes while
         * the views are made, which can run Python code). */
        PyObject **tops = PyMem_Malloc(sizeof(PyObject *) * (size_t)(count + 1));
        PyObject *views = tops == NULL ? NULL : PyList_New(count);
        if (views == NULL) {
            PyMem_Free(tops);
            return tops == NULL ? PyErr_NoMemory() : NULL;
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            tops[i] = Py_NewRef(PyList_GET_ITEM(magazine, have - count + i));
        }
        int failed = 0;
        for (Py_ssize_t i = 0; i < count && !failed; i++) {
            PyObject *view = slab_view_new(self->memory, PyLong_AsSsize_t(tops[i]), size);
            failed = view == NULL;
            if (!failed) {
                PyList_SET_ITEM(views, i, view);
            }
        }
        int holds = !failed && self->mine_thread == current_thread() &&
                    loaded_magazine(self, index) == magazine &&
                    PyList_GET_SIZE(magazine) == have && size <= self->largest &&
                    self->debug == Py_None && memory_usable(self) &&
                    live_has_room(self->live, count);
        for (Py_ssize_t i = 0; holds && i < count; i++) {
            holds = PyList_GET_ITEM(magazine, have - count + i) == tops[i];
        }
        if (holds) {
            Py_SET_SIZE(magazine, have - count); /* its references pass to the table */
            for (Py_ssize_t i = 0; i < count; i++) {
                live_insert(self->live, Py_NewRef(PyList_GET_ITEM(views, i)), tops[i]);
            }
            ((unsigned long long *)self->mine_allocs.buf)[index] += (unsigned long long)count;
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            Py_DECREF(tops[i]); /* the plan's own references */
        }
        PyMem_Free(tops);
        if (holds) {
            return views;
        }
        Py_DECREF(views);
        if (failed) {
            return NULL;
        }
    }
}

/* Set while free_many validates a batch: the entry was met already (given twice). */
#define LIVE_SEEN (UINT64_C(1) << 63)

/* free_many(views) when every view is a live class object, given once, neither
 * released nor exported, and this thread's loaded magazines have room for all
 * of them: Magazines.give_many's first case for every class of the batch. */
static PyObject *SlabCache_free_many(SlabCacheObject *self, PyObject *const *args,
                                     Py_ssize_t nargs, PyObject *kwnames)
{
    if (cache_require_ready(self) < 0) {
        return NULL;
    }
    if (nargs != 1 || kwnames != NULL || self->debug != Py_None ||
        !PyList_CheckExact(self->capacity_of)) {
        return spec_vectorcall(self, "free_many", args, nargs, kwnames);
    }
    /* The batch as a list (an iterator is consumed once: the specification gets the list). */
    PyObject *batch = PySequence_List(args[0]);
    if (batch == NULL) {
        return NULL;
    }
    Py_ssize_t allocated = PyList_GET_SIZE(self->capacity_of);
    Py_ssize_t *counts = PyMem_Calloc((size_t)allocated + 1, sizeof(Py_ssize_t));
    Py_ssize_t *indices = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(PyList_GET_SIZE(batch) + 1));
    PyObject *result = NULL;
    if (counts == NULL || indices == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (;;) {
        /* Python code may have run (mine_refresh): `_debug` and `_capacity_of` again.  A
         * class past the list as it is now (or past `counts`) goes to the specification. */
        if (self->debug != Py_None || !PyList_CheckExact(self->capacity_of)) {
            result = spec_call1(self, "free_many", batch);
            goto done;
        }
        Py_ssize_t classes = Py_MIN(allocated, PyList_GET_SIZE(self->capacity_of));
        /* Validate (no Python code runs): each view's class, and the count per class. */
        Py_ssize_t k = PyList_GET_SIZE(batch), marked = 0;
        int valid = memory_usable(self);
        memset(counts, 0, sizeof(Py_ssize_t) * (size_t)classes);
        for (; valid && marked < k; marked++) {
            PyObject *view = PyList_GET_ITEM(batch, marked);
            Py_ssize_t entry = live_find(self->live, view);
            if (entry < 0 || self->live->entries[entry].order & LIVE_SEEN ||
                slab_view_released(view) || slab_view_exports(view) > 0) {
                valid = 0;
                break;
            }
            self->live->entries[entry].order |= LIVE_SEEN;
            Py_ssize_t size = PyMemoryView_GET_BUFFER(view)->len;
            Py_ssize_t index = size > 0 && size <= self->largest ? class_of(self, size) : -1;
            valid = index >= 0 && index < classes;
            if (valid) {
                indices[marked] = index;
                counts[index]++;
            }
        }
        for (Py_ssize_t i = 0; i < marked; i++) { /* every mark goes before anything else */
            Py_ssize_t entry = live_find(self->live, PyList_GET_ITEM(batch, i));
            if (entry >= 0) {
                self->live->entries[entry].order &= ~LIVE_SEEN;
            }
        }
        if (!valid) {
            /* Not live, given twice, released, exported, or a large block. */
            result = spec_call1(self, "free_many", batch);
            goto done;
        }
        uint64_t thread = current_thread();
        if (thread != self->mine_thread) {
            if (mine_refresh(self, thread) < 0) {
                goto done;
            }
            continue; /* Python code ran: validate again */
        }
        /* Room in every class's loaded magazine (else some go to the slabs: the specification). */
        for (Py_ssize_t index = 0; valid && index < classes; index++) {
            if (counts[index] == 0) {
                continue;
            }
            PyObject *magazine = loaded_magazine(self, index);
            Py_ssize_t room = PyLong_AsSsize_t(PyList_GET_ITEM(self->capacity_of, index));
            if (room == -1 && PyErr_Occurred()) {
                goto done;
            }
            valid = magazine != NULL && PyList_GET_SIZE(magazine) + counts[index] <= room;
        }
        if (!valid) {
            result = spec_call1(self, "free_many", batch);
            goto done;
        }
        /* Commit: the offsets onto the magazines first (undone if a list cannot grow), then
         * the views released and the entries removed, which cannot fail. */
        Py_ssize_t appended = 0;
        for (; appended < k; appended++) {
            PyObject *view = PyList_GET_ITEM(batch, appended);
            PyObject *offset = self->live->entries[live_find(self->live, view)].offset;
            if (PyList_Append(loaded_magazine(self, indices[appended]), offset) < 0) {
                break;
            }
        }
        if (appended < k) {
            while (appended-- > 0) {
                PyObject *magazine = loaded_magazine(self, indices[appended]);
                Py_ssize_t last = PyList_GET_SIZE(magazine) - 1;
                PyObject *offset = PyList_GET_ITEM(magazine, last);
                Py_SET_SIZE(magazine, last);
                Py_DECREF(offset);
            }
            goto done;
        }
        for (Py_ssize_t i = 0; i < k; i++) {
            PyObject *view = PyList_GET_ITEM(batch, i);
            if (slab_view_release(view) < 0) {
                PyErr_Clear(); /* not reached: no view of the batch is exported */
            }
            PyObject *dropped_view, *dropped_offset;
            live_remove(self->live, live_find(self->live, view), &dropped_view, &dropped_offset);
            Py_DECREF(dropped_offset); /* the magazine holds it */
            Py_DECREF(dropped_view);   /* the batch still holds the view */
        }
        /* Every class with a count has a loaded magazine (checked above), so is below
         * mine_classes, the entries the counters hold: no count is lost. */
        for (Py_ssize_t index = 0; index < Py_MIN(classes, self->mine_classes); index++) {
            ((unsigned long long *)self->mine_frees.buf)[index] += (unsigned long long)counts[index];
        }
        result = Py_NewRef(Py_None);
        goto done;
    }
done:
    PyMem_Free(counts);
    PyMem_Free(indices);
    Py_DECREF(batch); /* last: dropping the views may run Python code */
    return result;
}

/* The C base stands where BlockAllocator.__init__ stands in the MRO: it makes
 * the live table, then runs that __init__ (whose `self._live = {}` keeps it). */
static int SlabCache_init(SlabCacheObject *self, PyObject *args, PyObject *kwargs)
{
    if (self->live == NULL) {
        self->live = PyObject_GC_New(LiveTableObject, &LiveTableType);
        if (self->live == NULL) {
            return -1;
        }
        self->live->entries = NULL;
        self->live->mask = 0;
        self->live->count = 0;
        self->live->added = 0;
        PyObject_GC_Track(self->live);
    }
    PyObject *module = PyImport_ImportModule("slaballoc.allocator");
    PyObject *base = module == NULL ? NULL : PyObject_GetAttrString(module, "BlockAllocator");
    PyObject *init = base == NULL ? NULL : PyObject_GetAttrString(base, "__init__");
    Py_XDECREF(module);
    Py_XDECREF(base);
    if (init == NULL) {
        return -1;
    }
    PyObject *self_args = PyTuple_New(PyTuple_GET_SIZE(args) + 1);
    if (self_args == NULL) {
        Py_DECREF(init);
        return -1;
    }
    PyTuple_SET_ITEM(self_args, 0, Py_NewRef((PyObject *)self));
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++) {
        PyTuple_SET_ITEM(self_args, i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
    }
    PyObject *result = PyObject_Call(init, self_args, kwargs);
    Py_DECREF(init);
    Py_DECREF(self_args);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

static int SlabCache_traverse(SlabCacheObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->dict);
    Py_VISIT(self->live);
    Py_VISIT(self->memory);
    Py_VISIT(self->debug);
    Py_VISIT(self->capacity_of);
    Py_VISIT(self->table_list);
    Py_VISIT(self->mine);
    Py_VISIT(self->mine_loaded);
    Py_VISIT(self->mine_allocs.obj);
    Py_VISIT(self->mine_frees.obj);
    return 0;
}

static int SlabCache_gc_clear(SlabCacheObject *self)
{
    mine_forget(self);
    Py_CLEAR(self->dict);
    Py_CLEAR(self->live);
    Py_CLEAR(self->memory);
    Py_CLEAR(self->debug);
    Py_CLEAR(self->capacity_of);
    Py_CLEAR(self->table_list);
    PyMem_Free(self->table);
    self->table = NULL;
    self->table_len = 0;
    return 0;
}

static void SlabCache_dealloc(SlabCacheObject *self)
{
    PyObject_GC_UnTrack(self);
    SlabCache_gc_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* -- the attributes the pure code assigns and the hot path reads ------------------ */

static PyObject *SlabCache_get_live(SlabCacheObject *self, void *unused)
{
    if (cache_require_ready(self) < 0) {
        return NULL;
    }
    return Py_NewRef((PyObject *)self->live);
}

/* BlockAllocator.__init__ assigns `self._live = {}`: the table is already there, empty. */
static int SlabCache_set_live(SlabCacheObject *self, PyObject *value, void *unused)
{
    if (self->live == NULL || value == NULL || !PyDict_CheckExact(value) ||
        PyDict_GET_SIZE(value) != 0 || self->live->count != 0) {
        PyErr_SetString(PyExc_TypeError,
                        "slaballoc: SlabCache's live table is only ever started empty ({})");
        return -1;
    }
    return 0;
}

static PyObject *SlabCache_get_memory(SlabCacheObject *self, void *unused)
{
    if (self->memory == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_memory");
        return NULL;
    }
    return Py_NewRef(self->memory);
}

static int SlabCache_set_memory(SlabCacheObject *self, PyObject *value, void *unused)
{
    if (value == NULL || !PyMemoryView_Check(value) || PyMemoryView_GET_BUFFER(value)->ndim != 1 ||
        PyMemoryView_GET_BUFFER(value)->itemsize != 1) {
        PyErr_SetString(PyExc_TypeError, "slaballoc: _memory must be a flat byte memoryview");
        return -1;
    }
    Py_XSETREF(self->memory, Py_NewRef(value));
    return 0;
}

static PyObject *SlabCache_get_table(SlabCacheObject *self, void *unused)
{
    if (self->table_list == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_table");
        return NULL;
    }
    return Py_NewRef(self->table_list);
}

/* `_table` (SizeClasses.table, never changed afterwards) is copied for the hot path. */
static int SlabCache_set_table(SlabCacheObject *self, PyObject *value, void *unused)
{
    if (value == NULL || !PyList_CheckExact(value)) {
        PyErr_SetString(PyExc_TypeError, "slaballoc: _table must be a list of class indices");
        return -1;
    }
    Py_ssize_t length = PyList_GET_SIZE(value);
    int32_t *table = PyMem_Calloc((size_t)length + 1, sizeof(int32_t));
    if (table == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < length; i++) {
        long index = PyLong_AsLong(PyList_GET_ITEM(value, i));
        if (index < 0 || index > INT32_MAX) {
            PyMem_Free(table);
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_ValueError, "slaballoc: _table holds class indices");
            }
            return -1;
        }
        table[i] = (int32_t)index;
    }
    PyMem_Free(self->table);
    self->table = table;
    self->table_len = length;
    Py_XSETREF(self->table_list, Py_NewRef(value));
    return 0;
}

#define FASTCALL(function) (PyCFunction)(void (*)(void))(function), METH_FASTCALL | METH_KEYWORDS

static PyMethodDef SlabCache_methods[] = {
    {"alloc", FASTCALL(SlabCache_alloc), "See SlabCache.alloc."},
    {"free", FASTCALL(SlabCache_free), "See SlabCache.free."},
    {"alloc_many", FASTCALL(SlabCache_alloc_many), "See SlabCache.alloc_many."},
    {"free_many", FASTCALL(SlabCache_free_many), "See SlabCache.free_many."},
    {NULL},
};

static PyMemberDef SlabCache_members[] = {
    {"_debug", T_OBJECT, offsetof(SlabCacheObject, debug), 0, NULL},
    {"_capacity_of", T_OBJECT, offsetof(SlabCacheObject, capacity_of), 0, NULL},
    {"_largest", T_PYSSIZET, offsetof(SlabCacheObject, largest), 0, NULL},
    {"_shift", T_PYSSIZET, offsetof(SlabCacheObject, shift), 0, NULL},
    {NULL},
};

static PyGetSetDef SlabCache_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {"_live", (getter)SlabCache_get_live, (setter)SlabCache_set_live, NULL, NULL},
    {"_memory", (getter)SlabCache_get_memory, (setter)SlabCache_set_memory, NULL, NULL},
    {"_table", (getter)SlabCache_get_table, (setter)SlabCache_set_table, NULL, NULL},
    {NULL},
};

static PyTypeObject SlabCacheType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "slaballoc._core.SlabCache",
    .tp_basicsize = sizeof(SlabCacheObject),
    .tp_dictoffset = offsetof(SlabCacheObject, dict),
    .tp_dealloc = (destructor)SlabCache_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)SlabCache_traverse,
    .tp_clear = (inquiry)SlabCache_gc_clear,
    .tp_free = PyObject_GC_Del,
    .tp_doc = "C base of slaballoc.SlabCache: alloc and free on a magazine hit.",
    .tp_methods = SlabCache_methods,
    .tp_members = SlabCache_members,
    .tp_getset = SlabCache_getset,
    .tp_init = (initproc)SlabCache_init,
    .tp_new = PyType_GenericNew,
};

int _slaballoc_add_slab_cache(PyObject *module)
{
#ifdef Py_GIL_DISABLED
    /* The hot path changes lists without their critical sections: there, the pure
     * SlabCache runs (slaballoc/slab_cache/cache.py uses core.SlabCache if present). */
    return 0;
#endif
    PyTypeObject *types[] = {&LiveTableType, &SlabCacheType};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (PyType_Ready(types[i]) < 0 || PyModule_AddObjectRef(module, types[i]->tp_name + 16,
                                                               (PyObject *)types[i]) < 0) {
            return -1;
        }
    }
    return 0;
}
