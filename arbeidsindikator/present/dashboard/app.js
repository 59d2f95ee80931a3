// The dashboard's front end: plain JavaScript, no libraries, nothing loaded from elsewhere.
// Data goes into the page as text and SVG attributes only (never parsed as HTML), so a name in
// the published tables cannot run as script; the server's Content-Security-Policy allows no
// inline code. Numbers in Norwegian format (Intl, nb-NO).
"use strict";
const $ = (id) => document.getElementById(id);
const NS = "http://www.w3.org/2000/svg";
// distinct hues (the fifth was a second orange beside the second: situasjonsbestemt and sykmeldt)
const COLOURS = ["#1f5f8b", "#d9822b", "#4b8b3b", "#8b3b7a", "#9aa01f", "#5b6f7b", "#c0392b", "#2c8c99"];
const UNIT = "#1f5f8b", REGION = "#d9822b", COUNTRY = "#555555", MARK = "#c0392b";
const MONTHS = ["jan.", "feb.", "mars", "apr.", "mai", "juni", "juli", "aug.", "sep.", "okt.", "nov.", "des."];
let META = null, UNITS = [], GEN = 0;  // GEN: the view being drawn; an older one stops adding to the page

const fmt = (d) => new Intl.NumberFormat("nb-NO", { minimumFractionDigits: d, maximumFractionDigits: d });
function num(v, d = 1, sign = false) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  let s = fmt(d).format(v);
  if (/^[\u2212-]0(,0+)?$/.test(s)) s = s.slice(1);  // a value that rounds to zero has no sign
  return sign && v > 0 && /[1-9]/.test(s) ? "+" + s : s;
}
const monthIndex = (m) => { const [y, mo] = m.split("-").map(Number); return y * 12 + mo - 1; };
const monthName = (m) => { const [y, mo] = m.split("-").map(Number); return `${MONTHS[mo - 1]} ${y}`; };

