// The Laterbase console: a node, its roots, peers and an aggregate's two timelines, over the
// node's own HTTP API. No build step, nothing from the internet. The bearer token stays in this
// tab's sessionStorage.
"use strict";

const tokenKey = "laterbase-token";
const view = document.getElementById("view");
const crumbs = document.getElementById("crumbs");
const message = document.getElementById("message");
let leaving = [];          // what the current view stops when another one opens
let lastMetrics = null;    // {at, written, reads} of the previous scrape, for rates

// ---------- small helpers ----------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
function svg(tag, attrs = {}) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}
function say(text) { message.textContent = text; message.hidden = !text; }
function token() { return sessionStorage.getItem(tokenKey) || ""; }
function headers(extra = {}) { const t = token(); return t ? { ...extra, Authorization: "Bearer " + t } : extra; }

/** Calls the API; on 401 and 403 says so clearly and throws. */
async function api(path, { accept = "application/json", text = false } = {}) {
  const r = await fetch(path, { headers: headers({ Accept: accept }) });
  if (r.status === 401) {
    say(token() ? "This node does not know that token (401 unauthorized). Paste a token from `laterbase credentials add`, then Use token."
                : "This node needs a token (401 unauthorized). Paste one above and press Use token.");
    throw new ApiError(401, "unauthorized");
  }
  const body = text ? await r.text() : await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, body && body.error, body && body.message);
  return body;
}
class ApiError extends Error {
  constructor(status, code, text) { super(text || code || String(status)); this.status = status; this.code = code; }
}
function hlcMillis(hlc) { return Number(BigInt("0x" + hlc) >> 16n); }
function iso(ms) { return new Date(ms).toISOString(); }
function every(ms, f) { let stop = false; const tick = async () => { if (stop) return; try { await f(); } catch (e) { if (!(e instanceof ApiError)) say(String(e)); } if (!stop) setTimeout(tick, ms); }; tick(); leaving.push(() => { stop = true; }); }

// ---------- node view ----------

function nodeView() {
  crumbs.replaceChildren("node");
  const info = el("dl", { class: "kv", id: "node-info" });
  const roots = el("tbody");
  const peers = el("tbody");
  const rates = el("dl", { class: "kv", id: "rates" });
  view.replaceChildren(
    el("section", {}, el("h2", {}, "Node"), info),
    el("section", {}, el("h2", {}, "Roots"), el("table", { id: "roots" },
      el("thead", {}, el("tr", {}, el("th", {}, "root"), el("th", { class: "num" }, "events"), el("th", { class: "num" }, "aggregates"), el("th", {}, "position"))), roots)),
    el("section", {}, el("h2", {}, "Rates"), rates),
    el("section", {}, el("h2", {}, "Peers"), el("table", { id: "peers" },
      el("thead", {}, el("tr", {}, el("th", {}, "peer"), el("th", {}, "replica"), el("th", {}, "state"), el("th", {}, "its position we hold"),
        el("th", {}, "roots"))), peers)));
  every(2000, async () => {
    const node = await api("/node");
    say("");
    const readable = node.caller ? node.caller.read : node.roots;
    // Each root's position from /node (contract v3): a token of a few dozen bytes, where a head
    // is a vv of every origin that ever wrote (a megabyte for a fleet of 100,000 devices).
    const positions = {};
    for (const r of readable) positions[r] = (node.positions || {})[r];
    let stats = null;
    if (node.caller && node.caller.role === "admin") stats = await api("/stats").catch(() => null);
    info.replaceChildren(
      el("dt", {}, "replica"), el("dd", { id: "replica", class: "mono" }, node.replica),
      el("dt", {}, "ingest"), el("dd", { class: "mono" }, node.ingest || "none"),
      el("dt", {}, "publish"), el("dd", { class: "mono" }, node.publish || "none"),
      el("dt", {}, "CURVE"), el("dd", {}, node.curve ? "on (credentials)" : "off (open node)"),
      el("dt", {}, "you are"), el("dd", {}, node.caller ? `${node.caller.name} (${node.caller.role})` : "?"));
    roots.replaceChildren(...node.roots.map(r => {
      const s = stats && stats.roots.find(x => x.root === r);
      const position = positions[r];
      return el("tr", { "data-root": r },
        el("td", {}, position ? el("a", { href: `#/root/${r}` }, r) : r),
        el("td", { class: "num" }, s ? s.events : position ? position.split(":")[1] : "—"),
        el("td", { class: "num" }, s ? s.aggregates : "—"),
        el("td", { class: "mono" }, position || "not readable"));
    }));
    await showRates(rates);
    peers.replaceChildren(...(node.peers || []).map(p => {
      // By the peer's positions (contract v3): no vv travels, whatever the number of origins.
      const positions = p.positions || {}, inSync = new Set(p.in_sync || []);
      return el("tr", { "data-peer": p.url },
        el("td", { class: "mono" }, p.url), el("td", { class: "mono" }, p.replica || "?"),
        el("td", {}, el("span", { class: p.reachable ? "up" : "down" }, p.reachable ? "reachable" : "unreachable"), p.error ? el("div", { class: "muted" }, p.error) : ""),
        el("td", { class: "mono" }, Object.entries(positions).map(([r, t]) => `${r} ${t}`).join("; ") || "(by vv)"),
        el("td", {}, Object.keys(positions).map(r => `${r} ${inSync.has(r) ? "in sync" : "syncing"}`).join("; ")));
    }));
    if (!(node.peers || []).length) peers.replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "no peers (serve with --peer URL)")));
  });
}

