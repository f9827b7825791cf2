"""Validation and rounding of sizes, shared by every allocator and policy."""

from __future__ import annotations

import operator

from .errors import InvalidSizeError, SizeTypeError

__all__ = ["as_integer", "is_power_of_two", "require_count", "require_power_of_two", "round_up"]


def require_count(value: object, what: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` if it is an integer of at least ``minimum``.

    Accepts anything with ``__index__`` (numpy integers too) but not ``bool``,
    which is an ``int`` by accident of history and never a size.

    >>> require_count(64, "slot_size")
    64
    >>> require_count(0, "size")
    Traceback (most recent call last):
    ...
    slaballoc.errors.InvalidSizeError: size must be at least 1, got 0
    """
    number = as_integer(value, what)
    if number < minimum:
        raise InvalidSizeError(f"{what} must be at least {minimum}, got {number}")
    return number


def as_integer(value: object, what: str) -> int:
    """Return ``value`` as an ``int``; raise :class:`SizeTypeError` if it is not one."""
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise SizeTypeError(f"{what} must be an integer, got the bool {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise SizeTypeError(
            f"{what} must be an integer, got {type(value).__name__} {value!r}"
        ) from None


def is_power_of_two(value: int) -> bool:
    """True for 1, 2, 4, 8, ...

    >>> [n for n in range(10) if is_power_of_two(n)]
    [1, 2, 4, 8]
    """
    return value > 0 and value & (value - 1) == 0


def require_power_of_two(value: object, what: str) -> int:
    """Return ``value`` if it is a positive power of two, else raise."""
    number = as_integer(value, what)
    if not is_power_of_two(number):
        raise InvalidSizeError(f"{what} must be a power of two (1, 2, 4, 8, ...), got {number}")
    return number


def round_up(size: int, alignment: int) -> int:
    """Round ``size`` up to a multiple of ``alignment`` (a power of two).

    >>> round_up(100, 8), round_up(8, 8), round_up(1, 16)
    (104, 8, 16)
    """
    return (size + alignment - 1) & -alignment
