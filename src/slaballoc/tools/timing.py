"""Fair timing on a noisy machine: alternatives interleaved, repeated, medians taken."""

from __future__ import annotations

import gc
import shutil
import statistics
import time
from collections.abc import Callable, Mapping
from typing import TextIO

__all__ = ["Progress", "interleaved", "line_progress", "no_progress", "timed"]

#: Told (done, total, label) as a long run goes on.
Progress = Callable[[int, int, str], None]


def no_progress(done: int, total: int, label: str) -> None:
    """A :data:`Progress` that says nothing."""


def line_progress(stream: TextIO) -> Progress:
    """Progress as one line on a terminal, rewritten in place; nothing when not a terminal.

    An empty label (a run that is done) clears the line, so the results that
    follow start on a clean one.  Logs and pipes get no progress at all.

    >>> import io
    >>> line_progress(io.StringIO()) is no_progress
    True
    """
    if not (hasattr(stream, "isatty") and stream.isatty()):
        return no_progress

    def report(done: int, total: int, label: str) -> None:
        text = f"[{done + 1}/{total}] {label}" if label else ""
        text = text[: shutil.get_terminal_size().columns - 1]  # a wrapped line cannot be redrawn
        stream.write(f"\r\x1b[K{text}")  # back to the line's start, erase it, write
        stream.flush()

    return report


def interleaved(
    cases: Mapping[str, Callable[[], float]],
    repeats: int,
    progress: Progress = no_progress,
) -> dict[str, float]:
    """Run every case ``repeats`` times, round-robin, and return each one's median.

    A case returns the seconds it measured itself (so that it can leave its
    set-up out).  Interleaving spreads the machine's slow moments over all
    cases instead of penalising whichever ran during them.  The garbage
    collector is paused during each case, as ``timeit`` does.
    """
    samples: dict[str, list[float]] = {name: [] for name in cases}
    total = repeats * len(cases)
    for round_ in range(repeats):
        for position, (name, case) in enumerate(cases.items()):
            progress(round_ * len(cases) + position, total, name)
            gc.collect()
            gc.disable()
            try:
                samples[name].append(case())
            finally:
                gc.enable()
    progress(total, total, "")
    return {name: statistics.median(times) for name, times in samples.items()}


def timed(action: Callable[[], object]) -> float:
    """Seconds ``action()`` took."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started
