"""Follow-up spells: every rule on a hand-built register, and the survival estimators against
lifelines and R's survival package (Rscript; Debian's r-cran-survival, installed by .ci/run)."""

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from arbeidsindikator.analyses.spells import SpellRules, build_spells
from arbeidsindikator.analyses.survival import (
    SurvivalError, cox, cumulative_incidence, kaplan_meier, life_table,
)
from arbeidsindikator.cli import app

R = shutil.which("Rscript")
needs_r = pytest.mark.skipif(R is None, reason="Rscript is not installed (.ci/run installs r-base-core and r-cran-survival)")

# person: list of (month, office, group); persons are 41 unless in AGE
REGISTER = {
    1: [("2021-03", "A", "standard"), ("2021-04", "A", "standard"), ("2021-05", "A", "standard"), ("2021-06", "A", "standard")],
    2: [("2021-01", "A", "ikke_vurdert"), ("2021-02", "A", "ikke_vurdert"), ("2021-03", "A", "standard"),
        ("2021-04", "A", "standard"), ("2021-05", "A", "standard")],
    3: [("2021-02", "A", "sykmeldt_uten_arbeidsgiver"), ("2021-03", "A", "standard"), ("2021-04", "A", "standard"),
        ("2021-05", "A", "situasjonsbestemt"), ("2021-06", "A", "situasjonsbestemt")],
    4: [(f"2021-{m:02d}", "A", "standard") for m in range(1, 7)],  # from the register's first month: no start seen
    5: [("2021-03", "A", "standard"), ("2021-04", "A", "standard"),
        ("2021-07", "A", "standard"), ("2021-08", "A", "standard"), ("2021-09", "A", "standard")],
    6: [("2021-03", "A", "standard"), ("2021-04", "A", "standard"), ("2021-06", "A", "standard")],
    7: [("2021-03", "A", "standard"), ("2021-04", "A", "standard")],  # aged 62: outside 30-59
    8: [("2021-03", "N", "standard"), ("2021-04", "N", "standard"), ("2021-05", "A", "standard")],
    9: [("2021-03", "A", "standard"), ("2021-04", "A", "standard"), ("2021-05", "A", "standard")],
    10: [("2021-10", "A", "standard"), ("2021-11", "A", "standard"), ("2021-12", "A", "standard")],
    11: [("2021-03", "A", "standard"), ("2021-04", "A", "standard")],  # ends Dec-observed work after the window
}
AGE = {7: 62}
EMPLOYMENT = [(1, "2021-07", 120.0), (2, "2021-06", 40.0), (5, "2021-05", 30.0), (11, "2021-08", 160.0),
              (9, "2021-09", 170.0)] + [(4, f"2021-{m:02d}", 10.0) for m in range(1, 13)]  # every month has rows
PROGRAMMES = [(9, "2021-04")]


