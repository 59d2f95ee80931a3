"""Uncertainty of every published cell.

For a cell c with N_c person-months, actual mean y_c, expected mean x_c'b and indicator
I_c = y_c - x_c'b (x_c: the cell's mean design row):

- SE(actual)    = sqrt(V_y / N_c)
- SE(expected)  = sqrt(x_c' V_b x_c)            (delta method: the expected level's uncertainty)
- SE(indicator) = sqrt(V_e / N_c + M_c)          (persons' variation + model, see below)

V_y and V_e are the variances of outcomes and residuals in the cell. Each person appears once
in a monthly cell. In a cell that spans several months, residuals are first summed per person,
so repeated months of the same person are not counted as independent: V/N becomes the CR1
variance of a mean, G/(G-1) sum_g (E_g - n_g e)^2 / N^2 (statsmodels' cluster-robust SE of a
constant).

The indicator is relative to Nav's average over the estimation sample: the OLS constant makes
the residuals average to 0 there, so I_c = (y_c - y) - d_c'b with d_c = x_c - x (x: the
sample's mean design row). What the model adds to its error is therefore the uncertainty of
the *contrast* d_c'b, not of the level x_c'b. The level's uncertainty includes that of the
average itself (Nav-wide, shared by every unit), which the indicator has subtracted:

  M_c = d_c' V_b d_c                                       offices' contributions (V_b by region)
      + x' V_p x + 2 d_c' V_p x - 2 Q_c (1/W + d_c' A^-1 x_c) / N_c    persons' own residuals

V_b is clustered by commuting region (spec.cluster2), V_p by person; W is the sum of weights,
A = X'WX. The second line is the person-clustered covariance between the cell's residuals and
b (each person's residuals enter both), with Q_c = sum over the cell's rows of e * E_p, E_p
the person's residual sum over the estimation sample. Its exact form needs A^-1 s_p per
person; here the person scores s_p are replaced by x_c E_p, which is exact in the constant
(docs/uncertainty.md: within a few per cent of the exact term on the medium world). For the
national cell over the whole estimation period M_c cancels V_e / N_c: that indicator is 0 by
construction and so is its standard error.

x_c and Q_c are needed for every cell. Code sums per cell are accumulated with bincount. They
add up over months, so period cells (years, the last 12 months, ...) reuse the monthly sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from .indicator import CellCodes, coded_table
from .batches import _add_all, _q, reduce_batches
from .design import term_arrays
from .model import IndicatorModel

Z95 = 1.959963984540054
MASKS = {"short": ("atid3", "jobb3"), "long": ("atid12", "jobb12")}


@dataclass
class Period:
    label: str  # e.g. '2023', 'siste 12 mnd', 'hele perioden', '2023-07--2024-06'
    start: str  # 'YYYY-MM'
    end: str


def model_variance_cells(con: duckdb.DuckDBPyConnection, model: IndicatorModel, periods: list[Period],
                         codes: CellCodes, analysis: str = "analysis", person_results: str = "person_results",
                         batch_rows: int = 1_000_000) -> pd.DataFrame:
    """The model's variance terms of every cell (month or period x level x unit x breakdown group
    x outcome), in outcome units (jobb in percentage points squared): `model_var` = x_c' V_b x_c
    for the expected level, `model_var_indicator` = M_c for the indicator (module docstring).

    Cells are keyed by integer codes (CellCodes): `period` (index into `periods`, -1 for a
    month), `mi` (the month as year * 12 + month - 1, -1 for a period), `lvl` (1 country,
    2 region, 3 office), `unit`, `bd` (breakdown), `grp`, `oi` (index into spec.outcomes).

    The person-months are streamed in Arrow batches. Per breakdown and outcome mask, the sums of
    the design rows are accumulated per month x (office, region) x group, the finest unit; the
    region and national cells are sums of those. Memory is the accumulators plus one batch."""
    spec = model.spec
    lay = model.layout_
    person_results = coded_table(person_results)
    n_bd = len(codes.breakdowns)
    masks = {k: v for k, v in MASKS.items() if v[0] in spec.outcomes}
    m0, m1 = con.execute(f"SELECT min(year(month) * 12 + month(month) - 1), max(year(month) * 12 + month(month) - 1) "
                         f"FROM {person_results}").fetchall()[0]
    n_m = int(m1) - int(m0) + 1
    n_pair, n_reg = len(codes.pairs), len(codes.regions)
    pair_of = np.full(len(codes.offices) * n_reg, -1, np.int64)  # office * n_reg + region -> pair
    pair_of[codes.pairs[:, 0] * n_reg + codes.pairs[:, 1]] = np.arange(n_pair)
    n_groups = [len(lab) for lab in codes.labels]
    design = [f"__t{i}" for i in range(len(model.codings_))]  # as the model coded the rows
    have = {c for c, *_ in con.execute(f"DESCRIBE {person_results}").fetchall()}
    if missing := [c for c in design if c not in have]:
        raise ValueError(f"{person_results} lacks the model's design columns {missing}: build it from the "
                         "person rows of IndicatorModel.fit")
    codes_sql = ", ".join(f"pr.{c}" for c in design)
    obs = ", ".join(f"(pr.actual_{v[0]} IS NOT NULL) AS __obs_{k}" for k, v in masks.items())
    grp_sql = "".join(f", pr.__g{b}" for b in range(1, n_bd))
    outs = [o for k in masks for o in MASKS[k] if o in model.results_]
    # each person's (weighted) residual sum over the estimation sample, per outcome; the
    # weights live in the analysis table, so only a weighted model joins it here
    w = f"CAST(a.{_q(spec.weight)} AS DOUBLE) * " if spec.weight else ""
    rows = f"{analysis} a JOIN {person_results} pr USING (person_id, month)" if spec.weight else f"{person_results} pr"
    person_sums = ", ".join(f"sum(CASE WHEN {model.period_where()} THEN {w}pr.indicator_{o} END) AS __E_{o}" for o in outs)
    q_sql = ", ".join(f"coalesce(pr.indicator_{o} * ps.__E_{o}, 0.0) AS __q_{o}" for o in outs)
    sql = f"""
        WITH ps AS (SELECT person_id, {person_sums} FROM {rows} GROUP BY person_id)
        SELECT CAST(year(pr.month) * 12 + month(pr.month) - 1 - {int(m0)} AS INTEGER) AS __m,
               pr.__office, pr.__region {grp_sql}, {obs}, {q_sql}, {codes_sql}
        FROM {person_results} pr JOIN ps ON ps.person_id = pr.person_id"""
    n_cells = [n_m * n_pair * n_g for n_g in n_groups]

    def design_sums(batches) -> dict:
        """Per (breakdown, observation pattern): design-row sums and counts per finest cell.

        A pattern is the set of outcome masks observed on a row. Rows with both the 3- and the
        12-month outcomes observed are summed once for both masks, so each row is counted
        once, not once per mask (the 12-month rows are most of the 3-month ones)."""
        acc = {}
        for batch in batches:
            col = lambda name: batch.column(name).to_numpy(zero_copy_only=False)  # noqa: E731
            month = col("__m").astype(np.int64)
            unit = month * n_pair + pair_of[col("__office").astype(np.int64) * n_reg + col("__region")]
            codes_b, conts = term_arrays(model.codings_, batch)
            groups = [0] + [col(f"__g{b}").astype(np.int64) for b in range(1, n_bd)]
            q_all = {o: col(f"__q_{o}").astype(float) for o in outs}
            pattern = sum((col(f"__obs_{k}").astype(np.int64) << i for i, k in enumerate(masks)), np.zeros(len(month), np.int64))
            for pat in np.unique(pattern[pattern > 0]).tolist():
                m = pattern == pat
                in_pat = [k for i, k in enumerate(masks) if pat >> i & 1]
                codes_k, conts_k, unit_k = [c[m] for c in codes_b], [x[m] for x in conts], unit[m]
                q_k = {o: q_all[o][m] for k in in_pat for o in MASKS[k] if o in outs}
                for b, g in enumerate(groups):
                    a = acc.setdefault((b, pat), {"design": _design_accumulators(lay, n_cells[b]),
                                                  "q": {o: np.zeros(n_cells[b]) for o in q_k}})
                    cell = unit_k * n_groups[b] + (g if b == 0 else g[m])
                    _add_design_sums(lay, a["design"], cell, codes_k, conts_k)
                    for o, q in q_k.items():
                        a["q"][o] += np.bincount(cell, weights=q, minlength=n_cells[b])
        return acc

    acc = reduce_batches(con, sql, design_sums, batch_rows)  # on Spark: per partition, then added
    # finest unit -> office, region, country
    levels = [(1, np.zeros(n_pair, np.int64), 1), (2, codes.pairs[:, 1], n_reg), (3, codes.pairs[:, 0], len(codes.offices))]
    out = []
    for b in range(n_bd):
        for i, k in enumerate(masks):  # a mask's sums: those of every pattern it is in
            parts = [a for (bb, pat), a in acc.items() if bb == b and pat >> i & 1]
            if not parts:
                continue
            n_g = n_groups[b]
            sums, count = _design_matrix(lay, _add_all([p["design"] for p in parts]), n_cells[b])
            sums_fine = sums.reshape(n_m, n_pair, n_g, lay.p)
            count_fine = count.reshape(n_m, n_pair, n_g)
            q_fine = {o: sum(p["q"][o] for p in parts).reshape(n_m, n_pair, n_g) for o in MASKS[k] if o in outs}
            for level, unit_of_pair, n_units in levels:
                agg = np.zeros((n_units, n_pair))
                agg[unit_of_pair, np.arange(n_pair)] = 1.0
                up = lambda x: np.moveaxis(np.tensordot(agg, x, axes=([1], [1])), 0, 1)  # noqa: E731  pairs -> units
                out += _cell_variances(model, up(sums_fine), up(count_fine), {o: up(q) for o, q in q_fine.items()},
                                       periods, int(m0), level, b)
    return pd.concat(out, ignore_index=True)


def _cell_variances(model, sums, count, q, periods, m0, level, bd) -> list[pd.DataFrame]:
    """The model's variance terms of the monthly cells and every period's cells of one level
    and breakdown. `q` holds the sums Q_c per outcome (module docstring)."""
    n_m, n_u, n_g, p_ = sums.shape
    out = []
    for pi, p in [(-1, None)] + list(enumerate(periods)):
        if p is None:
            s, n, qs = sums, count, q
        else:
            a = max(0, month_index(p.start) - m0)
            e = min(n_m - 1, month_index(p.end) - m0)
            if a > e:
                continue
            s, n = sums[a:e + 1].sum(0, keepdims=True), count[a:e + 1].sum(0, keepdims=True)
            qs = {o: v[a:e + 1].sum(0, keepdims=True) for o, v in q.items()}
        idx = np.flatnonzero(n.ravel() > 0)
        if not len(idx):
            continue
        xbar = s.reshape(-1, p_)[idx] / n.ravel()[idx, None]
        t_i, rest = np.divmod(idx, n_u * n_g)
        u_i, g_i = np.divmod(rest, n_g)
        for o, qo in qs.items():
            level_var, ind_var = _model_terms(model, o, xbar, qo.ravel()[idx] / n.ravel()[idx])
            scale = 1e4 if o.startswith("jobb") else 1.0
            out.append(pd.DataFrame({
                "period": pi, "mi": (t_i + m0) if p is None else -1, "lvl": level, "unit": u_i, "bd": bd, "grp": g_i,
                "oi": model.spec.outcomes.index(o), "model_var": level_var * scale, "model_var_indicator": ind_var * scale}))
    return out


def _model_terms(model, o: str, xbar: np.ndarray, q_mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x_c' V_b x_c (the expected level) and M_c (the indicator) for cells with mean design rows
    `xbar` and Q_c / N_c = `q_mean`; see the module docstring."""
    res = model.results_[o]
    kept = model.kept_[o]
    v_b = res.cov.get("cluster2", res.cov["cluster"])
    v_p = res.cov["cluster"]
    xc = xbar[:, kept]
    x0 = model.xbar_[o][kept]
    d = xc - x0
    quad = lambda u, m, v: ((u @ m) * v).sum(axis=1)  # noqa: E731  row-wise u_i' m v_i, by BLAS
    level_var = quad(xc, v_b, xc)
    ind_var = (quad(d, v_b, d) + x0 @ v_p @ x0 + 2 * d @ (v_p @ x0)
               - 2 * q_mean * (1.0 / res.sum_weights + quad(d, model.ainv_[o], xc)))
    return level_var, ind_var


