"""The monthly cycle (issue 29): extracts as of a month, frozen model versions, append-only
releases with final and provisional cells, and revision tables that explain every difference."""

from __future__ import annotations

import json
import shutil

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

import arbeidsindikator as ai
from arbeidsindikator.cli import app
from arbeidsindikator.data.extracts import ExtractError, cut_extract
from arbeidsindikator.pipeline import carry, versions
from test_disclosure import bounded_attack


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def store(small_run, tmp_path_factory):
    """A copy of the small world's store with its estimated version in production."""
    run, db = small_run
    path = tmp_path_factory.mktemp("releases") / "store.duckdb"
    shutil.copy(db, path)
    versions.set_status(path, run.run_id, "produksjon")
    return run, path


def _published(db, run_id, table="published"):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f"SELECT * EXCLUDE run_id FROM {table} WHERE run_id = ? ORDER BY ALL", [run_id]).df()


def test_a_version_is_stored_with_everything_it_needs(store):
    run, db = store
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT status, spec_sha256, period_from, period_to, libraries, codings, octet_length(model) "
                          "FROM model_versions WHERE version = ?", [run.run_id]).fetchall()[0]
    status, sha, pfrom, pto, libs, codings, size = row
    assert status == "produksjon" and len(sha) == 64 and size > 10_000
    assert {"numpy", "duckdb", "python"} <= set(pd.read_json(pd.io.common.StringIO(libs), typ="series").index)
    deciles = [c for c in pd.read_json(pd.io.common.StringIO(codings)).to_dict("records") if c["kind"] == "deciles"]
    assert deciles and all(len(c["cutpoints"]) >= 5 for c in deciles)  # the cut points are frozen with it


def test_a_release_under_the_frozen_version_reproduces_its_estimation_run(store, small_world, tmp_path):
    run, db = store
    db = shutil.copy(db, tmp_path / "store.duckdb")  # a release as of 2024-12 here would bar the older ones below
    r = ai.run_indicator(small_world, db=db, model_version=True)
    assert r.model_version == run.run_id
    # the same cells with the same numbers. Where both publish a cell, every column is the same;
    # the patterns differ a little, as a release publishes other periods (carry.py: only periods
    # complete for every outcome, which never change), and so protects with other relations
    for table, key in (("published", carry.MONTH_KEY), ("published_period", carry.PERIOD_KEY)):
        a, b = _published(db, run.run_id, table), _published(db, r.run_id, table)
        j = a.merge(b, on=key, suffixes=("_a", "_b"))
        assert len(j) >= 0.5 * len(a) and (table == "published_period" or len(j) == len(a) == len(b))
        both = j[~j["PRIKKET_a"] & ~j["PRIKKET_b"]]
        assert len(both) > 0.8 * (~j["PRIKKET_a"]).sum()
        # (the shrunken indicator borrows the between-office variance of the published cells)
        skip = ["PRIKKET", "PRIKKET_ARSAK", "ANTALL_INTERVALL", "PERIODE", "INDIKATOR_KRYMPET", "MELLOMVARIANS"]
        for c in a.columns.difference(key + skip):
            x, y = both[f"{c}_a"], both[f"{c}_b"]
            assert ((x == y) | (x.isna() & y.isna())).all(), c
    rel = versions.list_releases(db)
    assert rel["release_id"].tolist()[-1] == r.run_id and rel["model_version"].tolist()[-1] == run.run_id


def test_an_extract_is_the_register_as_it_stood(small_world, tmp_path):
    out = cut_extract(small_world, tmp_path / "x", "2023-06", lag=1)
    con = duckdb.connect()
    q = lambda sql: con.execute(sql.replace("@", out.as_posix())).fetchall()[0]  # noqa: E731
    assert q("SELECT max(month) FROM '@/stock.parquet'")[0].isoformat() == "2023-06-01"
    assert q("SELECT max(month) FROM '@/employment.parquet'")[0].isoformat() == "2023-05-01"
    assert q("SELECT employment_observed_to FROM '@/extract.parquet'")[0].isoformat() == "2023-05-01"
    assert q("SELECT count(*) FROM '@/offices.parquet' WHERE valid_from > DATE '2023-06-01' OR valid_to > DATE '2023-06-01'")[0] == 0
    assert (out / "truth").is_dir()
    with pytest.raises(ExtractError, match="utenfor"):
        cut_extract(small_world, tmp_path / "y", "2031-01")


