"""The model laboratory: Nav's acceptance measures recomputed independently from the published
cells and the extract, the truth measures as validity.py gives them, and the command end to end."""

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.weightstats import DescrStatsW
from typer.testing import CliRunner

from arbeidsindikator.analyses.model_comparison import (ComparisonError, _office_frames, compare_models, nav_measures,
                                                         truth_measures)
from arbeidsindikator.analyses.validity import office_year_correlations
from arbeidsindikator.cli import app, shipped_specs
from arbeidsindikator.pipeline.runs import latest_run_id


def _published(db):
    con = duckdb.connect(str(db), read_only=True)
    rid = latest_run_id(con)
    p = con.execute("SELECT * FROM published WHERE run_id = ? AND NEDBRYTNING = 'Alle' AND NOT PRIKKET", [rid]).df()
    con.close()
    return rid, p


def test_nav_measures_equal_an_independent_computation(small_world, small_run):
    db = small_run[1]
    rid, p = _published(db)
    offices, national = _office_frames(db, small_world, rid)
    got = nav_measures(offices, national).set_index("outcome")
    # tightness per office-month from the parquet files, in pandas
    st = pd.read_parquet(small_world / "stock.parquet", columns=["office_id", "month", "municipality_id"])
    mun = pd.read_parquet(small_world / "municipalities.parquet").drop(columns="office_id")
    lm = pd.read_parquet(small_world / "labour_market.parquet")
    st = st.merge(mun, on="municipality_id")
    st = st[(st["month"] >= st["valid_from"]) & (st["valid_to"].isna() | (st["month"] <= st["valid_to"]))]
    st = st.merge(lm, on=["commuting_region_id", "month"])
    st["vu"] = st["vacancy_rate"] / st["unemployment_rate"]
    tight = st.groupby(["office_id", "month"])["vu"].mean().rename("vu").reset_index()
    tight["month"] = pd.to_datetime(tight["month"])
    off = p[(p["ORG_NIVAA"] == 3) & (p["ORG_STED_ID"] != "4154")].copy()
    off["month"] = pd.to_datetime(off["BEHOLDNINGSMAANED"])
    off = off.merge(tight, left_on=["ORG_STED_ID", "month"], right_on=["office_id", "month"], how="left")
    for o in ("atid3", "jobb12"):
        g = off[off["UTFALL"] == o].assign(year=lambda d: d["month"].dt.year)
        y = g.groupby(["ORG_STED_ID", "year"]).apply(lambda d: pd.Series({
            "ind": np.average(d["INDIKATOR"], weights=d["ANTALL_PERSONER"]),
            "vu": np.average(d["vu"], weights=d["ANTALL_PERSONER"]), "n": d["ANTALL_PERSONER"].sum()})).reset_index()
        r = DescrStatsW(y[["ind", "vu"]].to_numpy(), weights=y["n"].to_numpy()).corrcoef[0, 1]
        assert got.loc[o, "tightness_r"] == pytest.approx(r, rel=1e-9)
        wide = y.pivot(index="ORG_STED_ID", columns="year", values="ind")
        rhos = [stats.spearmanr(wide[[a, a + 1]].dropna()).statistic for a in wide.columns[:-1]]
        assert got.loc[o, "rank_stability"] == pytest.approx(np.mean(rhos), rel=1e-9)
        w = g.pivot(index="month", columns="ORG_STED_ID", values="INDIKATOR").asfreq("MS")
        n = g.pivot(index="month", columns="ORG_STED_ID", values="ANTALL_PERSONER").astype(float).asfreq("MS")
        ch = w.astype(float).diff().abs().stack().dropna()
        assert got.loc[o, "volatility"] == pytest.approx(np.average(ch, weights=n.stack().reindex(ch.index)), rel=1e-9)
        nat = p[(p["ORG_NIVAA"] == 1) & (p["UTFALL"] == o)]["INDIKATOR"]
        assert got.loc[o, "national_sd"] == pytest.approx(nat.std(ddof=1), rel=1e-12)
    truth = truth_measures(small_world, db, rid).set_index("outcome")
    ref = office_year_correlations(small_world, db, rid)
    assert truth.loc["jobb3", "truth_r"] == pytest.approx(ref["jobb3"]["r_indicator"], rel=1e-12) and 0 < truth.loc["jobb3", "coverage"] <= 1


