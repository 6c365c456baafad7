/* Cold-chain dashboard: fleet overview, shipment view (chart, track, alerts), live via SSE.
   Plain JavaScript, no dependencies, nothing loaded from outside this server. */
"use strict";

const API = "/api/v1";
const KEY_STORE = "coldchain.apiKey";
const IN_FLIGHT = ["packed", "in_transit", "customs_hold", "delivered"];
const SVG_NS = "http://www.w3.org/2000/svg";
const state = {
  key: sessionStorage.getItem(KEY_STORE), me: null, cursor: null, view: null, shipmentId: null,
  products: new Map(), stream: null, backoff: 1000, timers: {},
};

const $ = (sel, root = document) => root.querySelector(sel);

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function fmtTime(iso) {
  return localTime(iso);  // fleet.js: the viewer's time zone
}

function fmtNum(v, digits = 1, unit = "") {
  return v === null || v === undefined ? "–" : `${Number(v).toFixed(digits)}${unit}`;
}

function toast(text) {
  const el = $("#toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(state.timers.toast);
  state.timers.toast = setTimeout(() => { el.hidden = true; }, 4000);
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

function authHeaders() {  // an API key, or the session cookie the browser sends (auth.js)
  return { ...(state.key ? { Authorization: `Bearer ${state.key}` } : {}), ...window.auth.headers() };
}

async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = authHeaders();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(API + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) {
    let problem = {};
    try { problem = await res.json(); } catch (_) { /* not JSON */ }
    signOut(problem.detail || "Not signed in.");
    throw new ApiError(401, problem);
  }
  if (!res.ok) {
    let problem = {};
    try { problem = await res.json(); } catch (_) { /* not JSON */ }
    throw new ApiError(res.status, problem);
  }
  return raw ? res : res.json();
}

/* ---------- sign-in ---------- */

function signOut(message) {
  sessionStorage.removeItem(KEY_STORE);
  state.key = null;
  state.me = null;
  window.auth.signedOut();
  if (state.stream) state.stream.abort();
  show("login");
  $("#login-error").textContent = message || "";
  $("#signout").hidden = true;
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  state.key = $("#api-key").value.trim();
  try {
    await api("/shipments?limit=1");
  } catch (err) {
    if (err.status !== 401) $("#login-error").textContent = err.message;
    return;
  }
  sessionStorage.setItem(KEY_STORE, state.key);
  $("#api-key").value = "";
  start();
});

$("#signout").addEventListener("click", () => signOut(""));

function show(view) {
  state.view = view;
  for (const id of ["login", "fleet", "shipment"]) $(`#${id}`).hidden = id !== view;
}

/* ---------- fleet ---------- */

function riskClass(s) {
  if (s.open_critical_alerts > 0 || (s.margin_h !== null && s.margin_h < 0)) return "risk-critical";
  if (s.at_risk) return "risk-high";
  if (s.open_alerts > 0) return "risk-warn";
  return "risk-ok";
}

function fleetQuery(cursor) {
  const p = new URLSearchParams({ sort: "risk", limit: "100" });
  const status = $("#f-status").value;
  if (status === "") IN_FLIGHT.forEach((s) => p.append("status", s));
  else if (status !== "all") p.append("status", status);
  const q = $("#f-q").value.trim();
  if (q) p.set("q", q);
  if ($("#f-risk").checked) p.set("at_risk", "true");
  if ($("#f-alerts").checked) p.set("has_open_alerts", "true");
  if (cursor) p.set("cursor", cursor);
  return `/shipments?${p}`;
}

function fleetRow(s) {
  const tr = document.createElement("tr");
  tr.className = riskClass(s);
  tr.dataset.id = s.id;
  tr.dataset.reference = s.reference;
  tr.innerHTML = fleetCells(s);  // fleet.js
  tr.addEventListener("click", () => { location.hash = `#/shipments/${s.id}`; });
  return tr;
}

async function loadFleet(more = false) {
  const page = await api(fleetQuery(more ? state.cursor : null));
  const body = $("#fleet-table tbody");
  if (!more) body.replaceChildren();
  page.items.forEach((s) => body.appendChild(fleetRow(s)));
  state.cursor = page.next_cursor;
  $("#more").hidden = !page.next_cursor;
  $("#fleet-empty").hidden = body.children.length > 0;
}

