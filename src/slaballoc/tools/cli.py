"""The ``slaballoc`` command: one function per sub-command, listed in :data:`COMMANDS`.

A sub-command is a :class:`Command`: a function that adds its arguments to
the parser and a function that runs it.  Adding one is writing those two and
a row in :data:`COMMANDS`.

Nothing a user types ends in a traceback: a mistake found by the parser or
by a command's own checks (which run before any long work) is one line on
stderr and exit status 2; a trace that cannot be replayed is reported and the
others still run; Ctrl-C is one line and status 130; a closed pipe
(``slaballoc demo | head``) ends the command quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .. import __version__
from ..errors import SlabError
from . import shm_cli, slab_bench, slabinfo_cli
from .arguments import (
    USAGE_ERROR,
    CommandLineError,
    check_output,
    positive,
    power_of_two,
    seconds,
    warn,
    write_json,
)
from .demo import KINDS, SCENARIOS, DemoFailedError, print_notation, run_demo, state_after
from .render import svg_map_of, use_colour
from .timing import Progress, line_progress, no_progress

if TYPE_CHECKING:
    from .replay import TraceComparison
    from .traces import Trace

__all__ = ["COMMANDS", "Command", "CommandLineError", "build_parser", "main", "run"]

#: Exit statuses besides 0 (done), 1 (done, but something failed) and USAGE_ERROR.
INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process Ctrl-C stopped
BROKEN_PIPE = 141  # 128 + SIGPIPE


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (argparse's add the usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: {message} (see {self.prog} --help)\n")


# -- shared checks and helpers ----------------------------------------------------------


def _progress(args: argparse.Namespace) -> Progress:
    """Progress on stderr: one line updated in place on a terminal; none with ``--quiet``."""
    return no_progress if args.quiet else line_progress(sys.stderr)


def _check_plotting(option: str) -> None:
    """Refuse ``--plot`` at once when matplotlib is missing, not after a long run."""
    from .plots import PlottingUnavailableError, require_pyplot

    try:
        require_pyplot()  # the one place that loads matplotlib and says if it cannot
    except PlottingUnavailableError as error:
        # Status 1, not 2: the command line was right, this installation lacks an extra.
        raise CommandLineError(f"{option}: {error}", status=1) from None


def _output_for(path: str, trace_name: str, many: bool) -> Path:
    """``path`` itself, or with the trace's name worked in when there are several traces."""
    target = Path(path)
    if not many:
        return target
    return target.with_name(f"{target.stem}-{Path(trace_name).stem}{target.suffix}")


def _add_output_options(command: argparse.ArgumentParser, *, plot: str) -> None:
    """The options every measuring command shares."""
    command.add_argument("--json", metavar="FILE", help="also write the numbers to FILE")
    command.add_argument("--plot", metavar="FILE", help=plot + " (needs matplotlib)")
    command.add_argument(
        "--quiet",
        action="store_true",
        help="no progress line on stderr (there is none anyway when stderr is not a terminal)",
    )


# -- demo ---------------------------------------------------------------------------------


def _demo_arguments(demo: argparse.ArgumentParser) -> None:
    demo.add_argument(
        "allocator",
        choices=[*KINDS, "all", "shared", "slab"],
        nargs="?",
        default="all",
        help="which allocator to walk through (default: all three); shared: several processes "
        "sharing one SharedHeap, one of them killed mid-work; slab: a SlabCache's slabs filling "
        "and emptying",
    )
    demo.add_argument(
        "--svg",
        metavar="FILE",
        help="slab and shared only: also draw the map of the step that shows the most as SVG "
        "(slab: step 4, every state of a slab; shared: step 3, a killed process's blocks)",
    )


