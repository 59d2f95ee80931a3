"""Office resources (issue 6): WLS against statsmodels and pyfixest, weighted quintiles,
the HR exclusion report, the one-command analysis, and the estimates against the truth."""

import re
import shutil

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm
from typer.testing import CliRunner

from arbeidsindikator.cli import app
from arbeidsindikator.analyses.resources import (ResourcesError, design, exclusion_summary, office_month_panel,
                                        quintile_table, weighted_quantile_groups, wls)
from arbeidsindikator.present.resources_report import truth_comparison
from arbeidsindikator.pipeline.runs import SCHEMA


def _panel(seed=0, n=2500):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"office_id": rng.integers(0, 120, n).astype(str), "month": rng.integers(0, 36, n),
                      "sick_leave": rng.gamma(2, 4, n), "staffing": rng.normal(4.6, 1, n),
                      "persons": rng.integers(5, 600, n), "turnover": rng.random(n)})
    office_effect = pd.Series(rng.normal(0, 1, 120)).astype(float)
    d["indicator"] = (-0.05 * d["sick_leave"] + 0.3 * d["staffing"] + 0.02 * d["month"]
                      + office_effect[d["office_id"].astype(int)].to_numpy()
                      + rng.normal(0, 3, n) * np.sqrt(50 / d["persons"]))
    return d


@pytest.mark.parametrize("fe", [None, "month"])
def test_wls_equals_statsmodels_for_every_standard_error_type(fe):
    d = _panel()
    x = ["sick_leave", "staffing", "turnover"]  # an analyst's own variable goes in the same way
    X, names = design(d, x, fe)
    groups = pd.factorize(d["office_id"])[0]
    for se, kw in (("classical", {}), ("robust", {"cov_type": "HC1"}),
                   ("cluster", {"cov_type": "cluster", "cov_kwds": {"groups": groups}})):
        ours = wls(d, "indicator", x, fe=fe, se_type=se)
        ref = sm.WLS(d["indicator"].to_numpy(), X, weights=d["persons"].to_numpy()).fit(**kw)
        assert ours.names == names
        np.testing.assert_allclose(ours.params, ref.params, rtol=1e-6)
        np.testing.assert_allclose(ours.se, ref.bse, rtol=1e-6)
        assert ours.r2_adj == pytest.approx(ref.rsquared_adj, rel=1e-9)
        assert ours.nobs == len(d)


def test_fixed_effects_wls_equals_pyfixest():
    pf = pytest.importorskip("pyfixest")
    d = _panel(1)
    # count the month effects in k, as the dummies do (pyfixest's default leaves them out)
    ssc = pf.ssc(k_adj=True, k_fixef="full", G_adj=True)
    for se, vcov in (("classical", "iid"), ("robust", "hetero"), ("cluster", {"CRV1": "office_id"})):
        ours = wls(d, "indicator", ["sick_leave", "staffing"], fe="month", se_type=se)
        ref = pf.feols("indicator ~ sick_leave + staffing | month", data=d, weights="persons", vcov=vcov, ssc=ssc)
        for v in ("sick_leave", "staffing"):
            assert ours.coef(v) == pytest.approx(ref.coef()[v], rel=1e-6)
            assert ours.stderr(v) == pytest.approx(ref.se()[v], rel=1e-6), (se, v)


