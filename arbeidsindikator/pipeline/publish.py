"""The published tables: month (or period) x level x unit x outcome x breakdown group.

Columns follow Nav's published table (BEHOLDNINGSMAANED, ORG_NIVAA, ORG_STED, UTFALL,
NEDBRYTNING, ANTALL_PERSONER, faktisk, forventet, INDIKATOR). The project adds what a reader
needs to use a number correctly:

- GRUPPE: the group within the breakdown ('Alle' for the whole unit);
- I_MODELLEN: the breakdown variable is in the model, so its groups average to zero over
  the period by construction. Compare their development over time, never their levels;
- ENHET: the unit of faktisk and forventet, 'timer per uke' for atid*, 'prosent' for jobb*;
  ENHET_INDIKATOR: the unit of INDIKATOR, a difference: 'timer per uke' or 'prosentpoeng'.
  INDIKATOR = faktisk - forventet holds in every row;
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
ANTALL_PERSONER counts persons with an observed outcome: in a monthly cell, person-months and
persons are the same; in a period cell each person counts once, and ANTALL_PERSONMANEDER holds
the person-months the means are over. Censored months are not published.

`published` holds monthly cells. `published_period` holds the same for periods: calendar
years, the last 12 months with an observed outcome, the whole period, and any period in
the specification's [publish] periods. Repeated months of a person are clustered there. A
release (carry.py) publishes only periods complete for every outcome, and again those of the
release before it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ..data import atomic
from ..data.spreadsheet import escape_sql
from .carry import MONTH_KEY, PERIOD_KEY, Carried, decisions, release_periods
from .config import ModelSpec
from .indicator import CellCodes, coded_table
from .batches import ClustersApart, insertion_order, is_spark, reduce_batches
from .model import IndicatorModel
from .period_cells import CellSets, period_frame, period_moments
from .outcomes import INDICATOR_UNITS, UNITS
from .shrinkage import empirical_bayes
from .disclosure import Protection, Shape, protect
from .suppression import apply_suppression
from .uncertainty import Z95, Period, model_variance_cells, month_index

HOURS_PER_FTE_WEEK = 37.5
# sums over person-months in a cell, per outcome (SUMS, in period_cells' order): months with
# an observed outcome, and the sums of the actual, the indicator and the expected where observed
# Sums are exact (each value rounded to 1e-10, then added as a DECIMAL): a parallel sum of
# doubles depends on the order the threads add in, and two runs of the same data would differ
# in the 14th digit, enough to round a published value differently.
EXACT = "CAST({} AS DECIMAL(38, 10))"
OF_MONTHS = {"n": "count(actual_{o})", "sy": f"sum({EXACT.format('actual_{o}')})",
             "se": f"sum({EXACT.format('indicator_{o}')})",
             "sx": f"sum({EXACT.format('CASE WHEN actual_{o} IS NOT NULL THEN expected_{o} END')})",
             # person-months with any of the outcome (the threshold rule for hours: disclosure.py)
             "np": "count(CASE WHEN actual_{o} > 0 THEN 1 END)"}


def _scale(o: str) -> float:
    return 100.0 if o.startswith("jobb") else 1.0


def _monthly_moment_cols(spec: ModelSpec) -> str:
    """Monthly moments (count, means, sample variances, covariance) from per-cell sums, so
    coarser cells can be built from finer ones."""
    cols = []
    for o in spec.outcomes:
        n, sy, se = f"sum(n_{o})", f"CAST(sum(sy_{o}) AS DOUBLE)", f"CAST(sum(se_{o}) AS DOUBLE)"
        var = lambda ss, a, b: f"CASE WHEN {n} > 1 THEN ({ss} - {a} * {b} / {n}) / ({n} - 1) END"  # noqa: E731
        n0 = f"nullif({n}, 0)"  # a cell where the outcome is censored throughout: NULL means, no error
        d = lambda c: f"CAST(sum({c}_{o}) AS DOUBLE)"  # noqa: E731  (the exact sums, as doubles)
        cols += [f"CAST({n} AS BIGINT) AS n_{o}", f"CAST(sum(np_{o}) AS BIGINT) AS np_{o}", f"{sy} / {n0} AS y_{o}", f"{d('sx')} / {n0} AS x_{o}", f"{se} / {n0} AS e_{o}",
                 f"{var(d('syy'), sy, sy)} AS vy_{o}", f"{var(d('see'), se, se)} AS ve_{o}",
                 f"{var(d('sey'), se, sy)} AS cey_{o}"]
    return ", ".join(cols)


def _cell_sets(codes: CellCodes) -> list[tuple[int, int]]:
    """Every published (level, breakdown) combination."""
    return [(lvl, bd) for lvl in (1, 2, 3) for bd in range(len(codes.breakdowns))]


def _key_cols(codes: CellCodes) -> list[str]:
    return CellCodes.key_cols(len(codes.breakdowns))


def _grouping_sets(codes: CellCodes, time_col: str) -> str:
    sets = ["(" + ", ".join([time_col] + CellCodes.set_cols(lvl, bd)) + ")" for lvl, bd in _cell_sets(codes)]
    return "GROUPING SETS (" + ", ".join(sets) + ")"


def _cell_frame(con, codes: CellCodes, sql: str) -> pd.DataFrame:
    """Run a query whose rows are cells of the grouping sets (codes NULL where a row is not
    grouped by them) and key each row by integers: lvl, unit, bd (breakdown), grp."""
    df = con.execute(sql).df()
    keys = _key_cols(codes)
    bits = 1 << np.arange(len(keys))
    pattern = df[keys].notna().to_numpy() @ bits  # which codes this row is grouped by (codes are never NULL)
    lookup = np.full(1 << len(keys), -1, np.int64)
    sets = _cell_sets(codes)
    for i, (lvl, bd) in enumerate(sets):
        lookup[sum(int(bits[keys.index(c)]) for c in CellCodes.set_cols(lvl, bd))] = i
    which = lookup[pattern]
    lvl = np.array([s[0] for s in sets])[which]
    bd = np.array([s[1] for s in sets])[which]
    k = df[keys].fillna(0).to_numpy(np.int64)
    df["lvl"], df["bd"] = lvl, bd
    df["unit"] = np.where(lvl == 2, k[:, 0], np.where(lvl == 3, k[:, 1], 0))
    df["grp"] = np.where(bd > 0, k[np.arange(len(df)), 1 + np.maximum(bd, 1)], 0)  # __g{bd} is keys[1 + bd]
    return df.drop(columns=keys)


def _long(df: pd.DataFrame, spec: ModelSpec, period_stage: bool) -> pd.DataFrame:
    """One row per outcome (`oi`: index into spec.outcomes), with means and sampling variances
    of the means in outcome units."""
    rows = []
    keys = [c for c in df.columns if c in ("__p", "__mi", "lvl", "unit", "bd", "grp")]
    for oi, o in enumerate(spec.outcomes):
        s = _scale(o)
        d = df[keys].copy()
        d["oi"] = oi
        n = df[f"n_{o}"].astype(float)
        d["ANTALL_PERSONER"] = df[f"n_{o}"]  # a monthly cell: each person once
        if period_stage:
            g = df[f"g_{o}"].astype(float)
            ybar, ebar = df[f"sy_{o}"] / n, df[f"se_{o}"] / n
            corr = (g / (g - 1)).where(g > 1)  # one person only: no clustered variance
            vy = corr * (df[f"syy_{o}"] - 2 * ybar * df[f"nsy_{o}"] + ybar ** 2 * df[f"nn_{o}"]) / n ** 2
            ve = corr * (df[f"see_{o}"] - 2 * ebar * df[f"nse_{o}"] + ebar ** 2 * df[f"nn_{o}"]) / n ** 2
            # a period cell counts persons (each once) and person-months, which the means are over
            d["ANTALL_PERSONMANEDER"] = df[f"n_{o}"]
            d["ANTALL_PERSONER"] = df[f"g_{o}"]
            d["faktisk"], d["forventet"], d["INDIKATOR"] = s * ybar, s * df[f"sx_{o}"] / n, s * ebar
            d["var_y"], d["var_e"], d["cov_ey"] = s * s * vy, s * s * ve, np.nan
        else:
            d["faktisk"], d["forventet"], d["INDIKATOR"] = s * df[f"y_{o}"], s * df[f"x_{o}"], s * df[f"e_{o}"]
            d["__pos"] = df[f"np_{o}"]
            d["var_y"], d["var_e"] = s * s * df[f"vy_{o}"] / n, s * s * df[f"ve_{o}"] / n
            d["cov_ey"] = s * s * df[f"cey_{o}"] / n
        rows.append(d[n > 0])
    return pd.concat(rows, ignore_index=True)


def _key_labels(d: pd.DataFrame, spec: ModelSpec, codes: CellCodes) -> dict[str, np.ndarray]:
    """The published key columns of cells from their integer keys, by array lookups."""
    lvl, unit, bd, grp = (d[c].to_numpy(np.int64) for c in ("lvl", "unit", "bd", "grp"))
    obj = lambda xs: np.array(list(xs), dtype=object)  # noqa: E731
    by_level = lambda national, regional, local: np.select(  # noqa: E731
        [lvl == 1, lvl == 2], [national, regional[np.where(lvl == 2, unit, 0)]], local[np.where(lvl == 3, unit, 0)])
    start = np.cumsum([0] + [len(lab) for lab in codes.labels])
    return {"ORG_NIVAA": lvl, "ORG_STED_ID": by_level("0000", obj(codes.regions), obj(codes.offices)),
            "ORG_STED": by_level("Norge", obj(codes.region_names), obj(codes.office_names)),
            "UTFALL": obj(spec.outcomes)[d["oi"].to_numpy()], "NEDBRYTNING": obj(n for n, _ in codes.breakdowns)[bd],
            "I_MODELLEN": np.array([im for _, im in codes.breakdowns])[bd],
            "GRUPPE": obj(v for lab in codes.labels for v in lab)[start[bd] + grp]}


def _labels(d: pd.DataFrame, spec: ModelSpec, codes: CellCodes) -> pd.DataFrame:
    """The published key columns from the integer keys."""
    lvl = d["lvl"].to_numpy(np.int64)
    keys = _key_labels(d, spec, codes)
    for c in ("ORG_NIVAA", "ORG_STED_ID", "ORG_STED"):
        d[c] = keys[c]
    # an office's region: in the month for monthly cells, at the end of the period for periods
    # (an office can move between regions; `__reg`, see _office_regions)
    regions = np.array(list(codes.regions), dtype=object)
    d["REGION_ID"] = np.where(lvl == 3, regions[np.maximum(d.pop("__reg").to_numpy(), 0)], None)
    for c in ("UTFALL", "NEDBRYTNING", "I_MODELLEN", "GRUPPE"):
        d[c] = keys[c]
    return d.drop(columns=["lvl", "unit", "bd", "grp", "oi"])


def _bands(d: pd.DataFrame) -> list[str]:
    """The band column of suppressed counts, where the specification asks for bands."""
    return ["ANTALL_INTERVALL"] if "ANTALL_INTERVALL" in d.columns else []


def _office_regions(month_pairs: np.ndarray, lvl: np.ndarray, unit: np.ndarray, first: np.ndarray,
                    last: np.ndarray) -> np.ndarray:
    """The region code of each office row: the office's region in the last month of [first, last]
    in which it had persons (-1 for other levels). `month_pairs`: rows (month index, office, region)."""
    mp = month_pairs[np.lexsort((month_pairs[:, 0], month_pairs[:, 1]))]  # by office, then month
    out = np.full(len(lvl), -1, np.int64)
    rows = np.flatnonzero(lvl == 3)
    if not len(rows):
        return out
    o = unit[rows]
    # per office the run of its months; the last month <= last within the office's run
    start = np.searchsorted(mp[:, 1], o, side="left")
    end = np.searchsorted(mp[:, 1], o, side="right")
    key = mp[:, 1].astype(np.int64) * (1 << 32) + mp[:, 0]
    pos = np.searchsorted(key, o.astype(np.int64) * (1 << 32) + last[rows], side="right") - 1
    ok = (pos >= start) & (pos < end) & (mp[np.clip(pos, 0, len(mp) - 1), 0] >= first[rows])
    out[rows[ok]] = mp[pos[ok], 2]
    return out


def _finish(d: pd.DataFrame, spec: ModelSpec, codes: CellCodes, suppressed: tuple) -> pd.DataFrame:
    """Labels, standard errors, intervals, work volume, suppression and shrinkage."""
    d = _labels(d, spec, codes)
    d["ENHET"] = d["UTFALL"].map(UNITS)
    d["ENHET_INDIKATOR"] = d["UTFALL"].map(INDICATOR_UNITS)
    d["faktisk_SE"] = np.sqrt(d["var_y"].clip(lower=0))
    d["forventet_SE"] = np.sqrt(d["model_var"].fillna(0.0))
    # the model's term of the indicator includes minus the covariance with the cell's own
    # residuals, so only the sum is bounded below (national cells over the whole period: 0)
    d["INDIKATOR_SE"] = np.sqrt((d["var_e"].clip(lower=0) + d["model_var_indicator"].fillna(0.0)).clip(lower=0))
    for c in ("faktisk", "forventet", "INDIKATOR"):
        d[f"{c}_KI_NEDRE"] = d[c] - Z95 * d[f"{c}_SE"]
        d[f"{c}_KI_OVRE"] = d[c] + Z95 * d[f"{c}_SE"]
    d["KOV_INDIKATOR_FAKTISK"] = d["cov_ey"]
    d = apply_suppression(d, *suppressed, spec.suppressed_counts, spec.min_persons)
    d = empirical_bayes(d)
    atid = d["UTFALL"].str.startswith("atid")
    # work volume per week: the users in an average month (person-months / months in a period)
    users = d["ANTALL_PERSONMANEDER"].astype(float) / d["MANEDER"] if "MANEDER" in d else d["ANTALL_PERSONER"].astype(float)
    d["EKSTRA_TIMER_PER_UKE"] = np.where(atid, d["INDIKATOR"] * users, np.nan)
    d["ARSVERK"] = d["EKSTRA_TIMER_PER_UKE"] / HOURS_PER_FTE_WEEK
    d = d.drop(columns=["var_y", "var_e", "cov_ey", "model_var", "model_var_indicator"])
    return d.round({c: k for c, k in DECIMALS.items() if c in d.columns})


# Published precision: means, standard errors and intervals to 1e-4 hours a week or
# percentage point, variances to 1e-6, work volume to 0.1 hour and 0.01 full-time equivalent.
# Beyond these the digits are noise (two runs of the same data differ from the 14th), and a
# published table must be the same in every run of the same data.
DECIMALS = {**{c: 4 for c in ("faktisk", "forventet", "INDIKATOR", "faktisk_SE", "forventet_SE", "INDIKATOR_SE",
                             "faktisk_KI_NEDRE", "faktisk_KI_OVRE", "forventet_KI_NEDRE", "forventet_KI_OVRE",
                             "INDIKATOR_KI_NEDRE", "INDIKATOR_KI_OVRE", "INDIKATOR_KRYMPET")},
            "MELLOMVARIANS": 6, "KOV_INDIKATOR_FAKTISK": 6, "EKSTRA_TIMER_PER_UKE": 1, "ARSVERK": 2}
VALUE_COLS = ["ANTALL_PERSONER", "faktisk", "forventet", "INDIKATOR", "ENHET", "ENHET_INDIKATOR",
              "faktisk_SE", "forventet_SE", "INDIKATOR_SE", "faktisk_KI_NEDRE", "faktisk_KI_OVRE",
              "forventet_KI_NEDRE", "forventet_KI_OVRE", "INDIKATOR_KI_NEDRE", "INDIKATOR_KI_OVRE",
              "INDIKATOR_KRYMPET", "MELLOMVARIANS", "EKSTRA_TIMER_PER_UKE", "ARSVERK", "PRIKKET", "PRIKKET_ARSAK"]
KEY_COLS = ["ORG_NIVAA", "ORG_STED", "ORG_STED_ID", "REGION_ID", "UTFALL", "NEDBRYTNING", "GRUPPE", "I_MODELLEN"]


def default_periods(con, spec: ModelSpec, source: str = "person_results") -> list[Period]:
    """Calendar years, the whole period, the last 12 months, and those named in the spec."""
    source = coded_table(source)
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


@dataclass
class Publication:
    """What build_published stored: the monthly and period tables, and the proof that no
    suppressed value follows from them (the witness, checked by audit.py)."""
    monthly: pd.DataFrame
    period: pd.DataFrame
    witness: pd.DataFrame
    protection: Protection
    intervals: pd.DataFrame = None  # internal: the bounded attacker's intervals of the suppressed cells


def _cell_keys(sh: Shape, codes: CellCodes, periods: list[Period], t, u, g) -> pd.DataFrame:
    """The published keys (BEHOLDNINGSMAANED or PERIODE, ORG_NIVAA, ORG_STED_ID, NEDBRYTNING,
    GRUPPE) of cells given as the protection's node indexes."""
    t, u, g = (np.asarray(x, np.int64) for x in (t, u, g))
    R = sh.n_regions
    lvl = np.where(u == 0, 1, np.where(u <= R, 2, 3))
    ids = np.concatenate([["0000"], codes.regions, codes.offices]).astype(object)
    bd = np.searchsorted(sh.group_offsets, g, side="right") - 1
    groups = np.array([v for lab in codes.labels for v in lab], dtype=object)
    month = t < sh.n_months
    mi = sh.m0 + np.where(month, t, 0)
    return pd.DataFrame({
        "BEHOLDNINGSMAANED": np.where(month, _month_dates(mi), None),
        "PERIODE": np.where(month, None, np.array([q.label for q in periods] + [""], dtype=object)[np.where(month, len(periods), t - sh.n_months)]),
        "ORG_NIVAA": lvl, "ORG_STED_ID": ids[np.minimum(u, len(ids) - 1)],
        "NEDBRYTNING": np.array([b for b, _ in codes.breakdowns], dtype=object)[bd], "GRUPPE": groups[g]})