def _register(d, programmes=True):
    d.mkdir()
    m = lambda s: s + "-01"  # noqa: E731
    pd.DataFrame({"person_id": list(REGISTER), "birth_month": [m(f"{2021 - AGE.get(p, 41)}-01") for p in REGISTER],
                  "sex": "kvinne", "education": "videregaende", "immigrant_category": "norskfodt"}).to_csv(d / "persons.csv", index=False)
    rows = [(p, m(mo), o, g) for p, r in REGISTER.items() for mo, o, g in r]
    s = pd.DataFrame(rows, columns=["person_id", "month", "office_id", "innsatsgruppe"])
    s["municipality_id"] = "0101"
    s["months_since_registration"] = 0
    s["benefit"] = "ingen"
    s["laid_off"] = False
    s["youth_guarantee"] = False
    s["work_hours_12m"] = 0.0
    s["work_hours_24m"] = 0.0
    s["reduced_work_capacity"] = False
    s.to_csv(d / "stock.csv", index=False)
    pd.DataFrame({"office_id": ["A", "N"], "office_name": ["Kontor A", "NOE"], "region_id": ["01", "NOE"],
                  "office_type": ["lokalkontor", "nasjonal"], "valid_from": "2021-01-01", "valid_to": None,
                  "successor_office_id": None}).to_csv(d / "offices.csv", index=False)
    pd.DataFrame({"region_id": ["01", "NOE"], "region_name": ["Region", "NOE"]}).to_csv(d / "regions.csv", index=False)
    pd.DataFrame({"municipality_id": ["0101"], "municipality_name": ["By"], "commuting_region_id": ["B1"],
                  "office_id": ["A"], "valid_from": ["2021-01-01"], "valid_to": [None]}).to_csv(d / "municipalities.csv", index=False)
    months = pd.date_range("2021-01-01", "2021-12-01", freq="MS").strftime("%Y-%m-%d")
    pd.DataFrame({"commuting_region_id": "B1", "month": months, "inflow_rate": 0.01, "unemployment_rate": 0.03,
                  "vacancy_rate": 0.02}).to_csv(d / "labour_market.csv", index=False)
    pd.DataFrame([(p, m(mo), h) for p, mo, h in EMPLOYMENT], columns=["person_id", "month", "hours"]).to_csv(
        d / "employment.csv", index=False)
    pd.DataFrame({"employment_observed_to": ["2021-12-01"], "description": ["hand-built"]}).to_csv(d / "extract.csv", index=False)
    if programmes:
        pd.DataFrame([(p, m(mo), "opplaering") for p, mo in PROGRAMMES], columns=["person_id", "month", "programme"]).to_csv(
            d / "programme_participation.csv", index=False)
    return d


def test_every_spell_rule_on_a_hand_built_register(tmp_path):
    sp = build_spells(_register(tmp_path / "reg"))
    got = {(r.person_id, r.start.strftime("%Y-%m")): (r.exit, r.time, r.event) for r in sp.itertuples()}
    assert got == {
        (1, "2021-03"): ("arbeid", 4, 1),             # not registered before; ends, 120 h in July = 27.7 h/week
        (2, "2021-03"): ("avsluttet", 3, 1),          # 'ikke vurdert' the month before; 40 h/month is under 19 h/week
        (3, "2021-03"): ("situasjonsbestemt", 2, 1),  # sick-listed the month before; then a situasjonsbestemt decision
        (5, "2021-03"): ("avsluttet", 2, 1),          # first spell: 30 h in the month after is not work
        (5, "2021-07"): ("avsluttet", 3, 1),          # a second spell after two months away
        (6, "2021-03"): ("avsluttet", 2, 1),          # one month away is no new spell (registered two months before)
        (8, "2021-03"): ("overfort_fra_noe", 2, 1),   # NOE, then a local office
        (9, "2021-03"): ("tiltak", 1, 1),             # a programme from April
        (10, "2021-10"): ("sensurert", 3, 0),         # still registered in the register's last month
        (11, "2021-03"): ("avsluttet", 2, 1),         # work in August is outside the two months after the end
    }
    # person 4 starts before the register can show a gap, person 7 is too old: no spells
    assert not set(sp["person_id"]) & {4, 7}
    assert sp.loc[sp["person_id"] == 5, "spell"].tolist() == [1, 2]
    # time to work: person 1 works in July (4 months after March); person 9 in September
    w = sp.set_index("person_id")
    assert (w.loc[1, "work_time"], w.loc[1, "work_event"]) == (4, 1)
    assert (w.loc[9, "work_time"], w.loc[9, "work_event"]) == (6, 1)
    assert (w.loc[10, "work_time"], w.loc[10, "work_event"]) == (2, 0)  # censored at the employment data's end