def test_weighted_quintiles_hold_a_fifth_of_the_weight():
    # hand example: ten equal weights give pairs; equal values share a group
    assert weighted_quantile_groups(np.arange(10), np.ones(10)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    g = weighted_quantile_groups(np.array([5, 1, 1, 1, 9, 7, 3, 3, 8, 6]), np.ones(10))
    assert len(set(g[[1, 2, 3]])) == 1 and g[6] == g[7]
    # weights: each group's share is 20% up to one observation's weight
    rng = np.random.default_rng(3)
    x, w = rng.gamma(2, 4, 5000), rng.integers(1, 400, 5000).astype(float)
    g = weighted_quantile_groups(x, w)
    shares = np.bincount(g, weights=w)[1:] / w.sum()
    assert np.all(np.abs(shares - 0.2) <= w.max() / w.sum())
    assert all(x[g == k].max() <= x[g == k + 1].min() for k in range(1, 5))
    # the quintile table: weighted means by hand, SE from a WLS with the same clustering
    d = _panel(2)
    qt = quintile_table(d, "sick_leave", se_type="cluster")
    d["k"] = weighted_quantile_groups(d["sick_leave"].to_numpy(), d["persons"].to_numpy())
    # SE of each quintile mean: statsmodels' WLS on all five quintile dummies (no constant),
    # clustered by office, gives each mean and its SE directly
    dummies = pd.get_dummies(d["k"]).astype(float)
    ref = sm.WLS(d["indicator"], dummies, weights=d["persons"]).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(d["office_id"])[0]})
    for r in qt.itertuples():
        part = d[d["k"] == r.kvintil]
        assert r.snitt_indikator == pytest.approx(np.average(part["indicator"], weights=part["persons"]), rel=1e-12)
        assert r.snitt_indikator == pytest.approx(float(ref.params[r.kvintil]), rel=1e-9)
        assert r.se_indikator == pytest.approx(float(ref.bse[r.kvintil]), rel=1e-6)
    assert qt["vektandel"].sum() == pytest.approx(1.0)


def _world_with_bad_hr(small_world, tmp_path):
    d = tmp_path / "world"
    shutil.copytree(small_world, d)
    hr = pq.read_table(d / "office_hr.parquet").to_pandas()
    hr["month"] = pd.to_datetime(hr["month"])
    hr = hr.sort_values(["office_id", "month"]).reset_index(drop=True)
    rows = hr[(hr["office_id"] == "0301") & (hr["month"] >= pd.Timestamp("2019-01-01"))].index[:3]
    hr.loc[rows[0], "sick_leave_hours"] = -5.0                                   # negative hours
    hr.loc[rows[1], "sick_leave_hours"] = hr.loc[rows[1], "agreed_hours"] + 10   # above agreed hours
    missing = hr.loc[rows[2], ["office_id", "month"]].tolist()
    hr = hr.drop(index=rows[2])                                                  # no HR record
    hr.assign(month=hr["month"].dt.date).to_parquet(d / "office_hr.parquet", index=False)
    return d, hr, missing


