"""Policy evaluation: TWFE and CR1 against statsmodels and pyfixest, the wild cluster
bootstrap against a brute-force refit of every sign vector, test inversion against its own
p-values, and the weighted estimate against the unweighted where weights matter."""

import itertools

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from arbeidsindikator.analyses.evaluation.twfe import EvaluationError, twfe, wild_bootstrap


def _panel(G=12, T=30, seed=0, effect=0.5, hetero=True):
    """A region x month panel: a dose that some regions get from a date on, unit and period
    effects, cluster-correlated noise, and weights (persons) that vary by region."""
    rng = np.random.default_rng(seed)
    rows = []
    size = rng.integers(200, 5000, G)
    start = rng.integers(T // 3, T, G)
    dose = rng.uniform(0, 1, G) * (rng.uniform(size=G) < 0.6)
    a, g = rng.normal(0, 1, G), rng.normal(0, 0.5, T)
    shock = rng.normal(0, 0.3, G)
    for i in range(G):
        for t in range(T):
            d = dose[i] * (t >= start[i])
            # the effect is larger in big regions when hetero: weighting then changes the estimand
            eff = effect * (1 + (size[i] > 2500) * 1.5 if hetero else 1)
            e = rng.normal(0, 1 / np.sqrt(size[i] / 500)) + shock[i] * rng.normal()
            rows.append({"unit": f"r{i:02d}", "month": t, "dose": d, "other": rng.normal(),
                         "y": a[i] + g[t] + eff * d + e, "w": float(size[i])})
    return pd.DataFrame(rows)


def _dummies(p):
    X = pd.get_dummies(p[["dose", "other"]].assign(unit=p["unit"], month=p["month"].astype(str)),
                       columns=["unit", "month"], drop_first=False, dtype=float)
    return X.drop(columns=[c for c in X if c.startswith("month_")][:1])


@pytest.mark.parametrize("weighted", [False, True])
def test_twfe_and_cr1_equal_statsmodels_with_dummies(weighted):
    p = _panel()
    r = twfe(p, "y", ["dose", "other"], weight="w" if weighted else None)
    X = _dummies(p)
    groups = pd.factorize(p["unit"])[0]
    m = (sm.WLS(p["y"], X, weights=p["w"]) if weighted else sm.OLS(p["y"], X)).fit(
        cov_type="cluster", cov_kwds={"groups": groups})
    np.testing.assert_allclose(r.params, m.params[["dose", "other"]], rtol=1e-8)
    np.testing.assert_allclose(r.bse, m.bse[["dose", "other"]], rtol=1e-8)
    assert r.n_clusters == 12 and r.nobs == len(p)


@pytest.mark.parametrize("ours, theirs, cluster", [("full", "full", "unit"), ("nested", "nonnested", "unit"),
                                                   ("nested", "nonnested", "region"), ("full", "full", "region")])
def test_twfe_equals_pyfixest(ours, theirs, cluster):
    """Both small-sample conventions: every fixed effect counted, or (fixest's default) those
    nested in the clusters not."""
    pf = pytest.importorskip("pyfixest")
    p = _panel(seed=3).assign(region=lambda x: pd.factorize(x["unit"])[0] % 4)
    r = twfe(p, "y", ["dose", "other"], weight="w", cluster=cluster, small_sample=ours)
    f = pf.feols("y ~ dose + other | unit + month", data=p, weights="w", vcov={"CRV1": cluster},
                 ssc=pf.ssc(k_adj=True, k_fixef=theirs, G_adj=True))
    np.testing.assert_allclose(r.params, f.coef()[["dose", "other"]], rtol=1e-8)
    np.testing.assert_allclose(r.bse, f.se()[["dose", "other"]], rtol=1e-8)
    assert r.table()["method"][0] == ("TWFE, CR1" if ours == "full" else "TWFE, CR1 (nested FE not counted)")


def _brute_force_p(p, null, weighted):
    """Every Rademacher sign vector, the restricted model refitted with statsmodels each time."""
    X = _dummies(p)
    w = p["w"] if weighted else np.ones(len(p))
    groups = pd.factorize(p["unit"])[0]
    G = groups.max() + 1
    fit = lambda yy: sm.WLS(yy, X, weights=w).fit(cov_type="cluster", cov_kwds={"groups": groups})  # noqa: E731
    full = fit(p["y"])
    t_obs = (full.params["dose"] - null) / full.bse["dose"]
    restricted = sm.WLS(p["y"] - null * p["dose"], X.drop(columns="dose"), weights=w).fit()
    y_r, u = restricted.fittedvalues + null * p["dose"], restricted.resid
    ts = []
    for signs in itertools.product((-1.0, 1.0), repeat=G):
        m = fit(y_r + np.asarray(signs)[groups] * u)
        ts.append((m.params["dose"] - null) / m.bse["dose"])
    return t_obs, np.mean(np.abs(np.array(ts)) >= abs(t_obs) - 1e-12)


@pytest.mark.parametrize("weighted, null", [(False, 0.0), (True, 0.0), (True, 0.4)])
def test_wild_bootstrap_equals_refitting_every_sign_vector(weighted, null):
    p = _panel(G=7, T=14, seed=5)
    t_obs, p_ref = _brute_force_p(p, null, weighted)
    r = wild_bootstrap(p, "y", ["dose", "other"], weight="w" if weighted else None, null=null,
                       weights="rademacher", B=999, level=None)
    assert r.enumerated and r.draws == 2 ** 7
    assert r.t == pytest.approx(t_obs, rel=1e-8)
    assert r.p == pytest.approx(p_ref, abs=1e-12)


def test_confidence_interval_by_test_inversion():
    p = _panel(seed=7)
    r = wild_bootstrap(p, "y", "dose", weight="w", B=1999, weights="webb", seed=1)
    assert r.ci_low < twfe(p, "y", "dose", weight="w").params[0] < r.ci_high
    # the ends are where the bootstrap starts to reject at 5 %
    inside = wild_bootstrap(p, "y", "dose", weight="w", B=1999, weights="webb", seed=1, level=None,
                            null=r.ci_high - 0.01 * (r.ci_high - r.ci_low))
    outside = wild_bootstrap(p, "y", "dose", weight="w", B=1999, weights="webb", seed=1, level=None,
                             null=r.ci_high + 0.01 * (r.ci_high - r.ci_low))
    assert inside.p > 0.05 >= outside.p
    again = wild_bootstrap(p, "y", "dose", weight="w", B=1999, weights="webb", seed=1)
    assert (again.p, again.ci_low, again.ci_high) == (r.p, r.ci_low, r.ci_high)  # reproducible


def test_weights_change_the_estimate_where_effects_differ_by_size():
    """A common adoption date, big treated regions with effect 2 and small ones with 0.5: the
    unweighted TWFE estimate is the plain mean of the regions' effects, the weighted one the
    person-weighted mean. Each is what its reference says, and they differ."""
    rng = np.random.default_rng(2)
    rows = []
    for i, (size, treated, eff) in enumerate([(5000, 1, 2.0), (5000, 1, 2.0), (200, 1, 0.5), (200, 1, 0.5),
                                              (200, 1, 0.5), (5000, 0, 0), (200, 0, 0), (1000, 0, 0)]):
        for t in range(20):
            d = float(treated and t >= 10)
            rows.append({"unit": i, "month": t, "dose": d, "w": float(size),
                         "y": i * 0.3 + 0.1 * t + eff * d + rng.normal(0, 0.01)})
    p = pd.DataFrame(rows)
    un, w = twfe(p, "y", "dose"), twfe(p, "y", "dose", weight="w")
    assert un.params[0] == pytest.approx((2 * 2.0 + 3 * 0.5) / 5, abs=0.02)
    assert w.params[0] == pytest.approx((2 * 5000 * 2.0 + 3 * 200 * 0.5) / (2 * 5000 + 3 * 200), abs=0.02)
    assert w.params[0] - un.params[0] > 0.5


def test_bad_panels_are_refused_with_the_column_named():
    p = _panel()
    with pytest.raises(EvaluationError, match="nope"):
        twfe(p, "nope", "dose")
    with pytest.raises(EvaluationError, match="collinear"):
        twfe(p.assign(const=1.0), "y", "const")
    with pytest.raises(EvaluationError, match="positive"):
        twfe(p.assign(w=0.0), "y", "dose", weight="w")
    r = twfe(p.assign(y=p["y"].where(p.index % 17 != 0)), "y", "dose")
    assert r.nobs == len(p) - (p.index % 17 == 0).sum()


def test_joint_bootstrap_equals_refitting_every_sign_vector():
    """The joint statistic (sum of squared CR1 t's) under H0: dose = other = 0, brute force."""
    from arbeidsindikator.analyses.evaluation.twfe import wild_bootstrap_joint
    p = _panel(G=7, T=14, seed=8)
    X = _dummies(p)
    groups = pd.factorize(p["unit"])[0]
    fit = lambda yy: sm.WLS(yy, X, weights=p["w"]).fit(cov_type="cluster", cov_kwds={"groups": groups})  # noqa: E731
    full = fit(p["y"])
    w_obs = ((full.params[["dose", "other"]] / full.bse[["dose", "other"]]) ** 2).sum()
    restricted = sm.WLS(p["y"], X.drop(columns=["dose", "other"]), weights=p["w"]).fit()
    ws = []
    for signs in itertools.product((-1.0, 1.0), repeat=7):
        m = fit(restricted.fittedvalues + np.asarray(signs)[groups] * restricted.resid)
        ws.append(((m.params[["dose", "other"]] / m.bse[["dose", "other"]]) ** 2).sum())
    r = wild_bootstrap_joint(p, "y", ["dose", "other"], ["dose", "other"], weight="w", weights="rademacher", B=999)
    assert r.t == pytest.approx(w_obs, rel=1e-8)
    assert r.p == pytest.approx(np.mean(np.array(ws) >= w_obs - 1e-12), abs=1e-12)


def test_the_bootstrap_rejects_a_true_null_at_about_five_percent():
    """300 panels of 12 clusters with no effect and strongly clustered errors: the WCR test
    with Webb weights rejects at 5 % in 2-9 % of them (binomial SE 1.3 points)."""
    rejections = 0
    for s in range(300):
        p = _panel(G=12, T=12, seed=1000 + s, effect=0.0)
        rejections += wild_bootstrap(p, "y", "dose", weight="w", B=199, weights="webb", seed=s, level=None).p <= 0.05
    assert 0.02 <= rejections / 300 <= 0.09


def _staggered(G=12, T=36, seed=0, effect=1.0, pre_trend=0.0):
    rng = np.random.default_rng(seed)
    rows = []
    adopt = {i: (int(rng.integers(12, 30)) if i < 8 else None) for i in range(G)}
    for i in range(G):
        for t in range(T):
            a = adopt[i]
            e = None if a is None else t - a
            y = i * 0.2 + 0.05 * t + (effect if e is not None and e >= 0 else 0)
            y += pre_trend * e if e is not None and e < 0 else 0
            rows.append({"unit": i, "month": t, "adopt": a, "y": y + rng.normal(0, 0.2), "w": 100.0 + 50 * i})
    return pd.DataFrame(rows)


def test_event_terms_bin_the_end_points_and_leave_out_the_reference():
    from arbeidsindikator.analyses.evaluation.twfe import event_terms
    p = pd.DataFrame({"unit": [1] * 8 + [2] * 8, "month": list(range(8)) * 2, "adopt": [4] * 8 + [None] * 8})
    d, terms, k = event_terms(p, "adopt", leads=2, lags=2, reference=-1)
    assert terms == ["em2", "ep0", "ep1", "ep2"]
    one = d[d["unit"] == 1]
    assert one["em2"].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]  # event time <= -2
    assert one["ep2"].tolist() == [0, 0, 0, 0, 0, 0, 1, 1]  # event time >= 2
    assert (d.loc[d["unit"] == 2, terms] == 0).all().all()  # never treated
    p2 = p.assign(month=pd.date_range("2023-01-01", periods=8, freq="MS").tolist() * 2,
                  adopt=[pd.Timestamp("2023-05-01")] * 8 + [pd.NaT] * 8)
    d2, _, _ = event_terms(p2, "adopt", leads=2, lags=2)
    assert (d2[terms].to_numpy() == d[terms].to_numpy()).all()  # months as dates give the same terms


