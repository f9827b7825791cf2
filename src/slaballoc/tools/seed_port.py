"""A plain port of the seed's ``slab_dynamic.js``, kept as a benchmark baseline.

It is deliberately the seed's algorithm, not ours: the free blocks are a list,
best fit walks all of it (O(n) per alloc), and a freed block finds the free
neighbours it merges with by walking it again (O(n) per free).  Ties go to the
lowest address, so it places every block exactly where ``DynamicSlab`` does;
only the cost differs.  JavaScript finds a view's block by ``byteOffset``;
a memoryview has no such field, so the port keeps a dict from view to block.

``slaballoc replay`` and ``slaballoc bench --scaling`` measure it beside ours.
"""

from __future__ import annotations


class SeedDynamic:
    """The seed's variable-size allocator, as a replay contender."""

    name = "seed algorithm (list scan)"

    def __init__(self, capacity: int, alignment: int = 8) -> None:
        self.memory = memoryview(bytearray(capacity))
        self.alignment = alignment
        self.free_blocks: list[tuple[int, int]] = [(0, capacity)]  # (start, size), any order
        self.blocks: dict[int, tuple[int, int, memoryview]] = {}  # id(view) -> (start, size, view)

    def alloc(self, size: int) -> memoryview:
        need = -(-size // self.alignment) * self.alignment
        best = -1
        best_key = (0, 0)
        for index, (start, block_size) in enumerate(self.free_blocks):
            if block_size >= need and (best < 0 or (block_size, start) < best_key):
                best, best_key = index, (block_size, start)
        if best < 0:
            raise MemoryError(f"cannot allocate {size} bytes")
        block_size, start = best_key
        if block_size > need:
            self.free_blocks[best] = (start + need, block_size - need)  # split
        else:
            del self.free_blocks[best]
        view = self.memory[start : start + size]
        self.blocks[id(view)] = (start, need, view)
        return view

    def free(self, view: memoryview) -> None:
        start, size, _ = self.blocks.pop(id(view))
        end = start + size
        merged = []
        for index, (other, other_size) in enumerate(self.free_blocks):  # merge by scanning
            if other + other_size == start:
                start, size = other, size + other_size
                merged.append(index)
            elif other == end:
                size += other_size
                merged.append(index)
        for index in reversed(merged):
            del self.free_blocks[index]
        self.free_blocks.append((start, size))

    def realloc(self, view: memoryview, size: int) -> memoryview:
        new = self.alloc(size)
        keep = min(len(view), size)
        new[:keep] = view[:keep]
        self.free(view)
        return new

    def offset_of(self, view: memoryview) -> int:
        return self.blocks[id(view)][0]
