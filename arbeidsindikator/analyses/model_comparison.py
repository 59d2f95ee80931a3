"""A model laboratory: several model specifications fitted on the same worlds, side by side.

Each specification is run through the whole pipeline (`run_indicator`) on each world, and its
published cells are scored by the measures Nav uses to judge a model change (the candidate
models 78-81 in navikt/arbind-arbeidsmarked, quarto/modellendringer):

- **tightness**: the weighted correlation, over office-years, of the indicator with the local
  labour market's tightness (new vacancies per registered unemployed, V/U, of the users'
  commuting regions). The indicator should measure the office, not the labour market, so lower
  |r| is better. Nav uses the employer survey's tightness; the world has V/U.
- **rank stability**: the Spearman correlation of the offices' yearly indicators between
  consecutive years, averaged over the pairs (higher: steadier).
- **volatility**: the mean absolute change of an office's monthly indicator from one month
  to the next, weighted by persons (lower: steadier).
- **national SD**: the standard deviation over months of the national indicator.

On a synthetic world the truth adds what Nav cannot see: the correlation of the office-year
indicator with the true office contribution, its error (RMSE), and how often the office-month
95 % intervals cover the truth (`validity.py`). Over several worlds each measure is reported
as a mean with its spread between worlds.

Everything is computed from the published cells (suppressed cells left out) and the
extract's stock and labour market: aggregates only.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from scipy import stats

from ..data.validate import register_tables
from ..pipeline.config import ModelSpec, load_spec
from ..pipeline.run import run_indicator
from ..pipeline.runs import latest_run_id
from ..pipeline.shrinkage import NOE_ID
from .validity import coverage, office_year_correlations, weighted_correlation

# the measures, in the report's order: (column, Norwegian label, which direction is better)
MEASURES = (
    ("tightness_r", "korrelasjon med stramhet (V/U)", "nær 0"),
    ("rank_stability", "rangstabilitet mellom år (Spearman)", "høy"),
    ("volatility", "månedlig volatilitet (snitt |endring|)", "lav"),
    ("national_sd", "SD i nasjonal indikator", "lav"),
    ("truth_r", "korrelasjon med sant kontorbidrag (kontor-år)", "høy"),
    ("truth_rmse", "feil mot sant kontorbidrag (RMSE, kontor-år)", "lav"),
    ("coverage", "dekning av 95 %-intervall (kontor-måned)", "95 %"),
)


class ComparisonError(ValueError):
    """A comparison that cannot be made (no specification, a missing world)."""


@dataclass
class Comparison:
    per_world: pd.DataFrame  # spec, world, outcome, one column per measure
    summary: pd.DataFrame  # spec, outcome, mean and SD between worlds per measure
    specs: dict[str, str] = field(default_factory=dict)  # spec name -> description


def _office_frames(db: Path, data_dir: Path, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The published office-month cells (not suppressed, NOE left out) with each office-month's
    tightness (V/U of its users' commuting regions, weighted by users), and the national series."""
    con = duckdb.connect()
    try:
        con.execute("ATTACH ? AS res (READ_ONLY)", [db.as_posix()])
        register_tables(con, data_dir, ["stock", "municipalities", "labour_market"])
        con.execute("""CREATE TEMP TABLE tight AS
            SELECT s.office_id, s.month, avg(l.vacancy_rate / l.unemployment_rate) AS tightness
            FROM stock s
            JOIN municipalities m ON m.municipality_id = s.municipality_id AND s.month >= m.valid_from
                 AND (m.valid_to IS NULL OR s.month <= m.valid_to)
            JOIN labour_market l ON l.commuting_region_id = m.commuting_region_id AND l.month = s.month
            GROUP BY ALL""")
        offices = con.execute("""
            SELECT p.ORG_STED_ID AS office, p.BEHOLDNINGSMAANED AS month, p.UTFALL AS outcome,
                   p.INDIKATOR AS indicator, p.ANTALL_PERSONER AS n, t.tightness
            FROM res.published p LEFT JOIN tight t ON t.office_id = p.ORG_STED_ID AND t.month = p.BEHOLDNINGSMAANED
            WHERE p.run_id = ? AND p.ORG_NIVAA = 3 AND p.NEDBRYTNING = 'Alle' AND NOT p.PRIKKET
                  AND p.ORG_STED_ID <> ?""", [run_id, NOE_ID]).df()
        national = con.execute("""
            SELECT BEHOLDNINGSMAANED AS month, UTFALL AS outcome, INDIKATOR AS indicator FROM res.published
            WHERE run_id = ? AND ORG_NIVAA = 1 AND NEDBRYTNING = 'Alle' AND NOT PRIKKET""", [run_id]).df()
    finally:
        con.close()
    offices["month"] = pd.to_datetime(offices["month"])
    return offices, national


