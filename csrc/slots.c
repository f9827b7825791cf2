/* slots.c: the fixed-size slot policies (LinearSearch, FreeList) and the
 * slab over them (the base of LinearSlab and FreeListSlab).
 *
 * Specification: slaballoc/policies/slots.py, linear_search.py, free_list.py,
 * slaballoc/slabs.py and allocator.py.  The public classes are built from these
 * base types by slaballoc._accelerate.accelerated(), which adds the pure
 * classes' cold methods; every case off the hot path is handed to the
 * specification (slab_spec_call / slab_spec_raise) before anything changes.
 *
 * Policy state, flat and pointer-free (it could live in shared memory):
 *   LinearSearch: used[slot_count]   1 = live; _take() hands out the lowest 0.
 *   FreeList:     stack[slot_count]  the free slots' numbers (32 bits: 8 bytes
 *                                    less per slot than offsets), the next one
 *                                    last; stack_len of them are valid.
 *   both:         handed_out        a bitmap: bit `slot` set if live through
 *                                    allocate() (the checked API), as the
 *                                    _handed_out flag bytes in Python.
 *   invariant:    live + free slots == slot_count; live == number of used
 *                 flags (LinearSearch) == slot_count - stack_len (FreeList).
 *
 * Slab state (per process, Python objects, apart from the policy's):
 *   views[slot]   safe mode: the live view of that slot, or NULL;
 *                 fast mode: the cached view of that slot, or NULL.
 *   live          a bitmap: bit `slot` set if the slab handed the slot out.
 *                 free_many clears the bits of a batch while it validates it
 *                 (so a view given twice is seen) and restores them if the
 *                 batch is refused.
 */
#include "core.h"

#include <string.h>

#include "structmember.h"

enum { KIND_LINEAR, KIND_FREE_LIST };

typedef struct {
    PyObject_HEAD
    int kind;
    int ready; /* __init__ ran */
    Py_ssize_t slot_size;
    Py_ssize_t slot_count;
    Py_ssize_t capacity;
    Py_ssize_t live;
    uint8_t *used;
    uint32_t *stack;
    Py_ssize_t stack_len;
    uint64_t *handed_out;
    /* Counts every change: making a view can run the garbage collector, whose
     * finalizers may call back into the allocator; an operation that made views
     * before committing checks this did not move meanwhile (else it starts over). */
    uint64_t changes;
} SlotsObject;

static PyTypeObject LinearSearchType;
static PyTypeObject FreeListType;

/* -- the policy's engine (no Python calls, no failure) ---------------------- */

static int bit_test(const uint64_t *bits, Py_ssize_t i)
{
    return (int)(bits[i >> 6] >> (i & 63) & 1);
}

static void bit_set(uint64_t *bits, Py_ssize_t i)
{
    bits[i >> 6] |= UINT64_C(1) << (i & 63);
}

static void bit_clear(uint64_t *bits, Py_ssize_t i)
{
    bits[i >> 6] &= ~(UINT64_C(1) << (i & 63));
}

/* The lowest free slot at or after `from`, or -1 (LinearSearch). */
static Py_ssize_t linear_free_from(const SlotsObject *s, Py_ssize_t from)
{
    if (from >= s->slot_count) {
        return -1;
    }
    const uint8_t *hit = memchr(s->used + from, 0, (size_t)(s->slot_count - from));
    return hit == NULL ? -1 : hit - s->used;
}

/* The slot _take() would hand out next, or -1 when every slot is live. */
static Py_ssize_t slots_next(const SlotsObject *s)
{
    if (s->kind == KIND_FREE_LIST) {
        return s->stack_len ? (Py_ssize_t)s->stack[s->stack_len - 1] : -1;
    }
    return linear_free_from(s, 0);
}

/* Hand out `slot`, which slots_next() (or, in a batch, the walk after it) chose. */
static void slots_take(SlotsObject *s, Py_ssize_t slot)
{
    if (s->kind == KIND_FREE_LIST) {
        s->stack_len--;
    }
    else {
        s->used[slot] = 1;
    }
    s->live++;
    s->changes++;
}

/* True if `slot` can be put back without breaking the arrays' bounds. */
static int slots_can_put(const SlotsObject *s, Py_ssize_t slot)
{
    if (s->kind == KIND_FREE_LIST) {
        return s->stack_len < s->slot_count;
    }
    return s->used[slot] == 1;
}

static void slots_put(SlotsObject *s, Py_ssize_t slot)
{
    if (s->kind == KIND_FREE_LIST) {
        s->stack[s->stack_len++] = (uint32_t)slot;
    }
    else {
        s->used[slot] = 0;
    }
    s->live--;
    s->changes++;
}

/* The slot that starts at `offset`, if `offset` is an exact int naming one; else -1. */
static Py_ssize_t slots_slot_at(const SlotsObject *s, PyObject *offset)
{
    if (!PyLong_CheckExact(offset)) {
        return -1;
    }
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(offset, &overflow);
    if (overflow || value < 0 || value >= s->capacity || value % s->slot_size) {
        return -1;
    }
    return (Py_ssize_t)(value / s->slot_size);
}

/* -- the policy as a Python object ------------------------------------------ */

static void slots_free_arrays(SlotsObject *s)
{
    PyMem_Free(s->used);
    PyMem_Free(s->stack);
    PyMem_Free(s->handed_out);
    s->used = NULL;
    s->stack = NULL;
    s->handed_out = NULL;
    s->ready = 0;
}

