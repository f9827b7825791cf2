"""The demos and the command line."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from slaballoc.policies.free_list import PureFreeList
from slaballoc.slabs import PureFreeListSlab
from slaballoc.tools import cli, demo
from slaballoc.tools.demo import KINDS, NOTATION, SCENARIOS, DemoFailedError, run_demo


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


def test_the_notation_is_explained_once_at_the_top(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "all"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(NOTATION)
    assert text.count("How to read the demo") == 1
    for point in (
        "one cell is 64 bytes",
        "'#': every byte of the cell is in a live block",
        "'.': every byte is free",
        "':' both",
        "alloc(100) gives a view\n    of exactly 100 bytes but uses 104",
        '"63 free" is 63 slots',
    ):
        assert point in NOTATION
    assert NOTATION.isascii()


@pytest.mark.parametrize(
    ("name", "lesson"),
    [
        (
            "freelist",
            "it lands at offset 256, the slot freed last: the free list is a stack (LIFO)",
        ),
        ("linear", "it lands at offset 0: linear search takes the lowest free slot"),
    ],
)
def test_test_9_says_why_the_block_lands_where_it_does(name: str, lesson: str) -> None:
    out = io.StringIO()
    run_demo(KINDS[name], out)
    test_9 = out.getvalue().split("Test 9:")[1].split("Test 10:")[0]
    assert "alloc()                  -> 64-byte block at offset" in test_9
    assert lesson in test_9
