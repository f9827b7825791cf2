"""Charts of a replay and of the seed comparison, with matplotlib (an optional extra).

``pip install 'slaballoc[plot]'`` brings matplotlib; without it these
functions raise :class:`PlottingUnavailableError`, which says so, and the rest
of slaballoc works as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .bench import SCENARIOS, SeedComparison
from .recording import Recording

__all__ = ["PlottingUnavailableError", "plot_comparison", "plot_replay"]

LIVE_COLOUR = "#3a7d44"
HIGH_WATER_COLOUR = "#c0392b"


class PlottingUnavailableError(RuntimeError):
    """matplotlib is not installed."""


def _pyplot() -> Any:
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
    """Live bytes, high-water mark and free-block count over the replay, and the map at the peak.

    The format follows the file name's extension (``.png``, ``.svg``, ...).
    """
    plt = _pyplot()
    figure, (series, strip) = plt.subplots(
        2, 1, figsize=(10, 5.5), gridspec_kw={"height_ratios": [4, 1]}
    )
    ops = [frame.op + 1 for frame in recording.frames]
    mib = 1 / (1 << 20)
    series.plot(ops, [f.live_bytes * mib for f in recording.frames], LIVE_COLOUR, label="live")
    series.plot(
        ops,
        [f.high_water * mib for f in recording.frames],
        HIGH_WATER_COLOUR,
        label="high-water mark",
    )
    series.set_xlabel("operation")
    series.set_ylabel("MiB")
    series.set_title(f"{recording.trace}: {recording.ops:,} operations through DynamicSlab")
    counts = series.twinx()
    counts.plot(
        ops,
        [f.free_blocks for f in recording.frames],
        "#7f8c8d",
        linewidth=0.8,
        label="free blocks",
    )
    counts.set_ylabel("free blocks")
    lines = series.get_legend_handles_labels()
    more = counts.get_legend_handles_labels()
    series.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left")
    peak = recording.peak_frame()
    strip.imshow(
        [list(peak.cells)],
        aspect="auto",
        cmap="Greens",
        vmin=0,
        vmax=255,
        extent=(0, recording.span * mib, 0, 1),
        interpolation="nearest",
    )
    strip.set_yticks([])
    strip.set_xlabel("offset (MiB)")
    strip.set_title(
        f"memory at the peak (operation {peak.op + 1:,}): darker = more of it live", fontsize=10
    )
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def plot_comparison(comparison: SeedComparison, path: str | Path) -> None:
    """The seed comparison as grouped bars, one panel per size, log scale."""
    plt = _pyplot()
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
