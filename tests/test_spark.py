"""The Spark engine gives the DuckDB engine's results: every coefficient and every published cell.

Spark runs in local mode (Java 17 and PySpark are installed by .ci/run and the test extra).
The two engines add the same numbers in a different order, so values agree to float
rounding, not bit for bit: coefficients to 1e-9 relative; cells to 1e-9 relative or 1e-9
absolute (an indicator near zero has no meaningful relative error). Keys, counts,
suppression and reading-rule flags must be identical. Published tables are rounded
(publish.DECIMALS): a value whose exact mean lies on a rounding boundary may come out one unit
of the last decimal apart, and such cells must be rare (under 1 in 1 000).
"""

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from arbeidsindikator.cli import app
from arbeidsindikator.pipeline.publish import DECIMALS

KEYS = {
    "published": ["BEHOLDNINGSMAANED", "ORG_NIVAA", "ORG_STED_ID", "UTFALL", "NEDBRYTNING", "GRUPPE"],
    "published_period": ["PERIODE", "ORG_NIVAA", "ORG_STED_ID", "UTFALL", "NEDBRYTNING", "GRUPPE"],
    "coefficients": ["response_variable", "variable"],
}
EXACT = {"ANTALL_PERSONER", "ANTALL_PERSONMANEDER", "MANEDER", "nobs", "n_clusters", "ORG_NIVAA"}


@pytest.fixture(scope="module")
def spark_run(small_world, tmp_path_factory):
    db = tmp_path_factory.mktemp("spark") / "spark.duckdb"
    r = CliRunner().invoke(app, ["run", "--data", str(small_world), "--db", str(db), "--engine", "spark",
                                 "--person-level"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    return db


def _table(db, name: str) -> pd.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        df = con.execute(f"SELECT * EXCLUDE (run_id) FROM {name}").df()
    return df.sort_values(KEYS[name]).reset_index(drop=True)


def _assert_same(a: pd.DataFrame, b: pd.DataFrame, table: str, rtol: float, atol: float) -> None:
    assert list(a.columns) == list(b.columns), table
    assert len(a) == len(b), f"{table}: {len(a)} cells with DuckDB, {len(b)} with Spark"
    pd.testing.assert_frame_equal(a[KEYS[table]], b[KEYS[table]], check_dtype=False)
    for c in a.columns:
        x, y = a[c], b[c]
        numeric = pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x)
        if numeric and c not in EXACT:
            xa, ya = x.to_numpy(float), y.to_numpy(float)
            assert np.array_equal(np.isnan(xa), np.isnan(ya)), f"{table}.{c}: missing values differ"
            ok = ~np.isnan(xa)
            bad = ~np.isclose(xa[ok], ya[ok], rtol=rtol, atol=atol)
            if c in DECIMALS and table.startswith("published"):
                unit = 10.0 ** -DECIMALS[c]
                assert (np.abs(xa[ok] - ya[ok]) <= unit * 1.000001).all(), f"{table}.{c}: more than a rounding unit apart"
                assert bad.sum() <= max(1, len(xa) // 1000), f"{table}.{c}: {bad.sum()} cells a rounding unit apart"
                continue
            assert not bad.any(), f"{table}.{c}: {bad.sum()} values differ, e.g. {xa[ok][bad][:3]} vs {ya[ok][bad][:3]}"
        else:
            xs = x.astype(object).where(x.notna(), None).tolist()
            ys = y.astype(object).where(y.notna(), None).tolist()
            diff = [i for i, (u, v) in enumerate(zip(xs, ys)) if u != v]
            assert not diff, f"{table}.{c}: {len(diff)} cells differ, e.g. {[(xs[i], ys[i]) for i in diff[:3]]}"


def test_spark_coefficients_equal_duckdb(small_run, spark_run):
    _, duck_db = small_run
    _assert_same(_table(duck_db, "coefficients"), _table(spark_run, "coefficients"), "coefficients", 1e-9, 0.0)


@pytest.mark.parametrize("table", ["published", "published_period"])
def test_spark_publishes_every_cell_as_duckdb(small_run, spark_run, table):
    _, duck_db = small_run
    a, b = _table(duck_db, table), _table(spark_run, table)
    assert len(a) > 10_000  # the whole table, not a sample
    assert a["PRIKKET"].any()  # suppression is part of what is compared
    _assert_same(a, b, table, 1e-9, 1e-9)


def test_spark_run_is_stored_like_any_run(small_run, spark_run):
    _, duck_db = small_run
    with duckdb.connect(str(spark_run), read_only=True) as con:
        engine, n = con.execute("SELECT engine, n_person_months FROM runs").fetchall()[0]
        pr = con.execute("SELECT person_id, month, expected_jobb3, indicator_atid12 FROM person_results "
                         "ORDER BY person_id, month").df()
    with duckdb.connect(str(duck_db), read_only=True) as con:
        n_duck = con.execute("SELECT n_person_months FROM runs").fetchall()[0][0]
        ref = con.execute("SELECT person_id, month, expected_jobb3, indicator_atid12 FROM person_results "
                          "ORDER BY person_id, month").df()
    assert engine == "spark" and n == n_duck == len(pr) == len(ref)
    assert (pr["person_id"].to_numpy() == ref["person_id"].to_numpy()).all()
    np.testing.assert_allclose(pr["expected_jobb3"], ref["expected_jobb3"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(pr["indicator_atid12"], ref["indicator_atid12"], rtol=1e-9, atol=1e-9)


def test_unknown_engine_is_refused(small_world, tmp_path):
    r = CliRunner().invoke(app, ["run", "--data", str(small_world), "--db", str(tmp_path / "x.duckdb"), "--engine", "polars"])
    assert r.exit_code == 2 and "duckdb eller spark" in r.output
    assert not (tmp_path / "x.duckdb").exists()


def test_spells_on_spark_equal_duckdb(small_world):
    """The follow-up spells' SQL runs unchanged on the Spark engine: every spell, exit and time
    as DuckDB builds them."""
    from arbeidsindikator.analyses.spells.build import SpellRules, build_spells
    from arbeidsindikator.pipeline.spark import SparkConnection, local_session
    rules = SpellRules(age_min=25, age_max=66)
    ours = build_spells(small_world, rules)
    con = SparkConnection(local_session())
    try:
        theirs = build_spells(small_world, rules, con=con)
    finally:
        con.close()
    order = ["person_id", "start"]
    pd.testing.assert_frame_equal(ours.sort_values(order).reset_index(drop=True),
                                  theirs.sort_values(order).reset_index(drop=True), check_dtype=False)
    assert len(ours) > 1000