def test_event_study_recovers_the_effect_and_tests_pre_trends_with_more_leads_than_clusters():
    from arbeidsindikator.analyses.evaluation.twfe import event_study
    flat = event_study(_staggered(seed=1), "y", "adopt", leads=14, lags=5, weight="w", B=999, seed=2)
    lags = flat.table[flat.table["event_time"] >= 0]
    assert ((lags["ci_low"] < 1.0) & (1.0 < lags["ci_high"])).mean() >= 0.8
    assert flat.pretrend.p > 0.05 and len(flat.table[flat.table["event_time"] < 0]) >= 12  # 13 leads, 12 clusters
    trend = event_study(_staggered(seed=1, pre_trend=0.1), "y", "adopt", leads=14, lags=5, weight="w", B=999, seed=2)
    assert trend.pretrend.p < 0.01


def test_panel_from_the_published_indicator_and_a_treatment_table(small_run, tmp_path):
    from arbeidsindikator.analyses.evaluation.panels import indicator_panel, with_treatment
    _, db = small_run
    panel = indicator_panel(db, "jobb3", level=2)
    assert panel["unit"].nunique() >= 12 and panel["persons"].min() >= 1 and panel.attrs["suppressed"] >= 0
    units = sorted(panel["unit"].unique())
    adoption = pd.DataFrame({"unit": units, "start": [("2022-09-01" if i % 2 else None) for i in range(len(units))]})
    adoption.to_csv(tmp_path / "t.csv", index=False)
    joined = with_treatment(panel, tmp_path / "t.csv", adoption="start")
    assert len(joined) == len(panel) and joined["start"].notna().any()
    with pytest.raises(EvaluationError, match="ingen rad i behandlingstabellen"):
        with_treatment(panel, adoption.iloc[1:], adoption="start")
    r = twfe(joined.assign(d=(joined["month"] >= joined["start"]).astype(float)), "indicator", "d", weight="persons")
    assert np.isfinite(r.params[0]) and r.n_clusters == panel["unit"].nunique()


