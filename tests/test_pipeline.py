"""The indicator end to end: runs, atomicity, bad input, consistency, validity."""

import json
import re
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import arbeidsindikator as ai
from arbeidsindikator.cli import app
from arbeidsindikator.pipeline.config import ConfigError, default_spec_text
from arbeidsindikator.pipeline.design import TermCoding
from arbeidsindikator.pipeline.gram import Layout
from arbeidsindikator.pipeline.model import IndicatorModel
from arbeidsindikator.pipeline.config import Term
from arbeidsindikator.data.validate import ValidationError
from arbeidsindikator.analyses.validity import office_year_correlations


def test_run_stores_manifest_coefficients_and_published_table(small_run):
    run, db = small_run
    con = duckdb.connect(str(db), read_only=True)
    m = con.execute("SELECT model_name, package_version, input_fingerprints, timings, config_toml FROM runs WHERE run_id = ?", [run.run_id]).fetchall()[0]
    assert m[0] == "nav-standard" and m[1] == ai.__version__
    assert "stock" in m[2] and "model" in m[3] and "[model]" in m[4]
    coef = con.execute("SELECT DISTINCT response_variable FROM coefficients").fetchall()
    assert {c[0] for c in coef} == {"atid3", "atid12", "jobb3", "jobb12"}
    cols = [r[0] for r in con.execute("DESCRIBE published").fetchall()]
    for c in ("BEHOLDNINGSMAANED", "ORG_NIVAA", "ORG_STED", "UTFALL", "NEDBRYTNING", "ANTALL_PERSONER",
              "faktisk", "forventet", "INDIKATOR", "I_MODELLEN", "PRIKKET"):
        assert c in cols
    levels = {r[0] for r in con.execute("SELECT DISTINCT ORG_NIVAA FROM published").fetchall()}
    assert levels == {1, 2, 3}
    assert con.execute("SELECT count(*) FROM published WHERE ORG_STED = 'Nasjonal oppfølgingsenhet'").fetchall()[0][0] > 0
    inmodel = dict(con.execute("SELECT NEDBRYTNING, any_value(I_MODELLEN) FROM published GROUP BY 1").fetchall())
    assert inmodel == {"Alle": False, "Innsatsgruppe": False, "Ungdomsgaranti": False,
                       "Innvandrerkategori": True, "Aldersgruppe": True, "Kjønn": True}
    # no published cell below the threshold carries values
    assert con.execute("SELECT count(*) FROM published WHERE ANTALL_PERSONER < 10 AND INDIKATOR IS NOT NULL").fetchall()[0][0] == 0
    # 12-month outcomes are censored in the last 12 months of employment data
    assert con.execute("SELECT max(BEHOLDNINGSMAANED) FROM published WHERE UTFALL = 'jobb12'").fetchall()[0][0].isoformat() == "2023-12-01"
    assert con.execute("SELECT max(BEHOLDNINGSMAANED) FROM published WHERE UTFALL = 'jobb3'").fetchall()[0][0].isoformat() == "2024-09-01"


def test_indicator_averages_to_zero_over_the_estimation_sample(small_run):
    _, db = small_run
    con = duckdb.connect(str(db), read_only=True)
    for o in ("atid3", "atid12", "jobb3", "jobb12"):
        mean, scale = con.execute(f"SELECT avg(indicator_{o}), avg(abs(actual_{o})) FROM person_results WHERE actual_{o} IS NOT NULL").fetchall()[0]
        assert abs(mean) < 1e-10 * max(scale, 1.0), (o, mean)
    # ... and so does the published national series, weighted by persons, up to the published
    # precision (values are rounded to 1e-4)
    for o in ("atid3", "jobb3"):
        v = con.execute(f"""SELECT sum(INDIKATOR * ANTALL_PERSONER) / sum(ANTALL_PERSONER) FROM published
                            WHERE ORG_NIVAA = 1 AND NEDBRYTNING = 'Alle' AND UTFALL = '{o}'""").fetchall()[0][0]
        assert abs(v) < 5e-5