def test_rules_are_parameters(tmp_path):
    d = _register(tmp_path / "reg")
    no_sick = build_spells(d, SpellRules(after_sick_listed=False))
    assert 3 not in set(no_sick["person_id"])
    no_iv = build_spells(d, SpellRules(after_ikke_vurdert=False))
    assert 2 not in set(no_iv["person_id"])
    one_month_gap = build_spells(d, SpellRules(gap_months=1))
    assert (one_month_gap["person_id"] == 6).sum() == 2  # a month away is enough now
    older = build_spells(d, SpellRules(age_max=66))
    assert 7 in set(older["person_id"])
    without = build_spells(_register(tmp_path / "noprog", programmes=False))
    assert without.set_index("person_id").loc[9, "exit"] == "avsluttet"


def _data(n=2500, seed=3, tied=True):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.binomial(1, 0.4, n).astype(float), "q": rng.normal(size=n)})
    t = rng.exponential(8 / np.exp(0.4 * df["x"] - 0.3 * df["z"]))
    df["T"] = np.minimum(np.ceil(t), 24) if tied else np.minimum(t, 24)
    df["E"] = ((rng.random(n) < 0.8) & (df["T"] < 24)).astype(int)
    df["kind"] = np.where(df["E"] == 1, rng.choice(["arbeid", "annen"], n, p=[0.6, 0.4]), None)
    df["pid"] = rng.integers(0, n // 2, n)
    df["w"] = rng.uniform(0.5, 2, n)
    df["st"] = rng.integers(0, 3, n)
    return df


def test_kaplan_meier_and_cox_equal_lifelines():
    lifelines = pytest.importorskip("lifelines")
    df = _data()
    km = kaplan_meier(df["T"], df["E"])
    ref = lifelines.KaplanMeierFitter().fit(df["T"], df["E"])
    np.testing.assert_allclose(km["survival"], ref.survival_function_.loc[km["time"]].to_numpy()[:, 0], atol=1e-12)
    np.testing.assert_allclose(km["ci_low"], ref.confidence_interval_.loc[km["time"]].to_numpy()[:, 0], atol=1e-10)
    for kw in ({}, {"weights": "w"}, {"strata": "st"}):
        ours = cox(df, "T", "E", ["x", "z", "q"], **kw)
        cph = lifelines.CoxPHFitter().fit(df[["T", "E", "x", "z", "q", *kw.values()]], "T", "E",
                                          weights_col=kw.get("weights"), strata=kw.get("strata"))
        np.testing.assert_allclose(ours.params, cph.params_.to_numpy(), atol=1e-6)
        np.testing.assert_allclose(ours.bse, cph.standard_errors_.to_numpy(), atol=1e-6)
        assert ours.loglik == pytest.approx(cph.log_likelihood_, abs=1e-6)


def test_cumulative_incidence_equals_lifelines_aalen_johansen():
    lifelines = pytest.importorskip("lifelines")
    df = _data(800, tied=False)  # lifelines jitters tied times; untied data compare exactly
    code = df["kind"].map({"arbeid": 1, "annen": 2}).fillna(0).astype(int)
    aj = lifelines.AalenJohansenFitter(calculate_variance=True).fit(df["T"], code, event_of_interest=1)
    ours = cumulative_incidence(df["T"], df["kind"], "arbeid")
    np.testing.assert_allclose(ours["cif"], aj.cumulative_density_.iloc[:, 0].loc[ours["time"]].to_numpy(), atol=1e-12)
    bounds = aj.confidence_interval_.loc[ours["time"]]
    ok = ours["cif"].to_numpy() > 0
    np.testing.assert_allclose(ours["ci_low"][ok], bounds.min(axis=1).to_numpy()[ok], atol=1e-8)
    np.testing.assert_allclose(ours["ci_high"][ok], bounds.max(axis=1).to_numpy()[ok], atol=1e-8)


def _r(script: str) -> np.ndarray:
    out = subprocess.run([R, "-e", "options(digits = 15); " + script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return np.array(out.stdout.split("@@")[1].split(), float)


@needs_r
def test_cox_robust_and_km_equal_r_survival(tmp_path):
    """Efron ties, case weights, strata and the clustered sandwich (repeated spells per person):
    R's coxph(..., cluster = pid); Kaplan-Meier with R's default log interval."""
    df = _data()
    f = tmp_path / "d.csv"
    df.to_csv(f, index=False)
    v = _r(f"""library(survival); d <- read.csv("{f.as_posix()}")
        a <- coxph(Surv(T, E) ~ x + z + q, data = d, cluster = pid, ties = "efron")
        b <- coxph(Surv(T, E) ~ x + z + q + strata(st), data = d, weights = w, cluster = pid, ties = "efron")
        k <- survfit(Surv(T, E) ~ 1, data = d)
        cat("@@", coef(a), sqrt(diag(vcov(a))), coef(b), sqrt(diag(vcov(b))), k$surv, k$lower, "@@")""")
    a = cox(df, "T", "E", ["x", "z", "q"], cluster="pid")
    b = cox(df, "T", "E", ["x", "z", "q"], weights="w", strata="st", cluster="pid")
    np.testing.assert_allclose(a.params, v[0:3], atol=1e-6)
    np.testing.assert_allclose(a.bse, v[3:6], atol=1e-6)
    np.testing.assert_allclose(b.params, v[6:9], atol=1e-6)
    np.testing.assert_allclose(b.bse, v[9:12], atol=1e-6)
    km = kaplan_meier(df["T"], df["E"], conf_type="log")
    J = len(km)
    np.testing.assert_allclose(km["survival"], v[12:12 + J], atol=1e-10)
    np.testing.assert_allclose(km["ci_low"], v[12 + J:12 + 2 * J], atol=1e-8)


def test_life_table_by_hand():
    # 10 spells: events at months 0, 1, 1, 2; censored at 1, 2, 2, 3, 3, 3
    t = [0, 1, 1, 2, 1, 2, 2, 3, 3, 3]
    e = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    lt = life_table(t, e)
    assert lt["entering"].tolist() == [10, 9, 6, 3]
    assert lt["effective"].tolist() == [10, 8.5, 5, 1.5]
    q = [0.1, 2 / 8.5, 1 / 5, 0]
    np.testing.assert_allclose(lt["hazard"], q)
    np.testing.assert_allclose(lt["survival"], np.cumprod(1 - np.array(q)))


def test_bad_survival_input_is_refused():
    df = _data(50)
    df.loc[3, "x"] = np.nan
    with pytest.raises(SurvivalError, match="1 rows have a missing value in x"):
        cox(df, "T", "E", ["x"])
    with pytest.raises(SurvivalError, match="negative or missing duration"):
        kaplan_meier([1, -2, 3], [1, 0, 1])


def test_forlop_command_writes_aggregates_only(tmp_path, policy_world_dir):
    out = tmp_path / "forlop"
    r = CliRunner().invoke(app, ["analyse", "forlop", "--data", str(policy_world_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    files = {p.name for p in out.iterdir()}
    assert {"rapport.html", "andeler.csv", "livstabeller.csv", "hasardrater.csv", "sammenligning.csv", "fasit.csv",
            "resultater.json"} <= files
    for p in out.glob("*.csv"):
        assert "person_id" not in pd.read_csv(p).columns
    html = (out / "rapport.html").read_text()
    assert "Forløpsregler" in html and "Fasit" in html
    assert not re.search(r"(src|href)=[\"']?https?:", html)  # self-contained: nothing loaded from elsewhere
    bad = tmp_path / "bad.toml"
    bad.write_text("[spells]\nalder = 3\n")
    r = CliRunner().invoke(app, ["analyse", "forlop", "--data", str(policy_world_dir), "--out", str(out), "--config", str(bad)])
    assert r.exit_code == 2 and "ukjente nøkler" in r.output and "Traceback" not in r.output
