"""Benchmark and replay results as text tables and as JSON-ready dicts."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, Sequence

from .bench import SCENARIOS, SeedComparison
from .replay import TraceComparison
from .scaling import ScalingRow
from .tables import format_table

__all__ = [
    "batches_table",
    "comparison_table",
    "machine",
    "machine_line",
    "memory_table",
    "pairs_table",
    "replay_table",
    "scaling_table",
]


def machine() -> dict[str, str | int]:
    """What the numbers were measured on."""
    return {
        "python": platform.python_implementation() + " " + platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count() or 0,
    }


def machine_line() -> str:
    info = machine()
    return f"{info['python']} on {info['platform']}, {info['cpus']} CPUs"


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if not numerator or not denominator:
        return "-"
    return f"{numerator / denominator:.2f}x"


def comparison_table(result: SeedComparison) -> str:
    """The seed's table: each scenario's time per contender, and Linear over FreeList."""
    parts = []
    for label, table in result.times.items():
        names = list(table["overall"])
        unit, scale = ("ms", 1e3) if "large" in label else ("us", 1e6)
        rows = []
        for scenario in (*SCENARIOS, "overall"):
            times = table[scenario]
            rows.append(
                [
                    scenario,
                    *(f"{times[name] * scale:,.1f}" for name in names),
                    _ratio(times["LinearSlab"], times["FreeListSlab"]),
                ]
            )
        headers = ["scenario", *names, "Linear/FreeList"]
        parts.append(
            f"{label} ({unit}, median of {result.repeats})\n" + format_table(headers, rows)
        )
    return "\n\n".join(parts)


def pairs_table(pairs: Mapping[str, Mapping[str, float]]) -> str:
    """``free(alloc())`` pair cost at each occupancy, with the ratio to ``bytearray(64)``."""
    occupancies = list(pairs)
    names = list(next(iter(pairs.values())))
    rows = []
    for name in names:
        row: list[object] = [name]
        for occupancy in occupancies:
            seconds = pairs[occupancy][name]
            row += [f"{seconds * 1e9:,.0f}", _ratio(seconds, pairs[occupancy]["bytearray"])]
        rows.append(row)
    headers = ["contender"]
    for occupancy in occupancies:
        headers += [f"ns, {occupancy}", "x bytearray"]
    return format_table(headers, rows)


def batches_table(batches: Mapping[str, float]) -> str:
    """Seconds per block of each way of allocating and freeing, fastest first."""
    rows = [
        [name, f"{seconds * 1e9:,.1f}"]
        for name, seconds in sorted(batches.items(), key=lambda item: item[1])
    ]
    return format_table(["way", "ns per block"], rows)


def memory_table(memory: Mapping[str, Mapping[str, float]]) -> str:
    """Metadata bytes per slot, idle and full."""
    rows = [[name, f"{m['idle']:.1f}", f"{m['full']:.1f}"] for name, m in memory.items()]
    return format_table(["design", "idle B/slot", "full B/slot"], rows)


def scaling_table(rows: Sequence[ScalingRow]) -> str:
    """Per-op cost by live-block count, one column per contender, and growth from the first."""
    names = list(dict.fromkeys(row.contender for row in rows))
    counts = sorted({row.live for row in rows})
    cost = {(row.contender, row.live): row.seconds_per_op for row in rows}
    table = []
    for live in counts:
        line: list[object] = [f"{live:,}"]
        for name in names:
            seconds = cost.get((name, live))
            line.append("skipped" if seconds is None else f"{seconds * 1e9:,.0f}")
        table.append(line)
    growth: list[object] = [f"growth {counts[0]:,} -> {counts[-1]:,}"]
    for name in names:
        first, last = cost.get((name, counts[0])), cost.get((name, counts[-1]))
        growth.append(_ratio(last, first))
    table.append(growth)
    return format_table(["live blocks", *(f"{name} ns/op" for name in names)], table)


_SHORT_NAMES = {"multiprocessing.heap": "mp.heap", "seed algorithm": "seed"}


def replay_table(results: Sequence[TraceComparison]) -> str:
    """One row per trace: our speed, the peers' and the memory figures."""
    peers = list(dict.fromkeys(name for r in results for name in r.timings if name != "ours"))
    rows = []
    for r in results:
        ours, audit = r.timings["ours"], r.audit
        row: list[object] = [r.trace, f"{audit.ops:,}", f"{ours.ops_per_second:,.0f}"]
        for name in peers:
            timing = r.timings.get(name)
            if timing is None:
                row += ["-", "-"]
                continue
            mark = "" if timing.finished else "*"
            row += [
                f"{timing.ops_per_second:,.0f}{mark}",
                _ratio(ours.ops_per_second, timing.ops_per_second),
            ]
        row += [
            f"{audit.peak_live:,}",
            f"{audit.high_water:,}",
            f"{audit.utilization:.2%}",
            f"{audit.failed}",
            f"{audit.realloc_copies:,}",
        ]
        rows.append(row)
    headers = ["trace", "ops", "ours ops/s"]
    for name in peers:
        short = _SHORT_NAMES.get(name, name)
        headers += [f"{short} ops/s", f"ours/{short}"]
    headers += ["peak live B", "high-water B", "utilization", "failed", "realloc moves"]
    text = format_table(headers, rows)
    if any(not t.finished for r in results for t in r.timings.values()):
        text += "\n* stopped at its time budget; ops/s over the operations it did"
    return text
