"""The indicator model against statsmodels, and its handling of awkward designs."""

import dataclasses

import duckdb
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from arbeidsindikator.pipeline.config import ConfigError, Term, load_spec, parse_spec
from arbeidsindikator.pipeline.model import IndicatorModel
from arbeidsindikator.pipeline.outcomes import build_analysis
from arbeidsindikator.data.validate import register_tables


@pytest.fixture(scope="module")
def con(small_world):
    c = duckdb.connect()
    register_tables(c, small_world)
    build_analysis(c)
    return c


@pytest.fixture(scope="module")
def fitted(con):
    spec = load_spec()
    return IndicatorModel(spec, batch_rows=50_000).fit(con, "analysis")  # small batches: many carries


def _statsmodels_fit(con, model, outcome, cov_type, weights=None):
    """The same regression with an explicit dummy matrix, fitted by statsmodels."""
    df = con.sql(model.design_sql("analysis")).df()
    df = df[df["__est"] & df[f"__y_{outcome}"].notna()].reset_index(drop=True)
    cols = {"(Intercept)": np.ones(len(df))}
    for i, c in enumerate(model.codings_):
        if c.is_coded:
            for k, lv in enumerate(c.levels):
                if k != c.reference:
                    cols[f"{c.term.column}[{lv}]"] = (df[f"__t{i}"] == k).astype(float).to_numpy()
        else:
            cols[c.term.column] = df[f"__t{i}"].astype(float).to_numpy()
    X = pd.DataFrame(cols)
    X = X.loc[:, X.sum() != 0]
    y = df[f"__y_{outcome}"].to_numpy()
    w = df["__w"].to_numpy() if weights else None
    mod = sm.WLS(y, X, weights=w) if weights else sm.OLS(y, X)
    kw = {"groups": df["__cluster"].to_numpy()} if cov_type == "cluster" else {}
    return mod.fit(cov_type={"classical": "nonrobust", "robust": "HC1", "cluster": "cluster"}[cov_type], cov_kwds=kw or None)


@pytest.mark.parametrize("outcome", ["atid3", "jobb12"])
@pytest.mark.parametrize("se_type", ["classical", "robust", "cluster"])
def test_coefficients_and_standard_errors_equal_statsmodels(con, fitted, outcome, se_type):
    ref = _statsmodels_fit(con, fitted, outcome, se_type)
    res = fitted.results_[outcome]
    ours = dict(zip(res.names, res.params))
    se = dict(zip(res.names, res.std_errors(se_type)))
    for name in ref.params.index:
        np.testing.assert_allclose(ours[name], ref.params[name], rtol=1e-8, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(se[name], ref.bse[name], rtol=1e-8, err_msg=name)
    assert res.nobs == int(ref.nobs)
    np.testing.assert_allclose(res.r2, ref.rsquared, rtol=1e-8)


def test_weighted_least_squares_equals_statsmodels(con, small_world):
    spec = dataclasses.replace(load_spec(), weight="work_hours_24m_plus_one", outcomes=("jobb3",))
    con.execute("CREATE OR REPLACE VIEW analysis_w AS SELECT *, work_hours_24m + 1 AS work_hours_24m_plus_one FROM analysis")
    m = IndicatorModel(spec, batch_rows=70_000).fit(con, "analysis_w", predictions_table=None)
    df = con.sql(m.design_sql("analysis_w")).df()
    df = df[df["__est"] & df["__y_jobb3"].notna()].reset_index(drop=True)
    res = m.results_["jobb3"]
    keep = list(res.kept)
    X = np.zeros((len(df), len(keep)))
    X[:, 0] = 1
    names = [res.names[i] for i in keep]
    for i, c in enumerate(m.codings_):
        for k, lv in enumerate(c.levels):
            nm = f"{c.term.column}[{lv}]"
            if nm in names:
                X[:, names.index(nm)] = (df[f"__t{i}"] == k)
    fit = sm.WLS(df["__y_jobb3"].to_numpy(), X, weights=df["__w"].to_numpy()).fit(
        cov_type="cluster", cov_kwds={"groups": df["__cluster"].to_numpy()})
    np.testing.assert_allclose(res.params[keep], fit.params, rtol=1e-8)
    np.testing.assert_allclose(res.std_errors("cluster")[keep], fit.bse, rtol=1e-8)


def test_residuals_average_to_zero_over_the_estimation_sample(con, fitted):
    for o in fitted.spec.outcomes:
        r = con.execute(f"""SELECT sum(a.{o} - p.expected_{o}) / count(*), avg(a.{o}) FROM analysis a
                            JOIN predictions p USING (person_id, month) WHERE a.{o} IS NOT NULL""").fetchall()[0]
        assert abs(r[0]) < 1e-10 * max(1.0, abs(r[1])), (o, r)


def test_collinear_and_empty_levels_are_dropped_with_a_note(con):
    base = load_spec()
    con.execute("CREATE OR REPLACE VIEW analysis_c AS SELECT *, sex AS sex_copy, age + 1000 AS old_age FROM analysis")
    terms = base.terms + (Term("sex_copy", "categorical"), Term("old_age", "bins", breaks=(10, 20)))
    spec = dataclasses.replace(base, terms=terms, outcomes=("jobb3",))
    m = IndicatorModel(spec).fit(con, "analysis_c", predictions_table=None)
    notes = " ".join(m.results_["jobb3"].notes)
    assert "sex_copy" in notes and "kollineær" in notes
    assert "old_age" in notes and "ingen observasjoner" in notes
    plain = IndicatorModel(dataclasses.replace(base, outcomes=("jobb3",))).fit(con, "analysis", predictions_table=None)
    np.testing.assert_allclose(m.results_["jobb3"].rss, plain.results_["jobb3"].rss, rtol=1e-9)


def test_bad_specifications_are_refused_with_every_problem():
    with pytest.raises(ConfigError, match="malformed TOML"):
        parse_spec("[model\nname = 1")
    with pytest.raises(ConfigError) as e:
        parse_spec("""[model]
outcomes = []
se_type = "bootstrap"
[[model.terms]]
column = "age"
kind = "splines"
""")
    assert len(e.value.problems) >= 3


@pytest.mark.parametrize("seed", range(20))
def test_batches_are_recut_so_that_no_cluster_spans_two(seed):
    """Clusters that cross batch boundaries (also several whole batches) are joined, every row
    comes out once, and no batch grows by more than a cluster. Rows out of cluster
    order are refused."""
    import pyarrow as pa

    from arbeidsindikator.pipeline.batches import whole_clusters
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(40), rng.choice([1, 2, 7, 30], size=40))
    cuts = np.sort(rng.choice(np.arange(1, len(ids)), size=rng.integers(1, 12), replace=False))
    batches = [pa.RecordBatch.from_pydict({"__cluster": ids[i], "row": i}) for i in np.split(np.arange(len(ids)), cuts)]
    out = list(whole_clusters(iter(batches + [batches[0].slice(0, 0)])))
    assert np.array_equal(np.sort(np.concatenate([b.column("row").to_numpy() for b in out])), np.arange(len(ids)))
    assert max(b.num_rows for b in out) <= max(b.num_rows for b in batches) + 30  # 30: the largest cluster
    seen = [set(b.column("__cluster").to_pylist()) for b in out]
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1:])
    with pytest.raises(ValueError, match="cluster order"):
        list(whole_clusters(iter(batches[::-1])))