static int slots_init(SlotsObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"capacity", "slot_size", NULL};
    PyObject *capacity_arg, *slot_size_arg = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O", keywords, &capacity_arg,
                                     &slot_size_arg)) {
        return -1;
    }
    Py_ssize_t capacity, slot_size = 64;
    if (slab_require_count(capacity_arg, "capacity", 0, &capacity) < 0 ||
        (slot_size_arg != NULL && slab_require_count(slot_size_arg, "slot_size", 1, &slot_size) < 0)) {
        return -1;
    }
    Py_ssize_t count = capacity / slot_size;
    if (count == 0) {
        /* A policy that can hold nothing: the specification refuses it, with its reason. */
        PyObject *specification = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "_specification");
        PyObject *refused = specification == NULL ? NULL : PyObject_Call(specification, args, kwargs);
        Py_XDECREF(specification);
        if (refused != NULL) {
            Py_DECREF(refused);
            PyErr_SetString(PyExc_SystemError,
                            "slaballoc: the C core refused a policy the specification accepts");
        }
        return -1;
    }
    uint64_t *handed_out = PyMem_Calloc((size_t)count / 64 + 1, sizeof(uint64_t));
    uint8_t *used = NULL;
    uint32_t *stack = NULL;
    if (count > (Py_ssize_t)UINT32_MAX) {
        PyMem_Free(handed_out); /* more slots than 32-bit slot numbers can name */
        handed_out = NULL;
    }
    else if (PyObject_TypeCheck(self, &FreeListType)) {
        stack = PyMem_Calloc((size_t)count + 1, sizeof(uint32_t));
    }
    else {
        used = PyMem_Calloc((size_t)count + 1, 1);
    }
    if (handed_out == NULL || (stack == NULL && used == NULL)) {
        PyMem_Free(handed_out);
        PyMem_Free(stack);
        PyMem_Free(used);
        PyErr_NoMemory();
        return -1;
    }
    slots_free_arrays(self);
    self->kind = stack != NULL ? KIND_FREE_LIST : KIND_LINEAR;
    self->slot_size = slot_size;
    self->slot_count = count;
    self->capacity = count * slot_size;
    self->live = 0;
    self->handed_out = handed_out;
    self->used = used;
    self->stack = stack;
    /* Offsets highest first, so that a new slab hands out offset 0 first, as the seed does. */
    for (Py_ssize_t i = 0; stack != NULL && i < count; i++) {
        stack[i] = (uint32_t)(count - 1 - i);
    }
    self->stack_len = stack != NULL ? count : 0;
    self->ready = 1;
    return 0;
}

