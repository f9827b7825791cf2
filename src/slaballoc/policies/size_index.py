"""An ordered set of small integers with a fast "smallest member >= key" query.

This is TLSF's two-level bitmap carried to as many levels as the key range
needs, so that the search is exact instead of "good enough": level 0 holds one
bit per key in 64-bit words; a bit of level ``k + 1`` is set when the matching
word of level ``k`` is non-zero.  A query climbs until it finds a word with a
set bit at or after the key, then descends taking the lowest set bit of each
word.  Every operation touches at most two words per level: O(log64 universe),
which is 4 levels for 16 M keys, however many members there are.

Words live in dicts, so an empty region of keys costs no memory.
"""

from __future__ import annotations

__all__ = ["SizeIndex"]

_BITS = 6  # log2 of the word width
_MASK = (1 << _BITS) - 1


def _lowest_bit(word: int) -> int:
    return (word & -word).bit_length() - 1


class SizeIndex:
    """A set of integers in ``range(universe)``.

    >>> index = SizeIndex(1_000_000)
    >>> for key in (5, 64, 70_000):
    ...     index.add(key)
    >>> index.successor(0), index.successor(6), index.successor(65), index.successor(70_001)
    (5, 64, 70000, -1)
    >>> index.discard(64)
    >>> index.successor(6)
    70000
    >>> index.maximum()
    70000
    """

    __slots__ = ("_levels", "universe")

    def __init__(self, universe: int) -> None:
        self.universe = universe
        height = 1
        while (1 << (_BITS * height)) < universe:
            height += 1
        self._levels: list[dict[int, int]] = [{} for _ in range(height)]

    def add(self, key: int) -> None:
        """Insert ``key`` (no effect if present).  O(log64 universe)."""
        for words in self._levels:
            index = key >> _BITS
            word = words.get(index, 0)
            words[index] = word | (1 << (key & _MASK))
            if word:  # the levels above already know this word is non-empty
                return
            key = index

    def discard(self, key: int) -> None:
        """Remove ``key``, which must be present.  O(log64 universe)."""
        for words in self._levels:
            index = key >> _BITS
            word = words[index] & ~(1 << (key & _MASK))
            if word:
                words[index] = word
                return
            del words[index]
            key = index

    def successor(self, key: int) -> int:
        """The smallest member ``>= key``, or -1 if there is none.  O(log64 universe)."""
        levels = self._levels
        height = 0
        for words in levels:
            index = key >> _BITS
            word = words.get(index, 0) >> (key & _MASK)
            if word:
                key += _lowest_bit(word)
                break
            key = index + 1
            height += 1
        else:
            return -1
        while height:
            height -= 1
            key = (key << _BITS) | _lowest_bit(levels[height][key])
        return key

    def maximum(self) -> int:
        """The largest member, or -1 if the set is empty.  O(log64 universe)."""
        levels = self._levels
        key = 0
        for words in reversed(levels):
            word = words.get(key, 0)
            if not word:
                return -1
            key = (key << _BITS) | (word.bit_length() - 1)
        return key

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, int) or key < 0:
            return False
        return bool(self._levels[0].get(key >> _BITS, 0) >> (key & _MASK) & 1)

    def members(self) -> list[int]:
        """Every member in increasing order (for checks and tests)."""
        return sorted(
            (index << _BITS) | bit
            for index, word in self._levels[0].items()
            for bit in range(1 << _BITS)
            if word >> bit & 1
        )