# -- staggered adoption: the imputation estimator --------------------------------------------

DF_HET = None


def _df_het():
    """Butts' df_het (the did2s packages' public example data), shipped with pyfixest."""
    pf = pytest.importorskip("pyfixest")
    from pathlib import Path
    path = Path(pf.__file__).parent / "did" / "data" / "df_het.csv"
    df = pd.read_csv(path)
    df["adopt"] = df["g"].where(df["g"] > 0)
    df["treat"] = df["treat"].astype(bool)
    df["rel"] = np.where(df["g"] > 0, df["year"] - df["g"], -1000)
    return df


@pytest.mark.parametrize("weighted", [False, True])
def test_imputation_equals_two_stage_did_on_public_data(weighted):
    """Gardner's two-stage DiD (pyfixest.did2s) gives the BJS imputation estimate: overall and
    for each event time (pyfixest demeans iteratively, hence 1e-5)."""
    import pyfixest as pf

    from arbeidsindikator.analyses.evaluation.imputation import imputation
    df = _df_het()
    df = df[df["unit"] <= 600].assign(w=lambda x: 1.0 + x["state"] % 5)
    w = "w" if weighted else None
    r = imputation(df, "dep_var", "adopt", unit="unit", time="year", cluster="state", weight=w)
    f = pf.did2s(df, yname="dep_var", first_stage="~ 0 | unit + year", second_stage="~i(treat, ref=False)",
                 treatment="treat", cluster="state", weights=w)
    assert r.overall["estimate"][0] == pytest.approx(f.coef().iloc[0], rel=1e-5)
    f2 = pf.did2s(df, yname="dep_var", first_stage="~ 0 | unit + year", second_stage="~i(rel, ref=-1000)",
                  treatment="treat", cluster="state", weights=w)
    c = f2.coef()
    for k in range(0, 6):
        ours = r.by_event_time.loc[r.by_event_time["event_time"] == k, "estimate"].iloc[0]
        assert ours == pytest.approx(c[f"rel::{k}"], rel=1e-5)


