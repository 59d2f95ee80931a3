"""Policy evaluations scored against the synthetic world's truth.

The world writes what each policy truly did, per region and month, in the indicator's units
(`truth/programme_cut_effects.parquet`, `truth/noe_effects.parquet`). An evaluation estimates a
weighted average of those effects, and which average depends on the design:

- two-way fixed effects with a dose estimates the TWFE projection of the true effects on the
  dose: the same regression with the true effect as the outcome (with effects exactly
  proportional to the dose, it is the effect per unit of dose);
- the imputation estimator estimates the weighted mean of the true effects over the treated
  cells it uses.

So the truth an interval should cover is computed on the same cells, with the same weights, as
the estimate. This module builds the treatment tables a Nav evaluator would build from the
extract (the places per region; NOE's rollout dates), reads the truth, and scores.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from ...data.synth.params import NOE_NATIONAL_START, NOE_PILOT_REGIONS, NOE_PILOT_START, month_date
from ...data.validate import table_file, validate
from .twfe import EvaluationError, twfe

POLICIES = {"programme_cut": "programme_cut_effects", "noe": "noe_effects"}


def programme_cut_treatment(data_dir: Path | str, reference_months: int = 6) -> pd.DataFrame:
    """The dose of the programme cuts per region and month, from `programme_places`: the share
    of places a region has lost, 1 - places / places before, where "before" is the region's mean
    over the `reference_months` months before the first month any region's places changed. A
    region that gained places gets a negative dose."""
    data_dir = Path(data_dir)
    if table_file(data_dir, "programme_places") is None:
        raise EvaluationError(f"{data_dir} has no programme_places table (places per region and month)")
    validate(data_dir, tables=["programme_places"])
    with duckdb.connect() as con:
        p = table_file(data_dir, "programme_places")
        rel = con.read_parquet(p.as_posix()) if p.suffix == ".parquet" else con.read_csv(p.as_posix())
        t = rel.project("region_id, month, places").df()
    t["month"] = pd.to_datetime(t["month"])
    t = t.sort_values(["region_id", "month"])
    changed = t.groupby("region_id")["places"].transform(lambda s: s.ne(s.iloc[0]).cumsum() > 0)
    if not changed.any():
        raise EvaluationError("no region's places change over the extract: there is no cut to evaluate")
    first = t.loc[changed, "month"].min()
    ref = t[(t["month"] < first) & (t["month"] >= first - pd.DateOffset(months=reference_months))]
    base = ref.groupby("region_id")["places"].mean()
    if (base <= 0).any():
        raise EvaluationError(f"regions without places before the change: {', '.join(base[base <= 0].index[:3])}")
    t["kutt"] = 1.0 - t["places"] / t["region_id"].map(base)
    return t.rename(columns={"region_id": "unit"})[["unit", "month", "kutt"]].reset_index(drop=True)


def noe_adoption(units) -> pd.DataFrame:
    """NOE's rollout as an adoption table: pilot regions from September 2022, the rest from
    January 2023 (NOE itself, a unit of its own, is left out)."""
    start = {u: month_date(NOE_PILOT_START if u in NOE_PILOT_REGIONS else NOE_NATIONAL_START) for u in units
             if u != "NOE"}
    return pd.DataFrame({"unit": list(start), "start": pd.to_datetime(list(start.values()))})


def true_effects(world_dir: Path | str, policy: str, outcome: str) -> pd.DataFrame:
    """The world's true effect of `policy` per region and month: unit, month, truth, persons."""
    if policy not in POLICIES:
        raise EvaluationError(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    p = Path(world_dir) / "truth" / f"{POLICIES[policy]}.parquet"
    if not p.exists():
        raise EvaluationError(f"{p} does not exist: a world from an older version has no policy truth")
    t = pd.read_parquet(p)
    return pd.DataFrame({"unit": t["region_id"].astype(str), "month": pd.to_datetime(t["month"]),
                         "truth": t[f"true_{outcome}"].to_numpy(float), "persons": t["n_persons"].to_numpy(float)})


def twfe_truth(panel: pd.DataFrame, truth: pd.DataFrame, dose: str, weight: str | None = "persons") -> float:
    """What a TWFE dose coefficient estimates on this panel: the same regression with the true
    effect in place of the outcome (same cells, same weights)."""
    d = panel.merge(truth[["unit", "month", "truth"]], on=["unit", "month"], how="left")
    if d["truth"].isna().any():
        raise EvaluationError(f"{int(d['truth'].isna().sum())} panel cells have no true effect")
    return float(twfe(d, "truth", dose, weight=weight).params[0])


def att_truth(tau: pd.DataFrame, truth: pd.DataFrame, weights: pd.DataFrame | None = None) -> float:
    """What the imputation estimator's overall ATT estimates: the mean true effect over the
    treated cells it used (`tau` of its result: unit, period), weighted as it weighted them."""
    cells = tau.rename(columns={"period": "month"})[["unit", "month"]]
    d = cells.merge(truth, on=["unit", "month"], how="left")
    if d["truth"].isna().any():
        raise EvaluationError(f"{int(d['truth'].isna().sum())} treated cells have no true effect")
    if weights is None:
        return float(d["truth"].mean())
    w = cells.merge(weights, on=["unit", "month"], how="left")["persons"].to_numpy(float)
    return float((w * d["truth"].to_numpy()).sum() / w.sum())


__all__ = ["programme_cut_treatment", "noe_adoption", "true_effects", "twfe_truth", "att_truth", "POLICIES"]
