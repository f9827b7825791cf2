"""The demos and the command line."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from slaballoc.policies.free_list import PureFreeList
from slaballoc.slabs import PureFreeListSlab
from slaballoc.tools import cli, demo
from slaballoc.tools.demo import KINDS, SCENARIOS, DemoFailedError, run_demo


@pytest.mark.parametrize("name", list(KINDS))
def test_each_demo_prints_all_eleven_scenarios(name: str) -> None:
    out = io.StringIO()
    run_demo(KINDS[name], out)
    text = out.getvalue()
    assert len(SCENARIOS) == 11
    for number, (title, _) in enumerate(SCENARIOS, start=1):
        assert f"Test {number}: {title}" in text
    assert text.count("memory: [") == 11
    assert "ValueError: operation forbidden on released memoryview object" in text
    assert "BUG: still readable" in text
    assert "DoubleFreeError" in text
    assert text.isascii(), "the demo must read the same on any terminal and in a log file"


def test_demo_detects_a_misbehaving_allocator(monkeypatch: pytest.MonkeyPatch) -> None:
    # A free list that forgot LIFO reuse must fail scenario 5, not pass silently.
    # Broken through the pure-Python classes, whose primitives are plain attributes.
    original = PureFreeList.__init__

    def first_in_first_out(self: PureFreeList, capacity: int, slot_size: int = 64) -> None:
        original(self, capacity, slot_size)
        self._put = lambda offset: self._stack.insert(0, offset)

    monkeypatch.setattr(PureFreeList, "__init__", first_in_first_out)
    monkeypatch.setattr(demo, "FreeListSlab", PureFreeListSlab)
    with pytest.raises(DemoFailedError, match="same memory back"):
        run_demo(KINDS["freelist"], io.StringIO())


def test_cli_demo_all(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "all"]) == 0
    text = capsys.readouterr().out
    for kind in KINDS.values():
        assert kind.title in text


def test_cli_rejects_an_unknown_allocator(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["demo", "buddy"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_python_dash_m_runs_the_demo() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "slaballoc", "demo", "linear"],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONIOENCODING": "ascii", "PATH": ""},
    )
    assert "All 11 scenarios behaved as expected for linear." in result.stdout
