"use strict";
// The replay page.  The recording carries the trace and, for every operation, where its
// block went (the placement log); the page rebuilds the memory after any operation from it,
// so the map can zoom down to single bytes.  The counters come from the allocator itself.
const rec = JSON.parse(document.getElementById("recording").textContent);
const PAL = JSON.parse(document.getElementById("palette").textContent);
const $ = (id) => document.getElementById(id);
const fmt = (n) => Math.round(n).toLocaleString("en-US");
const F = rec.frames, FRAMES = F.op.length, FREED = -1, FAILED = -2;
const ALLOC = 0, FREE = 1;
const GUTTER = 76, MAP_W = 764, MIN_ROW_H = 4, MAX_ROW_H = 48, LABEL_ROW_H = 24, FEW_BLOCKS = 300;

// -- the placement log ----------------------------------------------------------------------
let kinds, ids, sizes, offsets, slack, previous, blockOp;

async function unpack() {
  const packed = Uint8Array.from(atob(rec.log), (c) => c.charCodeAt(0));
  const stream = new Blob([packed]).stream().pipeThrough(new DecompressionStream("deflate"));
  const raw = await new Response(stream).arrayBuffer();
  const n = rec.ops, base = n + ((4 - n % 4) % 4);
  kinds = new Uint8Array(raw, 0, n);
  const column = (k) => new Int32Array(raw, base + 4 * n * k, n);
  [ids, sizes, offsets, slack] = [column(0), column(1), column(2), column(3)];
  let idCount = 0;
  for (let i = 0; i < n; i++) idCount = Math.max(idCount, ids[i] + 1);
  // previous[i]: the last operation before i that changed the same id (to step backwards).
  previous = new Int32Array(n).fill(-1);
  const last = new Int32Array(idCount).fill(-1);
  for (let i = 0; i < n; i++) {
    if (!changesId(i)) continue;
    previous[i] = last[ids[i]];
    last[ids[i]] = i;
  }
  blockOp = new Int32Array(idCount).fill(-1);  // the operation that made each id's live block
}

// Whether operation i set its id's block: placed one (offset >= 0) or left the id empty (a
// free, or a failed allocation: an allocation of a live id frees the old block first).  A
// failed resize changes nothing.
const changesId = (i) => ids[i] >= 0 && (offsets[i] !== FAILED || kinds[i] === ALLOC);

const roundUp = (n, a) => Math.ceil(n / a) * a;
const blockSize = (op) => roundUp(Math.max(sizes[op], 1), rec.alignment) + slack[op];

let applied = 0;  // operations applied: the memory is the state after operation applied - 1
function apply(i) {
  if (!changesId(i)) return;
  blockOp[ids[i]] = offsets[i] < 0 ? -1 : i;
}
function undo(i) {
  if (!changesId(i)) return;
  const p = previous[i];
  blockOp[ids[i]] = p < 0 || offsets[p] < 0 ? -1 : p;
}
function moveTo(op) {
  while (applied <= op) apply(applied++);
  while (applied > op + 1) undo(--applied);
}

function describe(i) {
  const id = ids[i], size = sizes[i];
  if (kinds[i] === FREE) return id < 0 ? "free nothing" : `free block ${fmt(id)}`;
  const words = kinds[i] === ALLOC ? `allocate block ${fmt(id)}: ${fmt(size)} bytes`
                                   : `resize block ${fmt(id)} to ${fmt(size)} bytes`;
  if (offsets[i] === FAILED) return words + " (failed: no free block was large enough)";
  return words;
}
function placed(i) {
  if (offsets[i] === FAILED || offsets[i] === FREED) return "";
  return ` \u2192 placed at offset ${fmt(offsets[i])} (a ${fmt(blockSize(i))}-byte block)`;
}

