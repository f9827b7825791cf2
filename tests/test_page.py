"""The animated replay page, driven in a real (headless) Chromium."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slaballoc import DynamicSlab
from slaballoc.policies.blocks import Block
from slaballoc.tools import palette
from slaballoc.tools.interpreter import (
    ALLOC_OF_LIVE_ID,
    DOUBLE_FREE,
    UNKNOWN_FREE,
    TraceInterpreter,
)
from slaballoc.tools.page import replay_page
from slaballoc.tools.recording import FAILED, FREED, Recording, record_replay
from slaballoc.tools.traces import parse_trace
from test_replay import anomalous_trace, random_trace

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"

# Three blocks, the middle one freed (a hole appears), then a block of the same size fills it.
HOLE_TRACE = "0\n4\n5\n1\na 0 100\na 1 100\na 2 100\nf 1\na 3 100\n"


def test_page_is_self_contained() -> None:
    html = replay_page(record_replay(random_trace(300)))
    assert html.startswith("<!DOCTYPE html>")
    assert "http://" not in html.replace("http://www.w3.org", "")
    assert "https://" not in html
    assert "<script src" not in html and "<link" not in html
    assert "__" + "JS__" not in html and "__DATA__" not in html and "__CSS__" not in html


def test_long_traces_are_batched_into_frames() -> None:
    recording = record_replay(random_trace(5000), max_frames=100)
    assert len(recording.frames) == 100
    assert recording.frames[-1].op == recording.ops - 1
    assert "each frame batches about 50 operations" in replay_page(recording)
    short = record_replay(random_trace(60), max_frames=100)
    assert [frame.op for frame in short.frames] == list(range(60))


def test_placement_log_rebuilds_what_the_allocator_reports() -> None:
    """The log's blocks agree with the allocator's own counts at every frame."""
    recording = record_replay(random_trace(3000, seed=3), max_frames=40)
    for frame in recording.frames:
        blocks = recording.blocks_after(frame.op)
        live = [b for b in blocks if b.live]
        assert len(live) == frame.live_blocks
        # The allocator's free blocks: the gaps below the span, plus the rest of the arena.
        gaps = sum(1 for b in blocks if not b.live and b.end <= frame.high_water)
        assert gaps + (frame.high_water < recording.capacity) == frame.free_blocks
        assert max((b.end for b in live), default=0) <= frame.high_water
        assert all(a.end <= b.offset for a, b in itertools.pairwise(blocks))


def test_placement_log_marks_frees_and_failures() -> None:
    trace = parse_trace("0\n2\n4\n1\na 0 40\na 1 250\nf 0\nf 1\n")
    recording = record_replay(trace, capacity=256)
    assert list(recording.offsets) == [0, FAILED, FREED, FREED]
    assert list(recording.block_sizes) == [40, 0, 0, 0]
    assert recording.blocks_after(1) == recording.blocks_after(0)


def test_an_alloc_of_a_live_id_frees_the_old_block_first() -> None:
    # As the interpreter says: the second "a 0" reuses the block the first one made.
    recording = record_replay(parse_trace("0\n1\n2\n1\na 0 100\na 0 100\n"), capacity=256)
    assert list(recording.offsets) == [0, 0]
    assert recording.frames[-1].live_blocks == 1 and recording.frames[-1].live_bytes == 100
    # When that allocation fails, the old block is gone all the same: the id is empty.
    trace = parse_trace("0\n2\n3\n1\na 1 200\na 0 40\na 0 100\n")
    failed = record_replay(trace, capacity=256)
    assert list(failed.offsets) == [0, 200, FAILED]
    assert failed.blocks_after(2) == [Block(0, 200, True), Block(200, 40, False)]
    assert failed.frames[-1].live_blocks == 1


class SlabByIds:
    """A reference :class:`TraceTarget`: a ``DynamicSlab``'s views by id, nothing more."""

    def __init__(self, capacity: int) -> None:
        self.slab = DynamicSlab(capacity)
        self.views: dict[int, memoryview] = {}
        self.requested: dict[int, int] = {}

    def alloc(self, ident: int, size: int) -> None:
        self.views[ident] = self.slab.alloc(size or 1)
        self.requested[ident] = size

    def free(self, ident: int) -> None:
        self.slab.free(self.views.pop(ident))
        del self.requested[ident]

    def realloc(self, ident: int, size: int) -> None:
        self.views[ident] = self.slab.realloc(self.views[ident], size or 1)
        self.requested[ident] = size

    def live_blocks(self) -> list[Block]:
        offsets = sorted(self.slab.offset_of(view) for view in self.views.values())
        return [Block(offset, self.slab.policy.size_of(offset), True) for offset in offsets]