def _wcorr(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """validity's weighted correlation over the rows where all three are known."""
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(w)
    return float(weighted_correlation(x[ok], y[ok], w[ok])) if ok.sum() >= 3 else float("nan")


def nav_measures(offices: pd.DataFrame, national: pd.DataFrame) -> pd.DataFrame:
    """Nav's acceptance measures per outcome from the office-month and national cells."""
    rows = []
    for o, g in offices.groupby("outcome"):
        g = g.assign(year=g["month"].dt.year, wi=g["indicator"] * g["n"], wt=g["tightness"] * g["n"])
        y = g.groupby(["office", "year"]).agg(n=("n", "sum"), wi=("wi", "sum"), wt=("wt", "sum")).reset_index()
        y["indicator"], y["tightness"] = y["wi"] / y["n"], y["wt"] / y["n"]
        ranks = []
        for a in sorted(y["year"].unique())[:-1]:
            pair = y[y["year"] == a].merge(y[y["year"] == a + 1], on="office", suffixes=("_a", "_b"))
            if len(pair) >= 3:
                ranks.append(stats.spearmanr(pair["indicator_a"], pair["indicator_b"]).statistic)
        g = g.sort_values(["office", "month"])
        step = g.groupby("office")["month"].diff().dt.days.between(27, 32)  # consecutive published months
        change = g.groupby("office")["indicator"].diff().abs()
        vol = float(np.average(change[step], weights=g.loc[step, "n"])) if step.any() else float("nan")
        nat = national.loc[national["outcome"] == o, "indicator"].to_numpy(float)
        rows.append({"outcome": o, "tightness_r": _wcorr(y["indicator"].to_numpy(float), y["tightness"].to_numpy(float),
                                                          y["n"].to_numpy(float)),
                     "rank_stability": float(np.mean(ranks)) if ranks else float("nan"), "volatility": vol,
                     "national_sd": float(np.std(nat, ddof=1)) if len(nat) > 1 else float("nan")})
    return pd.DataFrame(rows)


def truth_measures(data_dir: Path, db: Path, run_id: str) -> pd.DataFrame:
    """The truth measures per outcome (empty when the world has no truth)."""
    if not (data_dir / "truth" / "office_month.parquet").exists():
        return pd.DataFrame({"outcome": pd.Series(dtype=str)})
    r = office_year_correlations(data_dir, db, run_id)
    cov = coverage(data_dir, db, run_id)
    cov = cov[cov["celler"] == "kontor-måned"].set_index("UTFALL")["dekning_95"]
    return pd.DataFrame([{"outcome": o, "truth_r": v["r_indicator"], "truth_rmse": v["rmse_indicator"],
                          "coverage": float(cov.get(o, np.nan))} for o, v in r.items()])


def compare_models(specs: list[Path | str], worlds: list[Path | str], work: Path | str | None = None,
                   progress=None) -> Comparison:
    """Fit every specification on every world and score them (module docstring). `work` keeps
    the results stores (one per specification and world); by default they are temporary."""
    if not specs:
        raise ComparisonError("ingen modellspesifikasjoner å sammenligne")
    loaded: list[tuple[str, ModelSpec, Path]] = []
    for p in specs:
        s = load_spec(p)
        if s.name in {n for n, _, _ in loaded}:
            raise ComparisonError(f"to spesifikasjoner heter «{s.name}»: gi dem ulike navn ([model] name)")
        loaded.append((s.name, s, Path(p)))
    worlds = [Path(w) for w in worlds]
    for w in worlds:
        if not w.is_dir():
            raise ComparisonError(f"datamappen {w} finnes ikke")
    say = progress or (lambda text: None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(work) if work else Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        for wi, w in enumerate(worlds):
            for name, spec, path in loaded:
                say(f"{name} på {w.name}")
                db = base / f"{name}-{wi}.duckdb"
                db.unlink(missing_ok=True)
                run_indicator(w, config=path, db=db)
                con = duckdb.connect(db.as_posix(), read_only=True)
                try:
                    rid = latest_run_id(con)
                finally:
                    con.close()
                offices, national = _office_frames(db, w, rid)
                m = nav_measures(offices, national).merge(truth_measures(w, db, rid), on="outcome", how="left")
                rows.append(m.assign(spec=name, world=w.name))
    per_world = pd.concat(rows, ignore_index=True)
    cols = [c for c, _, _ in MEASURES if c in per_world]
    order = {o: i for i, o in enumerate(("atid3", "atid12", "jobb3", "jobb12"))}  # the outcomes as everywhere else
    per_world = per_world[["spec", "world", "outcome"] + cols].sort_values(
        "outcome", key=lambda x: x.map(order).fillna(len(order)), kind="stable")
    agg = per_world.groupby(["spec", "outcome"], sort=False)[cols]
    summary = agg.mean().join(agg.std(ddof=1), rsuffix="_sd").reset_index()
    summary.insert(2, "worlds", len(worlds))
    return Comparison(per_world, summary, {n: s.description for n, s, _ in loaded})


__all__ = ["Comparison", "ComparisonError", "MEASURES", "compare_models", "nav_measures", "truth_measures"]