async function api(path, params) {
  const q = new URLSearchParams(Object.entries(params || {}).filter(([, v]) => v !== "" && v !== null && v !== undefined));
  const r = await fetch(path + "?" + q.toString(), { credentials: "same-origin" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const err = new Error(typeof body.detail === "string" ? body.detail : `Feil ${r.status}`);
    err.status = r.status;
    throw err;
  }
  return body;
}

function showError(msg) { const e = $("error"); e.textContent = msg; e.style.display = msg ? "block" : "none"; }
function show(id, text) { const e = $(id); e.textContent = text || ""; e.style.display = text ? "block" : "none"; }
function option(sel, value, label) { const o = document.createElement("option"); o.value = value; o.textContent = label; sel.appendChild(o); return o; }
function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// -- chart helpers ----------------------------------------------------------------------------
function niceStep(span, n) {
  const raw = span / Math.max(1, n), p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}
function yScale(lo, hi, height, top, ticks = 5) {
  lo = Math.min(lo, 0); hi = Math.max(hi, 0);
  if (hi - lo < 1e-9) { hi += 1; lo -= 1; }
  const step = niceStep(hi - lo, ticks);
  lo = Math.floor(lo / step) * step; hi = Math.ceil(hi / step) * step;
  const y = (v) => top + height * (hi - v) / (hi - lo);
  const values = [];
  for (let v = lo; v <= hi + step / 2; v += step) values.push(Math.abs(v) < step / 1e6 ? 0 : v);
  return { y, values, decimals: step >= 1 ? 0 : step >= 0.1 ? 1 : 2 };
}
// chart text in px; on a phone a chart may end up a little narrower than it was drawn for (the
// page settles after drawing), so its text starts larger there to stay at least 11 px
let FS = 11;
function frame(svg, height) {
  svg.replaceChildren();
  const W = Math.max(300, Math.round(svg.parentElement.clientWidth - 4));
  FS = W < 500 ? 12.5 : 11;
  const H = height || (W < 500 ? 240 : 300);
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("width", W); svg.setAttribute("height", H);
  return { W, H, L: W < 500 ? 42 : 54, R: 12, T: 10, B: 26 };
}
function yAxis(svg, f, sc, unit) {
  for (const v of sc.values) {
    svg.appendChild(el("line", { x1: f.L, x2: f.W - f.R, y1: sc.y(v), y2: sc.y(v), stroke: v === 0 ? "#888" : "#eee" }));
    svg.appendChild(el("text", { x: f.L - 5, y: sc.y(v) + 4, "text-anchor": "end", "font-size": FS }, num(v, sc.decimals)));
  }
  svg.appendChild(el("text", { x: 12, y: f.T + (f.H - f.T - f.B) / 2, "font-size": FS, "text-anchor": "middle",
    transform: `rotate(-90 12 ${f.T + (f.H - f.T - f.B) / 2})` }, unit));
}
function legend(id, items) {
  const box = $(id);
  box.replaceChildren(...items.map(([name, colour, kind]) => {
    const s = document.createElement("span"), i = document.createElement("i");
    i.className = "sw" + (kind ? " " + kind : "");
    i.style.background = colour; i.style.color = colour;
    s.append(i, document.createTextNode(name));
    return s;
  }));
}
// lines over months with a band; a missing value breaks the line (suppressed months are gaps)
// (opts.range: [lo, hi] shared by small multiples, so their levels can be read across them)
const valuesOf = (series) => series.flatMap((s) => s.data.flatMap((p) => [p.y, p.lo, p.hi])).filter((v) => v !== null && v !== undefined);
function timeChart(svg, series, unit, opts = {}) {
  const f = frame(svg, opts.height);
  const all = series.flatMap((s) => s.data);
  if (!all.length) return;
  const t0 = Math.min(...all.map((p) => p.t)), t1 = Math.max(...all.map((p) => p.t));
  const vals = opts.range || valuesOf(series);
  const sc = yScale(Math.min(...vals), Math.max(...vals), f.H - f.T - f.B, f.T, opts.height && opts.height < 220 ? 3 : 5);
  const x = (t) => f.L + (f.W - f.L - f.R) * (t - t0) / Math.max(1, t1 - t0);
  yAxis(svg, f, sc, unit);
  const every = Math.max(1, Math.ceil(FS * 3.2 / ((f.W - f.L - f.R) * 12 / Math.max(12, t1 - t0))));  // years whose labels fit
  for (let yr = Math.ceil(t0 / 12); yr * 12 <= t1; yr++) {
    if ((yr - Math.ceil(t0 / 12)) % every) continue;
    // each year named just right of its first month (the year runs to the right), so the first
    // label stays clear of the y axis' numbers; one with no room before the edge is left out
    if (x(yr * 12) + 2 + FS * 2.4 <= f.W) svg.appendChild(el("text", { x: x(yr * 12) + 2, y: f.H - 8, "font-size": FS }, String(yr)));
    svg.appendChild(el("line", { x1: x(yr * 12), x2: x(yr * 12), y1: f.H - f.B, y2: f.H - f.B + 4, stroke: "#888" }));
  }
  for (const s of series) {
    const runs = [];
    let cur = [];
    const sorted = s.data.slice().sort((a, b) => a.t - b.t);
    sorted.forEach((p, i) => {
      const gap = i && p.t - sorted[i - 1].t > 1;
      if (p.y === null || p.y === undefined || gap) { if (cur.length) runs.push(cur); cur = []; }
      if (p.y !== null && p.y !== undefined) cur.push(p);
    });
    if (cur.length) runs.push(cur);
    for (const r of runs) {
      if (s.band && r.every((p) => p.lo !== null && p.lo !== undefined)) {
        const up = r.map((p) => `${x(p.t)},${sc.y(p.hi)}`), down = r.slice().reverse().map((p) => `${x(p.t)},${sc.y(p.lo)}`);
        svg.appendChild(el("polygon", { class: "ci-band", points: up.concat(down).join(" "), fill: s.colour, opacity: 0.18 }));
      }
      const attrs = { class: s.cls || "line", points: r.map((p) => `${x(p.t)},${sc.y(p.y)}`).join(" "), fill: "none",
        stroke: s.colour, "stroke-width": s.width || 1.8 };
      if (s.dash) attrs["stroke-dasharray"] = "5,3";
      svg.appendChild(el(r.length > 1 ? "polyline" : "circle", r.length > 1 ? attrs :
        { cx: x(r[0].t), cy: sc.y(r[0].y), r: 2.5, fill: s.colour, class: s.cls || "line" }));
    }
  }
  if (opts.zeroLabel) svg.appendChild(el("text", { x: f.W - f.R, y: sc.y(0) - 4, "text-anchor": "end", "font-size": FS, fill: "#666" }, opts.zeroLabel));
}
// categories (years, groups) with points and 95% intervals; several series side by side
function categoryChart(svg, cats, series, unit, opts = {}) {
  const f = frame(svg, opts.height);
  const vals = valuesOf(series);
  if (!vals.length) return;
  const sc = yScale(Math.min(...vals), Math.max(...vals), f.H - f.T - f.B, f.T);
  yAxis(svg, f, sc, unit);
  const band = (f.W - f.L - f.R) / cats.length;
  cats.forEach((c, i) => {
    const cx = f.L + band * (i + 0.5);
    svg.appendChild(el("text", { x: cx, y: f.H - 8, "text-anchor": "middle", "font-size": FS }, c.label));
    series.forEach((s, j) => {
      const p = s.data.find((d) => d.key === c.key);
      if (!p || p.y === null || p.y === undefined) return;
      const px = cx + (j - (series.length - 1) / 2) * Math.min(14, band / (series.length + 1));
      if (p.lo !== null && p.lo !== undefined) svg.appendChild(el("line", { x1: px, x2: px, y1: sc.y(p.lo), y2: sc.y(p.hi), stroke: s.colour, "stroke-width": 2, opacity: 0.6 }));
      svg.appendChild(el("circle", { class: "point", cx: px, cy: sc.y(p.y), r: 4, fill: s.colour }));
    });
  });
}
// the same as rows, for long names on a narrow screen: each category's name on its own line above
// its point and interval, the values along a horizontal axis (no rotated names to clip)
function rowChart(svg, cats, series, unit) {
  const vals = valuesOf(series);
  if (!vals.length) return;
  const row = 2 * FS + 18, top = 6;
  const f = frame(svg, top + row * cats.length + 2 * FS + 16);
  f.L = 8;
  const x0 = f.L, x1 = f.W - f.R, axisY = top + row * cats.length;
  const sc = yScale(Math.min(...vals), Math.max(...vals), x1 - x0, 0, 4);
  const x = (v) => x0 + x1 - sc.y(v);  // yScale runs downwards; the axis runs to the right
  for (const v of sc.values) {
    svg.appendChild(el("line", { x1: x(v), x2: x(v), y1: top, y2: axisY, stroke: v === 0 ? "#888" : "#eee" }));
    svg.appendChild(el("text", { x: x(v), y: axisY + FS + 2, "text-anchor": "middle", "font-size": FS }, num(v, sc.decimals)));
  }
  svg.appendChild(el("text", { x: (x0 + x1) / 2, y: axisY + 2 * FS + 10, "text-anchor": "middle", "font-size": FS }, unit));
  cats.forEach((c, i) => {
    const y = top + row * i;
    svg.appendChild(el("text", { x: x0, y: y + FS, "font-size": FS }, c.label));
    series.forEach((s, j) => {
      const p = s.data.find((d) => d.key === c.key);
      if (!p || p.y === null || p.y === undefined) return;
      const py = y + FS + 10 + j * 6;
      if (p.lo !== null && p.lo !== undefined) svg.appendChild(el("line", { x1: x(p.lo), x2: x(p.hi), y1: py, y2: py, stroke: s.colour, "stroke-width": 2, opacity: 0.6 }));
      svg.appendChild(el("circle", { class: "point", cx: x(p.y), cy: py, r: 4, fill: s.colour }));
    });
  });
}
// the funnel: units against their number of persons (log scale), control limits, the unit marked
function funnelChart(svg, rows, markId, unit) {
  const f = frame(svg, 320);
  f.B = 40;
  if (!rows.length) return;
  const n = rows.map((r) => r.ANTALL_PERSONER), lo = Math.min(...n) / 1.5, hi = Math.max(...n) * 1.3;
  const target = rows[0].MAL, tau2 = rows[0].MELLOMVARIANS || 0;
  const w = n.reduce((a, b) => a + b, 0);
  const sigma2 = rows.reduce((a, r) => a + r.INDIKATOR_SE * r.INDIKATOR_SE * r.ANTALL_PERSONER * r.ANTALL_PERSONER, 0) / w;
  const grid = Array.from({ length: 40 }, (_, i) => lo * Math.pow(hi / lo, i / 39));
  const lim = (z, k) => target + z * Math.sqrt(sigma2 / k + tau2);
  const vals = rows.map((r) => r.INDIKATOR).concat(grid.map((k) => lim(3.09, k)), grid.map((k) => lim(-3.09, k)));
  const sc = yScale(Math.min(...vals), Math.max(...vals), f.H - f.T - f.B, f.T);
  const x = (k) => f.L + (f.W - f.L - f.R) * Math.log(k / lo) / Math.log(hi / lo);
  yAxis(svg, f, sc, unit);
  for (const k of [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1e6, 2e6, 5e6]) {
    if (k < lo || k > hi) continue;
    svg.appendChild(el("text", { x: x(k), y: f.H - f.B + 14, "text-anchor": "middle", "font-size": FS }, num(k, 0)));
  }
  svg.appendChild(el("text", { x: (f.L + f.W) / 2, y: f.H - 6, "text-anchor": "middle", "font-size": FS }, "personer i perioden (logaritmisk skala)"));
  for (const [z, dash] of [[1.96, "5,3"], [3.09, "2,3"]]) for (const s of [1, -1]) {
    svg.appendChild(el("polyline", { points: grid.map((k) => `${x(k)},${sc.y(lim(s * z, k))}`).join(" "), fill: "none", stroke: "#777", "stroke-dasharray": dash }));
  }
  for (const r of rows) {
    const mine = r.ORG_STED_ID === markId;
    const c = svg.appendChild(el("circle", { class: mine ? "point mark" : "point", cx: x(r.ANTALL_PERSONER), cy: sc.y(r.INDIKATOR), r: mine ? 6 : 4, fill: mine ? MARK : UNIT }));
    c.appendChild(el("title", {}, `${r.ORG_STED}: ${num(r.INDIKATOR, 2, true)} (${num(r.ANTALL_PERSONER, 0)} personer)`));  // every point named on hover
  }
  // names where they fit: the marked unit first, then the units farthest from the target; a name
  // that would cover another is left out (the table and the hover title still name every point)
  const placed = [];
  const order = [...rows].sort((a, b) => (b.ORG_STED_ID === markId) - (a.ORG_STED_ID === markId)
    || Math.abs(b.INDIKATOR - target) - Math.abs(a.INDIKATOR - target));
  for (const r of order) {
    const mine = r.ORG_STED_ID === markId, name = r.ORG_STED.replace(/^Nav /, "");
    const px = x(r.ANTALL_PERSONER), py = sc.y(r.INDIKATOR);
    const t = svg.appendChild(el("text", { class: "point-label", x: px + 6, y: py - 5, "font-size": FS, fill: mine ? MARK : "#333" }, name));
    let b = t.getBBox();  // measured as drawn
    if (b.x + b.width > f.W - f.R) { t.setAttribute("x", px - 6 - b.width); b = t.getBBox(); }  // near the right edge: to the left
    const box = { x0: b.x, x1: b.x + b.width, y0: b.y, y1: b.y + b.height };
    if (placed.some((q) => q.x0 < box.x1 && box.x0 < q.x1 && q.y0 < box.y1 && box.y0 < q.y1)) { t.remove(); continue; }
    placed.push(box);
  }
}

// -- the views --------------------------------------------------------------------------------
// a month field the user has not set shows the default in use (data-auto) and is not sent
const chosen = (id) => ($(id).dataset.auto === "1" ? "" : $(id).value);
const state = () => ({ unit: $("unit").value, outcome: $("outcome").value, breakdown: $("breakdown").value,
  group: $("group").value, from: chosen("from"), to: chosen("to"), reference: chosen("reference") });
function setAuto(id, value) { $(id).value = value; $(id).dataset.auto = "1"; }
const outcomeMeta = (o) => META.outcomes.find((x) => x.id === o);
const unitRow = (id) => UNITS.find((u) => u.id === id);
const label = (g) => META.group_labels[g] || g;

function fillGroups() {
  const b = $("breakdown").value, sel = $("group");
  sel.replaceChildren();
  for (const g of META.groups[b] || ["Alle"]) option(sel, g, label(g));
  const bd = META.breakdowns.find((x) => x.name === b);
  show("rule", bd && bd.in_model ? `«${bd.label}» er med i modellen: hver gruppe har gjennomsnitt null over perioden, så nivåene kan ikke sammenlignes mellom gruppene – bare utviklingen over tid (endringsindeksen).` : "");
}

function clearAll() {
  for (const id of ["chart-month", "chart-year", "chart-groups", "chart-index", "chart-funnel", "table-month",
    "legend-month", "legend-year", "legend-groups", "multiples-groups"]) $(id).replaceChildren();
}

async function drawMonth(s, om, seriesP) {
  const data = await seriesP;
  const pts = (rows) => rows.map((r) => ({ t: monthIndex(r.BEHOLDNINGSMAANED), y: r.PRIKKET ? null : r.INDIKATOR,
    lo: r.PRIKKET ? null : r.INDIKATOR_KI_NEDRE, hi: r.PRIKKET ? null : r.INDIKATOR_KI_OVRE }));
  const series = [{ label: data.unit, colour: UNIT, band: true, data: pts(data.rows), cls: "line-unit", width: 2 }];
  const items = [[data.unit, UNIT, ""], ["95 % konfidensintervall", UNIT, "band"]];
  const [t0, t1] = [Math.min(...series[0].data.map((p) => p.t)), Math.max(...series[0].data.map((p) => p.t))];
  Object.entries(data.compare).forEach(([name, rows]) => {
    const colour = name === "Norge" ? COUNTRY : REGION;  // the same colour means the same kind of unit in every view
    series.push({ label: name, colour, dash: name === "Norge", cls: "compare-line", width: 1.3,
      data: rows.map((r) => ({ t: monthIndex(r.BEHOLDNINGSMAANED), y: r.INDIKATOR })).filter((p) => p.t >= t0 && p.t <= t1) });
    items.push([name, colour, name === "Norge" ? "dash" : ""]);
  });
  timeChart($("chart-month"), series, om.indicator_unit);
  legend("legend-month", items);
  $("h-month").textContent = `Indikatoren per måned: ${om.label.toLowerCase()} (${om.indicator_unit})`;
  const head = ["Måned", "Personer", `Faktisk (${om.level_unit})`, "Forventet", `Indikator (${om.indicator_unit})`, "95 % KI", "Krympet¹"];
  const provisional = (r) => (r.ENDELIG === false ? " (foreløpig)" : "");
  const rows = data.rows.slice(-12).reverse().map((r) => r.PRIKKET ? [monthName(r.BEHOLDNINGSMAANED), "", "", "", "prikket", "", ""] : [
    monthName(r.BEHOLDNINGSMAANED) + provisional(r), num(r.ANTALL_PERSONER, 0), num(r.faktisk, 1), num(r.forventet, 1), num(r.INDIKATOR, 2, true),
    `${num(r.INDIKATOR_KI_NEDRE, 2)} til ${num(r.INDIKATOR_KI_OVRE, 2)}`, num(r.INDIKATOR_KRYMPET, 2, true)]);
  table("table-month", head, rows, "¹ Krympet: kontorets indikator trukket mot gjennomsnittet av kontorene (empirisk Bayes), mer jo mer usikker den er.");
}

function table(id, head, rows, foot) {
  const t = $(id), tr = (cells, tag) => { const r = document.createElement("tr"); for (const c of cells) { const d = document.createElement(tag || "td"); d.textContent = c; r.appendChild(d); } return r; };
  const parts = [tr(head, "th"), ...rows.map((r) => tr(r))];
  if (foot) { const cap = document.createElement("caption"); cap.textContent = foot; cap.style.captionSide = "bottom"; cap.className = "explain"; parts.unshift(cap); }
  t.replaceChildren(...parts);
}

async function drawYears(s, om) {
  const data = await api("/api/years", { unit: s.unit, outcome: s.outcome, breakdown: s.breakdown, group: s.group });
  const years = [...new Set(Object.values(data.series).flatMap((rows) => rows.map((r) => r.PERIODE)))].sort();
  const names = Object.keys(data.series);
  const colourOf = (name, i) => (i === 0 ? UNIT : name === "Norge" ? COUNTRY : REGION);
  const series = names.map((name, i) => ({ colour: colourOf(name, i), data: data.series[name].map((r) => ({
    key: r.PERIODE, y: r.PRIKKET ? null : r.INDIKATOR, lo: r.INDIKATOR_KI_NEDRE, hi: r.INDIKATOR_KI_OVRE })) }));
  categoryChart($("chart-year"), years.map((y) => ({ key: y, label: y })), series, om.indicator_unit);
  legend("legend-year", names.map((n, i) => [n, colourOf(n, i), ""]));
}

async function drawGroups(s, om) {
  const bd = META.breakdowns.find((x) => x.name === s.breakdown);
  const u = unitRow(s.unit);
  $("s-groups").hidden = !bd || bd.name === "Alle";  // nothing to set side by side
  if (!bd || bd.name === "Alle") return;
  const year = lastFullYear(u);
  if (!bd.in_model) {
    const rows = await api("/api/groups_period", { unit: s.unit, outcome: s.outcome, breakdown: s.breakdown, period: year });
    $("h-groups").textContent = `${bd.label}: gruppene side om side (${year})`;
    $("groups-explain").textContent = `${bd.label} er ikke med i modellen, så nivåene kan sammenlignes mellom gruppene. Punktene er indikatoren for ${year} med 95 % konfidensintervall.`;
    const cats = rows.map((r) => ({ key: r.GRUPPE, label: label(r.GRUPPE) }));
    const series = [{ colour: UNIT, data: rows.map((r) => ({ key: r.GRUPPE, y: r.PRIKKET ? null : r.INDIKATOR, lo: r.INDIKATOR_KI_NEDRE, hi: r.INDIKATOR_KI_OVRE })) }];
    $("chart-groups").style.display = "";
    if ($("chart-groups").parentElement.clientWidth < 700) rowChart($("chart-groups"), cats, series, om.indicator_unit);
    else categoryChart($("chart-groups"), cats, series, om.indicator_unit, { height: 320 });
    legend("legend-groups", [[`Indikator ${year}`, UNIT, ""]]);
  } else {
    const ref = s.reference || defaultReference(u);
    $("h-groups").textContent = `${bd.label}: utviklingen fra ${monthName(ref)}`;
    $("groups-explain").textContent = `${bd.label} er med i modellen, så bare utviklingen kan sammenlignes: endringsindeks i prosent fra ${monthName(ref)}. Hvert lite diagram viser én gruppe med 95 % konfidensintervall, og de andre gruppene i grått, på samme skala.`;
    const series = [], missing = [];
    for (const g of META.groups[s.breakdown] || []) {
      try {
        const idx = await api("/api/index", { unit: s.unit, outcome: s.outcome, breakdown: s.breakdown, group: g, reference: ref });
        series.push({ group: g, difference: idx.length > 0 && idx[0].ENDRING_ENHET === "differanse",
                      data: idx.map((r) => ({ t: monthIndex(r.BEHOLDNINGSMAANED), y: r.ENDRINGSINDEKS, lo: r.ENDRINGSINDEKS_KI_NEDRE, hi: r.ENDRINGSINDEKS_KI_OVRE })) });
      } catch (e) { missing.push(label(g)); }  // no published value in the reference month
    }
    if (s.gen !== GEN) return;  // a newer view has started drawing (a change, or the window resized)
    if (missing.length) $("groups-explain").textContent += ` Uten publisert verdi i referansemåneden: ${missing.join(", ").replace(/\.?$/, ".")}`;  // "mv." ends the sentence too
    $("chart-groups").style.display = "none";  // the small multiples instead
    const differences = series.some((x) => x.difference);
    if (differences) $("groups-explain").textContent += ` For grupper der nivået er nær null, er endringen en differanse (${om.indicator_unit}), ikke prosent.`;
    groupMultiples(series, differences ? "endring" : "endring i prosent");
    legend("legend-groups", [["gruppen", UNIT, ""], ["95 % konfidensintervall", UNIT, "band"]].concat(
      series.length > 1 ? [["de andre gruppene", "#c8c8c8", ""]] : []));
  }
}

// one small chart per group on a shared scale: the group with its interval, the others in grey
// behind it (ten lines in one chart are a tangle; this reads on a phone too)
function groupMultiples(series, unit) {
  const box = $("multiples-groups"), range = valuesOf(series);
  for (const s of series) {
    const cell = document.createElement("div"), h = document.createElement("h3"), svg = document.createElementNS(NS, "svg");
    h.textContent = label(s.group);
    svg.setAttribute("class", "chart small-multiple");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", `Endringsindeks for ${label(s.group)}`);
    cell.append(h, svg);
    box.appendChild(cell);
    const others = series.filter((o) => o !== s).map((o) => ({ colour: "#c8c8c8", width: 1, cls: "other-line", data: o.data.map((p) => ({ t: p.t, y: p.y })) }));
    timeChart(svg, [...others, { colour: UNIT, band: true, width: 2, cls: "line-unit", data: s.data }], unit, { range, height: 190 });
  }
}

const INDEX_EXPLAIN = "Utviklingen fra referansemåneden (der indeksen er null), i prosent, med 95 % konfidensintervall. Kan brukes for alle grupper, også dem som er med i modellen.";
async function drawIndex(s, om, seriesP) {
  const u = unitRow(s.unit);
  let ref = s.reference;
  if (!ref) {  // a year before the unit's last month, or the nearest earlier month with a published value
    const shown = (await seriesP).rows.filter((r) => !r.PRIKKET).map((r) => r.BEHOLDNINGSMAANED);
    const target = defaultReference(u);
    const before = shown.filter((m) => m <= target);
    ref = before.length ? before[before.length - 1] : shown[0];
    if (!ref) throw new Error("Ingen publiserte måneder for dette valget: alle er prikket.");
    setAuto("reference", ref.slice(0, 7));
  }
  $("h-index").textContent = `Endringsindeks fra ${monthName(ref)}: ${om.label.toLowerCase()}`;
  const idx = await api("/api/index", { unit: s.unit, outcome: s.outcome, breakdown: s.breakdown, group: s.group, reference: ref });
  const difference = idx.length > 0 && idx[0].ENDRING_ENHET === "differanse";
  timeChart($("chart-index"), [{ colour: COLOURS[2], band: true, width: 2, data: idx.map((r) => ({ t: monthIndex(r.BEHOLDNINGSMAANED),
    y: r.ENDRINGSINDEKS, lo: r.ENDRINGSINDEKS_KI_NEDRE, hi: r.ENDRINGSINDEKS_KI_OVRE })) }],
    difference ? `endring (${om.indicator_unit})` : "endring i prosent");
  $("index-explain").textContent = INDEX_EXPLAIN + (difference ? ` Nivået i ${monthName(ref)} er for nær null for prosent, så endringen vises som differanse i ${om.indicator_unit}.` : "");
}

async function drawFunnel(s, om) {
  const u = unitRow(s.unit), year = lastFullYear(u);
  const params = { outcome: s.outcome, period: year, level: u.level === 1 ? 2 : 3 };
  if (u.level > 1 && u.id !== "NOE" && u.id !== "4154") params.region = u.level === 3 ? u.region : u.id;
  if (u.id === "NOE" || u.id === "4154") {
    $("funnel-explain").textContent = "Nasjonal oppfølgingsenhet følger bare standardbrukere i hele landet og stilles ikke ved siden av kontorene.";
    return;
  }
  const rows = await api("/api/funnel", params);
  $("h-funnel").textContent = `Traktplott: ${u.level === 1 ? "regionene" : "kontorene i regionen"} (${year})`;
  $("funnel-explain").textContent = "Hvert punkt er en enhet, plassert etter antall personer. Stiplede linjer er 95 %-grenser, prikkede 99,8 %. En enhet utenfor grensene skiller seg ut mer enn tilfeldig variasjon tilsier. Plottet rangerer ikke enhetene." + (u.level === 3 ? ` ${u.name} er rød.` : "");  // a region's funnel shows its offices, not the region
  funnelChart($("chart-funnel"), rows, u.id, om.indicator_unit);
}

function lastFullYear(u) {
  const last = Math.min(monthIndex(u.last), monthIndex(META.months[1])), first = monthIndex(u.first);
  const years = META.periods.filter((p) => /^\d{4}$/.test(p) && Number(p) * 12 >= first && Number(p) * 12 + 11 <= last);
  return years.length ? years[years.length - 1] : META.periods.filter((p) => /^\d{4}$/.test(p)).pop();
}
function defaultReference(u) {
  const last = Math.min(monthIndex(u.last), monthIndex(META.months[1])) - 12 - 3, t = Math.max(last, monthIndex(u.first));
  return `${Math.floor(t / 12)}-${String(t % 12 + 1).padStart(2, "0")}`;
}

function noteFor(u) {
  if (u && u.closed) return `${u.name} ble lagt ned etter ${monthName(u.last)}` + (u.successor ? `; brukerne ble overført til ${u.successor}.` : ".");
  if (u && (u.id === "NOE" || u.id === "4154")) return "Nasjonal oppfølgingsenhet (fra september 2022) følger standardbrukere mellom 30 og 59 år i hele landet.";
  return "";
}

async function refresh() {
  showError("");
  clearAll();
  const s = { ...state(), gen: ++GEN }, om = outcomeMeta(s.outcome), u = unitRow(s.unit);
  // the view is in the address, so a leader can send a link to it
  const q = new URLSearchParams(Object.entries(state()).filter(([k, v]) => v && !(k === "group" && v === "Alle")));
  history.replaceState(null, "", location.pathname + "?" + q.toString());
  show("unit-note", noteFor(u));
  $("report-link").href = "rapport?" + new URLSearchParams({ unit: s.unit }).toString();
  $("report-link").textContent = `Rapport for ${u.name}`;
  const seriesP = api("/api/series", { unit: s.unit, outcome: s.outcome, breakdown: s.breakdown, group: s.group, from: s.from, to: s.to });
  seriesP.catch(() => {});
  const jobs = [drawMonth(s, om, seriesP), drawYears(s, om), drawGroups(s, om), drawIndex(s, om, seriesP), drawFunnel(s, om)];
  const results = await Promise.allSettled(jobs);
  const failed = results.filter((r) => r.status === "rejected");
  if (failed.length && failed.length === results.length) { clearAll(); showError("Feil: " + failed[0].reason.message); }
  else if (failed.length) showError(failed.map((f) => f.reason.message).filter((m, i, a) => a.indexOf(m) === i).join(" "));
  document.body.dataset.loaded = "1";
}

async function init() {
  try {
    META = await api("/api/meta");
    $("release").textContent = META.release_text || "";
    UNITS = await api("/api/units");
    const levelName = { 1: "Land", 2: "Regioner", 3: "Kontor" };
    for (const lvl of [1, 2, 3]) {
      const g = document.createElement("optgroup"); g.label = levelName[lvl];
      for (const u of UNITS.filter((x) => x.level === lvl)) option(g, u.id, u.closed ? `${u.name} (nedlagt${u.successor ? ", nå " + u.successor : ""})` : u.name);
      $("unit").appendChild(g);
    }
    for (const o of META.outcomes) option($("outcome"), o.id, o.label);
    for (const b of META.breakdowns) option($("breakdown"), b.name, b.label + (b.in_model ? " (i modellen)" : ""));
    $("breakdown").value = "Alle";
    for (const id of ["from", "to", "reference"]) { $(id).min = META.months[0]; $(id).max = META.months[1]; }
    setAuto("from", META.months[0]); setAuto("to", META.months[1]);
    // a link to a view: its choices from the address, where they are valid
    const asked = new URLSearchParams(location.search);
    const pick = (id, v) => { if (v && [...$(id).options].some((o) => o.value === v)) $(id).value = v; };
    pick("unit", asked.get("unit")); pick("outcome", asked.get("outcome")); pick("breakdown", asked.get("breakdown"));
    fillGroups();
    pick("group", asked.get("group"));
    for (const id of ["from", "to", "reference"]) {
      const v = asked.get(id);
      if (v && /^\d{4}-\d{2}$/.test(v)) { $(id).value = v; $(id).dataset.auto = "0"; }
      $(id).addEventListener("change", () => { $(id).dataset.auto = $(id).value ? "0" : "1"; });
    }
    for (const id of ["unit", "outcome", "group", "from", "to", "reference"]) $(id).addEventListener("change", refresh);
    $("breakdown").addEventListener("change", () => { fillGroups(); refresh(); });
    let timer = null;
    window.addEventListener("resize", () => { clearTimeout(timer); timer = setTimeout(refresh, 250); });
    await refresh();
  } catch (e) { showError("Feil: " + e.message); document.body.dataset.loaded = "1"; }
}
init();
