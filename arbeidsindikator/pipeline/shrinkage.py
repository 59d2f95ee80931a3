"""Small units, shrunk; and funnel plots instead of league tables.

Empirical Bayes (random effects). Take the raw indicators I_o of the offices in a family
(same month or period, outcome and breakdown group), each with its standard error s_o. Model
I_o = mu + u_o + error, where u_o ~ (0, tau^2) and the error ~ (0, s_o^2). tau^2, the
between-office variance, is estimated by the DerSimonian-Laird method of moments:

    w_o = 1 / s_o^2,  mu_w = sum w I / sum w,  Q = sum w (I - mu_w)^2
    tau^2 = max(0, (Q - (k - 1)) / (sum w - sum w^2 / sum w))

The shrunken estimate is mu + B_o (I_o - mu) with B_o = tau^2 / (tau^2 + s_o^2), where mu is
the precision-weighted mean under the random-effects weights 1/(s_o^2 + tau^2). A small
office (large s_o) is pulled further towards mu than a large one. NOE is not an office like
the others and keeps its raw value.

Funnel plot: each unit's indicator against its number of persons, with control limits
target +/- z * sqrt(sigma^2 / N + tau^2) for z = 1.96 (95%) and 3.09 (99.8%). sigma^2 is the
pooled within-unit variance per person. tau^2 is the overdispersion adjustment (the same
DerSimonian-Laird estimate), so ordinary between-unit variation does not flag half the
units. Units outside the limits are flagged ('over' / 'under'), never ranked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

Z998 = 3.090232306167813
NOE_ID = "4154"
NOE_REGION_ID = "NOE"  # the region NOE forms on its own in the published tables


def dersimonian_laird(est: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    """(tau^2, random-effects mean)."""
    ok = np.isfinite(est) & np.isfinite(se) & (se > 0)
    est, se = est[ok], se[ok]
    k = len(est)
    if k < 2:
        return 0.0, float(est.mean()) if k else float("nan")
    w = 1 / se ** 2
    mu_w = (w * est).sum() / w.sum()
    q = (w * (est - mu_w) ** 2).sum()
    tau2 = max(0.0, (q - (k - 1)) / (w.sum() - (w ** 2).sum() / w.sum()))
    wr = 1 / (se ** 2 + tau2)
    return tau2, float((wr * est).sum() / wr.sum())


def empirical_bayes(d: pd.DataFrame) -> pd.DataFrame:
    """Add INDIKATOR_KRYMPET and MELLOMVARIANS to office rows (level 3, not NOE, not suppressed)."""
    d = d.copy()
    d["INDIKATOR_KRYMPET"] = np.nan
    d["MELLOMVARIANS"] = np.nan
    t = "BEHOLDNINGSMAANED" if "BEHOLDNINGSMAANED" in d.columns else "PERIODE"
    sel = (d["ORG_NIVAA"] == 3) & (d["ORG_STED_ID"] != NOE_ID) & ~d["PRIKKET"] & d["INDIKATOR_SE"].gt(0)
    sub = d.loc[sel, [t, "UTFALL", "NEDBRYTNING", "GRUPPE", "INDIKATOR", "INDIKATOR_SE"]]
    if sub.empty:
        return d
    # DerSimonian-Laird per family, vectorised with group sums
    keys = [sub[c] for c in (t, "UTFALL", "NEDBRYTNING", "GRUPPE")]
    est, se2 = sub["INDIKATOR"], sub["INDIKATOR_SE"] ** 2
    w = 1 / se2
    g = pd.DataFrame({"w": w, "wi": w * est, "wii": w * est * est, "ww": w * w, "k": 1.0}).groupby(keys)
    sw, swi, swii, sww, k = (g[c].transform("sum") for c in ("w", "wi", "wii", "ww", "k"))
    q = swii - swi ** 2 / sw
    tau2 = ((q - (k - 1)) / (sw - sww / sw)).clip(lower=0).where(k >= 2, 0.0)
    wr = 1 / (se2 + tau2)
    g2 = pd.DataFrame({"wr": wr, "wri": wr * est}).groupby(keys)
    mu = g2["wri"].transform("sum") / g2["wr"].transform("sum")
    b = tau2 / (tau2 + se2)
    d.loc[sub.index, "INDIKATOR_KRYMPET"] = mu + b * (est - mu)
    d.loc[sub.index, "MELLOMVARIANS"] = tau2
    return d


def funnel(cells: pd.DataFrame) -> pd.DataFrame:
    """Funnel-plot data for a set of comparable units (one month/period, outcome, group, level).

    `cells` needs ORG_STED, ANTALL_PERSONER, INDIKATOR and INDIKATOR_SE; suppressed cells are
    left out, and so is NOE: it follows only standard users nationally, so it is not a unit
    like the offices or regions it would be plotted among. Returns one row per unit with
    control limits and a flag."""
    keep = ~cells["PRIKKET"] & cells["INDIKATOR"].notna()
    if "ORG_STED_ID" in cells:  # NOE is both an office (4154) and a "region" of its own (NOE)
        keep &= ~cells["ORG_STED_ID"].isin([NOE_ID, NOE_REGION_ID])
    c = cells[keep].copy()
    if c.empty:
        return c
    n = c["ANTALL_PERSONER"].to_numpy(float)
    est, se = c["INDIKATOR"].to_numpy(), c["INDIKATOR_SE"].to_numpy()
    target = float(np.average(est, weights=n))
    sigma2 = float(np.average(se ** 2 * n, weights=n))  # pooled per-person variance
    tau2, _ = dersimonian_laird(est, se)
    spread = np.sqrt(sigma2 / n + tau2)
    c["MAL"] = target
    c["MELLOMVARIANS"] = tau2
    for z, tag in ((1.959963984540054, "95"), (Z998, "998")):
        c[f"GRENSE_{tag}_NEDRE"] = target - z * spread
        c[f"GRENSE_{tag}_OVRE"] = target + z * spread
    c["UTENFOR_95"] = np.where(est > c["GRENSE_95_OVRE"], "over", np.where(est < c["GRENSE_95_NEDRE"], "under", ""))
    c["UTENFOR_998"] = np.where(est > c["GRENSE_998_OVRE"], "over", np.where(est < c["GRENSE_998_NEDRE"], "under", ""))
    # ordered by size, never by value: the funnel is not a league table
    return c.sort_values("ANTALL_PERSONER").reset_index(drop=True)


def funnel_curve(sigma2: float, tau2: float, target: float, n_max: float, points: int = 60,
                 n_min: float | None = None) -> pd.DataFrame:
    """The control limits as curves over N (from `n_min`, default n_max / 1000), for drawing the funnel."""
    n = np.geomspace(max(1.0, n_min if n_min else n_max / 1000), n_max * 1.05, points)
    spread = np.sqrt(sigma2 / n + tau2)
    return pd.DataFrame({"N": n, "lower95": target - 1.96 * spread, "upper95": target + 1.96 * spread,
                         "lower998": target - Z998 * spread, "upper998": target + Z998 * spread})