def test_releases_append_mark_final_cells_and_revisions_explain_every_difference(store, small_world, tmp_path):
    run, db = store
    for month in ("2023-06", "2023-09"):
        r = _cli("kutt", "--data", small_world, "--out", tmp_path / month, "--per", month)
        assert r.exit_code == 0, r.output
    r = _cli("publiser", "--data", tmp_path / "2023-06", "--db", db)
    assert r.exit_code == 0 and "lagret" in r.output, r.output
    first = versions.list_releases(db)["release_id"].tolist()[-1]
    before = _published(db, first)
    # final: the window closed REVISION_MONTHS before the employment data end (2023-05)
    jobb3 = before[before["UTFALL"] == "jobb3"]
    assert jobb3.loc[jobb3["ENDELIG"], "BEHOLDNINGSMAANED"].max() == pd.Timestamp("2022-12-01")
    assert not jobb3.loc[jobb3["BEHOLDNINGSMAANED"] > pd.Timestamp("2022-12-01"), "ENDELIG"].any()
    r = _cli("publiser", "--data", tmp_path / "2023-09", "--db", db)
    assert r.exit_code == 0, r.output
    second = versions.list_releases(db)["release_id"].tolist()[-1]
    pd.testing.assert_frame_equal(before, _published(db, first))  # append-only: the first release is as it was
    # an attacker who keeps both releases recovers nothing (carry.py), nor from either alone
    releases = [(_published(db, x), _published(db, x, "published_period")) for x in (first, second)]
    for outcome in ("jobb3", "jobb12"):  # (this attacker reads shares in per cent)
        for tables in (releases, releases[1]):
            found, _ = bounded_attack(*(tables if isinstance(tables, tuple) else (tables, None)), outcome, 10)
            assert not any(found.values()), (outcome, {k: len(v) for k, v in found.items()})
    # the newer release holds every cell the older one published, with the same value
    old, new = releases[0][0], releases[1][0]
    j = old[~old["PRIKKET"]].merge(new, on=carry.MONTH_KEY, how="left", suffixes=("", "_ny"))
    assert (~j["PRIKKET_ny"].astype(bool)).all() and (j["faktisk"] == j["faktisk_ny"]).all()
    r = _cli("revisjon", "--db", db)  # the newest release's audit, and the history it holds
    assert r.exit_code == 0 and "holder alle 1 tidligere publiseringer" in " ".join(r.output.split()), r.output
    r = _cli("publiser", "--data", tmp_path / "2023-06", "--db", db)  # older than the newest: refused
    assert r.exit_code == 2 and "månedsrekkefølge" in " ".join(r.output.split()), r.output
    rev = versions.revisions(db, first, second)
    # every difference, counted independently, is in the table with a cause
    a, b = before, _published(db, second)
    keys = ["BEHOLDNINGSMAANED", "ORG_NIVAA", "ORG_STED_ID", "UTFALL", "NEDBRYTNING", "GRUPPE"]
    j = a.merge(b, on=keys, how="outer", suffixes=("_a", "_b"), indicator=True)
    same = ((j["_merge"] == "both") & (j["PRIKKET_a"] == j["PRIKKET_b"])
            & ((j["INDIKATOR_a"] == j["INDIKATOR_b"]) | (j["INDIKATOR_a"].isna() & j["INDIKATOR_b"].isna()))
            & ((j["faktisk_a"] == j["faktisk_b"]) | (j["faktisk_a"].isna() & j["faktisk_b"].isna())))
    assert len(rev) == int((~same).sum()) > 0
    assert set(rev["AARSAK"]) <= set(versions.REVISION_CAUSES) and "ny" in set(rev["AARSAK"])
    assert "endelig" not in set(rev["AARSAK"])  # the world has no late corrections: no final value moved
    r = _cli("revisjoner", "--fra", first, "--til", second, "--db", db, "--out", tmp_path / "rev.csv")
    assert r.exit_code == 0 and "ny celle" in " ".join(r.output.split()), r.output
    assert len(pd.read_csv(tmp_path / "rev.csv")) == len(rev)
    # what people see: the release in the export's manifest, the report and the dashboard
    r = _cli("export", "--db", db, "--out", tmp_path / "pub")
    assert r.exit_code == 0, r.output
    man = json.loads((tmp_path / "pub.manifest.json").read_text())
    assert man["publisering"]["as_of"] == "2023-09" and man["publisering"]["model_version"] == run.run_id
    assert "ENDELIG" in pd.read_csv(tmp_path / "pub.csv", nrows=5).columns
    from arbeidsindikator.present.report import write_report
    page = write_report(db, "Norge", tmp_path / "rap").read_text()
    assert "Publisering per 2023-09" in page and run.run_id in page
    from fastapi.testclient import TestClient

    from arbeidsindikator.present.dashboard.app import create_app
    shutil.copy(db, tmp_path / "kopi.duckdb")  # the app keeps its connection open: not on the shared store
    client = TestClient(create_app(tmp_path / "kopi.duckdb"))
    meta = client.get("/api/meta").json()
    assert meta["release"]["as_of"] == "2023-09" and "Publisering per 2023-09" in meta["release_text"]
    rows = client.get("/api/series", params={"unit": "Norge", "outcome": "jobb12"}).json()["rows"]
    assert {r["ENDELIG"] for r in rows} == {True, False}
    r = _cli("publiseringer", "--db", db)
    assert r.exit_code == 0 and "2023-09" in r.output and "2023-06" in r.output, r.output