def _bjs_se(df, y, adopt, unit, time, cluster, w, by):
    """BJS's conservative SE of the overall effect written out as did_imputation does it: v* from
    dense dummies by least squares, the treated residuals centred by the smart average
    (clusterweight = sum of v in cluster x group; smartweight = clusterweight x v / sum of both)."""
    d = df.reset_index(drop=True).copy()
    d["w_"] = d[w] if w else 1.0
    d["treated"] = d[adopt].notna() & (d[time] >= d[adopt])
    Z = pd.get_dummies(d[unit].astype(str)).join(pd.get_dummies(d[time].astype(str), drop_first=True)).to_numpy(float)
    u = ~d["treated"].to_numpy()
    sw = np.sqrt(d["w_"].to_numpy())
    theta = np.linalg.lstsq(Z[u] * sw[u, None], d[y].to_numpy()[u] * sw[u], rcond=None)[0]
    d["tau"] = d[y] - Z @ theta
    d["v"] = np.where(u, 0.0, d["w_"] / d.loc[~u, "w_"].sum())
    # v* of the untreated: -W0 Z0 (Z0' W0 Z0)^+ Z1' v1
    A = np.linalg.pinv((Z[u] * d["w_"].to_numpy()[u, None]).T @ Z[u])
    d.loc[u, "v"] = -(Z[u] @ (A @ (Z[~u].T @ d.loc[~u, "v"].to_numpy()))) * d.loc[u, "w_"].to_numpy()
    t = d.loc[~u].copy()
    t["g"] = t[time] - t[adopt] if by == "event_time" else t[adopt].astype(str) + "_" + t[time].astype(str)
    t["cw"] = t.groupby([cluster, "g"])["v"].transform("sum")
    t["sw"] = t["cw"] * t["v"] / (t["cw"] * t["v"]).groupby(t["g"]).transform("sum")
    t["avg"] = (t["sw"] * t["tau"]).groupby(t["g"]).transform("sum")
    d["e"] = d[y] - Z @ theta
    d.loc[~u, "e"] = t["tau"] - t["avg"]
    return float(np.sqrt(((d["v"] * d["e"]).groupby(d[cluster]).sum() ** 2).sum()))


