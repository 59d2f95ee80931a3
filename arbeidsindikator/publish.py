"""The published tables: month (or period) x level x unit x outcome x breakdown group.

Columns follow Nav's published table (BEHOLDNINGSMAANED, ORG_NIVAA, ORG_STED, UTFALL,
NEDBRYTNING, ANTALL_PERSONER, faktisk, forventet, INDIKATOR). The project adds what a reader
needs to use a number correctly:

- GRUPPE: the group within the breakdown ('Alle' for the whole unit);
- I_MODELLEN: the breakdown variable is in the model, so its groups average to zero over
  the period by construction. Compare their development over time, never their levels;
- ENHET: 'timer per uke' for atid*, 'prosentpoeng' for jobb*. faktisk and forventet for jobb*
  are percentages, so INDIKATOR = faktisk - forventet holds in every row;
- *_SE and *_KI_NEDRE / *_KI_OVRE: standard errors and 95% confidence intervals of actual,
  expected and indicator (see uncertainty.py);
- INDIKATOR_KRYMPET: the empirical-Bayes (shrunken) office indicator, next to the raw one
  (shrinkage.py); MELLOMVARIANS: the between-office variance behind it;
- EKSTRA_TIMER_PER_UKE and ARSVERK (atid* only): the indicator as work volume. It is
  INDIKATOR x persons hours per week, and one årsverk is 37.5 hours per week;
- REGION_ID: the region of an office (level 3), so offices can be grouped by region;
- PRIKKET / PRIKKET_ARSAK: suppressed cells (too few persons, or secondary suppression so the
  value cannot be recovered by subtraction). They carry no values.

ORG_NIVAA: 1 the country, 2 a region, 3 an office. The national follow-up unit NOE is its
own unit at level 2 and 3 (as in Nav's table), so the regions plus NOE add up to the country.
ANTALL_PERSONER counts person-months with an observed outcome. Censored months are not
published.

`published` holds monthly cells. `published_period` holds the same for periods: calendar
years, the last 12 months with an observed outcome, the whole period, and any period in
the specification's [publish] periods. Repeated months of a person are clustered there.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from .config import ModelSpec
from .indicator import breakdown_sql
from .model import IndicatorModel, _q, is_spark
from .outcomes import UNITS
from .shrinkage import empirical_bayes
from .suppression import suppress
from .uncertainty import Z95, Period, grouping_sets, model_variance_cells

HOURS_PER_FTE_WEEK = 37.5


def _scale(o: str) -> float:
    return 100.0 if o.startswith("jobb") else 1.0


def _period_moment_cols(spec: ModelSpec) -> str:
    """Per outcome, over rows that are one person's sums in a cell: persons, sums, and the
    cross-products the person-clustered variance needs."""
    cols = []
    for o in spec.outcomes:
        cols += [f"sum(n_{o}) AS n_{o}", f"count(*) FILTER (WHERE n_{o} > 0) AS g_{o}",
                 f"sum(sy_{o}) AS sy_{o}", f"sum(sx_{o}) AS sx_{o}", f"sum(se_{o}) AS se_{o}",
                 f"sum(sy_{o} * sy_{o}) AS syy_{o}", f"sum(se_{o} * se_{o}) AS see_{o}",
                 f"sum(n_{o} * sy_{o}) AS nsy_{o}", f"sum(n_{o} * se_{o}) AS nse_{o}", f"sum(n_{o} * n_{o}) AS nn_{o}"]
    return ", ".join(cols)


def _monthly_moment_cols(spec: ModelSpec) -> str:
    """Monthly moments (count, means, sample variances, covariance) from per-cell sums, so
    coarser cells can be built from finer ones."""
    cols = []
    for o in spec.outcomes:
        n, sy, se = f"sum(n_{o})", f"sum(sy_{o})", f"sum(se_{o})"
        var = lambda ss, a, b: f"CASE WHEN {n} > 1 THEN ({ss} - {a} * {b} / {n}) / ({n} - 1) END"  # noqa: E731
        n0 = f"nullif({n}, 0)"  # a cell where the outcome is censored throughout: NULL means, no error
        cols += [f"CAST({n} AS BIGINT) AS n_{o}", f"{sy} / {n0} AS y_{o}", f"sum(sx_{o}) / {n0} AS x_{o}", f"{se} / {n0} AS e_{o}",
                 f"{var(f'sum(syy_{o})', sy, sy)} AS vy_{o}", f"{var(f'sum(see_{o})', se, se)} AS ve_{o}",
                 f"{var(f'sum(sey_{o})', se, sy)} AS cey_{o}"]
    return ", ".join(cols)


def _cell_frame(con, spec: ModelSpec, sql: str, meta) -> pd.DataFrame:
    """Run a GROUPING SETS query and label each row with its level and breakdown."""
    df = con.execute(sql).df()
    grp_cols = ["region_id", "office_id"] + [f"grp_{n}" for n, _, _ in breakdown_sql(spec)[1:]]
    bits = 1 << np.arange(len(grp_cols))
    pattern = df[grp_cols].notna().to_numpy() @ bits  # which columns this row is grouped by
    df["ORG_NIVAA"] = 0
    df["ORG_STED_ID"] = "0000"
    df["NEDBRYTNING"] = ""
    df["GRUPPE"] = "Alle"
    for level, bname, unit, gcol in meta:
        want = sum(int(b) for c, b in zip(grp_cols, bits) if c == unit or (gcol is not None and _q(c) == gcol))
        sel = pattern == want
        df.loc[sel, "ORG_NIVAA"] = level
        df.loc[sel, "NEDBRYTNING"] = bname
        if unit is not None:
            df.loc[sel, "ORG_STED_ID"] = df.loc[sel, unit]
        if gcol is not None:
            df.loc[sel, "GRUPPE"] = df.loc[sel, gcol.strip('"')]
    return df.drop(columns=grp_cols)


def _long(df: pd.DataFrame, spec: ModelSpec, period_stage: bool) -> pd.DataFrame:
    """One row per outcome, with means and sampling variances of the means in outcome units."""
    rows = []
    keys = [c for c in df.columns if c in ("__period", "ORG_NIVAA", "ORG_STED_ID", "NEDBRYTNING", "GRUPPE")]
    for o in spec.outcomes:
        s = _scale(o)
        d = df[keys].copy()
        d["UTFALL"] = o
        n = df[f"n_{o}"].astype(float)
        d["ANTALL_PERSONER"] = df[f"n_{o}"]
        if period_stage:
            g = df[f"g_{o}"].astype(float)
            ybar, ebar = df[f"sy_{o}"] / n, df[f"se_{o}"] / n
            corr = (g / (g - 1)).where(g > 1)  # one person only: no clustered variance
            vy = corr * (df[f"syy_{o}"] - 2 * ybar * df[f"nsy_{o}"] + ybar ** 2 * df[f"nn_{o}"]) / n ** 2
            ve = corr * (df[f"see_{o}"] - 2 * ebar * df[f"nse_{o}"] + ebar ** 2 * df[f"nn_{o}"]) / n ** 2
            d["ANTALL_UNIKE_PERSONER"] = df[f"g_{o}"]
            d["faktisk"], d["forventet"], d["INDIKATOR"] = s * ybar, s * df[f"sx_{o}"] / n, s * ebar
            d["var_y"], d["var_e"], d["cov_ey"] = s * s * vy, s * s * ve, np.nan
        else:
            d["faktisk"], d["forventet"], d["INDIKATOR"] = s * df[f"y_{o}"], s * df[f"x_{o}"], s * df[f"e_{o}"]
            d["var_y"], d["var_e"] = s * s * df[f"vy_{o}"] / n, s * s * df[f"ve_{o}"] / n
            d["cov_ey"] = s * s * df[f"cey_{o}"] / n
        rows.append(d[n > 0])
    return pd.concat(rows, ignore_index=True)


def _finish(d: pd.DataFrame, spec: ModelSpec, names: dict, region_of: dict) -> pd.DataFrame:
    """Standard errors, intervals, names, work volume, suppression and shrinkage."""
    in_model = {name: im for name, _, im in breakdown_sql(spec)}
    d["I_MODELLEN"] = d["NEDBRYTNING"].map(in_model)
    d["ENHET"] = d["UTFALL"].map(UNITS)
    d["ORG_STED"] = [names.get((lv, i), i) for lv, i in zip(d["ORG_NIVAA"], d["ORG_STED_ID"])]
    d["faktisk_SE"] = np.sqrt(d["var_y"].clip(lower=0))
    d["forventet_SE"] = np.sqrt(d["model_var"].fillna(0.0))
    # the model's term of the indicator includes minus the covariance with the cell's own
    # residuals, so only the sum is bounded below (national cells over the whole period: 0)
    d["INDIKATOR_SE"] = np.sqrt((d["var_e"].clip(lower=0) + d["model_var_indicator"].fillna(0.0)).clip(lower=0))
    for c in ("faktisk", "forventet", "INDIKATOR"):
        d[f"{c}_KI_NEDRE"] = d[c] - Z95 * d[f"{c}_SE"]
        d[f"{c}_KI_OVRE"] = d[c] + Z95 * d[f"{c}_SE"]
    d["KOV_INDIKATOR_FAKTISK"] = d["cov_ey"]
    d["REGION_ID"] = [region_of.get(i) if lv == 3 else None for lv, i in zip(d["ORG_NIVAA"], d["ORG_STED_ID"])]
    d = suppress(d, spec.min_persons, count="ANTALL_UNIKE_PERSONER" if "ANTALL_UNIKE_PERSONER" in d else "ANTALL_PERSONER")
    d = empirical_bayes(d)
    atid = d["UTFALL"].str.startswith("atid")
    users = d["ANTALL_PERSONER"] / d.get("MANEDER", 1)
    d["EKSTRA_TIMER_PER_UKE"] = np.where(atid, d["INDIKATOR"] * users, np.nan)
    d["ARSVERK"] = d["EKSTRA_TIMER_PER_UKE"] / HOURS_PER_FTE_WEEK
    return d.drop(columns=["var_y", "var_e", "cov_ey", "model_var", "model_var_indicator"])


VALUE_COLS = ["ANTALL_PERSONER", "faktisk", "forventet", "INDIKATOR", "ENHET",
              "faktisk_SE", "forventet_SE", "INDIKATOR_SE", "faktisk_KI_NEDRE", "faktisk_KI_OVRE",
              "forventet_KI_NEDRE", "forventet_KI_OVRE", "INDIKATOR_KI_NEDRE", "INDIKATOR_KI_OVRE",
              "INDIKATOR_KRYMPET", "MELLOMVARIANS", "EKSTRA_TIMER_PER_UKE", "ARSVERK", "PRIKKET", "PRIKKET_ARSAK"]
KEY_COLS = ["ORG_NIVAA", "ORG_STED", "ORG_STED_ID", "REGION_ID", "UTFALL", "NEDBRYTNING", "GRUPPE", "I_MODELLEN"]


def default_periods(con, spec: ModelSpec, source: str = "person_results") -> list[Period]:
    """Calendar years, the whole period, the last 12 months, and those named in the spec."""
    lo, hi = con.execute(f"SELECT min(month), max(month) FROM {source}").fetchall()[0]
    periods = [Period(str(y), f"{y}-01", f"{y}-12") for y in range(lo.year, hi.year + 1)]
    periods.append(Period("hele perioden", f"{lo:%Y-%m}", f"{hi:%Y-%m}"))
    for o in spec.outcomes:  # last 12 months in which this outcome is observed
        last = con.execute(f"SELECT max(month) FROM {source} WHERE actual_{o} IS NOT NULL").fetchall()[0][0]
        if last is not None:
            first = (pd.Timestamp(last) - pd.DateOffset(months=11)).date()
            p = Period(f"siste 12 mnd til {last:%Y-%m}", f"{first:%Y-%m}", f"{last:%Y-%m}")
            if p.label not in {q.label for q in periods}:
                periods.append(p)
    periods += [Period(label, a, b) for label, a, b in spec.periods]
    return periods


def build_published(con: duckdb.DuckDBPyConnection, spec: ModelSpec, model: IndicatorModel,
                    source: str = "person_results", periods: list[Period] | None = None) -> None:
    """Create tables `published` (monthly) and `published_period` in the working connection."""
    periods = periods if periods is not None else default_periods(con, spec, source)
    names = {}
    for lv, col, name in ((2, "region_id", "region_name"), (3, "office_id", "office_name")):
        for i, n in con.execute(f"SELECT DISTINCT {col}, {name} FROM {source}").fetchall():
            names[(lv, i)] = n
    names[(1, "0000")] = "Norge"
    region_of = dict(con.execute(f"SELECT DISTINCT office_id, region_id FROM {source}").fetchall())
    groups = ", ".join(_q("grp_" + n) for n, _, _ in breakdown_sql(spec)[1:])
    mv = model_variance_cells(con, model, periods, person_results=source)
    # monthly cells: each person once per cell
    gs, meta = grouping_sets(spec)
    # sums per finest cell first (a few million rows at national scale instead of 29 million),
    # then the grouping sets over those; means and variances follow from the sums
    finest = ", ".join(
        f"count(actual_{o}) AS n_{o}, sum(actual_{o}) AS sy_{o}, sum(actual_{o} * actual_{o}) AS syy_{o}, "
        f"sum(CASE WHEN actual_{o} IS NOT NULL THEN expected_{o} END) AS sx_{o}, sum(indicator_{o}) AS se_{o}, "
        f"sum(indicator_{o} * indicator_{o}) AS see_{o}, sum(indicator_{o} * actual_{o}) AS sey_{o}"
        for o in spec.outcomes)
    monthly = _cell_frame(con, spec, f"""
        WITH f AS (SELECT month AS __period, region_id, office_id, {groups}, {finest} FROM {source} GROUP BY ALL)
        SELECT __period, region_id, office_id, {groups}, {_monthly_moment_cols(spec)}
        FROM f GROUP BY {gs}""", meta)
    m = _long(monthly, spec, False)
    m["mi"] = [d.year * 12 + d.month - 1 for d in pd.to_datetime(m["__period"])]
    m = m.merge(mv[mv["period"] == ""].drop(columns="period"), how="left",
                on=["mi", "ORG_NIVAA", "ORG_STED_ID", "NEDBRYTNING", "GRUPPE", "UTFALL"])
    m = m.rename(columns={"__period": "BEHOLDNINGSMAANED"}).drop(columns="mi")
    m["BEHOLDNINGSMAANED"] = pd.to_datetime(m["BEHOLDNINGSMAANED"]).dt.date
    m = _finish(m, spec, names, region_of)
    m = m[["BEHOLDNINGSMAANED"] + KEY_COLS + VALUE_COLS + ["KOV_INDIKATOR_FAKTISK"]]
    _store(con, "published", m.sort_values(["ORG_NIVAA", "ORG_STED_ID", "UTFALL", "NEDBRYTNING", "GRUPPE", "BEHOLDNINGSMAANED"]))
    # period cells: residuals summed per person first
    ptab = pd.DataFrame([(p.label, f"{p.start}-01", f"{p.end}-01", _months(p)) for p in periods],
                        columns=["label", "start", "end", "months"])
    rollup = ", ".join(f"sum(n_{o}) AS n_{o}, sum(sy_{o}) AS sy_{o}, sum(se_{o}) AS se_{o}, sum(sx_{o}) AS sx_{o}"
                       for o in spec.outcomes)
    per_person = ", ".join(
        f"count(actual_{o}) AS n_{o}, sum(actual_{o}) AS sy_{o}, sum(indicator_{o}) AS se_{o}, "
        f"sum(CASE WHEN actual_{o} IS NOT NULL THEN expected_{o} END) AS sx_{o}" for o in spec.outcomes)
    moments = _period_moment_cols(spec)
    sum_moments = ", ".join(f"sum({c.split(' AS ')[1]}) AS {c.split(' AS ')[1]}" for c in moments.split(", "))
    gs_cells, meta_cells = grouping_sets(spec)
    keys = f"__period, region_id, office_id, {groups}"
    _person_period_sums(con, source, periods, keys, per_person, rollup)
    # DuckDB: one period at a time bounds the memory of the aggregations over persons.
    # Spark spills by itself and pays ~0.5 s per job, so it takes every period at once.
    chunks = [periods] if is_spark(con) else [[p] for p in periods]
    period_df = pd.concat([_period_cells(con, spec, c, keys, moments, sum_moments, rollup, gs_cells, meta_cells)
                           for c in chunks], ignore_index=True)
    con.execute("DROP TABLE __pp")
    p = _long(period_df, spec, True)
    p = p.merge(mv[mv["period"] != ""].drop(columns="mi"), how="left",
                left_on=["__period", "ORG_NIVAA", "ORG_STED_ID", "NEDBRYTNING", "GRUPPE", "UTFALL"],
                right_on=["period", "ORG_NIVAA", "ORG_STED_ID", "NEDBRYTNING", "GRUPPE", "UTFALL"]).drop(columns="period")
    p = p.merge(ptab.rename(columns={"label": "__period", "start": "PERIODE_FRA", "end": "PERIODE_TIL", "months": "MANEDER"}),
                on="__period").rename(columns={"__period": "PERIODE"})
    p = _finish(p, spec, names, region_of)
    p["PERIODE_FRA"] = pd.to_datetime(p["PERIODE_FRA"]).dt.date
    p["PERIODE_TIL"] = pd.to_datetime(p["PERIODE_TIL"]).dt.date
    p = p[["PERIODE", "PERIODE_FRA", "PERIODE_TIL", "MANEDER"] + KEY_COLS + VALUE_COLS + ["ANTALL_UNIKE_PERSONER"]]
    _store(con, "published_period", p.sort_values(["PERIODE", "ORG_NIVAA", "ORG_STED_ID", "UTFALL", "NEDBRYTNING", "GRUPPE"]))


def _period_cells(con, spec: ModelSpec, periods: list[Period], keys: str, moments: str, sum_moments: str,
                  rollup: str, gs_cells: str, meta) -> pd.DataFrame:
    """Moments of every cell of some periods, with each person's months clustered.

    A person whose rows in the period all lie in one finest cell contributes that row to every
    coarser cell (one GROUPING SETS query over cells). For persons who moved between finest
    cells, their sums per coarser cell come first: one plain GROUP BY per level x breakdown,
    so each aggregation can spill to disk (a GROUPING SETS over persons ran out of memory at
    national scale)."""
    labels = ", ".join("'" + p.label.replace("'", "''") + "'" for p in periods)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __s0 AS
        WITH s00 AS (SELECT * FROM __pp WHERE __period IN ({labels})),
        k AS (SELECT __period, person_id, count(*) AS __k FROM s00 GROUP BY __period, person_id)
        SELECT s00.*, k.__k FROM s00 JOIN k USING (__period, person_id)""")
    con.execute(f"CREATE OR REPLACE TEMP TABLE __pc AS SELECT {keys}, {moments} FROM __s0 WHERE __k = 1 GROUP BY {gs_cells}")
    key_cols = [c.strip() for c in keys.split(",")][1:]
    for _, _, unit, gcol in meta:
        cols = [c for c in (unit, gcol) if c]
        select = ", ".join(c if c in cols else f"NULL AS {c}" for c in key_cols)
        by = ", ".join(["__period", *cols, "person_id"])
        con.execute(f"""INSERT INTO __pc BY NAME
            SELECT __period, {select}, {moments}
            FROM (SELECT {by}, {rollup} FROM __s0 WHERE __k > 1 GROUP BY {by}) GROUP BY ALL""")
    df = _cell_frame(con, spec, f"SELECT {keys}, {sum_moments} FROM __pc GROUP BY ALL", meta)
    con.execute("DROP TABLE __s0; DROP TABLE __pc")
    return df


