"""The ``slaballoc`` command: ``demo``, ``bench`` and ``replay``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import __version__
from .demo import KINDS, SCENARIOS, DemoFailedError, run_demo, state_after
from .render import svg_map, use_colour
from .timing import Progress, no_progress

__all__ = ["build_parser", "main", "run"]


def _progress(args: argparse.Namespace) -> Progress:
    """Report progress on stderr, one line a step, unless ``--quiet``."""
    if args.quiet:
        return no_progress

    def report(done: int, total: int, label: str) -> None:
        if label:
            print(f"[{done + 1}/{total}] {label}", file=sys.stderr, flush=True)

    return report


def _output_for(path: str, trace_name: str, many: bool) -> Path:
    """``path`` itself, or with the trace's name worked in when there are several traces."""
    target = Path(path)
    if not many:
        return target
    return target.with_name(f"{target.stem}-{Path(trace_name).stem}{target.suffix}")


def _write_json(path: str | None, document: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(document, indent=2, default=str) + "\n")
        print(f"wrote {path}")


# -- demo ---------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    names = list(KINDS) if args.allocator == "all" else [args.allocator]
    colour = use_colour(sys.stdout)
    for name in names:
        try:
            run_demo(KINDS[name], sys.stdout, colour=colour)
        except DemoFailedError as failure:
            print(f"slaballoc demo: {failure}", file=sys.stderr)
            return 1
    return 0


def _map(args: argparse.Namespace) -> int:
    kind = KINDS[args.allocator]
    title, slab = state_after(kind, args.step)
    heading = f"{type(slab).__name__} after test {args.step}: {title}"
    svg = svg_map(list(slab.blocks()), slab.capacity, title=heading)
    if args.output == "-":
        sys.stdout.write(svg)
    else:
        Path(args.output).write_text(svg)
        print(f"wrote {args.output}: {heading}")
    return 0


# -- bench --------------------------------------------------------------------------------


def _bench(args: argparse.Namespace) -> int:
    from . import bench, reports, scaling

    progress = _progress(args)
    sizes = [bench.SEED_SIZE, bench.LARGE_SIZE]
    pair_slots = 65_536
    if args.quick:  # a smoke run: small sizes, few repeats
        sizes = [bench.SEED_SIZE, bench.Size("quick: 1,024 slots at 99%", 1024, 0.99, 500, 1)]
        pair_slots = 1024
    document: dict[str, Any] = {"machine": reports.machine(), "repeats": args.repeats}
    print(f"slaballoc {__version__} bench: {reports.machine_line()}\n")

    comparison = bench.run_comparison(sizes, args.repeats, progress=progress)
    print(reports.comparison_table(comparison), end="\n\n")
    document["comparison"] = comparison.times
    if args.plot:
        from .plots import PlottingUnavailableError, plot_comparison

        try:
            plot_comparison(comparison, args.plot)
        except PlottingUnavailableError as error:
            print(f"slaballoc bench: {error}", file=sys.stderr)
            return 1
        print(f"wrote {args.plot}\n")

    pairs = {
        f"{occupancy:.0%} live": bench.measure_pairs(
            pair_slots, occupancy, number=2_000 if args.quick else 20_000, repeats=args.repeats
        )
        for occupancy in (0.0, 0.99)
    }
    print(f"free(alloc()) pair at {pair_slots:,} slots (median of {args.repeats})")
    print(reports.pairs_table(pairs), end="\n\n")
    document["pairs_seconds"] = pairs

    batches = bench.measure_batches(
        pair_slots, number=30 if args.quick else 300, repeats=args.repeats
    )
    print(f"per block, 99% live, {pair_slots:,} slots (median of {args.repeats})")
    print(reports.batches_table(batches), end="\n\n")
    document["batch_seconds_per_block"] = batches

    memory = bench.measure_memory(pair_slots)
    print(f"allocator metadata per slot at {pair_slots:,} slots (tracemalloc)")
    print(reports.memory_table(memory), end="\n\n")
    document["metadata_bytes_per_slot"] = memory

    if args.scaling:
        counts = (1_000, 10_000) if args.quick else scaling.LIVE_COUNTS
        ops = 1_000 if args.quick else 10_000
        rows = scaling.run_scaling(counts, ops, args.repeats, progress=progress)
        print(
            f"scaling: one churn step (free a random block, allocate one), median of {args.repeats}"
        )
        print(reports.scaling_table(rows), end="\n\n")
        document["scaling"] = [asdict(row) for row in rows]
    _write_json(args.json, document)
    return 0


# -- replay -------------------------------------------------------------------------------


def _replay(args: argparse.Namespace) -> int:
    from . import reports
    from .replay import compare_on_trace
    from .traces import TraceFormatError, read_trace

    progress = _progress(args)
    peers = args.peers
    results = []
    many = len(args.traces) > 1
    for path in args.traces:
        try:
            trace = read_trace(path)
        except (OSError, TraceFormatError) as error:
            print(f"slaballoc replay: {error}", file=sys.stderr)
            return 2
        if args.plot or args.html:
            status = _draw_replay(args, trace, many)
            if status:
                return status
        results.append(
            compare_on_trace(
                trace,
                capacity=args.capacity,
                alignment=args.alignment,
                repeats=args.repeats,
                peers=peers,
                seed_budget=args.seed_budget,
                progress=progress,
            )
        )
    print(f"slaballoc {__version__} replay: {reports.machine_line()}")
    print(f"DynamicSlab, alignment {args.alignment}; ops/s are medians of {args.repeats} runs\n")
    print(reports.replay_table(results))
    for result in results:
        if result.audit.first_failure:
            print(f"{result.trace}: first failed request at {result.audit.first_failure}")
    _write_json(
        args.json,
        {
            "machine": reports.machine(),
            "alignment": args.alignment,
            "repeats": args.repeats,
            "traces": [result.as_dict() for result in results],
        },
    )
    return 0


