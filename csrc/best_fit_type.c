/* best_fit_type.c: the Python face of the best-fit engine.
 *
 * Two base types, completed in Python by slaballoc._accelerate.accelerated():
 *
 * - BestFit: the offset-level policy (allocate, release, resize, size_of and
 *   the facts) over one engine region (best_fit.c), allocated with
 *   PyMem_RawMalloc so that tracemalloc counts it;
 * - DynamicSlab: memoryview blocks over a BestFit (alloc, free, realloc,
 *   alloc_many, free_many, offset_of, close).
 *
 * The pure classes (policies/best_fit.py, dynamic.py, allocator.py) are the
 * specification: they lend these types every cold method (stats, check,
 * repr, the error builders), which read the state through the attributes
 * defined here under the pure names.  No message text lives in C.
 *
 * DynamicSlab keeps the view handed out for each live block in an array
 * indexed by the block's engine node (`views`), so that free(view) costs one
 * hash lookup (the engine's, by the view's offset) plus an identity check,
 * and no second table is kept per block.
 */
#include "core.h"

#include <string.h>

#include "best_fit.h"

/* -- BestFit --------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    bf_heap *heap; /* the engine's region; replaced (copied) when it grows */
} BestFitObject;

static PyTypeObject BestFitType;

static PyObject *block_class; /* slaballoc.policies.blocks.Block, loaded on first use */

static int
load_python_names(void)
{
    if (block_class == NULL) {
        PyObject *module = PyImport_ImportModule("slaballoc.policies.blocks");
        if (module == NULL) {
            return -1;
        }
        block_class = PyObject_GetAttrString(module, "Block");
        Py_DECREF(module);
        if (block_class == NULL) {
            return -1;
        }
    }
    return 0;
}

/* Make sure the next engine operation finds a spare node: grow the region
 * now, before anything changes, so that the operation cannot fail half-way. */
static int
ensure_room(BestFitObject *self)
{
    if (self->heap->node_free_list != 0) {
        return 0;
    }
    uint32_t slots = bf_grown_slots(self->heap);
    size_t bytes = slots ? bf_region_bytes(slots) : 0;
    bf_heap *region = bytes ? PyMem_RawMalloc(bytes) : NULL;
    if (region == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    bf_grow_into(self->heap, region, slots);
    PyMem_RawFree(self->heap);
    self->heap = region;
    return 0;
}

/* An offset argument as the engine's type.  Only an exact int can name a
 * block (the specification says so); *known is 0 for anything that cannot
 * (a non-int, a negative or huge int), which callers report as "not live". */
static void
offset_arg(PyObject *obj, bf_off *offset, int *known)
{
    *known = 0;
    if (!PyLong_CheckExact(obj)) {
        return;
    }
    unsigned long long value = PyLong_AsUnsignedLongLong(obj);
    if (value == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear(); /* negative or beyond 64 bits: no block starts there */
        return;
    }
    *offset = (bf_off)value;
    *known = 1;
}

/* A size argument: an exact int in [1, capacity] here, anything else through
 * the specification's _require_size (which raises, or returns the int). */
static int
size_arg(BestFitObject *self, PyObject *obj, bf_off *size)
{
    if (PyLong_CheckExact(obj)) {
        int overflow = 0;
        long long value = PyLong_AsLongLongAndOverflow(obj, &overflow);
        if (!overflow && value > 0 && (unsigned long long)value <= self->heap->capacity) {
            *size = (bf_off)value;
            return 0;
        }
    }
    PyObject *number = PyObject_CallMethod((PyObject *)self, "_require_size", "O", obj);
    if (number == NULL) {
        return -1;
    }
    unsigned long long value = PyLong_AsUnsignedLongLong(number);
    Py_DECREF(number);
    if (value == (unsigned long long)-1 && PyErr_Occurred()) {
        return -1;
    }
    if (value == 0 || value > self->heap->capacity) {
        PyErr_SetString(PyExc_SystemError, "slaballoc: _require_size returned a bad size");
        return -1;
    }
    *size = (bf_off)value;
    return 0;
}

static PyObject *
raise_not_live(PyObject *self, PyObject *offset)
{
    PyObject *args = PyTuple_Pack(1, offset);
    if (args != NULL) {
        slab_raise_from_method(self, "_not_live", args);
        Py_DECREF(args);
    }
    return NULL;
}

static PyObject *
raise_out_of_memory(PyObject *policy, bf_off size)
{
    PyObject *args = Py_BuildValue("(K)", (unsigned long long)size);
    if (args != NULL) {
        slab_raise_from_method(policy, "_out_of_memory", args);
        Py_DECREF(args);
    }
    return NULL;
}

static PyObject *
engine_status_error(bf_status status)
{
    PyErr_Format(PyExc_SystemError, "slaballoc: unexpected best-fit engine status %d", (int)status);
    return NULL;
}

static int
BestFit_init(BestFitObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"capacity", "alignment", NULL};
    PyObject *capacity_obj, *alignment_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O:BestFit", keywords, &capacity_obj,
                                     &alignment_obj)) {
        return -1;
    }
    if (load_python_names() < 0) {
        return -1;
    }
    /* The specification's checks, in its order: capacity, then alignment. */
    PyObject *sizes = PyImport_ImportModule("slaballoc.sizes");
    if (sizes == NULL) {
        return -1;
    }
    PyObject *capacity = NULL, *alignment = NULL;
    PyObject *require_count = PyObject_GetAttrString(sizes, "require_count");
    PyObject *call_args = Py_BuildValue("(Os)", capacity_obj, "capacity");
    PyObject *minimum_zero = Py_BuildValue("{si}", "minimum", 0);
    if (require_count != NULL && call_args != NULL && minimum_zero != NULL) {
        capacity = PyObject_Call(require_count, call_args, minimum_zero);
    }
    Py_XDECREF(require_count);
    Py_XDECREF(call_args);
    Py_XDECREF(minimum_zero);
    if (capacity != NULL) {
        alignment = alignment_obj == NULL
                        ? PyLong_FromLong(8)
                        : PyObject_CallMethod(sizes, "require_power_of_two", "Os", alignment_obj,
                                              "alignment");
    }
    Py_DECREF(sizes);
    if (alignment == NULL) {
        Py_XDECREF(capacity);
        return -1;
    }
    unsigned long long capacity_value = PyLong_AsUnsignedLongLong(capacity);
    unsigned long long alignment_value = PyLong_AsUnsignedLongLong(alignment);
    Py_DECREF(capacity);
    Py_DECREF(alignment);
    if (PyErr_Occurred() || capacity_value > (1ull << 62) || alignment_value > (1ull << 62)) {
        /* An arena this large cannot exist: the pure code fails the same way. */
        PyErr_Clear();
        PyErr_NoMemory();
        return -1;
    }
    if (capacity_value < alignment_value) {
        /* No block could ever fit: the specification refuses, in its words. */
        PyObject *specification =
            PyObject_GetAttrString((PyObject *)Py_TYPE(self), "_specification");
        PyObject *refused = specification == NULL
                                ? NULL
                                : PyObject_CallFunctionObjArgs(specification, capacity_obj,
                                                               alignment_obj, NULL);
        Py_XDECREF(specification);
        if (refused != NULL) {
            Py_DECREF(refused);
            PyErr_SetString(PyExc_SystemError, "slaballoc: BestFit accepted an empty arena");
        }
        return -1;
    }
    bf_heap *region = PyMem_RawMalloc(bf_region_bytes(BF_MIN_NODE_SLOTS));
    if (region == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    bf_init(region, BF_MIN_NODE_SLOTS, capacity_value, alignment_value);
    PyMem_RawFree(self->heap);
    self->heap = region;
    return 0;
}

