"""Charts of a replay and of the seed comparison, with matplotlib (an optional extra).

``pip install 'slaballoc[plot]'`` brings matplotlib; without it these
functions raise :class:`PlottingUnavailableError`, which says so, and the rest
of slaballoc works as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import palette
from .bench import SCENARIOS, SeedComparison
from .recording import Frame, Recording
from .render import share_grid

__all__ = ["PlottingUnavailableError", "plot_comparison", "plot_replay", "require_pyplot"]

_MAP_COLUMNS, _MAP_ROWS = 256, 64  # the map under the replay plot: at most this many cells


class PlottingUnavailableError(RuntimeError):
    """matplotlib is not installed."""


def require_pyplot() -> Any:
    """matplotlib's pyplot, drawing to files; :class:`PlottingUnavailableError` if it is missing."""
    try:
        import matplotlib  # noqa: PLC0415 - an optional dependency, imported when asked for

        matplotlib.use("Agg")  # draw to files; no display needed
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        raise PlottingUnavailableError(
            "plots need matplotlib, an optional extra: pip install 'slaballoc[plot]'"
        ) from None
    return plt


def plot_replay(recording: Recording, path: str | Path) -> None:
    """Live bytes, high-water mark and free blocks over the replay; below, two memory maps.

    The maps are memory in two dimensions, like the replay page's: rows of
    the arena read like text, each cell a fixed number of bytes coloured by
    the share of them that is live, so holes show at any scale.  One is the
    memory at the peak of live bytes, the other when it held the most free
    blocks (its most fragmented moment).  The format follows the file name's
    extension (``.png``, ``.svg``, ...).
    """
    plt = require_pyplot()
    from matplotlib.patches import Patch  # noqa: PLC0415 - optional, as above

    if not recording.frames:  # an empty trace: say so, rather than draw empty axes
        figure, axis = plt.subplots(figsize=(6, 1.5))
        axis.axis("off")
        axis.text(0.5, 0.5, f"{recording.trace.name}: no operations", ha="center", va="center")
        figure.savefig(path)
        plt.close(figure)
        return

    figure, axes = plt.subplot_mosaic(
        [["series", "series"], ["peak", "holes"]],
        figsize=(11, 9),
        gridspec_kw={"height_ratios": [3, 2.8]},
    )
    series = axes["series"]
    ops = [frame.op + 1 for frame in recording.frames]
    mib = 1 / (1 << 20)
    series.plot(ops, [f.live_bytes * mib for f in recording.frames], palette.LIVE, label="live")
    series.plot(
        ops,
        [f.high_water * mib for f in recording.frames],
        palette.HIGH_WATER,
        label="high-water mark",
    )
    series.set_xlabel("operation")
    series.xaxis.set_major_formatter("{x:,.0f}")
    series.set_ylabel("MiB")
    series.set_title(f"{recording.trace.name}: {recording.ops:,} operations through DynamicSlab")
    counts = series.twinx()
    counts.plot(
        ops,
        [f.free_blocks for f in recording.frames],
        palette.FREE_BAR,
        linewidth=0.8,
        label="free blocks",
    )
    counts.set_ylabel("free blocks")
    lines = series.get_legend_handles_labels()
    more = counts.get_legend_handles_labels()
    series.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left")
    peak = recording.peak_frame()
    holes = max(recording.frames, key=lambda frame: (frame.free_blocks, -frame.op))
    for name, frame, what in (("peak", peak, "at the peak"), ("holes", holes, "most free blocks")):
        _draw_map(axes[name], recording, frame, what)
        series.axvline(frame.op + 1, color=palette.TEXT, linewidth=0.6, linestyle=":")
    figure.legend(
        handles=[
            Patch(color=palette.LIVE, label="every byte live"),
            Patch(color=palette.share_colour(0.75), label="partly live (paler: more free)"),
            Patch(color=palette.share_colour(0.25)),
            Patch(color=palette.FREE, label="free"),
        ],
        labels=["every byte live", "3/4 live", "1/4 live", "free"],
        loc="lower center",
        ncols=4,
        frameon=False,
    )
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    figure.savefig(path)
    plt.close(figure)


def _draw_map(axis: Any, recording: Recording, frame: Frame, what: str) -> None:
    """The memory after ``frame`` in two dimensions, at most _MAP_COLUMNS by _MAP_ROWS cells."""
    from matplotlib.colors import ListedColormap  # noqa: PLC0415 - optional, as above

    columns = _MAP_COLUMNS
    cell_bytes = max(1, -(-recording.span // (columns * _MAP_ROWS)))
    rows = -(-recording.span // (columns * cell_bytes))
    grid = share_grid(
        recording.blocks_after(frame.op), cell_bytes=cell_bytes, columns=columns, rows=rows
    )
    shades = ListedColormap([palette.share_colour(k / 255) for k in range(256)])
    row_bytes = columns * cell_bytes
    axis.imshow(
        grid,
        aspect="auto",
        cmap=shades,
        vmin=0,
        vmax=1,
        extent=(0, row_bytes / 1024, rows * row_bytes / (1 << 20), 0),
        interpolation="nearest",
    )
    axis.set_xlabel("offset within the row (KiB)")
    axis.set_ylabel("row's first offset (MiB)")
    axis.set_title(
        f"{what}: operation {frame.op + 1:,}, {frame.free_blocks:,} free blocks\n"
        f"{rows} rows of {row_bytes:,} B, read like text; each cell {cell_bytes:,} B",
        fontsize=9.5,
    )


def plot_comparison(comparison: SeedComparison, path: str | Path) -> None:
    """The seed comparison as grouped bars, one panel per size, log scale."""
    plt = require_pyplot()
    sizes = list(comparison.times)
    figure, axes = plt.subplots(len(sizes), 1, figsize=(11, 4.2 * len(sizes)), squeeze=False)
    scenarios = [*SCENARIOS, "overall"]
    for axis, label in zip(axes[:, 0], sizes, strict=True):
        table = comparison.times[label]
        names = list(table["overall"])
        width = 0.8 / len(names)
        for position, name in enumerate(names):
            xs = [i + (position - (len(names) - 1) / 2) * width for i in range(len(scenarios))]
            axis.bar(xs, [table[s][name] * 1e6 for s in scenarios], width, label=name)
        axis.set_yscale("log")
        axis.set_xticks(range(len(scenarios)), scenarios)
        axis.set_ylabel("microseconds (log scale)")
        axis.set_title(label)
        axis.legend(fontsize=8, ncols=3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