// -- bytes and numbers ---------------------------------------------------------------------
function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let u = 0;
  while (Math.abs(n) >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return (u === 0 ? fmt(n) : n.toFixed(n < 10 ? 2 : 1).replace(/\.?0+$/, "")) + " " + units[u];
}
const withUnits = (n) => n < 1024 ? `${fmt(n)} B` : `${fmt(n)} B (${bytes(n)})`;
function showBytes(id, n) {  // a counter: exact bytes, and the rounded size in smaller type
  $(id).innerHTML = `${fmt(n)} B` + (n >= 1024 ? ` <small>${bytes(n)}</small>` : "");
}

// -- the memory map ------------------------------------------------------------------------
let current = 0, mode = "hw", zoom = [0, 1];
let view = { start: 0, end: 1, perPixel: 1, rows: 1, rowH: 1, image: null };

function viewRange(frame) {
  if (mode === "zoom") return zoom;
  if (mode === "hw") return [0, Math.max(F.highWater[frame], 1)];
  return [0, rec.span];
}

function layout(start, end, blockCount) {
  const span = end - start;
  // Bytes per pixel: a power of two, the smallest that fits the view in rows of at least
  // minRowH pixels; never more than a byte a pixel unless the view is less than a row.  With
  // few blocks in view, rows tall enough to write each block's size on it (LABEL_ROW_H).
  const minRowH = blockCount <= FEW_BLOCKS ? LABEL_ROW_H : MIN_ROW_H;
  let perPixel = Math.min(1, 2 ** Math.ceil(Math.log2(span / MAP_W)));
  while (Math.ceil(span / (MAP_W * perPixel)) * minRowH > $("map").height) perPixel *= 2;
  const rows = Math.ceil(span / (MAP_W * perPixel));
  const rowH = Math.max(minRowH, Math.min(MAX_ROW_H, Math.floor($("map").height / rows)));
  return { start, end, perPixel, rows, rowH };
}

function hex(c) { return [1, 3, 5].map((k) => parseInt(c.slice(k, k + 2), 16)); }
// The colour of a pixel by the share of its bytes that is live, in 256 steps, as the canvas's
// 32-bit RGBA words: step 0 is free, 255 all live, anything between a paler green.
const SHADES = new Uint32Array(256);
{
  const rgba = ([r, g, b]) => new Uint32Array(new Uint8Array([r, g, b, 255]).buffer)[0];
  const low = hex(PAL.partialLow), high = hex(PAL.partialHigh);
  for (let k = 1; k < 255; k++) SHADES[k] = rgba(low.map((a, c) => Math.round(a + (high[c] - a) * k / 255)));
  SHADES[0] = rgba(hex(PAL.free));
  SHADES[255] = rgba(hex(PAL.live));
}
const UNUSED = [hex(PAL.unused), hex(PAL.unusedHatch)].map(
  ([r, g, b]) => new Uint32Array(new Uint8Array([r, g, b, 255]).buffer)[0]);
function shade(share) {
  if (share <= 1e-9) return 0;
  if (share >= 1 - 1e-9) return 255;
  return Math.min(254, Math.max(1, Math.round(share * 255)));
}

function liveBlocksIn(start, end) {
  const out = [];
  for (let id = 0; id < blockOp.length; id++) {
    const op = blockOp[id];
    if (op < 0) continue;
    const offset = offsets[op], size = blockSize(op);
    if (offset < end && offset + size > start) out.push([offset, size, id, op]);
  }
  return out;
}

function pixelBox(pixel) {  // pixel index in reading order -> canvas rectangle
  const row = Math.floor(pixel / MAP_W);
  return [GUTTER + pixel % MAP_W, row * view.rowH, view.rowH];
}

