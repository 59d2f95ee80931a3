"""Validity on the synthetic world: does the indicator measure the true office contribution?

Compares the published office indicator, aggregated to office x year (weighted by persons),
with the world's true contribution (truth/office_month.parquet) over the same person-months,
and with the raw actual rate, which ignores who the users are.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ..pipeline.runs import latest_run_id
from ..pipeline.shrinkage import NOE_ID
from ..pipeline.uncertainty import Z95


def office_year_frame(data_dir: Path | str, db: Path | str, run_id: str | None = None, min_persons: int = 100):
    truth = (Path(data_dir) / "truth" / "office_month.parquet").as_posix()
    con = duckdb.connect(str(db), read_only=True)
    rid = run_id or latest_run_id(con)
    df = con.execute("""
        WITH p AS (SELECT * FROM published WHERE run_id = $rid AND ORG_NIVAA = 3 AND NEDBRYTNING = 'Alle'
                   AND NOT PRIKKET),
        t AS (SELECT office_id, month, true_atid3, true_atid12, true_jobb3, true_jobb12 FROM read_parquet($truth)),
        j AS (SELECT p.*, CASE p.UTFALL WHEN 'atid3' THEN t.true_atid3 WHEN 'atid12' THEN t.true_atid12
                                        WHEN 'jobb3' THEN t.true_jobb3 ELSE t.true_jobb12 END AS truth
              FROM p JOIN t ON t.office_id = p.ORG_STED_ID AND t.month = p.BEHOLDNINGSMAANED)
        SELECT ORG_STED_ID AS office_id, year(BEHOLDNINGSMAANED) AS year, UTFALL AS outcome,
               sum(ANTALL_PERSONER) AS n,
               sum(INDIKATOR * ANTALL_PERSONER) / sum(ANTALL_PERSONER) AS indicator,
               sum(faktisk * ANTALL_PERSONER) / sum(ANTALL_PERSONER) AS actual,
               sum(truth * ANTALL_PERSONER) / sum(ANTALL_PERSONER) AS truth
        FROM j GROUP BY ALL HAVING sum(ANTALL_PERSONER) >= $min_persons""", {"rid": rid, "truth": truth, "min_persons": int(min_persons)}).df()
    con.close()
    # the truth relative to its period average, like the indicator
    for o, g in df.groupby("outcome"):
        centre = np.average(g["truth"], weights=g["n"])
        df.loc[g.index, "truth"] = g["truth"] - centre
    return df


def weighted_correlation(x, y, w):
    """Pearson's correlation with weights (office-years weighted by persons)."""
    mx, my = np.average(x, weights=w), np.average(y, weights=w)
    cov = np.average((x - mx) * (y - my), weights=w)
    return cov / np.sqrt(np.average((x - mx) ** 2, weights=w) * np.average((y - my) ** 2, weights=w))


def office_year_correlations(data_dir, db, run_id=None) -> dict:
    """Per outcome: correlation of the office-year indicator and of the raw actual rate with the truth."""
    df = office_year_frame(data_dir, db, run_id)
    out = {}
    for o, g in df.groupby("outcome"):
        out[o] = {
            "office_years": len(g),
            "r_indicator": float(np.corrcoef(g["indicator"], g["truth"])[0, 1]),
            "r_actual": float(np.corrcoef(g["actual"], g["truth"])[0, 1]),
            "r_indicator_weighted": float(weighted_correlation(g["indicator"].to_numpy(), g["truth"].to_numpy(),
                                                               g["n"].to_numpy())),
            "rmse_indicator": float(np.sqrt(np.average((g["indicator"] - g["truth"]) ** 2, weights=g["n"]))),
        }
    return out