static void
BestFit_dealloc(BestFitObject *self)
{
    PyMem_RawFree(self->heap);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Every method needs an initialised heap (a subclass might skip __init__). */
static int
require_heap(BestFitObject *self)
{
    if (self->heap == NULL) {
        PyErr_SetString(PyExc_ValueError, "BestFit.__init__ was not called");
        return -1;
    }
    return 0;
}

static PyObject *
BestFit_allocate(BestFitObject *self, PyObject *size_obj)
{
    bf_off size, offset;
    bf_idx node;
    if (require_heap(self) < 0 || size_arg(self, size_obj, &size) < 0) {
        return NULL;
    }
    bf_status status;
    SLAB_BEGIN(self)
    status = ensure_room(self) < 0 ? BF_NO_ROOM : bf_allocate(self->heap, size, &offset, &node);
    SLAB_END()
    if (status == BF_OK) {
        return PyLong_FromUnsignedLongLong(offset);
    }
    if (status == BF_NO_MEMORY) {
        return raise_out_of_memory((PyObject *)self, size);
    }
    return PyErr_Occurred() ? NULL : engine_status_error(status);
}

static PyObject *
BestFit_release(BestFitObject *self, PyObject *offset_obj)
{
    bf_off offset, size = 0;
    int known;
    if (require_heap(self) < 0) {
        return NULL;
    }
    offset_arg(offset_obj, &offset, &known);
    bf_status status = BF_NOT_LIVE;
    if (known) {
        SLAB_BEGIN(self)
        status = bf_release(self->heap, offset, &size);
        SLAB_END()
    }
    if (status != BF_OK) {
        return raise_not_live((PyObject *)self, offset_obj);
    }
    return PyLong_FromUnsignedLongLong(size);
}

static PyObject *
BestFit_size_of(BestFitObject *self, PyObject *offset_obj)
{
    bf_off offset, size = 0;
    int known;
    if (require_heap(self) < 0) {
        return NULL;
    }
    offset_arg(offset_obj, &offset, &known);
    if (!known || bf_size_of(self->heap, offset, &size) != BF_OK) {
        return raise_not_live((PyObject *)self, offset_obj);
    }
    return PyLong_FromUnsignedLongLong(size);
}

static PyObject *
BestFit_resize(BestFitObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "resize() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    bf_off offset, old, size;
    int known;
    if (require_heap(self) < 0) {
        return NULL;
    }
    /* The specification's order: the offset first, then the size. */
    offset_arg(args[0], &offset, &known);
    if (!known || bf_size_of(self->heap, offset, &old) != BF_OK) {
        return raise_not_live((PyObject *)self, args[0]);
    }
    if (size_arg(self, args[1], &size) < 0) {
        return NULL;
    }
    bf_status status;
    SLAB_BEGIN(self)
    status = ensure_room(self) < 0 ? BF_NO_ROOM : bf_resize(self->heap, offset, size);
    SLAB_END()
    if (status == BF_OK || status == BF_MOVE) {
        return PyBool_FromLong(status == BF_OK);
    }
    return PyErr_Occurred() ? NULL : engine_status_error(status);
}

static PyObject *
BestFit_is_free_start(BestFitObject *self, PyObject *offset_obj)
{
    bf_off offset;
    int known;
    if (require_heap(self) < 0) {
        return NULL;
    }
    offset_arg(offset_obj, &offset, &known);
    return PyBool_FromLong(known && bf_classify(self->heap, offset) == BF_FREED);
}

static PyObject *
BestFit_free_block_count(BestFitObject *self, PyObject *unused)
{
    if (require_heap(self) < 0) {
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(self->heap->free_count);
}

/* Every block in address order as Block(offset, size, live); free ones only if free_only. */
static PyObject *
walk_blocks(BestFitObject *self, int free_sizes_only)
{
    if (require_heap(self) < 0) {
        return NULL;
    }
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    for (bf_idx x = bf_first(self->heap); x != 0; x = bf_next(self->heap, x)) {
        const bf_node *node = bf_node_at(self->heap, x);
        int live = !(node->flags & BF_NODE_FREE);
        PyObject *item;
        if (free_sizes_only) {
            if (live) {
                continue;
            }
            item = PyLong_FromUnsignedLongLong(node->size);
        }
        else {
            item = PyObject_CallFunction(block_class, "KKO", (unsigned long long)node->start,
                                         (unsigned long long)node->size,
                                         live ? Py_True : Py_False);
        }
        if (item == NULL || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(item);
    }
    return list;
}

static PyObject *
BestFit_blocks(BestFitObject *self, PyObject *unused)
{
    PyObject *list = walk_blocks(self, 0);
    if (list == NULL) {
        return NULL;
    }
    PyObject *iterator = PyObject_GetIter(list);
    Py_DECREF(list);
    return iterator;
}

static PyObject *
BestFit_free_sizes(BestFitObject *self, PyObject *unused)
{
    return walk_blocks(self, 1);
}

static PyObject *
BestFit_check_indexes(BestFitObject *self, PyObject *unused)
{
    if (require_heap(self) < 0) {
        return NULL;
    }
    bf_off where;
    bf_check_status fault = bf_check(self->heap, &where);
    if (fault == BF_CHECK_OK) {
        Py_RETURN_NONE;
    }
    PyObject *args = Py_BuildValue("(iK)", (int)fault, (unsigned long long)where);
    if (args != NULL) {
        slab_raise_from_function("slaballoc.policies.best_fit", "engine_fault", args);
        Py_DECREF(args);
    }
    return NULL;
}

static Py_ssize_t
BestFit_len(BestFitObject *self)
{
    if (require_heap(self) < 0) {
        return -1;
    }
    return (Py_ssize_t)self->heap->live_count;
}

#define HEAP_GETTER(name, expression)                                              \
    static PyObject *BestFit_get_##name(BestFitObject *self, void *closure)        \
    {                                                                              \
        if (require_heap(self) < 0) {                                              \
            return NULL;                                                           \
        }                                                                          \
        return PyLong_FromUnsignedLongLong((unsigned long long)(expression));      \
    }

HEAP_GETTER(capacity, self->heap->capacity)
HEAP_GETTER(alignment, self->heap->alignment)
HEAP_GETTER(used, self->heap->used)
HEAP_GETTER(largest_free, bf_largest_free(self->heap))
HEAP_GETTER(region_bytes, self->heap->region_bytes)

static PyGetSetDef BestFit_getset[] = {
    {"capacity", (getter)BestFit_get_capacity, NULL, "Bytes managed.", NULL},
    {"alignment", (getter)BestFit_get_alignment, NULL, "Blocks start at multiples of this.", NULL},
    {"used", (getter)BestFit_get_used, NULL, "Bytes in live blocks, alignment padding included.",
     NULL},
    {"largest_free", (getter)BestFit_get_largest_free, NULL,
     "The size of the largest free block.  O(log n).", NULL},
    {"_region_bytes", (getter)BestFit_get_region_bytes, NULL,
     "Bytes of the engine's metadata region (for memory measurements).", NULL},
    {NULL},
};

static PyMethodDef BestFit_methods[] = {
    {"allocate", (PyCFunction)BestFit_allocate, METH_O,
     "Place a block of at least ``size`` bytes and return its offset.  O(log n)."},
    {"_take", (PyCFunction)BestFit_allocate, METH_O, "The primitive: ``allocate``."},
    {"release", (PyCFunction)BestFit_release, METH_O,
     "Free the block at ``offset``, merging it with free neighbours; return its size.  O(log n)."},
    {"_put", (PyCFunction)BestFit_release, METH_O, "The primitive: ``release``."},
    {"resize", (PyCFunction)(void (*)(void))BestFit_resize, METH_FASTCALL,
     "Change the live block at ``offset`` to hold ``size`` bytes without moving it.  O(log n)."},
    {"size_of", (PyCFunction)BestFit_size_of, METH_O,
     "The size of the live block at ``offset``.  O(1)."},
    {"blocks", (PyCFunction)BestFit_blocks, METH_NOARGS,
     "Every block in address order, live or free.  O(n)."},
    {"free_sizes", (PyCFunction)BestFit_free_sizes, METH_NOARGS,
     "The size of every free block, in address order.  O(n)."},
    {"_free_block_count", (PyCFunction)BestFit_free_block_count, METH_NOARGS, NULL},
    {"_is_free_start", (PyCFunction)BestFit_is_free_start, METH_O, NULL},
    {"_check_indexes", (PyCFunction)BestFit_check_indexes, METH_NOARGS,
     "The engine's own invariants (tree, links, start index, counts).  O(n)."},
    {NULL},
};

static PySequenceMethods BestFit_as_sequence = {
    .sq_length = (lenfunc)BestFit_len,
};

static PyTypeObject BestFitType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "slaballoc._core.BestFit",
    .tp_basicsize = sizeof(BestFitObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The C engine of slaballoc.policies.BestFit (completed in Python).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)BestFit_init,
    .tp_dealloc = (destructor)BestFit_dealloc,
    .tp_methods = BestFit_methods,
    .tp_getset = BestFit_getset,
    .tp_as_sequence = &BestFit_as_sequence,
};

/* -- the allocator's lock ------------------------------------------------------------- */

/* One lock per DynamicSlab, taken by its C operations and, as ``_lock``, by the
 * cold methods borrowed from the specification (``with self._lock:`` in
 * stats(), check(), blocks()...), so that those see no half-done operation of
 * another thread.  A thread waiting for it lets go of the GIL first, so the
 * holder can finish.  Not re-entrant, as threading.Lock. */
typedef struct {
    PyObject_HEAD
    PyThread_type_lock lock;
    char held;
} SlabLockObject;

static void
lock_take(SlabLockObject *self)
{
    if (!PyThread_acquire_lock(self->lock, NOWAIT_LOCK)) {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(self->lock, WAIT_LOCK);
        Py_END_ALLOW_THREADS
    }
    self->held = 1;
}

static void
lock_give(SlabLockObject *self)
{
    self->held = 0;
    PyThread_release_lock(self->lock);
}

static PyObject *
SlabLock_enter(SlabLockObject *self, PyObject *unused)
{
    lock_take(self);
    Py_RETURN_TRUE;
}

static PyObject *
SlabLock_exit(SlabLockObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!self->held) {
        PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
        return NULL;
    }
    lock_give(self);
    Py_RETURN_NONE;
}

static PyObject *
SlabLock_locked(SlabLockObject *self, PyObject *unused)
{
    return PyBool_FromLong(self->held);
}

static void
SlabLock_dealloc(SlabLockObject *self)
{
    if (self->lock != NULL) {
        PyThread_free_lock(self->lock);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef SlabLock_methods[] = {
    {"__enter__", (PyCFunction)SlabLock_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))SlabLock_exit, METH_FASTCALL, NULL},
    {"acquire", (PyCFunction)SlabLock_enter, METH_NOARGS, "Wait for the lock and take it."},
    {"release", (PyCFunction)(void (*)(void))SlabLock_exit, METH_FASTCALL, "Give it back."},
    {"locked", (PyCFunction)SlabLock_locked, METH_NOARGS, NULL},
    {NULL},
};

static PyTypeObject SlabLockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "slaballoc._core.AllocatorLock",
    .tp_basicsize = sizeof(SlabLockObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The lock of a C allocator, shared by its C operations and its Python methods.",
    .tp_dealloc = (destructor)SlabLock_dealloc,
    .tp_methods = SlabLock_methods,
};

static PyObject *
new_lock(void)
{
    SlabLockObject *lock = PyObject_New(SlabLockObject, &SlabLockType);
    if (lock == NULL) {
        return NULL;
    }
    lock->held = 0;
    lock->lock = PyThread_allocate_lock();
    if (lock->lock == NULL) {
        Py_DECREF(lock);
        return PyErr_NoMemory();
    }
    return (PyObject *)lock;
}

/* -- DynamicSlab ----------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    BestFitObject *policy;  /* the placement; its engine names every block by node */
    PyObject *memory;       /* the 1-D byte memoryview managed */
    PyObject **views;       /* node index -> the view handed out for that live block */
    uint32_t view_slots;    /* length of views */
    Py_ssize_t live;        /* views handed out and not freed */
    PyObject *retired;      /* fast mode: weak references to views freed or replaced */
    Py_ssize_t retired_limit;
    SlabLockObject *lock;   /* see the lock's type above */
    Py_ssize_t unmanaged;   /* bytes of memory past the policy's capacity */
    char fast, closed, thread_safe;
} DynamicSlabObject;