function drawMap() {
  const canvas = $("map"), ctx = canvas.getContext("2d");
  const [start, end] = viewRange(current);
  const blocks = liveBlocksIn(start, end);
  view = layout(start, end, blocks.length);
  const { perPixel, rows, rowH } = view;
  const pixels = rows * MAP_W, share = new Float32Array(pixels);
  for (const [offset, size] of blocks) {
    const a = (Math.max(offset, start) - start) / perPixel;
    const b = (Math.min(offset + size, end) - start) / perPixel;
    for (let p = Math.floor(a); p < Math.min(Math.ceil(b), pixels); p++) {
      share[p] += Math.min(b, p + 1) - Math.max(a, p);
    }
  }
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const image = ctx.createImageData(MAP_W, rows * rowH), words = new Uint32Array(image.data.buffer);
  const gap = rowH >= 8 ? 1 : 0;  // tall rows get a white line between them, to read as rows
  const usable = Math.min(pixels, Math.ceil((end - start) / perPixel));
  // Bytes above the high-water mark have never been used: hatched, unlike a hole.
  const unused = Math.max(0, Math.ceil((F.highWater[current] - start) / perPixel));
  for (let p = 0; p < usable; p++) {
    const x = p % MAP_W, row = (p - x) / MAP_W;
    const colour = p < unused ? SHADES[shade(share[p])] : 0;
    for (let y = row * rowH, stop = (row + 1) * rowH - gap; y < stop; y++) {
      words[y * MAP_W + x] = p < unused ? colour : (x + y) % 6 ? UNUSED[0] : UNUSED[1];
    }
  }
  ctx.putImageData(image, GUTTER, 0);
  if (blocks.length <= 3000) drawBlockEdges(ctx, blocks);
  drawGutter(ctx);
  const hw = F.highWater[current];
  if (hw > start && hw <= end) {  // the high-water mark: a red bar just after its last byte
    const [x, y, h] = pixelBox(Math.ceil((hw - start) / perPixel) - 1);
    ctx.fillStyle = PAL.highWater;
    ctx.fillRect(x, y, 3, h);
  }
  outlineLastOperation(ctx);
  view.image = null;  // taken when a drag starts, to draw the selection over
  canvas.dataset.drawn = String(blocks.length);
  canvas.dataset.perPixel = String(perPixel);
  drawViewCounts(blocks);
  $("caption").textContent = caption();
}

function drawBlockEdges(ctx, blocks) {
  // Few blocks in view: each block gets white edges and, when it is wide enough, its size.
  const { start, perPixel, rowH } = view;
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  const pieces = (offset, size, each) => {
    let a = (Math.max(offset, start) - start) / perPixel;
    const b = (Math.min(offset + size, view.end) - start) / perPixel;
    while (a < b) {
      const rowEnd = (Math.floor(a / MAP_W) + 1) * MAP_W;
      each(a, Math.min(b, rowEnd));
      a = Math.min(b, rowEnd);
    }
  };
  // A white line where a block starts and where it ends; none where a row's end cuts it.
  ctx.fillStyle = "#ffffff";
  for (const [offset, size] of blocks) {
    const first = (offset - start) / perPixel, last = (offset + size - start) / perPixel;
    if (last - first < 4) continue;
    pieces(offset, size, (a, b) => {
      const [x, y] = pixelBox(Math.floor(a));
      if (a === first) ctx.fillRect(x, y, 1, rowH);
      if (b === last) ctx.fillRect(x + Math.round(b - a) - 1, y, 1, rowH);
    });
  }
  if (rowH < 14) return;
  const sorted = blocks.slice().sort((p, q) => p[0] - q[0]);
  // A hole or block cut by the view's edges is labelled with its whole size.
  const [before, after] = edges(view.start, view.end);
  let end = before;
  const label = (offset, size, colour, suffix = "") => {
    let widest = null;
    pieces(offset, size, (a, b) => { if (!widest || b - a > widest[1] - widest[0]) widest = [a, b]; });
    const text = bytes(size) + suffix;
    if (!widest || widest[1] - widest[0] < ctx.measureText(text).width + 6) return;
    const [x, y] = pixelBox(Math.floor(widest[0]));
    ctx.fillStyle = colour;
    ctx.fillText(text, x + (widest[1] - widest[0]) / 2, y + rowH / 2);
  };
  const top = Math.min(after, F.highWater[current]);
  for (const [offset, size] of sorted) {
    if (offset > end) label(end, offset - end, "#333", " free");
    label(offset, size, "#fff");
    end = Math.max(end, offset + size);
  }
  if (top > end) label(end, top - end, "#333", " free");
}