static void slots_dealloc(SlotsObject *self)
{
    slots_free_arrays(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int slots_require_ready(SlotsObject *self)
{
    if (!self->ready) {
        PyErr_Format(PyExc_TypeError, "%.100s.__init__() was not called", Py_TYPE(self)->tp_name);
        return -1;
    }
    return 0;
}

/* Refuse `arg` through the specification's method `name`, which raises the
 * typed error (its text is defined once, in Python).  Always returns -1. */
static int spec_raise1(PyObject *self, const char *name, PyObject *arg)
{
    PyObject *args = PyTuple_Pack(1, arg);
    if (args == NULL) {
        return -1;
    }
    slab_spec_raise(self, name, args);
    Py_DECREF(args);
    return -1;
}

/* _take and allocate: the next free slot's offset; allocate also marks the
 * slot handed out.  The int is made before the slot is taken, so that a
 * MemoryError there changes nothing. */
static PyObject *slots_hand_out(SlotsObject *self, int mark_handed_out)
{
    if (slots_require_ready(self) < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    SLAB_BEGIN(self);
    Py_ssize_t slot = slots_next(self);
    if (slot >= 0 && (result = PyLong_FromSsize_t(slot * self->slot_size)) != NULL) {
        slots_take(self, slot);
        if (mark_handed_out) {
            bit_set(self->handed_out, slot);
        }
    }
    SLAB_END();
    if (result == NULL && !PyErr_Occurred()) {
        slab_raise_from_method((PyObject *)self, "out_of_memory", NULL);
    }
    return result;
}

/* _put and release: take back the slot at `offset`; release also requires
 * (and clears) the handed-out mark.  Unchecked in Python, _put is checked
 * here: a bad offset would write out of bounds.  Returns 0, or -1 with the
 * specification's error (`name` is the method that raises it) set. */
static int slots_take_back(SlotsObject *self, PyObject *offset, int handed_out_only,
                           const char *name)
{
    if (slots_require_ready(self) < 0) {
        return -1;
    }
    int done = 0;
    SLAB_BEGIN(self);
    Py_ssize_t slot = slots_slot_at(self, offset);
    if (slot >= 0 && (!handed_out_only || bit_test(self->handed_out, slot)) &&
        slots_can_put(self, slot)) {
        if (handed_out_only) {
            bit_clear(self->handed_out, slot);
        }
        slots_put(self, slot);
        done = 1;
    }
    SLAB_END();
    if (!done) {
        if (!PyErr_Occurred()) {
            spec_raise1((PyObject *)self, name, offset);
        }
        return -1;
    }
    return 0;
}

static PyObject *slots_take_method(SlotsObject *self, PyObject *unused)
{
    return slots_hand_out(self, 0);
}

static PyObject *slots_put_method(SlotsObject *self, PyObject *offset)
{
    if (slots_take_back(self, offset, 0, "_slot_at") < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *slots_allocate(SlotsObject *self, PyObject *unused)
{
    return slots_hand_out(self, 1);
}

static PyObject *slots_release(SlotsObject *self, PyObject *offset)
{
    if (slots_take_back(self, offset, 1, "release") < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(self->slot_size);
}

static PyObject *slots_size_of(SlotsObject *self, PyObject *offset)
{
    if (slots_require_ready(self) < 0) {
        return NULL;
    }
    if (slots_slot_at(self, offset) < 0) {
        spec_raise1((PyObject *)self, "size_of", offset);
        return NULL;
    }
    return PyLong_FromSsize_t(self->slot_size);
}

static PyObject *slots_free_slots(SlotsObject *self, PyObject *unused)
{
    if (slots_require_ready(self) < 0) {
        return NULL;
    }
    PyObject *free = PySet_New(NULL);
    if (free == NULL) {
        return NULL;
    }
    /* Building the set calls no Python code (ints hash in C): the state cannot change meanwhile. */
    if (self->kind == KIND_FREE_LIST) {
        for (Py_ssize_t i = 0; i < self->stack_len; i++) {
            PyObject *offset = PyLong_FromSsize_t((Py_ssize_t)self->stack[i] * self->slot_size);
            if (offset == NULL || PySet_Add(free, offset) < 0) {
                Py_XDECREF(offset);
                Py_DECREF(free);
                return NULL;
            }
            Py_DECREF(offset);
        }
        if (PySet_GET_SIZE(free) != self->stack_len) {
            Py_DECREF(free);
            slab_spec_raise((PyObject *)self, "free_slots", NULL);
            return NULL;
        }
        return free;
    }
    for (Py_ssize_t slot = 0; slot < self->slot_count; slot++) {
        if (self->used[slot]) {
            continue;
        }
        PyObject *offset = PyLong_FromSsize_t(slot * self->slot_size);
        if (offset == NULL || PySet_Add(free, offset) < 0) {
            Py_XDECREF(offset);
            Py_DECREF(free);
            return NULL;
        }
        Py_DECREF(offset);
    }
    return free;
}

static Py_ssize_t slots_length(SlotsObject *self)
{
    return self->live;
}

static PyObject *slots_get_handed_out(SlotsObject *self, void *unused)
{
    Py_ssize_t count = self->handed_out ? self->slot_count : 0;
    PyObject *flags = PyBytes_FromStringAndSize(NULL, count);
    if (flags != NULL) {
        for (Py_ssize_t slot = 0; slot < count; slot++) {
            PyBytes_AS_STRING(flags)[slot] = (char)bit_test(self->handed_out, slot);
        }
    }
    return flags;
}

static PyMethodDef slots_methods[] = {
    {"_take", (PyCFunction)slots_take_method, METH_NOARGS,
     "Hand out a free slot's offset (the allocator's primitive)."},
    {"_put", (PyCFunction)slots_put_method, METH_O,
     "Take back a live slot (the allocator's primitive; bounds-checked in C)."},
    {"allocate", (PyCFunction)slots_allocate, METH_NOARGS, "See SlotPolicy.allocate."},
    {"release", (PyCFunction)slots_release, METH_O, "See SlotPolicy.release."},
    {"size_of", (PyCFunction)slots_size_of, METH_O, "See SlotPolicy.size_of."},
    {"free_slots", (PyCFunction)slots_free_slots, METH_NOARGS, "See SlotPolicy.free_slots."},
    {NULL},
};

static PyMemberDef slots_members[] = {
    {"slot_size", T_PYSSIZET, offsetof(SlotsObject, slot_size), READONLY, "Bytes in every slot."},
    {"slot_count", T_PYSSIZET, offsetof(SlotsObject, slot_count), READONLY, "Number of slots."},
    {"capacity", T_PYSSIZET, offsetof(SlotsObject, capacity), READONLY, "Bytes managed."},
    {NULL},
};

static PyObject *slots_get_stack(SlotsObject *self, void *unused)
{
    PyObject *stack = PyList_New(self->stack_len);
    for (Py_ssize_t i = 0; stack != NULL && i < self->stack_len; i++) {
        PyObject *offset = PyLong_FromSsize_t((Py_ssize_t)self->stack[i] * self->slot_size);
        if (offset == NULL) {
            Py_CLEAR(stack);
            break;
        }
        PyList_SET_ITEM(stack, i, offset);
    }
    return stack;
}

static PyGetSetDef slots_getset[] = {
    {"_stack", (getter)slots_get_stack, NULL, "FreeList: the free offsets, next last.", NULL},
    {"_handed_out", (getter)slots_get_handed_out, NULL, "Checked-API flags, one per slot.", NULL},
    {NULL},
};

static PySequenceMethods slots_as_sequence = {.sq_length = (lenfunc)slots_length};

#define SLOTS_TYPE(NAME, DOC)                                                                      \
    {                                                                                              \
        PyVarObject_HEAD_INIT(NULL, 0).tp_name = "slaballoc._core." NAME,                          \
        .tp_basicsize = sizeof(SlotsObject), .tp_dealloc = (destructor)slots_dealloc,              \
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, .tp_doc = DOC,                       \
        .tp_methods = slots_methods, .tp_members = slots_members, .tp_getset = slots_getset,       \
        .tp_as_sequence = &slots_as_sequence, .tp_init = (initproc)slots_init,                     \
        .tp_new = PyType_GenericNew,                                                               \
    }

static PyTypeObject LinearSearchType =
    SLOTS_TYPE("LinearSearch", "C base of slaballoc.policies.LinearSearch.");
static PyTypeObject FreeListType = SLOTS_TYPE("FreeList", "C base of slaballoc.policies.FreeList.");

/* -- the slab ---------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    SlotsObject *slots; /* the placement policy (owned) */
    PyObject *memory;   /* the managed memoryview (owned) */
    PyObject **views;   /* see the top of the file (owned references) */
    uint64_t *live;     /* bitmap */
    Py_ssize_t live_count;
    char fast;
    char closed;
    char thread_safe; /* recorded for the pure code; the C paths are atomic either way */
} SlabObject;

static int live_test(const SlabObject *self, Py_ssize_t slot)
{
    return bit_test(self->live, slot);
}

static void live_set(SlabObject *self, Py_ssize_t slot)
{
    bit_set(self->live, slot);
}

static void live_clear(SlabObject *self, Py_ssize_t slot)
{
    bit_clear(self->live, slot);
}

static int slab_require_ready(SlabObject *self)
{
    if (self->slots == NULL) {
        PyErr_Format(PyExc_TypeError, "%.100s.__init__() was not called", Py_TYPE(self)->tp_name);
        return -1;
    }
    return 0;
}

/* Drop every reference to a view (without releasing them) and the arrays. */
static void slab_clear(SlabObject *self)
{
    /* Detach everything first: a view's last reference can run Python code (a
     * weakref callback) that must find the slab empty, not half cleared. */
    PyObject **views = self->views;
    SlotsObject *slots = self->slots;
    PyObject *memory = self->memory;
    Py_ssize_t count = slots == NULL ? 0 : slots->slot_count;
    PyMem_Free(self->live);
    self->views = NULL;
    self->live = NULL;
    self->live_count = 0;
    self->slots = NULL;
    self->memory = NULL;
    for (Py_ssize_t slot = 0; views != NULL && slot < count; slot++) {
        Py_XDECREF(views[slot]);
    }
    PyMem_Free(views);
    Py_XDECREF((PyObject *)slots);
    Py_XDECREF(memory);
}

static int slab_init(SlabObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"capacity", "slot_size", "buffer", "fast", "thread_safe", NULL};
    PyObject *capacity = Py_None, *slot_size = NULL, *buffer = Py_None, *fast = Py_False;
    PyObject *thread_safe = Py_True;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O$OOOO", keywords, &capacity, &slot_size,
                                     &buffer, &fast, &thread_safe)) {
        return -1;
    }
    int is_fast = PyObject_IsTrue(fast);
    int is_thread_safe = is_fast < 0 ? -1 : PyObject_IsTrue(thread_safe);
    if (is_thread_safe < 0) {
        return -1;
    }
    /* The same call as _SlotAllocator.__init__: open_memory validates, wraps the
     * buffer, builds the policy, and lets go of the buffer if anything fails. */
    PyObject *opened = NULL, *factory = NULL, *memory = NULL, *slots = NULL;
    PyObject *memory_module = PyImport_ImportModule("slaballoc.memory");
    PyObject *functools = PyImport_ImportModule("functools");
    PyObject *placement = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "_placement");
    if (memory_module != NULL && functools != NULL && placement != NULL) {
        PyObject *partial = PyObject_GetAttrString(functools, "partial");
        PyObject *partial_args = PyTuple_Pack(1, placement);
        PyObject *partial_kwargs = Py_BuildValue("{sO}", "slot_size",
                                                 slot_size == NULL ? Py_None : slot_size);
        if (partial != NULL && partial_args != NULL && partial_kwargs != NULL) {
            if (slot_size == NULL) {
                PyDict_Clear(partial_kwargs); /* the policy's own default */
            }
            factory = PyObject_Call(partial, partial_args, partial_kwargs);
        }
        Py_XDECREF(partial);
        Py_XDECREF(partial_args);
        Py_XDECREF(partial_kwargs);
    }
    if (factory != NULL) {
        opened = PyObject_CallMethod(memory_module, "open_memory", "OOO", capacity, buffer, factory);
    }
    Py_XDECREF(memory_module);
    Py_XDECREF(functools);
    Py_XDECREF(placement);
    Py_XDECREF(factory);
    if (opened == NULL) {
        return -1;
    }
    if (!PyTuple_Check(opened) || PyTuple_GET_SIZE(opened) != 2) {
        Py_DECREF(opened);
        PyErr_SetString(PyExc_SystemError, "slaballoc: open_memory() must return (memory, policy)");
        return -1;
    }
    memory = Py_NewRef(PyTuple_GET_ITEM(opened, 0));
    slots = Py_NewRef(PyTuple_GET_ITEM(opened, 1));
    Py_DECREF(opened);
    if (!PyMemoryView_Check(memory) || PyMemoryView_GET_BUFFER(memory)->ndim != 1 ||
        PyMemoryView_GET_BUFFER(memory)->itemsize != 1) {
        PyErr_SetString(PyExc_SystemError, "slaballoc: open_memory() must return a flat byte view");
        goto fail;
    }
    if (!PyObject_TypeCheck(slots, &LinearSearchType) && !PyObject_TypeCheck(slots, &FreeListType)) {
        PyErr_SetString(PyExc_TypeError, "slaballoc: _placement must be a C slot policy");
        goto fail;
    }
    SlotsObject *policy = (SlotsObject *)slots;
    PyObject **views = PyMem_Calloc((size_t)policy->slot_count + 1, sizeof(PyObject *));
    uint64_t *live = PyMem_Calloc((size_t)policy->slot_count / 64 + 1, sizeof(uint64_t));
    if (views == NULL || live == NULL) {
        PyMem_Free(views);
        PyMem_Free(live);
        PyErr_NoMemory();
        goto fail;
    }
    slab_clear(self);
    self->slots = policy;
    self->memory = memory;
    self->views = views;
    self->live = live;
    self->fast = (char)is_fast;
    self->thread_safe = (char)is_thread_safe;
    self->closed = 0;
    return 0;
fail:
    if (PyMemoryView_Check(memory)) {
        /* Let go of the buffer (mmap/SharedMemory.close() refuse while a view exists). */
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        if (slab_view_release(memory) < 0) {
            PyErr_Clear();
        }
        PyErr_Restore(type, value, traceback); /* the first error is the one to report */
    }
    Py_DECREF(memory);
    Py_DECREF(slots);
    return -1;
}

static void slab_dealloc(SlabObject *self)
{
    PyObject_GC_UnTrack(self);
    slab_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A subclass with a __dict__ can make a cycle through the slab: let the collector see it. */
static int slab_traverse(SlabObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->slots);
    Py_VISIT(self->memory);
    for (Py_ssize_t slot = 0; self->views != NULL && slot < self->slots->slot_count; slot++) {
        Py_VISIT(self->views[slot]);
    }
    return 0;
}

static int slab_gc_clear(SlabObject *self)
{
    slab_clear(self);
    return 0;
}

/* The slot of `obj` if it is a view this slab handed out and has not taken back; else -1. */
static Py_ssize_t slab_live_slot(const SlabObject *self, PyObject *obj)
{
    Py_ssize_t offset = slab_view_offset(self->memory, obj);
    const SlotsObject *s = self->slots;
    if (offset < 0 || offset >= s->capacity || offset % s->slot_size) {
        return -1;
    }
    Py_ssize_t slot = offset / s->slot_size;
    return (live_test(self, slot) && self->views[slot] == obj) ? slot : -1;
}

/* A view to hand out for `slot` (new reference): safe mode makes one; fast
 * mode reuses the cached one unless its user released it. */
static PyObject *slab_view_for(SlabObject *self, Py_ssize_t slot)
{
    PyObject *cached = self->fast ? self->views[slot] : NULL;
    if (cached != NULL && !slab_view_released(cached)) {
        Py_INCREF(cached);
        return cached;
    }
    Py_ssize_t size = self->slots->slot_size;
    return slab_view_new(self->memory, slot * size, size);
}

/* Record `view` (a reference passes to the slab) as the live block of `slot`. */
static void slab_commit_alloc(SlabObject *self, Py_ssize_t slot, PyObject *view)
{
    slots_take(self->slots, slot);
    live_set(self, slot);
    self->live_count++;
    PyObject *old = self->views[slot];
    self->views[slot] = view;
    if (old != view) {
        Py_XDECREF(old); /* a released cached view: replaced */
    }
    else {
        Py_DECREF(old); /* the same cached view: keep one reference */
    }
}

/* True if nothing changed since `changes` was read (see SlotsObject.changes). */
static int slab_unchanged(const SlabObject *self, uint64_t changes)
{
    return self->slots->changes == changes && !self->closed;
}

static PyObject *slab_alloc(SlabObject *self, PyObject *unused)
{
    if (slab_require_ready(self) < 0) {
        return NULL;
    }
    for (;;) {
        if (self->closed) {
            slab_raise_from_method((PyObject *)self, "_refuse_closed", NULL);
            return NULL;
        }
        PyObject *view = NULL;
        int outcome = 0; /* 0 done (or error), 1 full, 2 changed meanwhile: again */
        SLAB_BEGIN2(self, self->slots);
        uint64_t changes = self->slots->changes;
        Py_ssize_t slot = slots_next(self->slots);
        if (slot < 0) {
            outcome = 1;
        }
        else if ((view = slab_view_for(self, slot)) != NULL) {
            if (slab_unchanged(self, changes)) {
                Py_INCREF(view); /* one for the caller, one for the slab */
                slab_commit_alloc(self, slot, view);
            }
            else {
                Py_CLEAR(view);
                outcome = 2;
            }
        }
        SLAB_END2();
        if (outcome == 1) {
            slab_raise_from_method((PyObject *)self->slots, "out_of_memory", NULL);
        }
        if (outcome != 2) {
            return view;
        }
    }
}

/* Free the block of live `slot` whose view is `view` (checks done). */
static PyObject *slab_commit_free(SlabObject *self, Py_ssize_t slot)
{
    PyObject *dropped = NULL;
    live_clear(self, slot);
    self->live_count--;
    slots_put(self->slots, slot);
    if (!self->fast) {
        dropped = self->views[slot];
        self->views[slot] = NULL;
    }
    return dropped; /* to be decref'd once the update is complete */
}

/* Raise what BlockAllocator._not_live(obj) explains. */
static int slab_raise_not_live(SlabObject *self, PyObject *obj)
{
    PyObject *args = PyTuple_Pack(1, obj);
    if (args == NULL) {
        return -1;
    }
    slab_raise_from_method((PyObject *)self, "_not_live", args);
    Py_DECREF(args);
    return -1;
}

/* Raise what BlockAllocator._in_use(offset, operation) explains. */
static int slab_raise_in_use(SlabObject *self, Py_ssize_t slot, const char *operation)
{
    PyObject *args = Py_BuildValue("(ns)", slot * self->slots->slot_size, operation);
    if (args == NULL) {
        return -1;
    }
    slab_raise_from_method((PyObject *)self, "_in_use", args);
    Py_DECREF(args);
    return -1;
}

static PyObject *slab_free(SlabObject *self, PyObject *view)
{
    if (slab_require_ready(self) < 0) {
        return NULL;
    }
    PyObject *dropped = NULL;
    int outcome = 0; /* 0 freed, 1 not live, 2 exported, 3 policy misused, -1 error */
    Py_ssize_t slot;
    SLAB_BEGIN2(self, self->slots);
    slot = self->closed ? -1 : slab_live_slot(self, view);
    if (slot < 0) {
        outcome = 1;
    }
    else if (!self->fast && slab_view_exports(view) > 0) {
        outcome = 2;
    }
    else if (!slots_can_put(self->slots, slot)) {
        outcome = 3;
    }
    else if (!self->fast && slab_view_release(view) < 0) {
        outcome = -1; /* nothing changed yet */
    }
    else {
        dropped = slab_commit_free(self, slot);
    }
    SLAB_END2();
    Py_XDECREF(dropped);
    if (outcome == 1) {
        slab_raise_not_live(self, view);
        return NULL;
    }
    if (outcome == 2) {
        slab_raise_in_use(self, slot, "free");
        return NULL;
    }
    if (outcome == 3) {
        /* The policy was misused through its primitives: check() says how. */
        slab_spec_raise((PyObject *)self, "check", NULL);
        return NULL;
    }
    if (outcome < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *slab_free_many(SlabObject *self, PyObject *iterable)
{
    if (slab_require_ready(self) < 0) {
        return NULL;
    }
    if (self->closed) {
        PyObject *args = PyTuple_Pack(1, iterable);
        PyObject *result = args == NULL ? NULL : slab_spec_call((PyObject *)self, "free_many", args);
        Py_XDECREF(args);
        return result;
    }
    PyObject *batch = PySequence_Fast(iterable, "free_many() needs an iterable of views");
    if (batch == NULL) {
        return NULL;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(batch);
    PyObject **items = PySequence_Fast_ITEMS(batch);
    Py_ssize_t marked = 0, exported = -1;
    int valid = 1;
    SLAB_BEGIN2(self, self->slots);
    /* As the specification: every view must be live (and given once) before any
     * export is looked at.  Each slot's live bit is cleared while validating, so
     * that a view given twice is not live the second time. */
    for (; valid && marked < count; marked++) {
        Py_ssize_t slot = slab_live_slot(self, items[marked]);
        if (slot < 0) {
            valid = 0;
            break;
        }
        live_clear(self, slot);
    }
    for (Py_ssize_t i = 0; valid && !self->fast && i < count; i++) {
        if (slab_view_exports(items[i]) > 0) {
            exported = slab_view_offset(self->memory, items[i]) / self->slots->slot_size;
            break;
        }
    }
    if (valid && self->slots->kind == KIND_FREE_LIST &&
        self->slots->stack_len + count > self->slots->slot_count) {
        valid = 0; /* the policy was misused through its primitives: let check() say how */
    }
    if (!valid || exported >= 0) {
        for (Py_ssize_t i = 0; i < marked; i++) {
            live_set(self, slab_view_offset(self->memory, items[i]) / self->slots->slot_size);
        }
    }
    else {
        for (Py_ssize_t i = 0; i < count; i++) {
            Py_ssize_t slot = slab_view_offset(self->memory, items[i]) / self->slots->slot_size;
            /* Releasing cannot fail (no view of the batch has exports) and runs no Python code. */
            if (!self->fast && slab_view_release(items[i]) < 0) {
                PyErr_Clear();
            }
            live_set(self, slot); /* back from the mark, to be freed as one block */
            /* The batch holds a reference to each view, so this one can go at once. */
            Py_XDECREF(slab_commit_free(self, slot));
        }
    }
    SLAB_END2();
    if (!valid) {
        /* The specification finds the first bad view and raises its own error. */
        spec_raise1((PyObject *)self, "free_many", batch);
        Py_DECREF(batch);
        return NULL;
    }
    if (exported >= 0) {
        slab_raise_in_use(self, exported, "free_many");
        Py_DECREF(batch);
        return NULL;
    }
    Py_DECREF(batch);
    Py_RETURN_NONE;
}

static PyObject *slab_alloc_many(SlabObject *self, PyObject *count_arg)
{
    if (slab_require_ready(self) < 0) {
        return NULL;
    }
    Py_ssize_t count;
    if (slab_require_count(count_arg, "count", 0, &count) < 0) {
        return NULL;
    }
    SlotsObject *s = self->slots;
    for (;;) {
        if (self->closed || count > s->slot_count - s->live) {
            /* Closed, or too few free slots: the specification says what happens. */
            PyObject *args = PyTuple_Pack(1, count_arg);
            PyObject *result =
                args == NULL ? NULL : slab_spec_call((PyObject *)self, "alloc_many", args);
            Py_XDECREF(args);
            return result;
        }
        PyObject *views = PyList_New(count);
        if (views == NULL) {
            return NULL;
        }
        int outcome = 0; /* 0 done, 1 failed, 2 changed meanwhile: again */
        SLAB_BEGIN2(self, self->slots);
        /* Make every view first (the one step that can fail), then commit them all. */
        uint64_t changes = s->changes;
        Py_ssize_t slot = -1;
        for (Py_ssize_t i = 0; i < count && outcome == 0; i++) {
            if (!slab_unchanged(self, changes)) {
                outcome = 2; /* the plan below would no longer hold */
                break;
            }
            slot = s->kind == KIND_FREE_LIST ? (Py_ssize_t)s->stack[s->stack_len - 1 - i]
                                             : linear_free_from(s, slot + 1);
            PyObject *view = slab_view_for(self, slot);
            if (view == NULL) {
                outcome = 1;
                break;
            }
            PyList_SET_ITEM(views, i, view);
        }
        if (outcome == 0 && !slab_unchanged(self, changes)) {
            outcome = 2;
        }
        for (Py_ssize_t i = 0; outcome == 0 && i < count; i++) {
            PyObject *view = PyList_GET_ITEM(views, i);
            Py_ssize_t at = slab_view_offset(self->memory, view) / s->slot_size;
            Py_INCREF(view);
            slab_commit_alloc(self, at, view);
        }
        SLAB_END2();
        if (outcome == 0) {
            return views;
        }
        Py_DECREF(views);
        if (outcome == 1) {
            return NULL;
        }
    }
}

static PyObject *slab_offset_of(SlabObject *self, PyObject *view)
{
    if (slab_require_ready(self) < 0) {
        return NULL;
    }
    Py_ssize_t slot = self->closed ? -1 : slab_live_slot(self, view);
    if (slot < 0) {
        slab_raise_not_live(self, view);
        return NULL;
    }
    return PyLong_FromSsize_t(slot * self->slots->slot_size);
}

static Py_ssize_t slab_length(SlabObject *self)
{
    return self->live_count;
}

/* A slot whose view is exported, or -1: a live block's first, as the specification
 * looks at live views before the cached views of freed slots (fast mode). */
static Py_ssize_t slab_first_exported(SlabObject *self, int live)
{
    for (Py_ssize_t slot = 0; slot < self->slots->slot_count; slot++) {
        if (self->views[slot] != NULL && live_test(self, slot) == live &&
            slab_view_exports(self->views[slot]) > 0) {
            return slot;
        }
    }
    return -1;
}

static PyObject *slab_close(SlabObject *self, PyObject *unused)
{
    if (slab_require_ready(self) < 0) {
        return NULL;
    }
    if (self->closed) {
        Py_RETURN_NONE;
    }
    if (slab_view_exports(self->memory) > 0) {
        /* The whole memory is exported: the specification refuses before changing anything. */
        slab_spec_raise((PyObject *)self, "close", NULL);
        return NULL;
    }
    Py_ssize_t exported = slab_first_exported(self, 1);
    if (exported >= 0 || slab_first_exported(self, 0) >= 0) {
        /* Unlike the specification, nothing was released yet: all or nothing.
         * (A freed slot's cached view is named as such: offset -1.) */
        PyObject *args = Py_BuildValue(
            "(ns)", exported < 0 ? (Py_ssize_t)-1 : exported * self->slots->slot_size, "close");
        if (args != NULL) {
            slab_raise_from_method((PyObject *)self, "_in_use", args);
            Py_DECREF(args);
        }
        return NULL;
    }
    for (Py_ssize_t slot = 0; slot < self->slots->slot_count; slot++) {
        if (self->views[slot] != NULL && slab_view_release(self->views[slot]) < 0) {
            return NULL; /* unreachable: no view is exported */
        }
    }
    if (slab_view_release(self->memory) < 0) {
        return NULL;
    }
    self->closed = 1;
    for (Py_ssize_t slot = 0; slot < self->slots->slot_count; slot++) {
        live_clear(self, slot);
        Py_CLEAR(self->views[slot]);
    }
    self->live_count = 0;
    Py_RETURN_NONE;
}

/* -- what the borrowed cold methods read, under the pure names -------------------- */

static PyObject *slab_get_policy(SlabObject *self, void *unused)
{
    if (slab_require_ready(self) < 0) {
        return NULL;
    }
    return Py_NewRef((PyObject *)self->slots);
}

static PyObject *slab_get_memory(SlabObject *self, void *unused)
{
    if (slab_require_ready(self) < 0) {
        return NULL;
    }
    return Py_NewRef(self->memory);
}

static PyObject *slab_get_fast(SlabObject *self, void *unused)
{
    return PyBool_FromLong(self->fast);
}

static PyObject *slab_get_closed(SlabObject *self, void *unused)
{
    return PyBool_FromLong(self->closed);
}

static PyObject *slab_get_thread_safe(SlabObject *self, void *unused)
{
    return PyBool_FromLong(self->thread_safe);
}

static PyObject *slab_get_unmanaged(SlabObject *self, void *unused)
{
    if (slab_require_ready(self) < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(PyMemoryView_GET_BUFFER(self->memory)->len - self->slots->capacity);
}

/* What the borrowed cold methods hold (`with self._lock:`): every C operation
 * is atomic by itself, so they need no lock against it. */
static PyObject *slab_get_lock(SlabObject *self, void *unused)
{
    PyObject *contextlib = PyImport_ImportModule("contextlib");
    if (contextlib == NULL) {
        return NULL;
    }
    PyObject *lock = PyObject_CallMethod(contextlib, "nullcontext", NULL);
    Py_DECREF(contextlib);
    return lock;
}

static PyObject *slab_get_slot_size(SlabObject *self, void *unused)
{
    if (slab_require_ready(self) < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(self->slots->slot_size);
}

/* id(view) -> (offset, view) for every live block, as BlockAllocator._live. */
static PyObject *slab_get_live(SlabObject *self, void *unused)
{
    if (slab_require_ready(self) < 0) {
        return NULL;
    }
    PyObject *live = PyDict_New();
    for (Py_ssize_t slot = 0; live != NULL && slot < self->slots->slot_count; slot++) {
        if (!live_test(self, slot)) {
            continue;
        }
        PyObject *key = PyLong_FromVoidPtr(self->views[slot]);
        PyObject *entry = Py_BuildValue("(nO)", slot * self->slots->slot_size, self->views[slot]);
        if (key == NULL || entry == NULL || PyDict_SetItem(live, key, entry) < 0) {
            Py_CLEAR(live);
        }
        Py_XDECREF(key);
        Py_XDECREF(entry);
    }
    return live;
}

/* offset -> view for every cached view (fast mode), as _SlotAllocator._cache. */
static PyObject *slab_get_cache(SlabObject *self, void *unused)
{
    if (slab_require_ready(self) < 0) {
        return NULL;
    }
    PyObject *cache = PyDict_New();
    for (Py_ssize_t slot = 0; cache != NULL && self->fast && slot < self->slots->slot_count; slot++) {
        if (self->views[slot] == NULL) {
            continue;
        }
        PyObject *key = PyLong_FromSsize_t(slot * self->slots->slot_size);
        if (key == NULL || PyDict_SetItem(cache, key, self->views[slot]) < 0) {
            Py_CLEAR(cache);
        }
        Py_XDECREF(key);
    }
    return cache;
}

/* The ids of the cached views, as _SlotAllocator._cached_ids. */
static PyObject *slab_get_cached_ids(SlabObject *self, void *unused)
{
    if (slab_require_ready(self) < 0) {
        return NULL;
    }
    PyObject *ids = PySet_New(NULL);
    for (Py_ssize_t slot = 0; ids != NULL && self->fast && slot < self->slots->slot_count; slot++) {
        if (self->views[slot] == NULL) {
            continue;
        }
        PyObject *key = PyLong_FromVoidPtr(self->views[slot]);
        if (key == NULL || PySet_Add(ids, key) < 0) {
            Py_CLEAR(ids);
        }
        Py_XDECREF(key);
    }
    return ids;
}

static PyMethodDef slab_methods[] = {
    {"alloc", (PyCFunction)slab_alloc, METH_NOARGS, "See _SlotAllocator.alloc."},
    {"alloc_many", (PyCFunction)slab_alloc_many, METH_O, "See _SlotAllocator.alloc_many."},
    {"free", (PyCFunction)slab_free, METH_O, "See BlockAllocator.free."},
    {"free_many", (PyCFunction)slab_free_many, METH_O, "See BlockAllocator.free_many."},
    {"offset_of", (PyCFunction)slab_offset_of, METH_O, "See BlockAllocator.offset_of."},
    {"close", (PyCFunction)slab_close, METH_NOARGS, "See BlockAllocator.close."},
    {NULL},
};

static PyGetSetDef slab_getset[] = {
    {"_policy", (getter)slab_get_policy, NULL, NULL, NULL},
    {"_slots", (getter)slab_get_policy, NULL, NULL, NULL},
    {"_memory", (getter)slab_get_memory, NULL, NULL, NULL},
    {"_fast", (getter)slab_get_fast, NULL, NULL, NULL},
    {"_closed", (getter)slab_get_closed, NULL, NULL, NULL},
    {"_slot_size", (getter)slab_get_slot_size, NULL, NULL, NULL},
    {"_unmanaged", (getter)slab_get_unmanaged, NULL, NULL, NULL},
    {"_lock", (getter)slab_get_lock, NULL, NULL, NULL},
    {"thread_safe", (getter)slab_get_thread_safe, NULL,
     "True unless made with thread_safe=False (the C operations are atomic either way).", NULL},
    {"_live", (getter)slab_get_live, NULL, NULL, NULL},
    {"_cache", (getter)slab_get_cache, NULL, NULL, NULL},
    {"_cached_ids", (getter)slab_get_cached_ids, NULL, NULL, NULL},
    {NULL},
};

static PySequenceMethods slab_as_sequence = {.sq_length = (lenfunc)slab_length};

static PyTypeObject SlotSlabType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "slaballoc._core.SlotSlab",
    .tp_basicsize = sizeof(SlabObject),
    .tp_dealloc = (destructor)slab_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)slab_traverse,
    .tp_clear = (inquiry)slab_gc_clear,
    .tp_free = PyObject_GC_Del,
    .tp_doc = "C base of slaballoc.LinearSlab and slaballoc.FreeListSlab.",
    .tp_methods = slab_methods,
    .tp_getset = slab_getset,
    .tp_as_sequence = &slab_as_sequence,
    .tp_init = (initproc)slab_init,
    .tp_new = PyType_GenericNew,
};

int _slaballoc_add_slots(PyObject *module)
{
    PyTypeObject *types[] = {&LinearSearchType, &FreeListType, &SlotSlabType};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (PyType_Ready(types[i]) < 0 || PyModule_AddObjectRef(module, types[i]->tp_name + 16,
                                                               (PyObject *)types[i]) < 0) {
            return -1;
        }
    }
    return 0;
}
