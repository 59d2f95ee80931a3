"""Survival estimators for follow-up spells: life tables, Kaplan-Meier, cumulative incidence of
competing exits (Aalen-Johansen) and Cox proportional hazards.

Written here rather than taken from lifelines because the national world has a million spells
and more, with monthly times, so almost every event is tied: lifelines' Efron fit loops over the
tied events in Python and its robust variance is built observation by observation. Here every
step is a handful of vectorised passes (cumulative sums over the time-sorted data, and the Efron
terms summed in closed form per event time), with the same numbers: tests/test_survival.py
checks them against lifelines and R's survival package.

Ties: Efron's approximation (R's default, lifelines' only choice). For monthly data the exact
model is the grouped-time (discrete) proportional hazards model; Efron approximates its partial
likelihood closely when the hazard per month is small, and keeps hazard ratios comparable with
the report's (Proba used Cox with ties on monthly data). A complementary log-log model on
person-months estimates the same grouped-time hazard ratio exactly; it is the check of choice
when monthly hazards are large (documented in docs/spells.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


class SurvivalError(ValueError):
    """Data a survival estimator cannot use (named column and rule)."""


def _arrays(durations, events, weights=None):
    t = np.asarray(durations, float)
    e = np.asarray(events)
    if e.dtype == bool:
        e = e.astype(int)
    e = e.astype(float)
    w = np.ones(len(t)) if weights is None else np.asarray(weights, float)
    if not (len(t) == len(e) == len(w)):
        raise SurvivalError("durations, events and weights must have the same length")
    bad = ~np.isfinite(t) | (t < 0) | ~np.isin(e, (0.0, 1.0)) | ~np.isfinite(w) | (w <= 0)
    if bad.any():
        raise SurvivalError(f"{int(bad.sum())} rows have a negative or missing duration, an event other than 0/1 "
                            "or a weight that is not positive; drop or fix them first")
    return t, e, w


# -- Kaplan-Meier and the life table -----------------------------------------------------------

def kaplan_meier(durations, events, weights=None, level: float = 0.95, conf_type: str = "log-log") -> pd.DataFrame:
    """The Kaplan-Meier estimate at every distinct time: time, at_risk, events, censored,
    survival, se (Greenwood), ci_low, ci_high. `conf_type` 'log-log' (lifelines' default) or
    'log' (R's survfit default)."""
    t, e, w = _arrays(durations, events, weights)
    times, inv = np.unique(t, return_inverse=True)
    d = np.bincount(inv, weights=w * e, minlength=len(times))
    c = np.bincount(inv, weights=w * (1 - e), minlength=len(times))
    n = np.cumsum((d + c)[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.cumprod(1 - d / n)
        g = np.cumsum(np.where(n > d, d / (n * (n - d)), np.where(d > 0, np.inf, 0.0)))
    z = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf_type == "log-log":
            sd = np.sqrt(g) / np.abs(np.log(s))
            lo, hi = np.exp(-np.exp(np.log(-np.log(s)) + z * sd)), np.exp(-np.exp(np.log(-np.log(s)) - z * sd))
        elif conf_type == "log":
            lo, hi = s * np.exp(-z * np.sqrt(g)), np.minimum(s * np.exp(z * np.sqrt(g)), 1.0)
        else:
            raise SurvivalError(f"conf_type must be 'log-log' or 'log', not {conf_type!r}")
    with np.errstate(invalid="ignore"):  # after the last event of everyone at risk: no SE
        se = s * np.sqrt(g)
    return pd.DataFrame({"time": times, "at_risk": n, "events": d, "censored": c, "survival": s,
                         "se": se, "ci_low": lo, "ci_high": hi})


def life_table(durations, events, weights=None, width: int = 1, last: int | None = None) -> pd.DataFrame:
    """Actuarial life table on intervals [k, k + width) of the duration (months): entering,
    events, censored, effective number at risk (entering minus half the censored), the
    conditional probability of an event, survival at the interval's end and its Greenwood
    standard error. Durations are months registered; an event at duration k falls in the
    interval holding k."""
    t, e, w = _arrays(durations, events, weights)
    k = (np.floor(t / width)).astype(int)
    top = int(k.max()) if last is None else int(last) // width
    k = np.minimum(k, top)
    d = np.bincount(k, weights=w * e, minlength=top + 1)
    c = np.bincount(k, weights=w * (1 - e), minlength=top + 1)
    entering = np.cumsum((d + c)[::-1])[::-1]
    eff = entering - c / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(eff > 0, d / eff, 0.0)
        s = np.cumprod(1 - q)
        var = s ** 2 * np.cumsum(np.where((eff > 0) & (q < 1), q / (eff * (1 - q)), 0.0))
    start = np.arange(top + 1) * width
    return pd.DataFrame({"from": start, "to": start + width, "entering": entering, "events": d, "censored": c,
                         "effective": eff, "hazard": q, "survival": s, "se": np.sqrt(var)})


def cumulative_incidence(durations, kinds, kind, weights=None, level: float = 0.95) -> pd.DataFrame:
    """Aalen-Johansen cumulative incidence of exit `kind` with every other exit competing: time,
    at_risk, events (of this kind), cif, se (delta method), ci_low, ci_high. `kinds` holds the
    exit kind of each spell, None / NaN / 'sensurert' for censored."""
    t = np.asarray(durations, float)
    k = pd.Series(np.asarray(kinds, object))
    censored = k.isna() | (k == "sensurert")
    ev_any = (~censored).to_numpy().astype(int)
    _, _, w = _arrays(t, ev_any, weights)
    ev_k = (k == kind).to_numpy() & ~censored.to_numpy()
    times, inv = np.unique(t, return_inverse=True)
    d = np.bincount(inv, weights=w * ev_any, minlength=len(times))
    dk = np.bincount(inv, weights=w * ev_k, minlength=len(times))
    n = np.cumsum(np.bincount(inv, weights=w, minlength=len(times))[::-1])[::-1]
    s = np.cumprod(1 - d / n)
    s_before = np.r_[1.0, s[:-1]]
    cif = np.cumsum(s_before * dk / n)
    # delta-method (Greenwood-type) variance, Collett (2015) p. 411, as in lifelines and SAS
    # LIFETEST: sum_i<=j (F_j - F_i)^2 d_i / (n_i (n_i - d_i)) + S_{i-1}^2 dk_i (n_i - dk_i) / n_i^3
    # - 2 (F_j - F_i) S_{i-1} dk_i / n_i^2, each sum expanded in powers of F_j to stay O(J)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(n > d, d / (n * (n - d)), 0.0)
        b = s_before * dk / n ** 2
        var = (cif ** 2 * np.cumsum(a) - 2 * cif * np.cumsum(a * cif) + np.cumsum(a * cif ** 2)
               + np.cumsum(s_before ** 2 * dk * (n - dk) / n ** 3)
               - 2 * (cif * np.cumsum(b) - np.cumsum(b * cif)))
        se = np.sqrt(np.maximum(var, 0))
        z = stats.norm.ppf(0.5 + level / 2)
        # the interval on log(-log F), so it stays inside (0, 1)
        sd = se / (cif * np.abs(np.log(cif)))
        one, two = np.exp(-np.exp(np.log(-np.log(cif)) + z * sd)), np.exp(-np.exp(np.log(-np.log(cif)) - z * sd))
    lo, hi = np.fmin(one, two), np.fmax(one, two)
    return pd.DataFrame({"time": times, "at_risk": n, "events": dk, "cif": cif, "se": se, "ci_low": lo, "ci_high": hi})


# -- Cox proportional hazards ------------------------------------------------------------------

@dataclass
class CoxResult:
    terms: list[str]
    params: np.ndarray
    cov: np.ndarray  # robust (clustered) if asked, else the inverse information
    cov_model: np.ndarray  # the inverse information
    loglik: float
    n: int
    events: float
    iterations: int
    robust: bool
    n_clusters: int | None
    converged: bool = True

    @property
    def bse(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    @property
    def estimable(self) -> np.ndarray:
        """False for a coefficient that runs off to infinity (monotone likelihood: e.g. no events
        at all in one level of a 0/1 covariate); its estimate and interval mean nothing."""
        return np.isfinite(self.params) & (np.abs(self.params) < 15) & (self.bse < 50)

    def table(self, level: float = 0.95) -> pd.DataFrame:
        z = stats.norm.ppf(0.5 + level / 2)
        ok = self.estimable
        b = np.where(ok, self.params, np.nan)
        se = np.where(ok, self.bse, np.nan)
        return pd.DataFrame({"term": self.terms, "coef": b, "se": se, "z": b / se, "p": 2 * stats.norm.sf(np.abs(b / se)),
                             "hazard_ratio": np.exp(b), "hr_low": np.exp(b - z * se), "hr_high": np.exp(b + z * se),
                             "estimable": ok})


class _Stratum:
    """One stratum's data sorted by time, with its distinct event times and the tie structure,
    set up once; `terms(beta)` gives the log-likelihood, gradient and information."""

    def __init__(self, X, t, e, w, ghost_g=None):
        """`ghost_g` (Fine-Gray): for rows with a competing exit, G(T-) of the censoring
        distribution (NaN for the others); such a row stays in the risk sets after its exit with
        weight G(t-) / G(T-)."""
        order = np.argsort(-t, kind="stable")  # descending: risk sets are prefixes
        self.X, self.t, self.e, self.w, self.order = X[order], t[order], e[order], w[order], order
        ev = self.e > 0
        self.times = np.unique(self.t[ev])  # ascending
        self.ghost = None
        if ghost_g is not None:
            g = ghost_g[order]
            rows = np.flatnonzero(np.isfinite(g))
            rows = rows[np.argsort(self.t[rows], kind="stable")]  # ascending exit time
            self.ghost = rows
            self.ghost_G = g[rows]
            # ghosts at risk at time j: those with exit before it
            self.ghost_n = np.searchsorted(self.t[rows], self.times, side="left")
            # event times after each ghost's exit start at this index
            self.ghost_from = np.searchsorted(self.times, self.t[rows], side="right")
        # risk set of time j: rows with t >= times[j] -> a prefix of the descending order
        self.n_risk = np.searchsorted(-self.t, -self.times, side="right")
        self.jd = np.searchsorted(self.times, self.t[ev])  # event time index of each death
        self.dead = np.flatnonzero(ev)
        self.d = np.bincount(self.jd, minlength=len(self.times)).astype(float)
        self.sw = np.bincount(self.jd, weights=self.w[ev], minlength=len(self.times))
        # Efron's l = 0..d-1 for every event time, flattened
        d_int = self.d.astype(int)
        self.l_j = np.repeat(np.arange(len(self.times)), d_int)
        self.l_f = (np.arange(d_int.sum()) - np.repeat(np.cumsum(d_int) - d_int, d_int)) / np.repeat(self.d, d_int)

    def terms(self, beta, want_resid=False, h=None):
        """Log-likelihood, gradient and information (with `h`, a multiplier per event time, the
        information sum_j h_j I_j and the Schoenfeld sum sum_deaths w h (x - xbar) instead)."""
        X, w = self.X, self.w
        eta = X @ beta
        r = np.exp(eta)
        wr = w * r
        J = len(self.times)
        cs0 = np.cumsum(wr)
        cs1 = np.cumsum(wr[:, None] * X, axis=0)
        S0 = cs0[self.n_risk - 1]
        S1 = cs1[self.n_risk - 1]
        if self.ghost is not None:  # Fine-Gray: competing exits stay, weighted by G(t-) / G(T-)
            gr_ = self.ghost
            gw = wr[gr_] / self.ghost_G
            c0 = np.r_[0.0, np.cumsum(gw)]
            c1g = np.vstack([np.zeros(X.shape[1]), np.cumsum(gw[:, None] * X[gr_], axis=0)])
            S0 = S0 + self.G_t * c0[self.ghost_n]
            S1 = S1 + self.G_t[:, None] * c1g[self.ghost_n]
        dw = wr[self.dead]
        A0 = np.bincount(self.jd, weights=dw, minlength=J)
        A1 = np.zeros((J, X.shape[1]))
        np.add.at(A1, self.jd, dw[:, None] * X[self.dead])
        f, lj = self.l_f, self.l_j
        den = S0[lj] - f * A0[lj]
        c1 = np.bincount(lj, weights=1 / den, minlength=J)
        c2 = np.bincount(lj, weights=f / den, minlength=J)
        c3 = np.bincount(lj, weights=1 / den ** 2, minlength=J)
        c4 = np.bincount(lj, weights=f / den ** 2, minlength=J)
        c5 = np.bincount(lj, weights=f * f / den ** 2, minlength=J)
        a = self.sw / self.d
        if h is not None:
            a = a * h
        ev_w = w[self.dead]
        loglik = float((ev_w * eta[self.dead]).sum() - (a * np.bincount(lj, weights=np.log(den), minlength=J)).sum())
        hd = ev_w if h is None else ev_w * h[self.jd]
        grad = (hd[:, None] * X[self.dead]).sum(0) - (a[:, None] * (S1 * c1[:, None] - A1 * c2[:, None])).sum(0)
        # information: sum_j a_j sum_l [(S2 - f A2)/den_l - m_l m_l'], S2 and A2 never formed:
        # sum_j a_j c1_j S2_j = X' diag(w r b) X with b_i = sum of a_j c1_j over times <= t_i
        b = np.r_[0.0, np.cumsum(a * c1)][np.searchsorted(self.times, self.t, side="right")]
        info = (X * (wr * b)[:, None]).T @ X
        if self.ghost is not None:  # the ghosts' S2 terms: sum over event times after the exit
            suffix = np.r_[np.cumsum((a * c1 * self.G_t)[::-1])[::-1], 0.0]
            bg = suffix[self.ghost_from] / self.ghost_G
            Xg = X[self.ghost]
            info += (Xg * (wr[self.ghost] * bg)[:, None]).T @ Xg
        info -= (X[self.dead] * (dw * (a * c2)[self.jd])[:, None]).T @ X[self.dead]
        info -= (S1 * (a * c3)[:, None]).T @ S1
        cross = (S1 * (a * c4)[:, None]).T @ A1
        info += cross + cross.T
        info -= (A1 * (a * c5)[:, None]).T @ A1
        if not want_resid:
            return loglik, grad, info
        # score residuals (Efron; sum_i w_i U_i = grad): see docs/spells.md
        M1 = S1 * c3[:, None] - A1 * c4[:, None]
        M2 = S1 * c4[:, None] - A1 * c5[:, None]
        xbar = (S1 * c1[:, None] - A1 * c2[:, None]) / self.d[:, None]
        pos = np.searchsorted(self.times, self.t, side="right")
        cum_c1 = np.r_[0.0, np.cumsum(a * c1)][pos]
        cum_M1 = np.vstack([np.zeros(X.shape[1]), np.cumsum(a[:, None] * M1, axis=0)])[pos]
        U = -r[:, None] * (X * cum_c1[:, None] - cum_M1)
        jd = self.jd
        U[self.dead] += X[self.dead] - xbar[jd]
        U[self.dead] += r[self.dead, None] * a[jd, None] * (X[self.dead] * c2[jd, None] - M2[jd])
        if self.ghost is not None:
            gr_ = self.ghost
            suf_c = np.r_[np.cumsum((a * c1 * self.G_t)[::-1])[::-1], 0.0][self.ghost_from]
            suf_m = np.vstack([np.cumsum((a * self.G_t)[::-1, None] * M1[::-1], axis=0)[::-1],
                               np.zeros(X.shape[1])])[self.ghost_from]
            U[gr_] -= (r[gr_] / self.ghost_G)[:, None] * (X[gr_] * suf_c[:, None] - suf_m)
        out = np.empty_like(U)
        out[self.order] = U
        return loglik, grad, info, out


def cox(data: pd.DataFrame, duration: str, event: str, covariates: list[str], weights: str | None = None,
        strata: str | list[str] | None = None, cluster: str | None = None, robust: bool | None = None,
        tol: float = 1e-10, max_iter: int = 50, _ghost=None) -> CoxResult:
    """Cox proportional hazards by Efron's partial likelihood, Newton-Raphson with step halving.
    `weights` are case weights; `strata` gives each stratum its own baseline; `cluster` (or
    `robust=True`) gives the sandwich variance summed within clusters (repeated spells of a
    person), as R's coxph(..., cluster=) and lifelines' robust=True. Rows with a missing value
    in a used column are refused (drop and count them before: nothing is imputed)."""
    strata = [strata] if isinstance(strata, str) else list(strata or [])
    used = [duration, event, *covariates] + ([weights] if weights else []) + strata + ([cluster] if cluster else [])
    missing = [c for c in used if c not in data.columns]
    if missing:
        raise SurvivalError(f"no column {', '.join(missing)}")
    na = data[used].isna().any(axis=1)
    if na.any():
        raise SurvivalError(f"{int(na.sum())} rows have a missing value in {', '.join(c for c in used if data[c].isna().any())}; "
                            "drop them (and report how many) first")
    X = data[covariates].to_numpy(float)
    t, e, w = _arrays(data[duration], data[event], data[weights] if weights else None)
    if e.sum() == 0:
        raise SurvivalError("no events")
    groups = (pd.factorize(pd.MultiIndex.from_frame(data[strata]))[0] if strata else np.zeros(len(t), int))
    layers = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        if e[idx].sum() > 0:
            st = _Stratum(X[idx], t[idx], e[idx], w[idx], None if _ghost is None else _ghost[0][idx])
            if _ghost is not None:
                st.G_t = _ghost[1](st.times)
            layers.append((idx, st))

    def total(beta, resid=False):
        ll, gr, inf = 0.0, np.zeros(X.shape[1]), np.zeros((X.shape[1], X.shape[1]))
        U = np.zeros_like(X) if resid else None
        for idx, s in layers:
            out = s.terms(beta, resid)
            ll, gr, inf = ll + out[0], gr + out[1], inf + out[2]
            if resid:
                U[idx] = out[3]
        return ll, gr, inf, U

    beta = np.zeros(X.shape[1])
    ll, gr, inf, _ = total(beta)
    it, converged = 0, False
    for it in range(1, max_iter + 1):
        step = np.linalg.solve(inf, gr)
        for _ in range(30):
            new = beta + step
            ll_new, gr_new, inf_new, _ = total(new)
            if np.isfinite(ll_new) and ll_new >= ll - 1e-12 * abs(ll):
                break
            step /= 2
        beta, ll, gr, inf = new, ll_new, gr_new, inf_new
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    ll, gr, inf, U = total(beta, resid=True)
    cov_model = np.linalg.pinv(inf) if not np.all(np.isfinite(inf)) or np.linalg.cond(inf) > 1e14 else np.linalg.inv(inf)
    robust = bool(cluster) if robust is None else robust
    cov, G = cov_model, None
    if robust:
        D = (U * w[:, None]) @ cov_model
        if cluster:
            codes = pd.factorize(data[cluster])[0]
            G = int(codes.max()) + 1
            Dg = np.zeros((G, D.shape[1]))
            np.add.at(Dg, codes, D)
        else:
            Dg, G = D, len(D)
        cov = Dg.T @ Dg
    return CoxResult(list(covariates), beta, cov, cov_model, ll, len(t), float((w * e).sum()), it, robust, G,
                     converged)


def _censoring_before(t: np.ndarray, censored: np.ndarray, w: np.ndarray, at: np.ndarray) -> np.ndarray:
    """G(s-) for each s in `at`: the Kaplan-Meier of censoring over censoring times before s,
    exits at a tied time counted before the censorings (as R's finegray)."""
    ct, inv = np.unique(t, return_inverse=True)
    c = np.bincount(inv, weights=w * censored, minlength=len(ct))
    ex = np.bincount(inv, weights=w * ~censored, minlength=len(ct))
    n = np.cumsum((c + ex)[::-1])[::-1] - ex  # at risk of censoring at c: exits there went first
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(np.where(n > 0, 1 - c / n, 1.0))
    k = np.searchsorted(ct, at, side="left")  # censoring times strictly before s
    return np.r_[1.0, surv][k]


def fine_gray(data: pd.DataFrame, duration: str, kind: str, cause, covariates: list[str], weights: str | None = None,
              cluster: str | None = None, censored=("sensurert",), tol: float = 1e-10, max_iter: int = 50) -> CoxResult:
    """Fine-Gray regression of the subdistribution hazard of exit `cause`, every other exit
    competing: a Cox model in which a spell with a competing exit stays in the risk sets after
    it, weighted by the censoring survival G(t-) / G(T-). Efron ties; the sandwich variance
    summed by `cluster` (or by row), as R's finegray() + coxph(..., cluster=). `kind` holds
    each spell's exit: `cause`, another exit, or censored (NaN or a value in `censored`)."""
    k = data[kind]
    cens = (k.isna() | k.isin(list(censored))).to_numpy()
    e = ((k == cause).to_numpy() & ~cens).astype(int)
    comp = ~cens & (e == 0)
    t = data[duration].to_numpy(float)
    w = np.ones(len(t)) if weights is None else data[weights].to_numpy(float)
    G = _censoring_before(t, cens, w, t)
    ghost = np.where(comp, G, np.nan)
    d = data.assign(_fg_e=e)
    return cox(d, duration, "_fg_e", covariates, weights=weights, cluster=cluster, robust=True, tol=tol,
               max_iter=max_iter, _ghost=(ghost, lambda times: _censoring_before(t, cens, w, times)))


def ph_test(data: pd.DataFrame, fit: CoxResult, duration: str, event: str, weights: str | None = None,
            strata: str | list[str] | None = None) -> pd.DataFrame:
    """Test of proportional hazards (Grambsch and Therneau): for each covariate the score test
    of adding covariate x g(t), g = 1 - KM(t-) centred over the events (R's cox.zph with its
    default transform), and the global test of all of them. Small p: the covariate's hazard
    ratio changes with time since the start."""
    strata = [strata] if isinstance(strata, str) else list(strata or [])
    X = data[fit.terms].to_numpy(float)
    t, e, w = _arrays(data[duration], data[event], data[weights] if weights else None)
    # g at each event time: 1 - the overall Kaplan-Meier just before it, centred over deaths
    km = kaplan_meier(t, e)
    ev_times = km.loc[km["events"] > 0, "time"].to_numpy()
    s_before = np.r_[1.0, km["survival"].to_numpy()[:-1]][km["events"].to_numpy() > 0]
    g_time = 1 - s_before
    deaths_t = t[e > 0]
    g_death = g_time[np.searchsorted(ev_times, deaths_t)]
    g_time = g_time - np.average(g_death, weights=w[e > 0])
    groups = (pd.factorize(pd.MultiIndex.from_frame(data[strata]))[0] if strata else np.zeros(len(t), int))
    p = X.shape[1]
    u, i_gb, i_gg, i_bb = np.zeros(p), np.zeros((p, p)), np.zeros((p, p)), np.zeros((p, p))
    for gr in np.unique(groups):
        idx = np.flatnonzero(groups == gr)
        if e[idx].sum() == 0:
            continue
        st = _Stratum(X[idx], t[idx], e[idx], w[idx])
        h = g_time[np.searchsorted(ev_times, st.times)]
        _, _, inf = st.terms(fit.params)[:3]
        _, grad_h, inf_h = st.terms(fit.params, h=h)[:3]
        _, _, inf_hh = st.terms(fit.params, h=h * h)[:3]
        u += grad_h
        i_bb += inf
        i_gb += inf_h
        i_gg += inf_hh
    V = i_gg - i_gb @ np.linalg.solve(i_bb, i_gb.T)
    chisq = u ** 2 / np.diag(V)
    glob = float(u @ np.linalg.solve(V, u))
    return pd.DataFrame({"term": [*fit.terms, "GLOBAL"], "chisq": [*chisq, glob], "df": [1] * p + [p],
                         "p": [*stats.chi2.sf(chisq, 1), stats.chi2.sf(glob, p)]})


__all__ = ["kaplan_meier", "life_table", "cumulative_incidence", "cox", "fine_gray", "ph_test", "CoxResult",
           "SurvivalError"]