function edges(start, end) {
  // The end of the last live block before ``start`` and the start of the first after ``end``.
  let before = 0, after = Infinity;
  for (let id = 0; id < blockOp.length; id++) {
    const op = blockOp[id];
    if (op < 0) continue;
    const o = offsets[op], e = o + blockSize(op);
    if (e <= start && e > before) before = e;
    if (o >= end && o < after) after = o;
  }
  return [before, after];
}

function drawGutter(ctx) {
  // Each row's first offset, on as many rows as there is room for.
  const { start, perPixel, rows, rowH } = view;
  ctx.fillStyle = "#222";
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "right";
  ctx.textBaseline = "top";
  const every = Math.max(1, Math.ceil(14 / rowH));
  for (let row = 0; row < rows; row += every) {
    ctx.fillText(fmt(start + row * MAP_W * perPixel), GUTTER - 6, row * rowH + Math.max(0, rowH / 2 - 6));
  }
}

function lastOperation() {
  for (let i = F.op[current]; i > (current ? F.op[current - 1] : -1); i--) {
    if (changesId(i) && (offsets[i] >= 0 || previous[i] >= 0)) return i;
  }
  return F.op[current];
}

function outlineLastOperation(ctx) {
  // The block the frame's last operation made or freed, outlined in blue: a hole appears here.
  const i = lastOperation();
  let op = i;
  if (offsets[i] < 0) op = previous[i];  // a free or a failed allocation: the block it emptied
  if (op < 0 || offsets[op] < 0) return;
  const { start, end, perPixel } = view;
  const a = Math.max(offsets[op], start), b = Math.min(offsets[op] + blockSize(op), end);
  if (a >= b) return;
  ctx.strokeStyle = PAL.current;
  ctx.lineWidth = 2;
  let p = Math.floor((a - start) / perPixel);
  const last = Math.max(p, Math.ceil((b - start) / perPixel) - 1);
  while (p <= last) {
    const rowEnd = Math.min(last, (Math.floor(p / MAP_W) + 1) * MAP_W - 1);
    const [x, y, h] = pixelBox(p);
    ctx.strokeRect(x - 1, y + 1, rowEnd - p + 3, Math.max(h - 2, 2));
    p = rowEnd + 1;
  }
}

function caption() {
  const { start, end, perPixel, rows } = view;
  let what;
  if (mode === "hw") what = `Offsets 0 to ${fmt(end)}: up to the high-water mark so far (the view grows as the replay uses more memory).`;
  else if (mode === "all") what = `Offsets 0 to ${fmt(end)}: every byte this replay ever uses (its final high-water mark).`;
  else what = `Zoomed in: offsets ${fmt(start)} to ${fmt(end)}, ${withUnits(end - start)} of the ${fmt(rec.span)} bytes the replay uses.`;
  const pixel = perPixel >= 1 ? `each pixel is ${fmt(perPixel)} byte${perPixel > 1 ? "s" : ""}`
                              : `each byte is ${fmt(1 / perPixel)} pixels wide`;
  return `${what} Read it like text: left to right, then the next row down; ${rows} row${rows > 1 ? "s" : ""} of ${withUnits(MAP_W * perPixel)}, ${pixel}. A pixel's colour is the share of its bytes that is live.`;
}

