"""The seed's eleven demonstration scenarios, for each allocator.

Each scenario prints what it does (the call, then what came back) and checks
that the allocator did what the seed says it should; a scenario that
misbehaves raises :class:`DemoFailedError`, so ``slaballoc demo`` doubles as a
smoke test.  Every scenario starts from a new allocator and ends with a map of
its memory.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import TextIO, TypeVar

from ..dynamic import DynamicSlab
from ..errors import DoubleFreeError, InvalidFreeError, OutOfMemoryError, SlabError
from ..slabs import FreeListSlab, LinearSlab
from .render import block_list, text_map

__all__ = [
    "KINDS",
    "NOTATION",
    "SCENARIOS",
    "Demo",
    "DemoFailedError",
    "Kind",
    "print_notation",
    "run_demo",
    "state_after",
]

Allocator = LinearSlab | FreeListSlab | DynamicSlab
T = TypeVar("T")


class DemoFailedError(AssertionError):
    """An allocator did not behave as the scenario shows it should."""


@dataclass(frozen=True)
class Kind:
    """One allocator as the demos see it."""

    name: str
    title: str
    make: Callable[[bool], Allocator]  # fast -> a new 4096-byte allocator

    @property
    def variable(self) -> bool:
        """True if blocks have a size chosen at each allocation."""
        return self.name == "dynamic"


def _linear(fast: bool) -> Allocator:
    return LinearSlab(fast=fast)


def _freelist(fast: bool) -> Allocator:
    return FreeListSlab(fast=fast)


def _dynamic(fast: bool) -> Allocator:
    return DynamicSlab(fast=fast)


KINDS: dict[str, Kind] = {
    "linear": Kind("linear", "LinearSlab: 64 slots of 64 B, found by linear search", _linear),
    "freelist": Kind("freelist", "FreeListSlab: 64 slots of 64 B on a LIFO free list", _freelist),
    "dynamic": Kind("dynamic", "DynamicSlab: 4096 B, best fit, split and coalesce", _dynamic),
}


class Demo:
    """One allocator under demonstration: prints steps and checks outcomes."""

    def __init__(self, kind: Kind, out: TextIO, *, colour: bool = False) -> None:
        self.kind = kind
        self.out = out
        self.colour = colour
        self.slab = kind.make(False)
        self.quiet = False

    def set_up(self, scenario: Callable[[Demo], T], what: str) -> T:
        """Run an earlier scenario silently as this one's starting point."""
        was_quiet, self.quiet = self.quiet, True
        try:
            result = scenario(self)
        finally:
            self.quiet = was_quiet
        live = [block for block in self.slab.blocks() if block.live]
        shown = ", ".join(f"{block.size} B at {block.offset}" for block in live[:5])
        more = f" and {len(live) - 5} more" if len(live) > 5 else ""
        self.say(f"(set-up {what}; live blocks: {shown or 'none'}{more})")
        return result

    # -- acting ---------------------------------------------------------------------

    def new_slab(self, *, fast: bool = False) -> Allocator:
        """Start over with a new allocator (the one later maps show)."""
        self.slab = self.kind.make(fast)
        return self.slab

    def alloc(self, size: int) -> memoryview:
        """Allocate ``size`` bytes (a slot, for the fixed-size slabs) and print the call."""
        slab = self.slab
        view = slab.alloc(size) if isinstance(slab, DynamicSlab) else slab.alloc()
        self.show(self.request(size), self.describe(view))
        return view

    def request(self, size: int) -> str:
        """How an allocation of ``size`` is written for this allocator."""
        return f"alloc({size})" if self.kind.variable else "alloc()"

    def free(self, view: memoryview, name: str = "block") -> None:
        """Free ``view`` and print the call."""
        offset = self.slab.offset_of(view)
        self.slab.free(view)
        self.show(f"free({name})", f"offset {offset} is free again")

    def refused(self, call: str, action: Callable[[], object], error: type[SlabError]) -> None:
        """Run ``action``, which must raise ``error`` and change nothing."""
        before = self.snapshot()
        try:
            action()
        except error as exc:
            self.show(call, f"{type(exc).__name__}: {exc}")
        else:
            raise DemoFailedError(f"{call} should have raised {error.__name__}")
        self.expect(self.snapshot() == before, "nothing changed: same blocks, same bytes")

    # -- telling --------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        if not self.quiet:
            print(f"  {text}" if text else "", file=self.out)

    def show(self, call: str, result: str) -> None:
        self.say(f"{call:<24} -> {result}")

    def expect(self, condition: bool, claim: str) -> None:
        if not condition:
            raise DemoFailedError(f"{self.kind.name}: expected {claim}")
        self.say(f"ok: {claim}")

    def describe(self, view: memoryview) -> str:
        return f"{len(view)}-byte block at offset {self.slab.offset_of(view)}"

    def snapshot(self) -> tuple[object, ...]:
        """Everything an error must leave unchanged: the blocks and the bytes."""
        return (tuple(self.slab.blocks()), self.slab.used, len(self.slab), bytes(self.slab.memory))

    def show_map(self) -> None:
        blocks = list(self.slab.blocks())
        self.say("memory: " + text_map(blocks, self.slab.capacity, colour=self.colour))
        if self.kind.variable:
            self.say("blocks: " + block_list(blocks))


