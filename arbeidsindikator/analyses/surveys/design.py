"""Design-based survey estimation: stratified cluster samples with design weights and finite
population corrections; totals, means, ratios and proportions by domain with Taylor-linearised
(or jackknife) standard errors and design effects; post-stratification and raking with their
effect on the variance; survey-weighted linear and logistic regression; Likert summaries and
response rates.

The numbers are R's survey package's (Lumley), which the tests check to 1e-8 / 1e-6: the same
linearisation (`svyrecvar`: PSU totals of the influence values, centred within strata, scaled by
(1 - f_h) n_h / (n_h - 1)), the same post-stratification and raking adjustments of the influence
values, domains as subsets that keep the whole design, and svyglm's sandwich. Written here
because no maintained Python library gives these numbers with calibrated weights (samplics is
unmaintained, statsmodels has no survey designs), and the statistics agency needs them to equal
the reference implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

Z95 = stats.norm.ppf(0.975)


class SurveyError(ValueError):
    """A design or request the estimators cannot use (named column and rule)."""


@dataclass
class Design:
    """A one-stage (or ultimate-cluster) design: `weights` are the design weights (1 / inclusion
    probability), `strata` and `psu` name columns (no strata: one stratum; no psu: every row its
    own PSU), `fpc` the population number of PSUs per stratum (a column, constant in a stratum)
    or None. `lonely_psu` for strata with one PSU: 'fail' (R's default) or 'certainty' (no
    variance from that stratum)."""
    data: pd.DataFrame
    weights: np.ndarray
    strata: np.ndarray
    psu: np.ndarray
    fpc: np.ndarray | None
    n_psu: np.ndarray  # number of PSUs in the row's stratum
    lonely_psu: str = "fail"
    calibrations: list = field(default_factory=list)  # post-strata and rakings, in order
    replicates: np.ndarray | None = None  # (n, R) replicate weights (jackknife)
    rscales: np.ndarray | None = None
    psu2: np.ndarray | None = None  # second-stage units within PSUs (two-stage designs)

    @property
    def df(self) -> int:
        """Design degrees of freedom: PSUs minus strata."""
        return int(len(np.unique(self.psu)) - len(np.unique(self.strata)))

    def domain_df(self, domain: np.ndarray | None) -> int:
        """Degrees of freedom of a domain (R's degf of the subset design): the PSUs with a member
        of the domain minus the strata with one."""
        if domain is None:
            return self.df
        m = np.asarray(domain, bool)
        return int(len(np.unique(self.psu[m])) - len(np.unique(self.strata[m])))


def design(data: pd.DataFrame, weights: str, strata: str | None = None, psu: str | None = None,
           fpc: str | None = None, lonely_psu: str = "fail", psu2: str | None = None) -> Design:
    """`psu2` names second-stage units sampled within each PSU (employees within offices), drawn
    with replacement (no second-stage correction): with a first-stage `fpc` the variance adds
    each stratum's sampling fraction times the within-PSU variance, as R's svydesign(ids = ~psu +
    psu2, fpc = ~N + Inf); a stratum taken whole then still has the second stage's variance."""
    need = [c for c in (weights, strata, psu, fpc) if c]
    missing = [c for c in need if c not in data.columns]
    if missing:
        raise SurveyError(f"the survey data have no column {', '.join(missing)}")
    na = data[need].isna().any(axis=1)
    if na.any():
        raise SurveyError(f"{int(na.sum())} rows miss a weight, stratum, PSU or population size")
    w = data[weights].to_numpy(float)
    if (w <= 0).any() or not np.isfinite(w).all():
        raise SurveyError(f"{weights} must be positive: {int((w <= 0).sum())} rows are not")
    st = pd.factorize(data[strata])[0] if strata else np.zeros(len(data), int)
    ps = pd.factorize(pd.MultiIndex.from_arrays([st, data[psu]]))[0] if psu else np.arange(len(data))
    n_psu_by = pd.Series(ps).groupby(st).nunique()
    n_psu = n_psu_by.reindex(st).to_numpy()
    f = None
    if fpc:
        f = data[fpc].to_numpy(float)
        if pd.Series(f).groupby(st).nunique().max() > 1:
            raise SurveyError(f"{fpc} must be the same for every row of a stratum")
        if (f < n_psu).any():
            raise SurveyError(f"{fpc} (PSUs in the population) is smaller than the PSUs sampled in a stratum")
    if lonely_psu not in ("fail", "certainty"):
        raise SurveyError("lonely_psu must be 'fail' or 'certainty'")
    second = pd.factorize(pd.MultiIndex.from_arrays([ps, data[psu2]]))[0] if psu2 else None
    return Design(data.reset_index(drop=True), w, st, ps, f, n_psu, lonely_psu, psu2=second)


# -- variance ----------------------------------------------------------------------------------

def _adjust(d: Design, x: np.ndarray) -> np.ndarray:
    """The influence values after the calibrations (R's svyrecvar): each post-stratification
    removes the post-stratum means, each raking repeats that over its margins ten times."""
    for cal in d.calibrations:
        if cal["kind"] == "post":
            g, psw, oldw = cal["groups"], cal["weights"], cal["oldweights"]
            num = pd.DataFrame(x * (oldw / psw)[:, None]).groupby(g).sum().to_numpy()
            den = pd.Series(oldw).groupby(g).sum().to_numpy()
            means = num / den[:, None]
            x = x - means[pd.factorize(g, sort=True)[0]] * psw[:, None]
        else:  # raking
            for _ in range(10):
                for g, psw in cal["margins"]:
                    codes = pd.factorize(g)[0]
                    y = x / psw[:, None]
                    avg = pd.DataFrame(y).groupby(codes).transform("mean").to_numpy()
                    x = x - psw[:, None] * avg
    return x


def _recvar(d: Design, x: np.ndarray) -> np.ndarray:
    """Covariance of the totals of x (n x p influence values, weights included) under the design."""
    x = _adjust(d, np.asarray(x, float).reshape(len(d.weights), -1))
    p = x.shape[1]
    out = np.zeros((p, p))
    for h in np.unique(d.strata):
        rows = d.strata == h
        n_h = int(d.n_psu[rows][0])
        f = 1.0 if d.fpc is None or np.isinf(d.fpc[rows][0]) else (d.fpc[rows][0] - n_h) / d.fpc[rows][0]
        if d.psu2 is not None and d.fpc is not None and f < 1:  # the second stage, scaled by the sampling fraction
            out += (1 - f) * _within(x[rows], d.psu[rows], d.psu2[rows], d.lonely_psu)
        t = pd.DataFrame(x[rows]).groupby(d.psu[rows]).sum().to_numpy()
        if f < 1e-7:  # every PSU of the stratum taken: no first-stage variance there
            continue
        if n_h == 1:
            if d.lonely_psu == "fail":
                raise SurveyError(f"stratum {h} has only one PSU: its variance cannot be estimated "
                                  "(choose lonely_psu='certainty' if it was taken with certainty)")
            continue
        t = t - t.mean(axis=0)
        out += f * n_h / (n_h - 1) * t.T @ t
    return out


def _within(x: np.ndarray, psu: np.ndarray, unit: np.ndarray, lonely: str) -> np.ndarray:
    """Sum over PSUs of the with-replacement variance of their second-stage units' totals."""
    p = x.shape[1]
    out = np.zeros((p, p))
    for j in np.unique(psu):
        rows = psu == j
        t = pd.DataFrame(x[rows]).groupby(unit[rows]).sum().to_numpy()
        m = len(t)
        if m == 1:
            if lonely == "fail":
                raise SurveyError(f"PSU {j} has only one second-stage unit")
            continue
        t = t - t.mean(axis=0)
        out += m / (m - 1) * t.T @ t
    return out


def _variance(d: Design, estimate, x: np.ndarray) -> np.ndarray:
    """Taylor linearisation, or the jackknife if the design has replicate weights (then
    `estimate(weights)` recomputes the statistic)."""
    if d.replicates is None:
        return _recvar(d, x)
    thetas = np.array([np.atleast_1d(estimate(d.replicates[:, r])) for r in range(d.replicates.shape[1])])
    centred = thetas - thetas.mean(axis=0)  # R's default (mse = FALSE)
    return (centred * d.rscales[:, None]).T @ centred


def jackknife(d: Design) -> Design:
    """Stratified delete-one-PSU jackknife (R's as.svrepdesign(type = 'JKn')): replicate r drops
    PSU j of stratum h, reweights the stratum's other PSUs by n_h / (n_h - 1); scales
    (n_h - 1) / n_h, times (1 - f_h) with a finite population correction."""
    if d.calibrations:
        raise SurveyError("make the jackknife before post-stratifying or raking")
    reps, scales = [], []
    for h in np.unique(d.strata):
        rows = d.strata == h
        psus = np.unique(d.psu[rows])
        n_h = len(psus)
        if n_h == 1:
            continue
        f = 1.0 if d.fpc is None or np.isinf(d.fpc[rows][0]) else (d.fpc[rows][0] - n_h) / d.fpc[rows][0]
        for j in psus:
            w = d.weights.copy()
            w[rows] *= n_h / (n_h - 1)
            w[d.psu == j] = 0.0
            reps.append(w)
            scales.append(f * (n_h - 1) / n_h)
    return replace(d, replicates=np.column_stack(reps), rscales=np.array(scales))


# -- estimators ----------------------------------------------------------------------------------

@dataclass
class Estimate:
    name: str
    estimate: float
    se: float
    deff: float | None = None
    n: int = 0  # respondents the estimate rests on

    def ci(self, level: float = 0.95, df: int | None = None) -> tuple[float, float]:
        """Normal interval (R's default), or t with `df` degrees of freedom (the design's, when
        strata hold few PSUs)."""
        q = stats.norm.ppf(0.5 + level / 2) if df is None else stats.t.ppf(0.5 + level / 2, max(df, 1))
        return self.estimate - q * self.se, self.estimate + q * self.se


def _values(d: Design, y: str) -> np.ndarray:
    if y not in d.data.columns:
        raise SurveyError(f"the survey data have no column {y}")
    v = d.data[y]
    if v.isna().any():
        raise SurveyError(f"{y} has {int(v.isna().sum())} missing answers; drop them (and report how many) "
                          "or estimate on the answered subset as a domain")
    return v.to_numpy(float)


def _domain(d: Design, domain: np.ndarray | None) -> np.ndarray:
    return np.ones(len(d.weights), bool) if domain is None else np.asarray(domain, bool)


def total(d: Design, y: str, domain=None) -> Estimate:
    """Estimated population total of y (in the domain), R's svytotal."""
    v, m = _values(d, y), _domain(d, domain)
    est = lambda w: float((w * v * m).sum())  # noqa: E731
    var = _variance(d, est, (d.weights * v * m)[:, None])
    return Estimate(f"total({y})", est(d.weights), float(np.sqrt(var[0, 0])), n=int(m.sum()))


def mean(d: Design, y: str, domain=None, deff: bool = True) -> Estimate:
    """Estimated population mean of y (in the domain; a 0/1 y gives a proportion), R's svymean,
    with its design effect against simple random sampling of the same size (without
    replacement)."""
    v, m = _values(d, y), _domain(d, domain)
    w = d.weights * m
    if w.sum() == 0:
        raise SurveyError(f"the domain has no respondents for {y}")
    est = lambda ww: float((ww * m * v).sum() / (ww * m).sum())  # noqa: E731
    avg = est(d.weights)
    var = _variance(d, est, (w * (v - avg) / w.sum())[:, None])[0, 0]
    e = Estimate(f"mean({y})", avg, float(np.sqrt(var)), n=int(m.sum()))
    if deff:
        n, N = int(m.sum()), w.sum()
        s2 = (w * (v - avg) ** 2).sum() / N * n / (n - 1) if n > 1 else np.nan
        vsrs = s2 * (N - n) / (N * n) if n > 1 else np.nan
        e.deff = float(var / vsrs) if vsrs and vsrs > 0 else np.nan
    return e


def ratio(d: Design, y: str, x: str, domain=None) -> Estimate:
    """Estimated ratio of the totals of y and x (in the domain), R's svyratio."""
    vy, vx, m = _values(d, y), _values(d, x), _domain(d, domain)
    est = lambda w: float((w * vy * m).sum() / (w * vx * m).sum())  # noqa: E731
    r = est(d.weights)
    tx = (d.weights * vx * m).sum()
    lin = m * (vy - r * vx) / tx
    var = _variance(d, est, (d.weights * lin)[:, None])[0, 0]
    return Estimate(f"{y}/{x}", r, float(np.sqrt(var)), n=int(m.sum()))


def ratio_total(d: Design, y: str, x: str, by: str, totals: dict | pd.Series) -> Estimate:
    """Separate ratio estimator of the total of y: in each group of `by` (usually the strata) the
    ratio of the totals of y and x times x's known total there, summed. With x known for the
    whole population (office FTEs from HR), it removes the variation of x between PSUs. R:
    predict(svyratio(~y, ~x, design, separate = TRUE), total = totals)."""
    vy, vx = _values(d, y), _values(d, x)
    g = d.data[by].astype(str).to_numpy()
    tot = pd.Series(totals, dtype=float)
    tot.index = tot.index.astype(str)
    missing = set(g) - set(tot.index)
    if missing:
        raise SurveyError(f"no known total of {x} for {by} = {sorted(missing)[:3]}")
    X = tot.reindex(g).to_numpy()

    def est(w):
        num = pd.Series(w * vy).groupby(g).sum()
        den = pd.Series(w * vx).groupby(g).sum()
        return float((num / den * tot.reindex(num.index)).sum())

    num = pd.Series(d.weights * vy).groupby(g).transform("sum").to_numpy()
    den = pd.Series(d.weights * vx).groupby(g).transform("sum").to_numpy()
    r = num / den
    lin = X * (vy - r * vx) / den
    var = _variance(d, est, (d.weights * lin)[:, None])[0, 0]
    # design effect: against a simple random sample of as many units from the whole population
    n, N = len(vy), d.weights.sum()
    s2 = (d.weights * (lin - np.average(lin, weights=d.weights)) ** 2).sum() / N * n / (n - 1) if n > 1 else np.nan
    vsrs = N ** 2 * (1 - n / N) * s2 / n if n > 1 else np.nan
    return Estimate(f"ratio_total({y})", est(d.weights), float(np.sqrt(var)),
                    deff=float(var / vsrs) if vsrs and vsrs > 0 else np.nan, n=n)


def by_domain(d: Design, y: str, by: str, statistic: str = "mean", min_n: int = 30) -> pd.DataFrame:
    """The statistic in every domain of `by` (R's svyby), with its interval, design effect
    (means) and the number of respondents; domains under `min_n` respondents are flagged."""
    rows = []
    for level in sorted(d.data[by].dropna().unique()):
        m = (d.data[by] == level).to_numpy()
        e = mean(d, y, m) if statistic == "mean" else total(d, y, m)
        lo, hi = e.ci()
        rows.append({by: level, "estimate": e.estimate, "se": e.se, "ci_low": lo, "ci_high": hi,
                     "deff": e.deff, "n": e.n, "few": e.n < min_n})
    return pd.DataFrame(rows)


# -- calibration -----------------------------------------------------------------------------------

def poststratify(d: Design, by: str | list[str], population: dict | pd.Series) -> Design:
    """Post-stratify to known population counts per cell of `by` (R's postStratify): weights in
    cell g times N_g / N̂_g; the variance then counts only variation within the cells."""
    g = _cells(d, by)
    pop = pd.Series(population, dtype=float)
    est = pd.Series(d.weights).groupby(g).sum()
    missing_pop = set(est.index) - set(pop.index)
    if missing_pop:
        raise SurveyError(f"post-strata in the sample but not in the population: {sorted(missing_pop)[:3]}")
    missing_sample = set(pop.index[pop > 0]) - set(est.index)
    if missing_sample:
        raise SurveyError(f"post-strata with population but no respondents: {sorted(missing_sample)[:3]}")
    new = d.weights * (pop / est).reindex(g).to_numpy()
    cal = {"kind": "post", "groups": g, "weights": new, "oldweights": d.weights}
    reps = d.replicates
    if reps is not None:  # every replicate calibrated to the same counts (R recalibrates each)
        codes, cells = pd.factorize(g)
        sums = np.vstack([np.bincount(codes, reps[:, r], len(cells)) for r in range(reps.shape[1])]).T  # cells x R
        target = pop.reindex(cells).to_numpy()[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(sums > 0, target / sums, 0.0)
        reps = reps * factor[codes]
    return replace(d, weights=new, replicates=reps, calibrations=[*d.calibrations, cal])


def _cells(d: Design, by) -> np.ndarray:
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in by if c not in d.data.columns]
    if missing:
        raise SurveyError(f"the survey data have no column {', '.join(missing)}")
    if len(by) == 1:
        return d.data[by[0]].astype(str).to_numpy()
    return d.data[by].astype(str).agg("|".join, axis=1).to_numpy()


def rake(d: Design, margins: dict[str, dict], epsilon: float = 1.0, max_iter: int = 10) -> Design:
    """Rake to known population margins (iterative proportional fitting, R's rake): each pass
    post-stratifies to every margin in turn; it stops when no cell of the joint table of the
    margin variables moves by `epsilon` (in weight units, R's default 1) or after `max_iter`
    passes. The variance adjusts the influence values to every margin, as R does."""
    names = list(margins)
    joint = lambda w: pd.Series(w).groupby([d.data[c].astype(str).to_numpy() for c in names]).sum()  # noqa: E731
    cur = d
    old = joint(d.weights)
    steps = []
    converged = False
    for _ in range(max_iter):
        cur = replace(cur, calibrations=list(d.calibrations))
        steps = []
        for c in names:
            cur = poststratify(cur, c, margins[c])
            steps.append((_cells(cur, c), cur.weights))
        new = joint(cur.weights)
        delta = float((old - new).abs().max())
        if delta < epsilon:
            converged = True
            break
        old = new
    # R warns when raking does not converge; here it is recorded with the calibration
    return replace(cur, calibrations=[*d.calibrations, {"kind": "rake", "margins": steps, "converged": converged}])


# -- regression ------------------------------------------------------------------------------------

@dataclass
class RegressionResult:
    terms: list[str]
    params: np.ndarray
    cov: np.ndarray
    df: int
    family: str

    @property
    def bse(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    def table(self, level: float = 0.95) -> pd.DataFrame:
        t = self.params / self.bse
        q = stats.t.ppf(0.5 + level / 2, self.df)
        out = pd.DataFrame({"term": self.terms, "coef": self.params, "se": self.bse, "t": t,
                            "p": 2 * stats.t.sf(np.abs(t), self.df), "ci_low": self.params - q * self.bse,
                            "ci_high": self.params + q * self.bse})
        if self.family == "logistic":
            out["odds_ratio"] = np.exp(out["coef"])
            out["or_low"], out["or_high"] = np.exp(out["ci_low"]), np.exp(out["ci_high"])
        return out


def regression(d: Design, y: str, covariates: list[str], family: str = "linear", domain=None,
               tol: float = 1e-12, max_iter: int = 50) -> RegressionResult:
    """Survey-weighted linear or logistic regression with an intercept (R's svyglm, gaussian or
    quasibinomial): coefficients from the weighted fit, the design-based sandwich variance,
    t intervals with the design's degrees of freedom minus the slopes."""
    v, m = _values(d, y), _domain(d, domain)
    X = np.column_stack([np.ones(len(v))] + [_values(d, c) for c in covariates])
    flat = [c for c, col in zip(covariates, X[:, 1:].T) if np.ptp(col[m]) == 0]
    if flat:
        raise SurveyError(f"{', '.join(flat)} do(es) not vary among the respondents: no coefficient to estimate")
    if family not in ("linear", "logistic"):
        raise SurveyError(f"family must be 'linear' or 'logistic', not {family!r}")
    if family == "logistic" and not np.isin(v[m], (0.0, 1.0)).all():
        raise SurveyError(f"{y} must be 0/1 for a logistic regression")

    def fit(weights, start=None):
        """The weighted fit: coefficients, the bread A and the scores."""
        w = weights * m
        if family == "linear":
            A = X.T @ (X * w[:, None])
            beta = np.linalg.solve(A, X.T @ (w * v))
            return beta, A, X * (w * (v - X @ beta))[:, None]
        beta = np.zeros(X.shape[1]) if start is None else start.copy()
        for _ in range(max_iter):
            mu = 1 / (1 + np.exp(-(X @ beta)))
            A = X.T @ (X * (w * mu * (1 - mu))[:, None])
            step = np.linalg.solve(A, X.T @ (w * (v - mu)))
            beta = beta + step
            if np.max(np.abs(step)) < tol:
                break
        mu = 1 / (1 + np.exp(-(X @ beta)))
        return beta, X.T @ (X * (w * mu * (1 - mu))[:, None]), X * (w * (v - mu))[:, None]

    beta, A, score = fit(d.weights)
    # a replicate design refits on every replicate's weights (R's svyglm on a svrepdesign);
    # otherwise the sandwich with the linearised scores
    cov = _variance(d, lambda rw: fit(rw, beta)[0], score @ np.linalg.inv(A))
    return RegressionResult(["konstant", *covariates], beta, cov, d.df - len(covariates), family)


# -- Likert scales and response rates ----------------------------------------------------------------

def likert(d: Design, item: str, groups=((1, 2), (3, 4), (5, 6)), top: tuple = (6,), domain=None,
           min_n: int = 30) -> pd.DataFrame:
    """A 1-6 item: the weighted mean, the grouped distribution (1-2 / 3-4 / 5-6 by default) and
    the top-box share (answering 6), each with its interval and design effect; flagged if the
    estimate rests on fewer than `min_n` answers."""
    v = _values(d, item)
    data = d.data.assign(**{f"_{i}": np.isin(v, g).astype(float) for i, g in enumerate(groups)},
                         _top=np.isin(v, top).astype(float))
    dd = replace(d, data=data)
    rows = []
    for name, col, scale in ([("snitt", item, 1.0)] + [(f"{g[0]}-{g[-1]}", f"_{i}", 100.0) for i, g in enumerate(groups)]
                             + [("topp", "_top", 100.0)]):
        e = mean(dd, col, domain)
        lo, hi = e.ci() if col == item else proportion_ci(e, df=d.domain_df(domain))
        rows.append({"item": item, "statistic": name, "estimate": scale * e.estimate, "se": scale * e.se,
                     "ci_low": scale * lo, "ci_high": scale * hi, "deff": e.deff, "n": e.n, "few": e.n < min_n})
    return pd.DataFrame(rows)


def proportion_ci(e: Estimate, level: float = 0.95, df: int | None = None) -> tuple[float, float]:
    """Interval for a proportion on the logit scale, t with the design's (or the domain's)
    degrees of freedom (R's svyciprop(method = "logit")): it stays inside [0, 1] where the normal
    interval of a small share would not. A share of 0 or 1 has no estimable variance, and R
    returns NaN or a zero-width interval; here it gets the Clopper-Pearson interval on the
    answers it rests on (design effect taken as 1): 0 of 30 gives 0 to 11.6 %."""
    p = e.estimate
    alpha = 1 - level
    if (p <= 0 or p >= 1) and e.n > 0:
        edge = (alpha / 2) ** (1 / e.n)
        return (0.0, 1 - edge) if p <= 0 else (edge, 1.0)
    if p <= 0 or p >= 1 or e.se == 0:
        return p, p
    z = stats.norm.ppf(0.5 + level / 2) if df is None else stats.t.ppf(0.5 + level / 2, max(df, 1))
    half = z * e.se / (p * (1 - p))
    lg = np.log(p / (1 - p))
    return float(1 / (1 + np.exp(-(lg - half)))), float(1 / (1 + np.exp(-(lg + half))))


def response_rate(respondents: float, nonrespondents: float, unknown: float = 0.0, eligible_share: float = 1.0) -> float:
    """Response rate: respondents over the eligible, where cases of unknown eligibility count with
    the estimated eligible share e (AAPOR RR3; e = 1 gives RR1): I / (I + R + e U). AFI 2014:
    5204 / (5204 + 8926 + 0.95 x 9861) = 22.1 %."""
    if min(respondents, nonrespondents, unknown) < 0 or not 0 <= eligible_share <= 1:
        raise SurveyError("counts must be non-negative and the eligible share between 0 and 1")
    return respondents / (respondents + nonrespondents + eligible_share * unknown)


__all__ = ["Design", "design", "jackknife", "Estimate", "total", "mean", "ratio", "ratio_total", "by_domain", "poststratify",
           "rake", "regression", "RegressionResult", "likert", "proportion_ci", "response_rate", "SurveyError"]