def _person_period_sums(con, source: str, periods: list[Period], keys: str,
                        per_person: str, rollup: str) -> None:
    """Table __pp: one row per period x person x finest cell with the person's sums there.

    Person-months are not copied into every period they belong to. They are summed once per
    calendar year; a period made of whole years sums those yearly rows. Only the other
    periods (the last 12 months, named periods) read the person-months again, and only
    their own months."""
    cell = keys.replace("__period, ", "")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __py AS
        SELECT CAST(year(month) AS INTEGER) AS __y, person_id, {cell}, {per_person} FROM {source} GROUP BY ALL""")
    parts = []
    for p in periods:
        label = p.label.replace("'", "''")
        if p.start.endswith("-01") and p.end.endswith("-12"):
            a, b = int(p.start[:4]), int(p.end[:4])
            parts.append(f"SELECT '{label}' AS __period, person_id, {cell}, {rollup} FROM __py "
                         f"WHERE __y BETWEEN {a} AND {b} GROUP BY ALL")
        else:
            parts.append(f"SELECT '{label}' AS __period, person_id, {cell}, {per_person} FROM {source} "
                         f"WHERE month BETWEEN DATE '{p.start}-01' AND DATE '{p.end}-01' GROUP BY ALL")
    # per_person and rollup name the same columns in the same order, so the parts line up
    con.execute("CREATE OR REPLACE TEMP TABLE __pp AS " + " UNION ALL ".join(parts))
    con.execute("DROP TABLE __py")


def _months(p: Period) -> int:
    a, b = p.start, p.end
    return (int(b[:4]) - int(a[:4])) * 12 + int(b[5:7]) - int(a[5:7]) + 1


def _store(con, name: str, df: pd.DataFrame) -> None:
    if is_spark(con):  # the published frames stay on the driver, for the results store
        return con.store_frame(name, df)
    con.register("__df", df)
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM __df")
    con.unregister("__df")


def export(con: duckdb.DuckDBPyConnection, query: str, out: Path, formats=("csv", "parquet")) -> list[Path]:
    """Write a query result to CSV and/or Parquet (atomically: temp file, then rename)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        p = out.with_suffix(f".{fmt}")
        tmp = p.with_name(f".{p.name}.tmp")
        opts = "(FORMAT csv, HEADER true)" if fmt == "csv" else "(FORMAT parquet, COMPRESSION zstd)"
        con.execute(f"COPY ({query}) TO '{tmp.as_posix()}' {opts}")
        tmp.replace(p)
        written.append(p)
    return written


__all__ = ["build_published", "default_periods", "export", "HOURS_PER_FTE_WEEK"]