def office_year_period_frame(data_dir: Path | str, db: Path | str, run_id: str | None = None):
    """Office x calendar-year cells of `published_period` with the truth over the same
    person-months (weighted by the monthly published persons), normalised to its period mean."""
    truth = (Path(data_dir) / "truth" / "office_month.parquet").as_posix()
    con = duckdb.connect(str(db), read_only=True)
    rid = run_id or latest_run_id(con)
    df = con.execute("""
        WITH m AS (SELECT p.ORG_STED_ID AS office_id, p.BEHOLDNINGSMAANED AS month, p.UTFALL AS outcome,
                          coalesce(p.ANTALL_PERSONER, t.n_persons) AS n,  -- a suppressed month shows no count
                          CASE p.UTFALL WHEN 'atid3' THEN t.true_atid3 WHEN 'atid12' THEN t.true_atid12
                                        WHEN 'jobb3' THEN t.true_jobb3 ELSE t.true_jobb12 END AS truth
                   FROM published p JOIN read_parquet($truth) t
                     ON t.office_id = p.ORG_STED_ID AND t.month = p.BEHOLDNINGSMAANED
                   WHERE p.run_id = $rid AND p.ORG_NIVAA = 3 AND p.NEDBRYTNING = 'Alle'),
        centre AS (SELECT outcome, sum(truth * n) / sum(n) AS c FROM m GROUP BY 1),
        ty AS (SELECT office_id, CAST(year(month) AS VARCHAR) AS year, outcome, sum(truth * n) / sum(n) AS truth
               FROM m GROUP BY ALL)
        SELECT q.ORG_STED_ID AS office_id, q.PERIODE AS year, q.UTFALL AS outcome, q.ANTALL_PERSONMANEDER AS n,
               q.ANTALL_PERSONER AS persons, q.INDIKATOR AS indicator, q.INDIKATOR_SE AS se,
               q.INDIKATOR_KI_NEDRE AS lo, q.INDIKATOR_KI_OVRE AS hi, q.INDIKATOR_KRYMPET AS shrunk,
               ty.truth - centre.c AS truth
        FROM published_period q JOIN ty ON ty.office_id = q.ORG_STED_ID AND ty.year = q.PERIODE AND ty.outcome = q.UTFALL
        JOIN centre ON centre.outcome = q.UTFALL
        WHERE q.run_id = $rid AND q.ORG_NIVAA = 3 AND q.NEDBRYTNING = 'Alle' AND NOT q.PRIKKET
          AND q.ORG_STED_ID <> $noe AND length(q.PERIODE) = 4""", {"rid": rid, "truth": truth, "noe": NOE_ID}).df()
    con.close()
    return df


def coverage_and_shrinkage(data_dir, db, run_id=None) -> dict:
    """Per outcome: share of office-year 95% intervals covering the truth, and the mean squared
    error of the raw and the shrunken office-year indicator against the truth."""
    df = office_year_period_frame(data_dir, db, run_id)
    out = {}
    for o, g in df.groupby("outcome"):
        covered = (g["lo"] <= g["truth"]) & (g["truth"] <= g["hi"])
        out[o] = {"office_years": len(g), "coverage_95": float(covered.mean()),
                  "mse_raw": float(((g["indicator"] - g["truth"]) ** 2).mean()),
                  "mse_shrunk": float(((g["shrunk"] - g["truth"]) ** 2).mean()),
                  "mean_se": float(g["se"].mean()), "bias": float((g["indicator"] - g["truth"]).mean())}
    return out


def office_month_frame(data_dir: Path | str, db: Path | str, run_id: str | None = None) -> pd.DataFrame:
    """Office x month cells of `published` (unsuppressed, NOE excepted) with the world's true
    office contribution, normalised to its period mean (weighted by persons), as the indicator is."""
    truth = (Path(data_dir) / "truth" / "office_month.parquet").as_posix()
    con = duckdb.connect(str(db), read_only=True)
    rid = run_id or latest_run_id(con)
    df = con.execute("""
        WITH t AS (SELECT * FROM read_parquet($truth)),
        m AS (SELECT p.ORG_STED_ID AS office_id, p.BEHOLDNINGSMAANED AS month, p.UTFALL AS outcome,
                     p.PRIKKET AS suppressed, p.INDIKATOR AS indicator, p.INDIKATOR_SE AS se,
                     coalesce(p.ANTALL_PERSONER, t.n_persons) AS n,
                     CASE p.UTFALL WHEN 'atid3' THEN t.true_atid3 WHEN 'atid12' THEN t.true_atid12
                                   WHEN 'jobb3' THEN t.true_jobb3 ELSE t.true_jobb12 END AS truth
              FROM published p JOIN t ON t.office_id = p.ORG_STED_ID AND t.month = p.BEHOLDNINGSMAANED
              WHERE p.run_id = $rid AND p.ORG_NIVAA = 3 AND p.NEDBRYTNING = 'Alle' AND p.ORG_STED_ID <> $noe)
        SELECT m.* REPLACE (m.truth - sum(m.truth * m.n) OVER (PARTITION BY m.outcome) / sum(m.n) OVER (PARTITION BY m.outcome) AS truth)
        FROM m""", {"truth": truth, "rid": rid, "noe": NOE_ID}).df()
    con.close()
    return df[~df["suppressed"] & (df["se"] > 0)].drop(columns="suppressed")


def coverage(data_dir, db, run_id=None) -> pd.DataFrame:
    """Per outcome, for office-month and office-year cells: how often the 95% interval covers
    the true contribution, and the spread of the z-scores (error / standard error), which is 1
    if the standard errors are the errors' real size."""
    rows = []
    frames = {"kontor-måned": office_month_frame(data_dir, db, run_id),
              "kontor-år": office_year_period_frame(data_dir, db, run_id).rename(columns={"year": "period"})}
    for kind, df in frames.items():
        for o, g in df.groupby("outcome"):
            z = (g["indicator"] - g["truth"]) / g["se"]
            rows.append({"UTFALL": o, "celler": kind, "antall": len(g), "dekning_95": float((z.abs() <= Z95).mean()),
                         "sd_z": float(z.std()), "snitt_z": float(z.mean())})
    return pd.DataFrame(rows).sort_values(["celler", "UTFALL"], ignore_index=True)
