"""Does the indicator predict what an office does to a user? A forecast-bias test with movers.

A user who moves (and so changes office) takes their unobserved traits along. If the office
indicator measured the office alone, the change in the user's own result (actual minus
expected) when they move would, on average, equal the change in the indicator between the
office they left and the one they joined: a forecast coefficient of 1. If part of the
indicator is who the office's users are, the coefficient is below 1 (Chetty, Friedman and
Rockoff 2014, "Measuring the impacts of teachers I", section V; Angrist, Hull, Pathak and
Walters 2017 for the overidentification test).

For each outcome and every change of office in the person results of a run (`run
--person-level`): the mover's mean result (actual minus expected, minus the national mean of
the month) at the office they joined, minus their mean at the office they left. Only months
whose outcome window lies wholly with one office count: at the old office, months at least
k months before the move (k = the outcome's horizon, 3 or 12), because the outcome of month t
looks at t+1..t+k, and the office of the month before decides what an office does in a month;
at the new office, months from the move to k months before a next move. Changes to or from
the national follow-up unit (NOE) are not moves between offices and are left out, and so are
changes made by a reorganisation (the office left has no users after the change: a merger or
split moves all its users at once, and the new office's indicator would be made of the very
users who moved with the mover, whose unseen traits are like theirs).

The regressor is the change in the office indicator: on each side, the office's mean result
over the mover's own months *from its other users* (leave-out: the mover's own results would
otherwise be on both sides; the mover's months, not the whole period, because an office's
contribution changes between years). A mean over a few months is noisy, and noise in the
regressor pulls the coefficient below 1. So the other users are split in two halves (even and
odd person ids): the change measured on one half is instrumented by the change measured on the
other, whose noise is independent (split-sample IV). The coefficient is that of the noise-free
change, which is what the indicator measures.

The coefficient comes with a 95 % interval clustered two ways, by the office left and the
office joined (Cameron, Gelbach and Miller 2011), with the t distribution's critical value for
the smaller number of clusters. The overidentification test uses the two offices as two
predictors (Angrist et al. test several lotteries the same way): the office joined should have
coefficient 1 and the office left -1; the test asks whether they are equal and opposite, the
omnibus test whether both hold. The coefficient per year of the move shows whether the
indicator forecasts as well in every year.

On a synthetic world the truth gives the coefficient the test would find without outcome
noise: the same regression with each mover's change in their *true* office contribution
(truth/person_month.parquet) as the outcome. On a clean world it is about 1 (a few per cent
above: movers' outcomes respond a little more to an office than the average user's); where
users differ in ways the model cannot see it is below 1, and the movers' estimate should agree
with it.

Everything written is pooled over all movers (coefficients, tests, counts of movers and
offices) or a binned scatter of at least MIN_COUNT movers per point; nothing per person or office.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from scipy import stats

from ..pipeline.outcomes import outcome_kind
from ..pipeline.shrinkage import NOE_ID
from .person_effects import compare_office_measures

MIN_MOVERS = 30  # fewer moves than this: no coefficient (and a year with fewer has no coefficient of its own)
MIN_COUNT = 10  # movers per point of the binned scatter


class MoversError(ValueError):
    """The analysis cannot be run (no person-level results, too few movers)."""


@dataclass
class ForecastTest:
    table: pd.DataFrame  # one row per run x outcome: coefficient, interval, tests, counts, truth
    binned: pd.DataFrame  # run, outcome, bin, movers, mean change in indicator, mean change in result
    by_year: pd.DataFrame  # run, outcome, year, movers, coefficient, se
    office_measures: pd.DataFrame  # run, outcome: Nav's office mean beside person effects (person_effects.py)


def _person_results(con, run_id: str, outcome: str) -> None:
    """TEMP table r: the run's person-months with the result of `outcome` centred on the national
    mean of the month (NULL where the outcome is not observed), in the published unit (a job
    share's 0/1 as per cent, so differences are percentage points), and each row's office run
    number (a run: consecutive stock months of a person at the same office)."""
    o = outcome  # checked against the run's columns by the caller
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE r AS
        WITH x AS (
            SELECT person_id, month, office_id, (actual_{o} - expected_{o}) * $scale AS e
            FROM res.person_results WHERE run_id = $rid),
        c AS (SELECT *, e - avg(e) OVER (PARTITION BY month) AS ec,
                     office_id IS DISTINCT FROM lag(office_id) OVER (PARTITION BY person_id ORDER BY month) AS new_run
              FROM x)
        SELECT person_id, month, office_id, ec AS e,
               sum(new_run::INTEGER) OVER (PARTITION BY person_id ORDER BY month) AS run
        FROM c""", {"rid": run_id, "scale": 100.0 if outcome_kind(o)[0] == "binary" else 1.0})


