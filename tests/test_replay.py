"""Trace replay: timing for every contender, and the verified audit."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from slaballoc import DynamicSlab
from slaballoc.tools import cli
from slaballoc.tools.peers import DynamicContender, MultiprocessingHeap, SeedDynamic
from slaballoc.tools.replay import (
    Contender,
    audit_replay,
    capacity_for,
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
    assert audit.peak_live == trace.peak_live_bytes()
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
    with pytest.raises(AssertionError, match="lost"):
        audit_replay(trace)


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