def test_aggregates_are_consistent_across_levels(small_run):
    """Counts add up across levels wherever the whole family is published (suppressed cells
    carry no count)."""
    _, db = small_run
    con = duckdb.connect(str(db), read_only=True)
    for child, parent in ((3, 2), (2, 1)):
        link = "s.region_id = r.ORG_STED_ID" if child == 3 else "TRUE"
        child_key = "REGION_ID AS region_id" if child == 3 else "NULL AS region_id"
        sql = f"""
            SELECT count(*), count(*) FILTER (WHERE s.n <> r.ANTALL_PERSONER) FROM (
              SELECT BEHOLDNINGSMAANED, UTFALL, NEDBRYTNING, GRUPPE, {child_key}, sum(ANTALL_PERSONER) n
              FROM published WHERE ORG_NIVAA = {child} GROUP BY ALL HAVING bool_and(NOT PRIKKET)) s
            JOIN published r USING (BEHOLDNINGSMAANED, UTFALL, NEDBRYTNING, GRUPPE)
            WHERE r.ORG_NIVAA = {parent} AND NOT r.PRIKKET AND {link}"""
        families, wrong = con.execute(sql).fetchall()[0]
        assert families > 1000 and wrong == 0
    # sums too: national actual x persons equals the sum over regions (unsuppressed 'Alle' cells)
    # (up to the published precision: each mean is rounded to 1e-4)
    diff = con.execute("""
        SELECT max(abs(r.s - n.faktisk * n.ANTALL_PERSONER) - 5e-5 * (r.n + n.ANTALL_PERSONER)) FROM
          (SELECT BEHOLDNINGSMAANED, UTFALL, sum(faktisk * ANTALL_PERSONER) s, sum(ANTALL_PERSONER) n FROM published
           WHERE ORG_NIVAA = 2 AND NEDBRYTNING = 'Alle' GROUP BY ALL HAVING bool_and(NOT PRIKKET)) r
        JOIN published n USING (BEHOLDNINGSMAANED, UTFALL) WHERE n.ORG_NIVAA = 1 AND n.NEDBRYTNING = 'Alle'""").fetchall()[0][0]
    assert diff <= 1e-9


def test_failed_run_leaves_previous_results_untouched(small_world, tmp_path):
    db = tmp_path / "res.duckdb"
    first = ai.run_indicator(small_world, db=db)
    before = duckdb.connect(str(db), read_only=True).execute("SELECT count(*) FROM published").fetchall()[0][0]
    with pytest.raises(RuntimeError, match="simulated"):
        ai.run_indicator(small_world, db=db, _fail_after_published=True)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT list(run_id) FROM runs").fetchall()[0][0] == [first.run_id]
    assert con.execute("SELECT count(*) FROM published").fetchall()[0][0] == before