# -- the eleven scenarios -----------------------------------------------------------


def allocate_one(demo: Demo) -> None:
    view = demo.alloc(100)
    expected = 100 if demo.kind.variable else 64
    demo.expect(len(view) == expected, f"a writable view of exactly {expected} bytes")
    demo.expect(demo.slab.offset_of(view) == 0, "the first block starts at offset 0")


def write_and_read(demo: Demo) -> None:
    view = demo.alloc(100)
    last = len(view) - 1
    view[0] = 0x42
    view[last] = 0xFF
    demo.show(f"block[0], block[{last}] = 0x42, 0xFF", "written")
    demo.show(f"block[0], block[{last}]", f"{view[0]:#04x}, {view[last]:#04x}")
    demo.expect((view[0], view[last]) == (0x42, 0xFF), "the bytes read back as written")
    offset = demo.slab.offset_of(view)
    demo.expect(
        demo.slab.memory[offset] == 0x42, f"the write landed in the slab's own buffer at {offset}"
    )


SEVERAL = (10, 256, 1000, 64, 500)


def allocate_several(demo: Demo) -> list[memoryview]:
    views = [demo.alloc(size) for size in SEVERAL]
    spans = sorted((demo.slab.offset_of(v), demo.slab.offset_of(v) + len(v)) for v in views)
    apart = all(end <= start for (_, end), (start, _) in pairwise(spans))
    demo.expect(apart, f"{len(views)} blocks, no two overlapping")
    demo.expect(len(demo.slab) == len(views), f"len(slab) == {len(views)}")
    return views


def free_one(demo: Demo) -> tuple[list[memoryview], int]:
    views = demo.set_up(allocate_several, "as in test 3")
    used, hole = demo.slab.used, demo.slab.offset_of(views[1])
    demo.free(views[1], "second")
    demo.expect(len(demo.slab) == len(views) - 1, f"len(slab) == {len(views) - 1}")
    demo.expect(demo.slab.used < used, f"used fell from {used} to {demo.slab.used} bytes")
    return views, hole


def reuse(demo: Demo) -> None:
    _, hole = demo.set_up(free_one, "as in test 4")
    view = demo.alloc(200)
    how = (
        "best fit: the freed 256-byte hole is the smallest that fits"
        if demo.kind.variable
        else (
            "the slot freed last comes back first"
            if demo.kind.name == "freelist"
            else "the lowest free slot is the one just freed"
        )
    )
    demo.expect(demo.slab.offset_of(view) == hole, f"same memory back ({how})")


