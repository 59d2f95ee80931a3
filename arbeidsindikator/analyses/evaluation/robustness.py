"""Robustness of a two-way fixed-effects evaluation with few units: randomization inference
that permutes whole treatment paths across units, placebo adoption dates, leave-one-unit-out,
and the minimum detectable effect.

Randomization inference: the observed treatment paths (each unit's dose over time) are dealt
to the units at random; the coefficient's t-statistic in each reassignment gives its
distribution under the sharp null of no effect anywhere. Whole paths keep the timing and
size of doses as they were, which is what a permutation of single cells cannot do."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

from .twfe import EvaluationError, _Design, _period_index, at_least, twfe


def randomization_inference(panel: pd.DataFrame, y: str, dose: str, unit: str = "unit", time: str = "month",
                            weight: str | None = None, R: int = 9999, seed: int = 0,
                            paths: pd.DataFrame | None = None) -> dict:
    """Two-sided p-value of the CR1 t-statistic of `dose` under reassignment of whole dose
    paths across units (all permutations when there are at most R of them). `paths`: the
    treatment table (unit, time, dose) when the panel lacks cells (suppressed ones), so that
    every unit's whole path is known."""
    units = pd.Index(pd.unique(panel[unit]))
    source = panel if paths is None else paths
    wide = source.pivot_table(index=unit, columns=time, values=dose, aggfunc="first").reindex(units)
    wide = wide.reindex(columns=pd.Index(pd.unique(panel[time])).sort_values())
    if wide.isna().any().any():
        raise EvaluationError("randomization inference needs every unit's dose in every period of the panel: "
                              "give the treatment table as `paths`")
    paths = wide.to_numpy()
    row = units.get_indexer(panel[unit])
    col = wide.columns.get_indexer(panel[time])
    # the outcome, weights and fixed effects are the same in every reassignment: set them up
    # once and partial out only the reassigned dose
    d = _Design(panel, y, [dose], unit, time, weight, None)
    row, col = row[d.kept], col[d.kept]

    def t_of(order: np.ndarray) -> float:
        d.X = d.resid(paths[order[row], col][:, None])
        b, cov = d.fit()
        return float(b[0] / np.sqrt(cov[0, 0]))

    n = len(units)
    t_obs = t_of(np.arange(n))
    if math.factorial(n) <= R:
        orders = [np.array(p) for p in itertools.permutations(range(n))]
        exact = True
    else:
        rng = np.random.default_rng(seed)
        orders = [rng.permutation(n) for _ in range(R)]
        exact = False
    ts = np.array([t_of(o) for o in orders])
    return {"term": dose, "t": t_obs, "p": float(np.mean(at_least(np.abs(ts), abs(t_obs)))), "draws": len(ts),
            "exact": exact, "method": "randomisation inference (whole paths)"}


def leave_one_out(panel: pd.DataFrame, y: str, dose: str, unit: str = "unit", time: str = "month",
                  weight: str | None = None) -> pd.DataFrame:
    """The estimate with each unit left out: is the result carried by one region?"""
    rows = []
    for u in pd.unique(panel[unit]):
        r = twfe(panel[panel[unit] != u], y, dose, unit, time, weight)
        rows.append({"left_out": u, "estimate": r.params[0], "se": r.bse[0]})
    return pd.DataFrame(rows)


def placebo_dates(panel: pd.DataFrame, y: str, dose: str, shifts: list[int], unit: str = "unit",
                  time: str = "month", weight: str | None = None) -> pd.DataFrame:
    """Pretend the policy came `s` periods earlier: each unit's dose path moved back by s
    periods, estimated only on the periods before any unit was treated. An effect there is a
    warning (anticipation or diverging trends), not a finding."""
    t = _period_index(panel[time])
    first = t[panel[dose].to_numpy(float) != 0].min() if (panel[dose] != 0).any() else None
    if first is None:
        raise EvaluationError(f"{dose} is 0 everywhere: there is no adoption to move")
    rows = []
    for s in shifts:
        d = panel.copy()
        d["__t"] = t
        moved = d[["__t", unit, dose]].assign(__t=lambda x: x["__t"] - s)
        d = d.drop(columns=dose).merge(moved, on=["__t", unit], how="left").fillna({dose: 0.0})
        d = d[d["__t"] < first]
        if d[dose].abs().sum() == 0:
            rows.append({"shift": s, "estimate": np.nan, "se": np.nan, "p": np.nan, "note": "no placebo dose before the policy"})
            continue
        r = twfe(d, y, dose, unit, time, weight)
        tab = r.table()
        rows.append({"shift": s, "estimate": r.params[0], "se": r.bse[0], "p": float(tab["p"][0]), "note": ""})
    return pd.DataFrame(rows)


def shorter_pre_periods(panel: pd.DataFrame, y: str, term: str, lengths: tuple[int, ...] = (24, 12, 6),
                        unit: str = "unit", time: str = "month", weight: str | None = None) -> pd.DataFrame:
    """The estimate again with the panel starting `L` periods before the first treated period,
    for each L shorter than the panel's own pre-period, beside the estimate on the whole panel.

    Why: with few periods after the policy, TWFE compares them with the mean of every period
    before it, so a unit's level that shifts between years (a new leader, staffing, a shock
    that lasts) loads on the treatment when it shifts with the treated units. A pre-period
    close to the policy is less exposed to that and less precise. Under parallel trends both
    estimate the same thing and the long one is the more efficient, so their difference has a
    variance of about se_short^2 - se_long^2 (a Hausman comparison); `p_difference` tests it."""
    t = _period_index(panel[time])
    treated = panel[term].to_numpy(float) != 0
    if not treated.any():
        raise EvaluationError(f"{term} is 0 everywhere: there is no treated period")
    first = int(t[treated].min())
    full = twfe(panel, y, term, unit, time, weight)
    est, se = float(full.params[0]), float(full.bse[0])
    def label(v):  # a month as YYYY-MM-DD, any other period as it is
        return str(pd.Timestamp(v).date()) if isinstance(v, (pd.Timestamp, np.datetime64)) else str(v)
    rows = [{"pre_periods": int(first - t.min()), "first_period": label(panel[time].min()),
             "estimate": est, "se": se, "difference": 0.0, "p_difference": np.nan}]
    for L in sorted(set(lengths), reverse=True):
        if L >= first - t.min() or L < 1:
            continue
        d = panel[t >= first - L]
        r = twfe(d, y, term, unit, time, weight)
        e, s_ = float(r.params[0]), float(r.bse[0])
        var = s_ ** 2 - se ** 2
        p = float(2 * stats.norm.sf(abs(e - est) / math.sqrt(var))) if var > 0 else np.nan
        rows.append({"pre_periods": L, "first_period": label(d[time].min()), "estimate": e, "se": s_,
                     "difference": e - est, "p_difference": p})
    return pd.DataFrame(rows)


def minimum_detectable_effect(se: float, n_clusters: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true effect a two-sided test at `alpha` detects with `power`, given the
    estimate's standard error (t with G-1 degrees of freedom)."""
    df = n_clusters - 1
    return float((stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * se)


__all__ = ["leave_one_out", "minimum_detectable_effect", "placebo_dates", "randomization_inference"]