def _movers(con, k: int) -> pd.DataFrame:
    """One row per move: origin and destination office, the mover's mean result before (months
    at least k before the move) and after (from the move to k months before a next change), and
    each office's mean over the same months without the mover (leave-out): of all its other
    users, and of each half of them (persons with an even or odd id). Leaves TEMP tables `moves`
    and `side` (the mover's months on each side) for the truth's change over the same months."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE moves AS
        WITH runs AS (
            SELECT person_id, run, any_value(office_id) AS office, min(month) AS first
            FROM r GROUP BY ALL)
        SELECT a.person_id, a.run AS run_a, b.run AS run_b, a.office AS origin, b.office AS dest,
               b.first AS moved, n.first AS next_change
        FROM runs a JOIN runs b ON b.person_id = a.person_id AND b.run = a.run + 1
        LEFT JOIN runs n ON n.person_id = a.person_id AND n.run = a.run + 2
        JOIN (SELECT office_id, max(month) AS last FROM r GROUP BY ALL) o ON o.office_id = a.office
        -- the office left still has users after the move: a user moved, not the office
        WHERE a.office <> $noe AND b.office <> $noe AND a.office <> b.office AND o.last >= b.first""",
                {"noe": NOE_ID})
    # the mover's months before (at the office left) and after (at the office joined)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE side AS
        SELECT m.person_id, m.run_a, 'pre' AS side, m.origin AS office, r.month, r.e
        FROM moves m JOIN r ON r.person_id = m.person_id AND r.run = m.run_a
        WHERE r.e IS NOT NULL AND r.month <= m.moved - to_months($k)
        UNION ALL
        SELECT m.person_id, m.run_a, 'post', m.dest, r.month, r.e
        FROM moves m JOIN r ON r.person_id = m.person_id AND r.run = m.run_b
        WHERE r.e IS NOT NULL AND (m.next_change IS NULL OR r.month <= m.next_change - to_months($k))""",
                {"k": int(k)})
    return con.execute("""
        -- the office's users by half (person id even / odd): two independent measurements
        WITH om AS (SELECT office_id, month, person_id % 2 AS half, sum(e) AS s, count(e) AS n
                    FROM r WHERE e IS NOT NULL GROUP BY ALL),
        own AS (SELECT person_id, run_a, side, avg(e) AS e, sum(e) AS s, count(*) AS n FROM side GROUP BY ALL),
        other AS (  -- the office's users in the mover's months, per half, without the mover
            SELECT x.person_id, x.run_a, x.side, om.half,
                   sum(om.s) - CASE WHEN om.half = x.person_id % 2 THEN any_value(own.s) ELSE 0 END AS s,
                   sum(om.n) - CASE WHEN om.half = x.person_id % 2 THEN any_value(own.n) ELSE 0 END AS n
            FROM side x JOIN om ON om.office_id = x.office AND om.month = x.month
            JOIN own ON own.person_id = x.person_id AND own.run_a = x.run_a AND own.side = x.side
            GROUP BY x.person_id, x.run_a, x.side, om.half),
        agg AS (
            SELECT own.person_id, own.run_a, own.side, any_value(own.e) AS e, any_value(own.n) AS n,
                   sum(o.s) / nullif(sum(o.n), 0) AS office_mean,
                   sum(o.s) FILTER (WHERE o.half = 0) / nullif(sum(o.n) FILTER (WHERE o.half = 0), 0) AS office_mean_a,
                   sum(o.s) FILTER (WHERE o.half = 1) / nullif(sum(o.n) FILTER (WHERE o.half = 1), 0) AS office_mean_b
            FROM own JOIN other o ON o.person_id = own.person_id AND o.run_a = own.run_a AND o.side = own.side
            GROUP BY ALL)
        SELECT m.person_id, m.origin, m.dest, year(m.moved) AS year, m.moved,
               post.e - pre.e AS dy, pre.n AS n_pre, post.n AS n_post,
               pre.office_mean AS lo_origin, post.office_mean AS lo_dest,
               pre.office_mean_a AS lo_origin_a, post.office_mean_a AS lo_dest_a,
               pre.office_mean_b AS lo_origin_b, post.office_mean_b AS lo_dest_b
        FROM moves m
        JOIN agg pre ON pre.person_id = m.person_id AND pre.run_a = m.run_a AND pre.side = 'pre'
        JOIN agg post ON post.person_id = m.person_id AND post.run_a = m.run_a AND post.side = 'post'
        WHERE pre.office_mean_a IS NOT NULL AND pre.office_mean_b IS NOT NULL
          AND post.office_mean_a IS NOT NULL AND post.office_mean_b IS NOT NULL
        ORDER BY m.person_id, m.moved""").df()


def _iv(y: np.ndarray, X: np.ndarray, Z: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Instrumental variables (just identified; Z = X is OLS): the coefficients and their
    covariance clustered two ways (Cameron, Gelbach and Miller 2011: V_1 + V_2 - V_12, each with
    the small-sample factor G/(G-1) x (N-1)/(N-K) that Stata, statsmodels and pyfixest use).
    Written here because the runtime has no statsmodels; the tests compare it with statsmodels
    and pyfixest."""
    N, K = X.shape
    bread = np.linalg.inv(Z.T @ X)
    b = bread @ (Z.T @ y)
    score = Z * (y - X @ b)[:, None]

    def meat(g: np.ndarray) -> np.ndarray:
        codes, G = pd.factorize(g)[0], len(np.unique(g))
        S = np.zeros((G, K))
        np.add.at(S, codes, score)
        return (G / max(G - 1, 1)) * (N - 1) / (N - K) * (S.T @ S)

    pair = groups[:, 0].astype(np.int64) * (int(groups[:, 1].max()) + 1) + groups[:, 1]
    M = meat(groups[:, 0]) + meat(groups[:, 1]) - meat(pair)
    return b, _psd(bread @ M @ bread.T)


