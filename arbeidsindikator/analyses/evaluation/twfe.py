"""Policy evaluation on the indicator with few clusters: two-way fixed effects (weighted or
not) with cluster-robust CR1 standard errors, and the wild cluster restricted bootstrap
(WCR: the null imposed; Rademacher or Webb weights) with p-values and confidence intervals by
test inversion.

Why written here: pyfixest's wild bootstrap refuses weights, and wildboottest gives no
intervals; Nav's region x month panels need both (12 regions, cells weighted by persons).

The estimator works on any panel DataFrame: one row per unit and period, an outcome, one or
more treatment columns (a dose or a 0/1 indicator), and optionally a weight.

Method. Unit and period effects are partialled out once (Frisch-Waugh-Lovell, weighted), so
each bootstrap draw is a few matrix products over G clusters. For H0: beta_j = r the restricted
model is fitted with beta_j fixed at r; its residuals u~ are flipped by cluster (u*_g = v_g u~_g),
the model is refitted and the CR1 t-statistic of beta_j - r is computed for every draw. The
p-value is the share of draws with |t*| >= |t| (symmetric). With Rademacher weights and
2^G <= B every sign vector is enumerated once (the exact distribution). A confidence interval
is the set of r not rejected at the level, found by bisection with the same draws for every r.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ...pipeline.uncertainty import month_numbers

TIE_RTOL = 1e-9  # a bootstrap statistic this close (relatively) to the observed one is a tie, and counts


def at_least(stat: np.ndarray, observed: float) -> np.ndarray:
    """stat >= observed, with exact ties (the identity draw reproduces the observed statistic
    up to rounding) counted as ties, not left to the last bit."""
    return stat >= observed - TIE_RTOL * abs(observed) - 1e-12


WEBB = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])


class EvaluationError(ValueError):
    """A panel or a request the estimator cannot use (named column, rule and example)."""


@dataclass
class TWFEResult:
    terms: list[str]
    params: np.ndarray
    cov: np.ndarray  # CR1, clustered by `cluster`
    nobs: int
    n_clusters: int
    k: int  # parameters counted in CR1's small-sample factor (see SMALL_SAMPLE)
    weighted: bool
    small_sample: str = "full"

    @property
    def bse(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    def table(self, level: float = 0.95) -> pd.DataFrame:
        """Estimate, CR1 standard error, t with G-1 degrees of freedom, p and interval."""
        t = self.params / self.bse
        df = self.n_clusters - 1
        q = stats.t.ppf(0.5 + level / 2, df)
        return pd.DataFrame({"term": self.terms, "estimate": self.params, "se": self.bse, "t": t,
                             "p": 2 * stats.t.sf(np.abs(t), df), "ci_low": self.params - q * self.bse,
                             "ci_high": self.params + q * self.bse, "method": SMALL_SAMPLE[self.small_sample]})


@dataclass
class BootstrapResult:
    term: str
    null: float
    t: float
    p: float
    draws: int
    weights: str
    enumerated: bool
    ci_low: float | None = None
    ci_high: float | None = None


# CR1's small-sample factor G/(G-1) x (n-1)/(n-k): which parameters k counts.
# 'full': every fixed effect (statsmodels or Stata's regress with dummies; pyfixest k_fixef="full").
# 'nested': fixed effects nested in the clusters are not counted (fixest's and reghdfe's default;
# pyfixest k_fixef="nonnested"): with unit clusters the unit effects count as one. The two differ
# by (n-k_full)/(n-k_nested), about 12 % in the variance on a 500-county panel of few periods.
SMALL_SAMPLE = {"full": "TWFE, CR1", "nested": "TWFE, CR1 (nested FE not counted)"}


class _Design:
    """The panel with unit and period effects partialled out (weighted), ready for many fits."""

    def __init__(self, panel: pd.DataFrame, y: str, treatments: list[str], unit: str, time: str,
                 weight: str | None, cluster: str | None, small_sample: str = "full"):
        if small_sample not in SMALL_SAMPLE:
            raise EvaluationError(f"small_sample must be one of {', '.join(SMALL_SAMPLE)}, not {small_sample!r}")
        need = list(dict.fromkeys([y, *treatments, unit, time] + ([weight] if weight else []) + ([cluster] if cluster else [])))  # the cluster may be the unit
        missing = [c for c in need if c not in panel.columns]
        if missing:
            raise EvaluationError(f"the panel has no column {', '.join(missing)}")
        d = panel[need].copy()
        bad = d.isna().any(axis=1)  # outcome, treatment, weight, unit, period or cluster
        self.n_missing = int(bad.sum())  # dropped and counted, never filled in
        self.kept = (~bad).to_numpy()  # the panel's rows in the design
        d = d[~bad]
        if weight and (d[weight] <= 0).any():
            raise EvaluationError(f"weights must be positive; {weight} has {(d[weight] <= 0).sum()} rows <= 0")
        self.terms = list(treatments)
        self.w = d[weight].to_numpy(float) if weight else np.ones(len(d))
        self.weighted = weight is not None
        uc = pd.factorize(d[unit])[0]
        tc = pd.factorize(d[time], sort=True)[0]
        self.cluster = pd.factorize(d[cluster] if cluster else d[unit])[0]
        self.G = int(self.cluster.max()) + 1
        if self.G < 2:
            raise EvaluationError("the panel needs at least two clusters")
        n_u, n_t = uc.max() + 1, tc.max() + 1
        # the fixed effects as dense dummies: a region x month panel has ~100 of them
        fe = np.zeros((len(d), n_u + n_t - 1))
        fe[np.arange(len(d)), uc] = 1.0
        later = tc > 0
        fe[np.flatnonzero(later), n_u + tc[later] - 1] = 1.0
        self.n, self.k_fe = len(d), np.linalg.matrix_rank(fe)
        sw = np.sqrt(self.w)
        q, _ = np.linalg.qr(fe * sw[:, None])
        q = q[:, :self.k_fe] if self.k_fe < q.shape[1] else q

        def resid(v):  # M v in the weighted metric, returned unweighted
            vs = v * sw[:, None] if v.ndim == 2 else v * sw
            return (vs - q @ (q.T @ vs)) / (sw[:, None] if v.ndim == 2 else sw)

        self.resid = resid
        self.y = resid(d[y].to_numpy(float))
        raw = d[treatments].to_numpy(float)
        self.X = resid(raw)
        # what is left of each treatment after the effects, relative to its size: ~1e-16 means none
        left = np.linalg.norm(self.X * sw[:, None], axis=0) / np.maximum(np.linalg.norm(raw * sw[:, None], axis=0), 1e-300)
        if (left < 1e-9).any() or np.linalg.matrix_rank(self.X * sw[:, None], tol=1e-9 * np.abs(self.X).max()) < len(treatments):
            gone = [t for t, v in zip(treatments, left) if v < 1e-9] or treatments
            raise EvaluationError(f"{', '.join(gone)} is collinear with the unit and period effects or the other "
                                  "treatments (no variation left)")
        self.k = self.k_fe + len(treatments)
        if small_sample == "nested":  # a dimension whose every level lies in one cluster counts as one
            for codes, n_levels in ((uc, n_u), (tc, n_t)):
                if pd.Series(self.cluster).groupby(codes).nunique().max() == 1:
                    self.k -= n_levels - 1
        self.small_sample = small_sample
        self.members = np.zeros((self.G, self.n))  # cluster indicator
        self.members[self.cluster, np.arange(self.n)] = 1.0
        self.c = self.G / (self.G - 1) * (self.n - 1) / (self.n - self.k)  # CR1's small-sample factor

    def fit(self) -> tuple[np.ndarray, np.ndarray]:
        xw = self.X * self.w[:, None]
        a_inv = np.linalg.inv(xw.T @ self.X)
        beta = a_inv @ (xw.T @ self.y)
        e = self.y - self.X @ beta
        scores = self.members @ (xw * e[:, None])  # G x k
        cov = self.c * a_inv @ (scores.T @ scores) @ a_inv
        return beta, cov


def twfe(panel: pd.DataFrame, y: str, treatments: list[str] | str, unit: str = "unit", time: str = "month",
         weight: str | None = None, cluster: str | None = None, small_sample: str = "full") -> TWFEResult:
    """y on the treatments with unit and period fixed effects, weighted by `weight` if given;
    CR1 standard errors clustered by `cluster` (default: the unit), with the small-sample
    convention `small_sample` (SMALL_SAMPLE: 'full' by default, the conservative one)."""
    treatments = [treatments] if isinstance(treatments, str) else list(treatments)
    d = _Design(panel, y, treatments, unit, time, weight, cluster, small_sample)
    beta, cov = d.fit()
    return TWFEResult(treatments, beta, cov, d.n, d.G, d.k, d.weighted, small_sample)


def _draws(G: int, B: int, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """G x B cluster weights; all 2^G sign vectors when Rademacher and 2^G <= B."""
    if kind == "rademacher":
        if 2 ** G <= B:
            return np.array(list(itertools.product((-1.0, 1.0), repeat=G))).T, True
        return rng.choice((-1.0, 1.0), size=(G, B)), False
    if kind == "webb":
        return rng.choice(WEBB, size=(G, B)), False
    raise EvaluationError(f"unknown bootstrap weights {kind!r}: use rademacher or webb")


class _WildBootstrap:
    """The WCR bootstrap for coefficients J under H0: beta_J = r_J, with fixed draws so that
    p(r) is a step function of the null value that test inversion can search."""

    def __init__(self, d: _Design, J: list[int], V: np.ndarray):
        self.d, self.J, self.V = d, list(J), V
        xw = d.X * d.w[:, None]
        self.xw = xw
        self.a_inv = np.linalg.inv(xw.T @ d.X)
        self.Q = (d.X @ self.a_inv.T) * d.w[:, None]  # column j: beta_j = Q[:, j]'y
        others = [i for i in range(d.X.shape[1]) if i not in self.J]
        xo = d.X[:, others]
        if others:
            g = np.linalg.inv((xo * d.w[:, None]).T @ xo)
            self._proj = lambda v: v - xo @ (g @ ((xo * d.w[:, None]).T @ v))
        else:
            self._proj = lambda v: v
        self.beta, self.cov = d.fit()

    def t_obs(self, r) -> np.ndarray:
        r = np.broadcast_to(np.asarray(r, float), (len(self.J),))
        return (self.beta[self.J] - r) / np.sqrt(np.diag(self.cov)[self.J])

    def t_star(self, r) -> np.ndarray:
        """|J| x B CR1 t-statistics of beta_J - r in every draw, the null imposed."""
        d, V = self.d, self.V
        r = np.broadcast_to(np.asarray(r, float), (len(self.J),))
        u = self._proj(d.y - d.X[:, self.J] @ r)  # the restricted model's residuals
        y_r = d.y - u
        # v o u partialled out per cluster: the period effects are not nested in the clusters
        pu = d.resid(d.members.T * u[:, None])  # n x G
        out = np.empty((len(self.J), V.shape[1]))
        for lo in range(0, V.shape[1], 2048):
            v = V[:, lo:lo + 2048]
            yb = y_r[:, None] + pu @ v
            betas = self.a_inv @ (self.xw.T @ yb)
            e = yb - d.X @ betas
            for i, j in enumerate(self.J):
                s = d.members @ (self.Q[:, j][:, None] * e)  # the clusters' scores of beta_j
                out[i, lo:lo + v.shape[1]] = (betas[j] - r[i]) / np.sqrt(d.c * (s ** 2).sum(axis=0))
        return out

    def p(self, r) -> float:
        """Symmetric p-value for one coefficient; for several, of the sum of squared t's."""
        if len(self.J) == 1:
            return float(np.mean(at_least(np.abs(self.t_star(r)[0]), abs(self.t_obs(r)[0]))))
        w_obs = float((self.t_obs(r) ** 2).sum())
        return float(np.mean(at_least((self.t_star(r) ** 2).sum(axis=0), w_obs)))

    @property
    def beta_j(self) -> float:
        return float(self.beta[self.J[0]])

    @property
    def se_j(self) -> float:
        return float(np.sqrt(self.cov[self.J[0], self.J[0]]))


