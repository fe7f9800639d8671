// The status page (GET / on the admin port): one self-contained HTML document, no external
// resources (the machine may be offline). It polls /routes and /stats and redraws; rates come from
// the difference between two polls, and each service keeps the last minutes of them for its inline
// SVG chart. Marathon data (app ids, hosts, labels) is untrusted: the page
// builds DOM nodes with textContent and never parses it as HTML.
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Turbine status</title>
<style>
  :root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #57606a; --line: #d0d7de; }
  body { font: 14px/1.45 system-ui, sans-serif; margin: 0 1.5rem 2rem; color: #1f2328; }
  header { display: flex; flex-wrap: wrap; gap: .5rem 2rem; align-items: baseline; padding: 1rem 0; border-bottom: 1px solid var(--line); }
  h1 { font-size: 1.3rem; margin: 0; }
  h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
  .pill { display: inline-block; padding: 0 .5rem; border-radius: 1rem; font-weight: 600; color: #fff; }
  .up, .connected { background: var(--ok); } .down, .disconnected { background: var(--bad); } .connecting { background: var(--warn); }
  .muted { color: var(--muted); }
  table { border-collapse: collapse; width: 100%; margin-bottom: .5rem; }
  /* Fixed layouts: every card's columns line up with the next card's. */
  table.summary, table.backends { table-layout: fixed; }
  table.summary col.c-num { width: 9%; } table.summary col.c-up { width: 14%; }
  table.backends col.c-address { width: 18%; } table.backends col.c-state { width: 9%; } table.backends col.c-why { width: 33%; }
  td.task { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { font-weight: 600; background: #f6f8fa; }
  th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .chart { display: block; }
  .chart .requests { stroke: #0969da; } .chart .errors { stroke: var(--bad); }
  .chart polyline { fill: none; stroke-width: 1.5; }
  .legend-requests { color: #0969da; } .legend-errors { color: var(--bad); }
  .badge { margin-left: .4rem; font-size: .8rem; }
  .service { border: 1px solid var(--line); border-radius: 6px; padding: .2rem .8rem .6rem; margin: .8rem 0; }
  .service h3 { font-size: 1rem; margin: .5rem 0; }
  code { font-size: 13px; }
  #error { color: var(--bad); }
</style>
</head>
<body>
<header>
  <h1>Turbine</h1>
  <div>Marathon: <span id="marathon-state" class="pill connecting">…</span> <code id="marathon-url"></code></div>
  <div class="muted">last event <span id="last-event">–</span> · last sync <span id="last-sync">–</span> · table generation <span id="generation">–</span></div>
  <div id="error"></div>
</header>
<div id="marathon-error" class="muted"></div>
<h2>Services <span class="muted" id="service-count"></span></h2>
<div id="services"></div>
<h2>Label warnings <span class="muted" id="warning-count"></span></h2>
<table><thead><tr><th>app</th><th>label</th><th>reason</th></tr></thead><tbody id="warnings"></tbody></table>
<script>
"use strict";
const POLL_MS = 2000;
/** What each chart shows: the last 5 minutes of polls. */
const HISTORY_POINTS = 150;
let previous = null;
/** Per service id: [{ rps, eps }], oldest first. */
const history = new Map();
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return node;
}

function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? s + " s ago" : s < 3600 ? Math.round(s / 60) + " min ago" : Math.round(s / 3600) + " h ago";
}

function fmtRate(n) { return n == null ? "–" : n < 10 ? n.toFixed(2) : n.toFixed(0); }
// null: no request yet, or slower than the largest bucket (JSON has no Infinity).
function fmtP99(s) { return s == null ? "–" : s < 1 ? (s * 1000).toFixed(1) + " ms" : s.toFixed(2) + " s"; }

function rates(stats) {
  const out = new Map();
  if (!previous) return out;
  const seconds = (stats.now - previous.now) / 1000;
  const before = new Map(previous.services.map((s) => [s.id, s]));
  for (const s of stats.services) {
    const p = before.get(s.id);
    if (!p || seconds <= 0) continue;
    out.set(s.id, { rps: Math.max(0, s.requests - p.requests) / seconds, eps: Math.max(0, s.errors - p.errors) / seconds });
  }
  return out;
}

function remember(services, r) {
  const live = new Set(services.map((s) => s.id));
  for (const id of history.keys()) if (!live.has(id)) history.delete(id);
  for (const s of services) {
    const points = history.get(s.id) || [];
    const rate = r.get(s.id);
    if (rate) points.push(rate);
    if (points.length > HISTORY_POINTS) points.splice(0, points.length - HISTORY_POINTS);
    history.set(s.id, points);
  }
}

/**
 * Request rate (blue) and error rate (red) on one scale. Until the page has 5 minutes of polls the
 * points it has span the whole width, so a page just opened shows a line, not a sliver.
 */
function chart(points) {
  const width = 300, height = 48;
  const slots = Math.max(2, points.length);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", "0 0 " + width + " " + height);
  svg.setAttribute("role", "img");
  const max = Math.max(1, ...points.map((p) => p.rps), ...points.map((p) => p.eps));
  const axis = document.createElementNS(SVG, "line");
  for (const [k, v] of [["x1", 0], ["x2", width], ["y1", height - 0.5], ["y2", height - 0.5], ["stroke", "#d0d7de"]]) axis.setAttribute(k, v);
  svg.append(axis);
  for (const [key, cls] of [["rps", "requests"], ["eps", "errors"]]) {
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("class", cls);
    const step = width / (slots - 1);
    line.setAttribute("points", points.map((p, i) => (i * step).toFixed(1) + "," + (height - 2 - (p[key] / max) * (height - 4)).toFixed(1)).join(" "));
    svg.append(line);
  }
  const title = document.createElementNS(SVG, "title");
  title.textContent = "requests/s and errors/s, " + span(points.length) + "; peak " + fmtRate(max) + "/s";
  svg.append(title);
  return svg;
}

/** What a chart of this many polls covers. */
function span(points) {
  const seconds = Math.max(0, points - 1) * POLL_MS / 1000;
  if (points < 2) return "chart from the next poll";
  return points >= HISTORY_POINTS ? "last " + Math.round(seconds / 60) + " min" : seconds < 120 ? "last " + seconds + " s" : "last " + Math.round(seconds / 60) + " min";
}

function serviceCard(service, stat, rate, draining) {
  const where = [service.vhosts.join(", "), service.paths.length ? service.paths.join(" ") + (service.pathsCaseInsensitive ? " (-i)" : "") : ""].filter(Boolean).join(" ");
  const backends = el("tbody");
  for (const b of service.backends) {
    backends.append(el("tr", { "data-backend": b.address },
      el("td", {}, el("code", {}, b.address)),
      el("td", {}, el("span", { class: "pill " + b.state }, b.state)),
      el("td", {}, b.reasons.join(", ") + (b.state === "up" && b.reasons.length ? (service.panic ? " (panic: routed to anyway)" : " (over the ejection cap: routed to)") : "")),
      el("td", { class: "muted task", title: b.taskId }, b.taskId)));
  }
  for (const d of draining) {
    backends.append(el("tr", { "data-draining": d.backend },
      el("td", {}, el("code", {}, d.backend)),
      el("td", {}, el("span", { class: "pill connecting" }, "draining")),
      el("td", {}, "left the table; in-flight work finishing"),
      el("td", { class: "muted" }, "")));
  }
  for (const e of service.excluded) {
    backends.append(el("tr", { "data-excluded": e.taskId },
      el("td", {}, el("code", {}, e.address || "–")),
      el("td", {}, el("span", { class: "pill down" }, "out")),
      el("td", {}, e.reason + ": " + e.detail),
      el("td", { class: "muted task", title: e.taskId }, e.taskId)));
  }
  // Counted from the rows shown: a backend is up when it gets new traffic; draining rows are extra.
  const up = service.backends.filter((b) => b.state === "up").length;
  const badges = [service.panic ? el("span", { class: "pill down badge", "data-panic": "" }, "panic: routing to all") : "",
    service.ejectionCapped ? el("span", { class: "pill connecting badge", "data-capped": "" }, "ejection cap reached") : ""];
  const num = (text, attrs) => el("td", Object.assign({ class: "num" }, attrs || {}), text);
  return el("section", { class: "service", "data-service": service.id },
    el("h3", {}, service.id, " ", el("span", { class: "muted" }, ":" + service.servicePort + " " + service.mode + " " + service.balance + (where ? " · " + where : "")), ...badges),
    el("table", { class: "summary" },
      el("colgroup", {}, el("col", { class: "c-num" }), el("col", { class: "c-num" }), el("col", { class: "c-num" }), el("col", { class: "c-num" }), el("col", { class: "c-up" }), el("col", {})),
      el("thead", {}, el("tr", {}, el("th", { class: "num" }, "req/s"), el("th", { class: "num" }, "errors/s"), el("th", { class: "num" }, "p99"),
        el("th", { class: "num" }, "requests"), el("th", { class: "num" }, "backends up"),
        el("th", {}, span((history.get(service.id) || []).length) + ": ", el("span", { class: "legend-requests" }, "req/s"), " ", el("span", { class: "legend-errors" }, "errors/s")))),
      el("tbody", {}, el("tr", {},
        num(fmtRate(rate && rate.rps)),
        num(fmtRate(rate && rate.eps)),
        num(fmtP99(stat ? stat.p99 : null)),
        num(stat ? stat.requests : 0),
        num(up + " / " + service.backends.length + (draining.length ? " (+" + draining.length + " draining)" : ""), { "data-up": "" }),
        el("td", { "data-chart": "" }, chart(history.get(service.id) || []))))),
    el("table", { class: "backends" },
      el("colgroup", {}, el("col", { class: "c-address" }), el("col", { class: "c-state" }), el("col", { class: "c-why" }), el("col", {})),
      el("thead", {}, el("tr", {}, el("th", {}, "backend"), el("th", {}, "state"), el("th", {}, "why"), el("th", {}, "task"))),
      backends));
}

function draw(routes, stats) {
  const m = stats.marathon;
  const state = document.getElementById("marathon-state");
  state.textContent = m.state;
  state.className = "pill " + m.state;
  document.getElementById("marathon-url").textContent = m.url;
  document.getElementById("last-event").textContent = ago(m.lastEventAt);
  document.getElementById("last-sync").textContent = ago(m.lastSyncAt);
  document.getElementById("generation").textContent = routes.generation;
  document.getElementById("marathon-error").textContent = m.lastError && m.state !== "connected" ? "last error: " + m.lastError : "";
  const byId = new Map(stats.services.map((s) => [s.id, s]));
  const r = rates(stats);
  remember(routes.services, r);
  const draining = routes.draining || [];
  document.getElementById("services").replaceChildren(...routes.services.map((s) => serviceCard(s, byId.get(s.id), r.get(s.id), draining.filter((d) => d.service === s.id))));
  document.getElementById("service-count").textContent = "(" + routes.services.length + ")";
  document.getElementById("warnings").replaceChildren(...routes.warnings.map((w) => el("tr", {}, el("td", {}, w.appId), el("td", {}, el("code", {}, w.label)), el("td", {}, w.reason))));
  document.getElementById("warning-count").textContent = "(" + routes.warnings.length + ")";
}

async function poll() {
  try {
    const [routes, stats] = await Promise.all([fetch("routes").then((r) => r.json()), fetch("stats").then((r) => r.json())]);
    draw(routes, stats);
    previous = stats;
    document.getElementById("error").textContent = "";
  } catch (err) {
    document.getElementById("error").textContent = "Turbine is not answering: " + err.message;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}
poll();
</script>
</body>
</html>
`;
