"""Which implementation runs: the C core (``slaballoc._core``) or the pure-Python modules.

The pure-Python modules are the specification and the fallback, as CPython's
``heapq`` is for ``_heapq``: each module that has an accelerated form ends by
replacing its public classes with the C-backed ones when :data:`core` is
available.  ``SLABALLOC_PURE=1`` in the environment forces the Python code.
"""

from __future__ import annotations

import os
from importlib import import_module
from types import ModuleType

__all__ = ["IMPLEMENTATION", "core"]

#: The C-side interface this Python code was written against (``_core.ABI``).
_ABI = 1


def _load_core() -> ModuleType | None:
    if os.environ.get("SLABALLOC_PURE", "") not in ("", "0"):
        return None
    try:
        module = import_module("slaballoc._core")
    except ImportError:
        return None
    # A build left from an older checkout has another ABI: then, too, pure Python.
    return module if getattr(module, "ABI", None) == _ABI else None


#: The extension module, or None when the pure-Python code runs.
core: ModuleType | None = _load_core()

#: ``"c"`` when the C core runs, ``"python"`` otherwise.
IMPLEMENTATION = "python" if core is None else "c"