def _draw_replay(args: argparse.Namespace, trace: Any, many: bool) -> int:
    from .page import replay_page
    from .plots import PlottingUnavailableError, plot_replay
    from .recording import record_replay

    recording = record_replay(trace, capacity=args.capacity, alignment=args.alignment)
    if args.html:
        target = _output_for(args.html, trace.name, many)
        target.write_text(replay_page(recording), encoding="utf-8")
        print(f"wrote {target}")
    if args.plot:
        target = _output_for(args.plot, trace.name, many)
        try:
            plot_replay(recording, target)
        except PlottingUnavailableError as error:
            print(f"slaballoc replay: {error}", file=sys.stderr)
            return 1
        print(f"wrote {target}")
    return 0


# -- the parser ---------------------------------------------------------------------------


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _peer_list(text: str) -> list[str]:
    from .replay import PEERS

    names = [] if text == "none" else [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in PEERS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown peer {unknown[0]!r}: choose from {', '.join(PEERS)}, or none"
        )
    return names


def _add_output_options(command: argparse.ArgumentParser, *, plot: str) -> None:
    """The options every measuring command shares."""
    command.add_argument("--json", metavar="FILE", help="also write the numbers to FILE")
    command.add_argument("--plot", metavar="FILE", help=plot + " (needs matplotlib)")
    command.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def build_parser() -> argparse.ArgumentParser:
    """The command line, one sub-command per job."""
    parser = argparse.ArgumentParser(
        prog="slaballoc",
        description="Slab and best-fit allocators inside one flat byte buffer.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="walk through the seed's eleven scenarios",
        description="Walk through the seed's eleven scenarios for one allocator or all three.",
    )
    demo.add_argument("allocator", choices=[*KINDS, "all"], nargs="?", default="all")
    demo.set_defaults(run=_demo)

    map_ = commands.add_parser(
        "map",
        help="draw the memory after a demo step as SVG",
        description="Run one of the eleven demo scenarios and draw the memory it leaves, as SVG.",
    )
    map_.add_argument("allocator", choices=list(KINDS))
    map_.add_argument("step", type=int, choices=range(1, len(SCENARIOS) + 1), metavar="STEP")
    map_.add_argument("-o", "--output", default="-", help="SVG file to write (default: stdout)")
    map_.set_defaults(run=_map)

    bench = commands.add_parser(
        "bench",
        help="the seed's linear-search versus free-list comparison",
        description=(
            "Time LinearSlab and FreeListSlab (safe and fast) beside bytearray(64) and a bare "
            "list pop/append, at the seed's size and at 65,536 slots; free(alloc()) pairs; "
            "metadata per slot; and, with --scaling, cost per operation from 1k to 1M live blocks."
        ),
    )
    bench.add_argument("--repeats", type=_positive, default=5, help="runs per case (default 5)")
    bench.add_argument("--scaling", action="store_true", help="also run the scaling table (slow)")
    bench.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    _add_output_options(bench, plot="chart the comparison to FILE (.png or .svg)")
    bench.set_defaults(run=_bench)

    replay = commands.add_parser(
        "replay",
        help="replay malloclab .rep traces through DynamicSlab and its peers",
        description=(
            "Replay allocation traces (malloclab .rep format) through DynamicSlab, beside "
            "multiprocessing.heap.Heap and the seed's own algorithm; verify every byte; report "
            "ops/s, peak live bytes, high-water mark, utilization, failures and realloc copies."
        ),
    )
    replay.add_argument("traces", nargs="+", metavar="TRACE")
    replay.add_argument("--allocator", choices=["dynamic"], default="dynamic")
    replay.add_argument("--capacity", type=_positive, help="arena bytes (default: from the trace)")
    replay.add_argument(
        "--alignment", type=_positive, default=8, help="block alignment (default 8)"
    )
    replay.add_argument("--repeats", type=_positive, default=3, help="timed runs (default 3)")
    replay.add_argument(
        "--peers",
        default=["mp", "seed"],
        type=_peer_list,
        help="peers to time beside it, comma-separated: mp, seed (default mp,seed), or none",
    )
    replay.add_argument(
        "--seed-budget",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="stop the seed's O(n) algorithm after this long per run (default 60)",
    )
    _add_output_options(replay, plot="chart live bytes, high-water mark and free blocks to FILE")
    replay.add_argument(
        "--html", metavar="FILE", help="write an animated, self-contained replay page to FILE"
    )
    replay.set_defaults(run=_replay)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    status: int = args.run(args)
    return status


def run() -> None:
    """Entry point of the installed ``slaballoc`` script."""
    sys.exit(main())
