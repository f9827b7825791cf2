/* errors.c: errors and size checks, delegated to the Python specification.
 *
 * Every message slaballoc shows is written once, in Python.  The C code asks
 * the same Python method or function that the pure implementation calls for
 * the exception to raise; this only ever happens on a cold path, before any
 * state has changed.
 */
#include "core.h"

static int raise_result(PyObject *result)
{
    if (result == NULL) {
        return -1; /* the Python side raised: keep its error */
    }
    if (PyExceptionInstance_Check(result)) {
        PyErr_SetObject((PyObject *)Py_TYPE(result), result);
    }
    else {
        PyErr_Format(PyExc_SystemError, "slaballoc: expected an exception, got %.100s",
                     Py_TYPE(result)->tp_name);
    }
    Py_DECREF(result);
    return -1;
}

PyObject *slab_call_method(PyObject *self, const char *method, PyObject *args)
{
    PyObject *callable = PyObject_GetAttrString(self, method);
    if (callable == NULL) {
        return NULL;
    }
    PyObject *result = args == NULL ? PyObject_CallNoArgs(callable) : PyObject_Call(callable, args, NULL);
    Py_DECREF(callable);
    return result;
}

int slab_raise_from_method(PyObject *self, const char *method, PyObject *args)
{
    return raise_result(slab_call_method(self, method, args));
}

PyObject *slab_spec_call(PyObject *self, const char *name, PyObject *args)
{
    PyObject *specification = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "_specification");
    if (specification == NULL) {
        return NULL;
    }
    PyObject *function = PyObject_GetAttrString(specification, name);
    Py_DECREF(specification);
    if (function == NULL) {
        return NULL;
    }
    Py_ssize_t count = args == NULL ? 0 : PyTuple_GET_SIZE(args);
    PyObject *stack[8];
    if (count > 7) {
        Py_DECREF(function);
        PyErr_SetString(PyExc_SystemError, "slaballoc: too many arguments for the specification");
        return NULL;
    }
    stack[0] = self;
    for (Py_ssize_t i = 0; i < count; i++) {
        stack[i + 1] = PyTuple_GET_ITEM(args, i);
    }
    PyObject *result = PyObject_Vectorcall(function, stack, (size_t)count + 1, NULL);
    Py_DECREF(function);
    return result;
}

int slab_spec_raise(PyObject *self, const char *name, PyObject *args)
{
    PyObject *result = slab_spec_call(self, name, args);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    PyErr_Format(PyExc_SystemError,
                 "slaballoc: the C core refused %s() but the Python specification accepts it", name);
    return -1;
}

static PyObject *call_function(const char *module, const char *function, PyObject *args,
                               PyObject *kwargs)
{
    PyObject *mod = PyImport_ImportModule(module);
    if (mod == NULL) {
        return NULL;
    }
    PyObject *callable = PyObject_GetAttrString(mod, function);
    Py_DECREF(mod);
    if (callable == NULL) {
        return NULL;
    }
    PyObject *result = PyObject_Call(callable, args, kwargs);
    Py_DECREF(callable);
    return result;
}

int slab_raise_from_function(const char *module, const char *function, PyObject *args)
{
    return raise_result(call_function(module, function, args, NULL));
}

int slab_require_count(PyObject *value, const char *what, Py_ssize_t minimum, Py_ssize_t *out)
{
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow == 0 && number >= minimum && number <= PY_SSIZE_T_MAX) {
            *out = (Py_ssize_t)number;
            return 0;
        }
    }
    /* Anything else: the specification raises the typed error, or returns the int. */
    PyObject *args = Py_BuildValue("(Os)", value, what);
    PyObject *kwargs = Py_BuildValue("{sn}", "minimum", minimum);
    PyObject *number = NULL;
    if (args != NULL && kwargs != NULL) {
        number = call_function("slaballoc.sizes", "require_count", args, kwargs);
    }
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    if (number == NULL) {
        return -1;
    }
    int overflow = 0;
    long long result = PyLong_AsLongLongAndOverflow(number, &overflow);
    Py_DECREF(number);
    if (result == -1 && PyErr_Occurred()) {
        return -1;
    }
    *out = (overflow > 0 || result > PY_SSIZE_T_MAX) ? PY_SSIZE_T_MAX : (Py_ssize_t)result;
    return 0;
}