for (const id of ["#f-status", "#f-risk", "#f-alerts"]) $(id).addEventListener("change", () => loadFleet());
$("#f-q").addEventListener("input", () => {
  clearTimeout(state.timers.search);
  state.timers.search = setTimeout(() => loadFleet(), 300);
});
$("#more").addEventListener("click", () => loadFleet(true));

/* ---------- one shipment ---------- */

function metric(label, value, cls = "") {
  return `<div class="metric ${cls}"><div class="label">${esc(label)}</div><div class="value">${value}</div></div>`;
}

async function product(id) {
  if (!state.products.has(id)) state.products.set(id, await api(`/products/${id}`));
  return state.products.get(id);
}

function items(answer) {
  return Array.isArray(answer) ? answer : answer.items;
}

async function loadShipment(id) {
  const s = await api(`/shipments/${id}`);
  const p = await product(s.product_id);
  $("#s-title").textContent = s.reference;
  $("#s-status").textContent = s.status.replace("_", " ");
  const last = s.last_reading;
  const marginCls = s.margin_h === null ? "" : s.margin_h < 0 ? "bad" : s.margin_h < s.safety_margin_h ? "warn" : "";
  $("#s-cards").innerHTML = [
    metric("Last reading", last ? `${fmtNum(last.temp_c, 1, " °C")}` : "–"),
    metric("Product range", `${p.temp_min_c} … ${p.temp_max_c} °C`),
    metric("Hold-time margin", fmtNum(s.margin_h, 1, " h"), marginCls),
    metric("Hold deadline", timeHtml(s.hold_deadline)),
    metric("Expected arrival", timeHtml(s.expected_arrival)),
    metric("Budget used", budgetText(s.stability_budget_used_s, s.stability_budget_s),
      s.stability_budget_used_s > 0 ? "warn" : ""),
    metric("MKT", fmtNum(s.mkt_c, 2, " °C")),
    metric("Min / max", `${fmtNum(s.min_c, 1)} / ${fmtNum(s.max_c, 1)} °C`),
    metric("Open alerts", `${s.open_alerts}`, s.open_critical_alerts ? "bad" : s.open_alerts ? "warn" : ""),
    metric("Release", esc(s.release_decision || "pending")),
  ].join("");
  window.auth.shipmentShown(s);
  $("#events").innerHTML = s.events.length
    ? s.events.map((e) => {
        const fix = e.voided_at ? ` <em>voided: ${esc(e.correction_reason || "")}</em>`
          : e.original_at ? ` <em>moved from ${fmtTime(e.original_at)}: ${esc(e.correction_reason || "")}</em>`
          : e.late_entry ? ` <em>late entry: ${esc(e.correction_reason || "")}</em>` : "";
        const text = `<strong>${esc(e.type.replace("_", " "))}</strong> ${fmtTime(e.at)}${window.readiness.eventNote(e)}${e.note ? ` – ${esc(e.note)}` : ""}${fix}`;
        return `<li${e.voided_at ? ' class="voided"' : ""}>${e.voided_at ? `<s>${text}</s>` : text}</li>`;
      }).join("")
    : `<li class="muted">packed ${fmtTime(s.packed_at)}; no custody events yet</li>`;
  const excursions = await loadExcursions(id);
  await Promise.all([drawChart(s, p, excursions), loadAlerts(id), drawTrack(id, s), shipmentOutlook(s),
    window.readiness.render(s)]);
}

async function loadExcursions(id) {
  let list = [];
  try {
    list = items(await api(`/shipments/${id}/excursions`));
  } catch (err) {
    if (err.status !== 404) throw err;
  }
  const body = $("#excursions-table tbody");
  body.innerHTML = list.map((e) => `<tr data-kind="${esc(e.kind)}"><td>${esc(e.kind)}</td><td>${fmtTime(e.start)}</td>
    <td>${fmtNum(e.duration_s / 60, 1, " min")}</td><td>${fmtNum(e.peak_c, 1, " °C")}</td></tr>`).join("");
  $("#excursions-empty").hidden = list.length > 0;
  return list;
}

