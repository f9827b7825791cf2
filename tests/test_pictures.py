"""Maps and plots: what a learner looks at."""

from __future__ import annotations

import builtins
import io
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from slaballoc import Block, DynamicSlab
from slaballoc.tools import cli
from slaballoc.tools.bench import Size, run_comparison
from slaballoc.tools.demo import KINDS, run_demo
from slaballoc.tools.plots import PlottingUnavailableError, plot_comparison, plot_replay
from slaballoc.tools.recording import record_replay
from slaballoc.tools.render import svg_map, text_map, use_colour
from test_replay import random_trace


def test_text_map_reads_without_colour() -> None:
    blocks = [Block(0, 64, True), Block(64, 32, True), Block(96, 160, False)]
    line = text_map(blocks, 256, cells=8)
    assert line.startswith("[###.....]")
    assert "\x1b[" not in line


def test_text_map_marks_partly_used_cells() -> None:
    assert text_map([Block(0, 16, True), Block(16, 48, False)], 64, cells=2).startswith("[:.]")


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert use_colour(Terminal())
    assert not use_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour(Terminal())
    coloured = text_map([Block(0, 8, True), Block(8, 8, False)], 16, cells=2, colour=True)
    assert "\x1b[" in coloured and "#" in coloured and "." in coloured


def test_demo_prints_a_map_after_every_scenario() -> None:
    out = io.StringIO()
    run_demo(KINDS["dynamic"], out)
    assert out.getvalue().count("memory: [") == 11
    assert out.getvalue().count("\n  blocks: ") == 11


def test_svg_map_draws_every_block_to_scale() -> None:
    slab = DynamicSlab()
    keep = [slab.alloc(size) for size in (100, 300, 50)]
    slab.free(keep[1])
    svg = svg_map(list(slab.blocks()), slab.capacity, title="t", width=1040)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    block_rects = [r for r in root.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    titles = [r.find(f"{ns}title").text for r in block_rects]  # type: ignore[union-attr]
    assert any("free block at 104, 304 B" in (t or "") for t in titles)
    # 1024 bytes per row over 1008 pixels: the 304-byte hole is 304 * 1008 / 1024 wide.
    hole = next(r for r in block_rects if "at 104," in (r.find(f"{ns}title").text or ""))  # type: ignore[union-attr]
    assert float(hole.get("width", 0)) == pytest.approx(304 * 1008 / 1024, abs=0.01)
    assert "largest free: 3,632 B" in svg


def test_cli_map_writes_svg_of_a_demo_step(tmp_path: Path) -> None:
    target = tmp_path / "step.svg"
    assert cli.main(["map", "dynamic", "9", "-o", str(target)]) == 0
    text = target.read_text()
    assert "after test 9: Allocate after freeing all" in text
    ET.fromstring(text)


def test_plots_are_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    recording = record_replay(random_trace(500))
    for name in ("replay.png", "replay.svg"):
        plot_replay(recording, tmp_path / name)
        assert (tmp_path / name).stat().st_size > 5_000
    comparison = run_comparison([Size("tiny", 16, 0.9, 50, 1)], repeats=1)
    plot_comparison(comparison, tmp_path / "bench.png")
    assert (tmp_path / "bench.png").stat().st_size > 5_000


def test_without_matplotlib_the_commands_say_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(PlottingUnavailableError, match=r"pip install 'slaballoc\[plot\]'"):
        plot_replay(record_replay(random_trace(50)), tmp_path / "x.png")
    trace = tmp_path / "t.rep"
    trace.write_text("0\n1\n2\n1\na 0 10\nf 0\n")
    html = tmp_path / "t.html"
    args = ["replay", str(trace), "--peers", "none", "--repeats", "1", "--quiet"]
    assert cli.main([*args, "--plot", str(tmp_path / "t.png")]) == 1
    assert "pip install 'slaballoc[plot]'" in capsys.readouterr().err
    assert cli.main([*args, "--html", str(html)]) == 0  # everything else still works
    assert html.stat().st_size > 1000
