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
import pyarrow as pa
import pyarrow.compute as pc

from .config import ModelSpec
from .indicator import breakdown_sql
from .model import IndicatorModel, _q, reduce_batches, term_arrays

Z95 = 1.959963984540054
MASKS = {"short": ("atid3", "jobb3"), "long": ("atid12", "jobb12")}


@dataclass
class Period:
    label: str  # e.g. '2023', 'siste 12 mnd', 'hele perioden', '2023-07--2024-06'
    start: str  # 'YYYY-MM'
    end: str


def _index_in(col, ids: list[str]) -> np.ndarray:
    """Codes of a string column against a known list of values."""
    return pc.index_in(pc.cast(col, pa.string()), value_set=pa.array(ids, pa.string())).to_numpy(
        zero_copy_only=False).astype(np.int64)


def model_variance_cells(con: duckdb.DuckDBPyConnection, model: IndicatorModel, periods: list[Period],
                         analysis: str = "analysis", person_results: str = "person_results",
                         batch_rows: int = 1_000_000) -> pd.DataFrame:
    """x_c' V_b x_c for every cell (month or period x level x unit x breakdown group x outcome),
    in outcome units (jobb in percentage points squared).

    The person-months are streamed in Arrow batches. Per breakdown and outcome mask, the sums of
    the design rows are accumulated per month x (office, region) x group, the finest unit; the
    region and national cells are sums of those. Memory is the accumulators plus one batch."""
    spec = model.spec
    lay = model.layout_
    bds = breakdown_sql(spec)
    masks = {k: v for k, v in MASKS.items() if v[0] in spec.outcomes}
    m0, m1 = con.execute(f"SELECT min(year(month) * 12 + month(month) - 1), max(year(month) * 12 + month(month) - 1) "
                         f"FROM {person_results}").fetchall()[0]
    n_m = int(m1) - int(m0) + 1
    pairs = con.execute(f"SELECT DISTINCT office_id, region_id FROM {person_results} ORDER BY 1, 2").fetchall()
    pair_key = [f"{o}\x1f{r}" for o, r in pairs]
    n_pair = len(pairs)
    group_ids = [["Alle"]] + [[r[0] for r in con.execute(
        f"SELECT DISTINCT CAST({_q('grp_' + name)} AS STRING) FROM {person_results} ORDER BY 1").fetchall()]
        for name, _, _ in bds[1:]]
    codes_sql = ", ".join(f"{c.sql} AS __t{i}" for i, c in enumerate(model.codings_))
    obs = ", ".join(f"(pr.actual_{v[0]} IS NOT NULL) AS __obs_{k}" for k, v in masks.items())
    grp_sql = "".join(f", CAST(pr.{_q('grp_' + name)} AS STRING) AS {_q('grp_' + name)}" for name, _, _ in bds[1:])
    sql = f"""
        SELECT CAST(year(pr.month) * 12 + month(pr.month) - 1 - {int(m0)} AS INTEGER) AS __m,
               pr.office_id || chr(31) || pr.region_id AS __pair {grp_sql}, {obs}, {codes_sql}
        FROM {analysis} a JOIN {person_results} pr USING (person_id, month)"""
    n_cells = {b: n_m * n_pair * len(group_ids[b]) for b in range(len(bds))}

    def design_sums(batches) -> dict:
        """Per (breakdown, outcome mask): design-row sums and counts per finest cell."""
        acc = {(b, k): {"sums": np.zeros((n_cells[b], lay.p)), "count": np.zeros(n_cells[b])}
               for b in range(len(bds)) for k in masks}
        for batch in batches:
            month = batch.column("__m").to_numpy(zero_copy_only=False).astype(np.int64)
            unit = month * n_pair + _index_in(batch.column("__pair"), pair_key)
            codes, conts = term_arrays(model.codings_, batch)
            groups = [0] + [_index_in(batch.column(f"grp_{name}"), ids) for (name, _, _), ids in zip(bds[1:], group_ids[1:])]
            for k in masks:  # the rows with the outcome observed, selected once for every breakdown
                m = batch.column(f"__obs_{k}").to_numpy(zero_copy_only=False).astype(bool)
                codes_k, conts_k, unit_k = [c[m] for c in codes], [x[m] for x in conts], unit[m]
                for b, g in enumerate(groups):
                    cell = unit_k * len(group_ids[b]) + (g if b == 0 else g[m])
                    _add_design_sums(lay, acc[(b, k)]["sums"], acc[(b, k)]["count"], cell, codes_k, conts_k)
        return acc

    acc = reduce_batches(con, sql, design_sums, batch_rows)  # on Spark: per partition, then added
    # finest unit -> office, region, country
    offices = sorted({o for o, _ in pairs})
    regions = sorted({r for _, r in pairs})
    to_office = np.array([offices.index(o) for o, _ in pairs])
    to_region = np.array([regions.index(r) for _, r in pairs])
    levels = [(1, np.zeros(n_pair, np.int64), ["0000"]), (2, to_region, regions), (3, to_office, offices)]
    out = []
    for (b, k), a in acc.items():
        sums_fine, count_fine = a["sums"], a["count"]
        gnames = group_ids[b]
        n_g = len(gnames)
        sums_fine = sums_fine.reshape(n_m, n_pair, n_g, lay.p)
        count_fine = count_fine.reshape(n_m, n_pair, n_g)
        for level, unit_of_pair, unit_ids in levels:
            agg = np.zeros((len(unit_ids), n_pair))
            agg[unit_of_pair, np.arange(n_pair)] = 1.0
            sums = np.tensordot(agg, sums_fine, axes=([1], [1])).transpose(1, 0, 2, 3)
            count = np.tensordot(agg, count_fine, axes=([1], [1])).transpose(1, 0, 2)
            out += _cell_variances(model, MASKS[k], sums, count, periods, int(m0), level, unit_ids, bds[b][0], gnames)
    return pd.concat(out, ignore_index=True)


