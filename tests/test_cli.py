"""The command line: one clear line for every mistake a user can make, never a traceback."""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest

from slaballoc import __version__
from slaballoc.tools import cli
from slaballoc.tools.samples import SAMPLES, read_sample
from slaballoc.tools.timing import line_progress, no_progress

ROOT = Path(__file__).resolve().parents[1]
GOOD = "0\n2\n4\n1\na 0 100\na 1 50\nr 0 300\nf 1\n"


def one_line(text: str) -> str:
    """The text, which must be exactly one line and no traceback."""
    assert "Traceback" not in text
    assert text.count("\n") == 1 and text.endswith("\n"), repr(text)
    return text


def fails(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command line in-process; return its status, stdout and stderr."""
    try:
        status = cli.main(list(argv))
    except SystemExit as exit_:  # argparse's own errors and --version
        status = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    path = tmp_path / "t.rep"
    path.write_text(GOOD)
    return path


def run_slaballoc(*argv: str, prelude: str = "", **kwargs: object) -> subprocess.Popen[str]:
    """``python -m slaballoc ARGV`` in a new process, after running ``prelude`` in it."""
    code = f"{prelude}\nimport runpy; runpy.run_module('slaballoc', run_name='__main__')"
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-c", code, *argv], text=True, **kwargs
    )


# -- one line, before the work ----------------------------------------------------------------


def test_a_capacity_too_small_for_the_trace(
    trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = fails(capsys, "replay", str(trace), "--capacity", "100", "--quiet")
    assert status == 2
    assert "a capacity of 100 bytes is too small for t.rep" in one_line(err)


@pytest.mark.parametrize("value", ["3", "0", "12", "eight"])
def test_an_alignment_that_is_not_a_power_of_two(
    trace: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    status, _, err = fails(capsys, "replay", str(trace), "--alignment", value)
    assert status == 2
    assert "--alignment" in one_line(err)


@pytest.mark.parametrize(
    "argv",
    [
        ["map", "dynamic", "5", "-o", "{missing}/map.svg"],
        ["replay", "{trace}", "--html", "{missing}/r.html"],
        ["replay", "{trace}", "--plot", "{missing}/r.png"],
        ["replay", "{trace}", "--json", "{missing}/r.json"],
        ["bench", "--json", "{missing}/b.json"],
        ["bench", "--plot", "{missing}/b.png"],
    ],
)
def test_an_output_in_a_missing_folder_is_refused_before_the_work(
    trace: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    missing = trace.parent / "no-such-folder"
    args = [arg.format(missing=missing, trace=trace) for arg in argv]
    started = time.perf_counter()
    status, out, err = fails(capsys, *args)  # bench without --quick would take minutes
    assert status == 2
    assert f"the folder {missing} does not exist" in one_line(err)
    assert out == ""  # nothing ran
    assert time.perf_counter() - started < 5


def test_an_output_that_is_a_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = fails(capsys, "map", "linear", "1", "-o", str(tmp_path))
    assert status == 2
    assert "it is a folder" in one_line(err)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("a 1000000000000 16", "id 1000000000000 is too large"),
        (f"a 1 {10**14}", "size 100,000,000,000,000 is larger than a replay can serve"),
    ],
)
def test_a_trace_with_a_huge_id_or_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, problem: str
) -> None:
    path = tmp_path / "huge.rep"
    path.write_text(f"0\n2\n2\n1\na 0 8\n{line}\n")
    started = time.perf_counter()
    status, _, err = fails(capsys, "replay", str(path), "--quiet")
    assert status == 2
    assert f"huge.rep, line 6: {problem}" in one_line(err)
    assert time.perf_counter() - started < 5


def test_bench_plot_without_matplotlib_says_so_before_running(tmp_path: Path) -> None:
    process = run_slaballoc(
        "bench",
        "--plot",
        str(tmp_path / "b.png"),
        prelude="import sys; sys.modules['matplotlib'] = None",  # import matplotlib fails
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "pip install 'slaballoc[plot]'" in one_line(err)
    assert out == ""  # said before the bench started


# -- many traces, some bad ----------------------------------------------------------------------


def test_a_bad_trace_among_good_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.rep").write_text(GOOD)
    (tmp_path / "bad.rep").write_text("0\n1\n1\n1\nq 0 1\n")
    paths = [str(tmp_path / name) for name in ("a.rep", "bad.rep", "missing.rep", "b.rep")]
    out_json = tmp_path / "r.json"
    status, out, err = fails(
        capsys, "replay", *paths, "--peers", "none", "--repeats", "1", "--json", str(out_json)
    )
    assert status == 2
    assert "Traceback" not in err
    lines = err.splitlines()
    assert (
        lines[0] == "slaballoc replay: bad.rep, line 5: unknown operation 'q' (expected a, f or r)"
    )
    assert lines[1].startswith(f"slaballoc replay: cannot read {paths[2]}: No such file")
    assert lines[2] == "slaballoc replay: 2 of 4 traces could not be replayed"
    table = out.split("\n\n", 1)[1]
    assert re.search(r"^a\.rep ", table, re.MULTILINE)
    assert re.search(r"^b\.rep ", table, re.MULTILINE)
    document = json.loads(out_json.read_text())
    assert [t["trace"] for t in document["traces"]] == ["a.rep", "b.rep"]
    assert [e["trace"] for e in document["errors"]] == [paths[1], paths[2]]
    assert "unknown operation" in document["errors"][0]["error"]


def test_trace_anomalies_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "odd.rep"
    path.write_text("0\n3\n7\n1\na 0 8\nf 0\nf 0\nf 2\na 1 8\na 1 16\nf 0\n")
    out_json = tmp_path / "odd.json"
    status, out, _ = fails(
        capsys, "replay", str(path), "--peers", "none", "--repeats", "1", "--json", str(out_json)
    )
    assert status == 0  # a program's mistakes are measured and reported, not refused
    assert "odd.rep: double free, 2 times (first at op 3): a mistake in the trace" in out
    assert "odd.rep: free of an unknown id, once (first at op 4)" in out
    assert "odd.rep: alloc of a live id, once (first at op 6)" in out
    anomalies = json.loads(out_json.read_text())["traces"][0]["audit"]["anomalies"]
    assert anomalies["double free"] == {"count": 2, "first": "op 3"}


# -- pipes, Ctrl-C ------------------------------------------------------------------------------


def test_a_closed_pipe_ends_quietly() -> None:
    # The reader is gone before the first write: as `slaballoc demo all | head -1`, without
    # depending on how fast head is.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        process = run_slaballoc("demo", "all", stdout=write_end, stderr=subprocess.PIPE)
    finally:
        os.close(write_end)
    _, err = process.communicate(timeout=60)
    assert err == ""
    assert process.returncode == cli.BROKEN_PIPE


def test_head_dash_1_shows_one_line_and_no_traceback() -> None:
    result = subprocess.run(
        ["bash", "-c", f"'{sys.executable}' -m slaballoc demo all | head -1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout == "How to read the demo\n"
    assert result.stderr == ""


def test_ctrl_c_is_one_line_and_status_130() -> None:
    process = run_slaballoc(
        "bench",
        # A process started in the background (make ... &, some CI runners) inherits SIGINT
        # ignored; a terminal's foreground command has Python's handler, as restored here.
        prelude="import signal; signal.signal(signal.SIGINT, signal.default_int_handler)",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith("slaballoc")  # the bench has started
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == cli.INTERRUPTED
    assert one_line(err) == "slaballoc bench: interrupted\n"


# -- progress, version, help ------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_one_line_updated_in_place_on_a_terminal() -> None:
    terminal = Terminal()
    report = line_progress(terminal)
    report(0, 3, "first")
    report(1, 3, "second")
    report(3, 3, "")
    assert "\n" not in terminal.getvalue()
    assert terminal.getvalue() == "\r\x1b[K[1/3] first\r\x1b[K[2/3] second\r\x1b[K"


def test_progress_is_quiet_when_not_a_terminal(
    trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert line_progress(io.StringIO()) is no_progress
    status, _, err = fails(capsys, "replay", str(trace), "--peers", "none", "--repeats", "1")
    assert (status, err) == (0, "")


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(capsys: pytest.CaptureFixture[str], flag: str) -> None:
    status, out, _ = fails(capsys, flag)
    assert (status, out) == (0, f"slaballoc {__version__}\n")


def every_argument(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                for where, inner in every_argument(sub):
                    yield f"{name} {where}", inner
        else:
            yield action.dest, action


def test_every_argument_has_help() -> None:
    arguments = list(every_argument(cli.build_parser()))
    assert len(arguments) > 20
    for where, action in arguments:
        assert action.help and action.help != argparse.SUPPRESS, f"{where} has no help"


def test_every_command_is_a_row_of_the_table() -> None:
    parser = cli.build_parser()
    names = [c.name for c in cli.COMMANDS]
    assert names == ["demo", "map", "bench", "replay", "slabinfo", "shm"]
    for name in names:
        required = {"map": ["linear", "1"], "shm": ["list"]}.get(name, [])
        assert parser.parse_args([name, *required]).command


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = fails(capsys, "demo", "buddy")
    assert status == 2
    assert "invalid choice" in one_line(err)
    status, _, err = fails(capsys, "replay")
    assert status == 2
    assert "name at least one TRACE" in one_line(err)


# -- samples ----------------------------------------------------------------------------------


def test_samples_ship_with_the_package_small_and_compressed() -> None:
    folder = files("slaballoc.tools") / "samples"
    shipped = sorted(item.name for item in folder.iterdir() if item.name.endswith(".rep.gz"))
    assert shipped == sorted(f"{name}.rep.gz" for name in SAMPLES)
    total = sum(len((folder / name).read_bytes()) for name in shipped)
    assert total < 512 * 1024
    for name in SAMPLES:
        assert gzip.decompress((folder / f"{name}.rep.gz").read_bytes()).startswith(b"0\n")
        assert len(read_sample(name)) == 20_000
    assert '"tools/samples/*.rep.gz"' in (ROOT / "pyproject.toml").read_text()


def test_replay_a_sample_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "s.json"
    status, out, _ = fails(
        capsys, "replay", "sample:jq", "--peers", "none", "--repeats", "1", "--json", str(out_json)
    )
    assert status == 0
    assert re.search(r"^jq-sample\.rep +20,000 ", out, re.MULTILINE)
    assert json.loads(out_json.read_text())["traces"][0]["audit"]["failed"] == 0


def test_list_samples_and_an_unknown_one(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = fails(capsys, "replay", "--list-samples")
    assert status == 0
    for name in SAMPLES:
        assert f"sample:{name}" in out
    status, _, err = fails(capsys, "replay", "sample:emacs", "--quiet")
    assert status == 2
    assert "there is no sample called 'emacs'" in one_line(err)


# -- make demo ----------------------------------------------------------------------------------


def test_make_demo_installs_the_package_without_the_test_tools(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    plan = subprocess.run(
        ["make", "-n", "demo", f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installs = [line for line in plan.splitlines() if "pip install" in line]
    assert any("-e ." in line for line in installs)
    assert not any("[test]" in line for line in installs), plan
    test_plan = subprocess.run(
        ["make", "-n", "unit", f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "'.[test]'" in test_plan


def test_a_write_that_fails_after_the_checks_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # /proc passes the folder checks (it exists; root may write) but takes no new files.
    status, _, err = fails(capsys, "map", "linear", "1", "-o", "/proc/slaballoc-map.svg")
    assert status == (1 if os.access("/proc", os.W_OK) else 2)  # not root: refused up front
    assert "cannot write /proc/slaballoc-map.svg" in one_line(err)


def test_an_arena_too_large_for_the_machine(
    trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = fails(capsys, "replay", str(trace), "--capacity", str(10**22), "--quiet")
    assert status == 2
    # Ours ("not enough memory for the replay's arena"), or the allocator's typed refusal.
    assert re.search("memory|capacity", one_line(err))


def test_make_replay_and_images_use_the_samples_without_the_shared_traces() -> None:
    def plan(*argv: str) -> str:
        return subprocess.run(
            ["make", "-n", "-B", *argv], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout

    # SHARED_TRACES= stands for a clone with no ../shared/traces beside it.
    replay = plan("replay", "SHARED_TRACES=")
    assert (
        "slaballoc replay sample:gcc-cc1 sample:git-log sample:jq sample:perl sample:sqlite3"
        in replay
    )
    assert "slaballoc replay sample:perl " in plan("images", "SHARED_TRACES=")
    shared = "../shared/traces/jq.rep ../shared/traces/perl.rep"
    assert "slaballoc replay ../shared/traces/perl.rep " in plan(
        "images", f"SHARED_TRACES={shared}"
    )