def test_bad_hr_is_reported_and_the_analysis_is_written(small_world, small_run, tmp_path, readable_on_a_phone):
    _, db = small_run
    world, hr, missing = _world_with_bad_hr(small_world, tmp_path)
    panel = office_month_panel(db, world)
    ex = panel.excluded
    got = {(r.office_id, pd.Timestamp(r.month).strftime("%Y-%m"), r.regel) for r in ex.itertuples()}
    assert ("0301", "2019-01", "sykefravaer_negativt") in got
    assert ("0301", "2019-02", "sykefravaer_over_avtalt") in got
    assert (missing[0], pd.Timestamp(missing[1]).strftime("%Y-%m"), "mangler_hr") in got
    summary = exclusion_summary(ex)
    assert {"sykefravaer_negativt", "sykefravaer_over_avtalt", "mangler_hr"} <= set(summary["regel"])
    assert summary["eksempler"].str.len().min() > 0
    # excluded office-months are not in the panel; everything else is
    keys = set(zip(panel.data["office_id"], panel.data["month"].dt.strftime("%Y-%m")))
    assert not any((o, m) in keys for o, m, _ in got)
    d = panel.sample("alle", "jobb3")
    assert d["sick_leave"].between(0, 100).all() and (d["staffing"] > 0).all()
    # NOE users are counted at their home office: NOE never appears as an office
    assert "4154" not in set(panel.data["office_id"])

    out = tmp_path / "ressurser"
    res = CliRunner().invoke(app, ["analyse", "ressurser", "--db", str(db), "--data", str(world), "--out", str(out)])
    assert res.exit_code == 0, res.output
    page = (out / "ressurser.html").read_text()
    assert readable_on_a_phone(out / "ressurser.html") > 20
    for text in ("Tabell 1", "Tabell 2", "Justert R²", "Valg av standardfeil", "Per år", "Kvintiler av sykefravær",
                 "Kvintiler av bemanning", "Utvikling per måned", "Utelatte kontor-måneder", "prosentpoeng",
                 "Kontroll mot fasit", "<svg"):
        assert text in page, text
    # a reader sees words: no codes, no True/False/NaN, no Markdown in a code box; 1 before 1b
    text = re.sub(r"<[^>]+>", " ", page)
    for code in ("sit_spes", "sick_leave", "True", "False", "NaN", "None", "ki_nedre", "dekker_sann_effekt"):
        assert code not in text, code
    # no Markdown bold (a coefficient's significance stars, "-0,012**", are meant)
    assert re.search(r"\*\*[^\W\d_]", text) is None, re.search(r".{20}\*\*[^\W\d_].{20}", text)
    assert "<pre" not in page and page.index("Tabell 1.") < page.index("Tabell 1b.")
    for f in ("tabell1_sit_spes.csv", "tabell2_alle.csv", "tabell1_sit_spes.html", "utelatt.csv", "metode.md",
              "figurer/ressurser/per_aar_alle.png", "figurer/ressurser/kvintiler_staffing_alle.svg"):
        assert (out / f).exists(), f
    t2 = pd.read_csv(out / "tabell2_alle.csv")
    assert set(t2["utfall"]) == {"atid3", "atid12", "jobb3", "jobb12"} and set(t2["se_type"]) == {"cluster"}
    # nothing person-level is written
    for f in out.glob("*.csv"):
        assert "person_id" not in f.read_text().splitlines()[0], f
    assert len(pd.read_csv(out / "utelatt.csv")) == len(ex)
    # the national monthly series cannot give a suppressed national group back (issue 28): the
    # indicator's mean is shown only where both groups' national cells are published, persons rounded
    series = pd.read_csv(out / "maanedlig_sit_spes.csv", parse_dates=["month"])
    assert "personer" not in series and (series["personer_avrundet"] % 100 == 0).all()
    con = duckdb.connect(str(db), read_only=True)
    pub = con.execute("""SELECT BEHOLDNINGSMAANED AS month, UTFALL AS utfall, bool_or(PRIKKET) AS prikket FROM published
                         WHERE ORG_NIVAA = 1 AND NEDBRYTNING = 'Innsatsgruppe'
                         AND GRUPPE IN ('situasjonsbestemt', 'spesielt_tilpasset') GROUP BY ALL""").df()
    con.close()
    both = series.merge(pub.assign(month=pd.to_datetime(pub["month"])), on=["month", "utfall"], how="left")
    hidden = both["prikket"].fillna(True).astype(bool)
    assert both.loc[hidden, "indicator_snitt"].isna().all()
    assert both.loc[~hidden, "indicator_snitt"].notna().all()


def test_a_run_without_person_level_results_gives_a_clear_error(small_world, tmp_path):
    db = tmp_path / "tom.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(SCHEMA)
        con.execute("INSERT INTO runs (run_id, created_at) VALUES ('r1', now())")
    with pytest.raises(ResourcesError, match="--person-level"):
        office_month_panel(db, small_world)
    res = CliRunner().invoke(app, ["analyse", "ressurser", "--db", str(db), "--data", str(small_world),
                                   "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "personnivå" in res.output
    assert not (tmp_path / "x").exists()


def test_estimates_cover_the_true_effects_on_the_clean_medium_world(medium_clean_world, medium_clean_run):
    panel = office_month_panel(medium_clean_run, medium_clean_world)
    t = truth_comparison(panel, medium_clean_world)
    window = t[(t["spesifikasjon"] == "vindu") & t["sann_effekt"].notna()]
    assert len(window) == 12  # sick leave in both samples, staffing for all users; four outcomes
    assert window["dekker_sann_effekt"].all(), window
    # the same-month specification is attenuated: a lasting change shows only partly in one month
    month = t[(t["spesifikasjon"] == "maaned") & (t["variabel"] == "sick_leave")]
    assert (month["estimat"].abs().mean() < window[window["variabel"] == "sick_leave"]["estimat"].abs().mean())
