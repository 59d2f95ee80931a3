"""The data contract refuses bad input with one message naming every problem."""

import shutil

import duckdb
import pytest
from typer.testing import CliRunner

from arbeidsindikator.cli import app
from arbeidsindikator.contract import contract_markdown
from arbeidsindikator.validate import ValidationError, validate


def _rewrite(d, table, sql):
    p = d / f"{table}.parquet"
    con = duckdb.connect()
    src = sql.format(t=f"read_parquet('{p.as_posix()}')")
    con.execute(f"COPY ({src}) TO '{(d / 'tmp.parquet').as_posix()}' (FORMAT parquet)")
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
    _rewrite(d, "employment", "SELECT * REPLACE (CASE WHEN person_id = 1 THEN -5.0 ELSE hours END AS hours) FROM {t}")
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


def test_contract_docs_are_generated_from_code():
    md = contract_markdown()
    for t in ("persons", "stock", "employment", "labour_market", "municipalities", "offices", "office_hr"):
        assert f"`{t}`" in md
