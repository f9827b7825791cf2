"""The colours of every picture: the text map, the SVG maps, the plots and the replay page.

One place, so that live memory is the same green everywhere a learner looks.
A region of memory is drawn by the share of its bytes that is live: all free
is :data:`FREE`, all live is :data:`LIVE`, and anything in between is a paler
green (:data:`PARTIAL_LOW` for a little live, :data:`PARTIAL_HIGH` for
nearly all), so a region with even one free byte never looks fully live.
"""

from __future__ import annotations

__all__ = [
    "ANSI",
    "ANSI_OWNERS",
    "ANSI_SLAB_STATES",
    "CURRENT",
    "FREE",
    "FREE_BAR",
    "HIGH_WATER",
    "LARGEST",
    "LARGE_BLOCK",
    "LIVE",
    "NEXT_SLOT",
    "OWNERS",
    "PARTIAL_HIGH",
    "PARTIAL_LOW",
    "SLAB_STATES",
    "TEXT",
    "UNUSED",
    "UNUSED_HATCH",
    "owner_colour",
    "page_colours",
    "share_colour",
    "text_on",
]

LIVE = "#1e6b34"  # every byte live
PARTIAL_HIGH = "#74b87f"  # nearly every byte live
PARTIAL_LOW = "#cfe8c9"  # a few bytes live
FREE = "#ececec"  # no byte live
UNUSED = "#f7f7f7"  # never used yet (above the high-water mark): hatched with UNUSED_HATCH
UNUSED_HATCH = "#d4d4d4"
FREE_BAR = "#8a8f94"  # free blocks where they must stand out on white: bars of a chart
LARGEST = "#c0392b"  # outline of the largest free block
HIGH_WATER = "#c0392b"  # the highest byte ever used
NEXT_SLOT = "#1f5fbf"  # the slot a fixed-size slab hands out next
CURRENT = "#1f5fbf"  # the block the operation on show made or freed
TEXT = "#222222"

#: Categorical colours (Okabe and Ito's, safe for colour-blind readers) for
#: owners, size classes and slab states, in the order categories appear.
OWNERS = ("#0072b2", "#e69f00", "#cc79a7", "#009e73", "#d55e00", "#56b4e9", "#f0e442", "#7f7f7f")

#: ANSI colours for the terminal: live, partly live, free.
ANSI = {"live": "\x1b[42;30m", "partial": "\x1b[43;30m", "free": "\x1b[2m"}
#: ANSI backgrounds matching :data:`OWNERS`, one per category.
ANSI_OWNERS = (
    "\x1b[44;97m",
    "\x1b[48;5;214;30m",
    "\x1b[45;30m",
    "\x1b[42;30m",
    "\x1b[41;97m",
    "\x1b[46;30m",
    "\x1b[43;30m",
    "\x1b[47;30m",
)


def page_colours() -> dict[str, str]:
    """The colours the replay page draws with, by the names its script uses."""
    return {
        "live": LIVE,
        "partialHigh": PARTIAL_HIGH,
        "partialLow": PARTIAL_LOW,
        "free": FREE,
        "freeBar": FREE_BAR,
        "unused": UNUSED,
        "unusedHatch": UNUSED_HATCH,
        "highWater": HIGH_WATER,
        "current": CURRENT,
    }


#: Slab states: full like live memory, partial paler, empty a pale blue (held, but unused).
SLAB_STATES = {"full": LIVE, "partial": PARTIAL_HIGH, "empty": "#d6e4f5"}
#: The same states on a terminal: green, yellow (as a partly live cell), cyan.
ANSI_SLAB_STATES = {"full": ANSI["live"], "partial": ANSI["partial"], "empty": "\x1b[46;30m"}
#: A block of a slab cache too large for any size class, beside its slabs.
LARGE_BLOCK = OWNERS[1]


def text_on(colour: str) -> str:
    """Black or white, whichever reads better on ``colour`` (by its luminance).

    >>> text_on(LIVE), text_on(FREE), text_on("#f0e442")
    ('white', '#333', '#333')
    """
    red, green, blue = _rgb(colour)
    return "#333" if 0.299 * red + 0.587 * green + 0.114 * blue > 150 else "white"


def owner_colour(index: int) -> str:
    """The colour of the ``index``-th category (the palette repeats after eight).

    >>> owner_colour(0), owner_colour(8) == owner_colour(0)
    ('#0072b2', True)
    """
    return OWNERS[index % len(OWNERS)]


def share_colour(share: float) -> str:
    """The colour of a region whose bytes are ``share`` live (0 to 1).

    >>> share_colour(0.0) == FREE, share_colour(1.0) == LIVE
    (True, True)
    >>> share_colour(0.999) != LIVE  # one free byte shows
    True
    """
    if share <= 0:
        return FREE
    if share >= 1:
        return LIVE
    low, high = _rgb(PARTIAL_LOW), _rgb(PARTIAL_HIGH)
    mixed = (round(a + (b - a) * share) for a, b in zip(low, high, strict=True))
    return "#" + "".join(f"{channel:02x}" for channel in mixed)


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
