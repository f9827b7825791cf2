"""The slab map: SlabCache.slabs(), the regions, the pictures, slabinfo --svg and demo slab."""

from __future__ import annotations

import io
import itertools
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from slaballoc import SlabCache
from slaballoc.slab_cache import SlabRecord
from slaballoc.tools import cli, palette, slab_demo
from slaballoc.tools.demo import DemoFailedError
from slaballoc.tools.slab_map import LARGE, slab_regions, slab_svg_map, slab_text_map

SVG = "{http://www.w3.org/2000/svg}"


def _fills(svg: str) -> dict[str, str]:
    """The fill of every drawn region, by the start of its tooltip (its label)."""
    fills = {}
    for rect in ET.fromstring(svg).iter(f"{SVG}rect"):
        title = rect.find(f"{SVG}title")
        if title is not None and title.text:
            fills[title.text.split(":")[0]] = rect.get("fill", "")
    return fills


def test_slabs_counts_live_and_cached_objects_per_slab() -> None:
    cache = SlabCache(capacity=1 << 16, magazine_size=4)
    views = [cache.alloc(1500) for _ in range(3)]  # the first miss loads 4 into the magazine
    cache.free(views.pop())
    (record,) = cache.slabs()
    assert record == SlabRecord(0, 12288, 1536, live=2, cached=2, capacity=8)
    assert record.state == "partial"
    cache.free_many(views)
    assert cache.slabs()[0].state == "empty" and cache.slabs()[0].live == 0
    cache.close()
    with pytest.raises(ValueError, match="closed"):
        cache.slabs()


def test_regions_cover_the_buffer_in_address_order() -> None:
    cache = SlabCache(capacity=1 << 16, magazine_size=0)
    cache.alloc_many(60, 64)  # a full 64 B slab
    keep = cache.alloc(1500)
    cache.alloc(20_000)
    cache.free(keep)
    regions = slab_regions(cache)
    assert [r.category for r in regions] == ["full", "empty", LARGE, None]
    assert regions[0].label == "64 B class, 64/64 live"
    assert regions[1].label == "1536 B class, 0/8 live"
    assert all(a.end == b.offset for a, b in itertools.pairwise(regions))
    assert regions[0].offset == 0 and regions[-1].end == cache.capacity


def test_text_map_keeps_a_letter_per_state() -> None:
    cache = SlabCache(capacity=1 << 16, magazine_size=0)
    cache.alloc(20_000)
    line = slab_text_map(cache, cells=16)
    # Only a large block, yet it is D: full, partial and empty keep A, B and C.
    assert line.startswith("[DDDDd")
    assert "A = full: 0 slabs, 0 B; B = partial: 0 slabs" in line
    assert "D = large block: 1 block, 20,000 B" in line
    coloured = slab_text_map(cache, cells=16, colour=True)
    cache.alloc(100)
    assert palette.ANSI_SLAB_STATES["partial"] in slab_text_map(cache, colour=True)
    assert "\x1b[" in coloured


def test_svg_colours_each_slab_by_its_state() -> None:
    cache = SlabCache(capacity=1 << 16, magazine_size=0)
    cache.alloc_many(3000, 4)  # full
    cache.alloc(1500)  # partial
    cache.free(cache.alloc(60))  # empty
    cache.alloc(20_000)
    svg = slab_svg_map(cache, title="a slab map")
    fills = _fills(svg)
    assert fills["3072 B class, 4/4 live"] == palette.SLAB_STATES["full"]
    assert fills["1536 B class, 1/8 live"] == palette.SLAB_STATES["partial"]
    assert fills["64 B class, 0/64 live"] == palette.SLAB_STATES["empty"]
    assert fills["large block, 20,000 B"] == palette.LARGE_BLOCK
    for key in ("full: 1 slab", "partial: 1 slab", "empty: 1 slab", "large block: 1 block"):
        assert key in svg


def test_slabinfo_prints_the_map_and_writes_svg(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "small.rep"
    trace.write_text("0\n3\n4\n1\na 0 100\na 1 1500\na 2 50000\nf 1\n")
    target = tmp_path / "slabs.svg"
    assert cli.main(["slabinfo", str(trace), "--svg", str(target)]) == 0
    out = capsys.readouterr().out
    table, _, picture = out.partition("the buffer as slabs")
    assert "OBJ SIZE" in table
    assert "A = full: 0 slabs" in picture and "B = partial: 1 slab, 28,672 B" in picture
    assert "C = empty: 1 slab, 12,288 B" in picture and "D = large block: 1 block" in picture
    svg = target.read_text()
    assert "SlabCache after small.rep: slabs by state" in svg
    assert "112 B class, 1/256 live" in svg and "1536 B class, 0/8 live" in svg


def test_slabinfo_refuses_an_output_folder_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for option in ("--svg", "--json"):
        missing = tmp_path / "nowhere" / "out"
        assert cli.main(["slabinfo", "--sample", option, str(missing)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"cannot write {option}" in err
        assert "does not exist" in err


def test_demo_slab_runs_and_checks_itself(tmp_path: Path) -> None:
    out = io.StringIO()
    target = tmp_path / "demo-slab.svg"
    slab_demo.run_slab_demo(out, svg=target)
    text = out.getvalue()
    for step in range(1, 6):
        assert f"\n== {step}. " in text
    assert "magazine hit: the block freed at offset 64" in text
    assert "(full)" in text and "(partial)" in text and "(empty)" in text
    assert "Every step behaved as expected" in text
    svg = target.read_text()
    for key in ("full: 1 slab", "partial: 1 slab", "empty: 1 slab", "large block: 1 block"):
        assert key in svg


def test_demo_slab_fails_when_the_cache_misbehaves(monkeypatch: pytest.MonkeyPatch) -> None:
    class WithoutMagazines(SlabCache):
        __slots__ = ()

        def __init__(self, capacity: int, *, magazine_size: int) -> None:
            del magazine_size  # the demo asks for magazines; this cache has none
            super().__init__(capacity, magazine_size=0)

    # The freed block still comes back, but from its slab: no magazine hit.
    monkeypatch.setattr(slab_demo, "SlabCache", WithoutMagazines)
    with pytest.raises(DemoFailedError, match="a magazine hit"):
        slab_demo.run_slab_demo(io.StringIO())


def test_cli_demo_slab_and_its_svg_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["demo", "slab"]) == 0
    assert "Every step behaved as expected" in capsys.readouterr().out
    assert cli.main(["demo", "linear", "--svg", str(tmp_path / "x.svg")]) == 2
    assert "--svg draws the slab and shared demos only" in capsys.readouterr().err
    assert cli.main(["demo", "slab", "--svg", str(tmp_path / "no" / "x.svg")]) == 2
    assert "does not exist" in capsys.readouterr().err