def _psd(V: np.ndarray) -> np.ndarray:
    """A two-way clustered covariance (V_origin + V_dest - V_both) need not be positive
    semi-definite with many parameters; Cameron, Gelbach and Miller (2011, section 2.3) set its
    negative eigenvalues to zero."""
    w, U = np.linalg.eigh((V + V.T) / 2)
    return (U * np.clip(w, 0, None)) @ U.T


def _forecast(y: np.ndarray, m: pd.DataFrame, groups: np.ndarray) -> tuple[float, float]:
    """The forecast coefficient of y on the change in the indicator measured on one half of the
    offices' other users, instrumented by the change measured on the other half: their noises
    are independent, so the coefficient is that of the noise-free change (split-sample IV)."""
    one = np.ones(len(m))
    X = np.column_stack([one, m["dva_a"]])
    Z = np.column_stack([one, m["dva_b"]])
    b, V = _iv(y, X, Z, groups)
    return float(b[1]), float(np.sqrt(V[1, 1]))


def _by_year(m: pd.DataFrame, groups: np.ndarray) -> pd.DataFrame:
    """One coefficient per year of the move (years with at least MIN_MOVERS moves): does the
    indicator forecast as well in every year? Descriptive: with a few dozen offices a joint test
    of many clustered coefficients would reject far too often."""
    rows = []
    for y, n in m["year"].value_counts().sort_index().items():
        keep = (m["year"] == y).to_numpy()
        if n >= MIN_MOVERS and len(np.unique(groups[keep, 0])) > 2 and len(np.unique(groups[keep, 1])) > 2:
            b, se = _forecast(m.loc[keep, "dy"].to_numpy(), m[keep], groups[keep])
            rows.append({"year": int(y), "movers": int(n), "coefficient": b, "se": se})
    return pd.DataFrame(rows, columns=["year", "movers", "coefficient", "se"])