async function showRates(into) {
  let text;
  try { text = await api("/metrics", { accept: "text/plain", text: true }); } catch (e) {
    if (e instanceof ApiError && e.status === 403) { into.replaceChildren(el("dt", {}, "rates"), el("dd", { class: "muted" }, "need an admin or monitor token")); return; }
    throw e;
  }
  const sum = name => text.split("\n").filter(l => l.startsWith(name + " ") || l.startsWith(name + "{")).reduce((a, l) => a + Number(l.split(" ").pop()), 0);
  const now = { at: performance.now(), written: sum("laterbase_events_written_total"), reads: sum("laterbase_reads_total") };
  const rate = k => lastMetrics ? ((now[k] - lastMetrics[k]) * 1000 / (now.at - lastMetrics.at)).toFixed(1) : "…";
  into.replaceChildren(
    el("dt", {}, "events written"), el("dd", { id: "write-rate" }, `${rate("written")} /s (${now.written} since start)`),
    el("dt", {}, "reads"), el("dd", { id: "read-rate" }, `${rate("reads")} /s (${now.reads} since start)`),
    el("dt", {}, "live feeds open"), el("dd", {}, sum("laterbase_live_feeds")));
  lastMetrics = now;
}

// ---------- root view: the live tail ----------

function rootView(root) {
  crumbs.replaceChildren(el("a", { href: "#/node" }, "node"), " / ", root);
  const filters = { aggregate: el("input", { id: "f-aggregate", placeholder: "aggregate" }), type: el("input", { id: "f-type", placeholder: "type" }), origin: el("input", { id: "f-origin", placeholder: "origin" }) };
  const status = el("span", { id: "live-status", class: "muted" }, "connecting…");
  const rows = el("tbody", { id: "tail" });
  const older = el("button", { id: "older" }, "Older");
  view.replaceChildren(el("section", {}, el("h2", {}, `Root ${root}: the live tail`),
    el("div", { class: "filters" }, "filter", filters.aggregate, filters.type, filters.origin, status, older),
    el("table", {}, el("thead", {}, el("tr", {}, ["recorded (hlc)", "happened (time)", "origin:seq", "aggregate", "type", "data"].map(h => el("th", {}, h)))), rows)));
  const shown = new Set();
  const matches = e => Object.entries(filters).every(([k, input]) => !input.value || String(e[k]).includes(input.value));
  const row = (e, fresh) => {
    const r = el("tr", { class: fresh ? "fresh" : "", "data-id": e.id, "data-aggregate": e.aggregate, "data-type": e.type, "data-origin": e.origin },
      el("td", { class: "mono" }, iso(hlcMillis(e.hlc))), el("td", { class: "mono" }, e.time), el("td", { class: "mono" }, `${e.origin}:${e.seq}`),
      el("td", {}, el("a", { href: `#/aggregate/${root}/${encodeURIComponent(e.aggregate)}` }, e.aggregate)), el("td", {}, e.type),
      el("td", { class: "data mono", title: JSON.stringify(e.data) }, JSON.stringify(e.data)));
    r.hidden = !matches(e);
    r.event = e;
    return r;
  };
  const refilter = () => { for (const r of rows.children) r.hidden = !matches(r.event); };
  for (const input of Object.values(filters)) { input.addEventListener("input", refilter); input.addEventListener("change", refilter); }
  // Newest on top; the feed by position comes in the order the node stored it.
  const addNewest = events => {
    for (const e of events) {
      const key = `${e.origin}:${e.seq}`;
      if (shown.has(key)) continue;
      shown.add(key);
      rows.prepend(row(e, true));
    }
    while (rows.children.length > 2000) rows.lastChild.remove();
  };
  // By position (contract v3): the node's token is `<epoch>:<n>`, n events stored in the root; the
  // console is the node's own, so it counts back from there (a client treats tokens as opaque).
  const page = 50;
  let epoch = "", low = 0;  // below position `low` the tail has not loaded yet (paging back)
  const token = n => `${epoch}:${n}`;
  const controller = new AbortController();
  leaving.push(() => controller.abort());
  older.addEventListener("click", async () => {
    const from = Math.max(0, low - page);
    const got = await api(`/e/${root}?since=${token(from)}&limit=${low - from}`);
    for (const e of got.events.reverse()) { const key = `${e.origin}:${e.seq}`; if (!shown.has(key)) { shown.add(key); rows.append(row(e, false)); } }
    low = from;
    older.disabled = low === 0;
  });
  (async () => {
    const position = ((await api("/node")).positions || {})[root] || "";
    const colon = position.indexOf(":");
    epoch = position.slice(0, colon);
    low = Math.max(0, Number(position.slice(colon + 1)) - page);
    older.disabled = low === 0;
    let lastID = token(low);
    while (!controller.signal.aborted) {
      try {
        const r = await fetch(`/e/${root}?since=${lastID}`, { headers: headers({ Accept: "text/event-stream", "Last-Event-ID": lastID }), signal: controller.signal });
        if (r.status === 401) { say("This node does not know that token (401 unauthorized)."); return; }
        if (r.status === 410) { say("The node was restored from a backup: reload to follow it again."); return; }
        if (!r.ok) { say(`The live feed answered ${r.status}.`); return; }
        status.textContent = "live";
        const reader = r.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let id = null, data = "";
            for (const line of block.split("\n")) {
              if (line.startsWith("id: ")) id = line.slice(4);
              else if (line.startsWith("data: ")) data += line.slice(6);
            }
            if (id !== null && data) { addNewest(JSON.parse(data).events); lastID = id; }
          }
        }
      } catch (e) {
        if (controller.signal.aborted) return;
      }
      status.textContent = "reconnecting…";
      await new Promise(r => setTimeout(r, 1000));
    }
  })().catch(e => { if (!(e instanceof ApiError)) say(String(e)); });
}

