"""Reading malloclab .rep traces."""

from __future__ import annotations

from pathlib import Path

import pytest

from slaballoc.tools.traces import ALLOC, FREE, REALLOC, TraceFormatError, parse_trace, read_trace

SHARED_TRACES = Path(__file__).resolve().parents[2] / "shared" / "traces"


def test_parses_every_operation() -> None:
    trace = parse_trace("20000\n3\n6\n1\na 0 16\na 1 8\nr 0 32\nf 0\nf -1\n\na 2 1\n", "t.rep")
    assert len(trace) == 6
    assert list(trace.kinds) == [ALLOC, ALLOC, REALLOC, FREE, FREE, ALLOC]
    assert list(trace.ids) == [0, 1, 0, 0, -1, 2]
    assert list(trace.sizes) == [16, 8, 32, 0, 0, 1]
    assert trace.id_count == 3
    assert trace.peak_live_bytes() == 40
    assert trace.max_size() == 32


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("0\n1\n1\n1\nx 0 16\n", 5, "unknown operation 'x'"),
        ("0\n1\n1\n1\na 0\n", 5, "'a' takes 2 numbers, got 1"),
        ("0\n1\n1\n1\nf 0 16\n", 5, "'f' takes 1 numbers, got 2"),
        ("0\n1\n1\n1\na zero 16\n", 5, "the id 'zero' is not an integer"),
        ("0\n1\n1\n1\na 0 -16\n", 5, "size -16 is negative"),
        ("0\n1\n1\n1\na -1 16\n", 5, "id -1 is negative"),
        ("0\n1\n2\n1\na 0 16\n", 5, "the header promises 2 operations, the file has 1"),
        ("0\n1\n", 3, "the header ends early: no number of operations"),
        ("0\nmany\n1\n1\n", 2, "the number of ids 'many' is not an integer"),
        ("0 1\n", 1, "must hold one number"),
    ],
)
def test_malformed_lines_are_named(text: str, line: int, problem: str) -> None:
    with pytest.raises(TraceFormatError) as caught:
        parse_trace(text, "bad.rep")
    assert caught.value.line == line
    assert problem in str(caught.value)
    assert str(caught.value).startswith(f"bad.rep, line {line}:")


def test_read_trace_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny.rep"
    path.write_text("0\n1\n2\n1\na 0 5\nf 0\n")
    assert read_trace(path).name == "tiny.rep"


@pytest.mark.skipif(not SHARED_TRACES.is_dir(), reason="../shared/traces is not beside the project")
def test_shared_traces_match_their_readme() -> None:
    trace = read_trace(SHARED_TRACES / "jq.rep")
    assert (len(trace), trace.id_count) == (154_986, 77_492)
    assert trace.peak_live_bytes() == 10_602_436
    assert trace.max_size() == 45_920
