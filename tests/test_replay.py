"""Trace replay: timing for every contender, and the verified audit."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from slaballoc import DynamicSlab
from slaballoc.tools import cli
from slaballoc.tools.interpreter import TraceInterpreter, peak_live_bytes
from slaballoc.tools.peers import DynamicContender, MultiprocessingHeap, SeedDynamic
from slaballoc.tools.replay import (
    CapacityTooSmallError,
    Contender,
    ReplayCorruptionError,
    audit_replay,
    capacity_for,
    check_capacity,
    compare_on_trace,
    pattern,
    time_replay,
)
from slaballoc.tools.traces import Trace, parse_trace


def random_trace(ops: int = 3000, seed: int = 7) -> Trace:
    """A synthetic trace with allocs, reallocs and frees of mixed sizes."""
    rng = random.Random(seed)
    lines: list[str] = []
    live: list[int] = []
    next_id = 0
    for _ in range(ops):
        roll = rng.random()
        if live and roll < 0.4:
            lines.append(f"f {live.pop(rng.randrange(len(live)))}")
        elif live and roll < 0.5:
            lines.append(f"r {rng.choice(live)} {rng.randint(1, 3000)}")
        else:
            lines.append(f"a {next_id} {rng.randint(1, 2000)}")
            live.append(next_id)
            next_id += 1
    header = f"0\n{next_id}\n{len(lines)}\n1\n"
    return parse_trace(header + "\n".join(lines) + "\n", "random.rep")


def test_audit_verifies_bytes_and_measures_memory() -> None:
    trace = random_trace()
    audit = audit_replay(trace)
    assert audit.failed == 0 and audit.first_failure is None
    assert audit.peak_live == peak_live_bytes(trace)
    assert audit.peak_live <= audit.high_water <= audit.capacity
    assert 0.5 < audit.utilization <= 1.0
    assert audit.realloc_copies > 0
    assert audit.verified_bytes > 0


def test_audit_reports_the_first_failure() -> None:
    trace = parse_trace("0\n3\n3\n1\na 0 64\na 1 64\na 2 64\n", "small.rep")
    audit = audit_replay(trace, capacity=128)
    assert audit.failed == 1
    assert audit.first_failure == "op 3: a 2 64"


def test_audit_catches_corruption(monkeypatch: pytest.MonkeyPatch) -> None:
    # A realloc that forgot to copy must be caught, not reported as a success.
    def forgetful_realloc(self: DynamicSlab, view: memoryview, size: int) -> memoryview:
        moved = self.alloc(size)
        self.free(view)
        return moved

    monkeypatch.setattr(DynamicSlab, "realloc", forgetful_realloc)
    trace = parse_trace("0\n2\n3\n1\na 0 64\na 1 64\nr 0 200\n", "r.rep")
    with pytest.raises(ReplayCorruptionError, match=r"r.rep, op 3 \(r 0 200\): realloc lost"):
        audit_replay(trace)


def anomalous_trace(ops: int, seed: int) -> Trace:
    """Random operations on a few ids, with no care for liveness: every anomaly occurs."""
    rng = random.Random(seed)
    lines = []
    for _ in range(ops):
        ident = rng.randrange(-1, 12)
        roll = rng.random()
        if roll < 0.35 or ident < 0:
            lines.append(f"f {ident}")
        else:
            kind = "a" if roll < 0.7 else "r"
            lines.append(f"{kind} {ident} {rng.choice([0, 1, 24, 100, 700, 3000])}")
    return parse_trace(f"0\n12\n{ops}\n1\n" + "\n".join(lines) + "\n", "anomalous.rep")


class CallLog:
    """A contender that refuses large requests and writes down every call it serves."""

    name = "log"

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.handles = 0

    def alloc(self, size: int) -> int:
        if size > 2000:
            raise MemoryError
        self.handles += 1
        self.calls.append(("alloc", size, self.handles))
        return self.handles

    def free(self, handle: int) -> None:
        self.calls.append(("free", handle))

    def realloc(self, handle: int, size: int) -> int:
        if size > 2000:
            raise MemoryError
        self.handles += 1
        self.calls.append(("realloc", handle, size, self.handles))
        return self.handles


class ThroughInterpreter:
    """A contender driven by the interpreter: its handles kept by id."""

    def __init__(self, contender: CallLog) -> None:
        self.contender = contender
        self.handles: dict[int, int] = {}

    def alloc(self, ident: int, size: int) -> None:
        self.handles[ident] = self.contender.alloc(size or 1)

    def free(self, ident: int) -> None:
        self.contender.free(self.handles.pop(ident))

    def realloc(self, ident: int, size: int) -> None:
        self.handles[ident] = self.contender.realloc(self.handles[ident], size or 1)


@pytest.mark.parametrize("seed", range(20))
def test_the_timed_loop_makes_exactly_the_interpreters_calls(seed: int) -> None:
    trace = anomalous_trace(400, seed) if seed % 2 else random_trace(400, seed)
    timed, interpreted = CallLog(), CallLog()
    timing = time_replay(trace, timed)
    target = ThroughInterpreter(interpreted)
    tally = TraceInterpreter(trace, target).run()
    for ident in sorted(target.handles):  # time_replay frees what is left, by id, at the end
        interpreted.free(target.handles[ident])
    assert timed.calls == interpreted.calls
    assert timing.failed == tally.failed
    if seed % 2:
        assert tally.anomalies and tally.failed  # the comparison covered both


def test_audit_counts_anomalies() -> None:
    trace = parse_trace("0\n2\n5\n1\na 0 8\nf 0\nf 0\na 1 8\na 1 8\n", "odd.rep")
    audit = audit_replay(trace)
    assert {kind: (a.count, a.first) for kind, a in audit.anomalies.items()} == {
        "double free": (1, "op 3"),
        "alloc of a live id": (1, "op 5"),
    }
    assert audit.peak_live == 8 and audit.verified_bytes == 8


def test_audit_survives_every_anomaly_and_failure() -> None:
    for seed in range(5):
        trace = anomalous_trace(600, seed)
        audit = audit_replay(trace, capacity=8192)
        assert audit.anomalies
        assert audit.failed > 0  # the 3000-byte requests cannot all fit


def test_a_capacity_below_the_largest_request_is_refused() -> None:
    trace = parse_trace("0\n2\n2\n1\na 0 5000\na 1 100\n", "big.rep")
    with pytest.raises(CapacityTooSmallError, match="largest request needs 5,000 bytes"):
        check_capacity(trace, 100)
    check_capacity(trace, 5000)  # enough for the largest request: failures are counted


def test_pattern_is_distinct_per_block() -> None:
    assert pattern(0, 6) == b"\x01\x00\x00\x00\x01\x00"
    assert pattern(1, 8) != pattern(2, 8)


def test_every_contender_replays_the_same_trace() -> None:
    trace = random_trace(1500)
    capacity = capacity_for(trace)
    contenders: list[Contender] = [DynamicContender(capacity), MultiprocessingHeap()]
    contenders.append(SeedDynamic(capacity))
    for contender in contenders:
        timing = time_replay(trace, contender)
        assert (timing.ops, timing.failed, timing.finished) == (len(trace), 0, True)
        assert timing.ops_per_second > 0


def test_the_seed_port_places_blocks_exactly_as_dynamic_slab() -> None:
    trace = random_trace(2000, seed=3)
    capacity = capacity_for(trace)
    seed = SeedDynamic(capacity)
    ours = DynamicContender(capacity)
    views_seed: dict[int, memoryview] = {}
    views_ours: dict[int, memoryview] = {}
    for kind, ident, size in zip(trace.kinds, trace.ids, trace.sizes, strict=True):
        if kind == 0:
            views_seed[ident], views_ours[ident] = seed.alloc(size), ours.alloc(size)
            assert seed.offset_of(views_seed[ident]) == ours.slab.offset_of(views_ours[ident])
        elif kind == 1:
            seed.free(views_seed.pop(ident))
            ours.free(views_ours.pop(ident))


def test_time_budget_stops_a_slow_contender() -> None:
    trace = random_trace(20_000)
    timing = time_replay(trace, DynamicContender(capacity_for(trace)), budget=0.0)
    assert not timing.finished
    assert 0 < timing.ops < len(trace)


def test_compare_on_trace_reports_everyone() -> None:
    result = compare_on_trace(random_trace(800), repeats=1)
    assert set(result.timings) == {"ours", "multiprocessing.heap", "seed algorithm"}
    assert result.audit.failed == 0


def test_cli_replay_writes_table_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.rep"
    path.write_text("0\n2\n4\n1\na 0 100\na 1 50\nr 0 300\nf 1\n")
    out = tmp_path / "r.json"
    status = cli.main(["replay", str(path), "--repeats", "1", "--quiet", "--json", str(out)])
    assert status == 0
    text = capsys.readouterr().out
    assert "t.rep" in text and "utilization" in text
    document = json.loads(out.read_text())
    assert document["traces"][0]["audit"]["ops"] == 4


def test_cli_replay_rejects_a_malformed_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.rep"
    path.write_text("0\n1\n1\n1\nq 0 1\n")
    assert cli.main(["replay", str(path), "--quiet"]) == 2
    assert "bad.rep, line 5: unknown operation 'q'" in capsys.readouterr().err
