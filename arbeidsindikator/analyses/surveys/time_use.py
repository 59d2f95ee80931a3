"""Time use weighted up to national full-time equivalents (Proba 2024, Tables 3-3, 4-1, 4-2).

Each answering employee's logged hours give their FTE's split over work areas and
innsatsgrupper: FTE_e x hours_g / all hours. An answering office stands for its stratum
(weight N_h / offices answering in it), and its answering employees for the office's whole staff
(its FTEs from HR over theirs). The FTEs of every office are known from HR, so the totals are
weighted up to them: in each stratum the estimated share of FTEs on a group times the stratum's
known FTEs (a separate ratio estimator), which removes the variation in office size from the
error. Intervals use t with the design's degrees of freedom (PSUs minus strata), as strata hold
few offices. The design is stratified by office size (plus Nav Vestland and
NOE) with offices as PSUs and a finite population correction; a stratum where every office
answered is not a sample of offices but of time, so there the employees are the PSUs (the
office a stratum of its own). The national FTEs by innsatsgruppe and year are design-based
totals with Taylor-linearised intervals and design effects; the change from one year to the next
is a difference of independent samples; FTEs per 1 000 users divide by the register's users.

The published tables' arithmetic (differences, percentage changes with and without the
innsatsteam, FTEs per 1 000 users) is done by `change_table` and `per_thousand`, so the printed
inputs reproduce the printed results (tests/test_survey.py).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ...data.validate import table_file, validate
from . import design as sv

GROUPS = ("standard", "situasjonsbestemt", "spesielt_tilpasset", "varig_tilpasset", "ikke_fastsatt", "ikke_knyttet")
USER_GROUPS = ("standard", "situasjonsbestemt", "spesielt_tilpasset", "varig_tilpasset")


def _prepare(logs: pd.DataFrame) -> pd.DataFrame:
    d = logs.copy()
    hours = d[[f"hours_{g}" for g in GROUPS] + ["hours_annet"]].sum(axis=1)
    if (hours <= 0).any():
        raise sv.SurveyError(f"{int((hours <= 0).sum())} employees logged no hours; drop them (and report how many)")
    for g in GROUPS:
        d[f"fte_{g}"] = d["employee_fte"] * d[f"hours_{g}"] / hours
    d["fte_oppfolging"] = d[[f"fte_{g}" for g in GROUPS]].sum(axis=1)
    answering = d.groupby(["year", "stratum"])["office_id"].transform("nunique")
    staff = d.groupby(["year", "office_id"])["employee_fte"].transform("sum")
    d["weight"] = d["stratum_offices"] / answering * d["office_fte"] / staff
    d["answering_offices"] = answering
    return d


def fte_estimates(logs: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """National FTEs by year and innsatsgruppe (and all work-oriented follow-up): estimate, se,
    interval, design effect, offices and employees it rests on."""
    d = _prepare(logs)
    rows = []
    for year, g in d.groupby("year"):
        g = g.reset_index(drop=True)
        # an office with one answering employee in a census stratum has no within-office spread
        # to estimate from: it counts as taken with certainty
        des = sv.design(g, "weight", "stratum", "office_id", "stratum_offices", lonely_psu="certainty",
                        psu2="employee_id")
        totals = g.groupby("stratum")["stratum_fte"].first()
        for grp in (*GROUPS, "oppfolging"):
            e = sv.ratio_total(des, f"fte_{grp}", "employee_fte", "stratum", totals)
            lo, hi = e.ci(level, df=des.df)
            rows.append({"year": int(year), "group": grp, "fte": e.estimate, "se": e.se, "ci_low": lo, "ci_high": hi,
                         "deff": e.deff, "offices": int(g["office_id"].nunique()), "employees": len(g)})
    return pd.DataFrame(rows)


def change_table(before: dict, after: dict, team: float = 0.0, team_groups=("standard",)) -> pd.DataFrame:
    """Differences and percentage changes between two years' FTEs, with the innsatsteam's FTEs
    added to the first year for `team_groups` (and without them, as Proba prints in brackets)."""
    rows = []
    for g in before:
        b, a = float(before[g]), float(after[g])
        add = team if g in team_groups else 0.0
        rows.append({"group": g, "before": b, "team": add, "after": a, "difference": a - (b + add),
                     "difference_without_team": a - b, "pct": 100 * (a - (b + add)) / (b + add),
                     "pct_without_team": 100 * (a - b) / b})
    return pd.DataFrame(rows)


def per_thousand(fte: float, users: float) -> float:
    """FTEs per 1 000 users."""
    if users <= 0:
        raise sv.SurveyError("users must be positive")
    return 1000 * fte / users


def register_users(data_dir: Path | str, years) -> pd.DataFrame:
    """Users per innsatsgruppe and year in the register: the monthly stock's mean over the year."""
    p = table_file(Path(data_dir), "stock")
    with duckdb.connect() as con:
        return con.execute("""
            SELECT year(month) AS year, innsatsgruppe::VARCHAR AS "group", count(*) / count(DISTINCT month) AS users
            FROM read_parquet(?) WHERE list_contains(?, year(month)) GROUP BY ALL ORDER BY ALL""",
                           [p.as_posix(), [int(y) for y in years]]).df()


def time_use_tables(data_dir: Path | str, team: float = 0.0) -> dict[str, pd.DataFrame]:
    """Proba's tables from the time-use survey of `data_dir`: FTEs by year and group with
    intervals (3-3 / 4-1), their change (with the innsatsteam added to the first year's standard
    FTEs when `team` is given), and FTEs per 1 000 users (4-2)."""
    data_dir = Path(data_dir)
    if table_file(data_dir, "time_use") is None:
        raise sv.SurveyError(f"{data_dir} har ingen time_use-tabell (tidsbruksundersøkelsen)")
    validate(data_dir, tables=["time_use", "stock", "persons", "offices", "municipalities", "regions"])
    p = table_file(data_dir, "time_use")
    logs = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    est = fte_estimates(logs)
    years = sorted(est["year"].unique())
    changes = pd.DataFrame()
    if len(years) >= 2:
        a, b = years[-2], years[-1]
        ea, eb = est[est["year"] == a].set_index("group"), est[est["year"] == b].set_index("group")
        # the innsatsteam's FTEs count for standard users and so for the total too (the total
        # without them, as Proba prints its "i alt", is difference_without_team)
        changes = change_table(ea["fte"].to_dict(), eb["fte"].to_dict(), team, team_groups=("standard", "oppfolging"))
        se = np.sqrt(ea["se"] ** 2 + eb["se"] ** 2).reindex(changes["group"]).to_numpy()
        changes["se_difference"] = se
        changes["ci_low"] = changes["difference"] - sv.Z95 * se
        changes["ci_high"] = changes["difference"] + sv.Z95 * se
        # the percentage change by the delta method (independent years)
        base = changes["before"] + changes["team"]
        changes["se_pct"] = 100 * np.sqrt((eb["se"].reindex(changes["group"]).to_numpy() / base) ** 2
                                          + (changes["after"] * ea["se"].reindex(changes["group"]).to_numpy() / base ** 2) ** 2)
    users = register_users(data_dir, years)
    per = est[est["group"].isin(USER_GROUPS)].merge(users, on=["year", "group"], how="left")
    for c in ("fte", "se", "ci_low", "ci_high"):
        per[c] = 1000 * per[c] / per["users"]
    return {"fte": est, "change": changes, "per_thousand": per.rename(columns={"fte": "fte_per_1000"})}


__all__ = ["fte_estimates", "change_table", "per_thousand", "register_users", "time_use_tables", "GROUPS"]