def _cell_variances(model, outcomes, sums, count, periods, m0, level, unit_ids, bname, gnames) -> list[pd.DataFrame]:
    """x_c' V x_c for the monthly cells and every period's cells of one level and breakdown."""
    n_m, n_u, n_g, p_ = sums.shape
    out = []
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
        xbar = s.reshape(-1, p_)[idx] / n.ravel()[idx, None]
        t_i, rest = np.divmod(idx, n_u * n_g)
        u_i, g_i = np.divmod(rest, n_g)
        for o in outcomes:
            if o not in model.results_:
                continue
            cov = model.results_[o].cov
            v = cov.get("cluster2", cov["cluster"])
            xk = xbar[:, model.kept_[o]]
            q = np.einsum("ij,jk,ik->i", xk, v, xk) * (1e4 if o.startswith("jobb") else 1.0)
            out.append(pd.DataFrame({
                "period": ("" if p is None else p.label),
                "mi": (t_i + m0) if p is None else -1,
                "ORG_NIVAA": level, "ORG_STED_ID": np.array(unit_ids, dtype=object)[u_i],
                "NEDBRYTNING": bname, "GRUPPE": np.array(gnames, dtype=object)[g_i],
                "UTFALL": o, "model_var": q}))
    return out


def _mi(ym: str) -> int:
    return int(ym[:4]) * 12 + int(ym[5:7]) - 1


def _add_design_sums(lay, sums: np.ndarray, count: np.ndarray, cell, codes, conts) -> None:
    """Add the design rows of one batch to the per-cell sums (n_cells x p) and counts."""
    n_cells = len(count)
    c0 = np.bincount(cell, minlength=n_cells).astype(float)
    count += c0
    sums[:, 0] += c0
    for c, off, size in zip(codes, lay.offsets, lay.sizes):
        sums[:, off:off + size] += np.bincount(cell * size + c, minlength=n_cells * size).reshape(n_cells, size)
    k0 = 1 + sum(lay.sizes)
    for j, x in enumerate(conts):
        sums[:, k0 + j] += np.bincount(cell, weights=x, minlength=n_cells)


def grouping_sets(spec: ModelSpec, extra: str = "") -> tuple[str, list[tuple[int, str, str, str]]]:
    """GROUPING SETS over level x breakdown; returns the SQL and (level, breakdown, unit col, group col)."""
    sets, meta = [], []
    for level, unit in ((1, None), (2, "region_id"), (3, "office_id")):
        for name, _, _ in breakdown_sql(spec):
            cols = [c for c in (unit, None if name == "Alle" else _q("grp_" + name)) if c]
            sets.append("(" + ", ".join(["__period"] + cols + ([extra] if extra else [])) + ")")
            meta.append((level, name, unit, None if name == "Alle" else _q("grp_" + name)))
    return "GROUPING SETS (" + ", ".join(sets) + ")", meta
