"""The data contract refuses bad input with one message naming every problem."""

import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from arbeidsindikator.cli import app
from arbeidsindikator.data.contract import contract_markdown
from arbeidsindikator.data.validate import ValidationError, validate


def _rewrite(d, table, sql):
    p = d / f"{table}.parquet"
    con = duckdb.connect()
    src = sql.format(t="read_parquet($src)")
    con.execute(f"COPY ({src}) TO $dst (FORMAT parquet)", {"src": p.as_posix(), "dst": (d / "tmp.parquet").as_posix()})
    con.close()
    (d / "tmp.parquet").replace(p)


@pytest.fixture()
def corrupted(small_world, tmp_path):
    d = tmp_path / "bad"
    shutil.copytree(small_world, d)
    # missing column
    _rewrite(d, "persons", "SELECT * EXCLUDE (sex) FROM {t}")
    # wrong type
    _rewrite(d, "labour_market", "SELECT * REPLACE (inflow_rate::VARCHAR AS inflow_rate) FROM {t}")
    # duplicate person-month
    _rewrite(d, "stock", "SELECT * FROM {t} UNION ALL (SELECT * FROM {t} LIMIT 2)")
    # negative hours
    # a person with hours (the first persons of a world may never have worked)
    _rewrite(d, "employment", "SELECT * REPLACE (CASE WHEN person_id = (SELECT min(person_id) FROM {t}) THEN -5.0 "
                              "ELSE hours END AS hours) FROM {t}")
    return d


def test_corrupted_copy_reports_every_problem_at_once(corrupted):
    # unknown office and a month outside the geography's validity
    _rewrite(corrupted, "office_hr", "SELECT * REPLACE (CASE WHEN month = DATE '2018-01-01' THEN 'X999' ELSE office_id END AS office_id) FROM {t}")
    _rewrite(corrupted, "municipalities", "SELECT * REPLACE (CASE WHEN valid_from = DATE '2017-01-01' THEN DATE '2017-06-01' ELSE valid_from END AS valid_from) FROM {t}")
    with pytest.raises(ValidationError) as e:
        validate(corrupted)
    msg = str(e.value)
    found = {(v.table, v.column, v.rule) for v in e.value.violations}
    assert ("persons", "sex", "column missing") in found
    assert any(t == "labour_market" and c == "inflow_rate" and "type float" in r for t, c, r in found)
    assert any(t == "stock" and "duplicate" in r for t, c, r in found)
    assert any(t == "employment" and c == "hours" and ">= 0" in r for t, c, r in found)
    assert any(t == "office_hr" and c == "office_id" and "offices" in r for t, c, r in found)
    assert any(t == "stock" and c == "municipality_id" and "valid at month" in r for t, c, r in found)
    # examples name offending rows
    neg = next(v for v in e.value.violations if v.table == "employment" and v.column == "hours")
    assert neg.examples and "person_id" in neg.examples[0]
    assert "nothing was written" in msg


def test_missing_table_and_bad_values(small_world, tmp_path):
    d = tmp_path / "bad2"
    shutil.copytree(small_world, d)
    (d / "regions.parquet").unlink()
    _rewrite(d, "stock", "SELECT * REPLACE ('ukjent_gruppe' AS innsatsgruppe) FROM {t}")
    with pytest.raises(ValidationError) as e:
        validate(d)
    rules = [(v.table, v.rule) for v in e.value.violations]
    assert any(t == "regions" and "missing" in r for t, r in rules)
    assert any(t == "stock" and "one of" in r for t, r in rules)


def test_cli_validate_exit_codes(small_world, corrupted):
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", "--data", str(small_world)])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["validate", "--data", str(corrupted)])
    assert bad.exit_code == 2
    assert "persons" in bad.output and "employment" in bad.output


def test_contract_docs_are_generated_from_code(tmp_path):
    md = contract_markdown()
    for t in ("persons", "stock", "employment", "labour_market", "municipalities", "offices", "office_hr"):
        assert f"`{t}`" in md
    # the committed document is exactly what the command writes; by default to standard output
    from pathlib import Path

    from typer.testing import CliRunner

    from arbeidsindikator.cli import app
    committed = (Path(__file__).resolve().parents[1] / "docs" / "data-contract.md").read_text(encoding="utf-8")
    assert committed == md
    r = CliRunner().invoke(app, ["contract"])
    assert r.exit_code == 0 and r.stdout == md
    r = CliRunner().invoke(app, ["contract", "--out", str(tmp_path / "k.md")])
    assert r.exit_code == 0 and (tmp_path / "k.md").read_text(encoding="utf-8") == md
    r = CliRunner().invoke(app, ["contract", "--out", str(tmp_path / "nope" / "k.md")])
    assert r.exit_code == 2 and not (tmp_path / "nope").exists()