@pytest.mark.parametrize("by", ["event_time", "cohort_period"])
def test_imputation_variance_uses_the_smart_average_of_did_imputation(by):
    """The conservative SE equals did_imputation's formula written out independently (weighted,
    state clusters), and with equal weights and unit clusters the smart average is the plain one."""
    from arbeidsindikator.analyses.evaluation.imputation import imputation
    df = _df_het()
    df = df[df["unit"] <= 120].assign(w=lambda x: 1.0 + x["unit"] % 7)
    r = imputation(df, "dep_var", "adopt", unit="unit", time="year", cluster="state", weight="w", average_by=by)
    ref = _bjs_se(df, "dep_var", "adopt", "unit", "year", "state", "w", by)
    assert r.overall["se"][0] == pytest.approx(ref, rel=1e-8)
    r1 = imputation(df, "dep_var", "adopt", unit="unit", time="year", cluster="unit", average_by=by)
    assert r1.overall["se"][0] == pytest.approx(_bjs_se(df, "dep_var", "adopt", "unit", "year", "unit", None, by), rel=1e-8)
    # equal weights, unit clusters, one row per unit and group: the smart average is the plain mean
    t = r1.tau.assign(g=r1.tau["event_time"] if by == "event_time" else r1.tau["period"])
    plain = t["tau"] - t.groupby(["g"] if by == "event_time" else ["g", t["period"] - t["event_time"]])["tau"].transform("mean")
    from arbeidsindikator.analyses.evaluation import imputation as imp
    g = pd.factorize(t["g"] if by == "event_time" else t["g"].astype(str) + "_" + (t["period"] - t["event_time"]).astype(str))[0]
    unit_code = pd.factorize(t["unit"])[0]
    smart = t["tau"] - imp._smart_average(t["tau"].to_numpy(), np.ones(len(t)), g, unit_code * (g.max() + 1) + g)
    np.testing.assert_allclose(smart, plain, atol=1e-12)
    with pytest.raises(EvaluationError, match="average_by"):
        imputation(df, "dep_var", "adopt", unit="unit", time="year", average_by="cohort")


def test_imputation_recovers_dynamic_effects_where_twfe_does_not():
    """Effects that grow with time since adoption and staggered timing: TWFE's single
    coefficient is pulled away from the average effect on the treated (it uses early adopters
    as controls for late ones); the imputation estimate is on the truth, and its 95% interval
    covers it."""
    from arbeidsindikator.analyses.evaluation.imputation import imputation
    rng = np.random.default_rng(4)
    rows, truth = [], []
    for i in range(40):
        a = [5, 10, 15, None][i % 4]
        for t in range(24):
            eff = 0.0 if a is None or t < a else 0.3 * (t - a + 1)
            if eff:
                truth.append(eff)
            rows.append({"unit": i, "month": t, "adopt": a, "d": float(a is not None and t >= a),
                         "y": 0.1 * i + 0.05 * t + eff + rng.normal(0, 0.1)})
    p = pd.DataFrame(rows)
    att = np.mean(truth)
    r = imputation(p, "y", "adopt")
    assert r.overall["estimate"][0] == pytest.approx(att, abs=0.03)
    assert r.overall["ci_low"][0] < att < r.overall["ci_high"][0]
    ks = r.by_event_time.set_index("event_time")["estimate"]
    assert ks[0] == pytest.approx(0.3, abs=0.05) and ks[5] == pytest.approx(1.8, abs=0.05)
    assert abs(twfe(p, "y", "d").params[0] - att) > 0.3  # the forbidden comparisons