function drawViewCounts(blocks) {
  // Free blocks in view: the gaps between live blocks, up to the high-water mark.
  const { start, end } = view;
  const top = Math.min(end, F.highWater[current]);
  // Blocks never overlap, so their starts and their ends, each sorted, pair up in address order.
  const starts = Float64Array.from(blocks, (b) => b[0]).sort();
  const ends = Float64Array.from(blocks, (b) => b[0] + b[1]).sort();
  let edge = start, holes = 0, largest = 0, freeBytes = 0;
  for (let k = 0; k < starts.length; k++) {
    const a = starts[k];
    if (a > edge && edge < top) { const gap = Math.min(a, top) - edge; holes++; freeBytes += gap; largest = Math.max(largest, gap); }
    edge = Math.max(edge, ends[k]);
  }
  // A hole that reaches the high-water mark is, to the allocator, part of one free block with
  // all the space above it: the counter counts them as one.
  const reachesTop = top > edge && top === F.highWater[current];
  if (top > edge) { holes++; freeBytes += top - edge; largest = Math.max(largest, top - edge); }
  const above = end > top ? `; above the high-water mark, ${withUnits(end - top)} never used yet` : "";
  const count = (n, noun) => `${fmt(n)} ${noun}${n === 1 ? "" : "s"}`;
  const largestHole = holes > 1 ? `, the largest ${withUnits(largest)}` : "";
  const last = reachesTop ? " The last hole runs up to the high-water mark: the allocator counts it and the space above as one free block." : "";
  $("view-counts").textContent = `In this view: ${count(blocks.length, "live block")} and ` +
    `${count(holes, "free block")} (holes) below the high-water mark, ${withUnits(freeBytes)} free${largestHole}${above}.${last} ` +
    `The "free blocks" counter counts the whole arena, the space above the high-water mark included.`;
  $("view-counts").dataset.holes = String(holes);
}

// -- hover and zoom ------------------------------------------------------------------------
function byteAt(event) {
  const canvas = $("map"), box = canvas.getBoundingClientRect();
  const x = (event.clientX - box.left) * canvas.width / box.width - GUTTER;
  const y = (event.clientY - box.top) * canvas.height / box.height;
  const row = Math.floor(y / view.rowH);
  if (x < 0 || x >= MAP_W || row >= view.rows) return null;
  const byte = view.start + (row * MAP_W + Math.floor(x)) * view.perPixel;
  return byte < view.end ? byte : null;
}

function explain(byte) {
  const width = Math.max(1, view.perPixel);
  const inPixel = liveBlocksIn(byte, byte + width);
  const lines = [];
  if (width > 1) {
    let live = 0;
    for (const [o, s] of inPixel) live += Math.min(o + s, byte + width) - Math.max(o, byte);
    lines.push(`<b>This pixel</b>: bytes ${fmt(byte)} to ${fmt(byte + width - 1)}: ` +
               `${Math.round(live / width * 100)} % live, ${inPixel.length} live block${inPixel.length === 1 ? "" : "s"}`);
  }
  const hit = inPixel.find(([o, s]) => o <= byte && byte < o + s) || inPixel[0];
  if (hit) {
    const [offset, size, id, op] = hit;
    lines.push(`<b>Live block ${fmt(id)}</b>: offset ${fmt(offset)}, ${fmt(size)} bytes ` +
               `(${fmt(sizes[op])} requested)`,
               `made by operation ${fmt(op + 1)}: ${describe(op)}`);
  } else {
    const hw = F.highWater[current];
    if (byte >= hw) {
      lines.push(`<b>Free</b>: above the high-water mark (${fmt(hw)}); never used so far`);
    } else {
      const [below, next] = edges(byte, byte + 1), above = Math.min(next, hw);
      lines.push(`<b>Free block (a hole)</b>: offsets ${fmt(below)} to ${fmt(above - 1)}, ${withUnits(above - below)}`);
    }
  }
  return lines.join("<br>");
}

let dragFrom = null, hovered = null;  // the byte under the mouse, to keep its tooltip true
function selection(a, b) {  // redraw the map with bytes a..b shaded
  const ctx = $("map").getContext("2d");
  if (!view.image) view.image = ctx.getImageData(0, 0, $("map").width, $("map").height);
  else ctx.putImageData(view.image, 0, 0);
  ctx.fillStyle = "rgba(31, 95, 191, 0.35)";
  let p = Math.floor((Math.min(a, b) - view.start) / view.perPixel);
  const last = Math.floor((Math.max(a, b) - view.start) / view.perPixel);
  while (p <= last) {
    const rowEnd = Math.min(last, (Math.floor(p / MAP_W) + 1) * MAP_W - 1);
    const [x, y, h] = pixelBox(p);
    ctx.fillRect(x, y, rowEnd - p + 1, h);
    p = rowEnd + 1;
  }
}