def test_level_codes_by_enum_lookup_equal_the_case_and_come_in_the_smallest_type():
    """DuckDB looks a string column's levels up as an ENUM, Spark (and non-string columns) by a
    CASE: the same codes, also for quotes, the empty string, NULL and a level not seen in the
    estimation sample; the design query hands the codes out in their smallest integer type."""
    from arbeidsindikator.pipeline.design import code_terms, _level_code_sql, _sql_literal
    con = duckdb.connect()
    con.execute("""CREATE TABLE t AS SELECT person_id, DATE '2020-01-01' + INTERVAL (i) MONTH AS month, s, k, 1.0 AS y
        FROM (VALUES (1, 0, 'a''b', 3), (1, 1, '', 3), (2, 0, NULL, 4), (2, 1, 'z', 4), (3, 30, 'unseen', 5))
             t(person_id, i, s, k)
        UNION ALL
        SELECT 9, DATE '2020-06-01', 'z', CAST(g AS INTEGER), 1.0 FROM range(300) r(g)""")
    spec = parse_spec("""[model]
name = "t"
outcomes = ["y"]
estimation_period = { from = "2020-01", to = "2020-12" }
[[model.terms]]
column = "s"
kind = "categorical"
[[model.terms]]
column = "k"
kind = "categorical"
""")
    m = IndicatorModel(spec)
    m.codings_ = code_terms(spec, con, "t", m.period_where())
    m.carry_ = {}
    s, k = m.codings_
    assert s.levels == ["", "<NA>", "a'b", "z"] and "ENUM" in s.sql and "ENUM" not in k.sql
    case = con.execute(f"SELECT {_level_code_sql('s', s.levels, as_enum=False)} FROM t ORDER BY person_id, month").fetchall()
    enum = con.execute(f"SELECT {s.sql} FROM t ORDER BY person_id, month").fetchall()
    assert case == enum and [r[0] for r in enum[:5]] == [2, 0, 1, 3, None]
    levels = ", ".join(_sql_literal(v) for v in ["", "a'b", "unseen", "z"])  # the same from an ENUM column
    enum_col = con.execute(f"SELECT {s.sql} FROM (SELECT person_id, month, CAST(s AS ENUM({levels})) AS s FROM t) "
                           "ORDER BY person_id, month").fetchall()
    assert enum_col == enum
    types = dict(zip(con.sql(m.design_sql("t")).columns, map(str, con.sql(m.design_sql("t")).types)))
    assert (types["__t0"], types["__t1"]) == ("TINYINT", "SMALLINT")  # 4 + 1 and 300 + 1 codes
    assert "__w" not in types  # unweighted: no column of ones


def test_held_back_clusters_do_not_keep_their_batches_alive():
    """A batch's last cluster waits among the completed ones until enough rows have gathered;
    it must be a copy of its rows, not a slice that keeps the whole batch in memory. (Nationally
    the slices held 3 GB.)"""
    import pyarrow as pa

    from arbeidsindikator.pipeline.batches import whole_clusters

    def batches():  # 60 batches of 20 000 rows, each ending with a cluster the next one does not continue
        for k in range(60):
            ids = pa.array(np.repeat(np.arange(k * 2000, (k + 1) * 2000), 10)).take(pa.array(np.arange(20_000)))
            yield pa.RecordBatch.from_arrays([ids, pa.array(np.ones(20_000)).take(pa.array(np.arange(20_000)))],
                                             names=["__cluster", "x"])

    before = pa.total_allocated_bytes()
    peak, rows = 0, 0
    for out in whole_clusters(batches()):
        rows += out.num_rows
        peak = max(peak, pa.total_allocated_bytes() - before)
        del out
    assert rows == 60 * 20_000
    assert peak < 5 * 20_000 * 16  # a few batches at most, not the sixty
