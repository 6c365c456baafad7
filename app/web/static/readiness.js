/* Readiness on the shipment view: what a departure still needs, the shipment's documents (upload,
   download) and the coordinator's contingency actions (recharge, reroute). Uses app.js's helpers
   (api, esc, fmtTime, toast, state) at call time; app.js calls readiness.render(s) and
   readiness.eventNote(e). */
"use strict";

window.readiness = (() => {
  const IN_FLIGHT = ["packed", "in_transit", "customs_hold"];
  const lanes = new Map();

  function authHeaders() {
    return state.key ? { Authorization: `Bearer ${state.key}` } : {};
  }

  function fmtBytes(n) {
    if (n >= 1048576) return `${(n / 1048576).toFixed(1)} MiB`;
    if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${n} B`;
  }

  async function laneName(id) {
    if (!lanes.has(id)) {
      try { lanes.set(id, (await api(`/lanes/${id}`)).name); } catch (_) { lanes.set(id, id); }
    }
    return lanes.get(id);
  }

  /* What the custody chain says beyond the type and time (contingencies, overrides). */
  function eventNote(e) {
    const parts = [];
    if (e.type === "recharged") parts.push('<span class="contingency">hold clock restarted</span>');
    if (e.type === "rerouted") {
      parts.push(`<span class="contingency">onto lane <span class="lane-name" data-lane-id="${esc(e.lane_id)}">${esc(e.lane_id)}</span></span>`);
    }
    if (e.override_reason) {
      const u = e.override_unready || {};
      const what = [...(u.missing || []).map((k) => `missing ${k}`),
        ...(u.expired || []).map((x) => `expired ${x.kind}`)].join(", ");
      parts.push(`<em class="override">departed not ready${what ? ` (${esc(what)})` : ""} – override: ${esc(e.override_reason)}</em>`);
    }
    return parts.length ? ` ${parts.join(" ")}` : "";
  }

  function readinessHtml(r) {
    if (r.ready) {
      return `<p class="ready ok" data-ready="true">Ready to depart: every required document is valid until the expected arrival (${fmtTime(r.expected_arrival)}).</p>`;
    }
    const missing = r.missing.map((k) => `<li class="missing" data-kind="${esc(k)}">missing: <strong>${esc(k)}</strong></li>`);
    const expired = r.expired.map((x) => `<li class="expired" data-kind="${esc(x.kind)}">expired before arrival: <strong>${esc(x.kind)}</strong> (${fmtTime(x.expires_at)})</li>`);
    return `<p class="ready bad" data-ready="false">Not ready to depart (expected arrival ${fmtTime(r.expected_arrival)}):</p>
      <ul class="unready">${missing.concat(expired).join("")}</ul>`;
  }

  function documentRow(d) {
    return `<tr data-document-id="${esc(d.id)}"><td>${esc(d.kind)}</td>
      <td><a href="#" class="download" data-document-id="${esc(d.id)}">${esc(d.filename)}</a></td>
      <td>${fmtBytes(d.size)}</td><td>${fmtTime(d.expires_at)}</td>
      <td class="mono" title="${esc(d.sha256)}">${esc(d.sha256.slice(0, 12))}…</td></tr>`;
  }


  async function upload(s, form) {
    const data = new FormData();
    data.append("kind", form.kind.value.trim());
    if (form.expires.value) data.append("expires_at", new Date(`${form.expires.value}Z`).toISOString());
    data.append("file", form.file.files[0]);
    const res = await fetch(`${API}/shipments/${s.id}/documents`, {
      method: "POST", headers: authHeaders(), body: data, credentials: "same-origin",
    });
    if (!res.ok) {
      let problem = {};
      try { problem = await res.json(); } catch (_) { /* not JSON */ }
      throw new ApiError(res.status, problem);
    }
    return res.json();
  }

  function isoFromLocal(value) {
    return value ? new Date(`${value}Z`).toISOString() : new Date().toISOString();
  }

  async function contingency(s, body, done) {
    try {
      await api(`/shipments/${s.id}/events`, { method: "POST", body });
      toast(done);
      await loadShipment(s.id);
    } catch (err) {
      toast(err.message);
    }
  }

  function actionsHtml(s, laneOptions, may) {
    if (!IN_FLIGHT.includes(s.status) || !may("coordinator")) return "";
    return `<h3>Contingency (coordinators)</h3>
      <form id="recharge-form" class="inline-form">
        <label>at (UTC) <input type="datetime-local" name="at"></label>
        <input type="text" name="note" placeholder="what was done, e.g. 12 kg dry ice at FRA depot">
        <button type="submit" class="small recharge">Recharge</button>
      </form>
      <form id="reroute-form" class="inline-form">
        <label>at (UTC) <input type="datetime-local" name="at"></label>
        <select name="lane" required>${laneOptions}</select>
        <input type="text" name="note" placeholder="why">
        <button type="submit" class="small reroute">Reroute</button>
      </form>`;
  }

  async function render(s) {
    const box = $("#readiness-card");
    if (!box) return;
    const [r, docs, who] = await Promise.all([
      api(`/shipments/${s.id}/readiness`), api(`/shipments/${s.id}/documents`),
      api("/auth/me").catch(() => null)]);
    // Offer only what this role may do (the API refuses the rest anyway): uploads are for
    // coordinators and sites, contingency actions for coordinators.
    const may = (...roles) => !who || roles.includes(who.role);
    let laneOptions = "";
    if (IN_FLIGHT.includes(s.status)) {
      try {
        const all = (await api("/lanes?limit=1000")).items.filter((l) => l.id !== s.lane_id);
        laneOptions = all.map((l) => `<option value="${esc(l.id)}">${esc(l.name)}</option>`).join("");
      } catch (_) { /* no lanes to offer */ }
    }
    const kinds = [...new Set([...r.required_documents, ...r.missing])];
    box.innerHTML = `<h2>Readiness and documents</h2>
      <div id="readiness">${readinessHtml(r)}</div>
      <table id="documents-table" class="grid">
        <thead><tr><th>Kind</th><th>File</th><th>Size</th><th>Expires</th><th>SHA-256</th></tr></thead>
        <tbody>${docs.map(documentRow).join("")}</tbody>
      </table>
      <p id="documents-empty" class="muted"${docs.length ? " hidden" : ""}>No documents.</p>
      ${may("coordinator", "site") ? `<form id="document-form" class="inline-form">
        <input name="kind" list="document-kinds" placeholder="kind, e.g. import_license" required pattern="[a-z][a-z0-9_]{0,63}">
        <datalist id="document-kinds">${kinds.map((k) => `<option value="${esc(k)}">`).join("")}</datalist>
        <input type="file" name="file" accept=".pdf,.png,.jpg,.jpeg,.txt,application/pdf,image/png,image/jpeg,text/plain" required>
        <label>expires (UTC) <input type="datetime-local" name="expires"></label>
        <button type="submit" class="small upload">Upload</button>
      </form>` : ""}
      ${actionsHtml(s, laneOptions, may)}`;
    box.querySelectorAll("a.download").forEach((a) => a.addEventListener("click", (ev) => {
      ev.preventDefault();
      saveDownload(`/shipments/${s.id}/documents/${a.dataset.documentId}`, "document").catch((err) => toast(err.message));
    }));
    $("#document-form")?.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const doc = await upload(s, ev.target);
        toast(`${doc.kind}: ${doc.filename} attached`);
        await render(s);
      } catch (err) {
        toast(err.message);
      }
    });
    $("#recharge-form")?.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const f = ev.target;
      contingency(s, { type: "recharged", at: isoFromLocal(f.at.value), note: f.note.value.trim() || undefined },
        "recharge recorded: the hold clock restarts");
    });
    $("#reroute-form")?.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const f = ev.target;
      contingency(s, { type: "rerouted", at: isoFromLocal(f.at.value), lane_id: f.lane.value, note: f.note.value.trim() || undefined },
        "reroute recorded");
    });
    for (const span of document.querySelectorAll("#events .lane-name")) {
      span.textContent = await laneName(span.dataset.laneId);
    }
  }

  /* The fleet view: packaging whose requalification runs out within 30 days (or has). */
  async function fleetNotice() {
    const box = $("#requalification-due");
    if (!box || !state.key) return;
    let due = [];
    try { due = await api("/packaging/requalification-due"); } catch (_) { return; }
    box.hidden = due.length === 0;
    box.innerHTML = due.length ? `Packaging requalification due: ${due.map((p) => (
      `<span class="due" data-packaging-id="${esc(p.id)}"><strong>${esc(p.name)}</strong> ${p.days_left < 0
        ? `expired ${-p.days_left} d ago` : `in ${p.days_left} d`} (${esc(p.requalified_until)}, ${p.active_shipments} active)</span>`
    )).join("; ")}` : "";
  }

  const fleet = document.getElementById("fleet");
  if (fleet) {
    new MutationObserver(() => { if (!fleet.hidden) fleetNotice(); })
      .observe(fleet, { attributes: true, attributeFilter: ["hidden"] });
  }

  return { render, eventNote, fleetNotice };
})();
