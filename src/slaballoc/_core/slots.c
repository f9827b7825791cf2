/* slots.c: the fixed-size slot policies and slabs (LinearSearch, FreeList,
 * LinearSlab, FreeListSlab). */
#include "core.h"

int _slaballoc_add_slots(PyObject *module)
{
    return 0;
}
