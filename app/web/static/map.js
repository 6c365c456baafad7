/* Track map: a shipment's lane, corridor, waypoints, track and position over an offline basemap
   (Natural Earth country outlines from the npm package world-atlas, /static/basemap.json, built by
   scripts/basemap). Web Mercator in plain SVG; nothing is loaded from elsewhere. The buttons (or
   the wheel, once the map was clicked) zoom, dragging pans, "fit" returns to the shipment's
   extent. Labels that would collide are moved around their point or left out (the point keeps
   its name as a tooltip). */
"use strict";

const trackMap = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const W = 640, H = 420;
  const MAX_LAT = 85.05;
  const KM_PER_DEG = 111.32;
  const PAD = 0.14;          // share of the view left around the shipment's extent
  const MIN_SPAN_DEG = 3;    // the tightest fit: about 300 km across
  const MAX_ZOOM = 40;       // beyond the fit, in and out
  const LABEL_H = 13;
  const LAND = "#f4f1ea", BORDER = "#b9b3a6", HIGHLIGHT = "#ece3cc";
  const views = new Map();   // shipment id → the view the user chose (kept across live redraws)
  let basemap = null;

  function el(tag, attrs = {}, parent = null) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  /* Web Mercator in degrees: x is the longitude, y the Mercator ordinate scaled like it (north up). */
  const mercY = (lat) => {
    const phi = (Math.max(-MAX_LAT, Math.min(MAX_LAT, lat)) * Math.PI) / 180;
    return (-180 / Math.PI) * Math.log(Math.tan(Math.PI / 4 + phi / 2));
  };
  const mercLat = (y) => (2 * Math.atan(Math.exp((-y * Math.PI) / 180)) - Math.PI / 2) * (180 / Math.PI);

  /* TopoJSON (quantized, delta-encoded arcs) → countries with projected rings and SVG paths. */
  function decode(topo) {
    const [sx, sy] = topo.transform.scale, [tx, ty] = topo.transform.translate;
    const arcs = topo.arcs.map((arc) => {
      let x = 0, y = 0;
      return arc.map(([dx, dy]) => { x += dx; y += dy; return [x * sx + tx, mercY(y * sy + ty)]; });
    });
    const ring = (indexes) => {
      const pts = [];
      for (const i of indexes) {
        const arc = i >= 0 ? arcs[i] : arcs[~i].slice().reverse();
        for (let k = pts.length ? 1 : 0; k < arc.length; k++) pts.push(arc[k]);
      }
      return pts;
    };
    return topo.objects.countries.geometries.filter((g) => g.arcs).map((g) => {
      const polygons = g.type === "Polygon" ? [g.arcs] : g.arcs;
      const rings = polygons.flatMap((p) => p.map(ring));
      const box = [Infinity, Infinity, -Infinity, -Infinity];
      for (const r of rings) for (const [x, y] of r) {
        box[0] = Math.min(box[0], x); box[1] = Math.min(box[1], y);
        box[2] = Math.max(box[2], x); box[3] = Math.max(box[3], y);
      }
      const d = rings.map((r) => `M${r.map(([x, y]) => `${x.toFixed(2)},${y.toFixed(2)}`).join("L")}Z`).join("");
      return { name: g.properties.name, a2: g.properties.a2 || "", rings, box, d };
    });
  }

  function loadBasemap() {
    if (!basemap) {
      basemap = fetch("/static/basemap.json")
        .then((r) => { if (!r.ok) throw new Error(`basemap: HTTP ${r.status}`); return r.json(); })
        .then((topo) => ({ countries: decode(topo), source: topo.metadata?.source || "" }))
        .catch((err) => { basemap = null; throw err; });
    }
    return basemap;
  }

  /* The shipment's features with longitudes unwrapped around the first one (a lane across the
     antimeridian stays one piece; the basemap is drawn again 360° to either side). */
  function shipmentGeometry(fc) {
    let ref = null;
    const unwrap = ([lon, lat]) => {
      if (ref === null) ref = lon;
      const k = Math.round((ref - lon) / 360);
      return [lon + 360 * k, mercY(lat), lat];
    };
    const of = (kind) => fc.features.filter((f) => f.properties.kind === kind);
    const g = {
      lane: of("lane").map((f) => f.geometry.coordinates.map(unwrap)),
      waypoints: of("waypoint").map((f) => ({ ...f.properties, p: unwrap(f.geometry.coordinates) })),
      corridor: of("corridor").flatMap((f) => f.geometry.coordinates.map((poly) => poly.map((r) => r.map(unwrap)))),
      track: of("track").map((f) => f.geometry.coordinates.map(unwrap)),
      position: of("position").map((f) => ({ ...f.properties, p: unwrap(f.geometry.coordinates) })),
    };
    return g;
  }

  function extent(g) {
    const pts = [...g.lane.flat(), ...g.track.flat(), ...g.waypoints.map((w) => w.p), ...g.position.map((p) => p.p)];
    if (!pts.length) return null;
    const box = [Infinity, Infinity, -Infinity, -Infinity];
    for (const [x, y] of pts) {
      box[0] = Math.min(box[0], x); box[1] = Math.min(box[1], y);
      box[2] = Math.max(box[2], x); box[3] = Math.max(box[3], y);
    }
    return box;
  }

  function fit(box) {
    const cx = (box[0] + box[2]) / 2, cy = (box[1] + box[3]) / 2;
    const bw = Math.max(box[2] - box[0], MIN_SPAN_DEG), bh = Math.max(box[3] - box[1], MIN_SPAN_DEG * H / W);
    const s = Math.min((W * (1 - 2 * PAD)) / bw, (H * (1 - 2 * PAD)) / bh);
    return { s, tx: W / 2 - cx * s, ty: H / 2 - cy * s };
  }

  /* ---- labels: greedy placement around each anchor, dropped when every place collides ---- */

  const overlaps = (a, b) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
  const inView = (b) => b.x0 >= 2 && b.y0 >= 2 && b.x1 <= W - 2 && b.y1 <= H - 2;

  function candidates(x, y, w, r) {
    const g = r + 3, h = LABEL_H;
    if (r < 0) {  // an area's name: centred, else a little above or below
      return [0, -h, h, -2 * h, 2 * h].map((dy) => ({ x0: x - w / 2, y0: y - h / 2 + dy, x1: x + w / 2, y1: y + h / 2 + dy }));
    }
    return [
      [x + g, y - h / 2], [x - g - w, y - h / 2], [x - w / 2, y - g - h], [x - w / 2, y + g],
      [x + g * 0.7, y - g * 0.7 - h], [x - g * 0.7 - w, y - g * 0.7 - h],
      [x + g * 0.7, y + g * 0.7], [x - g * 0.7 - w, y + g * 0.7],
    ].map(([x0, y0]) => ({ x0, y0, x1: x0 + w, y1: y0 + h }));
  }

  /* Labels never overlap `taken` (labels, markers, the buttons) and rather not `lines` (small
     boxes along the lane and the track): a place off the lines first, else one on them. */
  function placeLabels(layer, items, taken, lines = []) {
    for (const item of items) {
      const text = el("text", { class: `label ${item.cls}`, "data-for": item.key }, layer);
      text.textContent = item.text;
      const w = text.getComputedTextLength() || item.text.length * 6.2;
      const free = candidates(item.x, item.y, w, item.r).filter((b) => inView(b) && !taken.some((t) => overlaps(b, t)));
      const spot = free.find((b) => !lines.some((t) => overlaps(b, t))) || free[0];
      if (!spot) { text.remove(); continue; }
      text.setAttribute("x", spot.x0.toFixed(1));
      text.setAttribute("y", (spot.y1 - 3).toFixed(1));
      taken.push(spot);
    }
  }

  function inside(ring, x, y) {
    let c = false;
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [xi, yi] = ring[i], [xj, yj] = ring[j];
      if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) c = !c;
    }
    return c;
  }

  /* Where to name a country: a 7×7 grid over the part of it in view, the grid point inside its
     land nearest the middle of the points that are; the number of those is its visible size. */
  function countryLabels(countries, view) {
    const out = [];
    const N = 7;
    for (const c of countries) {
      const x0 = Math.max(c.box[0] * view.s + view.tx, 0), x1 = Math.min(c.box[2] * view.s + view.tx, W);
      const y0 = Math.max(c.box[1] * view.s + view.ty, 0), y1 = Math.min(c.box[3] * view.s + view.ty, H);
      if (x1 - x0 < 40 || y1 - y0 < 20) continue;
      const hits = [];
      for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) {
        const sx = x0 + ((i + 0.5) * (x1 - x0)) / N, sy = y0 + ((j + 0.5) * (y1 - y0)) / N;
        const wx = (sx - view.tx) / view.s, wy = (sy - view.ty) / view.s;
        if (c.rings.some((r) => inside(r, wx, wy))) hits.push([sx, sy]);
      }
      const area = (hits.length / (N * N)) * (x1 - x0) * (y1 - y0);
      if (area < 2500) continue;
      const mx = hits.reduce((a, p) => a + p[0], 0) / hits.length, my = hits.reduce((a, p) => a + p[1], 0) / hits.length;
      const [x, y] = hits.reduce((b, p) => (Math.hypot(p[0] - mx, p[1] - my) < Math.hypot(b[0] - mx, b[1] - my) ? p : b));
      out.push({ key: `country-${c.a2 || c.name}`, text: c.name, x, y, r: -1, cls: "country-label", area });
    }
    return out.sort((a, b) => b.area - a.area).slice(0, 12);
  }

  /* ---- drawing ---- */

  function drawOverlay(m) {
    const { g, view, layer, world, countries, opts } = m;
    world.setAttribute("transform", `matrix(${view.s} 0 0 ${view.s} ${view.tx} ${view.ty})`);
    layer.replaceChildren();
    const at = ([x, y]) => [x * view.s + view.tx, y * view.s + view.ty];
    const screen = (line) => {
      const out = [];
      let last = null;
      for (const q of line) {
        const p = at(q);
        if (!last || Math.abs(p[0] - last[0]) + Math.abs(p[1] - last[1]) >= 0.75) { out.push(p); last = p; }
      }
      return out;
    };
    const pts = (line) => screen(line).map((p) => `${p[0].toFixed(1)},${p[1].toFixed(1)}`).join(" ");
    const lines = [];  // a 4 px box every 6 px (or 2000 a segment) along the lane and track, in view
    for (const line of [...g.lane, ...g.track]) {
      const sp = screen(line);
      for (let i = 1; i < sp.length; i++) {
        const [ax, ay] = sp[i - 1], [bx, by] = sp[i];
        const n = Math.max(1, Math.min(2000, Math.ceil(Math.hypot(bx - ax, by - ay) / 6)));
        for (let k = 0; k <= n; k++) {
          const x = ax + ((bx - ax) * k) / n, y = ay + ((by - ay) * k) / n;
          if (x > -4 && x < W + 4 && y > -4 && y < H + 4) lines.push({ x0: x - 2, y0: y - 2, x1: x + 2, y1: y + 2 });
        }
      }
    }
    const kmPx = (km, lat) => (km / (KM_PER_DEG * Math.cos((lat * Math.PI) / 180))) * view.s;
    if (g.corridor.length) {
      const d = g.corridor.map((poly) => poly.map((r) => `M${pts(r).replaceAll(" ", "L")}Z`).join("")).join("");
      el("path", { class: "corridor", d }, layer);
    }
    for (const line of g.lane) el("polyline", { class: "lane", points: pts(line) }, layer);
    for (const w of g.waypoints) {
      const [cx, cy] = at(w.p);
      el("circle", { class: "waypoint-area", cx, cy, r: Math.max(kmPx(w.radius_km, w.p[2]), 3),
        "data-radius-km": w.radius_km }, layer);
    }
    for (const line of g.track) el("polyline", { class: "track", points: pts(line) }, layer);
    const taken = [{ x0: W - 44, y0: 0, x1: W, y1: 100 }];  // the zoom buttons
    const items = [];
    g.waypoints.forEach((w, i) => {
      const [cx, cy] = at(w.p);
      const dot = el("circle", { class: "waypoint", cx, cy, r: 5, "data-name": w.name, "data-position": i }, layer);
      el("title", {}, dot).textContent = `${w.name}: radius ${w.radius_km} km, dwell allowance ${w.dwell_allowance_h} h`;
      taken.push({ x0: cx - 6, y0: cy - 6, x1: cx + 6, y1: cy + 6 });
      items.push({ key: `waypoint-${i}`, text: w.name, x: cx, y: cy, r: 5, cls: "waypoint-label" });
    });
    for (const p of g.position) {
      const [cx, cy] = at(p.p);
      const dot = el("circle", { class: "position", cx, cy, r: 6 }, layer);
      el("title", {}, dot).textContent = `last position ${opts.fmtTime(p.ts)}, ${opts.fmtTemp(p.temp_c)}`;
      taken.push({ x0: cx - 7, y0: cy - 7, x1: cx + 7, y1: cy + 7 });
      items.unshift({ key: "position", text: `now ${opts.fmtTemp(p.temp_c)}`, x: cx, y: cy, r: 6, cls: "position-label" });
    }
    placeLabels(layer, items, taken, lines);
    placeLabels(layer, countryLabels(countries, view), taken, lines);
    m.svg.dataset.zoom = view.s.toFixed(3);
  }

  function controls(box, m) {
    const bar = document.createElement("div");
    bar.className = "map-controls";
    for (const [name, label, title] of [["in", "+", "zoom in"], ["out", "−", "zoom out"], ["fit", "fit", "the whole shipment"]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = `small map-${name}`;
      b.textContent = label;
      b.title = title;
      b.addEventListener("click", () => {
        if (name === "fit") setView(m, { ...m.fitted }, false);
        else zoomAt(m, W / 2, H / 2, name === "in" ? 1.6 : 1 / 1.6);
      });
      bar.appendChild(b);
    }
    box.appendChild(bar);
  }

  let frame = null;
  function setView(m, view, userMoved = true) {
    m.view = view;
    m.svg.dataset.zoom = view.s.toFixed(3);
    views.set(m.id, userMoved ? view : null);
    if (frame === null) frame = requestAnimationFrame(() => { frame = null; drawOverlay(m); });
  }

  function zoomAt(m, x, y, factor) {
    const v = m.view;
    const s = Math.min(Math.max(v.s * factor, m.fitted.s / MAX_ZOOM), m.fitted.s * MAX_ZOOM);
    const k = s / v.s;
    setView(m, { s, tx: x - (x - v.tx) * k, ty: y - (y - v.ty) * k });
  }

  function toView(svgEl, ev) {
    const ctm = svgEl.getScreenCTM();
    if (!ctm) return [W / 2, H / 2];
    const p = new DOMPoint(ev.clientX, ev.clientY).matrixTransform(ctm.inverse());
    return [p.x, p.y];
  }

  function interact(m) {
    const svgEl = m.svg;
    // The wheel zooms once the map was clicked (or with Ctrl/⌘): scrolling the page past the
    // map must not zoom it.
    let engaged = false;
    svgEl.addEventListener("pointerleave", () => { engaged = false; });
    svgEl.addEventListener("wheel", (ev) => {
      if (!engaged && !ev.ctrlKey && !ev.metaKey) return;
      ev.preventDefault();
      const [x, y] = toView(svgEl, ev);
      zoomAt(m, x, y, Math.exp(-ev.deltaY * 0.0015));
    }, { passive: false });
    svgEl.addEventListener("dblclick", (ev) => { const [x, y] = toView(svgEl, ev); zoomAt(m, x, y, 2); });
    let drag = null;
    svgEl.addEventListener("pointerdown", (ev) => {
      engaged = true;
      drag = { at: toView(svgEl, ev), view: m.view };
      svgEl.setPointerCapture(ev.pointerId);
      svgEl.classList.add("dragging");
    });
    svgEl.addEventListener("pointermove", (ev) => {
      if (!drag) return;
      const [x, y] = toView(svgEl, ev);
      setView(m, { ...drag.view, tx: drag.view.tx + x - drag.at[0], ty: drag.view.ty + y - drag.at[1] });
    });
    const end = () => { drag = null; svgEl.classList.remove("dragging"); };
    svgEl.addEventListener("pointerup", end);
    svgEl.addEventListener("pointercancel", end);
  }

  /* Draw shipment `id`'s track FeatureCollection into `box`; opts: {fmtTime, fmtTemp, highlight: {a2: cls}}. */
  async function draw(box, id, fc, opts) {
    const root = el("svg", { id: "track-map", class: "track-map", viewBox: `0 0 ${W} ${H}`, role: "img",
      "aria-label": `track of ${fc.properties?.reference || "the shipment"} over a map` });
    el("rect", { class: "sea", x: 0, y: 0, width: W, height: H }, root);
    const g = shipmentGeometry(fc);
    const box0 = extent(g);
    if (!box0) {
      el("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, root).textContent = "no positions";
      box.replaceChildren(root);
      return;
    }
    let map;
    try {
      map = await loadBasemap();
    } catch (err) {
      map = { countries: [], source: "" };
      root.dataset.basemapError = err.message;
    }
    const world = el("g", { class: "basemap" }, root);
    // Colours as presentation attributes too: the copies drawn by <use> do not match the page's
    // selectors (map.css styles the original the same way).
    const copy = el("g", { id: "basemap-world", fill: LAND, stroke: BORDER, "stroke-width": 0.7,
      "fill-rule": "evenodd", "stroke-linejoin": "round" }, world);
    for (const c of map.countries) {
      const cls = opts.highlight?.[c.a2];
      const path = el("path", { class: `country${cls ? ` ${cls}` : ""}`, d: c.d, "data-name": c.name,
        "vector-effect": "non-scaling-stroke" }, copy);
      if (cls) path.setAttribute("fill", HIGHLIGHT);
      if (c.a2) path.dataset.a2 = c.a2;
    }
    for (const dx of [-360, 360]) el("use", { href: "#basemap-world", transform: `translate(${dx} 0)` }, world);
    const layer = el("g", { class: "overlay" }, root);
    el("text", { class: "attribution", x: W - 4, y: H - 4, "text-anchor": "end" }, root).textContent = "Natural Earth";
    const fitted = fit(box0);
    const m = { id, svg: root, g, world, layer, countries: map.countries, opts, fitted, view: views.get(id) || fitted };
    // west, south, east, north of what the fit shows (degrees): for tests and the curious
    root.dataset.extent = [box0[0], mercLat(box0[3]), box0[2], mercLat(box0[1])].map((v) => v.toFixed(4)).join(",");
    box.replaceChildren(root);
    controls(box, m);
    interact(m);
    drawOverlay(m);
  }

  return { draw, W, H };
})();
