"""Staggered adoption done right: the imputation estimator of Borusyak, Jaravel and Spiess
(2024). Unit and period effects are fitted on the untreated observations only (never treated,
or before adoption), each treated observation's untreated outcome is imputed from them, and
the treatment effects tau_it = y_it - y^_it(0) are averaged: overall (the average effect on the
treated, weighted by `weight` if given) and by event time. Unlike two-way fixed effects with
staggered timing it never uses already-treated units as controls, so effects that change with
time since adoption do not bias it (no "forbidden comparisons").

Standard errors: BJS's conservative cluster-robust variance (their Theorem 3). The estimate is
linear in the outcomes, tau^ = sum v_it y_it; the variance is sum over clusters of
(sum_it v_it e_it)^2, with e_it the untreated observations' residuals and, for treated ones,
tau^_it minus an average of tau^ over its group (the average effect is not noise). The average
is BJS's "smart" one (Section 4.3, as in their did_imputation): within a group, each cluster's
effects weighted by v_it times the cluster's sum of v in the group, so that a cluster heavy in the
estimate counts as heavily in the average. With unit clusters and equal weights it is the plain
mean; with weights it is not (the plain mean overstates the SE, up to 11 % on our panels). The
groups are event times by default (`average_by="event_time"`) or, as did_imputation's default,
cohort x period (`"cohort_period"`), which assumes less about how effects vary.
With few clusters, read the intervals with the caution of docs/evaluation.md."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from .twfe import EvaluationError, _period_index


@dataclass
class ImputationResult:
    overall: pd.DataFrame  # one row: estimate, se, ci_low, ci_high, p, n_treated
    by_event_time: pd.DataFrame  # event_time, estimate, se, ci_low, ci_high, p, n_treated
    tau: pd.DataFrame  # the treated observations' effects (unit, period, event_time, tau)
    n_clusters: int


def _dummies(codes: np.ndarray, n: int, drop_first: bool) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(len(codes)), (np.arange(len(codes)), codes)), shape=(len(codes), n))
    return m[:, 1:] if drop_first else m


def _smart_average(tau: np.ndarray, v: np.ndarray, grp: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """Per treated observation, its group's average of tau weighted by v_it x (the sum of v over
    its cluster in the group) (BJS Section 4.3); 0 where the group has no weight in the estimand."""
    cw = np.bincount(pair, v)[pair]  # the cluster's weight in the group
    denom = np.bincount(grp, cw * v)
    with np.errstate(invalid="ignore", divide="ignore"):
        sw = np.where(denom[grp] > 0, cw * v / denom[grp], 0.0)
    return np.bincount(grp, sw * tau)[grp]


def imputation(panel: pd.DataFrame, y: str, adoption: str, unit: str = "unit", time: str = "month",
               weight: str | None = None, cluster: str | None = None, horizons: list[int] | None = None,
               level: float = 0.95, average_by: str = "event_time") -> ImputationResult:
    """`adoption`: each unit's first treated period (missing for units never treated);
    `average_by`: the groups of the variance's smart average ('event_time' or 'cohort_period')."""
    if average_by not in ("event_time", "cohort_period"):
        raise EvaluationError(f"average_by must be event_time or cohort_period, not {average_by!r}")
    need = list(dict.fromkeys([y, adoption, unit, time] + ([weight] if weight else []) + ([cluster] if cluster else [])))  # the cluster may be the unit
    missing = [c for c in need if c not in panel.columns]
    if missing:
        raise EvaluationError(f"the panel has no column {', '.join(missing)}")
    d = panel[need].copy()
    d = d[d[y].notna() & (d[weight].notna() if weight else True)]
    t = _period_index(d[time])
    a = np.full(len(d), np.nan)
    ok = d[adoption].notna().to_numpy()
    a[ok] = _period_index(d.loc[ok, adoption])
    e = t - a
    treated = ~np.isnan(e) & (e >= 0)
    w = d[weight].to_numpy(float) if weight else np.ones(len(d))
    uc, tc = pd.factorize(d[unit])[0], pd.factorize(t, sort=True)[0]
    g = pd.factorize(d[cluster] if cluster else d[unit])[0]
    Z = sp.hstack([_dummies(uc, uc.max() + 1, False), _dummies(tc, tc.max() + 1, True)]).tocsr()
    z0, z1, w0 = Z[~treated], Z[treated], w[~treated]
    # every treated observation needs its unit's and its period's effect from untreated rows
    no_unit = set(d.loc[treated, unit]) - set(d.loc[~treated, unit])
    no_time = set(t[treated]) - set(t[~treated])
    if no_unit or no_time:
        raise EvaluationError("the untreated observations do not identify every effect needed: "
                              + (f"units never observed untreated: {sorted(map(str, no_unit))[:3]} " if no_unit else "")
                              + (f"periods with every unit treated: {len(no_time)}" if no_time else ""))
    normal = (z0.T @ z0.multiply(w0[:, None])).toarray()
    theta = np.linalg.solve(normal, z0.T @ (w0 * d[y].to_numpy(float)[~treated]))
    yv = d[y].to_numpy(float)
    tau = yv[treated] - z1 @ theta
    resid0 = yv[~treated] - z0 @ theta
    e1 = e[treated].astype(int)
    w1 = w[treated]
    groups = {"overall": np.ones(len(tau), bool)}
    for k in sorted(set(e1) if horizons is None else horizons):
        groups[k] = e1 == k
    G = g.max() + 1
    key = e1 if average_by == "event_time" else a[treated] * (t.max() + 1) + t[treated]
    grp = pd.factorize(key)[0]
    pair = g[treated] * (grp.max() + 1) + grp  # cluster x group
    rows = []
    q = stats.t.ppf(0.5 + level / 2, G - 1)
    for name, m in groups.items():
        if not m.any():
            continue
        omega = np.where(m, w1, 0.0) / w1[m].sum()
        est = float(omega @ tau)
        v0 = -(z0 @ np.linalg.solve(normal, z1.T @ omega)) * w0  # the untreated rows' weights in tau^
        resid1 = tau - _smart_average(tau, omega, grp, pair)
        contrib = np.bincount(g[~treated], v0 * resid0, G) + np.bincount(g[treated], omega * resid1, G)
        se = float(np.sqrt((contrib ** 2).sum()))
        rows.append({"event_time": name, "estimate": est, "se": se, "ci_low": est - q * se, "ci_high": est + q * se,
                     "p": float(2 * stats.t.sf(abs(est / se), G - 1)) if se > 0 else np.nan,
                     "n_treated": int(m.sum()), "method": "imputation (BJS)"})
    table = pd.DataFrame(rows)
    return ImputationResult(table[table["event_time"] == "overall"].drop(columns="event_time").reset_index(drop=True),
                            table[table["event_time"] != "overall"].reset_index(drop=True),
                            pd.DataFrame({"unit": d.loc[treated, unit].to_numpy(), "period": d.loc[treated, time].to_numpy(),
                                          "event_time": e1, "tau": tau}), int(G))


__all__ = ["ImputationResult", "imputation"]
