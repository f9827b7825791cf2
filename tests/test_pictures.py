"""Maps and plots: what a learner looks at."""

from __future__ import annotations

import builtins
import io
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from slaballoc import Block, DynamicSlab, FreeList, LinearSlab
from slaballoc.tools import cli, palette
from slaballoc.tools.bench import Size, run_comparison
from slaballoc.tools.demo import KINDS, run_demo
from slaballoc.tools.plots import PlottingUnavailableError, plot_comparison, plot_replay
from slaballoc.tools.recording import record_replay
from slaballoc.tools.render import (
    Region,
    category_svg_map,
    category_text_map,
    next_slot,
    svg_map,
    svg_map_of,
    text_map,
    use_colour,
)
from slaballoc.tools.traces import parse_trace
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
    # 1024 bytes per row over 948 pixels (1040 less the margins): the hole is 304 * 948 / 1024 wide.
    hole = next(r for r in block_rects if "at 104," in (r.find(f"{ns}title").text or ""))  # type: ignore[union-attr]
    assert float(hole.get("width", 0)) == pytest.approx(304 * 948 / 1024, abs=0.01)
    assert "largest free: 3,632 B" in svg


SVG = "{http://www.w3.org/2000/svg}"


def _texts(svg: str) -> list[str]:
    return [t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text")]


def _outlines(svg: str) -> list[ET.Element]:
    return [r for r in ET.fromstring(svg).iter(f"{SVG}rect") if r.get("stroke-dasharray") == "6 3"]


def test_svg_map_marks_a_block_that_wraps_onto_the_next_row() -> None:
    blocks = [Block(0, 96, False), Block(96, 64, True), Block(160, 96, False)]
    svg = svg_map(blocks, 256, row_bytes=128)
    texts = _texts(svg)
    # The live block runs from 96 to 160 across the row end at 128: both pieces keep a label,
    # the first says it goes on, the second that it continues.
    assert "64 \u2192" in texts and "\u21aa 64" in texts
    cuts = [line for line in ET.fromstring(svg).iter(f"{SVG}line") if line.get("stroke-dasharray")]
    assert len(cuts) == 2  # where the live block is cut: the end of row 0, the start of row 1
    titles = [t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}title")]
    assert titles.count("live block at 96, 64 B (drawn across rows)") == 2


def test_svg_map_has_offset_ticks_and_row_offsets() -> None:
    svg = svg_map([Block(0, 4096, False)], 4096)
    texts = _texts(svg)
    for row_start in ("0", "1,024", "2,048", "3,072"):
        assert row_start in texts
    assert {"128", "256", "896", "1,152", "4,096"} <= set(texts)


def test_svg_map_says_when_the_arena_is_full() -> None:
    svg = svg_map([Block(0, 256, True)], 256)
    assert "arena full: no free block, alloc() fails" in _texts(svg)
    assert not _outlines(svg)


def test_fixed_size_slabs_mark_the_next_slot_not_the_largest_free() -> None:
    slab = LinearSlab()
    views = [slab.alloc() for _ in range(5)]
    slab.free(views[1])
    svg = svg_map_of(slab, title="linear")
    assert "largest free" not in svg
    (outline,) = _outlines(svg)
    assert outline.get("stroke") == palette.NEXT_SLOT
    assert "next alloc() gets this slot (offset 64)" in _texts(svg)
    assert slab.offset_of(slab.alloc()) == 64  # drawing changed nothing, and the mark was true
    full = LinearSlab(capacity=128)
    full.alloc(), full.alloc()
    assert "full: every slot is live, the next alloc() fails" in _texts(svg_map_of(full))


def test_next_slot_is_the_policys_own_answer() -> None:
    slots = FreeList(256)
    first = slots.allocate()
    assert next_slot(slots) == 64  # LIFO: the top of the stack
    slots.release(first)
    assert next_slot(slots) == 0
    assert next_slot(object()) is None  # a policy that does not say
    svg = svg_map(list(slots.blocks()), 256, slots=True, next_slot=None)
    assert "next alloc(): not marked (the policy does not say)" in _texts(svg)
    assert not _outlines(svg)


def test_category_text_map_letters_and_key() -> None:
    regions = [Region(0, 100, "pid 1"), Region(100, 28, "pid 2"), Region(192, 64, "pid 1")]
    line = category_text_map(regions, 256, cells=8)
    # Cell 3 (96..127) is mostly pid 2's but 4 of its bytes are pid 1's: the majority, full.
    assert line.startswith("[AAAB..AA]")
    assert "A = pid 1: 2 blocks, 164 B; B = pid 2: 1 block, 28 B; . = free: 64 B" in line
    assert category_text_map([Region(0, 16, "x")], 64, cells=2).startswith("[a.]")
    coloured = category_text_map(regions, 256, cells=8, colour=True)
    assert palette.ANSI_OWNERS[0] in coloured and palette.ANSI_OWNERS[1] in coloured


def test_category_svg_map_colours_by_category() -> None:
    regions = [
        Region(0, 512, "full", "64 B class, slab 0"),
        Region(512, 512, "partial", "64 B class, slab 1"),
        Region(1024, 512, "empty", "256 B class, slab 2"),
    ]
    svg = category_svg_map(regions, 2048, title="slabs", colours=palette.SLAB_STATES, unit="slab")
    assert "full: 1 slab, 512 B" in _texts(svg)
    fills = {
        (r.find(f"{SVG}title").text or "").split(":")[0]: r.get("fill")  # type: ignore[union-attr]
        for r in ET.fromstring(svg).iter(f"{SVG}rect")
        if r.find(f"{SVG}title") is not None
    }
    assert fills["64 B class, slab 0"] == palette.LIVE
    assert fills["64 B class, slab 1"] == palette.PARTIAL_HIGH
    assert fills["256 B class, slab 2"] == palette.SLAB_STATES["empty"]
    assert "free: 512 B" in _texts(svg)
    owners = category_svg_map([Region(0, 64, "pid 9"), Region(64, 64, "pid 3")], 256)
    assert palette.OWNERS[0] in owners and palette.OWNERS[1] in owners


def test_one_palette_no_copies_of_its_colours() -> None:
    """The memory colours are written once, in palette.py: no other picture can drift."""
    tools = Path(palette.__file__).parent
    colours = {
        value.lower()
        for name, value in vars(palette).items()
        if name.isupper() and isinstance(value, str) and value.startswith("#")
    }
    colours |= {c.lower() for c in palette.OWNERS}
    assert palette.LIVE.lower() in colours and len(colours) > 10
    for source in [*tools.glob("*.py"), *tools.glob("web/*")]:
        if source.name == "palette.py":
            continue
        text = source.read_text(encoding="utf-8").lower()
        assert not [c for c in colours if c in text], f"{source.name} copies a palette colour"


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
    empty = record_replay(parse_trace("0\n0\n0\n1\n", "empty.rep"))
    plot_replay(empty, tmp_path / "empty.png")
    assert (tmp_path / "empty.png").stat().st_size > 1_000
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
