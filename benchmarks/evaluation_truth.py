"""Policy evaluations scored against the truth, over repeated synthetic worlds.

For each seed: a small world (employment observed to 2025-12, so the months after the
programme cuts of July 2024 have outcomes), the indicator run with person-level results, then

- the programme cuts: TWFE of the region x month indicator on the cut dose (weighted by
  persons), CR1 and wild-cluster-bootstrap (Webb) intervals, scored against the TWFE projection
  of the world's true effects on the same cells; the bootstrap test of H0: beta = truth (a true
  null) and its rejection;
- a placebo cut (a true null of zero): the same dose paths moved to random regions and to a
  date in 2019-2021 on the pre-2022 panel, where no policy exists;
- NOE's rollout (pilot regions September 2022, the rest January 2023): the imputation estimator
  on the home-region panel up to December 2022, scored against the true average effect on the
  treated cells it uses.

    python benchmarks/evaluation_truth.py --seeds 100 --out benchmarks/results/evaluation_truth.csv

On medium worlds as the demo has them (employment observed to 2024-12, so jobb3 has three
months after the cuts), without NOE (which needs person-level results), each cut evaluation
also from a pre-period that starts in January 2024 (`programme_cut_2024`), the same year as the
cut, beside the one from January 2022:

    python benchmarks/evaluation_truth.py --scale medium --observed-to 2024-12 --no-noe --seeds 12 \
        --out benchmarks/results/evaluation_truth_medium.csv

Prints the coverage and rejection rates with their simulation standard errors.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from arbeidsindikator.analyses.evaluation.twfe import twfe, wild_bootstrap
from arbeidsindikator.analyses.evaluation.imputation import imputation
from arbeidsindikator.analyses.evaluation.panels import home_region_panel, indicator_panel, with_treatment
from arbeidsindikator.analyses.evaluation.policy_truth import (
    att_truth, noe_adoption, programme_cut_treatment, true_effects, twfe_truth,
)
from arbeidsindikator.data.synth.world import generate_world
from arbeidsindikator.pipeline.run import run_indicator

OUTCOMES = ("jobb3", "atid3")


def _placebo(panel: pd.DataFrame, treatment: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The real cut paths moved to other regions and to a random month in 2019-2021."""
    pre = panel[panel["month"] < "2022-01-01"].copy()
    cuts = treatment.groupby("unit")["kutt"].max()
    units = sorted(pre["unit"].unique())
    fake = dict(zip(units, rng.permutation(cuts.reindex(units).fillna(0.0).to_numpy())))
    start = pd.Timestamp("2019-01-01") + pd.DateOffset(months=int(rng.integers(0, 30)))
    pre["placebo"] = np.where(pre["month"] >= start, pre["unit"].map(fake), 0.0)
    return pre


# the cut evaluations: the pre-period from January 2022 (the demo's configuration), and one from
# January 2024 (the same calendar year as the cut: an office's contribution that shifts between
# years then cannot load on the dose)
CUT_DESIGNS = {"programme_cut": "2022-01-01", "programme_cut_2024": "2024-01-01"}


def _cut_row(p: pd.DataFrame, world: Path, o: str, policy: str, seed: int, B: int) -> dict:
    fit = twfe(p, "indicator", "kutt", weight="persons").table().iloc[0]
    truth = twfe_truth(p, true_effects(world, "programme_cut", o), "kutt")
    wb = wild_bootstrap(p, "indicator", "kutt", weight="persons", B=B, seed=seed)
    at_truth = wild_bootstrap(p, "indicator", "kutt", weight="persons", B=B, seed=seed, null=truth, level=None)
    return {"seed": seed, "policy": policy, "outcome": o, "estimate": fit["estimate"], "truth": truth,
            "cr1_low": fit["ci_low"], "cr1_high": fit["ci_high"], "wb_low": wb.ci_low, "wb_high": wb.ci_high,
            "p_at_truth": at_truth.p}