function zoomTo(a, b) {
  const minimum = 64;
  if (b - a < minimum) { const mid = (a + b) / 2; a = mid - minimum / 2; b = mid + minimum / 2; }
  a = Math.max(0, Math.floor(a)); b = Math.min(rec.span, Math.ceil(b));
  mode = "zoom"; zoom = [a, Math.max(b, a + 1)];
  drawMap();
}

function setupMap() {
  const canvas = $("map"), tip = $("tooltip");
  canvas.addEventListener("mousedown", (e) => { dragFrom = [byteAt(e), e.clientX, e.clientY]; });
  canvas.addEventListener("mousemove", (e) => {
    const byte = byteAt(e);
    if (dragFrom && dragFrom[0] !== null && byte !== null && Math.abs(e.clientX - dragFrom[1]) + Math.abs(e.clientY - dragFrom[2]) > 4) {
      selection(dragFrom[0], byte);
    }
    if (byte === null) { tip.hidden = true; return; }
    hovered = byte;
    tip.innerHTML = explain(byte);
    tip.hidden = false;
    const x = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    tip.style.left = `${x}px`;
    tip.style.top = `${e.clientY + 14}px`;
  });
  canvas.addEventListener("mouseleave", () => { tip.hidden = true; hovered = null; });
  window.addEventListener("mouseup", (e) => {
    if (!dragFrom) return;
    const [from, x0, y0] = dragFrom;
    dragFrom = null;
    const to = byteAt(e);
    if (from === null) return;
    if (Math.abs(e.clientX - x0) + Math.abs(e.clientY - y0) <= 4) {
      const width = (view.end - view.start) / 8;
      zoomTo(from - width / 2, from + width / 2);
    } else if (to !== null) {
      zoomTo(Math.min(from, to), Math.max(from, to) + Math.max(1, view.perPixel));
    } else {
      drawMap();
    }
  });
  $("view-hw").addEventListener("click", () => { mode = "hw"; drawMap(); });
  $("view-all").addEventListener("click", () => { mode = "all"; drawMap(); });
  $("zoom-out").addEventListener("click", () => {
    const mid = (view.start + view.end) / 2, width = (view.end - view.start) * 4;
    if (width >= rec.span) { mode = "all"; drawMap(); } else zoomTo(mid - width / 2, mid + width / 2);
  });
}

// -- the chart over time ---------------------------------------------------------------------
function niceStep(range, ticks) {
  const raw = range / ticks, power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
}
function byteTicks(top) {  // ticks at round numbers of the unit the top is in
  const unit = top >= 2 ** 20 ? 2 ** 20 : top >= 2 ** 10 ? 2 ** 10 : 1;
  const step = niceStep(top / unit, 4) * unit;
  const ticks = [];
  for (let v = 0; v <= top * 1.0001; v += step) ticks.push(v);
  return ticks;
}