# -- the gaps found in the security review (issue 18): each was accepted or crashed before -------

import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import arbeidsindikator as ai  # noqa: E402


def _copy(small_world, tmp_path, name="w"):
    d = tmp_path / name
    shutil.copytree(small_world, d, ignore=shutil.ignore_patterns("truth"))
    return d


def _in_stock(d, n: int) -> list[int]:
    """The first n person ids of the stock."""
    con = duckdb.connect()
    try:
        return [r[0] for r in con.execute("SELECT DISTINCT person_id FROM read_parquet(?) ORDER BY 1 LIMIT ?",
                                          [(d / "stock.parquet").as_posix(), n]).fetchall()]
    finally:
        con.close()


def _rules(d):
    with pytest.raises(ValidationError) as e:
        validate(d)
    return {(v.table, v.column, v.rule) for v in e.value.violations if v.severity == "error"}


def test_empty_required_tables_are_refused(small_world, tmp_path):
    d = _copy(small_world, tmp_path)
    _rewrite(d, "employment", "SELECT * FROM {t} LIMIT 0")
    _rewrite(d, "stock", "SELECT * FROM {t} LIMIT 0")
    found = _rules(d)
    assert any(t == "employment" and "must not be empty" in r for t, c, r in found)
    assert any(t == "stock" and "must not be empty" in r for t, c, r in found)


def test_employment_observed_beyond_the_employment_rows_is_refused(small_world, tmp_path):
    d = _copy(small_world, tmp_path)
    _rewrite(d, "extract", "SELECT * REPLACE (DATE '2030-12-01' AS employment_observed_to) FROM {t}")
    found = _rules(d)
    assert any(t == "extract" and c == "employment_observed_to" for t, c, r in found)


def test_impossible_ages_are_refused(small_world, tmp_path):
    d = _copy(small_world, tmp_path)
    # two persons in the stock (a world's persons table also holds persons never followed up)
    a, b = _in_stock(d, 2)
    _rewrite(d, "persons", f"SELECT * REPLACE (CASE WHEN person_id = {a} THEN DATE '1720-01-01' "
                           f"WHEN person_id = {b} THEN DATE '2040-01-01' ELSE birth_month END AS birth_month) FROM {{t}}")
    found = _rules(d)
    assert any(t == "persons" and c == "birth_month" and "age" in r for t, c, r in found)


def _write_bad_utf8(path: Path, table: str, column: str):
    t = pq.read_table(path)
    col = t.column(column).combine_chunks()
    raw = pa.array([b"\xff\xfeNav" if i == 0 else v.as_py().encode() for i, v in enumerate(col)], pa.binary()).view(pa.string())
    pq.write_table(t.set_column(t.schema.get_field_index(column), column, raw), path)