def wild_bootstrap(panel: pd.DataFrame, y: str, treatments: list[str] | str, term: str | None = None,
                   unit: str = "unit", time: str = "month", weight: str | None = None, cluster: str | None = None,
                   null: float = 0.0, B: int = 9999, weights: str = "webb", seed: int = 0,
                   level: float | None = 0.95) -> BootstrapResult:
    """Wild cluster restricted bootstrap p-value of H0: beta_term = null, and (with `level`) the
    confidence interval by test inversion. Reproducible with `seed`."""
    treatments = [treatments] if isinstance(treatments, str) else list(treatments)
    term = term or treatments[0]
    if term not in treatments:
        raise EvaluationError(f"{term!r} is not a treatment term; terms: {', '.join(treatments)}")
    d = _Design(panel, y, treatments, unit, time, weight, cluster)
    V, enumerated = _draws(d.G, B, weights, np.random.default_rng(seed))
    wb = _WildBootstrap(d, [treatments.index(term)], V)
    res = BootstrapResult(term, null, float(wb.t_obs(null)[0]), wb.p(null), V.shape[1], weights, enumerated)
    if level is not None:
        res.ci_low, res.ci_high = _invert(wb, 1 - level)
    return res


def wild_bootstrap_joint(panel: pd.DataFrame, y: str, treatments: list[str], terms: list[str], unit: str = "unit",
                         time: str = "month", weight: str | None = None, cluster: str | None = None, B: int = 9999,
                         weights: str = "webb", seed: int = 0) -> BootstrapResult:
    """Joint test of H0: every coefficient in `terms` is 0, by the WCR bootstrap of the sum of
    squared CR1 t-statistics.

    Why this statistic: with G clusters the CR1 covariance of q coefficients has rank at most
    G - 1, so the usual Wald statistic needs an inverse that does not exist when q >= G (an event
    study with 24 leads and 12 regions) and is erratic near it. The sum of squared t's uses only
    the diagonal, which is positive whenever each coefficient is identified; its distribution
    under the null comes from the bootstrap, which imposes all q restrictions, so the test has
    the right size for any q. It puts equal weight on each coefficient instead of using their
    correlation, which costs some power against alternatives along correlated directions."""
    missing = [t for t in terms if t not in treatments]
    if missing:
        raise EvaluationError(f"{', '.join(missing)} not among the treatment terms")
    d = _Design(panel, y, list(treatments), unit, time, weight, cluster)
    V, enumerated = _draws(d.G, B, weights, np.random.default_rng(seed))
    wb = _WildBootstrap(d, [treatments.index(t) for t in terms], V)
    return BootstrapResult(", ".join(terms), 0.0, float((wb.t_obs(0.0) ** 2).sum()), wb.p(0.0), V.shape[1],
                           weights, enumerated)


