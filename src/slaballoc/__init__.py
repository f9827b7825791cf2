"""slaballoc: memory allocators inside one flat byte buffer.

Three allocators, as in the seed document, each handing out writable
``memoryview`` blocks of one buffer and taking them back:

- :class:`LinearSlab`: fixed-size slots, found by linear search.
- :class:`FreeListSlab`: fixed-size slots on a free list, O(1) alloc and free.
- :class:`DynamicSlab`: any size, best fit with splitting and coalescing.

Their placement algorithms work on integer offsets and are usable on their own:
see :mod:`slaballoc.policies`.  Every error is in :mod:`slaballoc.errors`.

:data:`IMPLEMENTATION` says which code runs: ``"c"`` (the compiled core,
``slaballoc._core``) or ``"python"`` (the pure-Python modules, which are the
specification; ``SLABALLOC_PURE=1`` in the environment forces them).
"""

from ._implementation import IMPLEMENTATION
from .allocator import BlockAllocator
from .dynamic import DEFAULT_ALIGNMENT, DynamicSlab
from .errors import (
    AllocatorClosedError,
    BlockInUseError,
    BufferTypeError,
    DoubleFreeError,
    InvalidBufferError,
    InvalidFreeError,
    InvalidSizeError,
    InvariantError,
    OutOfMemoryError,
    SizeTooLargeError,
    SizeTypeError,
    SlabError,
)
from .memory import DEFAULT_CAPACITY
from .policies import BestFit, Block, FreeList, LinearSearch
from .slabs import FreeListSlab, LinearSlab
from .stats import ArenaStats

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_ALIGNMENT",
    "DEFAULT_CAPACITY",
    "IMPLEMENTATION",
    "AllocatorClosedError",
    "ArenaStats",
    "BestFit",
    "Block",
    "BlockAllocator",
    "BlockInUseError",
    "BufferTypeError",
    "DoubleFreeError",
    "DynamicSlab",
    "FreeList",
    "FreeListSlab",
    "InvalidBufferError",
    "InvalidFreeError",
    "InvalidSizeError",
    "InvariantError",
    "LinearSearch",
    "LinearSlab",
    "OutOfMemoryError",
    "SizeTooLargeError",
    "SizeTypeError",
    "SlabError",
    "__version__",
]
