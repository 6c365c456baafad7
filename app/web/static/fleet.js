/* Fleet rows people can read: site names and the current stop or leg instead of coordinates, the
   stability budget as used / total, times in the viewer's time zone (UTC on hover), the arrival
   forecast. Loaded before app.js, which calls these helpers. */
"use strict";

const LOCAL_TIME = new Intl.DateTimeFormat(undefined, {
  month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  timeZoneName: "short",
});

/* "12-03 14:05 CET" in the viewer's zone ("… UTC" where that is the viewer's zone). */
function localTime(iso) {
  if (!iso) return "–";
  const parts = Object.fromEntries(LOCAL_TIME.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  const zone = /^(GMT|UTC)$/.test(parts.timeZoneName) ? "UTC" : parts.timeZoneName;
  return `${parts.month}-${parts.day} ${parts.hour}:${parts.minute} ${zone}`;
}

function utcTime(iso) {
  return iso ? `${new Date(iso).toISOString().slice(0, 16).replace("T", " ")} UTC` : "";
}

/* A time for innerHTML: local text, the UTC time on hover, machine-readable datetime. */
function timeHtml(iso) {
  if (!iso) return "–";
  return `<time datetime="${esc(iso)}" title="${utcTime(iso)}">${esc(localTime(iso))}</time>`;
}

/* "15 / 60 min" (hours once the budget is two hours or more). */
function budgetText(usedS, totalS) {
  if (totalS === null || totalS === undefined) return fmtNum(usedS / 60, 0, " min");
  if (totalS >= 7200) return `${fmtNum(usedS / 3600, 1)} / ${fmtNum(totalS / 3600, 1)} h`;
  return `${fmtNum(usedS / 60, 0)} / ${fmtNum(totalS / 60, 0)} min`;
}

function probabilityClass(p) {
  if (p === null || p === undefined) return "";
  return p < 0.5 ? "neg" : p < 0.9 ? "warn-text" : "ok-text";
}

function forecastBasisText(b) {
  if (!b) return "no forecast yet";
  return b.method === "lane_history" ? `from ${b.delivered_n} delivered shipments of the lane`
    : `from the lane's validated transit times (${b.delivered_n} delivered so far)`;
}

function fleetCells(s) {
  const last = s.last_reading;
  const where = s.whereabouts;
  const route = s.origin_site_name
    ? `<span class="route">${esc(s.origin_site_name)} → ${esc(s.destination_site_name)}</span>`
    : "–";
  const budgetCls = s.stability_budget_used_s > 0 ? "warn-text" : "";
  const p = s.on_time_probability;
  return `
    <td><strong>${esc(s.reference)}</strong></td>
    <td><span class="badge">${esc(s.status.replace("_", " "))}</span></td>
    <td class="route-cell" title="${esc(s.lane_name || "")}">${route}<br><span class="muted where" data-kind="${esc(where?.kind || "")}">${esc(where?.label || "")}</span></td>
    <td>${last ? `${fmtNum(last.temp_c, 1, " °C")}<br><span class="muted">${timeHtml(last.ts)}</span>` : "–"}</td>
    <td class="${s.margin_h !== null && s.margin_h < 0 ? "neg" : ""}">${fmtNum(s.margin_h, 1, " h")}</td>
    <td>${timeHtml(s.hold_deadline)}</td>
    <td class="arrival">${timeHtml(s.arrival_p50 || s.expected_arrival)}${s.arrival_p90 ? `<br><span class="muted">p90 ${timeHtml(s.arrival_p90)}</span>` : ""}</td>
    <td class="on-time ${probabilityClass(p)}" title="${esc(forecastBasisText(s.forecast_basis))}">${p === null || p === undefined ? "–" : fmtNum(100 * p, 0, " %")}</td>
    <td class="budget ${budgetCls}">${budgetText(s.stability_budget_used_s, s.stability_budget_s)}</td>
    <td>${s.open_alerts}${s.open_critical_alerts ? ` <span class="sev-critical">(${s.open_critical_alerts} critical)</span>` : ""}</td>`;
}
