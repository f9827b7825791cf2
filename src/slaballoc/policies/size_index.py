"""An ordered set of small integers with a fast "smallest member >= key" query.

This is TLSF's two-level bitmap carried to as many levels as the key range
needs, so that the search is exact instead of "good enough": level 0 holds one
bit per key in 64-bit words; a bit of level ``k + 1`` is set when the matching
word of level ``k`` is non-zero.  A query climbs until it finds a word with a
set bit at or after the key, then descends taking the lowest set bit of each
word.  Every operation touches at most two words per level: O(log64 universe),
which is 4 levels for 16 M keys, however many members there are.

Each level is a list of words: about ``universe / 63`` words in all, one bit
per key plus a little.  Each word is a Python list slot (8 bytes, pointing at a
shared ``0`` while the word is empty), so the index costs about 8 bytes per 64
keys: for :class:`~slaballoc.policies.BestFit` one key per alignment unit, so
capacity / 64 bytes at 8-byte alignment (measured: 16.3 MiB for 1 GiB; 8.1 MiB
at 16-byte alignment, 2.0 MiB at 64).
"""

from __future__ import annotations

__all__ = ["SizeIndex"]

_BITS = 6  # log2 of the word width
_MASK = (1 << _BITS) - 1


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
        # Level k has one word per 64**(k + 1) keys; the top level has one word.
        self._levels: list[list[int]] = []
        words = universe
        while True:
            words = (words + _MASK) >> _BITS
            self._levels.append([0] * words)
            if words == 1:
                break

    def add(self, key: int) -> None:
        """Insert ``key`` (no effect if present).  O(log64 universe)."""
        for words in self._levels:
            index = key >> _BITS
            word = words[index]
            words[index] = word | (1 << (key & _MASK))
            if word:  # the levels above already know this word is non-empty
                return
            key = index

    def discard(self, key: int) -> None:
        """Remove ``key``, which must be present.  O(log64 universe)."""
        for words in self._levels:
            index = key >> _BITS
            word = words[index] = words[index] & ~(1 << (key & _MASK))
            if word:  # still non-empty: the levels above stay as they are
                return
            key = index

    def successor(self, key: int) -> int:
        """The smallest member ``>= key``, or -1 if there is none.  O(log64 universe)."""
        levels = self._levels
        height = 0
        for words in levels:  # climb until a word holds a member at or after the key
            index = key >> _BITS
            if index >= len(words):
                return -1
            word = words[index] >> (key & _MASK)
            if word:
                key += (word & -word).bit_length() - 1
                break
            key = index + 1
            height += 1
        else:
            return -1
        while height:  # descend along the lowest set bits
            height -= 1
            word = levels[height][key]
            key = (key << _BITS) | ((word & -word).bit_length() - 1)
        return key

    def maximum(self) -> int:
        """The largest member, or -1 if the set is empty.  O(log64 universe)."""
        key = 0
        for words in reversed(self._levels):
            word = words[key]
            if not word:
                return -1
            key = (key << _BITS) | (word.bit_length() - 1)
        return key

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, int) or not 0 <= key < self.universe:
            return False
        return bool(self._levels[0][key >> _BITS] >> (key & _MASK) & 1)

    def members(self) -> list[int]:
        """Every member in increasing order (for checks and tests).  O(universe / 64)."""
        return [
            (index << _BITS) | bit
            for index, word in enumerate(self._levels[0])
            if word
            for bit in range(1 << _BITS)
            if word >> bit & 1
        ]