def test_unreadable_files_are_violations_reported_together(small_world, tmp_path):
    d = _copy(small_world, tmp_path)
    (d / "regions.parquet").write_bytes(b"")  # 0 bytes
    data = (d / "persons.parquet").read_bytes()
    (d / "persons.parquet").write_bytes(data[: len(data) // 2])  # truncated
    (d / "labour_market.parquet").write_text("commuting_region_id,month\nA,2020-01-01\n")  # CSV named .parquet
    (d / "office_hr.parquet").write_bytes(b"PAR1" + bytes(range(256)) * 10 + b"PAR1")  # corrupt
    _write_bad_utf8(d / "offices.parquet", "offices", "office_name")
    with pytest.raises(ValidationError) as e:
        validate(d)
    bad = {v.table: v for v in e.value.violations}
    for t in ("regions", "persons", "labour_market", "office_hr"):
        assert t in bad and "cannot be read" in bad[t].rule, t
    assert bad["offices"].column == "office_name" and "UTF-8" in bad["offices"].rule
    r = CliRunner().invoke(app, ["validate", "--data", str(d)])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_a_non_utf8_csv_is_a_violation(small_world, tmp_path):
    d = _copy(small_world, tmp_path)
    (d / "regions.parquet").unlink()
    (d / "regions.csv").write_bytes("region_id,region_name\n03,Oslo\n34,Innlandet\n15,M\xf8re og Romsdal\n".encode("latin-1"))
    found = _rules(d)
    assert any(t == "regions" and ("UTF-8" in r or "cannot be read" in r) for t, c, r in found)


def _as_csv(src: Path, dst: Path):
    dst.mkdir()
    con = duckdb.connect()
    for p in src.glob("*.parquet"):
        con.execute("COPY (SELECT * FROM read_parquet(?)) TO ? (FORMAT csv, HEADER true)", [p.as_posix(), (dst / f"{p.stem}.csv").as_posix()])
    con.close()


def _published(db):
    con = duckdb.connect(str(db), read_only=True)
    out = [con.execute(f"SELECT * EXCLUDE (run_id) FROM {t} ORDER BY ALL").df() for t in ("published", "published_period")]
    con.close()
    return out


@pytest.fixture(scope="module")
def baseline(small_world, tmp_path_factory):
    db = tmp_path_factory.mktemp("base") / "res.duckdb"
    ai.run_indicator(small_world, db=db)
    return _published(db)


def test_a_world_written_as_csv_validates_and_publishes_the_same(small_world, tmp_path, baseline):
    d = tmp_path / "csv"
    _as_csv(small_world, d)
    assert not [v for v in validate(d) if v.severity == "error"]
    db = tmp_path / "res.duckdb"
    ai.run_indicator(d, db=db)
    for a, b in zip(_published(db), baseline):
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)


# corruptions: each must be refused with a message naming a table (and a column where one is to
# blame); transformations that change nothing must be accepted with the same published table
CORRUPTIONS = {
    "null in a required column": ("stock", "innsatsgruppe", "SELECT * REPLACE (CASE WHEN person_id % 7 = 0 THEN NULL ELSE innsatsgruppe END AS innsatsgruppe) FROM {t}"),
    "unknown category": ("persons", "education", "SELECT * REPLACE (CASE WHEN person_id = (SELECT min(person_id) FROM {t}) THEN 'doktorgrad' ELSE education END AS education) FROM {t}"),
    "negative hours": ("employment", "hours", "SELECT * REPLACE (CASE WHEN person_id = (SELECT min(person_id) FROM {t}) THEN -1.0 ELSE hours END AS hours) FROM {t}"),
    "mid-month date": ("stock", "month", "SELECT * REPLACE (CASE WHEN person_id = (SELECT min(person_id) FROM {t}) THEN month + 3 ELSE month END AS month) FROM {t}"),
    "duplicate key": ("persons", "person_id", "SELECT * FROM {t} UNION ALL (SELECT * FROM {t} LIMIT 1)"),
    "dropped column": ("offices", "office_type", "SELECT * EXCLUDE (office_type) FROM {t}"),
    "wrong type": ("employment", "hours", "SELECT * REPLACE (hours::VARCHAR AS hours) FROM {t}"),
    "unknown office": ("stock", "office_id", "SELECT * REPLACE (CASE WHEN person_id = (SELECT min(person_id) FROM {t}) THEN 'X1' ELSE office_id END AS office_id) FROM {t}"),
    "empty table": ("municipalities", "*", "SELECT * FROM {t} LIMIT 0"),
    "inflow above 1": ("labour_market", "inflow_rate", "SELECT * REPLACE (inflow_rate + 2 AS inflow_rate) FROM {t}"),
}
HARMLESS = {
    "rows shuffled": ("stock", "SELECT * FROM {t} ORDER BY hash(person_id, month)"),
    "an extra column": ("persons", "SELECT *, 42 AS something_else FROM {t}"),
}


@settings(max_examples=14, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(sorted(CORRUPTIONS) + sorted(HARMLESS)), st.integers(0, 3))
def test_random_corruptions_are_refused_or_change_nothing(small_world, tmp_path_factory, baseline, kind, extra):
    d = _copy(small_world, tmp_path_factory.mktemp("corrupt"))
    if kind in CORRUPTIONS:
        table, column, sql = CORRUPTIONS[kind]
        _rewrite(d, table, sql)
        with pytest.raises(ValidationError) as e:
            ai.run_indicator(d, db=d / "res.duckdb")
        assert any(v.table == table and (column == "*" or column in v.column) for v in e.value.violations), (kind, e.value)
        assert not (d / "res.duckdb").exists()
    else:
        table, sql = HARMLESS[kind]
        _rewrite(d, table, sql)
        db = d / "res.duckdb"
        ai.run_indicator(d, db=db)
        for a, b in zip(_published(db), baseline):
            pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)