def one_world(seed: int, work: Path, B: int, scale: str = "small", observed_to: str = "2025-12",
              noe: bool = True) -> list[dict]:
    world, db = work / f"w{seed}", work / f"r{seed}.duckdb"
    generate_world(world, scale=scale, seed=seed, employment_observed_to=observed_to)
    run_indicator(world, db=db, keep_person_level=noe)
    rows = []
    treatment = programme_cut_treatment(world)
    rng = np.random.default_rng(seed)
    for o in OUTCOMES:
        p = indicator_panel(db, o, 2)
        p = with_treatment(p[p["unit"] != "NOE"], treatment, dose="kutt")
        for policy, start in CUT_DESIGNS.items():
            rows.append(_cut_row(p[p["month"] >= start], world, o, policy, seed, B))
        plc = _placebo(p, treatment, rng)
        pb = wild_bootstrap(plc, "indicator", "placebo", weight="persons", B=B, seed=seed, level=None)
        pf = twfe(plc, "indicator", "placebo", weight="persons").table().iloc[0]
        rows.append({"seed": seed, "policy": "placebo", "outcome": o, "estimate": pf["estimate"], "truth": 0.0,
                     "cr1_low": pf["ci_low"], "cr1_high": pf["ci_high"], "p_at_truth": pb.p})
        if not noe:
            continue
        hp = home_region_panel(db, world, o)
        hp = with_treatment(hp[hp["month"] < "2023-01-01"], noe_adoption(hp["unit"].unique()), adoption="start")
        imp = imputation(hp, "indicator", "start", weight="persons")
        att = att_truth(imp.tau, true_effects(world, "noe", o), hp[["unit", "month", "persons"]])
        ov = imp.overall.iloc[0]
        rows.append({"seed": seed, "policy": "noe", "outcome": o, "estimate": ov["estimate"], "truth": att,
                     "cr1_low": ov["ci_low"], "cr1_high": ov["ci_high"]})
    shutil.rmtree(world, ignore_errors=True)
    db.unlink(missing_ok=True)
    return rows


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (policy, o), g in df.groupby(["policy", "outcome"]):
        n = len(g)
        err = g["estimate"] - g["truth"]
        rec = {"policy": policy, "outcome": o, "worlds": n,
               "mean_estimate": g["estimate"].mean(), "mean_truth": g["truth"].mean(),
               "mean_error": err.mean(), "mean_error_se": err.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan}
        cov = ((g["cr1_low"] <= g["truth"]) & (g["truth"] <= g["cr1_high"])).mean()
        rec |= {"coverage_cr1": cov, "coverage_cr1_se": np.sqrt(cov * (1 - cov) / n)}
        if g["wb_low"].notna().any():
            c = ((g["wb_low"] <= g["truth"]) & (g["truth"] <= g["wb_high"])).mean()
            rec |= {"coverage_wb": c, "coverage_wb_se": np.sqrt(c * (1 - c) / n)}
        if g["p_at_truth"].notna().any():
            r = (g["p_at_truth"] < 0.05).mean()
            rec |= {"rejection_true_null": r, "rejection_se": np.sqrt(r * (1 - r) / n)}
        out.append(rec)
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--bootstrap", type=int, default=1999)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/evaluation_truth.csv"))
    ap.add_argument("--scale", default="small", choices=["small", "medium"])
    ap.add_argument("--observed-to", default="2025-12", help="last month of employment data (YYYY-MM)")
    ap.add_argument("--no-noe", action="store_true", help="leave out NOE (saves the person-level results)")
    a = ap.parse_args()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    rows, t0 = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(a.first_seed, a.first_seed + a.seeds):
            rows += one_world(seed, Path(tmp), a.bootstrap, a.scale, a.observed_to, not a.no_noe)
            pd.DataFrame(rows).to_csv(a.out, index=False)  # partial results survive an interruption
            print(f"seed {seed} done, {time.perf_counter() - t0:.0f} s", flush=True)
    s = summarise(pd.DataFrame(rows))
    s.to_csv(a.out.with_name(a.out.stem + "_summary.csv"), index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(s.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
