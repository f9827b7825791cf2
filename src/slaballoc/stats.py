"""A snapshot of an allocator's memory, for people and for monitoring."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["ArenaStats"]


@dataclass(frozen=True)
class ArenaStats:
    """What ``stats()`` reports.  All sizes are in bytes.

    ``fragmentation`` is external fragmentation: the share of free bytes
    outside the largest free block, 0 when free memory is one block.  Slots
    never fragment in this sense (any free slot serves any request), so it is
    always 0 for the fixed-size slabs.

    >>> stats = ArenaStats(capacity=4096, used=1024, live_blocks=16, free_blocks=2,
    ...                    largest_free=2048, fragmentation=1 / 3)
    >>> stats.free, stats.utilization
    (3072, 0.25)
    """

    capacity: int
    used: int
    live_blocks: int
    free_blocks: int
    largest_free: int
    fragmentation: float

    @property
    def free(self) -> int:
        """Bytes not handed out."""
        return self.capacity - self.used

    @property
    def utilization(self) -> float:
        """Fraction of the capacity handed out."""
        return self.used / self.capacity if self.capacity else 0.0

    def as_dict(self) -> dict[str, int | float]:
        """The fields and the derived figures, for JSON."""
        return {
            **asdict(self),
            "free": self.free,
            "utilization": self.utilization,
        }
