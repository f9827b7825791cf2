"""The production slab allocator: size classes, slabs, magazines, debugging.

One module per part; :class:`SlabCache` (in :mod:`.cache`) puts them together.
"""

from .cache import DEFAULT_CACHE_CAPACITY, SlabCache
from .debug import Leak
from .size_classes import SizeClasses
from .slab_stats import CacheStats, SlabInfo, SlabRecord

__all__ = [
    "DEFAULT_CACHE_CAPACITY",
    "CacheStats",
    "Leak",
    "SizeClasses",
    "SlabCache",
    "SlabInfo",
    "SlabRecord",
]
