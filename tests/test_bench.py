"""Benchmarks are not tests: these only check that each one still runs, at tiny sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slaballoc.tools import cli
from slaballoc.tools.bench import (
    CONTENDERS,
    PAIR_CONTENDERS,
    SCENARIOS,
    UNLOCKED,
    Size,
    churn_plan,
    measure_batches,
    measure_memory,
    measure_pairs,
    run_comparison,
)
from slaballoc.tools.scaling import run_scaling

TINY = Size("tiny", 32, 0.9, 200, 1)


def test_churn_plan_stays_in_bounds() -> None:
    plan = churn_plan(slots=100, start=50, ops=5000)
    live = 50
    for step in plan:
        if step < 0:
            live += 1
        else:
            assert 0 <= step < live
            live -= 1
        assert 48 <= live <= 52


def test_comparison_runs_every_scenario_for_every_contender() -> None:
    result = run_comparison([TINY], repeats=1)
    table = result.times["tiny"]
    assert set(table) == {*SCENARIOS, "overall"}
    for scenario in table.values():
        assert set(scenario) == {c.name for c in CONTENDERS}
        assert all(seconds > 0 for seconds in scenario.values())


def test_pairs_and_memory_run() -> None:
    pairs = measure_pairs(slots=256, occupancy=0.5, number=200, repeats=1)
    assert set(pairs) == {c.name for c in PAIR_CONTENDERS}
    assert {c.name for c in [*CONTENDERS, *UNLOCKED]} <= set(pairs)
    batches = measure_batches(slots=256, number=5, repeats=1)
    assert all(seconds > 0 for seconds in batches.values())
    memory = measure_memory(slots=256)
    assert memory["FreeListSlab"]["idle"] <= 16  # the ceiling
    assert memory["FreeListSlab"]["full"] > memory["FreeListSlab"]["idle"]


def test_scaling_runs_and_skips_over_budget() -> None:
    rows = run_scaling(live_counts=(100, 200), ops=100, repeats=1, budget=0.0)
    by_size = {(row.contender, row.live): row.seconds_per_op for row in rows}
    assert by_size[("DynamicSlab", 100)] is not None
    assert by_size[("DynamicSlab", 200)] is None  # over the zero budget after the first size


@pytest.mark.parametrize("extra", [[], ["--scaling"]])
def test_cli_bench_quick(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--quick", "--repeats", "1", "--quiet", "--json", str(out), *extra]
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "Linear/FreeList" in text and "x bytearray" in text
    document = json.loads(out.read_text())
    assert "comparison" in document and "machine" in document
    assert ("scaling" in document) == bool(extra)
