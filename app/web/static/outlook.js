/* The shipment's outlook: its arrival forecast, a what-if for a customs hold or a delay
   (POST /shipments/{id}/what-if, nothing stored), and its lane's performance as SVG plots
   (transit-time distribution, dwell per waypoint). Loaded before app.js, whose helpers (api,
   svg, fmtNum) it uses; app.js calls shipmentOutlook(s) when it shows a shipment. */
"use strict";

function pct(p) {
  return p === null || p === undefined ? "–" : `${Math.round(100 * p)} %`;
}

function drawForecast(s) {
  const box = $("#s-forecast");
  const p = s.on_time_probability;
  box.innerHTML = `
    <h2>Will it make it?</h2>
    <div class="forecast-grid">
      <div>
        <p class="muted where-now">${esc(s.origin_site_name || "")} → ${esc(s.destination_site_name || "")}${s.whereabouts ? ` · now: ${esc(s.whereabouts.label)}` : ""}</p>
        <div class="on-time-big ${probabilityClass(p)}" data-probability="${p ?? ""}">${pct(p)}</div>
        <div class="muted">probability of arriving before the hold deadline</div>
        <table class="kv forecast">
          <tr><th>Arrival, median (p50)</th><td class="p50">${timeHtml(s.arrival_p50)}</td></tr>
          <tr><th>Arrival, 90 % by (p90)</th><td class="p90">${timeHtml(s.arrival_p90)}</td></tr>
          <tr><th>Hold deadline</th><td>${timeHtml(s.hold_deadline)}</td></tr>
        </table>
        <p class="muted basis">${esc(forecastBasisText(s.forecast_basis))}</p>
      </div>
      <div>
        <form id="what-if" class="what-if">
          <h3>What if…</h3>
          <label>customs holds it <input name="customs_hold_h" type="number" min="0" max="720" step="any" placeholder="0"> h</label>
          <label>it is delayed <input name="delay_h" type="number" min="0" max="720" step="any" placeholder="0"> h</label>
          <button type="submit" class="primary small">Show</button>
          <p class="error" role="alert"></p>
        </form>
        <div id="what-if-result"></div>
      </div>
    </div>`;
  const form = $("#what-if", box);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {};
    for (const name of ["customs_hold_h", "delay_h"]) {
      const v = form[name].value.trim();
      if (v !== "") body[name] = Number(v);
    }
    form.querySelector(".error").textContent = "";
    if (!Object.keys(body).length) {
      form.querySelector(".error").textContent = "Give a customs hold or a delay in hours.";
      return;
    }
    try {
      showWhatIf(s, await api(`/shipments/${s.id}/what-if`, { method: "POST", body }));
    } catch (err) {
      form.querySelector(".error").textContent = err.message;
    }
  });
}

function showWhatIf(s, r) {
  const what = [r.customs_hold_h ? `a ${r.customs_hold_h} h customs hold` : "",
    r.delay_h ? `a ${r.delay_h} h delay` : ""].filter(Boolean).join(" and ");
  const line = (label, now, then) => `<tr><th>${esc(label)}</th><td>${now}</td><td>${then}</td></tr>`;
  const margin = (h) => (h === null || h === undefined ? "–" : `<span class="${h < 0 ? "neg" : ""}">${fmtNum(h, 1, " h")}</span>`);
  $("#what-if-result").innerHTML = `
    <table class="grid what-if-table" data-on-time="${r.on_time_probability}">
      <thead><tr><th></th><th>now</th><th>with ${esc(what)}</th></tr></thead>
      <tbody>
        ${line("On time", pct(s.on_time_probability), `<span class="${probabilityClass(r.on_time_probability)}">${pct(r.on_time_probability)}</span>`)}
        ${line("Arrival p50", timeHtml(s.arrival_p50), timeHtml(r.arrival_p50))}
        ${line("Arrival p90", timeHtml(s.arrival_p90), timeHtml(r.arrival_p90))}
        ${line("Margin (deadline − p50)", margin(s.margin_h), margin(r.margin_h))}
      </tbody>
    </table>
    <p class="muted">Nothing was stored. Hold deadline ${timeHtml(r.hold_deadline)}.</p>`;
}

/* One horizontal distribution per row: p10–p90 box, p50 tick, whiskers to p95 and max; optional
   limit lines (expected/max transit, dwell allowance) in the same hours. */