def test_imputation_refuses_what_the_untreated_rows_cannot_identify():
    from arbeidsindikator.analyses.evaluation.imputation import imputation
    p = pd.DataFrame({"unit": [1, 1, 2, 2], "month": [0, 1, 0, 1], "adopt": [0, 0, None, None], "y": [1.0, 2, 3, 4]})
    with pytest.raises(EvaluationError, match="never observed untreated"):
        imputation(p, "y", "adopt")


# -- robustness ------------------------------------------------------------------------------

def test_randomization_inference_enumerates_whole_paths_like_a_brute_force():
    from arbeidsindikator.analyses.evaluation.robustness import randomization_inference
    p = _panel(G=5, T=12, seed=21)
    r = randomization_inference(p, "y", "dose", weight="w", R=999)
    assert r["exact"] and r["draws"] == 120
    units = sorted(p["unit"].unique())
    paths = {u: p[p["unit"] == u].sort_values("month")["dose"].to_numpy() for u in units}
    ts = []
    for perm in itertools.permutations(units):
        q = p.sort_values(["unit", "month"]).copy()
        q["dose"] = np.concatenate([paths[perm[i]] for i in range(len(units))])
        X = pd.get_dummies(q[["dose"]].assign(unit=q["unit"], month=q["month"].astype(str)), columns=["unit", "month"],
                           dtype=float).drop(columns="month_0")
        m = sm.WLS(q["y"], X, weights=q["w"]).fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(q["unit"])[0]})
        ts.append(m.params["dose"] / m.bse["dose"])
    t_obs = ts[0]  # the identity permutation comes first
    assert r["t"] == pytest.approx(t_obs, rel=1e-8)
    assert r["p"] == pytest.approx(np.mean(np.abs(ts) >= abs(t_obs) - 1e-12), abs=1e-12)


def test_placebo_dates_find_anticipation_and_leave_one_out_and_mde():
    from arbeidsindikator.analyses.evaluation.robustness import leave_one_out, minimum_detectable_effect, placebo_dates
    def world(anticipation):
        rng = np.random.default_rng(3)
        rows = []
        for i in range(12):
            treated = i < 6
            for t in range(48):
                d = float(treated and t >= 36)
                antic = anticipation if treated and 30 <= t < 36 else 0.0  # behaviour changes six months early
                rows.append({"unit": i, "month": t, "dose": d, "y": 0.2 * i + 0.01 * t + d + antic + rng.normal(0, 0.1)})
        return pd.DataFrame(rows)

    assert (placebo_dates(world(0.0), "y", "dose", shifts=[6, 12, 18])["p"] > 0.01).all()
    p = world(1.0)
    assert placebo_dates(p, "y", "dose", shifts=[6])["p"][0] < 0.01
    loo = leave_one_out(p, "y", "dose")
    assert len(loo) == 12
    assert loo.loc[loo["left_out"] == 3, "estimate"].iloc[0] == pytest.approx(
        twfe(p[p["unit"] != 3], "y", "dose").params[0], rel=1e-12)
    assert minimum_detectable_effect(1.0, 12) == pytest.approx(2.2010 + 0.8755, abs=1e-3)


def test_shorter_pre_periods_expose_a_level_that_shifts_with_the_treated_units():
    """Six treated units whose contribution drops in the year of the policy (nothing to do with
    the policy, whose effect is 0): the whole panel finds an "effect", a pre-period in the same
    year does not, and the Hausman comparison flags the difference. Without the shift the
    estimates agree. Each row equals statsmodels on the truncated panel."""
    from arbeidsindikator.analyses.evaluation.robustness import shorter_pre_periods

    def world(shift, seed=5):
        rng = np.random.default_rng(seed)
        rows = []
        for i in range(12):
            treated, size = i < 6, float(rng.integers(500, 4000))
            for t in range(36):  # three years; the policy from month 33, its year from month 24
                level = -shift if treated and t >= 24 else 0.0
                rows.append({"unit": f"r{i:02d}", "month": t, "dose": 0.4 * (treated and t >= 33), "w": size,
                             "y": 0.3 * i + 0.05 * t + level + rng.normal(0, 0.1)})
        return pd.DataFrame(rows)

    p = world(1.0)
    fp = shorter_pre_periods(p, "y", "dose", weight="w")
    assert fp["pre_periods"].tolist() == [33, 24, 12, 6] and fp["first_period"].tolist() == ["0", "9", "21", "27"]
    assert fp["estimate"].iloc[0] < -1.0  # the shift, per unit of dose
    assert abs(fp["estimate"].iloc[-1]) < 3 * fp["se"].iloc[-1] and fp["p_difference"].iloc[-1] < 0.01
    six = p[p["month"] >= 27]
    m = sm.WLS(six["y"], _dummies(six.assign(other=0.0)).drop(columns="other"), weights=six["w"]).fit()
    assert fp["estimate"].iloc[-1] == pytest.approx(m.params["dose"], rel=1e-8)
    same = shorter_pre_periods(world(0.0), "y", "dose", weight="w")
    assert (same["p_difference"].dropna() > 0.01).all()