def _invert(wb: _WildBootstrap, alpha: float) -> tuple[float, float]:
    """The ends of {r: p(r) > alpha}, by bisection outward from the estimate."""
    b, se = wb.beta_j, wb.se_j

    def edge(sign: float) -> float:
        inside, step = b, se
        outside = b + sign * step
        for _ in range(60):  # widen until rejected
            if wb.p(outside) <= alpha:
                break
            inside, step = outside, step * 2
            outside = b + sign * step
        else:
            return sign * np.inf
        for _ in range(50):
            mid = (inside + outside) / 2
            if wb.p(mid) > alpha:
                inside = mid
            else:
                outside = mid
            if abs(outside - inside) < 1e-6 * se:
                break
        return (inside + outside) / 2

    return edge(-1.0), edge(1.0)


__all__ = ["BootstrapResult", "EvaluationError", "SMALL_SAMPLE", "TWFEResult", "WEBB", "twfe", "wild_bootstrap", "wild_bootstrap_joint"]


# -- event study ------------------------------------------------------------------------------

@dataclass
class EventStudyResult:
    table: pd.DataFrame  # event_time, term, estimate, se, ci_low, ci_high, p (CR1, t with G-1 df)
    pretrend: BootstrapResult | None  # joint WCR test that every lead is 0
    reference: int
    fit: TWFEResult


