"""The movers' forecast-bias test (issue 32): recomputed with pandas, statsmodels and pyfixest, and
scored against the synthetic worlds' truth."""

import duckdb
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from arbeidsindikator.analyses.movers import MoversError, forecast_test
from arbeidsindikator.analyses import movers as M
from arbeidsindikator.pipeline.shrinkage import NOE_ID
from arbeidsindikator.present.movers_report import write_movers


def _pandas_movers(db, run_id: str, outcome: str, k: int) -> pd.DataFrame:
    """The movers and their changes, written again with pandas from the person results: each
    side's office mean over the mover's own months, without the mover, of all other users and of
    each half (even and odd person ids)."""
    con = duckdb.connect(str(db), read_only=True)
    d = con.execute(f"SELECT person_id, month, office_id, actual_{outcome} - expected_{outcome} AS e "
                    "FROM person_results WHERE run_id = ?", [run_id]).df()
    con.close()
    if outcome.startswith("jobb"):
        d["e"] *= 100
    d["month"] = pd.to_datetime(d["month"])
    d["e"] = d["e"] - d.groupby("month")["e"].transform("mean")
    d = d.sort_values(["person_id", "month"]).reset_index(drop=True)
    d["run"] = (d["office_id"] != d.groupby("person_id")["office_id"].shift()).astype(int).groupby(d["person_id"]).cumsum()
    obs = d[d["e"].notna()].assign(half=lambda x: x["person_id"] % 2)
    om = obs.groupby(["office_id", "month", "half"])["e"].agg(["sum", "count"])
    last = d.groupby("office_id")["month"].max()

    def other(office, rows, pid):
        """The office's other users in the months of `rows` (the mover's own), per half and in all."""
        got = om.loc[office].reset_index()
        got = got[got["month"].isin(rows["month"])].groupby("half")[["sum", "count"]].sum().reindex([0, 1], fill_value=0)
        got.loc[pid % 2, "sum"] -= rows["e"].sum()
        got.loc[pid % 2, "count"] -= len(rows)
        tot = got.sum()
        return tot["sum"] / tot["count"], *(got["sum"] / got["count"]).tolist()
    rows = []
    for pid, g in d.groupby("person_id"):
        runs = g.groupby("run").agg(office=("office_id", "first"), first=("month", "min"))
        for r in runs.index[:-1]:
            a, b = runs.loc[r], runs.loc[r + 1]
            if NOE_ID in (a.office, b.office) or a.office == b.office or last[a.office] < b["first"]:
                continue
            nxt = runs.loc[r + 2, "first"] if r + 2 in runs.index else None
            pre = g[(g["run"] == r) & (g["month"] <= b["first"] - pd.DateOffset(months=k)) & g["e"].notna()]
            post = g[(g["run"] == r + 1) & g["e"].notna()]
            if nxt is not None:
                post = post[post["month"] <= nxt - pd.DateOffset(months=k)]
            if pre.empty or post.empty:
                continue
            lo_o, lo_oa, lo_ob = other(a.office, pre, pid)
            lo_d, lo_da, lo_db = other(b.office, post, pid)
            rows.append({"person_id": pid, "moved": b["first"], "origin": a.office, "dest": b.office,
                         "dy": post["e"].mean() - pre["e"].mean(), "lo_origin": lo_o, "lo_dest": lo_d,
                         "lo_origin_a": lo_oa, "lo_origin_b": lo_ob, "lo_dest_a": lo_da, "lo_dest_b": lo_db})
    out = pd.DataFrame(rows)
    return out[np.isfinite(out[["lo_origin_a", "lo_origin_b", "lo_dest_a", "lo_dest_b"]]).all(axis=1)]


def _run_id(db) -> str:
    con = duckdb.connect(str(db), read_only=True)
    rid = con.execute("SELECT max(run_id) FROM person_results").fetchall()[0][0]
    con.close()
    return rid


@pytest.mark.parametrize("outcome,k", [("jobb3", 3), ("atid12", 12)])
def test_movers_and_coefficient_are_reproduced(small_run, outcome, k):
    _, db = small_run
    rid = _run_id(db)
    want = _pandas_movers(db, rid, outcome, k).sort_values(["person_id", "moved"]).reset_index(drop=True)
    con = duckdb.connect()
    con.execute("ATTACH ? AS res (READ_ONLY)", [str(db)])
    M._person_results(con, rid, outcome)
    got = M._movers(con, k)
    con.close()
    assert len(got) == len(want) > 200
    for c in ("dy", "lo_origin", "lo_dest", "lo_origin_a", "lo_origin_b", "lo_dest_a", "lo_dest_b"):
        np.testing.assert_allclose(got[c].to_numpy(), want[c].to_numpy(), rtol=1e-9, atol=1e-9)
    assert (got["origin"].to_numpy() == want["origin"].to_numpy()).all()
    # the coefficient: the change measured on one half instrumented by the other half's, clustered
    # by both offices (pyfixest; its small-sample factor for two-way clusters differs a little)
    pf = pytest.importorskip("pyfixest")
    want["dva_a"] = want["lo_dest_a"] - want["lo_origin_a"]
    want["dva_b"] = want["lo_dest_b"] - want["lo_origin_b"]
    row = forecast_test(db, [rid], outcomes=[outcome]).table.iloc[0]
    fit = pf.feols("dy ~ 1 | dva_a ~ dva_b", data=want, vcov={"CRV1": "origin + dest"})
    assert row["coefficient"] == pytest.approx(float(fit.coef()["dva_a"]), rel=1e-8)
    assert row["se"] == pytest.approx(float(fit.se()["dva_a"]), rel=0.1)