# -- the command ------------------------------------------------------------------------------

@pytest.mark.parametrize("design", ["dose", "adoption"])
def test_the_evaluation_command_writes_results_figure_and_report(small_run, tmp_path, design, readable_on_a_phone):
    import json

    from typer.testing import CliRunner

    from arbeidsindikator.analyses.evaluation.panels import indicator_panel
    from arbeidsindikator.cli import app
    _, db = small_run
    panel = indicator_panel(db, "jobb3", level=2)
    units = sorted(panel["unit"].unique())
    if design == "dose":
        grid = pd.MultiIndex.from_product([units, sorted(panel["month"].unique())], names=["unit", "month"])
        t = grid.to_frame(index=False).assign(kutt=lambda x: np.where((x["unit"] < "40") & (x["month"] >= "2023-07-01"),
                                                                     0.5, 0.0))
        key = 'dose = "kutt"\nplacebo_shifts = [6, 12]'
    else:
        t = pd.DataFrame({"unit": units, "start": [("2023-01-01" if i % 2 else None) for i in range(len(units))]})
        key = 'adoption = "start"\nleads = 6\nlags = 6'
    t.to_csv(tmp_path / "behandling.csv", index=False)
    (tmp_path / "eval.toml").write_text(f'[evaluation]\nname = "Test"\noutcome = "jobb3"\ntreatment = "behandling.csv"\n'
                                        f'{key}\nbootstrap = 499\nfrom = "2021-01"\n', encoding="utf-8")
    r = CliRunner().invoke(app, ["analyse", "evaluering", "--config", str(tmp_path / "eval.toml"), "--db", str(db),
                                 "--out", str(tmp_path / "ut")])
    assert r.exit_code == 0, r.output
    res = pd.read_csv(tmp_path / "ut" / "resultater.csv")
    assert list(res.columns[:8]) == ["term", "estimate", "se", "ci_low", "ci_high", "p", "p_bootstrap", "method"]
    assert np.isfinite(res["estimate"]).all() and (res["ci_low"] < res["ci_high"]).all()
    summary = json.loads((tmp_path / "ut" / "resultater.json").read_text())
    assert summary["panel"]["units"] == len(units)
    html = (tmp_path / "ut" / "rapport.html").read_text()
    assert readable_on_a_phone(tmp_path / "ut" / "rapport.html") > 10
    assert "parallelle trender" in html and "<svg" in html and "Traceback" not in html
    assert (tmp_path / "ut" / "figurer" / "evaluering.png").exists()
    if design == "adoption":
        assert (tmp_path / "ut" / "hendelsesstudie.csv").exists() and summary["parallelle_trender"]["p"] >= 0


