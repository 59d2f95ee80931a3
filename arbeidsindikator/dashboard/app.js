// Front end for the dashboard: plain JavaScript, no external libraries or fonts.
const $ = (id) => document.getElementById(id);
let META = null;

async function api(path, params) {
  const q = new URLSearchParams(Object.entries(params || {}).filter(([, v]) => v));
  const r = await fetch(path + "?" + q.toString());
  const body = await r.json();
  if (!r.ok) throw new Error(body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : r.statusText);
  return body;
}

function showError(msg) { const e = $("error"); e.textContent = msg; e.style.display = msg ? "block" : "none"; }

function option(sel, value, label) { const o = document.createElement("option"); o.value = value; o.textContent = label; sel.appendChild(o); }

function fillGroups() {
  const b = $("breakdown").value, sel = $("group");
  sel.replaceChildren();
  for (const g of META.groups[b] || ["Alle"]) option(sel, g, META.group_labels[g] || g);
  const bd = META.breakdowns.find((x) => x.name === b);
  const rule = $("rule");
  if (bd && bd.in_model) {
    rule.textContent = `«${b}» er med i modellen: hver gruppe har gjennomsnitt null over perioden, så nivåene kan ikke sammenlignes mellom gruppene – bare utviklingen over tid.`;
    rule.style.display = "block";
  } else { rule.style.display = "none"; }
}

const NS = "http://www.w3.org/2000/svg";
function el(name, attrs) { const e = document.createElementNS(NS, name); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; }

