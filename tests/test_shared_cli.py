"""The shared heap's commands: ``slaballoc shm list|inspect|rm`` and ``demo shared``."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from slaballoc import SharedHeap
from slaballoc.tools.cli import main
from slaballoc.tools.shared_demo import run_shared_demo


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
        assert "[AAAA" in shown and f"A = pid {os.getpid()}: alive, 3 blocks" in shown
        assert main(["shm", "rm", heap.name]) == 0
        assert not os.path.exists(f"/dev/shm/{heap.name}")
        assert heap.alloc(10)  # attached processes keep using it
    assert f"removed {heap.name}" in capsys.readouterr().out


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


def test_demo_shared_kills_repairs_and_reclaims() -> None:
    out = io.StringIO()
    run_shared_demo(out)
    text = out.getvalue()
    assert "SIGKILLed" in text and "DEAD (reclaim_dead() frees its blocks)" in text
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