def test_a_bad_evaluation_config_is_one_line(small_run, tmp_path):
    from typer.testing import CliRunner

    from arbeidsindikator.cli import app
    (tmp_path / "eval.toml").write_text('[evaluation]\noutcome = "jobb3"\nbootstrap = "mange"\ncolour = 1\n')
    r = CliRunner().invoke(app, ["analyse", "evaluering", "--config", str(tmp_path / "eval.toml"), "--db",
                                 str(small_run[1]), "--out", str(tmp_path / "ut")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "colour" in r.output and "bootstrap" in r.output and "treatment" in r.output
    assert not (tmp_path / "ut").exists()


@pytest.mark.parametrize("line, says", [
    ("bootstrap = 0", "bootstrap må være fra 99 til 99999, ikke 0"),
    ("bootstrap = 100000000000", "bootstrap må være fra 99"),
    ("bootstrap = true", "bootstrap må være et heltall, ikke True"),
    ('placebo_shifts = ["a"]', "placebo_shifts må være en liste med heltall"),
    ("leads = -2", "leads må være fra 1 til 60"),
    ('from = "2022-13"', "from må være en måned"),
])
def test_every_bad_evaluation_key_is_one_norwegian_sentence(tmp_path, line, says):
    from arbeidsindikator.analyses.evaluation.run import load_config
    f = tmp_path / "eval.toml"
    f.write_text(f'[evaluation]\ntreatment = "t.csv"\ndose = "kutt"\n{line}\n')
    with pytest.raises(EvaluationError, match=says):
        load_config(f)
    with pytest.raises(EvaluationError, match="det er en mappe"):
        load_config(tmp_path)


def test_the_small_sample_and_average_keys_are_checked(tmp_path):
    from arbeidsindikator.analyses.evaluation.run import load_config
    f = tmp_path / "eval.toml"
    f.write_text('[evaluation]\ntreatment = "t.csv"\nadoption = "start"\nsmall_sample = "nested"\n'
                 'average_by = "cohort_period"\n')
    c = load_config(f)
    assert (c.small_sample, c.average_by) == ("nested", "cohort_period")
    f.write_text('[evaluation]\ntreatment = "t.csv"\nadoption = "start"\nsmall_sample = "fixest"\naverage_by = "x"\n')
    with pytest.raises(EvaluationError, match="small_sample må være full eller nested; average_by må være"):
        load_config(f)


def test_placebo_policies_on_the_published_indicator_are_rejected_at_about_five_percent(small_run):
    """Size on the project's own panels: 200 made-up policies (a random half of the regions
    treated from a random month) on the small world's region x month indicator, where the true
    effect is zero by construction. The weighted WCR test at 5 % rejects 0-11 % of them (the
    policies share one panel, so this is a check of calibration on realistic correlation, not
    an independent simulation)."""
    from arbeidsindikator.analyses.evaluation.panels import indicator_panel
    panel = indicator_panel(small_run[1], "jobb3", level=2)
    panel = panel[panel["unit"] != "NOE"]  # NOE exists only from 2022-09
    units = np.array(sorted(panel["unit"].unique()))
    months = np.array(sorted(panel["month"].unique()))
    rng = np.random.default_rng(42)
    rejected = []
    for s in range(200):
        treated = rng.choice(units, size=len(units) // 2, replace=False)
        start = months[rng.integers(12, len(months) - 12)]
        d = panel.assign(dose=(panel["unit"].isin(treated) & (panel["month"] >= start)).astype(float))
        rejected.append(wild_bootstrap(d, "indicator", "dose", weight="persons", B=199, seed=s, level=None).p <= 0.05)
    assert np.mean(rejected) <= 0.11


def test_a_treatment_table_with_bad_months_or_doses_is_refused(small_run):
    from arbeidsindikator.analyses.evaluation.panels import indicator_panel, with_treatment
    panel = indicator_panel(small_run[1], "jobb3", level=2)
    units = sorted(panel["unit"].unique())
    with pytest.raises(EvaluationError, match="må være en måned"):
        with_treatment(panel, pd.DataFrame({"unit": units, "start": ["2023-13"] * len(units)}), adoption="start")
    grid = panel[["unit", "month"]].assign(kutt="mye")
    with pytest.raises(EvaluationError, match="må være et tall"):
        with_treatment(panel, grid, dose="kutt")


def test_wild_bootstrap_equals_wildboottest_on_unweighted_problems():
    """wildboottest (WCR11, null imposed): with Rademacher weights and 2^12 < B both enumerate all
    sign vectors, so the p-values are identical; with Webb weights they agree within Monte Carlo
    error (B = 99 999)."""
    wbt = pytest.importorskip("wildboottest.wildboottest")
    import statsmodels.formula.api as smf
    p = _panel(G=12, T=24, seed=5, hetero=False)
    model = smf.ols("y ~ dose + C(unit) + C(month)", data=p)
    codes = pd.factorize(p["unit"])[0]
    for kind, B, tol in (("rademacher", 9999, 1e-12), ("webb", 99_999, 0.006)):
        ref = wbt.wildboottest(model, param="dose", cluster=codes, B=B, weights_type=kind, impose_null=True,
                               bootstrap_type="11", seed=1, show=False)
        ours = wild_bootstrap(p, "y", "dose", B=B, weights=kind, seed=3, level=None)
        assert ours.t == pytest.approx(float(ref["statistic"].iloc[0]), rel=1e-9)
        diff = ours.p - float(ref["p-value"].iloc[0])
        if kind == "rademacher":
            # exact ties: the identity sign vector and its mirror reproduce the observed t; we
            # count them (relative tolerance), the reference leaves them to the last bit
            assert ours.enumerated and ours.p >= 2 / ours.draws
            assert -tol <= diff <= 2 / ours.draws + tol, (kind, ours.p, float(ref["p-value"].iloc[0]))
        else:
            assert abs(diff) <= tol, (kind, ours.p, float(ref["p-value"].iloc[0]))
