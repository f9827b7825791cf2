"""The animated replay page: one self-contained HTML file, no server, nothing fetched."""

from __future__ import annotations

import json
from html import escape

from .recording import HISTOGRAM_BUCKETS, Recording

__all__ = ["replay_page"]


def replay_page(recording: Recording) -> str:
    """The HTML of a page that plays ``recording`` back, step by step.

    The data is embedded as JSON; the page draws with a canvas and plain
    JavaScript, so it opens from disk in any browser, offline.
    """
    data = json.dumps(recording.to_json(), separators=(",", ":"))
    frames = max(1, len(recording.frames))
    how = (
        "every operation is a frame"
        if recording.ops <= frames
        else f"each frame batches about {recording.ops / frames:,.0f} operations "
        f"({frames:,} frames)"
    )
    title = f"slaballoc replay: {escape(recording.trace)}"
    return (
        _TEMPLATE.replace("__TITLE__", title)
        .replace("__OPS__", f"{recording.ops:,}")
        .replace("__HOW__", escape(how))
        .replace("__ALIGNMENT__", str(recording.alignment))
        .replace("__BUCKETS__", str(HISTOGRAM_BUCKETS))
        .replace("__DATA__", data.replace("</", "<\\/"))
    )


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>__TITLE__</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1000px; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  .sub { color: #555; margin-bottom: 16px; }
  .controls { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin: 12px 0; }
  button { font-size: 14px; padding: 4px 12px; }
  #scrub { flex: 1; min-width: 240px; }
  .counters { display: grid; grid-template-columns: repeat(4, 1fr); gap: 8px; margin: 12px 0; }
  .counter { background: #f4f4f4; border-radius: 6px; padding: 8px; }
  .counter b { display: block; font-size: 18px; font-variant-numeric: tabular-nums; }
  canvas { display: block; width: 100%; border: 1px solid #ddd; margin: 4px 0 12px; }
  .legend span { display: inline-block; width: 12px; height: 12px; vertical-align: middle;
                 margin: 0 4px 0 12px; }
  h2 { font-size: 15px; margin: 16px 0 4px; }
</style>
</head>
<body>
<h1>__TITLE__</h1>
<div class="sub">__OPS__ operations through DynamicSlab (best fit, __ALIGNMENT__-byte alignment);
__HOW__.</div>
<div class="controls">
  <button id="back" title="previous frame">&#9664; step</button>
  <button id="play" title="play or pause">play</button>
  <button id="step" title="next frame">step &#9654;</button>
  <label>speed <select id="speed">
    <option value="1">1 frame/s</option><option value="10">10 frames/s</option>
    <option value="30" selected>30 frames/s</option><option value="120">120 frames/s</option>
  </select></label>
  <label><input id="zoom" type="checkbox" checked> zoom to the high-water mark so far</label>
  <input id="scrub" type="range" min="0" value="0" aria-label="frame">
  <span id="position"></span>
</div>
<div class="counters">
  <div class="counter">operation<b id="counter-op">-</b></div>
  <div class="counter">live bytes<b id="counter-live">-</b></div>
  <div class="counter">high-water mark<b id="counter-hw">-</b></div>
  <div class="counter">utilization (peak / high-water)<b id="counter-util">-</b></div>
  <div class="counter">live blocks<b id="counter-live-blocks">-</b></div>
  <div class="counter">free blocks<b id="counter-free-blocks">-</b></div>
  <div class="counter">peak live bytes<b id="counter-peak">-</b></div>
  <div class="counter">frame<b id="counter-frame">-</b></div>
</div>
<h2>Memory map</h2>
<div class="legend">from offset 0 (left) to the high-water mark (right), to scale:
  <span style="background:#3a7d44"></span>live <span style="background:#e3e3e3"></span>free
  <span style="background:#c0392b"></span>high-water mark so far</div>
<canvas id="map" width="960" height="110"></canvas>
<h2>Free blocks by size</h2>
<canvas id="histogram" width="960" height="150"></canvas>
<h2>Live bytes and high-water mark over the replay</h2>
<canvas id="timeline" width="960" height="150"></canvas>
<script id="recording" type="application/json">__DATA__</script>
<script>
"use strict";
const rec = JSON.parse(document.getElementById("recording").textContent);
const frames = rec.frames, BUCKETS = __BUCKETS__;
const $ = (id) => document.getElementById(id);
const fmt = (n) => n.toLocaleString("en-US");
const scrub = $("scrub");
scrub.max = frames.length - 1;
let current = 0, playing = false, lastTick = 0, carry = 0;
const cellCache = new Map();

function cells(frame) {
  if (!cellCache.has(frame.op)) {
    const raw = atob(frame.cells), out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    cellCache.set(frame.op, out);
  }
  return cellCache.get(frame.op);
}

function drawMap(frame) {
  const canvas = $("map"), ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  // The bytes shown: the whole replay's span, or (zoomed) the high-water mark so far.
  const span = $("zoom").checked ? Math.max(frame.highWater, 1) : rec.span;
  ctx.fillStyle = "#e3e3e3";
  ctx.fillRect(0, 0, w, h);
  let drawn = 0;
  if (frame.blocks) {  // few blocks: draw each one exactly, with its border
    for (const [offset, size, live] of frame.blocks) {
      if (offset >= span) continue;
      const x = offset / span * w, bw = Math.max(Math.min(size, span - offset) / span * w, 1);
      ctx.fillStyle = live ? "#3a7d44" : "#e3e3e3";
      ctx.fillRect(x, 0, bw, h);
      ctx.strokeStyle = "#ffffff";
      ctx.strokeRect(x + 0.5, 0.5, bw - 1, h - 1);
      if (live) drawn++;
    }
  } else {  // many blocks: each cell shaded by the share of its bytes that is live
    const c = cells(frame), shown = Math.min(c.length, Math.ceil(span / rec.span * c.length));
    const cw = w / shown;
    for (let i = 0; i < shown; i++) {
      if (!c[i]) continue;
      const t = c[i] / 255;
      ctx.fillStyle = `rgb(${Math.round(227 - t * 169)},${Math.round(227 - t * 102)},` +
                      `${Math.round(227 - t * 159)})`;
      ctx.fillRect(i * cw, 0, Math.ceil(cw), h);
      drawn++;
    }
  }
  const hx = frame.highWater / span * w;
  ctx.fillStyle = "#c0392b";
  ctx.fillRect(Math.min(hx, w - 2), 0, 2, h);
  canvas.dataset.drawn = String(drawn);
}

function drawHistogram(frame) {
  const canvas = $("histogram"), ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, base = h - 22;
  ctx.clearRect(0, 0, w, h);
  const counts = frame.histogram, top = Math.max(1, ...counts);
  const bw = w / BUCKETS;
  ctx.font = "10px sans-serif";
  ctx.textAlign = "center";
  for (let k = 0; k < BUCKETS; k++) {
    const bh = counts[k] ? Math.max(2, Math.log2(1 + counts[k]) / Math.log2(1 + top) * (base - 14))
                         : 0;
    ctx.fillStyle = "#7f8c8d";
    ctx.fillRect(k * bw + 2, base - bh, bw - 4, bh);
    ctx.fillStyle = "#222";
    if (counts[k]) ctx.fillText(String(counts[k]), k * bw + bw / 2, base - bh - 3);
    if (k % 2 === 0) ctx.fillText(sizeLabel(2 ** k), k * bw + bw / 2, h - 6);
  }
}

function sizeLabel(bytes) {
  const units = ["B", "K", "M", "G"];
  let u = 0;
  while (bytes >= 1024 && u < units.length - 1) { bytes /= 1024; u++; }
  return bytes + units[u];
}

function drawTimeline(frame) {
  const canvas = $("timeline"), ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, top = Math.max(1, rec.span);
  ctx.clearRect(0, 0, w, h);
  const line = (value, colour) => {
    ctx.strokeStyle = colour;
    ctx.beginPath();
    frames.forEach((f, i) => {
      const x = i / Math.max(1, frames.length - 1) * w, y = h - 4 - value(f) / top * (h - 8);
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    });
    ctx.stroke();
  };
  line((f) => f.highWater, "#c0392b");
  line((f) => f.live, "#3a7d44");
  const x = current / Math.max(1, frames.length - 1) * w;
  ctx.fillStyle = "#2c3e50";
  ctx.fillRect(x - 1, 0, 2, h);
}

function show(index) {
  current = Math.max(0, Math.min(frames.length - 1, index));
  const f = frames[current];
  scrub.value = current;
  $("counter-op").textContent = `${fmt(f.op + 1)}: ${f.text}`;
  $("counter-live").textContent = fmt(f.live);
  $("counter-hw").textContent = fmt(f.highWater);
  const utilization = f.highWater ? f.peak / f.highWater * 100 : 100;
  $("counter-util").textContent = utilization.toFixed(2) + " %";
  $("counter-live-blocks").textContent = fmt(f.liveBlocks);
  $("counter-free-blocks").textContent = fmt(f.freeBlocks);
  $("counter-peak").textContent = fmt(f.peak);
  $("counter-frame").textContent = `${fmt(current + 1)} / ${fmt(frames.length)}`;
  $("position").textContent = `op ${fmt(f.op + 1)} of ${fmt(rec.ops)}`;
  drawMap(f);
  drawHistogram(f);
  drawTimeline(f);
}

function tick(now) {
  if (!playing) return;
  const rate = Number($("speed").value);
  carry += (now - lastTick) / 1000 * rate;
  lastTick = now;
  if (carry >= 1) {
    const steps = Math.floor(carry);
    carry -= steps;
    show(current + steps);
    if (current === frames.length - 1) { setPlaying(false); return; }
  }
  requestAnimationFrame(tick);
}

function setPlaying(on) {
  playing = on;
  $("play").textContent = on ? "pause" : "play";
  if (on) {
    if (current === frames.length - 1) show(0);
    lastTick = performance.now();
    carry = 0;
    requestAnimationFrame(tick);
  }
}

$("play").addEventListener("click", () => setPlaying(!playing));
$("step").addEventListener("click", () => { setPlaying(false); show(current + 1); });
$("back").addEventListener("click", () => { setPlaying(false); show(current - 1); });
$("zoom").addEventListener("change", () => show(current));
scrub.addEventListener("input", () => { setPlaying(false); show(Number(scrub.value)); });
document.addEventListener("keydown", (e) => {
  if (e.key === "ArrowRight") { setPlaying(false); show(current + 1); }
  if (e.key === "ArrowLeft") { setPlaying(false); show(current - 1); }
  if (e.key === " ") { e.preventDefault(); setPlaying(!playing); }
});
show(0);
</script>
</body>
</html>
"""