static PyTypeObject DynamicSlabType;

/* Grow `views` to cover every node the engine may name (call before changing state). */
static int
ensure_view_slots(DynamicSlabObject *self)
{
    uint32_t needed = self->policy->heap->node_slots;
    if (needed <= self->view_slots) {
        return 0;
    }
    PyObject **views = PyMem_Realloc(self->views, (size_t)needed * sizeof(PyObject *));
    if (views == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset(views + self->view_slots, 0, (size_t)(needed - self->view_slots) * sizeof(PyObject *));
    self->views = views;
    self->view_slots = needed;
    return 0;
}

static int
ensure_room_for_block(DynamicSlabObject *self)
{
    return ensure_room(self->policy) < 0 ? -1 : ensure_view_slots(self);
}

/* The node of `view` if it is a live block of this slab, else 0. */
static bf_idx
live_node(DynamicSlabObject *self, PyObject *view)
{
    if (self->closed || self->memory == NULL) {
        return 0;
    }
    Py_ssize_t offset = slab_view_offset(self->memory, view);
    if (offset < 0) {
        return 0;
    }
    bf_idx node = bf_find(self->policy->heap, (bf_off)offset);
    return (node != 0 && node < self->view_slots && self->views[node] == view) ? node : 0;
}

static bf_off
node_start(DynamicSlabObject *self, bf_idx node)
{
    return bf_node_at(self->policy->heap, node)->start;
}

/* A view of the whole memory, made before a state change so that the change
 * cannot be followed by a failure; narrowed to the block afterwards. */
static PyObject *
premade_view(DynamicSlabObject *self)
{
    return PyMemoryView_FromObject(self->memory);
}

/* Narrow a premade view to memory[offset:offset + size], as views.c's
 * slab_view_new does (same layout assumptions, tested there). */
static void
narrow_view(PyObject *view, bf_off offset, bf_off size)
{
    Py_buffer *buffer = PyMemoryView_GET_BUFFER(view);
    buffer->buf = (char *)buffer->buf + offset;
    buffer->len = (Py_ssize_t)size;
    buffer->shape[0] = (Py_ssize_t)size;
}

/* Raise self._in_use(offset, operation) after a release refused with BufferError
 * (any other error passes through).  offset < 0: a view that is no longer live. */
static PyObject *
raise_in_use(DynamicSlabObject *self, long long offset, const char *operation)
{
    if (!PyErr_ExceptionMatches(PyExc_BufferError)) {
        return NULL;
    }
    PyErr_Clear();
    PyObject *args = Py_BuildValue("(Ls)", offset, operation);
    if (args != NULL) {
        slab_raise_from_method((PyObject *)self, "_in_use", args);
        Py_DECREF(args);
    }
    return NULL;
}

/* The view a retired weak reference still names (new reference), or NULL if it
 * is gone.  PyWeakref_GetRef replaces the borrowed-reference call from 3.13. */
static PyObject *
retired_view(PyObject *reference)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *view = NULL;
    if (PyWeakref_GetRef(reference, &view) < 0) {
        PyErr_Clear();
        return NULL;
    }
    return view;
#else
    PyObject *view = PyWeakref_GetObject(reference);
    if (view == NULL) {
        PyErr_Clear();
        return NULL;
    }
    return view == Py_None ? NULL : Py_NewRef(view);
#endif
}