def _period_index(values: pd.Series) -> np.ndarray:
    """Months as consecutive integers (dates or YYYY-MM text), or the numbers themselves."""
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(float)
    return month_numbers(values).astype(float)


def event_terms(panel: pd.DataFrame, adoption: str, time: str = "month", leads: int = 6, lags: int = 12,
                reference: int = -1) -> tuple[pd.DataFrame, list[str], dict[str, int]]:
    """Lead and lag dummies around each unit's adoption (`adoption`: the first treated period,
    missing for units never treated). The end points are binned (event time <= -leads, >= lags),
    and `reference` is left out: every coefficient is relative to that period."""
    if not -leads <= reference <= lags:
        raise EvaluationError(f"the reference period {reference} is outside -{leads}..{lags}")
    t = _period_index(panel[time])
    a = panel[adoption]
    adopt = np.full(len(a), np.nan)
    adopt[a.notna().to_numpy()] = _period_index(a[a.notna()])
    e = t - adopt
    out, names = panel.copy(), {}
    for k in range(-leads, lags + 1):
        if k == reference:
            continue
        name = f"e{k:+d}".replace("+", "p").replace("-", "m")
        hit = (e <= k) if k == -leads else (e >= k) if k == lags else (e == k)
        out[name] = np.where(np.isnan(e), 0.0, hit.astype(float))
        names[name] = k
    return out, list(names), names