function draw(data) {
  const svg = $("chart"); svg.replaceChildren();
  const W = 1060, H = 380, L = 50, R = 10, T = 10, B = 30;
  const rows = data.rows.filter((r) => !r.PRIKKET && r.INDIKATOR !== null);
  if (!rows.length) { showError("Ingen publiserte tall for dette valget (alle celler er prikket)."); return; }
  const months = rows.map((r) => r.BEHOLDNINGSMAANED);
  const t = (m) => { const [y, mo] = m.split("-").map(Number); return y * 12 + mo - 1; };
  const t0 = t(months[0]), t1 = t(months[months.length - 1]) || t0 + 1;
  let lo = Math.min(0, ...rows.map((r) => r.INDIKATOR_KI_NEDRE)), hi = Math.max(0, ...rows.map((r) => r.INDIKATOR_KI_OVRE));
  for (const s of Object.values(data.compare)) for (const r of s) if (r.INDIKATOR !== null) { lo = Math.min(lo, r.INDIKATOR); hi = Math.max(hi, r.INDIKATOR); }
  const x = (m) => L + (W - L - R) * (t(m) - t0) / Math.max(1, t1 - t0);
  const y = (v) => T + (H - T - B) * (hi - v) / Math.max(1e-9, hi - lo);
  // axes: zero line, y ticks, year ticks
  svg.appendChild(el("line", { x1: L, x2: W - R, y1: y(0), y2: y(0), stroke: "#999" }));
  for (let i = 0; i <= 4; i++) {
    const v = lo + (hi - lo) * i / 4;
    svg.appendChild(el("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11 })).textContent = v.toFixed(1);
  }
  for (let yr = Math.ceil(t0 / 12); yr * 12 <= t1; yr++) {
    const m = `${yr}-01`;
    svg.appendChild(el("text", { x: x(m), y: H - 8, "text-anchor": "middle", "font-size": 11 })).textContent = yr;
  }
  // confidence band
  const up = rows.map((r) => `${x(r.BEHOLDNINGSMAANED)},${y(r.INDIKATOR_KI_OVRE)}`);
  const down = rows.slice().reverse().map((r) => `${x(r.BEHOLDNINGSMAANED)},${y(r.INDIKATOR_KI_NEDRE)}`);
  svg.appendChild(el("polygon", { id: "ci-band", points: up.concat(down).join(" "), fill: "#1f77b4", opacity: 0.2 }));
  const colours = ["#ff7f0e", "#555"];
  const legend = [[data.unit, "#1f77b4"]];
  svg.appendChild(el("polyline", { id: "line-unit", points: rows.map((r) => `${x(r.BEHOLDNINGSMAANED)},${y(r.INDIKATOR)}`).join(" "),
    fill: "none", stroke: "#1f77b4", "stroke-width": 2 }));
  // the region's and the country's lines on top, so they stay visible where they coincide with the unit
  Object.entries(data.compare).forEach(([name, s], i) => {
    const pts = s.filter((r) => r.INDIKATOR !== null && t(r.BEHOLDNINGSMAANED) >= t0 && t(r.BEHOLDNINGSMAANED) <= t1)
      .map((r) => `${x(r.BEHOLDNINGSMAANED)},${y(r.INDIKATOR)}`).join(" ");
    const attrs = { class: "compare-line", points: pts, fill: "none", stroke: colours[i], "stroke-width": 1.3 };
    if (i) attrs["stroke-dasharray"] = "5,3";
    svg.appendChild(el("polyline", attrs));
    legend.push([name, colours[i]]);
  });
  // the legend and the table are built as DOM nodes with text: no data is ever parsed as HTML
  const items = legend.map(([n, c]) => swatch(n, c));
  items.push(swatch("95 % konfidensintervall", "#1f77b4", true));
  $("legend").replaceChildren(...items);
  const last = data.rows.slice(-12);
  const head = tr(["Måned", "Personer", "Faktisk", "Forventet", "Indikator", "95 % KI", "Krympet"], "th");
  const body = last.map((r) => r.PRIKKET ? tr([r.BEHOLDNINGSMAANED, "", "prikket"]) : tr([
    r.BEHOLDNINGSMAANED, r.ANTALL_PERSONER, r.faktisk.toFixed(2), r.forventet.toFixed(2), r.INDIKATOR.toFixed(2),
    `${r.INDIKATOR_KI_NEDRE.toFixed(2)} – ${r.INDIKATOR_KI_OVRE.toFixed(2)}`,
    r.INDIKATOR_KRYMPET === null ? "" : r.INDIKATOR_KRYMPET.toFixed(2)]));
  $("table").replaceChildren(head, ...body);
}

function swatch(name, colour, band) {
  const s = document.createElement("span"), i = document.createElement("i");
  i.className = band ? "sw band" : "sw";
  i.style.background = colour;
  s.append(i, document.createTextNode(name));
  return s;
}

function tr(cells, tag) {
  const row = document.createElement("tr");
  for (const c of cells) { const td = document.createElement(tag || "td"); td.textContent = c === null || c === undefined ? "" : String(c); row.appendChild(td); }
  return row;
}

async function refresh() {
  showError("");
  try {
    const data = await api("/api/series", { unit: $("unit").value, outcome: $("outcome").value, breakdown: $("breakdown").value,
      group: $("group").value, from: $("from").value, to: $("to").value });
    draw(data);
    document.body.dataset.loaded = "1";
  } catch (e) { showError("Feil: " + e.message); }
}

async function init() {
  try {
    META = await api("/api/meta");
    const units = await api("/api/units");
    const levelName = { 1: "Land", 2: "Regioner", 3: "Kontor" };
    for (const lvl of [1, 2, 3]) {
      const g = document.createElement("optgroup"); g.label = levelName[lvl];
      for (const u of units.filter((u) => u.level === lvl)) option(g, u.id, u.name);
      $("unit").appendChild(g);
    }
    for (const o of META.outcomes) option($("outcome"), o.id, o.label);
    for (const b of META.breakdowns) option($("breakdown"), b.name, b.name + (b.in_model ? " (i modellen)" : ""));
    $("breakdown").value = "Alle";
    fillGroups();
    for (const id of ["unit", "outcome", "group", "from", "to"]) $(id).addEventListener("change", refresh);
    $("breakdown").addEventListener("change", () => { fillGroups(); refresh(); });
    await refresh();
  } catch (e) { showError("Feil: " + e.message); }
}
init();