@pytest.mark.parametrize("seed", range(6))
def test_the_recording_agrees_with_the_interpreter_on_every_anomaly(seed: int) -> None:
    """After every operation, the log's memory is the interpreter's, failures and anomalies too."""
    capacity = 8192  # the 3000-byte requests cannot all fit: failures among the anomalies
    trace = anomalous_trace(500, seed)
    recording = record_replay(trace, capacity=capacity, max_frames=50)
    reference = SlabByIds(capacity)
    interpreter = TraceInterpreter(trace, reference)
    frames = iter(recording.frames)
    frame = next(frames)
    for index in interpreter.steps():
        assert [b for b in recording.blocks_after(index) if b.live] == reference.live_blocks()
        if frame.op == index:
            assert frame.live_blocks == len(reference.views)
            assert frame.live_bytes == sum(reference.requested.values())
            frame = next(frames, frame)
    tally = interpreter.tally
    assert list(recording.offsets).count(FAILED) == tally.failed > 0
    assert set(tally.anomalies) == {DOUBLE_FREE, UNKNOWN_FREE, ALLOC_OF_LIVE_ID}


def test_recording_refuses_an_arena_the_page_cannot_address() -> None:
    with pytest.raises(ValueError, match="too large to record"):
        record_replay(random_trace(10), capacity=1 << 31)


def test_log_travels_compressed() -> None:
    recording = record_replay(random_trace(5000), max_frames=100)
    data = recording.to_json()
    # 5,000 operations, 17 bytes each unpacked: the packed log is much smaller.
    assert len(data["log"]) < 5000 * 17 / 2
    assert set(data["frames"]) >= {"op", "live", "highWater", "freeBlocks", "histogram"}


# -- in the browser -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(
            "headless Chromium is not installed (apt-get install chromium chromium-driver; "
            "make test installs them where it can): skipping the browser test"
        )
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    # The page as a 1280x800 screen shows it: "above the fold" is measured there.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False},
    )
    yield driver
    driver.quit()


def _open(driver: Any, recording: Recording, tmp_path: Path) -> None:
    page = tmp_path / "replay.html"
    page.write_text(replay_page(recording), encoding="utf-8")
    driver.get(page.as_uri())
    deadline = time.monotonic() + 10
    while not driver.execute_script("return document.body.dataset.ready"):
        assert time.monotonic() < deadline, driver.find_element("id", "status").text
        time.sleep(0.05)


def _text(driver: Any, element_id: str) -> str:
    text: str = driver.find_element("id", element_id).text
    return text


def _data(driver: Any, element_id: str, key: str) -> str:
    value: str = driver.execute_script(
        "return document.getElementById(arguments[0]).dataset[arguments[1]];", element_id, key
    )
    return value


def _pixel(driver: Any, x: int, y: int) -> str:
    """The colour of one pixel of the map canvas, as #rrggbb."""
    rgb: list[int] = driver.execute_script(
        "return Array.from(document.getElementById('map').getContext('2d')"
        ".getImageData(arguments[0], arguments[1], 1, 1).data.slice(0, 3));",
        x,
        y,
    )
    return "#" + "".join(f"{c:02x}" for c in rgb)


def _map_point(driver: Any, byte: int) -> tuple[int, int]:
    """The canvas pixel (x, y) that draws ``byte`` in the current view."""
    point: list[int] = driver.execute_script(
        "const [x, y, h] = pixelBox(Math.floor((arguments[0] - view.start) / view.perPixel));"
        "return [x, y + Math.floor(h / 2)];",
        byte,
    )
    return point[0], point[1]