def fill_everything(demo: Demo) -> int:
    count = 0
    try:
        while True:
            if isinstance(demo.slab, DynamicSlab):
                demo.slab.alloc(64)
            else:
                demo.slab.alloc()
            count += 1
    except OutOfMemoryError:
        pass
    demo.show(f"{demo.request(64)} until it fails", f"{count} blocks of 64 bytes")
    demo.expect(count == 64, "all 4096 bytes in 64 blocks")
    demo.expect(demo.slab.used == demo.slab.capacity, "used == capacity")
    return count


def allocate_when_full(demo: Demo) -> None:
    demo.set_up(fill_everything, "as in test 6")
    slab = demo.slab
    if isinstance(slab, DynamicSlab):
        demo.refused("alloc(1)", lambda: slab.alloc(1), OutOfMemoryError)
    else:
        demo.refused("alloc()", slab.alloc, OutOfMemoryError)


def free_all(demo: Demo) -> int:
    """Free the blocks of test 3 in the order they were allocated; return the offset freed last."""
    views = demo.set_up(allocate_several, "as in test 3")
    last = demo.slab.offset_of(views[-1])
    for view in views:
        demo.free(view)
    demo.expect(len(demo.slab) == 0 and demo.slab.used == 0, "no live blocks, 0 bytes used")
    demo.slab.check()
    demo.expect(True, "check() finds the bookkeeping consistent")
    return last


def allocate_after_freeing_all(demo: Demo) -> None:
    freed_last = demo.set_up(
        free_all, "as in test 8, which freed the blocks in the order they were allocated"
    )
    if demo.kind.variable:
        blocks = list(demo.slab.blocks())
        demo.expect(len(blocks) == 1, "the freed blocks coalesced into one free block")
        view = demo.alloc(4096)
        demo.expect(len(view) == 4096, "one 4096-byte block fits: coalescing left no seams")
        return
    view = demo.alloc(64)
    offset = demo.slab.offset_of(view)
    if demo.kind.name == "freelist":
        demo.expect(
            offset == freed_last,
            f"it lands at offset {freed_last}, the slot freed last: the free list is a stack "
            "(LIFO), so the last slot pushed is the first popped",
        )
    else:
        demo.expect(
            offset == 0,
            "it lands at offset 0: linear search takes the lowest free slot, "
            "whatever order the slots were freed in",
        )


def invalid_frees(demo: Demo) -> None:
    keep = demo.alloc(100)
    keep[0] = 0x42
    other = demo.kind.make(False)
    stranger = other.alloc() if isinstance(other, (LinearSlab, FreeListSlab)) else other.alloc(64)
    freed = demo.alloc(100)
    demo.free(freed, "block")
    slab = demo.slab
    demo.refused("free(None)", lambda: slab.free(None), InvalidFreeError)  # type: ignore[arg-type]
    demo.refused(
        "free(bytearray(64))",
        lambda: slab.free(bytearray(64)),  # type: ignore[arg-type]
        InvalidFreeError,
    )
    demo.refused("free(other_slab_block)", lambda: slab.free(stranger), InvalidFreeError)
    demo.refused("free(block[0:8])", lambda: slab.free(keep[0:8]), InvalidFreeError)
    demo.refused("free(block)  # again", lambda: slab.free(freed), DoubleFreeError)
    demo.expect(keep[0] == 0x42, "the live block still holds its data")