def _two_offices(m: pd.DataFrame, groups: np.ndarray, df: int) -> dict:
    """The overidentification test: the office joined and the office left as two predictors
    (each instrumented by the other half's measurement). If the indicator forecasts what an
    office does, the new office's coefficient is 1 and the old one's -1; the test asks that they
    are equal and opposite (1 restriction, t with the clusters' df), the omnibus test that both
    hold (2 restrictions, F(2, df))."""
    one = np.ones(len(m))
    X = np.column_stack([one, m["lo_dest_a"], m["lo_origin_a"]])
    Z = np.column_stack([one, m["lo_dest_b"], m["lo_origin_b"]])
    b, V = _iv(m["dy"].to_numpy(), X, Z, groups)
    b, V = b[1:], V[1:, 1:]
    r = np.array([1.0, 1.0])
    t_eq = float((r @ b) / np.sqrt(max(r @ V @ r, 1e-300)))
    dev = b - np.array([1.0, -1.0])
    f_all = float(dev @ np.linalg.pinv(V) @ dev / 2)
    return {"coefficient_joined": float(b[0]), "coefficient_left": float(b[1]),
            "overid_t": t_eq, "overid_p": float(2 * stats.t.sf(abs(t_eq), df)),
            "omnibus_f": f_all, "omnibus_p": float(stats.f.sf(f_all, 2, df))}