/* Fast mode: remember a view that is freed or replaced but not released, weakly,
 * so that close() can release the ones still referenced.  The dead references
 * are dropped when the list doubles: amortised O(1). */
static int
retire(DynamicSlabObject *self, PyObject *reference)
{
    if (PyList_Append(self->retired, reference) < 0) {
        return -1;
    }
    if (PyList_GET_SIZE(self->retired) <= self->retired_limit) {
        return 0;
    }
    PyObject *alive = PyList_New(0);
    if (alive == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(self->retired); i++) {
        PyObject *ref = PyList_GET_ITEM(self->retired, i);
        PyObject *view = retired_view(ref);
        int failed = view != NULL && PyList_Append(alive, ref) < 0;
        Py_XDECREF(view);
        if (failed) {
            Py_DECREF(alive);
            return -1;
        }
    }
    Py_SETREF(self->retired, alive);
    self->retired_limit = 2 * PyList_GET_SIZE(alive) + 64;
    return 0;
}

static int
DynamicSlab_traverse(DynamicSlabObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->policy);
    Py_VISIT(self->memory);
    Py_VISIT(self->retired);
    return 0;
}

static void
drop_views(DynamicSlabObject *self)
{
    for (uint32_t i = 0; i < self->view_slots; i++) {
        Py_CLEAR(self->views[i]);
    }
    self->live = 0;
}

