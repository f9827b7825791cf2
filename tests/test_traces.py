"""Reading malloclab .rep traces."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pytest

from slaballoc.errors import SlabError
from slaballoc.tools.interpreter import (
    ALLOC_OF_LIVE_ID,
    DOUBLE_FREE,
    UNKNOWN_FREE,
    TraceInterpreter,
    peak_live_bytes,
)
from slaballoc.tools.traces import ALLOC, FREE, REALLOC, TraceFormatError, parse_trace, read_trace

SHARED_TRACES = Path(__file__).resolve().parents[2] / "shared" / "traces"


def test_parses_every_operation() -> None:
    trace = parse_trace("20000\n3\n6\n1\na 0 16\na 1 8\nr 0 32\nf 0\nf -1\n\na 2 1\n", "t.rep")
    assert len(trace) == 6
    assert list(trace.kinds) == [ALLOC, ALLOC, REALLOC, FREE, FREE, ALLOC]
    assert list(trace.ids) == [0, 1, 0, 0, -1, 2]
    assert list(trace.sizes) == [16, 8, 32, 0, 0, 1]
    assert trace.id_count == 3
    assert peak_live_bytes(trace) == 40
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
        ("0\n1\n2\n1\na 0 16\n", 3, "the header promises 2 operations, the file has 1"),
        ("0\n1\n\n2\n1\na 0 16\n", 4, "the header promises 2 operations, the file has 1"),
        ("0\n1\n1\n1\na 1000000000000 16\n", 5, "id 1000000000000 is too large"),
        ("0\n1\n1\n1\nf 70000\n", 5, "id 70000 is too large"),
        ("0\n1\n1\n1\na 0 100000000000000\n", 5, "larger than a replay can serve"),
        ("0\n1\n-1\n1\n", 3, "the number of operations -1 is negative"),
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
    assert peak_live_bytes(trace) == 10_602_436
    assert trace.max_size() == 45_920


def test_errors_are_typed() -> None:
    with pytest.raises(TraceFormatError) as caught:
        parse_trace("0\n1\n1\n1\nq\n")
    assert isinstance(caught.value, SlabError)
    assert isinstance(caught.value, ValueError)


def test_huge_ids_and_sizes_are_refused_at_once() -> None:
    # Today a 1.5 GB table (id 10**12) or MemoryError (size 10**14); now a format error
    # while parsing, before anything is allocated.
    body = "a 0 16\n" * 10_000
    started = time.perf_counter()
    for bad in ("a 1000000000000 8\n", "a 1 100000000000000\n"):
        with pytest.raises(TraceFormatError, match="line 10005"):
            parse_trace(f"0\n1\n10001\n1\n{body}{bad}")
    assert time.perf_counter() - started < 5


def test_ids_up_to_the_operation_count_are_accepted() -> None:
    ops = 70_000
    text = f"0\n{ops}\n{ops}\n1\n" + "".join(f"a {i} 1\n" for i in range(ops))
    assert parse_trace(text).id_count == ops


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.rep"
    path.write_bytes(b"\xef\xbb\xbf0\n1\n2\n1\na 0 5\nf 0\n")
    assert len(read_trace(path)) == 2


def test_gzip_traces_are_read(tmp_path: Path) -> None:
    path = tmp_path / "tiny.rep.gz"
    path.write_bytes(gzip.compress(b"0\n1\n2\n1\na 0 5\nf 0\n"))
    trace = read_trace(path)
    assert (trace.name, len(trace)) == ("tiny.rep", 2)
    broken = tmp_path / "broken.rep.gz"
    broken.write_bytes(gzip.compress(b"0\n1\n2\n1\n")[:12])
    with pytest.raises(TraceFormatError, match="gzip"):
        read_trace(broken)


class Log:
    """A trace target that writes down every call."""

    def __init__(self, refuse_over: int = 1 << 62) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.refuse_over = refuse_over

    def alloc(self, ident: int, size: int) -> None:
        if size > self.refuse_over:
            raise MemoryError
        self.calls.append(("alloc", ident, size))

    def free(self, ident: int) -> None:
        self.calls.append(("free", ident))

    def realloc(self, ident: int, size: int) -> None:
        if size > self.refuse_over:
            raise MemoryError
        self.calls.append(("realloc", ident, size))


def test_anomalies_are_counted_not_passed_silently() -> None:
    text = "0\n3\n9\n1\na 0 8\nf 0\nf 0\nf 2\na 1 8\na 1 16\nf 0\nf -1\nr 1 4\n"
    log = Log()
    tally = TraceInterpreter(parse_trace(text), log).run()
    assert tally.anomalies == {DOUBLE_FREE: 2, UNKNOWN_FREE: 1, ALLOC_OF_LIVE_ID: 1}
    assert tally.first_anomaly == {DOUBLE_FREE: 2, UNKNOWN_FREE: 3, ALLOC_OF_LIVE_ID: 5}
    # The alloc of live id 1 frees the live block first; the bad frees call nothing.
    assert log.calls == [
        ("alloc", 0, 8),
        ("free", 0),
        ("alloc", 1, 8),
        ("free", 1),
        ("alloc", 1, 16),
        ("realloc", 1, 4),
    ]
    assert (tally.ops, tally.failed) == (9, 0)


def test_a_failed_request_changes_nothing_and_is_not_an_anomaly() -> None:
    text = "0\n2\n5\n1\na 0 100\nf 0\na 1 8\nr 1 100\nf 1\n"
    log = Log(refuse_over=50)
    tally = TraceInterpreter(parse_trace(text), log).run()
    assert (tally.failed, tally.first_failure, tally.anomalies) == (2, 0, {})
    assert log.calls == [("alloc", 1, 8), ("free", 1)]  # the failed realloc left 1 live