def _binned(m: pd.DataFrame) -> pd.DataFrame:
    """The binned scatter: movers in equal-sized bins of the change in the indicator as the
    instrument predicts it (the first stage), so that the slope through the bins is the
    coefficient."""
    bins = int(min(20, len(m) // (2 * MIN_COUNT)))
    if bins < 2:
        return pd.DataFrame(columns=["bin", "movers", "dva", "dy"])
    slope, icpt = np.polyfit(m["dva_b"], m["dva_a"], 1)
    x = icpt + slope * m["dva_b"]
    q = pd.qcut(x.rank(method="first"), bins, labels=False)
    return (m.assign(bin=q, dva=x).groupby("bin").agg(movers=("dy", "size"), dva=("dva", "mean"), dy=("dy", "mean"))
            .reset_index())


def forecast_test_outcome(con, run_id: str, outcome: str, truth: Path | None = None) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """The forecast-bias test of one run and outcome (see the module's docstring)."""
    k = outcome_kind(outcome)[1] or 12  # an outcome of another name: the longest window of Nav's outcomes
    _person_results(con, run_id, outcome)
    m = _movers(con, k)
    row = {"run_id": run_id, "outcome": outcome, "horizon": k, "movers": len(m),
           "persons": int(m["person_id"].nunique()) if len(m) else 0,
           "offices_left": int(m["origin"].nunique()) if len(m) else 0,
           "offices_joined": int(m["dest"].nunique()) if len(m) else 0}
    if len(m) < MIN_MOVERS:  # no coefficient; a count under MIN_COUNT is not shown either
        if len(m) < MIN_COUNT:
            row |= {"movers": None, "persons": None}
        return row, pd.DataFrame(), pd.DataFrame()
    m["dva"] = m["lo_dest"] - m["lo_origin"]
    m["dva_a"] = m["lo_dest_a"] - m["lo_origin_a"]
    m["dva_b"] = m["lo_dest_b"] - m["lo_origin_b"]
    groups = np.column_stack([pd.factorize(m["origin"])[0], pd.factorize(m["dest"])[0]])
    b, se = _forecast(m["dy"].to_numpy(), m, groups)
    # few clusters: the t distribution with (smallest number of clusters - 1) df, as Stata and pyfixest
    df = max(min(row["offices_left"], row["offices_joined"]) - 1, 1)
    crit = float(stats.t.ppf(0.975, df))
    row |= {"coefficient": b, "se": se, "ci_low": b - crit * se, "ci_high": b + crit * se,
            "p_equals_1": float(2 * stats.t.sf(abs(b - 1) / se, df)),
            "sd_change_indicator": float(m["dva"].std()),
            # how much of the spread in a half's change is signal: the correlation of the halves
            "reliability_half": float(np.corrcoef(m["dva_a"], m["dva_b"])[0, 1]),
            "months_before": float(m["n_pre"].mean()), "months_after": float(m["n_post"].mean())}
    row |= _two_offices(m, groups, df)
    years = _by_year(m, groups)
    if truth is not None:
        dtrue = _truth_for(con, m, truth, outcome)
        ok = np.isfinite(dtrue)
        tb, tse = _forecast(dtrue[ok], m[ok], groups[ok])
        row |= {"truth_coefficient": tb, "truth_se": tse, "truth_in_interval": bool(row["ci_low"] <= tb <= row["ci_high"])}
    binned = _binned(m).assign(run_id=run_id, outcome=outcome)
    return row, binned, years.assign(run_id=run_id, outcome=outcome)


def _truth_for(con, m: pd.DataFrame, truth: Path, outcome: str) -> np.ndarray:
    """Each mover's change in their true office contribution, over exactly the months of `dy`
    (TEMP table `side` from `_movers`; the truth, like `r`, holds job shares in per cent)."""
    d = con.execute(f"""
        SELECT x.person_id, m.moved,
               avg(p.expected_with_office_{outcome} - p.expected_average_office_{outcome}) FILTER (WHERE x.side = 'post')
             - avg(p.expected_with_office_{outcome} - p.expected_average_office_{outcome}) FILTER (WHERE x.side = 'pre')
               AS dtrue
        FROM side x JOIN moves m ON m.person_id = x.person_id AND m.run_a = x.run_a
        JOIN read_parquet($p) p ON p.person_id = x.person_id AND p.month = x.month
        GROUP BY ALL""", {"p": truth.as_posix()}).df()
    out = m[["person_id", "moved"]].merge(d, on=["person_id", "moved"], how="left")
    return out["dtrue"].to_numpy(float)


def forecast_test(db: Path | str, run_ids: list[str] | None = None, data_dir: Path | str | None = None,
                  outcomes: list[str] | None = None) -> ForecastTest:
    """The forecast-bias test for each run (default: the newest run stored on person level) and
    outcome. `data_dir`: a synthetic world; its truth adds the truth's own coefficient."""
    db = Path(db)
    if not db.exists():
        raise MoversError(f"resultatbasen {db} finnes ikke")
    con = duckdb.connect()
    try:
        con.execute("ATTACH ? AS res (READ_ONLY)", [db.as_posix()])
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'res'").fetchall()}
        if "person_results" not in tables:
            raise MoversError("resultatbasen har ingen kjøring lagret på personnivå (kjør «arbeidsindikator run "
                              "--person-level»)")
        stored = [r[0] for r in con.execute("SELECT run_id FROM res.person_results GROUP BY run_id "
                                            "ORDER BY run_id").fetchall()]
        runs = run_ids or stored[-1:]
        missing = [r for r in runs if r not in stored]
        if missing:
            raise MoversError(f"kjøringen {', '.join(missing)} er ikke lagret på personnivå")
        cols = [r[0] for r in con.execute("DESCRIBE res.person_results").fetchall()]
        # outcome names go into SQL as column names: only the run's own, and only plain words
        known = [c.removeprefix("actual_") for c in cols if re.fullmatch(r"actual_[a-z0-9_]+", c)]
        chosen = outcomes or known
        bad = [o for o in chosen if o not in known]
        if bad:
            raise MoversError(f"utfallet {', '.join(bad)} finnes ikke i personresultatene")
        truth = Path(data_dir) / "truth" / "person_month.parquet" if data_dir else None
        truth = truth if truth is not None and truth.exists() else None
        office_truth = truth.with_name("office_month.parquet") if truth is not None else None
        rows, binned, years, measures = [], [], [], []
        for rid in runs:
            for o in chosen:
                row, b, y = forecast_test_outcome(con, rid, o, truth)
                rows.append(row)
                binned.append(b)
                years.append(y)
                measures.append({"run_id": rid} | compare_office_measures(con, o, office_truth))
    finally:
        con.close()
    table = pd.DataFrame(rows)
    if table.get("coefficient") is None or table["coefficient"].isna().all():
        raise MoversError(f"for få som bytter kontor (under {MIN_MOVERS}) til å prøve indikatoren")
    return ForecastTest(table, pd.concat(binned, ignore_index=True), pd.concat(years, ignore_index=True),
                        pd.DataFrame(measures))


__all__ = ["ForecastTest", "MIN_COUNT", "MIN_MOVERS", "MoversError", "forecast_test", "forecast_test_outcome"]
