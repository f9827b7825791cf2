"""The animated replay page: one self-contained HTML file, no server, nothing fetched.

The page's HTML, script and style sheet are real files in ``web/`` (so that
editors and linters see them as what they are); they are inlined here, with
the recording, into the one file written.
"""

from __future__ import annotations

import json
from html import escape
from importlib import resources

from .palette import page_colours
from .recording import Recording

__all__ = ["replay_page"]


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("web", name).read_text(encoding="utf-8")


def _script_json(data: object) -> str:
    """JSON safe inside a ``<script>`` element (no ``</`` to end it early)."""
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def replay_page(recording: Recording) -> str:
    """The HTML of a page that plays ``recording`` back, frame by frame.

    The data is embedded as JSON; the page draws with canvases and plain
    JavaScript, so it opens from disk in any current browser, offline.

    >>> from slaballoc.tools.recording import record_replay
    >>> from slaballoc.tools.traces import parse_trace
    >>> page = replay_page(record_replay(parse_trace("0\\n1\\n2\\n1\\na 0 10\\nf 0\\n", "t.rep")))
    >>> page.startswith("<!DOCTYPE html>") and "every operation is a frame" in page
    True
    """
    frames = max(1, len(recording.frames))
    per_frame = recording.ops / frames
    how = (
        "every operation is a frame"
        if recording.ops <= frames
        else f"each frame batches about {per_frame:,.{1 if per_frame < 10 else 0}f} operations "
        f"({frames:,} frames)"
    )
    title = f"slaballoc replay: {escape(recording.trace.name)}"
    # The script and the data go in last, so that nothing inside them is taken for a slot.
    return (
        _asset("replay.html")
        .replace("__TITLE__", title)
        .replace("__OPS__", f"{recording.ops:,}")
        .replace("__HOW__", escape(how))
        .replace("__ALIGNMENT__", str(recording.alignment))
        .replace("__CSS__", _asset("replay.css"))
        .replace("__PALETTE__", _script_json(page_colours()))
        .replace("__JS__", _asset("replay.js"))
        .replace("__DATA__", _script_json(recording.to_json()))
    )