static void
DynamicSlab_dealloc(DynamicSlabObject *self)
{
    PyObject_GC_UnTrack(self);
    drop_views(self);
    PyMem_Free(self->views);
    Py_CLEAR(self->policy);
    Py_CLEAR(self->memory);
    Py_CLEAR(self->retired);
    Py_CLEAR(self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
DynamicSlab_init(DynamicSlabObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"capacity", "alignment", "buffer", "fast", "thread_safe", NULL};
    PyObject *capacity = Py_None, *alignment = NULL, *buffer = Py_None, *fast = Py_False;
    PyObject *thread_safe = Py_True;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O$OOOO:DynamicSlab", keywords, &capacity,
                                     &alignment, &buffer, &fast, &thread_safe)) {
        return -1;
    }
    /* As the specification: open_memory(capacity, buffer, partial(_placement, alignment=...)). */
    PyObject *placement = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "_placement");
    PyObject *functools = placement ? PyImport_ImportModule("functools") : NULL;
    PyObject *partial = functools ? PyObject_GetAttrString(functools, "partial") : NULL;
    PyObject *partial_args = placement ? PyTuple_Pack(1, placement) : NULL;
    PyObject *partial_kwargs = PyDict_New();
    PyObject *alignment_value = alignment ? Py_NewRef(alignment) : PyLong_FromLong(8);
    PyObject *factory = NULL;
    if (partial && partial_args && partial_kwargs && alignment_value &&
        PyDict_SetItemString(partial_kwargs, "alignment", alignment_value) == 0) {
        factory = PyObject_Call(partial, partial_args, partial_kwargs);
    }
    Py_XDECREF(alignment_value);
    Py_XDECREF(placement);
    Py_XDECREF(functools);
    Py_XDECREF(partial);
    Py_XDECREF(partial_args);
    Py_XDECREF(partial_kwargs);
    if (factory == NULL) {
        return -1;
    }
    PyObject *memory_module = PyImport_ImportModule("slaballoc.memory");
    PyObject *opened = memory_module ? PyObject_CallMethod(memory_module, "open_memory", "OOO",
                                                           capacity, buffer, factory)
                                     : NULL;
    Py_XDECREF(memory_module);
    Py_DECREF(factory);
    if (opened == NULL) {
        return -1;
    }
    PyObject *memory, *policy;
    if (!PyArg_ParseTuple(opened, "OO", &memory, &policy)) {
        Py_DECREF(opened);
        return -1;
    }
    Py_INCREF(memory);
    Py_INCREF(policy);
    Py_DECREF(opened);
    int is_fast = -1, is_thread_safe = -1;
    if (!PyObject_TypeCheck(policy, &BestFitType) || !PyMemoryView_Check(memory)) {
        PyErr_SetString(PyExc_TypeError, "slaballoc: the C DynamicSlab needs the C BestFit");
    }
    else if ((is_fast = PyObject_IsTrue(fast)) >= 0) {
        is_thread_safe = PyObject_IsTrue(thread_safe);
    }
    PyObject *retired = is_thread_safe < 0 ? NULL : PyList_New(0);
    PyObject *lock = retired == NULL ? NULL : new_lock();
    if (lock == NULL) {
        Py_XDECREF(retired);
        Py_DECREF(policy);
        Py_DECREF(memory);
        return -1;
    }
    Py_XSETREF(self->lock, (SlabLockObject *)lock);
    drop_views(self);
    Py_XSETREF(self->policy, (BestFitObject *)policy);
    Py_XSETREF(self->memory, memory);
    Py_XSETREF(self->retired, retired);
    self->retired_limit = 64;
    self->unmanaged = PyMemoryView_GET_BUFFER(memory)->len - (Py_ssize_t)self->policy->heap->capacity;
    self->fast = (char)is_fast;
    self->thread_safe = (char)is_thread_safe;
    self->closed = 0;
    return ensure_view_slots(self);
}

static int
require_slab(DynamicSlabObject *self)
{
    if (self->policy == NULL || self->memory == NULL || self->retired == NULL ||
        self->lock == NULL) {
        PyErr_SetString(PyExc_ValueError, "DynamicSlab.__init__ was not called");
        return -1;
    }
    return 0;
}

/* A size given to alloc/realloc: a non-int is converted once, as the
 * specification does (as_integer), before anything else looks at it. */
static PyObject *
integer_size(PyObject *size_obj)
{
    if (PyLong_CheckExact(size_obj)) {
        return Py_NewRef(size_obj);
    }
    PyObject *sizes = PyImport_ImportModule("slaballoc.sizes");
    PyObject *number =
        sizes == NULL ? NULL : PyObject_CallMethod(sizes, "as_integer", "Os", size_obj, "size");
    Py_XDECREF(sizes);
    return number;
}

static PyObject *
slab_alloc(DynamicSlabObject *self, PyObject *size_obj)
{
    if (require_slab(self) < 0) {
        return NULL;
    }
    bf_off size, offset;
    bf_idx node;
    if (!PyLong_CheckExact(size_obj) || self->closed) {
        PyObject *number = integer_size(size_obj);
        if (number == NULL) {
            return NULL;
        }
        int failed = self->closed ? slab_raise_from_method((PyObject *)self, "_refuse_closed", NULL)
                                  : size_arg(self->policy, number, &size);
        Py_DECREF(number);
        if (failed < 0) {
            return NULL;
        }
    }
    else if (size_arg(self->policy, size_obj, &size) < 0) {
        return NULL;
    }
    PyObject *view = premade_view(self);
    if (view == NULL) {
        return NULL;
    }
    bf_status status = BF_NO_ROOM;
    SLAB_BEGIN(self)
    if (ensure_room_for_block(self) == 0) {
        status = bf_allocate(self->policy->heap, size, &offset, &node);
        if (status == BF_OK) {
            narrow_view(view, offset, size);
            Py_INCREF(view);
            self->views[node] = view;
            self->live++;
        }
    }
    SLAB_END()
    if (status == BF_OK) {
        return view;
    }
    Py_DECREF(view);
    if (status == BF_NO_MEMORY) {
        return raise_out_of_memory((PyObject *)self->policy, size);
    }
    return PyErr_Occurred() ? NULL : engine_status_error(status);
}