def test_bad_input_writes_nothing(small_world, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(small_world, bad)
    (bad / "persons.parquet").unlink()
    db = tmp_path / "res.duckdb"
    with pytest.raises(ValidationError):
        ai.run_indicator(bad, db=db)
    assert not db.exists()
    spec_bad_col = tmp_path / "bad.toml"
    spec_bad_col.write_text(default_spec_text().replace('column = "education"', 'column = "utdanning_finnes_ikke"'))
    with pytest.raises(ConfigError, match="utdanning_finnes_ikke"):
        ai.run_indicator(small_world, config=spec_bad_col, db=db)
    assert not db.exists()
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\n")
    result = CliRunner().invoke(app, ["run", "--data", str(small_world), "--config", str(broken), "--db", str(db)])
    assert result.exit_code == 2 and "malformed TOML" in result.output
    assert not db.exists()


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(2, 5), st.integers(20, 200), st.integers(0, 10_000), st.sampled_from([1, 12, 256]))
def test_gram_from_codes_equals_dense_one_hot(n_terms, n_levels, n, seed, block_cells):
    """Terms joined into blocks of up to `block_cells` level combinations (1: every term alone)."""
    rng = np.random.default_rng(seed)
    codings = [TermCoding(Term(f"t{k}", "categorical"), [str(i) for i in range(n_levels)], 0, "") for k in range(n_terms)]
    codings.append(TermCoding(Term("x", "continuous"), [], None, ""))
    lay = Layout(codings, block_cells=block_cells)
    codes = [rng.integers(0, n_levels + 1, n) for _ in range(n_terms)]
    conts = [rng.normal(size=n)]
    a = rng.random(n)
    X = np.zeros((n, lay.p))
    X[:, 0] = 1
    for c, off in zip(codes, lay.offsets):
        X[np.arange(n), off + c] = 1
    X[:, -1] = conts[0]
    np.testing.assert_allclose(lay.gram(codes, conts, a), X.T @ (a[:, None] * X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lay.cross(codes, conts, a), X.T @ a, rtol=1e-12, atol=1e-12)
    g = rng.integers(0, 7, n)
    S = np.zeros((7, lay.p))
    np.add.at(S, g, X * a[:, None])
    np.testing.assert_allclose(lay.cluster_scores(g, 7, codes, conts, a), S, rtol=1e-12, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(st.integers(50, 400), st.integers(0, 10_000))
def test_model_on_any_table_has_zero_mean_residuals(n, seed):
    """The engine is not tied to Nav's names: any table with an outcome and covariates."""
    rng = np.random.default_rng(seed)
    con = duckdb.connect()
    con.execute("CREATE TABLE t (pid INTEGER, month DATE, y DOUBLE, colour VARCHAR, size DOUBLE)")
    pid = rng.integers(0, max(2, n // 3), n)
    con.executemany("INSERT INTO t VALUES (?, DATE '2020-01-01' + INTERVAL (?) MONTH, ?, ?, ?)",
                    [(int(p), int(i), float(rng.normal()), ["red", "green", "blue"][int(rng.integers(0, 3))], float(rng.normal()))
                     for i, p in enumerate(pid)])  # (pid, month) unique: predictions are keyed by it
    spec = ai.parse_spec("""[model]
outcomes = ["y"]
cluster = "pid"
[[model.terms]]
column = "colour"
kind = "categorical"
[[model.terms]]
column = "size"
kind = "continuous"
""")
    m = ai.fit_model(con, "t", spec)
    ordered = "SELECT * FROM t ORDER BY pid, month"
    pred = m.predict(con, ordered)["expected_y"].to_numpy()
    y = con.execute(ordered).df()["y"].to_numpy()
    assert abs((y - pred).mean()) < 1e-10 * max(1, np.abs(y).mean())
    assert m.nobs == n


def test_demo_command_writes_everything(tmp_path):
    out = tmp_path / "demo"
    r = CliRunner().invoke(app, ["demo", "--out", str(out), "--scale", "small"])
    assert r.exit_code == 0, r.output
    for f in ("publisert.csv", "publisert.parquet", "koeffisienter.csv", "index.html", "arbeidsindikator.duckdb",
              "evaluering.toml", "tiltak_kutt.csv", "evaluering/rapport.html", "evaluering/resultater.csv"):
        assert (out / f).exists(), f
    # the README's evaluation line, as written after the demo (here with the demo's own folder)
    again = CliRunner().invoke(app, ["analyse", "evaluering", "--db", str(out / "arbeidsindikator.duckdb"),
                                     "--config", str(out / "evaluering.toml"), "--out", str(tmp_path / "evaluering")])
    assert again.exit_code == 0, again.output
    res = pd.read_csv(tmp_path / "evaluering" / "resultater.csv")
    assert res.loc[0, "term"] == "kutt" and np.isfinite(res.loc[0, "estimate"])
    assert json.loads((tmp_path / "evaluering" / "resultater.json").read_text())["panel"]["units"] >= 10  # NOE left out
    page = (out / "index.html").read_text()
    assert "<svg" in page and "Innsatsgruppe" in page.replace("innsatsgruppe", "Innsatsgruppe")
    # opens offline: nothing is loaded from elsewhere (namespace identifiers are not loads)
    import re
    assert not re.search(r'(src|href)\s*=\s*["\']https?:|url\(\s*["\']?https?:|@import', page)


def test_validity_on_the_clean_medium_world(medium_clean_world, medium_clean_run):
    db = medium_clean_run
    cor = office_year_correlations(medium_clean_world, db)
    for o in ("jobb3", "atid3"):
        # weighted by persons, as small office-years are noisier (their intervals say so)
        assert cor[o]["r_indicator_weighted"] >= 0.9 and cor[o]["r_indicator"] >= 0.85, (o, cor[o])
        assert cor[o]["r_indicator"] > cor[o]["r_actual"] + 0.05, (o, cor[o])


def test_report_has_every_section_opens_offline_and_matches_the_published_table(small_run, tmp_path):
    import re

    from arbeidsindikator.present.report import write_report
    _, db = small_run
    res = ai.Results(db)
    office = res.published(ORG_NIVAA=3, NEDBRYTNING="Alle").query("ORG_STED_ID != '4154'")["ORG_STED_ID"].iloc[0]
    for unit in ("Norge", "Oslo", office):
        path = write_report(db, unit, tmp_path)
        page = path.read_text()
        for sid in ("indikator", "siste", "innsatsgruppe", "nedbrytninger", "endringsindeks", "arbeidsvolum", "slik-leser-du"):
            assert f'id="{sid}"' in page, (unit, sid)
        if unit != "Norge":
            assert 'id="traktplott"' in page
        assert "Lesebetingelse" in page  # the reading rule is shown for in-model breakdowns
        assert not re.search(r'(src|href)\s*=\s*["\']https?:|url\(\s*["\']?https?:|@import', page)
        assert "data:text/csv;base64," in page
        slug = path.stem
        assert (tmp_path / "figurer" / slug / "indikator.png").exists() and (tmp_path / "figurer" / slug / "indikator.svg").exists()
    # the latest numbers in the national report equal the published table
    page = (tmp_path / "norge.html").read_text()
    nat = res.published(ORG_NIVAA=1, NEDBRYTNING="Alle", UTFALL="atid3")
    last = nat[~nat["PRIKKET"]].iloc[-1]
    from arbeidsindikator import norsk
    assert norsk.value(last["INDIKATOR"], "atid3", 2, indicator=True) in page
    assert norsk.value(last["faktisk"], "atid3", 1) in page
    assert norsk.month(last["BEHOLDNINGSMAANED"]) in page


def test_cell_codes_decode_to_the_labels_of_every_row():
    """The coded person results' integer codes (what publishing groups by) stand for exactly the office,
    region and breakdown group of their row, also for a missing group and a quote in a label. The
    model's pass writes them (with the codes carried through) and a view joins the labels back."""
    from arbeidsindikator.pipeline.indicator import NULL_GROUP, CellCodes, cell_codes, person_results_view
    text = re.sub(r"\[\[model\.terms\]\].*?(?=\n# Breakdowns)", "", default_spec_text(), flags=re.S)
    text = text.replace('cluster2 = "commuting_region_id"', "").replace("[publish]", "[publish]", 1)
    text = text.replace("# Breakdowns", '[[model.terms]]\ncolumn = "age"\nkind = "bins"\nbreaks = [30, 50]\n\n'
                        '[[model.terms]]\ncolumn = "sex"\nkind = "categorical"\n\n# Breakdowns', 1)
    spec = ai.parse_spec(text)
    rng = np.random.default_rng(3)
    con = duckdb.connect()
    rows = []
    for i in range(300):
        office = ["0301", "4601", "5001", "O'1"][i % 4]
        rows.append((i, "2020-01-01", office, f"Nav {office}", office[:2], f"Region {office[:2]}", office,
                     [None, "standard", "situasjonsbestemt"][int(rng.integers(0, 3))], bool(rng.integers(0, 2)),
                     ["norskfodt", "innvandrer", "o'brien"][int(rng.integers(0, 3))], int(rng.integers(18, 70)),
                     ["mann", "kvinne"][int(rng.integers(0, 2))], float(rng.normal()), float(rng.normal()),
                     float(rng.integers(0, 2)), None if i % 7 == 0 else float(rng.integers(0, 2))))
    con.execute("""CREATE TABLE analysis (person_id BIGINT, month DATE, office_id VARCHAR, office_name VARCHAR,
        region_id VARCHAR, region_name VARCHAR, home_office_id VARCHAR, innsatsgruppe VARCHAR, youth_guarantee BOOLEAN,
        immigrant_category VARCHAR, age INTEGER, sex VARCHAR, atid3 DOUBLE, atid12 DOUBLE, jobb3 DOUBLE, jobb12 DOUBLE)""")
    con.executemany("INSERT INTO analysis VALUES (" + ", ".join("?" * 16) + ")", rows)
    # names come from the organisation tables; an office renamed later is published under its latest name
    con.execute("""CREATE TABLE offices AS SELECT DISTINCT office_id, office_name, region_id, DATE '2019-01-01' AS valid_from,
                   NULL::DATE AS valid_to FROM analysis""")
    con.execute("INSERT INTO offices VALUES ('0301', 'Nav Oslo', '03', DATE '2020-02-01', NULL)")
    con.execute("UPDATE offices SET valid_to = DATE '2020-01-01' WHERE office_id = '0301' AND valid_from = DATE '2019-01-01'")
    con.execute("CREATE TABLE regions AS SELECT DISTINCT region_id, region_name FROM analysis")
    table, carry = cell_codes(con, spec)
    IndicatorModel(spec).fit(con, table, predictions_table="person_results_coded", carry=carry)
    person_results_view(con, spec)
    codes = CellCodes.read(con, spec)
    names = [n for n, _ in codes.breakdowns]
    assert names[0] == "Alle" and codes.labels[0] == ["Alle"]
    code_cols = [c for c, *_ in con.execute("DESCRIBE person_results_coded").fetchall() if c.startswith("__")]
    pr = con.execute(f"SELECT p.*, {', '.join('c.' + c for c in code_cols)} FROM person_results p "
                     "JOIN person_results_coded c USING (person_id, month)").df()
    assert len(pr) == 300 and con.execute("SELECT count(*) FROM person_results_coded").fetchall()[0][0] == 300
    assert (pr["office_id"] == np.array(codes.offices, dtype=object)[pr["__office"]]).all()
    assert (pr["region_id"] == np.array(codes.regions, dtype=object)[pr["__region"]]).all()
    assert (pr["office_name"] == pr["office_id"].map(lambda o: f"Nav {o}")).all()  # the name in the month
    latest = np.array(codes.office_names, dtype=object)[pr["__office"]]
    assert (latest == pr["office_id"].map(lambda o: "Nav Oslo" if o == "0301" else f"Nav {o}")).all()
    assert (pr["region_name"] == np.array(codes.region_names, dtype=object)[pr["__region"]]).all()
    # the values: actual as in analysis, indicator = actual - expected, NULL (not NaN) where censored
    a = con.execute("SELECT person_id, jobb12 FROM analysis").df().merge(pr, on="person_id")
    assert (a["jobb12"].isna() == a["actual_jobb12"].isna()).all() and a["jobb12"].isna().sum() == 43
    assert np.allclose(a["indicator_jobb12"], a["actual_jobb12"] - a["expected_jobb12"], equal_nan=True)
    assert con.execute("SELECT count(*) FROM person_results_coded WHERE isnan(indicator_jobb12)").fetchall()[0][0] == 0
    for b, name in enumerate(names[1:], start=1):
        decoded = np.array(codes.labels[b], dtype=object)[pr[f"__g{b}"]]
        assert (pr[f"grp_{name}"].fillna(NULL_GROUP) == decoded).all(), name
        assert codes.labels[b] == sorted(set(codes.labels[b]) - {NULL_GROUP}) + ([NULL_GROUP] if pr[f"grp_{name}"].isna().any() else [])
    assert set(map(tuple, codes.pairs.tolist())) == set(zip(pr["__office"], pr["__region"]))
