"""The shared heap's commands: ``slaballoc shm list|inspect|rm`` and ``demo shared``."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from slaballoc import SharedHeap
from slaballoc.shared import SharedBlock
from slaballoc.shared.processes import ProcessName
from slaballoc.tools.cli import main
from slaballoc.tools.render import Region
from slaballoc.tools.shared_demo import run_shared_demo
from slaballoc.tools.shm_cli import DEAD_NOTE, owner_regions, owner_text_map


def test_list_inspect_and_remove(capsys: pytest.CaptureFixture[str]) -> None:
    with SharedHeap.create(size=1 << 16) as heap:
        for size in (100, 2000, 5000):
            heap.alloc(size)
        assert main(["shm", "list"]) == 0
        listed = capsys.readouterr().out
        row = next(line for line in listed.splitlines() if line.startswith(heap.name))
        assert row.split()[1:4] == ["65,536", "7,232", "3"]
        assert main(["shm", "inspect", heap.name, "--cells", "32"]) == 0
        shown = capsys.readouterr().out
        assert "7,232 B (11.0%) in 3 live blocks" in shown
        # A letter per owner; lower case where part of a cell is free.
        assert "[AAAa...." in shown and f"A = pid {os.getpid()}: 3 blocks, 7,232 B" in shown
        assert "dead" not in shown.split("\n", 3)[3]  # the owner is alive: no note
        assert main(["shm", "rm", heap.name]) == 0
        assert not os.path.exists(f"/dev/shm/{heap.name}")
        assert heap.alloc(10)  # attached processes keep using it
    assert f"removed {heap.name}" in capsys.readouterr().out


def test_inspect_svg_draws_the_heap_by_owner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "heap.svg"
    with SharedHeap.create(size=1 << 16) as heap:
        heap.alloc(100)
        heap.alloc(5000)
        used = heap.stats().used  # the blocks' sizes, rounded up to the heap's alignment
        assert main(["shm", "inspect", heap.name, "--svg", str(target)]) == 0
        assert f"wrote {target}" in capsys.readouterr().out
    svg = target.read_text()
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert f"SharedHeap '{heap.name}' by owner process" in svg
    assert f"pid {os.getpid()}: 2 blocks, {used:,} B" in svg
    assert f"free: {(1 << 16) - used:,} B" in svg


def test_inspect_svg_refuses_a_missing_folder_before_attaching(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-folder" / "heap.svg"
    # The heap does not exist either: the folder is checked first, as for every output.
    assert main(["shm", "inspect", "slaballoc-test-missing", "--svg", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the folder" in err and "does not exist" in err
    assert not missing.parent.exists()


def _dead_owner() -> tuple[int, int]:
    """This pid with an earlier start time: a process that had our pid, now gone."""
    me = ProcessName.of(os.getpid())
    assert me is not None
    return me.pid, me.born - 1


def test_owner_regions_name_each_owner_and_the_dead() -> None:
    me = ProcessName.of(os.getpid())
    assert me is not None
    dead_pid, dead_born = _dead_owner()
    blocks = [
        SharedBlock(0, 128, True, 100, dead_pid, dead_born),
        SharedBlock(128, 64, False),
        SharedBlock(192, 64, True, 64, me.pid, me.born),
    ]
    regions, owners = owner_regions(blocks)
    assert regions == [
        Region(0, 128, f"pid {dead_pid} (dead)"),
        Region(128, 64, None),
        Region(192, 64, f"pid {me.pid}"),
    ]
    assert owners == [f"pid {dead_pid} (dead)", f"pid {me.pid}"]  # oldest process first
    text = owner_text_map(blocks, 256, cells=8)
    assert text.splitlines() == [
        f"[AAAA..BB]  A = pid {dead_pid} (dead): 1 block, 128 B; "
        f"B = pid {me.pid}: 1 block, 64 B; . = free: 64 B",
        DEAD_NOTE,
    ]


def test_owner_letters_follow_process_age_not_address() -> None:
    me = ProcessName.of(os.getpid())
    assert me is not None
    dead_pid, dead_born = _dead_owner()
    blocks = [
        SharedBlock(0, 64, True, 64, me.pid, me.born),
        SharedBlock(64, 64, True, 64, dead_pid, dead_born),
    ]
    assert owner_text_map(blocks, 128, cells=2).startswith("[BA]")


def test_mistakes_get_a_message_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shm", "inspect", "slaballoc-test-missing"]) == 1
    assert "no shared-memory segment is named" in capsys.readouterr().err
    assert main(["shm", "rm", "slaballoc-test-missing"]) == 1
    assert "does not exist; nothing removed" in capsys.readouterr().err
    path = "/dev/shm/slaballoc-test-foreign"
    with open(path, "wb") as file:
        file.write(b"not ours")
    try:
        assert main(["shm", "rm", "slaballoc-test-foreign"]) == 1
        assert "is not a slaballoc heap" in capsys.readouterr().err
        assert os.path.exists(path)
        assert main(["shm", "inspect", "slaballoc-test-foreign"]) == 1
        assert "not a slaballoc heap" in capsys.readouterr().err
    finally:
        os.unlink(path)
    with pytest.raises(SystemExit):
        main(["shm", "inspect", "x", "--cells", "0"])
    assert "must be 1 to 10000" in capsys.readouterr().err


def test_demo_shared_kills_repairs_and_reclaims(tmp_path: Path) -> None:
    out = io.StringIO()
    target = tmp_path / "shared.svg"
    run_shared_demo(out, svg=target)
    text = out.getvalue()
    svg = target.read_text()  # step 3: the killed process's blocks, by owner
    assert f"pid {os.getpid()}: 1 block, 4,096 B" in svg and " (dead): " in svg
    assert "SIGKILLed" in text and " (dead): " in text and DEAD_NOTE in text
    assert "the heap checks clean" in text
    assert "0/131,072 B used in 0 live blocks" in text
    assert "unlinked by its creator" in text


def test_bench_shared_smoke_run() -> None:
    """A tiny run in its own interpreter, so that resource_tracker's exit warnings show too."""
    pytest.importorskip("numpy")
    command = [sys.executable, "-m", "slaballoc", "bench", "--shared", "--quick"]
    run = subprocess.run(
        [*command, "--repeats", "1", "--quiet"],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    for measure in (
        "hand a 1 MiB array: handle vs array on the Queue",
        "hand a 1 KiB array: handle vs SharedMemory per array",
        "alloc+free pair: SharedHeap vs DynamicSlab",
        "4 processes contending vs 1",
    ):
        assert measure in run.stdout
    assert "leaked" not in run.stderr and "Traceback" not in run.stderr
