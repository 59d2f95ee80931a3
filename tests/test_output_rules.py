"""Every file an analysis writes is declared with its basis and keeps its small-cell rule
(present/output_rules.py): an undeclared file or a small count stops the report."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from arbeidsindikator.cli import app
from arbeidsindikator.present import output_rules as rules
from arbeidsindikator.present.spells_report import _lt


@pytest.mark.parametrize("analysis, extra", [("forlop", []), ("tidsbruk", ["--innsatsteam", "0.5"]),
                                             ("undersokelse", [])])
def test_analysis_outputs_on_the_demo_world_are_declared_and_kept(small_world, tmp_path, analysis, extra):
    out = tmp_path / analysis
    r = CliRunner().invoke(app, ["analyse", analysis, "--data", str(small_world), "--out", str(out), *extra])
    assert r.exit_code == 0, r.output
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) >= 3
    assert rules.problems(out, analysis) == []
    for f in files:  # each file falls under one declaration, and tables under a table's
        o = rules.declaration(analysis, f.relative_to(out).as_posix())
        assert o is not None and (f.suffix != ".csv" or o.basis != "side" or f.name == "merknader.csv")


def test_an_undeclared_file_stops_the_report(tmp_path):
    (tmp_path / "rapport.html").write_text("x")
    (tmp_path / "personer.csv").write_text("person_id\n1\n")
    found = rules.problems(tmp_path, "forlop")
    assert found == ["personer.csv: ikke deklarert i present/output_rules.py"]
    with pytest.raises(rules.OutputDisclosureError, match="personer.csv: ikke deklarert"):
        rules.check_folder(tmp_path, "forlop")


def test_small_counts_are_refused_and_withheld_estimates_pass(tmp_path):
    pd.DataFrame({"cohort": [2021, 2023], "spells": [685, 4], "persons": [675, 4], "laid_off_share": [38.8, 50.0]}
                 ).to_csv(tmp_path / "forlop.csv", index=False)
    assert rules.problems(tmp_path, "forlop") == ["forlop.csv: spells under 10 i 1 rader (f.eks. 4.0)",
                                                  "forlop.csv: persons under 10 i 1 rader (f.eks. 4.0)"]
    lk = pd.DataFrame({"item": ["a", "a"], "estimate": [4.5, 4.0], "se": [0.3, 0.2], "n": [4, 30]})
    survey = tmp_path / "undersokelse"
    survey.mkdir()
    lk.to_csv(survey / "skalaer.csv", index=False)
    assert rules.problems(survey, "undersokelse") == ["skalaer.csv: n under 10 i 1 rader (f.eks. 4.0)"]
    lk.assign(estimate=[np.nan, 4.0], se=[np.nan, 0.2]).to_csv(survey / "skalaer.csv", index=False)
    assert rules.problems(survey, "undersokelse") == []


def _life_table(entering, events, censored, cohort="2021", outcome="arbeid"):
    k = len(entering)
    return pd.DataFrame({"from": range(k), "to": range(1, k + 1), "entering": entering, "events": events,
                         "censored": censored, "cohort": cohort, "outcome": outcome})


def test_a_life_table_stops_before_a_small_number_follows_by_difference(tmp_path):
    # 40 -> 30 -> 12 -> 3: the row from 12 would give 3 at risk by difference; it and the rest go
    lt = pd.concat([_life_table([40, 30, 12, 3], [5, 10, 4, 1], [5, 8, 5, 2]),
                    _life_table([50, 40, 20], [5, 10, 20], [5, 10, 0], cohort="2023")], ignore_index=True)
    out = _lt(types.SimpleNamespace(life_tables=lt))
    assert out[out["cohort"] == "2021"]["entering"].tolist() == [40, 30]
    assert out[out["cohort"] == "2023"]["entering"].tolist() == [50, 40, 20]  # ends at 0 left: fine
    lt.to_csv(tmp_path / "livstabeller.csv", index=False)
    assert any("personer igjen etter raden under 10" in p for p in rules.problems(tmp_path, "forlop"))
    out.to_csv(tmp_path / "livstabeller.csv", index=False)
    assert rules.problems(tmp_path, "forlop") == []


def test_survey_estimates_on_few_answers_are_withheld():
    from arbeidsindikator.analyses.surveys.tables import MIN_ANSWERS, _withhold
    df = pd.DataFrame({"estimate": [1.0, 2.0], "ci_low": [0.5, 1.5], "n": [MIN_ANSWERS - 1, MIN_ANSWERS]})
    out = _withhold(df, "n")
    assert out["withheld"].tolist() == [True, False]
    assert np.isnan(out.loc[0, "estimate"]) and np.isnan(out.loc[0, "ci_low"]) and out.loc[1, "estimate"] == 2.0