def _demo(args: argparse.Namespace) -> int:
    colour = use_colour(sys.stdout)
    if args.svg is not None and args.allocator not in ("shared", "slab"):
        raise CommandLineError("--svg draws the slab and shared demos only (see slaballoc map)")
    check_output(args.svg, "--svg")
    svg = None if args.svg is None else Path(args.svg)
    if args.allocator == "shared":
        from .shared_demo import run_shared_demo

        run_shared_demo(sys.stdout, colour=colour, svg=svg)
        return 0
    if args.allocator == "slab":
        from .slab_demo import run_slab_demo

        try:
            run_slab_demo(sys.stdout, colour=colour, svg=svg)
        except DemoFailedError as failure:
            warn("demo", str(failure))
            return 1
        return 0
    names = list(KINDS) if args.allocator == "all" else [args.allocator]
    print_notation(sys.stdout)
    for name in names:
        try:
            run_demo(KINDS[name], sys.stdout, colour=colour)
        except DemoFailedError as failure:
            warn("demo", str(failure))
            return 1
    return 0


# -- map ----------------------------------------------------------------------------------


def _map_arguments(map_: argparse.ArgumentParser) -> None:
    map_.add_argument("allocator", choices=list(KINDS), help="which allocator to draw")
    map_.add_argument(
        "step",
        type=int,
        choices=range(1, len(SCENARIOS) + 1),
        metavar="STEP",
        help=f"the demo scenario (1 to {len(SCENARIOS)}) whose memory to draw",
    )
    map_.add_argument("-o", "--output", default="-", help="SVG file to write (default: stdout)")


def _map(args: argparse.Namespace) -> int:
    check_output(args.output, "-o")
    kind = KINDS[args.allocator]
    title, slab = state_after(kind, args.step)
    heading = f"{type(slab).__name__} after test {args.step}: {title}"
    svg = svg_map_of(slab, title=heading)
    if args.output == "-":
        sys.stdout.write(svg)
    else:
        Path(args.output).write_text(svg)
        print(f"wrote {args.output}: {heading}")
    return 0


# -- bench --------------------------------------------------------------------------------


def _bench_arguments(bench: argparse.ArgumentParser) -> None:
    bench.add_argument("--repeats", type=positive, default=5, help="runs per case (default 5)")
    bench.add_argument("--scaling", action="store_true", help="also run the scaling table (slow)")
    bench.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    slab_bench.add_options(bench)
    bench.add_argument(
        "--shared", action="store_true", help="measure SharedHeap across processes instead"
    )
    _add_output_options(bench, plot="chart the comparison to FILE (.png or .svg)")


def _bench(args: argparse.Namespace) -> int:
    check_output(args.json, "--json")
    check_output(args.plot, "--plot")
    if args.plot:
        _check_plotting("--plot")
    from . import bench, reports, scaling

    progress = _progress(args)
    if args.slab:
        return slab_bench.main(args, progress)
    if args.shared:
        from .shared_bench import bench_command

        return bench_command(
            repeats=args.repeats, quick=args.quick, json_path=args.json, progress=progress
        )
    sizes = [bench.SEED_SIZE, bench.LARGE_SIZE]
    pair_slots = 65_536
    if args.quick:  # a smoke run: small sizes, few repeats
        sizes = [bench.SEED_SIZE, bench.Size("quick: 1,024 slots at 99%", 1024, 0.99, 500, 1)]
        pair_slots = 1024
    document: dict[str, Any] = {"machine": reports.machine(), "repeats": args.repeats}
    print(f"slaballoc {__version__} bench: {reports.machine_line()}\n", flush=True)

    comparison = bench.run_comparison(sizes, args.repeats, progress=progress)
    print(reports.comparison_table(comparison), end="\n\n")
    document["comparison"] = comparison.times
    if args.plot:
        from .plots import plot_comparison

        plot_comparison(comparison, args.plot)
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
    write_json(args.json, document)
    return 0


# -- replay -------------------------------------------------------------------------------


def _peer_list(text: str) -> list[str]:
    from .replay import PEERS

    names = [] if text == "none" else [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in PEERS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown peer {unknown[0]!r}: choose from {', '.join(PEERS)}, or none"
        )
    return names