def _mouse(driver: Any, kind: str, x: int, y: int) -> None:
    """Send a mouse event at canvas pixel (x, y), as the browser would."""
    driver.execute_script(
        "const c = document.getElementById('map'), box = c.getBoundingClientRect();"
        "const at = {clientX: box.left + (arguments[1] + 0.5) * box.width / c.width,"
        "            clientY: box.top + (arguments[2] + 0.5) * box.height / c.height,"
        "            bubbles: true};"
        "c.dispatchEvent(new MouseEvent(arguments[0], at));",
        kind,
        x,
        y,
    )


def _shoot(driver: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{name}.png"
    assert driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def test_an_empty_trace_says_there_is_nothing_to_play(browser: Any, tmp_path: Path) -> None:
    page = tmp_path / "empty.html"
    page.write_text(replay_page(record_replay(parse_trace("0\n0\n0\n1\n"))), encoding="utf-8")
    browser.get(page.as_uri())
    assert _text(browser, "status") == "The trace has no operations: there is nothing to play."


def test_a_hole_appears_and_closes(browser: Any, tmp_path: Path) -> None:
    recording = record_replay(parse_trace(HOLE_TRACE, "hole.rep"))
    _open(browser, recording, tmp_path)
    holes, middle = [], []
    for frame in range(5):
        if frame:
            browser.find_element("id", "step").click()
        holes.append(int(_data(browser, "view-counts", "holes")))
        middle.append(_pixel(browser, *_map_point(browser, 104 + 8)))
        if frame == 3:
            assert _text(browser, "operation") == "Operation 4 of 5: free block 1"
            _shoot(browser, "replay-hole-open")
    assert holes == [0, 0, 0, 1, 0]
    assert middle[3] == palette.FREE and middle[4] == palette.LIVE == middle[2]
    assert _text(browser, "operation") == (
        "Operation 5 of 5: allocate block 3: 100 bytes → placed at offset 104 (a 104-byte block)"
    )


def test_a_failed_alloc_of_a_live_id_empties_it_on_the_map(browser: Any, tmp_path: Path) -> None:
    # The third operation frees block 0 (its id is allocated again) and then cannot fit 100 bytes.
    trace = parse_trace("0\n2\n3\n1\na 1 200\na 0 40\na 0 100\n", "refused.rep")
    _open(browser, record_replay(trace, capacity=256), tmp_path)
    block_0 = _map_point(browser, 200 + 2)  # left of the size written on the block
    colours = []
    for button in ("step", "step", "back"):
        browser.find_element("id", button).click()
        colours.append(_pixel(browser, *block_0))
        if len(colours) == 2:
            assert _text(browser, "operation") == (
                "Operation 3 of 3: allocate block 0: 100 bytes (failed: no free block was large "
                "enough)"
            )
    assert colours == [palette.LIVE, palette.FREE, palette.LIVE]


@pytest.mark.parametrize("ops", [400, 6000], ids=["every-op", "batched"])
def test_page_steps_zooms_and_explains(browser: Any, tmp_path: Path, ops: int) -> None:
    recording = record_replay(random_trace(ops, seed=11), max_frames=300)
    _open(browser, recording, tmp_path)
    driver = browser
    card = _text(driver, "operation")
    assert re.match(r"Operations? 1\b", card)
    assert re.search(
        r"(allocate block [\d,]+: [\d,]+ bytes|free block [\d,]+|resize block [\d,]+ to)", card
    )
    first_live = _text(driver, "counter-live")
    for _ in range(25):
        driver.find_element("id", "step").click()
    assert _text(driver, "position") == f"frame 26 / {len(recording.frames)}"
    assert _text(driver, "counter-live") != first_live
    assert int(_data(driver, "map", "drawn")) > 0
    driver.find_element("id", "back").click()
    assert _text(driver, "position").startswith("frame 25 /")
    driver.execute_script(
        "const s = document.getElementById('scrub'); s.value = s.max;"
        "s.dispatchEvent(new Event('input'));"
    )
    last = recording.frames[-1]
    assert _text(driver, "counter-hw").startswith(f"{last.high_water:,} B")
    assert _text(driver, "counter-util") == f"{last.utilization * 100:.2f} %"
    assert _text(driver, "counter-free-blocks") == f"{last.free_blocks:,}"
    _check_chart_and_histogram(driver, last.free_blocks)
    _check_map(driver, recording, ops)

    driver.execute_script(
        "const s = document.getElementById('scrub'); s.value = 0;"
        "s.dispatchEvent(new Event('input'));"
    )
    driver.find_element("id", "play").click()
    driver.execute_script("return new Promise(r => setTimeout(r, 400));")
    assert not _text(driver, "position").startswith("frame 1 /")
    _shoot(driver, f"replay-{ops}-playing")


def _check_chart_and_histogram(driver: Any, free_blocks: int) -> None:
    # The chart: axes with units, every tick a number of bytes, a legend; seen without scrolling.
    ticks = _data(driver, "timeline", "yTicks").split("|")
    assert ticks[0] == "0 B" and len(ticks) >= 3
    assert all(re.fullmatch(r"[\d.,]+ (B|KiB|MiB)", tick) for tick in ticks)
    assert _data(driver, "timeline", "legend") == "live bytes|high-water mark|now"
    for element in ("timeline", "map"):
        bottom = driver.execute_script(
            "return document.getElementById(arguments[0]).getBoundingClientRect().bottom;", element
        )
        assert bottom <= 800, f"the {element} is below the fold"
    # Every histogram bar has its size and its count.
    labels = json.loads(_data(driver, "histogram", "labels"))
    assert labels and all(re.fullmatch(r"\d+ (B|KiB|MiB)", size) for size, _ in labels)
    assert sum(count for _, count in labels) == free_blocks


def _check_map(driver: Any, recording: Recording, ops: int) -> None:
    # The caption says what the map shows, for each setting.
    driver.find_element("id", "view-all").click()
    assert _text(driver, "caption").startswith(f"Offsets 0 to {recording.span:,}: every byte")
    driver.find_element("id", "view-hw").click()
    assert "up to the high-water mark so far" in _text(driver, "caption")
    last = recording.frames[-1]
    holes = [b for b in recording.blocks_after(last.op) if not b.live and b.end <= last.high_water]
    assert int(_data(driver, "view-counts", "holes")) == len(holes)
    whole = float(_data(driver, "map", "perPixel"))

    # Hover: the block under the mouse, its offset, size and the operation that made it.
    live = [b for b in recording.blocks_after(recording.frames[-1].op) if b.live]
    target = max(live, key=lambda b: b.size)
    x, y = _map_point(driver, target.offset + target.size // 2)
    _mouse(driver, "mousemove", x, y)
    tip = _text(driver, "tooltip")
    assert f"offset {target.offset:,}, {target.size:,} bytes" in tip
    assert re.search(r"made by operation [\d,]+: (allocate|resize) block [\d,]+", tip)
    _shoot(driver, f"replay-{ops}-hover")
    # The tooltip stays true when the frame changes under a still mouse.
    driver.execute_script(
        "const s = document.getElementById('scrub'); s.value = 0;"
        "s.dispatchEvent(new Event('input'));"
    )
    assert recording.frames[0].high_water <= target.offset  # so, at frame 1, never used
    assert "never used so far" in _text(driver, "tooltip")
    driver.execute_script(
        "const s = document.getElementById('scrub'); s.value = s.max;"
        "s.dispatchEvent(new Event('input'));"
    )
    assert f"offset {target.offset:,}, {target.size:,} bytes" in _text(driver, "tooltip")

    # Drag across the map: the view zooms into those bytes, and the caption says so.
    _mouse(driver, "mousedown", x, y)
    _mouse(driver, "mousemove", x + 60, y)
    _mouse(driver, "mouseup", x + 60, y)
    caption = _text(driver, "caption")
    assert caption.startswith("Zoomed in: offsets ")
    assert float(_data(driver, "map", "perPixel")) < whole
    assert "In this view:" in _text(driver, "view-counts")
    _shoot(driver, f"replay-{ops}-zoomed")
    driver.find_element("id", "zoom-out").click()
    assert _text(driver, "caption") != caption
    # A click (no drag) zooms in 8 times around the point clicked.
    driver.find_element("id", "view-all").click()
    before = driver.execute_script("return view.end - view.start;")
    _mouse(driver, "mousedown", x, y)
    _mouse(driver, "mouseup", x, y)
    assert _text(driver, "caption").startswith("Zoomed in: offsets ")
    after = driver.execute_script("return view.end - view.start;")
    assert after == pytest.approx(before / 8, abs=2)
