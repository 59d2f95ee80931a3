"""The policies the synthetic world knows the truth of (NOE's rollout and the programme cuts
of July 2024), and evaluations of them scored against that truth.

The repeated-worlds study (coverage and rejection rates over 200 seeds) is
`benchmarks/evaluation_truth.py`; here one world is checked end to end."""

import duckdb
import numpy as np
import pandas as pd
import pytest

import arbeidsindikator as ai
from arbeidsindikator.analyses.evaluation.twfe import EvaluationError, twfe, wild_bootstrap
from arbeidsindikator.analyses.evaluation.imputation import imputation
from arbeidsindikator.analyses.evaluation.panels import home_region_panel, indicator_panel, with_treatment
from arbeidsindikator.analyses.evaluation.policy_truth import (
    att_truth, noe_adoption, programme_cut_treatment, true_effects, twfe_truth,
)
from arbeidsindikator.data.synth.params import PROGRAMME_CUTS
from arbeidsindikator.data.validate import validate


@pytest.fixture(scope="module")
def policy_world(policy_world_dir, tmp_path_factory):
    """The policy world (conftest), run with person-level results."""
    db = tmp_path_factory.mktemp("policy_run") / "res.duckdb"
    ai.run_indicator(policy_world_dir, db=db, keep_person_level=True)
    return policy_world_dir, db


def test_programme_tables_follow_the_contract(policy_world):
    w, _ = policy_world
    validate(w)  # participation months are stock months; places reference known regions
    con = duckdb.connect()
    n = con.execute(f"SELECT count(*), count(DISTINCT person_id) FROM '{w}/programme_participation.parquet'").fetchone()
    assert n[0] > 1000 and n[1] > 300
    places = con.execute(f"SELECT region_id, month, places FROM '{w}/programme_places.parquet'").df()
    places["month"] = pd.to_datetime(places["month"])
    before = places[places["month"] == "2024-06-01"].set_index("region_id")["places"]
    after = places[places["month"] == "2024-12-01"].set_index("region_id")["places"]
    for r in before.index:  # the budget letter: cut by the world's share from July 2024
        assert after[r] == pytest.approx(before[r] * (1 - PROGRAMME_CUTS.get(r, 0.0)), abs=1)
    dose = programme_cut_treatment(w)
    assert dose.loc[dose["month"] < "2024-07-01", "kutt"].abs().max() == 0
    got = dose[dose["month"] == "2024-12-01"].set_index("unit")["kutt"]
    for r, c in PROGRAMME_CUTS.items():
        assert got[r] == pytest.approx(c, abs=0.1)  # places are whole numbers


def test_policy_truth_is_exact_where_nothing_changed(policy_world):
    """Same random numbers: without NOE nothing differs for persons never at NOE; without the
    cuts nothing differs before the cuts could reach an outcome window, nor in regions that
    kept their places."""
    w, _ = policy_world
    con = duckdb.connect()
    # persons with a spell routed to NOE (some only after the extract's end)
    noe_persons = f"(SELECT DISTINCT person_id FROM '{w}/truth/spells.parquet' WHERE noe)"
    diff = con.execute(f"""
        SELECT max(abs(expected_with_office_jobb3 - expected_without_noe_jobb3)),
               max(abs(expected_with_office_atid12 - expected_without_noe_atid12))
        FROM '{w}/truth/person_month.parquet' WHERE person_id NOT IN {noe_persons}""").fetchone()
    assert max(diff) < 1e-8  # the same numbers, summed in another order
    moved = con.execute(f"""SELECT count(*) FROM '{w}/truth/employment_without_noe.parquet'
                            WHERE person_id NOT IN {noe_persons}""").fetchone()[0]
    assert moved == 0
    cut = true_effects(w, "programme_cut", "jobb12")
    assert cut.loc[cut["month"] < "2023-06-01", "truth"].abs().max() < 1e-12
    # regions that kept their places (NOE's users can meet a cut in their next spell, which a
    # 12-month outcome sees)
    kept = ~cut["unit"].isin([*PROGRAMME_CUTS, "NOE"])
    assert cut.loc[kept, "truth"].abs().max() < 0.05
    late = cut[cut["unit"].isin(list(PROGRAMME_CUTS)) & (cut["month"] >= "2024-07-01")]
    assert (late["truth"] < 0).mean() > 0.9  # fewer places: lower employment a year on
    noe = true_effects(w, "noe", "jobb3")
    # NOE starts in September 2022; a 3-month outcome sees it from June (a new spell routed there)
    assert noe.loc[noe["month"] < "2022-05-01", "truth"].abs().max() < 1e-12
    assert noe.loc[noe["month"] >= "2023-03-01", "truth"].abs().mean() > 0.1


def test_noe_switched_off_keeps_spells_apart(policy_world):
    w, _ = policy_world
    sp = pd.read_parquet(w / "truth" / "spells.parquet")
    assert (sp.loc[~sp["noe"], "months"] == sp.loc[~sp["noe"], "months_without_noe"]).all()
    assert (sp["months"] >= sp["months_without_noe"]).all()
    assert (sp.loc[sp["noe"], "months"] > sp.loc[sp["noe"], "months_without_noe"]).mean() > 0.1
    sp = sp.sort_values(["person_id", "start"])
    start = pd.to_datetime(sp["start"])
    nxt = start.groupby(sp["person_id"]).shift(-1)
    gap = (nxt.dt.year - start.dt.year) * 12 + (nxt.dt.month - start.dt.month) - sp["months"]
    assert gap.dropna().min() >= 2  # an extended spell never runs into the next one


def test_programme_cut_evaluation_covers_the_truth(policy_world):
    w, db = policy_world
    treatment = programme_cut_treatment(w)
    for outcome in ("jobb3", "atid3"):
        p = indicator_panel(db, outcome, 2)
        p = with_treatment(p[(p["unit"] != "NOE") & (p["month"] >= "2022-01-01")], treatment, dose="kutt")
        truth = twfe_truth(p, true_effects(w, "programme_cut", outcome), "kutt")
        assert truth < 0
        fit = twfe(p, "indicator", "kutt", weight="persons").table().iloc[0]
        wb = wild_bootstrap(p, "indicator", "kutt", weight="persons", B=1999, seed=2)
        assert fit["ci_low"] <= truth <= fit["ci_high"]
        assert wb.ci_low <= truth <= wb.ci_high


def test_noe_rollout_evaluation_covers_the_truth(policy_world):
    """Only the pilot months (September-December 2022) identify NOE across regions: from January
    2023 every region has it, and the imputation estimator refuses periods it cannot impute."""
    w, db = policy_world
    hp = home_region_panel(db, w, "jobb3")
    assert "NOE" not in set(hp["unit"])
    adoption = noe_adoption(hp["unit"].unique())
    with pytest.raises(EvaluationError, match="every unit treated"):
        imputation(with_treatment(hp, adoption, adoption="start"), "indicator", "start", weight="persons")
    pilot = with_treatment(hp[hp["month"] < "2023-01-01"], adoption, adoption="start")
    r = imputation(pilot, "indicator", "start", weight="persons")
    truth = att_truth(r.tau, true_effects(w, "noe", "jobb3"), pilot[["unit", "month", "persons"]])
    ov = r.overall.iloc[0]
    assert ov["ci_low"] <= truth <= ov["ci_high"]
    assert np.isfinite(truth) and truth != 0
