"""Size classes: which object size serves a request, and how much rounding that costs.

The default spacing is jemalloc's (``include/jemalloc/internal/sc.h``): from
16 bytes, four classes per doubling.  Between ``2**k`` and ``2**(k + 1)`` the
classes are ``2**k + j * 2**(k - 2)`` for ``j = 1..4``, so from 64 bytes on a
request is rounded up by less than a quarter of the class below it:

* internal waste (class size minus request) is at most 15 bytes up to 64 B, and
  less than 20% of the object above that (``step / class <= 2**(k-2) / (2**k + 2**(k-2))``);
* 16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, ... 12288, 14336, 16384.

A user's own list works the same way; every size must be a multiple of the
alignment so that every object starts aligned.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import pairwise

from ..errors import InvalidSizeError, SizeTypeError
from ..sizes import as_integer, require_count, require_power_of_two

__all__ = ["DEFAULT_LARGEST_CLASS", "SizeClasses", "jemalloc_spacing"]

#: The largest default class: requests above it go to the backing store.
DEFAULT_LARGEST_CLASS = 16 << 10


def jemalloc_spacing(smallest: int = 16, largest: int = DEFAULT_LARGEST_CLASS) -> list[int]:
    """Four classes per doubling from ``smallest`` (a power of two) up to ``largest``.

    >>> jemalloc_spacing(16, 256)
    [16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256]
    """
    smallest = require_power_of_two(smallest, "smallest")
    sizes = [smallest]
    while sizes[-1] < largest:
        size = sizes[-1]
        # The step is a quarter of the power of two at or below size, but at
        # least the smallest class: 16, 32, 48, 64 are 16 apart.
        step = max(smallest, (1 << (size.bit_length() - 1)) >> 2)
        sizes.append(size + step)
    return sizes


class SizeClasses:
    """An ascending list of object sizes and an O(1) map from request to class.

    The map is a table with one entry per ``alignment`` bytes up to the largest
    class (1,024 entries for the default classes), so that finding a class is one
    shift and one list index on the hot path.

    >>> classes = SizeClasses()
    >>> classes.index_of(1500), classes.sizes[classes.index_of(1500)]
    (21, 1536)
    >>> len(classes), classes.largest
    (36, 16384)
    >>> SizeClasses([24, 16])
    Traceback (most recent call last):
    ...
    slaballoc.errors.InvalidSizeError: size classes must be in ascending order, got 24 before 16
    """

    __slots__ = ("_table", "alignment", "largest", "shift", "sizes")

    def __init__(self, sizes: Iterable[int] | None = None, *, alignment: int = 16) -> None:
        self.alignment: int = require_power_of_two(alignment, "alignment")
        self.sizes: tuple[int, ...] = tuple(
            jemalloc_spacing()
            if sizes is None
            else (require_count(size, "size class") for size in _listed(sizes))
        )
        if not self.sizes:
            raise InvalidSizeError("size classes must not be empty: give at least one size")
        for smaller, larger in pairwise(self.sizes):
            if smaller >= larger:
                raise InvalidSizeError(
                    f"size classes must be in ascending order, got {smaller} before {larger}"
                )
        for size in self.sizes:
            if size % self.alignment:
                raise InvalidSizeError(
                    f"size class {size} is not a multiple of the alignment {self.alignment}: "
                    "round it up, or pass a smaller alignment"
                )
        self.largest: int = self.sizes[-1]
        self.shift: int = self.alignment.bit_length() - 1
        # _table[(size - 1) >> shift] is the index of the smallest class >= size.
        table: list[int] = []
        for index, size in enumerate(self.sizes):
            table.extend([index] * ((size >> self.shift) - len(table)))
        self._table = table

    @property
    def table(self) -> list[int]:
        """The request-to-class table: entry ``(size - 1) >> shift`` is the class index."""
        return self._table

    def index_of(self, size: int) -> int:
        """The index of the smallest class holding ``size`` bytes (1 to ``largest``).  O(1).

        >>> SizeClasses([16, 64]).index_of(17)
        1
        """
        return self._table[(size - 1) >> self.shift]

    def waste_bound(self, size: int) -> int:
        """The most bytes a request served by class ``size`` can waste to rounding.

        >>> classes = SizeClasses()
        >>> classes.waste_bound(16), classes.waste_bound(1536), classes.waste_bound(1280)
        (15, 255, 255)
        """
        index = self.sizes.index(size)
        below = self.sizes[index - 1] if index else 0
        return size - below - 1

    def __len__(self) -> int:
        return len(self.sizes)

    def __iter__(self) -> Iterator[int]:
        return iter(self.sizes)

    def __repr__(self) -> str:
        return f"<SizeClasses {len(self.sizes)} classes, {self.sizes[0]} to {self.largest} B>"


def _listed(sizes: Iterable[int]) -> list[int]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Iterable):
        raise SizeTypeError(f"size classes must be a list of integers, got {type(sizes).__name__}")
    return [as_integer(size, "size class") for size in sizes]