async function loadAlerts(id) {
  const list = items(await api(`/alerts?shipment_id=${id}&limit=200`));
  const body = $("#alerts-table tbody");
  body.replaceChildren();
  for (const a of list) {
    const tr = document.createElement("tr");
    tr.dataset.alertId = a.id;
    tr.dataset.state = a.state;
    tr.innerHTML = `<td>${esc(a.kind)}${a.retroactive ? ' <span class="muted">(retroactive)</span>' : ""}</td>
      <td class="sev-${esc(a.severity)}">${esc(a.severity)}</td><td class="state">${esc(a.state)}</td>
      <td>${fmtTime(a.condition_since)}</td><td class="actions"></td>`;
    const actions = tr.querySelector(".actions");
    if (a.state === "open" || a.state === "escalated") actions.appendChild(actionButton(a, "ack", "Acknowledge"));
    if (a.state !== "resolved") actions.appendChild(actionButton(a, "resolve", "Resolve"));
    body.appendChild(tr);
  }
  $("#alerts-empty").hidden = list.length > 0;
}

function actionButton(alert, action, label) {
  const btn = document.createElement("button");
  btn.className = `small ${action}`;
  btn.textContent = label;
  btn.addEventListener("click", (ev) => {
    ev.stopPropagation();
    const cell = btn.parentElement;
    const form = document.createElement("form");
    form.className = "ack-form";
    const needs = action === "resolve" || alert.severity === "critical";
    form.innerHTML = `<input type="text" name="comment" placeholder="comment${needs ? " (required)" : ""}" ${needs ? "required" : ""}>
      <button type="submit" class="primary small confirm">Confirm</button><button type="button" class="small cancel">Cancel</button>`;
    form.querySelector(".cancel").addEventListener("click", () => loadAlerts(state.shipmentId));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const comment = form.comment.value.trim();
      try {
        await api(`/alerts/${alert.id}/${action}`, { method: "POST", body: comment ? { comment } : {} });
        toast(`${alert.kind}: ${action === "ack" ? "acknowledged" : "resolved"}`);
      } catch (err) {
        toast(err.message);
      }
      await loadAlerts(state.shipmentId);
    });
    cell.replaceChildren(form);
    form.comment.focus();
  });
  return btn;
}

/* ---------- temperature chart (SVG) ---------- */

function svg(tag, attrs = {}, parent = null) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

function chooseEvery(s) {
  const chosen = $("#s-every").value;
  if (chosen !== "auto") return chosen;
  const end = s.received_at ? new Date(s.received_at) : new Date();
  const hours = (end - new Date(s.packed_at)) / 3.6e6;
  return hours <= 48 ? "1min" : hours <= 14 * 24 ? "15min" : "1h";
}