// ---------- aggregate view: two timelines ----------

function aggregateView(root, id) {
  crumbs.replaceChildren(el("a", { href: "#/node" }, "node"), " / ", el("a", { href: `#/root/${root}` }, root), " / ", id);
  const plot = svg("svg", { id: "timeline", viewBox: "0 0 900 420" });
  const mode = el("select", { id: "pointer-mode" }, el("option", { value: "as_of" }, "as_of: when it happened (across)"), el("option", { value: "recorded_by" }, "recorded_by: when it was recorded (up)"));
  const asOf = el("input", { id: "as-of", placeholder: "as_of, e.g. 2026-11-20T14:00:00Z", size: 28 });
  const recordedBy = el("input", { id: "recorded-by", placeholder: "recorded_by", size: 28 });
  const show = el("button", { id: "show-then" }, "Show");
  const now = el("pre", { id: "state-now" }, "…");
  const then = el("pre", { id: "state-then" }, "pick a moment on the plot or type one");
  const thenTitle = el("h2", { id: "then-title" }, "Then");
  const list = el("tbody");
  view.replaceChildren(
    el("section", {}, el("h2", {}, `Aggregate ${root}/${id}`),
      el("div", { class: "legend" }, el("span", {}, el("i", { class: "dot on-time" }), "recorded as it happened"),
        el("span", {}, el("i", { class: "dot late" }), "back-dated or recorded offline (a minute or more after it happened)"),
        el("span", { class: "muted" }, "across: when it happened (time); up: when it was recorded (hlc); dashed: where the two are equal")),
      plot,
      el("div", { class: "filters" }, "pointer", mode, asOf, recordedBy, show)),
    el("div", { class: "states" }, el("section", {}, el("h2", {}, "Now"), now), el("section", {}, thenTitle, then)),
    el("section", {}, el("h2", {}, "Events, in fold order"), el("table", { id: "history" },
      el("thead", {}, el("tr", {}, ["happened (time)", "recorded (hlc)", "origin:seq", "type", "data"].map(h => el("th", {}, h)))), list)));
  const W = 900, H = 420, left = 100, right = 20, top = 15, bottom = 40;
  let scale = null;
  let history = [];  // the aggregate's events, as last read
  // Each axis spans its own times (padded), so events hours apart in valid time and seconds
  // apart in recorded time both spread out; the dashed diagonal is where they are equal.
  const span = values => {
    let lo = Math.min(...values), hi = Math.max(...values);
    if (hi - lo < 60000) { lo -= 60000; hi += 60000; }
    const pad = (hi - lo) * 0.06;
    return [lo - pad, hi + pad];
  };
  // Seconds where the axis spans less than an hour.
  const label = (t, lo, hi) => iso(t).slice(5, hi - lo < 3600000 ? 19 : 16).replace("T", " ");
  const draw = events => {
    const points = events.map(e => ({ e, x: Date.parse(e.time), y: hlcMillis(e.hlc) }));
    const [xlo, xhi] = span(points.map(p => p.x)), [ylo, yhi] = span(points.map(p => p.y));
    const sx = t => left + (t - xlo) / (xhi - xlo) * (W - left - right), sy = t => H - bottom - (t - ylo) / (yhi - ylo) * (H - top - bottom);
    scale = { fromX: px => xlo + (px - left) / (W - left - right) * (xhi - xlo), fromY: py => ylo + (H - bottom - py) / (H - top - bottom) * (yhi - ylo), sx, sy };
    plot.replaceChildren(
      svg("line", { class: "axis", x1: left, y1: H - bottom, x2: W - right, y2: H - bottom }),
      svg("line", { class: "axis", x1: left, y1: top, x2: left, y2: H - bottom }));
    const dlo = Math.max(xlo, ylo), dhi = Math.min(xhi, yhi);
    if (dlo < dhi) plot.append(svg("line", { class: "diagonal", x1: sx(dlo), y1: sy(dlo), x2: sx(dhi), y2: sy(dhi) }));
    for (let i = 0; i <= 4; i++) {
      const tx = svg("text", { x: sx(xlo + (xhi - xlo) * i / 4), y: H - bottom + 16, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" });
      tx.textContent = label(xlo + (xhi - xlo) * i / 4, xlo, xhi); plot.append(tx);
      const ty = svg("text", { x: left - 6, y: sy(ylo + (yhi - ylo) * i / 4) + 4, "text-anchor": "end" });
      ty.textContent = label(ylo + (yhi - ylo) * i / 4, ylo, yhi); plot.append(ty);
    }
    for (const p of points) {
      const late = p.y - p.x >= 60000;
      const c = svg("circle", { class: "mark" + (late ? " late" : ""), cx: sx(p.x), cy: sy(p.y), r: 6, "data-seq": `${p.e.origin}:${p.e.seq}` });
      const title = svg("title"); title.textContent = `${p.e.type} ${JSON.stringify(p.e.data)}\nhappened ${p.e.time}\nrecorded ${iso(p.y)} by ${p.e.origin}`;
      c.append(title); plot.append(c);
    }
  };
  const pointer = () => {
    for (const old of plot.querySelectorAll(".pointer")) old.remove();
    if (!scale) return;
    const a = Date.parse(asOf.value), r = Date.parse(recordedBy.value);
    if (!isNaN(a)) plot.append(svg("line", { class: "pointer", x1: scale.sx(a), y1: top, x2: scale.sx(a), y2: H - bottom }));
    if (!isNaN(r)) plot.append(svg("line", { class: "pointer", x1: left, y1: scale.sy(r), x2: W - right, y2: scale.sy(r) }));
  };
  const showThen = async () => {
    const params = new URLSearchParams();
    if (asOf.value) params.set("as_of", asOf.value);
    if (recordedBy.value) params.set("recorded_by", recordedBy.value);
    pointer();
    if (![...params].length) return;
    thenTitle.textContent = "Then: " + [...params].map(([k, v]) => `${k} ${v}`).join(", ");
    // Before the first event there is nothing to fold: say so without asking (the API's 404).
    const a = Date.parse(asOf.value), r = Date.parse(recordedBy.value);
    if (history.length && !history.some(e => (isNaN(a) || Date.parse(e.time) <= a) && (isNaN(r) || hlcMillis(e.hlc) <= r))) {
      then.textContent = "nothing folded yet at that moment";
      then.dataset.events = 0;
      return;
    }
    try {
      const got = await api(`/a/${root}/${encodeURIComponent(id)}?${params}`);
      then.textContent = JSON.stringify(got.state, null, 2);
      then.dataset.events = got.events;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) { then.textContent = "nothing folded yet at that moment"; then.dataset.events = 0; }
      else if (e instanceof ApiError && e.status === 400) then.textContent = `not a time: ${e.message}`;
      else throw e;
    }
  };
  show.addEventListener("click", () => showThen().catch(e => say(String(e))));
  plot.addEventListener("click", ev => {
    if (!scale) return;
    // Client to viewBox coordinates, letterboxing included.
    const point = plot.createSVGPoint();
    point.x = ev.clientX; point.y = ev.clientY;
    const { x: px, y: py } = point.matrixTransform(plot.getScreenCTM().inverse());
    if (mode.value === "as_of") asOf.value = iso(Math.round(scale.fromX(px))); else recordedBy.value = iso(Math.round(scale.fromY(py)));
    showThen().catch(e => say(String(e)));
  });
  every(3000, async () => {
    const [state, got] = await Promise.all([api(`/a/${root}/${encodeURIComponent(id)}`), api(`/h/${root}/${encodeURIComponent(id)}?limit=10000`)]);
    say("");
    now.textContent = JSON.stringify(state.state, null, 2);
    now.dataset.events = state.events;
    history = got.events;
    draw(history);
    pointer();
    list.replaceChildren(...history.map(e => el("tr", {}, el("td", { class: "mono" }, e.time), el("td", { class: "mono" }, iso(hlcMillis(e.hlc))),
      el("td", { class: "mono" }, `${e.origin}:${e.seq}`), el("td", {}, e.type), el("td", { class: "mono" }, JSON.stringify(e.data)))));
  });
}

// ---------- routing and the token ----------

function route() {
  for (const stop of leaving) stop();
  leaving = [];
  lastMetrics = null;
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  if (parts[0] === "root" && parts[1]) rootView(parts[1]);
  else if (parts[0] === "aggregate" && parts[1] && parts[2]) aggregateView(parts[1], decodeURIComponent(parts.slice(2).join("/")));
  else nodeView();
}

document.getElementById("token-form").addEventListener("submit", ev => {
  ev.preventDefault();
  const input = document.getElementById("token");
  sessionStorage.setItem(tokenKey, input.value.trim());
  input.value = "";
  say("");
  route();
});
document.getElementById("forget").addEventListener("click", () => { sessionStorage.removeItem(tokenKey); say("Token forgotten."); route(); });
window.addEventListener("hashchange", route);
window.addEventListener("unhandledrejection", ev => { if (ev.reason instanceof ApiError) ev.preventDefault(); });
route();
