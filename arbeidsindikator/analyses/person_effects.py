"""An office-effect variant with person effects (Abowd, Kramarz and Margolis 1999), beside Nav's.

The production indicator's office number is the mean result (actual minus expected) of the
office's users: the office's contribution plus whatever its users share that the model cannot
see. With person fixed effects the office effects are identified only by users who change
office (or return to another one): result = person effect + office effect + noise, so a trait
a user carries everywhere is absorbed by their person effect and drops out of the office effects.
The price is noise (only movers inform the contrasts) and coverage (only offices connected by
movers get an effect).

Fitted on the person-months of a run's person results (the same residuals, centred on the
national mean of each month, as the movers' test). The person effects are absorbed
(Frisch-Waugh-Lovell), which leaves an office-by-office system, a graph Laplacian of the movers
with a few hundred rows at most, solved exactly; pyfixest and lfe reach the same effects by
alternating projections, and the tests compare the two.

How much of the spread of each measure is signal is estimated by splitting the persons in two
halves (even and odd ids), fitting each half alone and taking the covariance of the two halves'
office numbers: the noise of the two halves is independent, so the covariance estimates the
variance of what both measure (a split-sample form of the bias correction of Kline, Saggio and
Sølvsten 2020 for the variance of such effects).

On a synthetic world each measure is scored against the offices' true contribution over the
same person-months (truth/office_month.parquet): the correlation and the RMSE. Only pooled
numbers are written; no office's effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix, diags
from scipy.sparse.csgraph import connected_components

from ..pipeline.shrinkage import NOE_ID
from .validity import weighted_correlation

@dataclass
class OfficeEffects:
    office: np.ndarray  # office ids of the connected set
    effect: np.ndarray  # office effect with person effects (weighted mean 0)
    mean: np.ndarray  # the office's mean result (the production indicator over the period)
    n: np.ndarray  # person-months
    movers: np.ndarray  # persons with months at this office and another
    left_out: int  # offices outside the largest set connected by movers


def _rows(con) -> pd.DataFrame:
    """The person-months of TEMP table r (movers._person_results) with an observed result at a
    local office."""
    return con.execute("SELECT person_id, office_id, e FROM r WHERE e IS NOT NULL AND office_id <> $noe",
                       {"noe": NOE_ID}).df()


def _connected(person: np.ndarray, office: np.ndarray, n_office: int) -> np.ndarray:
    """The offices of the largest set connected by persons with months at several offices."""
    po = np.unique(np.column_stack([person, office]), axis=0)
    multi = np.bincount(po[:, 0])[po[:, 0]] > 1
    po = po[multi]
    # link consecutive offices of each mover (enough to connect all of a person's offices)
    same = po[1:, 0] == po[:-1, 0]
    a, b = po[:-1, 1][same], po[1:, 1][same]
    g = coo_matrix((np.ones(len(a)), (a, b)), shape=(n_office, n_office))
    _, label = connected_components(g, directed=False)
    return label == np.bincount(label).argmax()


def fit_office_effects(rows: pd.DataFrame) -> OfficeEffects:
    """Person and office fixed effects by alternating projections, on the connected set."""
    p_codes, _ = pd.factorize(rows["person_id"])
    o_codes, offices = pd.factorize(rows["office_id"])
    keep_office = _connected(p_codes, o_codes, len(offices))
    keep = keep_office[o_codes]
    p, _ = pd.factorize(p_codes[keep])
    o_map = np.cumsum(keep_office) - 1
    o = o_map[o_codes[keep]]
    y = rows["e"].to_numpy(float)[keep]
    n_o = np.bincount(o).astype(float)
    n_p = np.bincount(p).astype(float)
    # person effects absorbed (Frisch-Waugh-Lovell): (D'D - D'P(P'P)^-1 P'D) psi = D'y - D'P ybar_p,
    # an office-by-office system (a graph Laplacian of the movers, null space the constant)
    A = coo_matrix((np.ones(len(p)), (p, o)), shape=(len(n_p), len(n_o))).tocsr()
    L = np.diag(n_o) - (A.T @ diags(1.0 / n_p) @ A).toarray()
    rhs = np.bincount(o, y) - A.T @ (np.bincount(p, y) / n_p)
    psi = np.linalg.lstsq(L, rhs, rcond=None)[0]
    psi = psi - np.average(psi, weights=n_o)
    mean = np.bincount(o, y) / n_o
    po = np.unique(np.column_stack([p, o]), axis=0)
    moving = np.bincount(po[:, 0])[po[:, 0]] > 1
    movers = np.bincount(po[moving, 1], minlength=len(n_o))
    return OfficeEffects(np.asarray(offices)[keep_office], psi, mean - np.average(mean, weights=n_o), n_o, movers,
                         int((~keep_office).sum()))


def _signal_var(a: pd.Series, b: pd.Series, w: pd.Series) -> float:
    """The weighted covariance of two independent measurements of the same office numbers."""
    j = pd.concat([a, b, w], axis=1, keys=["a", "b", "w"]).dropna()
    ma, mb = np.average(j["a"], weights=j["w"]), np.average(j["b"], weights=j["w"])
    return float(np.average((j["a"] - ma) * (j["b"] - mb), weights=j["w"]))


def _score(x: np.ndarray, truth: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted correlation with the truth, and the RMSE of the two centred on their means."""
    xm, tm = np.average(x, weights=w), np.average(truth, weights=w)
    return float(weighted_correlation(x, truth, w)), float(np.sqrt(np.average(((x - xm) - (truth - tm)) ** 2, weights=w)))


def compare_office_measures(con, outcome: str, truth: Path | None = None) -> dict:
    """The production office mean and the person-effects office effect, side by side, for the
    run and outcome in TEMP table r: how many offices and movers, the signal variance of each
    (split halves), and against the truth the correlation and RMSE."""
    rows = _rows(con)
    full = fit_office_effects(rows)
    halves = [fit_office_effects(rows[rows["person_id"] % 2 == h]) for h in (0, 1)]
    w = pd.Series(full.n, index=full.office)
    out = {"outcome": outcome, "offices": len(full.office), "offices_left_out": full.left_out,
           "movers_per_office": float(np.median(full.movers))}
    for name, attr in (("indicator", "mean"), ("person_effects", "effect")):
        a = pd.Series(getattr(halves[0], attr), index=halves[0].office)
        b = pd.Series(getattr(halves[1], attr), index=halves[1].office)
        total = float(np.average(getattr(full, attr) ** 2, weights=full.n))
        signal = _signal_var(a, b, w)
        out[f"{name}_sd"] = np.sqrt(total)
        out[f"{name}_signal_share"] = signal / total if total > 0 else np.nan
    if truth is not None:
        t = (pd.read_parquet(truth, columns=["office_id", "n_persons", f"true_{outcome}"])
             .assign(s=lambda d: d[f"true_{outcome}"] * d["n_persons"]).groupby("office_id")[["s", "n_persons"]].sum())
        true = (t["s"] / t["n_persons"]).reindex(full.office).to_numpy()
        ok = np.isfinite(true)
        for name, x in (("indicator", full.mean), ("person_effects", full.effect)):
            r, rmse = _score(x[ok], true[ok], full.n[ok])
            out[f"{name}_r_truth"], out[f"{name}_rmse_truth"] = r, rmse
    return out


__all__ = ["OfficeEffects", "compare_office_measures", "fit_office_effects"]