async function drawChart(s, p, excursions) {
  const every = chooseEvery(s);
  const r = await api(`/shipments/${s.id}/readings?every=${every}`);
  const W = 1000, H = 340, m = { l: 48, r: 16, t: 14, b: 30 };
  const t0 = Date.parse(r.window_start), t1 = Math.max(Date.parse(r.window_end), t0 + 60000);
  const filled = r.items.filter((b) => b.count > 0);
  let lo = Math.min(p.temp_min_c, ...filled.map((b) => b.min_c));
  let hi = Math.max(p.temp_max_c, ...filled.map((b) => b.max_c));
  const pad = Math.max((hi - lo) * 0.12, 1);
  lo -= pad; hi += pad;
  const x = (t) => m.l + ((t - t0) / (t1 - t0)) * (W - m.l - m.r);
  const y = (v) => H - m.b - ((v - lo) / (hi - lo)) * (H - m.t - m.b);
  const root = svg("svg", { id: "temp-chart", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `temperature of ${s.reference}`, "data-every": every });
  const defs = svg("defs", {}, root);
  const pat = svg("pattern", { id: "gap-hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse",
    patternTransform: "rotate(45)" }, defs);
  svg("rect", { width: 6, height: 6, fill: "#f1f1f1" }, pat);
  svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#b5b5b5", "stroke-width": 3 }, pat);
  for (let i = 0; i <= 5; i++) {
    const v = lo + ((hi - lo) * i) / 5;
    svg("line", { class: "gridline", x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }, root);
    svg("text", { x: m.l - 6, y: y(v) + 4, "text-anchor": "end" }, root).textContent = v.toFixed(1);
  }
  for (let i = 0; i <= 6; i++) {
    const t = t0 + ((t1 - t0) * i) / 6;
    svg("text", { x: x(t), y: H - 10, "text-anchor": "middle" }, root).textContent = fmtTime(new Date(t).toISOString()).replace(" UTC", "");
  }
  for (const g of r.gaps || []) {
    const a = x(Date.parse(g.start)), b = x(Date.parse(g.end));
    const rect = svg("rect", { class: "gap", x: a, y: m.t, width: Math.max(b - a, 1), height: H - m.t - m.b,
      "data-start": g.start, "data-end": g.end }, root);
    svg("title", {}, rect).textContent = `data gap ${fmtTime(g.start)} – ${fmtTime(g.end)}: temperature unknown`;
  }
  // Temperature excursions shade the plot; the others (light, route) are a strip along its top,
  // so a route deviation is never read as the temperature being out of range.
  for (const e of excursions) {
    const a = x(Date.parse(e.start)), b = x(e.end ? Date.parse(e.end) : t1);
    const temperature = e.kind.startsWith("temperature_");
    const rect = svg("rect", {
      class: temperature ? "excursion" : "excursion-other", x: a, y: m.t, width: Math.max(b - a, 2),
      height: temperature ? H - m.t - m.b : 6, "data-kind": e.kind, "data-start": e.start }, root);
    svg("title", {}, rect).textContent = `${e.kind}: ${fmtTime(e.start)}, ${fmtNum(e.duration_s / 60, 1, " min")}, peak ${fmtNum(e.peak_c, 1, " °C")}`;
  }
  // Consecutive buckets are joined (a value holds until the next reading) unless a gap lies between.
  const gaps = (r.gaps || []).map((g) => [Date.parse(g.start), Date.parse(g.end)]);
  const segments = [];
  let seg = [];
  let prevT = null;
  for (const b of filled) {
    const t = Date.parse(b.ts);
    if (prevT !== null && gaps.some(([a, z]) => a < t && z > prevT)) { segments.push(seg); seg = []; }
    seg.push(b);
    prevT = t;
  }
  if (seg.length) segments.push(seg);
  const step = r.items.length > 1 ? Date.parse(r.items[1].ts) - Date.parse(r.items[0].ts) : 60000;
  for (const part of segments) {
    const pts = part.map((b) => [x(Date.parse(b.ts) + step / 2), b]);
    const upper = pts.map(([px, b]) => `${px.toFixed(1)},${y(b.max_c).toFixed(1)}`);
    const lower = pts.slice().reverse().map(([px, b]) => `${px.toFixed(1)},${y(b.min_c).toFixed(1)}`);
    svg("path", { class: "envelope", d: `M${upper.join("L")}L${lower.join("L")}Z` }, root);
    svg("path", { class: "mean", d: `M${pts.map(([px, b]) => `${px.toFixed(1)},${y(b.mean_c).toFixed(1)}`).join("L")}` }, root);
  }
  let marks = 0;
  for (const b of filled) {
    if (marks > 3000) break;
    const outHigh = b.max_c > p.temp_max_c, outLow = b.min_c < p.temp_min_c;
    if (outHigh || outLow) {
      svg("circle", { class: "oor", cx: x(Date.parse(b.ts) + step / 2), cy: y(outHigh ? b.max_c : b.min_c), r: 2.2 }, root);
      marks++;
    }
  }
  for (const [name, v] of [["max", p.temp_max_c], ["min", p.temp_min_c]]) {
    svg("line", { class: "limit", "data-limit": name, x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }, root);
    svg("text", { x: W - m.r - 4, y: y(v) - 4, "text-anchor": "end" }, root).textContent = `${name} ${v} °C`;
  }
  svg("line", { class: "axis", x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }, root);
  svg("line", { class: "axis", x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }, root);
  if (!filled.length) svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, root).textContent = "no readings yet";
  $("#chart-box").replaceChildren(root);
}

