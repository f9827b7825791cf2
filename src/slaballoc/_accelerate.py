"""Building the public classes of the C implementation from the pure-Python ones.

The C core provides *base types*: the state and the hot methods (``alloc``,
``free``...), each a C function called without a Python frame.  Everything
else (reprs, ``blocks``, ``stats``, ``check``, properties, the builders of
error messages) stays written once, in the pure-Python class, and is taken
from it unchanged by :func:`accelerated`, which reads the C object through the
attributes the C type exposes under the pure names (``_policy``, ``_memory``...).

When the C code meets anything but the common case (a bad argument, a closed
allocator...) it calls the pure method of the same name, found on the class's
``_specification``: the specification then raises exactly its own error, or
does exactly what it would do, before any state has changed.
"""

from __future__ import annotations

import types
from typing import Any, TypeVar, cast

__all__ = ["accelerated"]

_Class = TypeVar("_Class", bound=type)

# Attributes of a pure class that describe its layout or identity, not behaviour.
_NOT_BORROWED = frozenset(
    {"__dict__", "__weakref__", "__slots__", "__module__", "__qualname__", "__doc__", "__init__"}
)


def accelerated(base: type, specification: _Class, **overrides: Any) -> _Class:
    """A subclass of the C ``base`` that behaves as ``specification`` does.

    Each class of the specification's MRO is mirrored by one subclass of
    ``base`` holding that class's attributes (except those ``base`` defines
    itself), so that ``super()`` inside a borrowed method reaches the mirrored
    parent.  ``overrides`` replace class attributes (a C policy for a pure one).
    """
    parent = base
    for cls in reversed(specification.__mro__[:-1]):  # object is not mirrored
        namespace: dict[str, Any] = {
            name: value
            for name, value in vars(cls).items()
            if name not in _NOT_BORROWED
            and name not in vars(base)
            and not isinstance(value, types.MemberDescriptorType)
        }
        namespace.update(__slots__=(), __module__=cls.__module__, __doc__=cls.__doc__)
        if cls is specification:
            namespace.update(overrides, _specification=specification)
        mirror = type(cls.__name__, (parent,), namespace)
        mirror.__qualname__ = cls.__qualname__
        for name, value in namespace.items():
            rebound = _rebind_super(value, cls, mirror)
            if rebound is not value:
                setattr(mirror, name, rebound)
        parent = mirror
    return cast("_Class", parent)


def _rebind_super(value: Any, pure: type, mirror: type) -> Any:
    """``value``, with zero-argument ``super()`` in it pointing at ``mirror``, not ``pure``."""
    if isinstance(value, property):
        getter, setter, deleter = (
            _rebind_super(part, pure, mirror) for part in (value.fget, value.fset, value.fdel)
        )
        return property(getter, setter, deleter, value.__doc__)
    if isinstance(value, staticmethod | classmethod):
        return type(value)(_rebind_super(value.__func__, pure, mirror))
    if not isinstance(value, types.FunctionType) or value.__closure__ is None:
        return value
    cells = tuple(
        types.CellType(mirror) if name == "__class__" and cell.cell_contents is pure else cell
        for name, cell in zip(value.__code__.co_freevars, value.__closure__, strict=True)
    )
    rebound = types.FunctionType(
        value.__code__, value.__globals__, value.__name__, value.__defaults__, cells
    )
    rebound.__kwdefaults__ = value.__kwdefaults__
    rebound.__doc__ = value.__doc__
    rebound.__qualname__ = value.__qualname__
    rebound.__module__ = value.__module__
    rebound.__annotations__ = value.__annotations__
    return rebound