/* Forget the live block of `node` and give it back to the policy. */
static void
forget_block(DynamicSlabObject *self, bf_idx node)
{
    SLAB_BEGIN(self)
    self->views[node] = NULL;
    self->live--;
    bf_release_node(self->policy->heap, node);
    SLAB_END()
}

/* Free a live block whose node is known: in safe mode its view is released
 * first, and a refusal (an export) changes nothing. */
static int
free_node(DynamicSlabObject *self, bf_idx node, const char *operation)
{
    PyObject *view = self->views[node];
    PyObject *reference = NULL;
    if (!self->fast) {
        if (slab_view_release(view) < 0) {
            raise_in_use(self, (long long)node_start(self, node), operation);
            return -1;
        }
    }
    else if ((reference = PyWeakref_NewRef(view, NULL)) == NULL) {
        return -1;
    }
    forget_block(self, node);
    int result = reference == NULL ? 0 : retire(self, reference);
    Py_XDECREF(reference);
    Py_DECREF(view);
    return result;
}

static PyObject *
slab_free(DynamicSlabObject *self, PyObject *view)
{
    if (require_slab(self) < 0) {
        return NULL;
    }
    bf_idx node = live_node(self, view);
    if (node == 0) {
        return raise_not_live((PyObject *)self, view);
    }
    if (free_node(self, node, "free") < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
slab_offset_of(DynamicSlabObject *self, PyObject *view)
{
    if (require_slab(self) < 0) {
        return NULL;
    }
    bf_idx node = live_node(self, view);
    if (node == 0) {
        return raise_not_live((PyObject *)self, view);
    }
    return PyLong_FromUnsignedLongLong(node_start(self, node));
}

static PyObject *
slab_realloc(DynamicSlabObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "realloc() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (require_slab(self) < 0) {
        return NULL;
    }
    PyObject *old_view = args[0];
    bf_idx node = live_node(self, old_view);
    if (node == 0) {
        return raise_not_live((PyObject *)self, old_view);
    }
    bf_off size;
    PyObject *number = integer_size(args[1]);
    if (number == NULL) {
        return NULL;
    }
    int failed = size_arg(self->policy, number, &size);
    Py_DECREF(number);
    if (failed < 0) {
        return NULL;
    }
    PyObject *view = premade_view(self);
    PyObject *reference = NULL;
    if (view == NULL || (self->fast && (reference = PyWeakref_NewRef(old_view, NULL)) == NULL)) {
        Py_XDECREF(view);
        return NULL;
    }
    bf_heap *heap;
    bf_status status = BF_NO_ROOM;
    bf_off offset = 0, old_size = 0, new_offset = 0;
    bf_idx new_node = node;
    SLAB_BEGIN(self)
    if (ensure_room_for_block(self) == 0) {
        heap = self->policy->heap;
        offset = node_start(self, node);
        old_size = bf_node_at(heap, node)->size;
        new_offset = offset;
        status = bf_resize(heap, offset, size);
        if (status == BF_MOVE) {
            status = bf_allocate(heap, size, &new_offset, &new_node);
        }
    }
    SLAB_END()
    if (status != BF_OK) {
        Py_DECREF(view);
        Py_XDECREF(reference);
        if (status == BF_NO_MEMORY) {
            return raise_out_of_memory((PyObject *)self->policy, size);
        }
        return PyErr_Occurred() ? NULL : engine_status_error(status);
    }
    /* The old view goes (safe mode: released; if exported, undo and refuse). */
    if (!self->fast && slab_view_release(old_view) < 0) {
        SLAB_BEGIN(self)
        heap = self->policy->heap;
        if (new_node != node) {
            bf_release_node(heap, new_node);
        }
        else {
            bf_resize(heap, offset, old_size); /* always fits: that space is free */
        }
        SLAB_END()
        Py_DECREF(view);
        return raise_in_use(self, (long long)offset, "realloc");
    }
    SLAB_BEGIN(self)
    heap = self->policy->heap;
    if (new_node != node) {
        /* Moved to the best fit elsewhere: copy, then free the old block. */
        char *base = (char *)PyMemoryView_GET_BUFFER(self->memory)->buf;
        memcpy(base + new_offset, base + offset, old_size < size ? old_size : size);
        bf_release_node(heap, node);
        self->views[node] = NULL;
    }
    narrow_view(view, new_offset, size);
    Py_INCREF(view);
    self->views[new_node] = view;
    SLAB_END()
    int retired = reference == NULL ? 0 : retire(self, reference);
    Py_XDECREF(reference);
    Py_DECREF(old_view); /* the slab's reference, from views[] */
    if (retired < 0) {
        Py_DECREF(view);
        return NULL;
    }
    return view;
}

static PyObject *
slab_alloc_many(DynamicSlabObject *self, PyObject *sizes)
{
    if (require_slab(self) < 0) {
        return NULL;
    }
    /* The sizes first, before the lock: the iterable may be code that allocates too. */
    PyObject *wanted = PySequence_List(sizes);
    if (wanted == NULL) {
        return NULL;
    }
    PyObject *views = PyList_New(0);
    int locking = self->thread_safe && views != NULL;
    if (locking) {
        lock_take(self->lock);
    }
    for (Py_ssize_t i = 0; views != NULL && i < PyList_GET_SIZE(wanted); i++) {
        PyObject *view = slab_alloc(self, PyList_GET_ITEM(wanted, i));
        if (view == NULL || PyList_Append(views, view) < 0) {
            Py_XDECREF(view);
            break;
        }
        Py_DECREF(view);
    }
    if (views != NULL && PyErr_Occurred()) {
        /* All or none, whatever went wrong: give back what was taken
         * (coalescing restores the free blocks exactly), then re-raise. */
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(views); i++) {
            bf_idx node = live_node(self, PyList_GET_ITEM(views, i));
            if (node != 0 && free_node(self, node, "free") < 0) {
                PyErr_Clear();
            }
        }
        PyErr_Restore(type, value, traceback);
        Py_CLEAR(views);
    }
    if (locking) {
        lock_give(self->lock);
    }
    Py_DECREF(wanted);
    return views;
}