def _replay_arguments(replay: argparse.ArgumentParser) -> None:
    replay.add_argument(
        "traces",
        nargs="*",
        metavar="TRACE",
        help="a .rep or .rep.gz trace file, or sample:NAME for a trace shipped with slaballoc",
    )
    replay.add_argument(
        "--list-samples", action="store_true", help="list the sample traces and stop"
    )
    replay.add_argument(
        "--allocator",
        choices=["dynamic"],
        default="dynamic",
        help="the allocator to replay through (DynamicSlab, the only variable-size one)",
    )
    replay.add_argument("--capacity", type=positive, help="arena bytes (default: from the trace)")
    replay.add_argument(
        "--alignment",
        type=power_of_two,
        default=8,
        help="block alignment, a power of two (default 8)",
    )
    replay.add_argument("--repeats", type=positive, default=3, help="timed runs (default 3)")
    replay.add_argument(
        "--peers",
        default=["mp", "seed"],
        type=_peer_list,
        help="peers to time beside it, comma-separated: mp, seed (default mp,seed), or none",
    )
    replay.add_argument(
        "--seed-budget",
        type=seconds,
        default=60.0,
        metavar="SECONDS",
        help="stop the seed's O(n) algorithm after this long per run (default 60)",
    )
    _add_output_options(replay, plot="chart live bytes, high-water mark and free blocks to FILE")
    replay.add_argument(
        "--html", metavar="FILE", help="write an animated, self-contained replay page to FILE"
    )


def _list_samples() -> int:
    from .samples import PREFIX, SAMPLES
    from .tables import format_table

    rows = [[PREFIX + name, description] for name, description in SAMPLES.items()]
    print(format_table(["TRACE", "the first 20,000 operations of"], rows))
    return 0


def _replay(args: argparse.Namespace) -> int:
    if args.list_samples:
        return _list_samples()
    if not args.traces:
        raise CommandLineError(
            "name at least one TRACE: a .rep or .rep.gz file, or sample:NAME (see --list-samples)"
        )
    for path, option in ((args.json, "--json"), (args.plot, "--plot"), (args.html, "--html")):
        check_output(path, option)
    if args.plot:
        _check_plotting("--plot")
    from . import reports

    results = []
    errors: list[dict[str, str]] = []
    for argument in args.traces:
        try:
            results.append(_replay_one(args, argument))
        except (OSError, SlabError, MemoryError, OverflowError) as error:
            message = _replay_error(argument, error, args.capacity)
            warn("replay", message)
            errors.append({"trace": argument, "error": message})
    if results:
        print(f"slaballoc {__version__} replay: {reports.machine_line()}")
        print(
            f"DynamicSlab, alignment {args.alignment}; ops/s are medians of {args.repeats} runs\n"
        )
        print(reports.replay_table(results))
        for line in reports.replay_notes(results):
            print(line)
    write_json(
        args.json,
        {
            "machine": reports.machine(),
            "alignment": args.alignment,
            "repeats": args.repeats,
            "traces": [result.as_dict() for result in results],
            "errors": errors,
        },
    )
    if errors and len(args.traces) > 1:
        warn("replay", f"{len(errors)} of {len(args.traces)} traces could not be replayed")
    return USAGE_ERROR if errors else 0


def _replay_one(args: argparse.Namespace, argument: str) -> TraceComparison:
    from .replay import check_capacity, compare_on_trace
    from .samples import read_trace_argument

    trace = read_trace_argument(argument)
    if args.capacity is not None:
        check_capacity(trace, args.capacity, args.alignment)
    if args.html or args.plot:
        _draw_replay(args, trace)
    return compare_on_trace(
        trace,
        capacity=args.capacity,
        alignment=args.alignment,
        repeats=args.repeats,
        peers=args.peers,
        seed_budget=args.seed_budget,
        progress=_progress(args),
    )


def _draw_replay(args: argparse.Namespace, trace: Trace) -> None:
    """Write ``--html`` and ``--plot`` for one trace, from one recorded replay."""
    from .recording import record_replay

    recording = record_replay(trace, capacity=args.capacity, alignment=args.alignment)
    many = len(args.traces) > 1
    if args.html:
        from .page import replay_page

        target = _output_for(args.html, trace.name, many)
        target.write_text(replay_page(recording), encoding="utf-8")
        print(f"wrote {target}")
    if args.plot:
        from .plots import plot_replay

        target = _output_for(args.plot, trace.name, many)
        plot_replay(recording, target)
        print(f"wrote {target}")


