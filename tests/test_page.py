"""The animated replay page, driven in a real (headless) Chromium."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from slaballoc.tools.page import replay_page
from slaballoc.tools.recording import record_replay
from test_replay import random_trace

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"


def test_page_is_self_contained() -> None:
    html = replay_page(record_replay(random_trace(300)))
    assert html.startswith("<!DOCTYPE html>")
    assert "http://" not in html.replace("http://www.w3.org", "")
    assert "https://" not in html
    assert "<script src" not in html and "<link" not in html


def test_long_traces_are_batched_into_frames() -> None:
    recording = record_replay(random_trace(5000), max_frames=100)
    assert len(recording.frames) == 100
    assert recording.frames[-1].op == recording.ops - 1
    assert "each frame batches about 50 operations" in replay_page(recording)
    short = record_replay(random_trace(60), max_frames=100)
    assert [frame.op for frame in short.frames] == list(range(60))


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
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
        "--window-size=1100,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    yield driver
    driver.quit()


def _text(driver: object, element_id: str) -> str:
    text: str = driver.find_element("id", element_id).text  # type: ignore[attr-defined]
    return text


def _lit_pixels(driver: object, canvas_id: str) -> int:
    """How many pixels of a canvas are drawn in the live colour's green family."""
    count: int = driver.execute_script(  # type: ignore[attr-defined]
        """
        const c = document.getElementById(arguments[0]);
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 1] > d[i] + 20) n++;
        return n;
        """,
        canvas_id,
    )
    return count


@pytest.mark.parametrize("ops", [400, 6000], ids=["exact-blocks", "cells"])
def test_page_steps_draws_and_counts(browser: object, tmp_path: Path, ops: int) -> None:
    recording = record_replay(random_trace(ops, seed=11), max_frames=300)
    page = tmp_path / "replay.html"
    page.write_text(replay_page(recording), encoding="utf-8")
    driver = browser
    driver.get(page.as_uri())  # type: ignore[attr-defined]
    assert _text(driver, "counter-op").startswith(f"{recording.frames[0].op + 1:,}:")
    first_live = _text(driver, "counter-live")
    for _ in range(25):
        driver.find_element("id", "step").click()  # type: ignore[attr-defined]
    assert _text(driver, "counter-frame").startswith("26 /")
    assert _text(driver, "counter-live") != first_live
    assert _lit_pixels(driver, "map") > 0, "no live block was drawn"
    drawn = driver.find_element("id", "map").get_attribute("data-drawn")  # type: ignore[attr-defined]
    assert int(drawn) > 0
    driver.find_element("id", "back").click()  # type: ignore[attr-defined]
    assert _text(driver, "counter-frame").startswith("25 /")
    driver.execute_script(  # type: ignore[attr-defined]
        "const s = document.getElementById('scrub'); s.value = s.max;"
        "s.dispatchEvent(new Event('input'));"
    )
    last = recording.frames[-1]
    assert _text(driver, "counter-hw") == f"{last.high_water:,}"
    assert _text(driver, "counter-util") == f"{last.utilization * 100:.2f} %"
    driver.execute_script(  # type: ignore[attr-defined]
        "const s = document.getElementById('scrub'); s.value = 0;"
        "s.dispatchEvent(new Event('input'));"
    )
    driver.find_element("id", "play").click()  # type: ignore[attr-defined]
    driver.execute_script("return new Promise(r => setTimeout(r, 400));")  # type: ignore[attr-defined]
    assert _text(driver, "counter-frame") != "1 / 300"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"replay-page-{ops}.png"
    assert driver.save_screenshot(str(shot))  # type: ignore[attr-defined]
    assert shot.stat().st_size > 10_000