static PyObject *
slab_free_many(DynamicSlabObject *self, PyObject *views)
{
    if (require_slab(self) < 0) {
        return NULL;
    }
    PyObject *batch = PySequence_List(views);
    if (batch == NULL) {
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(batch);
    bf_idx *nodes = PyMem_New(bf_idx, count ? count : 1);
    if (nodes == NULL) {
        Py_DECREF(batch);
        return PyErr_NoMemory();
    }
    int locking = self->thread_safe;
    if (locking) {
        lock_take(self->lock);
    }
    /* Validate all first: each must be live and named once.  A block seen is
     * marked by pointing its slot at the batch (restored below), so a second
     * mention no longer matches. */
    Py_ssize_t valid = 0;
    for (; valid < count; valid++) {
        bf_idx node = live_node(self, PyList_GET_ITEM(batch, valid));
        if (node == 0) {
            break;
        }
        nodes[valid] = node;
        self->views[node] = batch;
    }
    for (Py_ssize_t i = 0; i < valid; i++) {
        self->views[nodes[i]] = PyList_GET_ITEM(batch, i);
    }
    PyObject *result = NULL;
    if (valid < count) {
        /* The specification says what is wrong (and changes nothing); it takes
         * the lock itself. */
        if (locking) {
            lock_give(self->lock);
            locking = 0;
        }
        PyObject *call_args = PyTuple_Pack(1, batch);
        if (call_args != NULL) {
            result = slab_spec_call((PyObject *)self, "free_many", call_args);
            Py_DECREF(call_args);
        }
    }
    else {
        Py_ssize_t released = 0;
        if (!self->fast) {
            /* Every view first: while one is exported, no block may go. */
            for (; released < count; released++) {
                if (slab_view_release(PyList_GET_ITEM(batch, released)) < 0) {
                    raise_in_use(self, (long long)node_start(self, nodes[released]), "free_many");
                    break;
                }
            }
        }
        if (self->fast || released == count) {
            result = Py_NewRef(Py_None);
            for (Py_ssize_t i = 0; i < count; i++) {
                if (free_node(self, nodes[i], "free_many") < 0) {
                    Py_CLEAR(result);
                    break;
                }
            }
        }
    }
    if (locking) {
        lock_give(self->lock);
    }
    PyMem_Free(nodes);
    Py_DECREF(batch);
    return result;
}

static PyObject *close_body(DynamicSlabObject *self);

static PyObject *
slab_close(DynamicSlabObject *self, PyObject *unused)
{
    if (require_slab(self) < 0) {
        return NULL;
    }
    if (!self->closed && slab_view_exports(self->memory) > 0) {
        /* The whole memory is exported: the specification refuses, changing
         * nothing (it takes the lock itself). */
        return slab_spec_call((PyObject *)self, "close", NULL);
    }
    lock_take(self->lock);
    PyObject *result = close_body(self);
    lock_give(self->lock);
    return result;
}

static PyObject *
close_body(DynamicSlabObject *self)
{
    if (self->closed) {
        Py_RETURN_NONE;
    }
    /* Every export first, so that a refusal changes nothing (the pure code
     * cannot see one without trying, and has released the views it met). */
    for (uint32_t i = 0; i < self->view_slots; i++) {
        if (self->views[i] != NULL && slab_view_exports(self->views[i]) > 0) {
            PyErr_SetNone(PyExc_BufferError);
            return raise_in_use(self, (long long)node_start(self, i), "close");
        }
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(self->retired); i++) {
        PyObject *view = retired_view(PyList_GET_ITEM(self->retired, i));
        int exported = view != NULL && slab_view_exports(view) > 0;
        Py_XDECREF(view);
        if (exported) {
            PyErr_SetNone(PyExc_BufferError);
            return raise_in_use(self, -1, "close");
        }
    }
    for (uint32_t i = 0; i < self->view_slots; i++) {
        if (self->views[i] != NULL && slab_view_release(self->views[i]) < 0) {
            return NULL;
        }
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(self->retired); i++) {
        PyObject *view = retired_view(PyList_GET_ITEM(self->retired, i));
        int failed = view != NULL && slab_view_release(view) < 0;
        Py_XDECREF(view);
        if (failed) {
            return NULL;
        }
    }
    if (slab_view_release(self->memory) < 0) {
        return NULL;
    }
    self->closed = 1;
    drop_views(self);
    if (PyList_SetSlice(self->retired, 0, PyList_GET_SIZE(self->retired), NULL) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* The public operations: the bodies above under the allocator's lock (unless
 * made with thread_safe=False), as the specification's public methods are. */
#define LOCKED(name, body, parameters, arguments)                                  \
    static PyObject *name parameters                                                \
    {                                                                               \
        if (require_slab(self) < 0) {                                               \
            return NULL;                                                            \
        }                                                                           \
        int locking = self->thread_safe;                                            \
        if (locking) {                                                              \
            lock_take(self->lock);                                                  \
        }                                                                           \
        PyObject *result = body arguments;                                          \
        if (locking) {                                                              \
            lock_give(self->lock);                                                  \
        }                                                                           \
        return result;                                                              \
    }

LOCKED(locked_alloc, slab_alloc, (DynamicSlabObject * self, PyObject *size), (self, size))
LOCKED(locked_free, slab_free, (DynamicSlabObject * self, PyObject *view), (self, view))
LOCKED(locked_offset_of, slab_offset_of, (DynamicSlabObject * self, PyObject *view), (self, view))
LOCKED(locked_realloc, slab_realloc,
       (DynamicSlabObject * self, PyObject *const *args, Py_ssize_t nargs), (self, args, nargs))

static Py_ssize_t
slab_len(DynamicSlabObject *self)
{
    return self->live;
}

/* The live table as the specification keeps it: id(view) -> (offset, view). */
static PyObject *
slab_get_live(DynamicSlabObject *self, void *closure)
{
    PyObject *live = PyDict_New();
    if (live == NULL || self->policy == NULL) {
        return live;
    }
    for (uint32_t i = 0; i < self->view_slots; i++) {
        PyObject *view = self->views[i];
        if (view == NULL) {
            continue;
        }
        PyObject *key = PyLong_FromVoidPtr(view);
        PyObject *entry = Py_BuildValue("(KO)", (unsigned long long)node_start(self, i), view);
        if (key == NULL || entry == NULL || PyDict_SetItem(live, key, entry) < 0) {
            Py_XDECREF(key);
            Py_XDECREF(entry);
            Py_DECREF(live);
            return NULL;
        }
        Py_DECREF(key);
        Py_DECREF(entry);
    }
    return live;
}

static PyObject *
slab_get_policy(DynamicSlabObject *self, void *closure)
{
    if (require_slab(self) < 0) {
        return NULL;
    }
    return Py_NewRef((PyObject *)self->policy);
}

static PyObject *
slab_get_memory(DynamicSlabObject *self, void *closure)
{
    if (require_slab(self) < 0) {
        return NULL;
    }
    return Py_NewRef(self->memory);
}

static PyObject *
slab_get_retired(DynamicSlabObject *self, void *closure)
{
    if (require_slab(self) < 0) {
        return NULL;
    }
    return Py_NewRef(self->retired);
}

static PyObject *
slab_get_lock(DynamicSlabObject *self, void *closure)
{
    if (require_slab(self) < 0) {
        return NULL;
    }
    return Py_NewRef((PyObject *)self->lock);
}

static PyObject *
slab_get_fast(DynamicSlabObject *self, void *closure)
{
    return PyBool_FromLong(self->fast);
}

static PyObject *
slab_get_closed(DynamicSlabObject *self, void *closure)
{
    return PyBool_FromLong(self->closed);
}

static PyObject *
slab_get_thread_safe(DynamicSlabObject *self, void *closure)
{
    return PyBool_FromLong(self->thread_safe);
}

static PyObject *
slab_get_unmanaged(DynamicSlabObject *self, void *closure)
{
    return PyLong_FromSsize_t(self->unmanaged);
}

static PyObject *
slab_get_view_slots_bytes(DynamicSlabObject *self, void *closure)
{
    return PyLong_FromSize_t((size_t)self->view_slots * sizeof(PyObject *));
}

static PyGetSetDef DynamicSlab_getset[] = {
    {"_policy", (getter)slab_get_policy, NULL, NULL, NULL},
    {"_heap", (getter)slab_get_policy, NULL, NULL, NULL},
    {"_memory", (getter)slab_get_memory, NULL, NULL, NULL},
    {"_fast", (getter)slab_get_fast, NULL, NULL, NULL},
    {"_closed", (getter)slab_get_closed, NULL, NULL, NULL},
    {"_live", (getter)slab_get_live, NULL, "id(view) -> (offset, view), built on demand.", NULL},
    {"_retired", (getter)slab_get_retired, NULL, NULL, NULL},
    {"_lock", (getter)slab_get_lock, NULL, NULL, NULL},
    {"_unmanaged", (getter)slab_get_unmanaged, NULL, NULL, NULL},
    {"thread_safe", (getter)slab_get_thread_safe, NULL,
     "False if made with thread_safe=False (the C paths are atomic either way).", NULL},
    {"_view_table_bytes", (getter)slab_get_view_slots_bytes, NULL,
     "Bytes of the node -> view table (for memory measurements).", NULL},
    {NULL},
};

static PyMethodDef DynamicSlab_methods[] = {
    {"alloc", (PyCFunction)locked_alloc, METH_O,
     "Return a writable memoryview of exactly ``size`` bytes.  O(log n)."},
    {"_alloc", (PyCFunction)slab_alloc, METH_O, NULL},
    {"free", (PyCFunction)locked_free, METH_O, "Give back a block that ``alloc`` returned."},
    {"_free", (PyCFunction)slab_free, METH_O, NULL},
    {"realloc", (PyCFunction)(void (*)(void))locked_realloc, METH_FASTCALL,
     "Resize a live block, keeping its contents; return the view to use from now on."},
    {"_realloc", (PyCFunction)(void (*)(void))slab_realloc, METH_FASTCALL, NULL},
    {"alloc_many", (PyCFunction)slab_alloc_many, METH_O,
     "Allocate a block of each size: all of them, or (if one fails) none."},
    {"free_many", (PyCFunction)slab_free_many, METH_O,
     "Free several blocks: all of them, or (if any is not live) none of them."},
    {"offset_of", (PyCFunction)locked_offset_of, METH_O, "The offset of a live block.  O(1)."},
    {"close", (PyCFunction)slab_close, METH_NOARGS,
     "Release every view this allocator made, then its hold on the memory."},
    {NULL},
};

static PySequenceMethods DynamicSlab_as_sequence = {
    .sq_length = (lenfunc)slab_len,
};

static PyTypeObject DynamicSlabType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "slaballoc._core.DynamicSlab",
    .tp_basicsize = sizeof(DynamicSlabObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C hot paths of slaballoc.DynamicSlab (completed in Python).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)DynamicSlab_init,
    .tp_dealloc = (destructor)DynamicSlab_dealloc,
    .tp_traverse = (traverseproc)DynamicSlab_traverse,
    .tp_methods = DynamicSlab_methods,
    .tp_getset = DynamicSlab_getset,
    .tp_as_sequence = &DynamicSlab_as_sequence,
};

int
_slaballoc_add_best_fit(PyObject *module)
{
    if (PyType_Ready(&BestFitType) < 0 || PyType_Ready(&DynamicSlabType) < 0 ||
        PyType_Ready(&SlabLockType) < 0) {
        return -1;
    }
    Py_INCREF(&BestFitType);
    if (PyModule_AddObject(module, "BestFit", (PyObject *)&BestFitType) < 0) {
        Py_DECREF(&BestFitType);
        return -1;
    }
    Py_INCREF(&DynamicSlabType);
    if (PyModule_AddObject(module, "DynamicSlab", (PyObject *)&DynamicSlabType) < 0) {
        Py_DECREF(&DynamicSlabType);
        return -1;
    }
    return 0;
}