def _replay_error(argument: str, error: BaseException, capacity: int | None) -> str:
    """One line saying why ``argument`` could not be replayed."""
    if isinstance(error, OSError) and error.strerror:
        return f"cannot read {argument}: {error.strerror}"
    if isinstance(error, (MemoryError, OverflowError)) and not isinstance(error, SlabError):
        advice = "try a smaller --capacity" if capacity else "the trace needs a larger machine"
        return f"{argument}: not enough memory for the replay's arena; {advice}"
    return str(error) or f"{argument}: {type(error).__name__}"


# -- the table of sub-commands ------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One sub-command: its name, its help, how it takes arguments, and what it does."""

    name: str
    summary: str  # one line, for ``slaballoc --help``
    description: str  # for ``slaballoc NAME --help``
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: list[Command] = [
    Command(
        "demo",
        "walk through the seed's eleven scenarios",
        "Walk through the seed's eleven scenarios for one allocator or all three.",
        _demo_arguments,
        _demo,
    ),
    Command(
        "map",
        "draw the memory after a demo step as SVG",
        "Run one of the eleven demo scenarios and draw the memory it leaves, as SVG.",
        _map_arguments,
        _map,
    ),
    Command(
        "bench",
        "the seed's linear-search versus free-list comparison",
        "Time LinearSlab and FreeListSlab (safe and fast) beside bytearray(64) and a bare "
        "list pop/append, at the seed's size and at 65,536 slots; free(alloc()) pairs; "
        "metadata per slot; and, with --scaling, cost per operation from 1k to 1M live blocks.",
        _bench_arguments,
        _bench,
    ),
    Command(
        "replay",
        "replay malloclab .rep traces through DynamicSlab and its peers",
        "Replay allocation traces (malloclab .rep format, or .rep.gz) through DynamicSlab, "
        "beside multiprocessing.heap.Heap and the seed's own algorithm; verify every byte; "
        "report ops/s, peak live bytes, high-water mark, utilization, failures, realloc copies "
        "and anything the trace itself did wrong (double frees, say). Sample traces ship with "
        "slaballoc: sample:NAME (see --list-samples).",
        _replay_arguments,
        _replay,
    ),
    Command(
        "slabinfo",
        "replay a trace through SlabCache and show its classes, like slabtop",
        "Replay an allocation trace (a .rep file or sample:NAME) through a SlabCache and print "
        "one line per size class as the trace leaves it: active and cached objects, slabs, "
        "rounding waste, magazine hits and misses.",
        slabinfo_cli.add_arguments,
        slabinfo_cli.run,
    ),
    Command(
        "shm",
        "list, inspect or remove shared heaps (SharedHeap) in /dev/shm",
        "The SharedHeap segments in /dev/shm: list them, inspect one, remove one.",
        shm_cli.add_arguments,
        shm_cli.run,
    ),
]


def build_parser() -> argparse.ArgumentParser:
    """The command line, one sub-command per row of :data:`COMMANDS`."""
    parser = _Parser(
        prog="slaballoc",
        description="Slab and best-fit allocators inside one flat byte buffer.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(
            command.name, help=command.summary, description=command.description
        )
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except CommandLineError as error:
        warn(args.command, str(error))
        return error.status
    except KeyboardInterrupt:
        # On a terminal, first erase the progress line the interruption cut short.
        erase = "\r\x1b[K" if sys.stderr.isatty() else ""
        print(f"{erase}slaballoc {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # The reader left (``| head``): say nothing, and send what is still
        # buffered nowhere, so that Python's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return BROKEN_PIPE
    except OSError as error:  # writing a result failed after the checks passed: disk full, say
        warn(args.command, f"cannot write {error.filename or 'the output'}: {error.strerror}")
        return 1
    return status


def run() -> None:
    """Entry point of the installed ``slaballoc`` script."""
    sys.exit(main())