def _by_system(protection: Protection, spec: ModelSpec) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"system": k, "UTFALL": [spec.outcomes[o] for o in m.outcomes]})
                      for k, m in enumerate(protection.masks)])


def witness_frame(protection: Protection, spec: ModelSpec, codes: CellCodes, periods: list[Period]) -> pd.DataFrame:
    """The witness with the published cells' keys: one row per outcome and suppressed cell it
    moves (UTFALL, BEHOLDNINGSMAANED or PERIODE, ORG_NIVAA, ORG_STED_ID, NEDBRYTNING, GRUPPE, VERDI,
    PRIMAER, ROM_BEVIST: every requirement on the cell proved)."""
    w = protection.witness_frame()
    out = _cell_keys(protection.shape, codes, periods, w["t"], w["u"], w["g"])
    out.insert(0, "system", w["system"].to_numpy())
    out["VERDI"], out["PRIMAER"], out["ROM_BEVIST"] = w["value"].to_numpy(), w["primary"].to_numpy(), w["room"].to_numpy()
    return out.merge(_by_system(protection, spec), on="system").drop(columns="system")


def interval_frame(protection: Protection, spec: ModelSpec, codes: CellCodes, periods: list[Period]) -> pd.DataFrame:
    """What the bounded attacker proves about each suppressed cell (internal; `revisjon` shows
    it): UTFALL, the keys, STORRELSE ('antall' for person-months, 'sum' for the number in work or
    the hours), NEDRE and OVRE."""
    c = protection.interval_frame()
    out = _cell_keys(protection.shape, codes, periods, c["t"], c["u"], c["g"])
    out.insert(0, "UTFALL", np.array(spec.outcomes, dtype=object)[c["oi"].to_numpy(np.int64)])
    out["STORRELSE"] = c["quantity"].to_numpy()
    out["NEDRE"], out["OVRE"] = c["lower"].to_numpy(float), c["upper"].to_numpy(float)
    return out