const CHART = { left: 62, right: 26, top: 40, bottom: 38 };
function drawTimeline() {
  const canvas = $("timeline"), ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  const plotW = w - CHART.left - CHART.right, plotH = h - CHART.top - CHART.bottom;
  ctx.clearRect(0, 0, w, h);
  const ticks = byteTicks(rec.span), top = Math.max(rec.span, ticks[ticks.length - 1]);
  const X = (op) => CHART.left + op / Math.max(1, rec.ops - 1) * plotW;
  const Y = (v) => CHART.top + plotH - v / top * plotH;
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#222";
  ctx.strokeStyle = "#ddd";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const v of ticks) {
    ctx.beginPath(); ctx.moveTo(CHART.left, Y(v)); ctx.lineTo(w - CHART.right, Y(v)); ctx.stroke();
    ctx.fillText(bytes(v), CHART.left - 4, Y(v));
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const step = niceStep(rec.ops, 4);
  for (let op = 0; op <= rec.ops; op += step) {
    ctx.fillText(fmt(op), X(Math.max(op - 1, 0)), CHART.top + plotH + 4);
  }
  ctx.fillText("operation number", CHART.left + plotW / 2, h - 14);
  ctx.strokeStyle = "#222";
  ctx.strokeRect(CHART.left, CHART.top, plotW, plotH);
  const line = (values, colour) => {
    ctx.strokeStyle = colour;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (let k = 0; k < FRAMES; k++) {
      const x = X(F.op[k]), y = Y(values[k]);
      k ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    }
    ctx.stroke();
  };
  line(F.highWater, PAL.highWater);
  line(F.live, PAL.live);
  ctx.fillStyle = PAL.current;
  ctx.fillRect(X(F.op[current]) - 1, CHART.top, 2, plotH);
  // The legend, above the plot.
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  ctx.font = "12px system-ui, sans-serif";
  let x = CHART.left;
  const legend = [[PAL.live, "live bytes"], [PAL.highWater, "high-water mark"], [PAL.current, "now"]];
  canvas.dataset.legend = legend.map((entry) => entry[1]).join("|");
  for (const [colour, label] of legend) {
    ctx.fillStyle = colour;
    ctx.fillRect(x, 10, 18, 3);
    ctx.fillStyle = "#222";
    ctx.fillText(label, x + 22, 12);
    x += 30 + ctx.measureText(label).width;
  }
  ctx.fillText(`now: ${bytes(F.live[current])} live, high-water ${bytes(F.highWater[current])}`, CHART.left, 28);
  canvas.dataset.yTicks = ticks.map(bytes).join("|");
}

// -- free blocks by size --------------------------------------------------------------------
let bucketRange = [0, 0];
function findBuckets() {
  let low = Infinity, high = 0;
  for (const counts of F.histogram) counts.forEach((c, k) => { if (c) { low = Math.min(low, k); high = Math.max(high, k); } });
  bucketRange = low === Infinity ? [0, 0] : [low, high];
}
function drawHistogram() {
  const canvas = $("histogram"), ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, base = h - 40, left = 10;
  ctx.clearRect(0, 0, w, h);
  const counts = F.histogram[current], [low, high] = bucketRange;
  const n = high - low + 1, top = Math.max(1, ...counts), bw = (w - left) / n, labels = [];
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "alphabetic";
  for (let k = low; k <= high; k++) {
    const x = left + (k - low) * bw, c = counts[k];
    const bh = c ? Math.max(3, Math.log2(1 + c) / Math.log2(1 + top) * (base - 18)) : 0;
    ctx.fillStyle = PAL.freeBar;
    ctx.fillRect(x + 3, base - bh, bw - 6, bh);
    ctx.fillStyle = c ? "#111" : "#999";
    ctx.fillText(fmt(c), x + bw / 2, base - bh - 4);
    ctx.fillStyle = "#222";
    ctx.fillText(bytes(2 ** k), x + bw / 2, base + 14);
    labels.push([bytes(2 ** k), c]);
  }
  ctx.fillStyle = "#222";
  ctx.fillRect(left, base, w - left, 1);
  ctx.fillText("free block size (at least)", w / 2, h - 6);
  canvas.dataset.labels = JSON.stringify(labels);
}

// -- the frame on show ----------------------------------------------------------------------
function operationCard() {
  const end = F.op[current], start = current ? F.op[current - 1] + 1 : 0;
  if (end === start) {
    return `Operation ${fmt(end + 1)} of ${fmt(rec.ops)}: ${describe(end)}${placed(end)}`;
  }
  let allocs = 0, frees = 0, resizes = 0;
  for (let i = start; i <= end; i++) {
    if (kinds[i] === ALLOC) allocs++; else if (kinds[i] === FREE) frees++; else resizes++;
  }
  const count = (n, noun) => `${fmt(n)} ${noun}${n === 1 ? "" : "s"}`;
  const parts = [count(allocs, "allocation"), count(frees, "free")];
  if (resizes) parts.push(count(resizes, "resize"));
  return `Operations ${fmt(start + 1)} to ${fmt(end + 1)} of ${fmt(rec.ops)}: ${parts.join(", ")}. ` +
         `The last one: ${describe(end)}${placed(end)}`;
}