function distributionPlot(id, rows, { title, unit = "h", limits = [] }) {
  // Room on the left for the longest name (11 px text ≈ 6.3 px a character), at most 45 %.
  const W = 560, right = 20, rowH = 30, top = 24;
  const left = Math.min(Math.max(70, 14 + 6.3 * Math.max(...rows.map((r) => r.name.length))), W * 0.45);
  const H = top + rows.length * rowH + 28;
  const values = rows.flatMap((r) => [r.p10, r.p50, r.p90, r.p95, r.max, r.allowance]).concat(limits.map((l) => l.value));
  const hi = Math.max(1, ...values.filter((v) => v !== null && v !== undefined)) * 1.08;
  const x = (v) => left + (v / hi) * (W - left - right);
  const root = svg("svg", { id, class: "dist-plot", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  const step = hi > 200 ? 50 : hi > 80 ? 20 : hi > 30 ? 10 : hi > 12 ? 5 : hi > 5 ? 2 : 1;
  for (let v = 0; v <= hi; v += step) {
    svg("line", { class: "gridline", x1: x(v), x2: x(v), y1: top - 6, y2: H - 24 }, root);
    svg("text", { x: x(v), y: H - 8, "text-anchor": "middle" }, root).textContent = `${v}`;
  }
  svg("text", { x: W - right, y: H - 8, "text-anchor": "end", class: "unit" }, root).textContent = unit;
  for (const l of limits) {
    svg("line", { class: `limit-line ${l.cls}`, x1: x(l.value), x2: x(l.value), y1: top - 8, y2: H - 24 }, root);
    svg("text", { x: x(l.value) + 3, y: top - 12, class: `limit-text ${l.cls}` }, root).textContent = l.label;
  }
  rows.forEach((r, i) => {
    const cy = top + i * rowH + rowH / 2;
    const g = svg("g", { class: "dist-row", "data-name": r.name, "data-count": r.count }, root);
    svg("text", { x: left - 8, y: cy + 4, "text-anchor": "end" }, g).textContent = r.name;
    if (!r.count) {
      svg("text", { x: left + 4, y: cy + 4, class: "muted-text" }, g).textContent = "no deliveries yet";
      return;
    }
    const lo = r.p10 ?? r.p50, upper = r.p90 ?? r.p95 ?? r.p50;
    if (r.allowance !== undefined) {
      svg("line", { class: "limit-line allowance", x1: x(r.allowance), x2: x(r.allowance), y1: cy - 11, y2: cy + 11 }, g);
    }
    svg("line", { class: "whisker", x1: x(upper), x2: x(r.max ?? upper), y1: cy, y2: cy }, g);
    if (r.p95 !== null && r.p95 !== undefined) svg("line", { class: "whisker", x1: x(r.p95), x2: x(r.p95), y1: cy - 5, y2: cy + 5 }, g);
    if (r.max !== null && r.max !== undefined) svg("circle", { class: "max", cx: x(r.max), cy, r: 2.5 }, g);
    const box = svg("rect", { class: "iqr", x: x(lo), y: cy - 8, width: Math.max(x(upper) - x(lo), 2), height: 16 }, g);
    svg("title", {}, box).textContent = `${r.name}: ${r.count} shipments; p10 ${fmtNum(r.p10, 1)} · p50 ${fmtNum(r.p50, 1)} · p90 ${fmtNum(r.p90, 1)} · p95 ${fmtNum(r.p95, 1)} · max ${fmtNum(r.max, 1)} ${unit}`;
    svg("line", { class: "median", x1: x(r.p50), x2: x(r.p50), y1: cy - 10, y2: cy + 10 }, g);
  });
  return root;
}

async function drawLanePerformance(s) {
  const box = $("#s-lane");
  let perf;
  try {
    perf = await api(`/lanes/${s.lane_id}/performance`);
  } catch (err) {
    box.hidden = err.status === 403;  // a site key does not see lane statistics
    box.innerHTML = `<h2>Lane performance</h2><p class="muted">${esc(err.message)}</p>`;
    return;
  }
  box.hidden = false;
  const t = perf.transit_h;
  const rate = t.on_time_rate === null || t.on_time_rate === undefined ? "" : ` · ${pct(t.on_time_rate)} delivered before the hold deadline`;
  const n = perf.delivered_shipments;
  box.innerHTML = `<h2>Lane performance: ${esc(perf.name)}</h2>
    <p class="muted">${n} delivered shipment${n === 1 ? "" : "s"}${rate}; box p10–p90, line median, whisker to p95 and max (hours)</p>
    <div class="lane-plots"><div><h3>Transit time</h3></div><div><h3>Dwell per waypoint (orange: allowance)</h3></div></div>`;
  const [transit, dwell] = box.querySelectorAll(".lane-plots > div");
  transit.appendChild(distributionPlot("transit-plot", [{ ...t, name: "transit" }], {
    title: "transit time distribution",
    limits: [{ value: t.expected_h, label: "expected", cls: "expected" }, { value: t.max_allowed_h, label: "max", cls: "max-allowed" }],
  }));
  if (perf.dwell_h.length) {
    dwell.appendChild(distributionPlot("dwell-plot", perf.dwell_h.map((d) => ({ ...d, allowance: d.dwell_allowance_h })), {
      title: "dwell per waypoint",
    }));
  } else {
    dwell.insertAdjacentHTML("beforeend", `<p class="muted">The lane has no waypoints.</p>`);
  }
}

async function shipmentOutlook(s) {
  drawForecast(s);
  await drawLanePerformance(s);
}