def build_published(con: duckdb.DuckDBPyConnection, spec: ModelSpec, model: IndicatorModel,
                    source: str = "person_results", periods: list[Period] | None = None,
                    carried: Carried | None = None) -> Publication:
    """Create tables `published` (monthly) and `published_period` in the working connection.

    Every aggregation reads the coded person results and groups by their integer codes
    (CellCodes); the labels are attached to the (few hundred thousand) cells at the end.
    `carried`: for a release, the release before it (carry.py): its periods are published again
    and its cells keep their decisions."""
    if periods is None:
        periods = default_periods(con, spec, source) if carried is None else release_periods(con, spec, source, carried)
    codes = CellCodes.read(con, spec, source)
    rows = coded_table(source)
    cell = ", ".join(_key_cols(codes))
    mv = model_variance_cells(con, model, periods, codes, person_results=source)
    mv_keys = ["lvl", "unit", "bd", "grp", "oi"]
    # monthly cells: each person once per cell. Sums per finest cell first (a few million rows
    # at national scale instead of 29 million), then the grouping sets over those; means and
    # variances follow from the sums
    squares = {k: f"sum({EXACT.format(e)})" for k, e in (("syy", "actual_{o} * actual_{o}"),
                                                          ("see", "indicator_{o} * indicator_{o}"),
                                                          ("sey", "indicator_{o} * actual_{o}"))}
    finest = ", ".join(f"{e.format(o=o)} AS {m}_{o}" for o in spec.outcomes for m, e in (OF_MONTHS | squares).items())
    # the finest cells as a table of their own: in one statement with the grouping sets the two
    # aggregations shared DuckDB's memory and spilled (national: 43-50 s against 21 + 8 s)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __fm AS
        SELECT CAST(year(month) * 12 + month(month) - 1 AS INTEGER) AS __mi, {cell}, {finest} FROM {rows} GROUP BY ALL""")
    monthly = _cell_frame(con, codes, f"SELECT __mi, {cell}, {_monthly_moment_cols(spec)} FROM __fm "
                                      f"GROUP BY {_grouping_sets(codes, '__mi')}")
    month_pairs = con.execute("SELECT DISTINCT __mi, __office, __region FROM __fm").df()
    con.execute("DROP TABLE __fm")
    m = _long(monthly, spec, False)
    m = m.merge(mv[mv["period"] == -1].drop(columns="period").rename(columns={"mi": "__mi"}), how="left", on=["__mi"] + mv_keys)
    p = _long(_period_cells(con, codes, periods, spec.outcomes, rows), spec, True)
    p = p.merge(mv[mv["period"] != -1].drop(columns="mi").rename(columns={"period": "__p"}), how="left", on=["__p"] + mv_keys)
    # every published cell, monthly and period, is protected as one linked system (disclosure.py)
    shape_pairs = np.column_stack([month_pairs[c] for c in ("__mi", "__office", "__region")]).astype(np.int64)
    shape = Shape.build(shape_pairs,
                        [(month_index(q.start), month_index(q.end)) for q in periods], len(codes.regions),
                        len(codes.offices), [len(lab) for lab in codes.labels])
    before = None if carried is None else _decisions_before(m, p, spec, codes, periods, carried)
    m_supp, p_supp, protection = protect(m, p, shape, spec.min_persons, spec.protection_share, list(spec.outcomes),
                                         spec.attribute_k, spec.suppressed_counts, before)
    m = m.drop(columns="__pos")
    mp = shape_pairs
    m["__reg"] = _office_regions(mp, m["lvl"].to_numpy(), m["unit"].to_numpy(), m["__mi"].to_numpy(), m["__mi"].to_numpy())
    bounds = np.array([(month_index(q.start), month_index(q.end)) for q in periods], np.int64).reshape(-1, 2)
    p["__reg"] = _office_regions(mp, p["lvl"].to_numpy(), p["unit"].to_numpy(), bounds[p["__p"].to_numpy(), 0],
                                 bounds[p["__p"].to_numpy(), 1])
    mi = m.pop("__mi").to_numpy()
    m.insert(0, "BEHOLDNINGSMAANED", _month_dates(mi))
    m = _finish(m, spec, codes, m_supp)
    m = m[["BEHOLDNINGSMAANED"] + KEY_COLS + VALUE_COLS + ["KOV_INDIKATOR_FAKTISK"] + _bands(m)]
    _store(con, "published", m.sort_values(["ORG_NIVAA", "ORG_STED_ID", "UTFALL", "NEDBRYTNING", "GRUPPE", "BEHOLDNINGSMAANED"]))
    pi = p.pop("__p").to_numpy()
    p.insert(0, "PERIODE", np.array([q.label for q in periods], dtype=object)[pi])
    p.insert(1, "PERIODE_FRA", np.array([_first_day(q.start) for q in periods], dtype=object)[pi])
    p.insert(2, "PERIODE_TIL", np.array([_first_day(q.end) for q in periods], dtype=object)[pi])
    p.insert(3, "MANEDER", np.array([_months(q) for q in periods])[pi])
    p = _finish(p, spec, codes, p_supp)
    p = p[["PERIODE", "PERIODE_FRA", "PERIODE_TIL", "MANEDER"] + KEY_COLS + ["ANTALL_PERSONER", "ANTALL_PERSONMANEDER"]
          + VALUE_COLS[1:] + _bands(p)]
    _store(con, "published_period", p.sort_values(["PERIODE", "ORG_NIVAA", "ORG_STED_ID", "UTFALL", "NEDBRYTNING", "GRUPPE"]))
    witness = witness_frame(protection, spec, codes, periods)
    _store(con, "disclosure_witness", witness)
    intervals = interval_frame(protection, spec, codes, periods)
    _store(con, "disclosure_intervals", intervals)
    return Publication(m, p, witness, protection, intervals)


def _decisions_before(m: pd.DataFrame, p: pd.DataFrame, spec: ModelSpec, codes: CellCodes, periods: list[Period],
                      carried: Carried) -> tuple[np.ndarray, np.ndarray]:
    """Per monthly and period row, what the release before did with the same cell (carry.py)."""
    mi = m["__mi"].to_numpy()
    mk = pd.DataFrame(_key_labels(m, spec, codes)).assign(
        BEHOLDNINGSMAANED=_month_dates(mi),
        ANTALL_PERSONER=m["ANTALL_PERSONER"].to_numpy(), faktisk=m["faktisk"].to_numpy())
    span = np.array([(_first_day(q.start), _first_day(q.end)) for q in periods], dtype=object).reshape(-1, 2)
    pi = p["__p"].to_numpy()
    pk = pd.DataFrame(_key_labels(p, spec, codes)).assign(
        PERIODE_FRA=span[pi, 0], PERIODE_TIL=span[pi, 1], ANTALL_PERSONER=p["ANTALL_PERSONER"].to_numpy(),
        ANTALL_PERSONMANEDER=p["ANTALL_PERSONMANEDER"].to_numpy(), faktisk=p["faktisk"].to_numpy())
    return (decisions(mk, carried.monthly, MONTH_KEY, ["ANTALL_PERSONER", "faktisk"]),
            decisions(pk, carried.period, PERIOD_KEY, ["ANTALL_PERSONER", "ANTALL_PERSONMANEDER", "faktisk"]))


def _period_cells(con, codes: CellCodes, periods: list[Period], outcomes, source: str) -> pd.DataFrame:
    """Moments of every cell of every period, with each person's months clustered: one pass over
    the person-months, each person's months together, summed per person and cell in numpy
    (period_cells.py). One GROUP BY over persons per level x breakdown cost 2 s each over the
    whole period at national scale, and there are 18 per period; a table of per-person yearly
    sums, re-read and sorted by person per period, cost 20-25 s.

    DuckDB reads the table in the order the model's pass wrote it, which keeps each person's
    months together (stream_to_table), and sorts it only for a table that does not (the check
    is whole_clusters'). Spark sorts each partition by person."""
    cs = CellSets(tuple(_cell_sets(codes)), len(periods), {1: 1, 2: len(codes.regions), 3: len(codes.offices)},
                  tuple(len(lab) for lab in codes.labels), tuple(outcomes))
    values = ", ".join(f"{k}_{o}" for o in outcomes for k in ("actual", "expected", "indicator"))
    sql = (f"SELECT person_id AS __cluster, CAST(year(month) * 12 + month(month) - 1 AS INTEGER) AS __mi, "
           f"{', '.join(_key_cols(codes))}, {values} FROM {source}")
    fn = partial(period_moments, cs=cs, months=[(month_index(p.start), month_index(p.end)) for p in periods])
    if is_spark(con):
        acc = reduce_batches(con, sql, fn, cluster="__cluster", order=("__cluster", "__mi"))
    else:
        try:
            with insertion_order(con):
                acc = reduce_batches(con, sql, fn)
        except ClustersApart:
            acc = reduce_batches(con, sql + " ORDER BY __cluster, __mi", fn)
    return period_frame(acc, cs)


def _month_dates(mi: np.ndarray) -> np.ndarray:
    """Month indices (year x 12 + month - 1) as the first day of each month."""
    return pd.to_datetime(pd.DataFrame({"year": mi // 12, "month": mi % 12 + 1, "day": 1})).dt.date.to_numpy()


def _first_day(ym: str) -> dt.date:
    """'YYYY-MM' -> the first day of that month."""
    return dt.date(int(ym[:4]), int(ym[5:7]), 1)


def _months(p: Period) -> int:
    a, b = p.start, p.end
    return (int(b[:4]) - int(a[:4])) * 12 + int(b[5:7]) - int(a[5:7]) + 1


def _store(con, name: str, df: pd.DataFrame) -> None:
    if is_spark(con):  # the published frames stay on the driver, for the results store
        return con.store_frame(name, df)
    con.register("__df", df)
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM __df")
    con.unregister("__df")


def export(con: duckdb.DuckDBPyConnection, query: str, out: Path, formats=("csv", "parquet"), params: list | None = None) -> list[Path]:
    """Write a query result to CSV and/or Parquet (atomically: temp file, then rename). `query`
    holds no values: they are bound from `params`, and so is the file name."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        p = out.with_suffix(f".{fmt}")
        tmp = p.with_name(f".{p.name}.tmp")
        opts = "(FORMAT csv, HEADER true)" if fmt == "csv" else "(FORMAT parquet, COMPRESSION zstd)"
        q = _csv_safe(con, query, params) if fmt == "csv" else query
        con.execute(f"COPY ({q}) TO ? {opts}", [*(params or []), tmp.as_posix()])
        tmp.replace(p)
        written.append(p)
    return written


def _csv_safe(con, query: str, params: list | None) -> str:
    """`query` with its text columns escaped against spreadsheet formulas (office names come
    from the register); Parquet keeps the values as they are."""
    cols = con.execute(f"SELECT * FROM ({query}) LIMIT 0", params or []).description
    text = [c for c, t, *_ in cols if str(t) == "VARCHAR"]
    if not text:
        return query
    repl = ", ".join(f'{escape_sql(c)} AS "{c}"' for c in text)
    return f"SELECT * REPLACE ({repl}) FROM ({query})"


def unit_table(monthly: pd.DataFrame, offices: pd.DataFrame) -> pd.DataFrame:
    """Every published unit with its first and last month, and for an office that closed, the
    office that took over its users (following a chain of mergers to the office that exists
    at the end). Office structure is public; this table lets readers see that a unit closed."""
    m = monthly[monthly["NEDBRYTNING"] == "Alle"]
    u = (m.groupby(["ORG_NIVAA", "ORG_STED_ID"], as_index=False)
         .agg(ORG_STED=("ORG_STED", "last"), REGION_ID=("REGION_ID", "last"),
              FORSTE_MAANED=("BEHOLDNINGSMAANED", "min"), SISTE_MAANED=("BEHOLDNINGSMAANED", "max")))
    last_month = m["BEHOLDNINGSMAANED"].max()
    names = dict(zip(offices["office_id"], offices["office_name"]))
    latest = offices.sort_values("valid_from").groupby("office_id").last()
    successor = {i: r.successor_office_id for i, r in latest.iterrows()
                 if isinstance(r.successor_office_id, str) and r.successor_office_id and pd.notna(r.valid_to)}

    def final(i):
        seen = set()
        while i in successor and i not in seen:
            seen.add(i)
            i = successor[i]
        return i
    closed = (u["ORG_NIVAA"] == 3) & (u["SISTE_MAANED"] < last_month)
    u["NEDLAGT"] = closed
    u["ETTERFOLGER_ID"] = np.where(closed, u["ORG_STED_ID"].map(lambda i: final(i) if i in successor else None), None)
    u["ETTERFOLGER"] = u["ETTERFOLGER_ID"].map(lambda i: names.get(i) if i else None)
    return u.sort_values(["ORG_NIVAA", "ORG_STED"], ignore_index=True)


EXPORT_TABLES = {"maaned": ("published", "BEHOLDNINGSMAANED", ""), "periode": ("published_period", "PERIODE", "_perioder")}


def export_run(db: Path | str, out: Path | str, run_id: str | None = None, tables=("maaned", "periode"),
               formats=("csv", "parquet")) -> list[Path]:
    """The published tables of a run as files, with a manifest: `out`.csv/.parquet (months),
    `out`_perioder.csv/.parquet (years, the last 12 months, the whole period, ...) and
    `out`.manifest.json (the run: id, time, model, package version, input fingerprints, and the
    files' SHA-256 and row counts). The tables come sorted by their keys and rounded to the
    published precision, so two runs of the same data give byte-identical data files; the
    manifest names the run."""
    import json

    from .runs import fingerprint, latest_run_id, run_exists
    out = Path(out)
    con = duckdb.connect(str(db), read_only=True)
    try:
        rid = run_id or latest_run_id(con)
        if rid is None or not run_exists(con, rid):
            raise LookupError(f"fant ingen kjøring {run_id or ''} i {db}".replace("  ", " "))
        run = con.execute("SELECT * FROM runs WHERE run_id = ?", [rid]).df().iloc[0]
        from .versions import release_info
        release = release_info(con, rid)
        files, manifest_files = [], {}
        for t in tables:
            table, time_col, suffix = EXPORT_TABLES[t]
            keys = f"ORG_NIVAA, ORG_STED_ID, UTFALL, NEDBRYTNING, GRUPPE, {time_col}"
            written = export(con, f"SELECT * EXCLUDE (run_id) FROM {table} WHERE run_id = ? ORDER BY {keys}",
                             out.with_name(out.name + suffix), formats, params=[rid])
            rows = con.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", [rid]).fetchall()[0][0]
            for f in written:
                manifest_files[f.name] = {"tabell": t, "rader": int(rows), "sha256": fingerprint(f)}
            files += written
    finally:
        con.close()
    manifest = {"run_id": rid, "created_at": str(run["created_at"]), "model_name": run["model_name"],
                "package_version": run["package_version"], "engine": run["engine"],
                "input_fingerprints": json.loads(run["input_fingerprints"]), "config_toml": run["config_toml"],
                "desimaler": DECIMALS, "filer": manifest_files,
                "publisering": release, "endelig": "ENDELIG: cellens utfallsvindu lukket seg minst to måneder før "
                                                  "uttrekkets arbeidstimer slutter; ellers foreløpig"}
    path = atomic.write_text(out.with_name(out.name + ".manifest.json"), json.dumps(manifest, ensure_ascii=False, indent=2))
    return files + [path]


__all__ = ["build_published", "default_periods", "export", "export_run", "HOURS_PER_FTE_WEEK"]