function show(index) {
  current = Math.max(0, Math.min(FRAMES - 1, index));
  moveTo(F.op[current]);
  $("scrub").value = current;
  $("operation").textContent = operationCard();
  showBytes("counter-live", F.live[current]);
  showBytes("counter-hw", F.highWater[current]);
  $("counter-live-blocks").textContent = fmt(F.liveBlocks[current]);
  $("counter-free-blocks").textContent = fmt(F.freeBlocks[current]);
  showBytes("counter-peak", F.peak[current]);
  const hw = F.highWater[current];
  $("counter-util").textContent = (hw ? F.peak[current] / hw * 100 : 100).toFixed(2) + " %";
  $("position").textContent = `frame ${fmt(current + 1)} / ${fmt(FRAMES)}`;
  drawMap();
  drawTimeline();
  drawHistogram();
  if (hovered !== null && !$("tooltip").hidden) $("tooltip").innerHTML = explain(hovered);
}

let playing = false, lastTick = 0, carry = 0;
function tick(now) {
  if (!playing) return;
  carry += (now - lastTick) / 1000 * Number($("speed").value);
  lastTick = now;
  if (carry >= 1) {
    const steps = Math.floor(carry);
    carry -= steps;
    show(current + steps);
    if (current === FRAMES - 1) { setPlaying(false); return; }
  }
  requestAnimationFrame(tick);
}
function setPlaying(on) {
  playing = on;
  $("play").textContent = on ? "pause" : "play";
  if (on) {
    if (current === FRAMES - 1) show(0);
    lastTick = performance.now();
    carry = 0;
    requestAnimationFrame(tick);
  }
}

function setupLegend() {
  document.documentElement.style.setProperty("--current", PAL.current);
  $("legend-live").style.background = PAL.live;
  $("legend-partial").style.background = `linear-gradient(90deg, ${PAL.partialLow}, ${PAL.partialHigh})`;
  $("legend-free").style.background = PAL.free;
  $("legend-hw").style.background = PAL.highWater;
  $("legend-unused").style.background =
    `repeating-linear-gradient(135deg, ${PAL.unusedHatch} 0 1px, ${PAL.unused} 1px 5px)`;
  $("legend-current").style.borderColor = PAL.current;
}

async function start() {
  if (!FRAMES) { $("status").textContent = "The trace has no operations: there is nothing to play."; return; }
  await unpack();
  findBuckets();
  setupLegend();
  setupMap();
  $("scrub").max = FRAMES - 1;
  $("play").addEventListener("click", () => setPlaying(!playing));
  $("step").addEventListener("click", () => { setPlaying(false); show(current + 1); });
  $("back").addEventListener("click", () => { setPlaying(false); show(current - 1); });
  $("scrub").addEventListener("input", () => { setPlaying(false); show(Number($("scrub").value)); });
  $("timeline").addEventListener("click", (e) => {
    const canvas = $("timeline"), box = canvas.getBoundingClientRect();
    const x = (e.clientX - box.left) * canvas.width / box.width;
    const op = (x - CHART.left) / (canvas.width - CHART.left - CHART.right) * (rec.ops - 1);
    let k = 0;
    while (k < FRAMES - 1 && F.op[k] < op) k++;
    setPlaying(false);
    show(k);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "ArrowRight") { setPlaying(false); show(current + 1); }
    if (e.key === "ArrowLeft") { setPlaying(false); show(current - 1); }
    if (e.key === " ") { e.preventDefault(); setPlaying(!playing); }
  });
  show(0);
  $("status").textContent = "";
  document.body.dataset.ready = "1";
}
start().catch((error) => { $("status").textContent = `This page could not start: ${error}`; });
