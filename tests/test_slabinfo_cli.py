"""``slaballoc slabinfo``: the table for a trace or the sample, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slaballoc.tools import cli
from slaballoc.tools.slabinfo_cli import sample_trace, slabinfo_for_trace

TRACE = "0\n3\n5\n1\na 0 100\na 1 1500\na 2 50000\nf 0\nr 1 3000\n"


def test_the_table_shows_the_classes_the_trace_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "small.rep"
    path.write_text(TRACE)
    out = tmp_path / "slabinfo.json"
    assert cli.main(["slabinfo", str(path), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "OBJ SIZE" in printed
    assert "live 2 blocks, 53,000 B requested" in printed
    document = json.loads(out.read_text())
    active = {row["object_size"]: row["active_objects"] for row in document["classes"]}
    assert active[3072] == 1
    assert active[112] == active[1536] == 0  # freed, and moved by the realloc
    assert document["stats"]["large_blocks"] == 1


def test_the_sample_replays_without_failures() -> None:
    cache, failed = slabinfo_for_trace(sample_trace(ops=2000))
    assert failed == 0
    cache.check()
    assert len(cache) > 0


@pytest.mark.parametrize(
    "argv",
    [
        ["slabinfo"],
        ["slabinfo", "missing.rep"],
        ["slabinfo", "x.rep", "--sample"],
    ],
)
def test_user_mistakes_get_a_message_not_a_traceback(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.startswith("slaballoc slabinfo: ")


def test_a_malformed_trace_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.rep"
    path.write_text("0\n1\n1\n1\nx 0 1\n")
    assert cli.main(["slabinfo", str(path)]) == 2
    assert "bad.rep, line 5" in capsys.readouterr().err


def test_bad_option_values_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["slabinfo", "--sample", "--magazine-size", "-1"])
    assert "must be at least 0" in capsys.readouterr().err
    assert cli.main(["slabinfo", "--sample", "--magazine-size", "1000"]) == 2


def test_a_bad_capacity_says_what_was_expected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["slabinfo", "--sample", "--capacity", "x"])
    assert "expected a whole number, got 'x'" in capsys.readouterr().err


def test_an_unwritable_json_is_refused_before_the_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-folder" / "out.json"
    assert cli.main(["slabinfo", "--sample", "--json", str(missing)]) == 2
    captured = capsys.readouterr()
    assert "the folder" in captured.err and "does not exist" in captured.err
    assert captured.out == ""  # refused before any table was printed
