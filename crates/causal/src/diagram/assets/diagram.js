// clocklab's space-time diagram: one line per machine, its events as marks,
// messages as arrows, and the causal cone of a selected event.
//
// The data (see crates/causal/src/diagram/data.rs) is zlib streams in
// base64: "draw-<machine>" (kinds, times, Lamport clocks), "messages" and
// "receives", decoded before the first drawing, and "detail-<machine>-<k>"
// chunks (line numbers, queue lengths, vector and hybrid clocks, the log
// lines as templates and numbers), each decoded when one of its events is first selected. Events are
// numbered machine by machine: global index = base[machine] + position.
(function () {
  "use strict";

  const KIND_NAMES = ["initialized", "connected", "internal", "send", "processed", "disconnected", "unprocessed",
    "stopped", "behind schedule", "lost (by the fault plan)", "crashed", "restarted", "physical clock changed",
    "held (by the fault plan, at the end)"];
  const K_INTERNAL = 2, K_SENT = 3, K_PROCESSED = 4, K_UNPROCESSED = 6, K_STOPPED = 7;
  const K_CRASHED = 10, K_RESTARTED = 11;
  const STATUS_PROCESSED = 0, STATUS_UNPROCESSED = 1, STATUS_LOST = 2, STATUS_CRASHED = 3, STATUS_MISSING = 4,
    STATUS_UNKNOWN = 5, STATUS_HELD = 6;
  const STATUS_NAMES = ["processed", "left unprocessed at the end", "lost by the fault plan (its sender's Lost line)",
    "taken by a crash", "never received", "not traceable (the receiver's log names no senders)",
    "held by the fault plan past the end of the run (its sender's Held line)"];
  // Below this many events in view every event is drawn; above it, density.
  const DETAIL_MAX = 20000;
  // Beyond this many arrows in view they lose their heads; in the density
  // view at most SAMPLED_ARROWS evenly spaced ones are drawn.
  const ARROWS_MAX = 20000, SAMPLED_ARROWS = 2500;
  const BLOCK = 256;
  const COLORS = {
    internal: "#666", sent: "#1f6fb4", processed: "#2e8b3a", other: "#999",
    past: "#2463c7", future: "#e0661b", dim: "rgba(150,150,150,0.28)", selected: "#111",
    arrow: "rgba(70,70,70,0.55)", unprocessed: "#c0392b", axis: "#888", grid: "#eee", row: "#c8c8c8",
  };

  const body = document.body;
  const $ = (id) => document.getElementById(id);

  function fail(error) {
    body.dataset.state = "error";
    const box = $("error");
    box.hidden = false;
    box.textContent = "The diagram could not be drawn: " + (error && error.message ? error.message : String(error));
  }
  window.addEventListener("error", (event) => fail(event.error || event.message));
  window.addEventListener("unhandledrejection", (event) => fail(event.reason));

  const meta = JSON.parse($("meta").textContent);
  // 64-bit numbers come as text (a double rounds them past 2^53): instants
  // are counted with BigInt, and only their differences, which are small,
  // become doubles.
  const originUs = BigInt(meta.origin_us), baseUs = BigInt(meta.time_base_us);
  const baseFromOrigin = Number(baseUs - originUs);
  const M = meta.machines.length;
  const N = meta.n_events;
  const K = meta.n_messages;

  // ---- decoding ----------------------------------------------------------

  async function inflate(id) {
    const text = $(id).textContent.trim();
    let bytes;
    try {
      const response = await fetch("data:application/octet-stream;base64," + text);
      bytes = new Uint8Array(await response.arrayBuffer());
    } catch (_) {
      const binary = atob(text);
      bytes = new Uint8Array(binary.length);
      for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    }
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  class Reader {
    constructor(bytes) { this.b = bytes; this.p = 0; }
    u() {
      const b = this.b;
      let v = 0, s = 1, x;
      do { x = b[this.p++]; v += (x & 127) * s; s *= 128; } while (x & 128);
      // A double holds every integer up to 2^53 exactly; the data keeps its
      // numbers below that (times count from meta.time_base_us), and a
      // number beyond is refused rather than shown rounded.
      if (v > Number.MAX_SAFE_INTEGER) throw new Error("a number in the page's data is beyond 2^53");
      return v;
    }
    i() { const v = this.u(); return v % 2 === 0 ? v / 2 : -(v + 1) / 2; }
    // A zigzag varint read whole, as a BigInt (the data's exact differences).
    bigI() {
      const b = this.b;
      let v = 0n, shift = 0n, x;
      do { x = b[this.p++]; v |= BigInt(x & 127) << shift; shift += 7n; } while (x & 128);
      return (v >> 1n) ^ -(v & 1n);
    }
    bytes(n) { const out = this.b.subarray(this.p, this.p + n); this.p += n; return out; }
  }

  const base = new Int32Array(M + 1);
  for (let j = 0; j < M; j++) base[j + 1] = base[j] + meta.machines[j].n_events;
  const kind = new Uint8Array(N);
  const isTick = new Uint8Array(N);
  const time = new Float64Array(N);
  const lam = new Float64Array(N);
  const mSend = new Int32Array(K), mTo = new Int32Array(K), mRecv = new Int32Array(K), mStatus = new Uint8Array(K);
  // Cumulative counts for the density view and the vector of a cone.
  let cumInternal, cumSent, cumProcessed, cumTick;

  // The draw columns of every machine, then the messages and their receives.
  async function decodeDraw() {
    const offset = baseFromOrigin;
    for (let j = 0; j < M; j++) {
      const r = new Reader(await inflate("draw-" + j));
      let t = 0, l = 0;
      for (let g = base[j]; g < base[j + 1]; g++) {
        const raw = r.b[r.p++];
        const k = raw & 127;
        kind[g] = k;
        isTick[g] = (k === K_INTERNAL || k === K_SENT || k === K_PROCESSED) && !(raw & 128) ? 1 : 0;
        t += r.i();
        time[g] = t + offset;
        l += r.i();
        lam[g] = l;
      }
    }
    const messages = new Reader(await inflate("messages"));
    for (let k = 0; k < K; k++) {
      const j = messages.u();
      mSend[k] = base[j] + messages.u();
      mTo[k] = messages.u();
      mRecv[k] = -1;
      mStatus[k] = meta.unnamed_receivers.includes(mTo[k]) ? STATUS_UNKNOWN : STATUS_MISSING;
    }
    const receives = new Reader(await inflate("receives"));
    for (let i = 0; i < meta.n_receives; i++) {
      const k = receives.u(), j = receives.u();
      mRecv[k] = base[j] + receives.u();
      mStatus[k] = receives.u();
    }
    const fates = new Reader(await inflate("fates"));
    for (let i = 0; i < meta.n_fates; i++) {
      const k = fates.u();
      mStatus[k] = fates.u();
    }
    cumInternal = new Uint32Array(N + 1);
    cumSent = new Uint32Array(N + 1);
    cumProcessed = new Uint32Array(N + 1);
    cumTick = new Uint32Array(N + 1);
    for (let g = 0; g < N; g++) {
      const k = kind[g];
      cumInternal[g + 1] = cumInternal[g] + (k === K_INTERNAL ? 1 : 0);
      cumSent[g + 1] = cumSent[g] + (k === K_SENT ? 1 : 0);
      cumProcessed[g + 1] = cumProcessed[g] + (k === K_PROCESSED ? 1 : 0);
      cumTick[g + 1] = cumTick[g] + isTick[g];
    }
  }

  // The detail of events, in chunks of meta.detail_chunk events of one
  // machine: a chunk is decoded when one of its events is first selected.
  const chunks = new Map();
  function loadDetail(g) {
    const j = machineOf(g), k = Math.floor((g - base[j]) / meta.detail_chunk);
    const id = "detail-" + j + "-" + k;
    if (!chunks.has(id)) chunks.set(id, inflate(id).then((bytes) => decodeChunk(base[j] + k * meta.detail_chunk, Math.min(meta.detail_chunk, base[j + 1] - base[j] - k * meta.detail_chunk), bytes)));
    return chunks.get(id);
  }

  function decodeChunk(first, n, bytes) {
    const r = new Reader(bytes);
    const lineNo = new Float64Array(n);
    let line = 0;
    for (let i = 0; i < n; i++) { line += r.i(); lineNo[i] = line; }
    const queue = new Float64Array(n);
    for (let i = 0; i < n; i++) queue[i] = r.u();
    const width = meta.vector_width;
    const vectors = width > 0 ? new Float64Array(n * width) : null;
    if (vectors) {
      // Each event lists the components that changed since the one before it.
      for (let i = 0; i < n; i++) {
        if (i > 0) for (let k = 0; k < width; k++) vectors[i * width + k] = vectors[(i - 1) * width + k];
        const changed = r.u();
        for (let c = 0; c < changed; c++) { const k = r.u(); vectors[i * width + k] += r.i(); }
      }
    }
    // HLC and physical clocks: instants in microseconds, exact in 64 bits.
    const hlcL = new BigInt64Array(n), hlcC = new Float64Array(n);
    let last = 0n;
    for (let i = 0; i < n; i++) {
      const c = r.u();
      if (c === 0) { hlcC[i] = -1; continue; }
      last = BigInt.asIntN(64, last + r.bigI());
      hlcL[i] = last;
      hlcC[i] = c - 1;
    }
    const phys = new BigInt64Array(n), hasPhys = new Uint8Array(n);
    last = 0n;
    for (let i = 0; i < n; i++) {
      if (r.u() === 0) continue;
      last = BigInt.asIntN(64, last + r.bigI());
      phys[i] = last;
      hasPhys[i] = 1;
    }
    return { first, lineNo, queue, vectors, hlcL, hlcC, phys, hasPhys, text: decodeLines(r, n) };
  }

  // The chunk's log lines (see crates/causal/src/diagram/text.rs): its
  // templates, each as its text parts and the widths of the numbers between
  // them, then per line its template, then per line its numbers: per group
  // of 32, a mask of those that changed since the template's previous line,
  // then the difference of each that did.
  function decodeLines(r, n) {
    const SLOT = 0, NUL = 0x10;
    const decoder = new TextDecoder();
    const templates = [];
    for (let t = r.u(); t > 0; t--) {
      const raw = r.bytes(r.u());
      const parts = [], widths = [];
      let text = [], k = 0;
      while (k < raw.length) {
        if (raw[k] !== SLOT) { text.push(raw[k++]); continue; }
        if (raw[k + 1] === NUL) text.push(0);
        else { parts.push(decoder.decode(new Uint8Array(text))); widths.push(raw[k + 1]); text = []; }
        k += 2;
      }
      parts.push(decoder.decode(new Uint8Array(text)));
      templates.push({ parts, widths });
    }
    const ids = new Uint32Array(n), start = new Uint32Array(n + 1);
    for (let i = 0; i < n; i++) { ids[i] = r.u(); start[i + 1] = start[i] + templates[ids[i]].widths.length; }
    const numbers = new Float64Array(start[n]);
    const last = templates.map((t) => new Float64Array(t.widths.length));
    for (let i = 0; i < n; i++) {
      const previous = last[ids[i]];
      let mask = 0;
      for (let k = 0; k < previous.length; k++) {
        if (k % 32 === 0) mask = r.u();
        if ((mask >>> (k % 32)) & 1) previous[k] += r.i();
        numbers[start[i] + k] = previous[k];
      }
    }
    return { templates, ids, start, numbers };
  }

  // Line i of a chunk's lines, put back together.
  function lineOf(text, i) {
    const { parts, widths } = text.templates[text.ids[i]];
    let line = parts[0];
    for (let k = 0; k < widths.length; k++) {
      line += String(text.numbers[text.start[i] + k]).padStart(widths[k], "0") + parts[k + 1];
    }
    return line;
  }

  // What the log says of event g, once its chunk is decoded.
  function detailOf(chunk, g) {
    const i = g - chunk.first, width = meta.vector_width;
    return {
      lineNo: chunk.lineNo[i],
      queue: chunk.queue[i],
      vector: chunk.vectors ? Array.from(chunk.vectors.subarray(i * width, (i + 1) * width)) : null,
      hlc: chunk.hlcC[i] >= 0 ? { l: chunk.hlcL[i], c: chunk.hlcC[i] } : null,
      physical: chunk.hasPhys[i] ? chunk.phys[i] : null,
      line: lineOf(chunk.text, i),
    };
  }

  // ---- lookups -----------------------------------------------------------

  function machineOf(g) {
    let lo = 0, hi = M - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (base[mid] <= g) lo = mid; else hi = mid - 1;
    }
    return lo;
  }

  // The first index in [lo, hi) whose value is >= x (values sorted there).
  function lowerBound(values, lo, hi, x) {
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (values[mid] < x) lo = mid + 1; else hi = mid;
    }
    return lo;
  }
  function upperBound(values, lo, hi, x) {
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (values[mid] <= x) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  function eventName(g) {
    const j = machineOf(g);
    return "m" + meta.machines[j].id + "e" + (g - base[j] + 1);
  }

  function parseName(name) {
    const match = /^m(\d+)e(\d+)$/.exec(name);
    if (!match) return -1;
    const j = meta.machines.findIndex((m) => m.id === Number(match[1]));
    const pos = Number(match[2]) - 1;
    if (j < 0 || pos < 0 || pos >= base[j + 1] - base[j]) return -1;
    return base[j] + pos;
  }

  // The receiver's Stopped line, where unprocessed arrows end.
  const stoppedOf = new Int32Array(M).fill(-1);

  // ---- happens-before ----------------------------------------------------

  let recvSend = null, sendStart = null, sendMsgs = null;
  function ensureLinks() {
    if (recvSend) return;
    recvSend = new Int32Array(N).fill(-1);
    const counts = new Int32Array(N + 1);
    for (let k = 0; k < K; k++) {
      if (mStatus[k] === STATUS_PROCESSED && mRecv[k] >= 0) recvSend[mRecv[k]] = mSend[k];
      counts[mSend[k] + 1]++;
    }
    sendStart = new Int32Array(N + 1);
    for (let g = 0; g < N; g++) sendStart[g + 1] = sendStart[g] + counts[g + 1];
    sendMsgs = new Int32Array(K);
    const fill = sendStart.slice(0, N);
    for (let k = 0; k < K; k++) sendMsgs[fill[mSend[k]]++] = k;
  }

  // The causal past and future of event g: per machine, the number of its
  // first events in the past, and the position of its first event in the
  // future. Program order makes each a prefix or a suffix, so a walk that
  // visits each event of the cone once finds them.
  function cone(g) {
    ensureLinks();
    const j0 = machineOf(g), p0 = g - base[j0];
    const past = new Int32Array(M), scanned = new Int32Array(M);
    past[j0] = p0 + 1;
    for (let changed = true; changed;) {
      changed = false;
      for (let j = 0; j < M; j++) {
        while (scanned[j] < past[j]) {
          const s = recvSend[base[j] + scanned[j]];
          scanned[j]++;
          if (s >= 0) {
            const js = machineOf(s), ps = s - base[js];
            if (past[js] < ps + 1) { past[js] = ps + 1; changed = true; }
          }
        }
      }
    }
    past[j0] -= 1;
    const future = new Int32Array(M), from = new Int32Array(M);
    for (let j = 0; j < M; j++) { future[j] = base[j + 1] - base[j]; from[j] = future[j]; }
    future[j0] = p0;
    for (let changed = true; changed;) {
      changed = false;
      for (let j = 0; j < M; j++) {
        while (from[j] > future[j]) {
          from[j]--;
          const e = base[j] + from[j];
          for (let i = sendStart[e]; i < sendStart[e + 1]; i++) {
            const k = sendMsgs[i];
            if (mStatus[k] !== STATUS_PROCESSED || mRecv[k] < 0) continue;
            const r = mRecv[k], jr = machineOf(r), pr = r - base[jr];
            if (pr < future[jr]) { future[jr] = pr; changed = true; }
          }
        }
      }
    }
    future[j0] += 1;
    let pastSize = 0, futureSize = 0;
    for (let j = 0; j < M; j++) { pastSize += past[j]; futureSize += base[j + 1] - base[j] - future[j]; }
    // Ticks in the past per machine (and the event itself): the vector clock
    // happens-before gives it.
    const hbVector = [];
    for (let j = 0; j < M; j++) {
      let ticks = cumTick[base[j] + past[j]] - cumTick[base[j]];
      if (j === j0) ticks += isTick[g];
      hbVector.push(ticks);
    }
    return { g, past, future, pastSize, futureSize, concurrent: N - 1 - pastSize - futureSize, hbVector };
  }

  // 0 none, 1 past, 2 future, 3 concurrent, 4 the selection itself.
  function coneClass(c, g) {
    if (!c) return 0;
    if (g === c.g) return 4;
    const j = machineOf(g), p = g - base[j];
    if (p < c.past[j]) return 1;
    if (p >= c.future[j]) return 2;
    return 3;
  }

  // ---- the view ----------------------------------------------------------

  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  const GUTTER = 96, TOP = 30, BOTTOM = 22, RIGHT = 16;
  const view = { axis: "time", x0: 0, x1: 1 };
  let selection = null;
  let hoverG = -1;
  let lastMode = "";

  function xs() { return view.axis === "time" ? time : lam; }
  function extent() {
    const x = xs();
    let lo = Infinity, hi = -Infinity;
    for (let j = 0; j < M; j++) {
      if (base[j + 1] > base[j]) { lo = Math.min(lo, x[base[j]]); hi = Math.max(hi, x[base[j + 1] - 1]); }
    }
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (hi <= lo) hi = lo + 1;
    return [lo, hi];
  }
  function fit() {
    const [lo, hi] = extent();
    const pad = (hi - lo) * 0.02;
    view.x0 = lo - pad;
    view.x1 = hi + pad;
  }

  let W = 0, H = 0;
  function plotW() { return Math.max(10, W - GUTTER - RIGHT); }
  function sx(x) { return GUTTER + (x - view.x0) / (view.x1 - view.x0) * plotW(); }
  function unsx(px) { return view.x0 + (px - GUTTER) / plotW() * (view.x1 - view.x0); }
  function rowH() { return Math.max(8, (H - TOP - BOTTOM) / Math.max(1, M)); }
  function yOf(j) { return TOP + rowH() * (j + 0.5); }

  function resize() {
    const rect = canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    W = rect.width; H = rect.height;
    canvas.width = Math.max(1, Math.round(W * dpr));
    canvas.height = Math.max(1, Math.round(H * dpr));
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  }

  // Ticks for the axis: 1, 2 or 5 times a power of ten.
  function niceTicks(lo, hi, count) {
    const span = hi - lo;
    if (!(span > 0)) return [];
    const raw = span / count, power = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(v);
    return { values: out, step };
  }

  function formatAxis(v, step) {
    if (view.axis === "lamport") return String(Math.round(v));
    const seconds = v / 1e6, stepS = step / 1e6;
    const digits = Math.max(0, Math.min(6, -Math.floor(Math.log10(stepS) + 1e-9)));
    return seconds.toFixed(digits) + " s";
  }

  // Messages sorted by the left end of their arrow, per axis, with the
  // largest right end of each block of BLOCK: arrows crossing the view are
  // found without looking at every message.
  const messageIndexes = {};
  function arrowEnds(k, x) {
    const s = mSend[k];
    const xsend = x[s];
    let xend;
    if (mStatus[k] === STATUS_UNPROCESSED && mTo[k] < M && stoppedOf[mTo[k]] >= 0) xend = x[stoppedOf[mTo[k]]];
    else if (mRecv[k] >= 0) xend = x[mRecv[k]];
    else xend = xsend + (view.axis === "time" ? typicalDelay() : 1);
    return [xsend, xend];
  }
  let delayCache = null;
  function typicalDelay() {
    if (delayCache === null) {
      const delays = [];
      for (let k = 0; k < K && delays.length < 2000; k++) {
        if (mStatus[k] === STATUS_PROCESSED && mRecv[k] >= 0) delays.push(time[mRecv[k]] - time[mSend[k]]);
      }
      delays.sort((a, b) => a - b);
      delayCache = delays.length ? Math.max(1, delays[delays.length >> 1]) : 100000;
    }
    return delayCache;
  }
  function messageIndex() {
    if (messageIndexes[view.axis]) return messageIndexes[view.axis];
    const x = xs();
    const lo = new Float64Array(K), hi = new Float64Array(K);
    let sorted = true;
    for (let k = 0; k < K; k++) {
      const [a, b] = arrowEnds(k, x);
      lo[k] = Math.min(a, b);
      hi[k] = Math.max(a, b);
      if (k > 0 && lo[k] < lo[k - 1]) sorted = false;
    }
    let order = new Int32Array(K);
    for (let k = 0; k < K; k++) order[k] = k;
    if (!sorted) order = order.sort((a, b) => lo[a] - lo[b]);
    const loSorted = new Float64Array(K);
    for (let i = 0; i < K; i++) loSorted[i] = lo[order[i]];
    const blockHi = new Float64Array(Math.ceil(K / BLOCK));
    for (let i = 0; i < K; i++) {
      const b = (i / BLOCK) | 0;
      blockHi[b] = i % BLOCK === 0 ? hi[order[i]] : Math.max(blockHi[b], hi[order[i]]);
    }
    return (messageIndexes[view.axis] = { lo, hi, order, loSorted, blockHi });
  }

  function visibleMessages(limit) {
    const idx = messageIndex();
    const end = upperBound(idx.loSorted, 0, K, view.x1);
    const out = [];
    for (let b = 0; b * BLOCK < end; b++) {
      if (idx.blockHi[b] < view.x0) continue;
      const stop = Math.min(end, (b + 1) * BLOCK);
      for (let i = b * BLOCK; i < stop; i++) {
        const k = idx.order[i];
        if (idx.hi[k] >= view.x0) {
          out.push(k);
          if (out.length > limit) return out;
        }
      }
    }
    return out;
  }

  function sampledMessages() {
    const idx = messageIndex();
    const start = lowerBound(idx.loSorted, 0, K, view.x0);
    const end = upperBound(idx.loSorted, 0, K, view.x1);
    const stride = Math.max(1, Math.ceil((end - start) / SAMPLED_ARROWS));
    const out = [];
    for (let i = start; i < end; i += stride) out.push(idx.order[i]);
    return { list: out, total: end - start };
  }

  function rowOfMachineIndex(t) { return t < M ? t : -1; }

  function drawArrow(k, x, heads, color, width) {
    // A message whose receiver names no senders has no known end.
    if (mStatus[k] === STATUS_UNKNOWN) return;
    const s = mSend[k];
    const js = machineOf(s);
    const jr = rowOfMachineIndex(mTo[k]);
    if (jr < 0) return;
    const [a, b] = arrowEnds(k, x);
    const x0 = sx(a), y0 = yOf(js), x1 = sx(b), y1 = yOf(jr);
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    const status = mStatus[k];
    ctx.setLineDash(status === STATUS_UNPROCESSED ? [5, 4] : []);
    ctx.beginPath();
    ctx.moveTo(x0, y0);
    ctx.lineTo(x1, y1);
    ctx.stroke();
    ctx.setLineDash([]);
    if (status === STATUS_LOST || status === STATUS_CRASHED || status === STATUS_MISSING || status === STATUS_HELD) {
      ctx.beginPath();
      ctx.moveTo(x1 - 5, y1 - 5); ctx.lineTo(x1 + 5, y1 + 5);
      ctx.moveTo(x1 + 5, y1 - 5); ctx.lineTo(x1 - 5, y1 + 5);
      ctx.lineWidth = 2;
      ctx.stroke();
      return;
    }
    if (heads) {
      const angle = Math.atan2(y1 - y0, x1 - x0), size = 7;
      // Stop short of the mark so the head stays visible.
      const hx = x1 - Math.cos(angle) * 4.5, hy = y1 - Math.sin(angle) * 4.5;
      ctx.fillStyle = color;
      ctx.beginPath();
      ctx.moveTo(hx, hy);
      ctx.lineTo(hx - size * Math.cos(angle - 0.4), hy - size * Math.sin(angle - 0.4));
      ctx.lineTo(hx - size * Math.cos(angle + 0.4), hy - size * Math.sin(angle + 0.4));
      ctx.closePath();
      ctx.fill();
    }
  }

  function arrowColor(k, base) {
    const c = selection;
    if (!c) return base;
    const s = mSend[k], r = mRecv[k];
    if (mStatus[k] === STATUS_PROCESSED && r >= 0) {
      const cr = coneClass(c, r), cs = coneClass(c, s);
      if (cr === 1 || cr === 4) return COLORS.past;
      if (cs === 2 || cs === 4) return COLORS.future;
    }
    return COLORS.dim;
  }

  function markPath(paths, key) {
    if (!paths.has(key)) paths.set(key, new Path2D());
    return paths.get(key);
  }

  function drawMarks(ranges) {
    const x = xs();
    const paths = new Map();
    const c = selection;
    for (let j = 0; j < M; j++) {
      const y = yOf(j);
      for (let g = ranges[j][0]; g < ranges[j][1]; g++) {
        const k = kind[g], cls = coneClass(c, g);
        const px = sx(x[g]);
        const shape = k === K_INTERNAL ? "internal" : k === K_SENT ? "sent" : k === K_PROCESSED ? "processed"
          : k === K_UNPROCESSED ? "unprocessed" : k === K_STOPPED ? "stopped" : k === K_CRASHED ? "crashed"
          : k === K_RESTARTED ? "restarted" : "other";
        const p = markPath(paths, shape + ":" + cls);
        if (shape === "internal") { p.moveTo(px + 3.6, y); p.arc(px, y, 3.6, 0, 2 * Math.PI); }
        else if (shape === "sent") { p.moveTo(px + 4.2, y); p.arc(px, y, 4.2, 0, 2 * Math.PI); }
        else if (shape === "processed") { p.moveTo(px, y - 5.2); p.lineTo(px + 5.2, y); p.lineTo(px, y + 5.2); p.lineTo(px - 5.2, y); p.closePath(); }
        else if (shape === "unprocessed") { p.moveTo(px - 3, y - 3); p.lineTo(px + 3, y + 3); p.moveTo(px + 3, y - 3); p.lineTo(px - 3, y + 3); }
        else if (shape === "crashed") { p.moveTo(px - 6, y - 6); p.lineTo(px + 6, y + 6); p.moveTo(px + 6, y - 6); p.lineTo(px - 6, y + 6); }
        else if (shape === "restarted") { p.moveTo(px, y - 10); p.lineTo(px, y + 10); }
        else if (shape === "other") { p.moveTo(px, y - 5); p.lineTo(px, y + 5); }
      }
    }
    for (const [key, path] of paths) {
      const [shape, clsText] = key.split(":");
      const cls = Number(clsText);
      const kindColor = shape === "internal" ? COLORS.internal : shape === "sent" ? COLORS.sent
        : shape === "processed" ? COLORS.processed : shape === "unprocessed" || shape === "crashed"
        || shape === "restarted" ? COLORS.unprocessed : COLORS.other;
      const color = cls === 0 ? kindColor : cls === 1 ? COLORS.past : cls === 2 ? COLORS.future : cls === 3 ? COLORS.dim : COLORS.selected;
      if (shape === "internal") {
        ctx.fillStyle = "#fff";
        ctx.fill(path);
        ctx.strokeStyle = color;
        ctx.lineWidth = 1.6;
        ctx.stroke(path);
      } else if (shape === "unprocessed" || shape === "other" || shape === "crashed" || shape === "restarted") {
        ctx.strokeStyle = color;
        ctx.lineWidth = shape === "crashed" || shape === "restarted" ? 2.6 : 1.5;
        ctx.stroke(path);
      } else if (shape !== "stopped") {
        ctx.fillStyle = color;
        ctx.fill(path);
      }
    }
  }

  function drawSelectionRing() {
    if (!selection) return;
    const g = selection.g, j = machineOf(g), px = sx(xs()[g]), y = yOf(j);
    if (px < GUTTER - 10 || px > W) return;
    ctx.strokeStyle = COLORS.selected;
    ctx.lineWidth = 2.2;
    ctx.beginPath();
    ctx.arc(px, y, 8.5, 0, 2 * Math.PI);
    ctx.stroke();
  }

  function drawDensity(ranges) {
    const x = xs();
    const bin = 2;
    const columns = Math.ceil(plotW() / bin);
    const h = rowH() * 0.62;
    let max = 1;
    const all = [];
    for (let j = 0; j < M; j++) {
      const counts = new Array(columns);
      let g = ranges[j][0];
      for (let c = 0; c < columns; c++) {
        const edge = unsx(GUTTER + (c + 1) * bin);
        const next = upperBound(x, g, ranges[j][1], edge);
        counts[c] = [cumInternal[next] - cumInternal[g], cumSent[next] - cumSent[g], cumProcessed[next] - cumProcessed[g], next - g];
        max = Math.max(max, counts[c][3]);
        g = next;
      }
      all.push(counts);
    }
    const scale = (n) => n === 0 ? 0 : Math.max(1.5, h * Math.sqrt(n / max));
    const c = selection;
    for (let j = 0; j < M; j++) {
      const y = yOf(j);
      let g = ranges[j][0];
      for (let col = 0; col < columns; col++) {
        const [internal, sent, processed, total] = all[j][col];
        const from = g;
        g += total;
        if (total === 0) continue;
        const height = scale(total), px = GUTTER + col * bin;
        let top = y - height / 2;
        // With a selection the bars show the cone: how many of the column's
        // events are in the past, concurrent, in the future; else the mix.
        let parts;
        if (c) {
          const pastEnd = base[j] + c.past[j], futureStart = base[j] + c.future[j];
          const past = Math.max(0, Math.min(g, pastEnd) - from);
          const future = Math.max(0, g - Math.max(from, futureStart));
          parts = [[past, COLORS.past], [total - past - future, "#cfcfcf"], [future, COLORS.future]];
        } else {
          parts = [[processed, COLORS.processed], [sent, COLORS.sent], [internal, "#8a8a8a"], [total - internal - sent - processed, "#bbb"]];
        }
        for (const [n, color] of parts) {
          if (n === 0) continue;
          const part = height * n / total;
          ctx.fillStyle = color;
          ctx.fillRect(px, top, bin, part);
          top += part;
        }
      }
    }
    return max;
  }

  // The cone as bands along each machine's line: past up to the last event
  // in it, future from the first.
  function drawConeBands() {
    const c = selection;
    if (!c) return;
    const x = xs();
    const band = Math.min(10, rowH() * 0.3);
    for (let j = 0; j < M; j++) {
      const n = base[j + 1] - base[j];
      if (n === 0) continue;
      const y = yOf(j);
      ctx.globalAlpha = 0.22;
      if (c.past[j] > 0) {
        ctx.fillStyle = COLORS.past;
        const a = sx(x[base[j]]), b = sx(x[base[j] + c.past[j] - 1]);
        ctx.fillRect(a, y - band, Math.max(2, b - a), 2 * band);
      }
      if (c.future[j] < n) {
        ctx.fillStyle = COLORS.future;
        const a = sx(x[base[j] + c.future[j]]), b = sx(x[base[j + 1] - 1]);
        ctx.fillRect(a, y - band, Math.max(2, b - a), 2 * band);
      }
      ctx.globalAlpha = 1;
    }
  }

  function drawFrame() {
    const x = xs();
    const ticks = niceTicks(view.x0, view.x1, Math.max(2, Math.floor(plotW() / 110)));
    ctx.font = "12px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    ctx.textAlign = "center";
    for (const v of ticks.values || []) {
      const px = sx(v);
      ctx.strokeStyle = COLORS.grid;
      ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(px, TOP - 6); ctx.lineTo(px, H - BOTTOM + 4); ctx.stroke();
      ctx.fillStyle = "#555";
      const label = formatAxis(v, ticks.step);
      // Labels that would run into the axis caption on the left are left out.
      if (px - ctx.measureText(label).width / 2 > 84) ctx.fillText(label, px, TOP - 16);
    }
    ctx.textAlign = "left";
    ctx.fillStyle = "#777";
    ctx.fillText(view.axis === "time" ? "true time →" : "Lamport clock →", 8, TOP - 16);
    // The fault plan's windows: shaded on the machines they concern (an
    // instant, such as a clock step, as a thin band), labelled at the top.
    for (const fault of meta.faults || []) {
      const a = sx(Number(BigInt(fault.from_us) - originUs)), b = Math.max(a + 2, sx(Number(BigInt(fault.to_us) - originUs)));
      if (view.axis !== "time" || b < GUTTER || a > W) continue;
      const rows = fault.machines.length === 0 ? [...Array(M).keys()]
        : fault.machines.map((id) => meta.machines.findIndex((m) => m.id === id)).filter((j) => j >= 0);
      ctx.fillStyle = "rgba(192,57,43,0.10)";
      for (const j of rows) ctx.fillRect(a, yOf(j) - rowH() / 2, b - a, rowH());
      ctx.fillStyle = "#a8322a";
      ctx.font = "12px system-ui, sans-serif";
      if (rows.length > 0) ctx.fillText(fault.label, Math.max(a, GUTTER) + 3, yOf(Math.min(...rows)) - rowH() / 2 + 12);
    }
    for (let j = 0; j < M; j++) {
      const y = yOf(j);
      const machine = meta.machines[j];
      ctx.fillStyle = "#222";
      ctx.font = "600 13px system-ui, sans-serif";
      ctx.fillText("machine " + machine.id, 8, y - (rowH() > 30 ? 7 : 0));
      if (rowH() > 30) {
        ctx.font = "12px system-ui, sans-serif";
        ctx.fillStyle = "#666";
        ctx.fillText(machine.rate != null ? "rate " + machine.rate + "/s" : "", 8, y + 9);
      }
      if (base[j + 1] === base[j]) continue;
      const a = Math.max(GUTTER - 4, sx(x[base[j]])), b = Math.min(W, sx(x[base[j + 1] - 1]));
      ctx.strokeStyle = COLORS.row;
      ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.moveTo(a, y); ctx.lineTo(b, y); ctx.stroke();
      if (stoppedOf[j] >= 0) {
        const px = sx(x[stoppedOf[j]]);
        ctx.strokeStyle = "#222";
        ctx.lineWidth = 2.5;
        ctx.beginPath(); ctx.moveTo(px, y - Math.min(11, rowH() * 0.4)); ctx.lineTo(px, y + Math.min(11, rowH() * 0.4)); ctx.stroke();
      }
    }
  }

  let drawScheduled = false;
  function scheduleDraw() {
    if (drawScheduled) return;
    drawScheduled = true;
    requestAnimationFrame(() => { drawScheduled = false; draw(); });
  }

  function draw() {
    ctx.clearRect(0, 0, W, H);
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, 0, W, H);
    ctx.clip();
    drawFrame();
    const x = xs();
    const ranges = [];
    let visible = 0;
    for (let j = 0; j < M; j++) {
      const lo = lowerBound(x, base[j], base[j + 1], view.x0);
      const hi = upperBound(x, lo, base[j + 1], view.x1);
      ranges.push([lo, hi]);
      visible += hi - lo;
    }
    ctx.save();
    ctx.beginPath();
    ctx.rect(GUTTER - 8, 0, W - GUTTER + 8, H);
    ctx.clip();
    drawConeBands();
    let status;
    if (visible <= DETAIL_MAX) {
      const list = visibleMessages(ARROWS_MAX);
      const heads = list.length <= ARROWS_MAX;
      // Dim arrows first, the cone's on top.
      const order = selection ? list.slice().sort((a, b) => (arrowColor(a, "") === COLORS.dim ? 0 : 1) - (arrowColor(b, "") === COLORS.dim ? 0 : 1)) : list;
      for (const k of order) {
        const color = arrowColor(k, mStatus[k] === STATUS_PROCESSED ? COLORS.arrow : COLORS.unprocessed);
        drawArrow(k, x, heads, color, color === COLORS.dim ? 1 : 1.3);
      }
      drawMarks(ranges);
      status = visible + " events and " + list.length + (heads ? "" : "+") + " messages in view";
      lastMode = "detail";
    } else {
      const { list, total } = sampledMessages();
      for (const k of list) {
        ctx.globalAlpha = 0.25;
        drawArrow(k, x, false, selection ? arrowColor(k, COLORS.arrow) : COLORS.arrow, 0.8);
        ctx.globalAlpha = 1;
      }
      drawDensity(ranges);
      status = visible.toLocaleString("en") + " events in view, drawn as density (bar height: events per pixel); " +
        (total > list.length ? list.length + " of " + total.toLocaleString("en") + " messages drawn" : total + " messages") +
        ": zoom in to see every event";
      lastMode = "density";
    }
    drawSelectionRing();
    ctx.restore();
    ctx.restore();
    $("view-status").textContent = status;
    body.dataset.mode = lastMode;
    body.dataset.visible = String(visible);
  }

  // ---- selection and the panel ---------------------------------------------

  // Times on the axis and in the panel are seconds since the origin.
  function formatSeconds(us) { return (us / 1e6).toFixed(meta.whole_seconds ? 0 : 6) + " s"; }
  // An instant, microseconds since the Unix epoch as a BigInt, in UTC.
  function formatInstant(us) {
    const ms = us / 1000n - (us % 1000n < 0n ? 1n : 0n);
    const micros = String(((us % 1000000n) + 1000000n) % 1000000n).padStart(6, "0");
    return new Date(Number(ms)).toISOString().slice(0, 19) + "." + micros + "Z";
  }
  // The instant of a time since the origin (a small integer of microseconds).
  function instantOf(sinceOrigin) { return originUs + BigInt(Math.round(sinceOrigin)); }

  function eventLink(g) {
    const a = document.createElement("a");
    a.className = "event";
    a.textContent = eventName(g);
    a.href = "#" + eventName(g);
    a.addEventListener("click", (e) => { e.preventDefault(); select(g, { center: true }); });
    return a;
  }

  function addRow(table, label, value) {
    const tr = table.insertRow();
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = label;
    tr.appendChild(th);
    const td = tr.insertCell();
    if (value instanceof Node) td.appendChild(value); else td.textContent = value;
  }

  function showSelection() {
    const c = selection;
    if (!c) {
      $("sel").hidden = true;
      $("sel-none").hidden = false;
      body.dataset.selected = "";
      delete body.dataset.past;
      delete body.dataset.future;
      return;
    }
    const g = c.g, j = machineOf(g);
    $("sel-none").hidden = true;
    $("sel").hidden = false;
    $("sel-id").textContent = eventName(g);
    $("sel-kind").textContent = KIND_NAMES[kind[g]] + (isTick[g] ? " (a tick)" : "") + " · machine " + meta.machines[j].id;
    $("past-size").textContent = c.pastSize.toLocaleString("en");
    $("future-size").textContent = c.futureSize.toLocaleString("en");
    $("concurrent-size").textContent = c.concurrent.toLocaleString("en");
    body.dataset.selected = eventName(g);
    body.dataset.past = String(c.pastSize);
    body.dataset.future = String(c.futureSize);
    body.dataset.hbVector = c.hbVector.join(",");
    const table = $("clock-table");
    table.textContent = "";
    addRow(table, "true time", formatSeconds(time[g]) + " after the start");
    table.rows[0].title = formatInstant(instantOf(time[g]));
    addRow(table, "Lamport clock", String(lam[g]));
    addRow(table, "happens-before vector", "[" + c.hbVector.join(", ") + "]");
    const messages = $("sel-messages");
    messages.textContent = "";
    ensureLinks();
    for (let i = sendStart[g]; i < sendStart[g + 1]; i++) {
      const k = sendMsgs[i], p = document.createElement("p");
      const to = mTo[k] < M ? meta.machines[mTo[k]].id : "?";
      p.append("sent to machine " + to + ": ");
      if (mRecv[k] >= 0) { p.append(STATUS_NAMES[mStatus[k]] + " as "); p.appendChild(eventLink(mRecv[k])); }
      else p.append(STATUS_NAMES[mStatus[k]]);
      messages.appendChild(p);
    }
    for (let k = 0; k < K; k++) {
      if (mRecv[k] !== g) continue;
      const p = document.createElement("p");
      p.append("received from ");
      p.appendChild(eventLink(mSend[k]));
      p.append(mStatus[k] === STATUS_UNPROCESSED ? " (never processed: no happens-before edge)" : "");
      messages.appendChild(p);
      break;
    }
    $("sel-file").textContent = "machine " + meta.machines[j].id + "'s log";
    $("sel-line").textContent = "…";
    loadDetail(g).then((chunk) => {
      if (!selection || selection.g !== g) return;
      const d = detailOf(chunk, g);
      addRow(table, "queue length", String(d.queue));
      if (d.vector) addRow(table, "vector clock (log)", "[" + d.vector.join(", ") + "]");
      // The detail's HLC and physical clock are BigInt instants.
      if (d.hlc) {
        const l = d.hlc.l;
        addRow(table, "HLC (log)", "l " + formatSeconds(Number(l - originUs)) + ", c " + d.hlc.c);
        table.rows[table.rows.length - 1].title = "l = " + formatInstant(l) + " (" + l + " µs since the Unix epoch)";
      }
      if (d.physical !== null) {
        const ahead = d.physical - instantOf(time[g]);
        addRow(table, "physical clock", formatSeconds(Number(d.physical - originUs)) + " (" + (ahead >= 0n ? "+" : "") + ahead + " µs from true time)");
      }
      $("sel-file").textContent = "machine " + meta.machines[j].id + "'s log, line " + d.lineNo;
      $("sel-line").textContent = d.line;
      body.dataset.detail = eventName(g);
    });
  }

  function select(g, options) {
    if (g < 0 || g >= N) { selection = null; showSelection(); scheduleDraw(); return; }
    selection = cone(g);
    if (options && options.center) centerOn(g);
    if (!options || !options.fromHash) history.replaceState(null, "", "#" + eventName(g));
    showSelection();
    scheduleDraw();
  }

  // Brings event g into view: a view that shows single events and holds it
  // stays; otherwise the view zooms to its neighbourhood on its machine.
  function centerOn(g) {
    const x = xs(), j = machineOf(g);
    if (lastMode === "detail" && x[g] >= view.x0 && x[g] <= view.x1) return;
    const span = view.x1 - view.x0;
    const lo = Math.max(base[j], g - 40), hi = Math.min(base[j + 1] - 1, g + 40);
    const want = Math.min(span, Math.max(x[hi] - x[lo], 1) * 1.4);
    view.x0 = x[g] - want / 2;
    view.x1 = x[g] + want / 2;
  }

  function fromHash() {
    const name = decodeURIComponent(location.hash.replace(/^#/, ""));
    if (!name) return;
    const g = parseName(name);
    if (g < 0) {
      selection = null;
      showSelection();
      $("sel-none").textContent = "There is no event " + name + " in this run (machines " +
        meta.machines.map((m) => m.id + ": " + m.n_events + " events").join(", ") + ").";
      body.dataset.selected = "none";
      scheduleDraw();
      return;
    }
    select(g, { center: true, fromHash: true });
  }

  // The event nearest a point of the canvas, within `radius` pixels.
  function eventAt(px, py, radius) {
    const j = Math.floor((py - TOP) / rowH());
    if (j < 0 || j >= M || base[j + 1] === base[j]) return -1;
    const x = xs();
    const target = unsx(px);
    const i = lowerBound(x, base[j], base[j + 1], target);
    let best = -1, bestD = radius;
    for (const g of [i - 1, i, i + 1]) {
      if (g < base[j] || g >= base[j + 1]) continue;
      const d = Math.abs(sx(x[g]) - px);
      if (d <= bestD) { best = g; bestD = d; }
    }
    // Among events at the same spot, the last (the latest line) wins.
    while (best >= 0 && best + 1 < base[j + 1] && x[best + 1] === x[best]) best++;
    return best;
  }

  // ---- input -------------------------------------------------------------

  // Zooms around a point of the canvas; from the keyboard or the buttons,
  // around the selection when it is in view, else around the middle.
  function zoom(factor, aroundPx) {
    let at = unsx(aroundPx == null ? GUTTER + plotW() / 2 : aroundPx);
    if (aroundPx == null && selection) {
      const x = xs()[selection.g];
      if (x >= view.x0 && x <= view.x1) at = x;
    }
    const [lo, hi] = extent();
    // At most 2 µs (or 2 Lamport ticks) across; at least the whole run, four times over.
    const minSpan = 2;
    const maxSpan = (hi - lo) * 4;
    let span = (view.x1 - view.x0) * factor;
    span = Math.min(Math.max(span, minSpan), maxSpan);
    const ratio = (at - view.x0) / (view.x1 - view.x0);
    view.x0 = at - ratio * span;
    view.x1 = view.x0 + span;
    scheduleDraw();
  }
  function pan(fraction) {
    const d = (view.x1 - view.x0) * fraction;
    view.x0 += d;
    view.x1 += d;
    scheduleDraw();
  }

  function setAxis(axis) {
    if (axis === view.axis) return;
    const keep = selection ? selection.g : -1;
    view.axis = axis;
    document.querySelector('input[name="axis"][value="' + axis + '"]').checked = true;
    fit();
    if (keep >= 0) centerOn(keep);
    scheduleDraw();
  }

  let drag = null;
  canvas.addEventListener("mousedown", (e) => {
    drag = { x: e.clientX, x0: view.x0, x1: view.x1, moved: false };
    canvas.classList.add("dragging");
  });
  window.addEventListener("mousemove", (e) => {
    const rect = canvas.getBoundingClientRect();
    if (drag) {
      const dx = e.clientX - drag.x;
      if (Math.abs(dx) > 3) drag.moved = true;
      const d = dx / plotW() * (drag.x1 - drag.x0);
      view.x0 = drag.x0 - d;
      view.x1 = drag.x1 - d;
      scheduleDraw();
      return;
    }
    const px = e.clientX - rect.left, py = e.clientY - rect.top;
    const inside = px >= 0 && py >= 0 && px <= rect.width && py <= rect.height;
    const g = inside ? eventAt(px, py, 8) : -1;
    const tip = $("tooltip");
    if (g !== hoverG) {
      hoverG = g;
      if (g < 0) tip.hidden = true;
      else {
        tip.hidden = false;
        tip.textContent = eventName(g) + " · " + KIND_NAMES[kind[g]] + " · L " + lam[g] + " · " + formatSeconds(time[g]);
      }
    }
    if (g >= 0) {
      tip.style.left = Math.min(px + 12, rect.width - 220) + "px";
      tip.style.top = (py + 14) + "px";
    }
  });
  window.addEventListener("mouseup", (e) => {
    if (!drag) return;
    const moved = drag.moved;
    drag = null;
    canvas.classList.remove("dragging");
    if (moved) return;
    const rect = canvas.getBoundingClientRect();
    const g = eventAt(e.clientX - rect.left, e.clientY - rect.top, 12);
    if (g >= 0) select(g);
  });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const rect = canvas.getBoundingClientRect();
    if (Math.abs(e.deltaX) > Math.abs(e.deltaY)) pan(e.deltaX / plotW());
    else zoom(Math.pow(1.0018, e.deltaY), e.clientX - rect.left);
  }, { passive: false });
  canvas.addEventListener("dblclick", (e) => {
    const rect = canvas.getBoundingClientRect();
    zoom(0.4, e.clientX - rect.left);
  });
  window.addEventListener("keydown", (e) => {
    if (e.target && (e.target.tagName === "INPUT" && e.target.type !== "radio")) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const key = e.key;
    if (key === "+" || key === "=") zoom(1 / 1.5);
    else if (key === "-" || key === "_") zoom(1.5);
    else if (key === "0" || key === "Home") { fit(); scheduleDraw(); }
    else if (key === "ArrowLeft") pan(-0.2);
    else if (key === "ArrowRight") pan(0.2);
    else if (key === "l" || key === "L") setAxis(view.axis === "time" ? "lamport" : "time");
    else if (key === "Escape") { selection = null; history.replaceState(null, "", location.pathname + location.search); showSelection(); scheduleDraw(); }
    else if ((key === "[" || key === "]") && selection) {
      const g = selection.g, j = machineOf(g);
      const next = key === "]" ? g + 1 : g - 1;
      if (next >= base[j] && next < base[j + 1]) select(next, { center: true });
    } else return;
    e.preventDefault();
  });
  $("zoom-in").addEventListener("click", () => zoom(1 / 1.5));
  $("zoom-out").addEventListener("click", () => zoom(1.5));
  $("fit").addEventListener("click", () => { fit(); scheduleDraw(); });
  for (const input of document.querySelectorAll('input[name="axis"]')) {
    input.addEventListener("change", () => setAxis(input.value));
  }
  window.addEventListener("resize", () => { resize(); scheduleDraw(); });
  window.addEventListener("hashchange", fromHash);

  // ---- start -------------------------------------------------------------

  function describeCounts() {
    const n = (v) => Number(v).toLocaleString("en");
    $("title").textContent = "Space-time diagram: " + meta.title;
    document.title = meta.title + " · clocklab diagram";
    $("n-events").textContent = n(N);
    $("n-ticks").textContent = n(meta.n_ticks);
    $("n-machines").textContent = String(M);
    $("n-messages").textContent = n(K);
    const m = meta.messages, parts = [];
    if (m.processed) parts.push(n(m.processed) + " processed");
    if (m.unprocessed) parts.push(n(m.unprocessed) + " left unprocessed");
    if (m.lost) parts.push(n(m.lost) + " lost by the fault plan");
    if (m.held) parts.push(n(m.held) + " held by the fault plan past the end");
    if (m.crashed) parts.push(n(m.crashed) + " taken by a crash");
    if (m.missing) parts.push(n(m.missing) + " never received");
    if (m.unknown) parts.push(n(m.unknown) + " whose receipt the logs do not show");
    $("n-messages-detail").textContent = (parts.length ? " (" + parts.join(", ") + ")" : "") +
      (meta.runtime ? "; " + meta.runtime + " runtime" : "") + (meta.seed != null ? ", seed " + meta.seed : "") +
      (meta.notes.length ? ". " + meta.notes.join(" ").replace(/\.$/, "") : "");
    body.dataset.events = String(N);
    body.dataset.messages = String(K);
  }

  const ready = (async () => {
    describeCounts();
    await decodeDraw();
    for (let j = 0; j < M; j++) {
      for (let g = base[j + 1] - 1; g >= base[j]; g--) { if (kind[g] === K_STOPPED) { stoppedOf[j] = g; break; } }
    }
    resize();
    fit();
    draw();
    body.dataset.firstDrawMs = String(Math.round(performance.now()));
    body.dataset.state = "ready";
    if (location.hash) fromHash();
  })();
  ready.catch(fail);

  // For tests and scripts: the state of the page, and where an event is drawn.
  window.clocklabDiagram = {
    ready,
    select: (name) => { const g = parseName(name); select(g, { center: true }); return g >= 0; },
    cone: (name) => { const c = cone(parseName(name)); return { past: c.pastSize, future: c.futureSize, vector: c.hbVector }; },
    positionOf: (name) => {
      const g = parseName(name);
      if (g < 0) return null;
      const rect = canvas.getBoundingClientRect();
      return { x: rect.left + sx(xs()[g]), y: rect.top + yOf(machineOf(g)), inView: xs()[g] >= view.x0 && xs()[g] <= view.x1 };
    },
    detail: (name) => loadDetail(parseName(name)).then((chunk) => detailOf(chunk, parseName(name))),
    view: () => ({ axis: view.axis, x0: view.x0, x1: view.x1, mode: lastMode }),
  };
})();