def test_two_way_clustered_ols_equals_statsmodels():
    """The hand-written estimator with Z = X is OLS; its two-way clustered covariance is
    statsmodels' exactly (Cameron, Gelbach and Miller, each part with its small-sample factor)."""
    rng = np.random.default_rng(1)
    n = 500
    g = np.column_stack([rng.integers(0, 12, n), rng.integers(0, 9, n)])
    x = rng.normal(size=n) + 0.3 * g[:, 0]
    y = 1 + 0.5 * x + rng.normal(size=n) + 0.2 * g[:, 1]
    X = sm.add_constant(x)
    ref = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": g})
    b, V = M._iv(y, X, X, g)
    np.testing.assert_allclose(b, ref.params, rtol=1e-10)
    np.testing.assert_allclose(V, ref.cov_params(), rtol=1e-8)


def test_person_effects_equal_pyfixest(small_run):
    """The office effects with person effects (an office-by-office system after absorbing the
    persons) are pyfixest's two-way fixed effects (alternating projections, then LSQR)."""
    pf = pytest.importorskip("pyfixest")
    from arbeidsindikator.analyses import person_effects as PE
    con = duckdb.connect()
    con.execute("ATTACH ? AS res (READ_ONLY)", [str(small_run[1])])
    M._person_results(con, _run_id(small_run[1]), "atid3")
    rows = PE._rows(con)
    con.close()
    # pyfixest needs a regressor beside the fixed effects: a random one, partialled out of ours
    rows["x"] = np.random.default_rng(0).normal(size=len(rows))
    fit = pf.feols("e ~ x | office_id + person_id", data=rows, fixef_tol=1e-12)
    ref = pd.Series(next(v for k, v in fit.fixef(atol=1e-12, btol=1e-12).items() if "office" in k))
    ours = PE.fit_office_effects(rows.assign(e=rows["e"] - fit.coef()["x"] * rows["x"]))
    assert ours.left_out == 0 and (ours.movers > 0).all()
    want = ref.set_axis(ref.index.astype(str)).reindex(ours.office).to_numpy(float)
    want = want - np.average(want, weights=ours.n)
    np.testing.assert_allclose(ours.effect, want, atol=1e-5)


def test_clean_world_forecasts_without_bias(medium_clean_run, medium_clean_world):
    """Where the model sees everything that differs between users, a user who changes office
    changes result by the change in the indicator: the interval covers 1, and the truth's own
    coefficient is 1 within its noise."""
    t = forecast_test(medium_clean_run, data_dir=medium_clean_world).table.set_index("outcome")
    assert (t["movers"] > 1000).all()
    assert ((t["truth_coefficient"] - 1).abs() < 0.1).all(), t["truth_coefficient"]
    assert t["truth_in_interval"].all(), t[["coefficient", "ci_low", "ci_high", "truth_coefficient"]]
    covers = (t["ci_low"] <= 1) & (t["ci_high"] >= 1)
    assert covers.sum() >= 3, t[["coefficient", "ci_low", "ci_high"]]


def test_realistic_world_shows_that_part_is_the_users(small_run, small_world):
    """Where users of some offices differ in ways the model cannot see, the truth's coefficient is
    well below 1 and the movers' estimate finds it (its interval holds the truth's coefficient)."""
    t = forecast_test(small_run[1], data_dir=small_world).table.set_index("outcome")
    assert (t["truth_coefficient"] < 0.85).all(), t["truth_coefficient"]
    assert (t["coefficient"] < 1).all()
    assert t["truth_in_interval"].sum() >= 3, t[["coefficient", "ci_low", "ci_high", "truth_coefficient"]]


def test_without_person_results_is_refused(tmp_path, small_run):
    empty = tmp_path / "tom.duckdb"
    duckdb.connect(str(empty)).close()
    with pytest.raises(MoversError, match="personnivå"):
        forecast_test(empty)
    with pytest.raises(MoversError, match="ikke lagret på personnivå"):
        forecast_test(small_run[1], ["ingen-slik-kjøring"])
    with pytest.raises(MoversError, match="finnes ikke"):
        forecast_test(small_run[1], outcomes=["atid3; DROP TABLE x"])


def test_report_is_declared_and_reads_on_a_phone(small_run, small_world, tmp_path, readable_on_a_phone):
    path = write_movers(small_run[1], tmp_path / "flyttere", data_dir=small_world)
    html = path.read_text(encoding="utf-8")
    assert "Forutsier indikatoren hva et kontor gjør" in html and "fasitens koeffisient" in html
    t = pd.read_csv(tmp_path / "flyttere" / "prognoseskjevhet.csv")
    assert len(t) == 4 and (t["movers"] >= 30).all()
    assert (pd.read_csv(tmp_path / "flyttere" / "gruppert.csv")["movers"] >= 10).all()
    measures = pd.read_csv(tmp_path / "flyttere" / "personeffekter.csv")
    assert len(measures) == 4 and {"indicator_r_truth", "person_effects_r_truth"} <= set(measures)
    assert "En variant med personeffekter" in html
    readable_on_a_phone(path)
