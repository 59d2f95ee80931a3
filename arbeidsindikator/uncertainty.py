"""Uncertainty of every published cell.

For a cell c with N_c person-months, actual mean y_c, expected mean x_c'b and indicator
I_c = y_c - x_c'b (x_c: the cell's mean design row):

- SE(actual)    = sqrt(V_y / N_c)
- SE(expected)  = sqrt(x_c' V_b x_c)                       (delta method, model uncertainty)
- SE(indicator) = sqrt(V_e / N_c + x_c' V_b x_c)           (persons' variation + model)

V_b is the person-clustered covariance of the coefficients. V_y and V_e are the variances of
outcomes and residuals in the cell. Each person appears once in a monthly cell. In a cell
that spans several months, residuals are first summed per person, so repeated months of the
same person are not counted as independent: V/N becomes the CR1 variance of a mean,
G/(G-1) sum_g (E_g - n_g e)^2 / N^2 (it equals statsmodels' cluster-robust SE of a constant).

The covariance between a cell's residuals and the coefficient estimates is left out. That is
negligible for an office or region (a small share of the estimation sample) and conservative
for national cells. `docs/uncertainty.md` explains this.

x_c is needed for every cell. Code sums per cell are accumulated with bincount. They add up
over months, so period cells (years, the last 12 months, ...) reuse the monthly sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow.compute as pc

from .config import ModelSpec
from .indicator import breakdown_sql
from .model import IndicatorModel, _q, arrow_table

Z95 = 1.959963984540054
MASKS = {"short": ("atid3", "jobb3"), "long": ("atid12", "jobb12")}


@dataclass
class Period:
    label: str  # e.g. '2023', 'siste 12 mnd', 'hele perioden', '2023-07--2024-06'
    start: str  # 'YYYY-MM'
    end: str


def _encode(col) -> tuple[np.ndarray, list[str]]:
    d = pc.dictionary_encode(col.combine_chunks() if hasattr(col, "combine_chunks") else col)
    return d.indices.to_numpy(zero_copy_only=False).astype(np.int64), [str(x) for x in d.dictionary.to_pylist()]


def model_variance_cells(con: duckdb.DuckDBPyConnection, model: IndicatorModel, periods: list[Period],
                         analysis: str = "analysis", person_results: str = "person_results") -> pd.DataFrame:
    """x_c' V_b x_c for every cell (month or period x level x unit x breakdown group x outcome),
    in outcome units (jobb in percentage points squared)."""
    spec = model.spec
    lay = model.layout_
    bds = breakdown_sql(spec)
    grp_cols = [f"pr.{_q('grp_' + name)}" for name, _, _ in bds[1:]]
    codes_sql = ", ".join(f"{c.sql} AS __t{i}" for i, c in enumerate(model.codings_))
    obs = {k: f"(pr.actual_{v[0]} IS NOT NULL) AS __obs_{k}" for k, v in MASKS.items() if v[0] in spec.outcomes}
    tbl = arrow_table(con, f"""
        SELECT CAST(year(pr.month) * 12 + month(pr.month) - 1 AS INTEGER) AS __mi, pr.office_id, pr.region_id
               {''.join(', ' + g for g in grp_cols)}, {', '.join(obs.values())}, {codes_sql}
        FROM {analysis} a JOIN {person_results} pr USING (person_id, month)""")
    mi = tbl.column("__mi").to_numpy()
    m0 = int(mi.min())
    month = mi - m0
    n_m = int(month.max()) + 1
    office, office_ids = _encode(tbl.column("office_id"))
    region, region_ids = _encode(tbl.column("region_id"))
    groups = [(_encode(tbl.column(f"grp_{name}"))) for name, _, _ in bds[1:]]
    codes, conts = [], []
    for i, c in enumerate(model.codings_):
        col = tbl.column(f"__t{i}").to_numpy(zero_copy_only=False)
        if c.is_coded:
            codes.append(np.where(np.isnan(col.astype(float)), len(c.levels), col).astype(np.int64))
        else:
            conts.append(np.nan_to_num(col.astype(float)))
    masks = {k: tbl.column(f"__obs_{k}").to_numpy(zero_copy_only=False).astype(bool) for k in obs}
    del tbl
    levels = [(1, np.zeros(len(month), np.int64), ["0000"]), (2, region, region_ids), (3, office, office_ids)]
    out = []
    for level, unit, unit_ids in levels:
        n_u = len(unit_ids)
        for b_idx, (bname, _, _) in enumerate(bds):
            gcode, gnames = (np.zeros(len(month), np.int64), ["Alle"]) if b_idx == 0 else groups[b_idx - 1]
            n_g = len(gnames)
            cell = (month * n_u + unit) * n_g + gcode
            n_cells = n_m * n_u * n_g
            for mkey, outs in MASKS.items():
                if mkey not in masks:
                    continue
                m = masks[mkey]
                sums, count = _design_sums(lay, cell[m], n_cells, [c[m] for c in codes], [x[m] for x in conts])
                sums = sums.reshape(n_m, n_u, n_g, lay.p)
                count = count.reshape(n_m, n_u, n_g)
                for p in [None] + periods:
                    if p is None:
                        s, n = sums, count
                    else:
                        a = max(0, _mi(p.start) - m0)
                        e = min(n_m - 1, _mi(p.end) - m0)
                        if a > e:
                            continue
                        s, n = sums[a:e + 1].sum(0, keepdims=True), count[a:e + 1].sum(0, keepdims=True)
                    idx = np.flatnonzero(n.ravel() > 0)
                    if not len(idx):
                        continue
                    xbar = s.reshape(-1, lay.p)[idx] / n.ravel()[idx, None]
                    t_i, rest = np.divmod(idx, n_u * n_g)
                    u_i, g_i = np.divmod(rest, n_g)
                    for o in outs:
                        if o not in model.results_:
                            continue
                        kept = model.kept_[o]
                        cov = model.results_[o].cov
                        v = cov.get("cluster2", cov["cluster"])
                        xk = xbar[:, kept]
                        q = np.einsum("ij,jk,ik->i", xk, v, xk) * (1e4 if o.startswith("jobb") else 1.0)
                        out.append(pd.DataFrame({
                            "period": ("" if p is None else p.label),
                            "mi": (t_i + m0) if p is None else -1,
                            "ORG_NIVAA": level, "ORG_STED_ID": np.array(unit_ids, dtype=object)[u_i],
                            "NEDBRYTNING": bname, "GRUPPE": np.array(gnames, dtype=object)[g_i],
                            "UTFALL": o, "model_var": q}))
    return pd.concat(out, ignore_index=True)


def _mi(ym: str) -> int:
    return int(ym[:4]) * 12 + int(ym[5:7]) - 1


def _design_sums(lay, cell, n_cells, codes, conts):
    """Sum of the full design row over the rows of each cell: (n_cells x p), and counts."""
    sums = np.zeros((n_cells, lay.p))
    count = np.bincount(cell, minlength=n_cells).astype(float)
    sums[:, 0] = count
    for c, off, size in zip(codes, lay.offsets, lay.sizes):
        sums[:, off:off + size] = np.bincount(cell * size + c, minlength=n_cells * size).reshape(n_cells, size)
    k0 = 1 + sum(lay.sizes)
    for j, x in enumerate(conts):
        sums[:, k0 + j] = np.bincount(cell, weights=x, minlength=n_cells)
    return sums, count


def grouping_sets(spec: ModelSpec, extra: str = "") -> tuple[str, list[tuple[int, str, str, str]]]:
    """GROUPING SETS over level x breakdown; returns the SQL and (level, breakdown, unit col, group col)."""
    sets, meta = [], []
    for level, unit in ((1, None), (2, "region_id"), (3, "office_id")):
        for name, _, _ in breakdown_sql(spec):
            cols = [c for c in (unit, None if name == "Alle" else _q("grp_" + name)) if c]
            sets.append("(" + ", ".join(["__period"] + cols + ([extra] if extra else [])) + ")")
            meta.append((level, name, unit, None if name == "Alle" else _q("grp_" + name)))
    return "GROUPING SETS (" + ", ".join(sets) + ")", meta