def month_index(ym: str) -> int:
    """'YYYY-MM' -> year * 12 + month - 1, a running number of months."""
    return int(ym[:4]) * 12 + int(ym[5:7]) - 1


def month_numbers(dates) -> np.ndarray:
    """Dates (or anything pandas reads as dates) -> month_index of each, as integers."""
    d = pd.to_datetime(pd.Series(dates))
    return (d.dt.year * 12 + d.dt.month - 1).to_numpy(np.int64)


def _design_accumulators(lay, n_cells: int) -> dict:
    """Per-cell sums of the design rows, kept per term: integer level counts (n_cells x levels,
    flattened) and float sums of the continuous terms. Each batch adds to contiguous arrays;
    adding into the strided columns of one n_cells x p matrix cost twice the bincounts."""
    return {"count": np.zeros(n_cells, np.int64),
            **{f"t{t}": np.zeros(n_cells * size, np.int64) for t, size in enumerate(lay.sizes)},
            **{f"x{j}": np.zeros(n_cells) for j in range(len(lay.cont))}}


def _add_design_sums(lay, acc: dict, cell, codes, conts) -> None:
    """Add the design rows of one batch to the per-cell accumulators."""
    n_cells = len(acc["count"])
    acc["count"] += np.bincount(cell, minlength=n_cells)
    for t, (c, size) in enumerate(zip(codes, lay.sizes)):
        acc[f"t{t}"] += np.bincount(cell * size + c, minlength=n_cells * size)
    for j, x in enumerate(conts):
        acc[f"x{j}"] += np.bincount(cell, weights=x, minlength=n_cells)


def _design_matrix(lay, acc: dict, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """The accumulators as per-cell design sums (n_cells x p, intercept first) and counts."""
    count = acc["count"].astype(float)
    sums = np.empty((n_cells, lay.p))
    sums[:, 0] = count
    for t, (off, size) in enumerate(zip(lay.offsets, lay.sizes)):
        sums[:, off:off + size] = acc[f"t{t}"].reshape(n_cells, size)
    k0 = 1 + sum(lay.sizes)
    for j in range(len(lay.cont)):
        sums[:, k0 + j] = acc[f"x{j}"]
    return sums, count