def test_version_commands_and_their_errors(store, tmp_path):
    run, db = store
    r = _cli("modell", "liste", "--db", db)
    assert r.exit_code == 0 and "produksjon" in r.output
    r = _cli("modell", "status", "nei", "produksjon", "--db", db)
    assert r.exit_code == 2 and "finnes ikke" in " ".join(r.output.split())
    r = _cli("modell", "status", run.run_id, "ferdig", "--db", db)
    assert r.exit_code == 2 and "ukjent status" in " ".join(r.output.split())
    r = _cli("publiser", "--data", tmp_path, "--db", tmp_path / "ingen.duckdb")
    assert r.exit_code == 2 and "finnes ikke" in " ".join(r.output.split())  # a long path wraps the line
    empty = tmp_path / "tom.duckdb"
    duckdb.connect(str(empty)).close()
    with pytest.raises(versions.VersionError, match="ingen modellversjoner"):
        versions.load_version(empty)


def test_release_periods_are_complete_for_every_outcome_and_keep_the_earlier_ones():
    """A release's periods (carry.py): years whose every month every outcome observes, the last
    12 such months, the spec's own periods; the previous release's again, each span once."""
    from types import SimpleNamespace

    from arbeidsindikator.pipeline.uncertainty import Period
    con = duckdb.connect()
    # jobb3 observed to 2023-03, jobb12 to 2022-12: every outcome to 2022-12
    con.execute("""CREATE TABLE person_results_coded AS SELECT m::DATE AS month,
                   CASE WHEN m <= DATE '2023-03-01' THEN 1 END AS actual_jobb3,
                   CASE WHEN m <= DATE '2022-12-01' THEN 1 END AS actual_jobb12
                   FROM range(DATE '2021-03-01', DATE '2023-07-01', INTERVAL 1 MONTH) t(m)""")
    spec = SimpleNamespace(outcomes=["jobb3", "jobb12"], periods=[("vinter", "2022-01", "2022-02"), ("sen", "2022-06", "2023-01")])
    before = carry.Carried(periods=[Period("siste 12 mnd til 2022-11", "2021-12", "2022-11")])
    got = [(p.label, p.start, p.end) for p in carry.release_periods(con, spec, "person_results", before)]
    # 2021 lacks its first months; the last 12 months to 2022-12 are the year 2022: once
    assert got == [("siste 12 mnd til 2022-11", "2021-12", "2022-11"), ("2022", "2022-01", "2022-12"),
                   ("vinter", "2022-01", "2022-02")]