$("#s-every").addEventListener("change", () => state.shipmentId && loadShipment(state.shipmentId));

/* ---------- track over the lane and an offline basemap (map.js) ---------- */

async function drawTrack(id, s = {}) {
  const fc = await api(`/shipments/${id}/track`);
  const highlight = {};
  if (s.origin_country) highlight[s.origin_country] = "origin";
  if (s.destination_country) highlight[s.destination_country] = "destination";
  await trackMap.draw($("#map-box"), id, fc, { fmtTime, fmtTemp: (v) => fmtNum(v, 1, " °C"), highlight });
}

/* ---------- report downloads (fetch with the key, then save the blob) ---------- */

// Save a download (an authorised fetch, so no plain link) under the server's file name.
async function saveDownload(path, fallbackName) {
  const res = await api(path, { raw: true });
  const name = /filename="([^"]+)"/.exec(res.headers.get("content-disposition") || "")?.[1] || fallbackName;
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

document.querySelectorAll("[data-report]").forEach((btn) => btn.addEventListener("click", () =>
  saveDownload(`/shipments/${state.shipmentId}/report?format=${btn.dataset.report}`, "report")));

/* ---------- live updates: SSE over fetch (EventSource cannot send the API key header) ---------- */

function setLive(on) {
  const el = $("#live");
  el.className = `live ${on ? "on" : "off"}`;
  el.textContent = on ? "● live" : "● offline";
  document.body.dataset.live = on ? "on" : "off";
}

function debounce(name, fn, ms = 600) {
  clearTimeout(state.timers[name]);
  state.timers[name] = setTimeout(fn, ms);
}

function onEvent(type, msg) {
  if (type === "ready") { setLive(true); return; }
  if (type === "unauthorized") { signOut(msg.reason); return; }
  if (type === "reset") {
    if (state.view === "fleet") debounce("fleet", () => loadFleet());
    if (state.view === "shipment") debounce("shipment", () => loadShipment(state.shipmentId));
    return;
  }
  if (type === "alert" && ["opened", "escalated"].includes(msg.event)) {
    toast(`${msg.reference}: ${msg.kind} ${msg.event} (${msg.severity})`);
  }
  if (state.view === "fleet") debounce("fleet", () => loadFleet());
  if (state.view === "shipment" && msg.shipment_id === state.shipmentId) {
    debounce("shipment", () => loadShipment(state.shipmentId));
  }
}

async function connectStream() {
  if (state.stream || (!state.key && !state.me)) return;
  const ctrl = new AbortController();
  state.stream = ctrl;
  try {
    const res = await fetch(`${API}/stream`, { headers: authHeaders(), signal: ctrl.signal });
    if (res.status === 401) signOut("Not signed in any more.");
    if (!res.ok) throw new Error(`stream: HTTP ${res.status}`);
    state.backoff = 1000;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
        }
        if (data) onEvent(event, JSON.parse(data));
      }
    }
  } catch (_) {
    /* reconnect below */
  }
  setLive(false);
  state.stream = null;
  if (ctrl.signal.aborted || (!state.key && !state.me)) return;
  setTimeout(connectStream, state.backoff);
  state.backoff = Math.min(state.backoff * 2, 30000);
}

/* ---------- routing ---------- */

async function route() {
  if (!state.key && !state.me) { show("login"); return; }
  const match = /^#\/shipments\/([0-9a-f-]{36})$/.exec(location.hash);
  try {
    if (match) {
      state.shipmentId = match[1];
      show("shipment");
      await loadShipment(match[1]);
    } else {
      state.shipmentId = null;
      show("fleet");
      await loadFleet();
    }
  } catch (err) {
    if (err.status !== 401) toast(err.message);
  }
}

function start() {
  $("#signout").hidden = false;
  window.auth.started();
  connectStream();
  route();
}

window.addEventListener("hashchange", route);
setLive(false);
if (state.key) start(); else show("login");
