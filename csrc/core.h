/* core.h: what every source file of slaballoc._core shares.
 *
 * The C core accelerates the pure-Python modules, which stay the specification
 * (the heapq/_heapq pattern).  Each source file defines its types and adds
 * them to the module through one registration hook, listed at the bottom of
 * this header and called by module.c.
 *
 * Rules every file follows (see notes/CCORE_API.md):
 *  - engine state lives in flat arrays addressed by offsets or indices, never
 *    by pointers, so that it can later live in a shared-memory segment;
 *    Python objects (the views handed out) are kept apart from it;
 *  - every offset that comes from a user is bounds-checked before use;
 *  - errors are built by the Python specification (slab_raise_*), on the
 *    cold path, before any state changes: no message text in C;
 *  - an update never calls back into Python half-way (the GIL is held
 *    throughout; on the free-threaded build SLAB_BEGIN/SLAB_END take the
 *    object's critical section).
 */
#ifndef SLABALLOC_CORE_H
#define SLABALLOC_CORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* -- atomicity ------------------------------------------------------------- */
#ifdef Py_GIL_DISABLED
#define SLAB_BEGIN(obj) Py_BEGIN_CRITICAL_SECTION(obj)
#define SLAB_END() Py_END_CRITICAL_SECTION()
/* An allocator and its policy object, both changed by one operation. */
#define SLAB_BEGIN2(a, b) Py_BEGIN_CRITICAL_SECTION2(a, b)
#define SLAB_END2() Py_END_CRITICAL_SECTION2()
#else
/* With the GIL, code that does not call into Python is atomic already. */
#define SLAB_BEGIN(obj) {
#define SLAB_END() }
#define SLAB_BEGIN2(a, b) {
#define SLAB_END2() }
#endif

/* -- errors: the Python specification builds them --------------------------- */

/* Call self.<method>(*args) (args may be NULL), which returns an exception
 * instance (or raises one itself); set it as the current error.  Always
 * returns -1 so that callers can write `return slab_raise_from_method(...)`. */
int slab_raise_from_method(PyObject *self, const char *method, PyObject *args);

/* The same with a module-level function: slaballoc.<module>.<function>(*args). */
int slab_raise_from_function(const char *module, const char *function, PyObject *args);

/* Call self.<method>(*args) for its result (cold paths: reprs, stats...). */
PyObject *slab_call_method(PyObject *self, const char *method, PyObject *args);

/* Call the specification's method `name` (the pure-Python class's function,
 * found as type(self)._specification.<name>) on self: used for every case
 * off the hot path (bad input, closed allocator), which the specification
 * then handles exactly as it does in pure Python, before any state changes.
 * `args` excludes self and may be NULL.  New reference or NULL. */
PyObject *slab_spec_call(PyObject *self, const char *name, PyObject *args);

/* The same, for a case the C code has found invalid: the specification must
 * raise.  Always returns -1 (SystemError if it did not raise: the two
 * implementations disagree). */
int slab_spec_raise(PyObject *self, const char *name, PyObject *args);

/* -- sizes ----------------------------------------------------------------- */

/* Validate a size or count the way slaballoc.sizes.require_count does (an
 * exact int >= minimum is checked here; anything else goes through the Python
 * function, which raises the typed error or returns the int).  Stores the
 * value in *out and returns 0; returns -1 with an error set.  A valid int too
 * large for Py_ssize_t is returned as PY_SSIZE_T_MAX (it can never fit in a
 * buffer, so callers treat it as "too large"). */
int slab_require_count(PyObject *value, const char *what, Py_ssize_t minimum,
                       Py_ssize_t *out);

/* -- views ------------------------------------------------------------------ */

/* Look up what the view helpers need; called once by module.c. */
int slab_views_init(void);

/* A new writable memoryview of memory[offset:offset + size].  `memory` must
 * be a one-dimensional unsigned-byte memoryview (what open_memory returns)
 * and the range inside it: callers check.  New reference, or NULL. */
PyObject *slab_view_new(PyObject *memory, Py_ssize_t offset, Py_ssize_t size);

/* Where `obj` starts inside `memory`, if it is a memoryview whose first byte
 * lies in memory's bytes; -1 otherwise (no error set).  Only pointer
 * arithmetic: callers must still confirm the view is one they handed out
 * (identity against their live table). */
Py_ssize_t slab_view_offset(PyObject *memory, PyObject *obj);

/* True if the view was released (by its user or by us). */
int slab_view_released(PyObject *view);

/* Number of buffer exports of the view (recv_into, PickleBuffer, numpy...):
 * a view with exports cannot be released, so its block cannot be freed. */
Py_ssize_t slab_view_exports(PyObject *view);

/* view.release(); 0 or -1 with an error set (BufferError if exported). */
int slab_view_release(PyObject *view);

/* -- registration hooks: one per source file ------------------------------- */
/* Each adds its types to the module; 0 or -1.  module.c calls every hook
 * that is linked in (weak symbols: a file that is not there yet is skipped). */
int _slaballoc_add_slots(PyObject *module);
int _slaballoc_add_best_fit(PyObject *module) __attribute__((weak));
int _slaballoc_add_shared_heap(PyObject *module) __attribute__((weak));
int _slaballoc_add_slab_cache(PyObject *module) __attribute__((weak));

#endif
