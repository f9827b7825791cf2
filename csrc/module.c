/* module.c: the module object of slaballoc._core and the list of its parts.
 *
 * Nothing here knows an allocator: each source file registers its own types
 * through its hook (declared in core.h).  The Python side checks ABI before
 * using the module, so that a stale build is ignored instead of misused.
 */
#include "core.h"

/* Bumped whenever the Python side and the C side must change together. */
#define SLABALLOC_CORE_ABI 1

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "slaballoc._core",
    .m_doc = "The C accelerator of slaballoc: the hot paths of the allocators and policies.\n"
             "The pure-Python modules are the specification; see slaballoc.IMPLEMENTATION.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__core(void)
{
    PyObject *module = PyModule_Create(&core_module);
    if (module == NULL) {
        return NULL;
    }
#ifdef Py_GIL_DISABLED
    /* Every update takes the object's critical section (SLAB_BEGIN). */
    PyUnstable_Module_SetGIL(module, Py_MOD_GIL_NOT_USED);
#endif
    if (PyModule_AddIntConstant(module, "ABI", SLABALLOC_CORE_ABI) < 0 || slab_views_init() < 0 ||
        _slaballoc_add_slots(module) < 0 ||
        (_slaballoc_add_best_fit != NULL && _slaballoc_add_best_fit(module) < 0) ||
        (_slaballoc_add_shared_heap != NULL && _slaballoc_add_shared_heap(module) < 0) ||
        (_slaballoc_add_slab_cache != NULL && _slaballoc_add_slab_cache(module) < 0)) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
