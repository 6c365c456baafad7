// Build-time only (the app never runs this): Natural Earth 1:50m country outlines from the npm
// package world-atlas, simplified and re-quantized into app/web/static/basemap.json (TopoJSON),
// each country tagged with its ISO 3166-1 alpha-2 code (what sites carry) for the page.
//
//   cd scripts/basemap && npm ci && npm run build
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { quantize } from "topojson-client";
import { presimplify, simplify, sphericalTriangleArea } from "topojson-simplify";
import countries from "i18n-iso-countries";

const require = createRequire(import.meta.url);
const SOURCE = "world-atlas/countries-50m.json";
// Steradians (1 km² ≈ 2.5e-8 sr): a vertex whose triangle with its neighbours covers less than
// ~80 km² goes. 2e-6 keeps 26 k of the 50m file's points (≈ 270 KB); coastlines still read at
// lane scale (a few hundred km across).
const MIN_WEIGHT = Number(process.env.BASEMAP_MIN_WEIGHT ?? 2e-6);
// 0.01° steps in longitude (≈ 1 km): finer than the drawing at any zoom the page allows.
const QUANTIZATION = 36_000;

const atlasVersion = JSON.parse(readFileSync(require.resolve("world-atlas/package.json"))).version;
const input = JSON.parse(readFileSync(require.resolve(SOURCE)));
delete input.objects.land;  // the countries' outlines already draw every coastline
const simplified = simplify(presimplify(input, sphericalTriangleArea), MIN_WEIGHT);
for (const arc of simplified.arcs) for (const p of arc) p.length = 2;  // drop the weights
const topology = quantize(simplified, QUANTIZATION);

// Alpha-2 by ISO numeric id; the few Natural Earth units without an ISO code keep their name only.
for (const g of topology.objects.countries.geometries) {
  const a2 = g.id ? countries.numericToAlpha2(g.id) : undefined;
  g.properties = { name: g.properties.name, ...(a2 ? { a2 } : {}) };
}
topology.metadata = {
  source: `Natural Earth 1:50m admin-0 countries via world-atlas ${atlasVersion} (${SOURCE})`,
  licence: "Natural Earth: public domain; world-atlas: ISC",
  simplify_min_weight_sr: MIN_WEIGHT,
  quantization: QUANTIZATION,
};
const out = new URL("../../app/web/static/basemap.json", import.meta.url);
writeFileSync(out, JSON.stringify(topology));
const kb = Math.round(JSON.stringify(topology).length / 1024);
const points = topology.arcs.reduce((n, a) => n + a.length, 0);
console.log(`${out.pathname}: ${kb} KB, ${topology.arcs.length} arcs, ${points} points, `
  + `${topology.objects.countries.geometries.length} countries`);