def use_after_free(demo: Demo) -> None:
    demo.say("-- fast mode (fast=True): the seed's behaviour --")
    fast = demo.new_slab(fast=True)
    first = demo.alloc(100)
    first[0] = 0x42
    demo.free(first, "first")
    demo.show("first[0]  # after free", f"{first[0]:#04x}  (BUG: still readable)")
    second = demo.alloc(100)
    same = fast.offset_of(second) == 0
    demo.expect(same, "the next allocation gets the same memory")
    if second is first:
        demo.show("second is first", "True: the same cached view object, handed out again")
    second[0] = 0x11
    first[0] = 0xFF
    demo.show("first[0] = 0xFF", f"second[0] is now {second[0]:#04x}: first corrupted second")
    demo.expect(second[0] == 0xFF, "in fast mode a stale view can corrupt the new owner")
    demo.say()
    demo.say("-- safe mode (the default): free() releases the view --")
    demo.new_slab()
    first = demo.alloc(100)
    first[0] = 0x42
    demo.free(first, "first")
    try:
        first[0]
    except ValueError as exc:
        demo.show("first[0]  # after free", f"ValueError: {exc}")
    else:
        raise DemoFailedError("a freed view was still readable in safe mode")
    second = demo.alloc(100)
    second[0] = 0x11
    try:
        first[0] = 0xFF
    except ValueError:
        demo.show("first[0] = 0xFF", "ValueError: the stale view cannot write either")
    demo.expect(second[0] == 0x11, "the new owner's data is safe")


SCENARIOS: list[tuple[str, Callable[[Demo], object]]] = [
    ("Allocate one block", allocate_one),
    ("Write and read", write_and_read),
    ("Allocate several", allocate_several),
    ("Free one", free_one),
    ("Reuse after free", reuse),
    ("Fill everything", fill_everything),
    ("Allocate when full", allocate_when_full),
    ("Free all", free_all),
    ("Allocate after freeing all", allocate_after_freeing_all),
    ("Invalid frees", invalid_frees),
    ("Use after free", use_after_free),
]


NOTATION = """\
How to read the demo
  Each test starts from a new 4096-byte allocator. A line shows a call, then "->" and what came
  back; "ok:" is a check of what the seed says must happen (a failed check stops the demo).
  A test ends with a map of the memory, left to right (here shortened to 7 cells):

    memory: [#:.....]  104/4096 B used in 1 live block, 1 free

  - one cell is 64 bytes, so 64 cells are the 4096 bytes (for the slabs, one cell is one slot);
  - '#': every byte of the cell is in a live block; '.': every byte is free; ':' both (a block
    starts or ends inside the cell);
  - "104/4096 B used": the bytes of the live blocks. DynamicSlab rounds every block up to its
    alignment (8 bytes, so that any block can hold 8-byte numbers), so alloc(100) gives a view
    of exactly 100 bytes but uses 104, and the next block starts at offset 104;
  - "1 live block, 1 free" counts blocks, not bytes: for the slabs a free block is a free slot
    ("63 free" is 63 slots); for DynamicSlab it is a run of free bytes (free neighbours merge);
  - DynamicSlab also lists its blocks: "#0+104" is a live block of 104 bytes at offset 0,
    ".104+3992" a free block of 3992 bytes after it.
"""


def print_notation(out: TextIO) -> None:
    """Explain the demo's notation (once, before the first allocator's scenarios)."""
    print(NOTATION, file=out)


def run_demo(kind: Kind, out: TextIO, *, colour: bool = False) -> None:
    """Print the eleven scenarios for one allocator; raise DemoFailedError if one misbehaves.

    After each scenario comes a map of the memory (coloured if ``colour``).
    """
    rule = "=" * 72
    print(f"{rule}\n{kind.title}\n{rule}", file=out)
    for number, (title, scenario) in enumerate(SCENARIOS, start=1):
        print(f"\nTest {number}: {title}", file=out)
        demo = Demo(kind, out, colour=colour)
        scenario(demo)
        demo.show_map()
    print(f"\nAll {len(SCENARIOS)} scenarios behaved as expected for {kind.name}.\n", file=out)


def state_after(kind: Kind, step: int) -> tuple[str, Allocator]:
    """Run scenario ``step`` (1 to 11) silently; return its title and the allocator it left."""
    if not 1 <= step <= len(SCENARIOS):
        raise ValueError(f"step must be 1 to {len(SCENARIOS)}, got {step}")
    title, scenario = SCENARIOS[step - 1]
    demo = Demo(kind, io.StringIO())
    scenario(demo)
    return title, demo.slab