def test_the_command_compares_two_models_and_refuses_twins(small_world, tmp_path, readable_on_a_phone):
    specs = {p.name: p for p in shipped_specs()}
    # Nav's production model, its four candidates (78-81) and the 12-month inflow variant
    assert list(specs)[0] == "default.toml" and len(specs) == 6 and {
        "ledige-stillinger.toml", "skift-andel.toml", "ledighet.toml", "ungdomsledighet.toml", "tilstromming-12m.toml"} <= set(specs)
    out = tmp_path / "ms"
    r = CliRunner().invoke(app, ["modell", "sammenlign", "--data", str(small_world), "--spesifikasjon", "ungdomsledighet",
                                 "--out", str(out)])  # a shipped specification by its name, with the optional measures
    assert r.exit_code == 0, r.output
    s = pd.read_csv(out / "sammenligning.csv")
    assert set(s["spec"]) == {"nav-ungdomsledighet"} and s["outcome"].tolist() == ["atid3", "atid12", "jobb3", "jobb12"]
    assert s[["tightness_r", "rank_stability", "truth_r", "coverage"]].notna().all().all()
    page = (out / "rapport.html").read_text()
    assert "rangstabilitet" in page and "dekning" in page and "Traceback" not in page
    assert readable_on_a_phone(out / "rapport.html") == 0  # tables only
    twin = CliRunner().invoke(app, ["modell", "sammenlign", "--data", str(small_world), "--spesifikasjon",
                                    str(specs["default.toml"]), "--spesifikasjon", str(specs["default.toml"]),
                                    "--out", str(tmp_path / "t")])
    assert twin.exit_code == 2 and "ulike navn" in twin.output and not (tmp_path / "t").exists()
    with pytest.raises(ComparisonError, match="finnes ikke"):
        compare_models([specs["default.toml"]], [tmp_path / "nowhere"])


def test_a_model_transition_sets_the_new_back_cast_beside_the_old_series(small_world, small_run, tmp_path,
                                                                        readable_on_a_phone):
    import shutil

    import arbeidsindikator as ai
    db = tmp_path / "store.duckdb"
    shutil.copy(small_run[1], db)
    old = small_run[0].run_id
    new = ai.run_indicator(small_world, config=dict((p.stem, p) for p in shipped_specs())["ledighet"], db=db).run_id
    out = tmp_path / "overgang"
    r = CliRunner().invoke(app, ["modell", "overgang", "--db", str(db), "--out", str(out)])  # forrige -> siste
    assert r.exit_code == 0, r.output
    s = pd.read_csv(out / "overgang.csv")
    with duckdb.connect(str(db), read_only=True) as con:
        cells = con.execute("""SELECT a.ORG_NIVAA, a.UTFALL, a.INDIKATOR AS old, b.INDIKATOR AS new
            FROM published a JOIN published b USING (BEHOLDNINGSMAANED, ORG_NIVAA, ORG_STED_ID, UTFALL, NEDBRYTNING, GRUPPE)
            WHERE a.run_id = ? AND b.run_id = ? AND a.NEDBRYTNING = 'Alle' AND NOT a.PRIKKET AND NOT b.PRIKKET""",
                            [old, new]).df()
    for (lvl, o), g in cells.groupby(["ORG_NIVAA", "UTFALL"]):
        row = s[(s["level"] == lvl) & (s["outcome"] == o)].iloc[0]
        assert row["cells"] == len(g) and row["mean_diff"] == pytest.approx((g["new"] - g["old"]).mean(), abs=1e-12)
        assert row["r"] == pytest.approx(np.corrcoef(g["old"], g["new"])[0, 1], rel=1e-9)
    assert s.loc[s["level"] == 3, "spearman"].between(0, 1).all() and (s["mean_abs_diff"] > 0).any()
    nat = pd.read_csv(out / "nasjonal_serie.csv")
    assert len(nat) == len(cells[cells["ORG_NIVAA"] == 1])
    assert readable_on_a_phone(out / "rapport.html") > 10
    same = CliRunner().invoke(app, ["modell", "overgang", "--db", str(db), "--fra", old, "--til", old, "--out",
                                    str(tmp_path / "x")])
    assert same.exit_code == 2 and "samme" in same.output and not (tmp_path / "x").exists()
    gone = CliRunner().invoke(app, ["modell", "overgang", "--db", str(db), "--fra", "nope", "--out", str(tmp_path / "y")])
    assert gone.exit_code == 2 and "finnes ikke" in gone.output