def event_study(panel: pd.DataFrame, y: str, adoption: str, unit: str = "unit", time: str = "month",
                leads: int = 6, lags: int = 12, reference: int = -1, weight: str | None = None,
                cluster: str | None = None, B: int = 9999, weights: str = "webb", seed: int = 0,
                level: float = 0.95) -> EventStudyResult:
    """Leads and lags around adoption with unit and period effects, CR1 intervals per event time
    and a joint pre-trend test of the leads by the wild cluster bootstrap (valid also when there
    are more leads than clusters; see wild_bootstrap_joint). Event-time bins with no observation
    are dropped with the reason in the table's attrs."""
    data, terms, k_of = event_terms(panel, adoption, time, leads, lags, reference)
    empty = [t for t in terms if not data[t].any()]
    terms = [t for t in terms if t not in empty]
    fit = twfe(data, y, terms, unit, time, weight, cluster)
    table = fit.table(level).assign(event_time=[k_of[t] for t in terms])
    table.attrs["dropped"] = {t: "no observation in this event-time bin" for t in empty}
    pre = [t for t in terms if k_of[t] < 0]
    pretrend = (wild_bootstrap_joint(data, y, terms, pre, unit, time, weight, cluster, B, weights, seed)
                if pre else None)
    return EventStudyResult(table[["event_time", "term", "estimate", "se", "ci_low", "ci_high", "p", "method"]],
                            pretrend, reference, fit)


__all__ += ["EventStudyResult", "event_study", "event_terms"]
