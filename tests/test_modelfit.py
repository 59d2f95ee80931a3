"""The model on any table (issue 19): every input kind, no column that the specification does
not name, missing values dropped and counted (never imputed), clear errors, and the numbers of
statsmodels and pyfixest on data nobody here generated and on a wide synthetic design."""

import re

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import arbeidsindikator as ai
from arbeidsindikator.pipeline.config import ConfigError

FAIR_SPEC = """
[model]
outcomes = ["affairs"]
[[model.terms]]
column = "rate_marriage"
kind = "categorical"
reference = "1.0"
[[model.terms]]
column = "age"
kind = "continuous"
[[model.terms]]
column = "yrs_married"
kind = "continuous"
[[model.terms]]
column = "children"
kind = "continuous"
[[model.terms]]
column = "religious"
kind = "categorical"
reference = "1.0"
[[model.terms]]
column = "occupation"
kind = "categorical"
reference = "1.0"
"""


@pytest.fixture(scope="module")
def fair():
    """Fair's affairs data (Journal of Political Economy 1978), shipped with statsmodels: a
    cross-section with no month and no cluster."""
    return sm.datasets.fair.load_pandas().data


def _fair_reference(df, cov_type):
    return smf.ols("affairs ~ C(rate_marriage) + age + yrs_married + children + C(religious) + C(occupation)",
                   data=df).fit(cov_type=cov_type)


def _matched(ours: pd.Series, ref: pd.Series) -> pd.Series:
    """Our names (col[level]) in statsmodels' order (C(col)[T.level])."""
    def to_ours(name):
        if name == "Intercept":
            return "(Intercept)"
        m = re.fullmatch(r"C\((\w+)\)\[T\.(.+)\]", name)
        return f"{m.group(1)}[{m.group(2)}]" if m else name
    return ours[[to_ours(n) for n in ref.index]].set_axis(ref.index)


@pytest.mark.parametrize("cov_type,ours", [("nonrobust", "classical"), ("HC1", "robust")])
def test_a_public_cross_section_without_month_or_cluster_equals_statsmodels(fair, cov_type, ours):
    spec = ai.parse_spec(FAIR_SPEC.replace("[model]", f'[model]\nse_type = "{ours}"'))
    fit = ai.fit_model(fair, spec)
    ref = _fair_reference(fair, cov_type)
    np.testing.assert_allclose(_matched(fit.params, ref.params), ref.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(_matched(fit.bse, ref.bse), ref.bse, rtol=1e-6)
    assert fit.nobs == ref.nobs and fit.rsquared == pytest.approx(ref.rsquared, rel=1e-10)
    frame = fit.to_frame()
    assert list(frame.columns) == ["term", "estimate", "std_err", "t", "p", "ci_low", "ci_high", "cov_type"]
    np.testing.assert_allclose(_matched(frame.set_index("term")["p"], ref.pvalues), ref.pvalues, rtol=1e-6, atol=1e-12)
    assert "affairs" in fit.summary()
    with pytest.raises(ValueError, match="cluster"):
        fit.std_errors("cluster")


def test_every_input_kind_gives_the_same_fit(fair, tmp_path):
    spec = ai.parse_spec(FAIR_SPEC)
    want = ai.fit_model(fair, spec).params
    con = duckdb.connect()
    con.register("fair_frame", fair)
    con.execute("CREATE TABLE fair AS SELECT * FROM fair_frame")
    con.execute("CREATE VIEW fair_view AS SELECT * FROM fair")
    parquet = tmp_path / "fair.parquet"
    pq.write_table(pa.Table.from_pandas(fair), parquet)
    csv = tmp_path / "fair.csv"
    fair.to_csv(csv, index=False)
    fits = [ai.fit_model(con, "fair", spec), ai.fit_model(con, "fair_view", spec),
            ai.fit_model(con, "SELECT * FROM fair", spec), ai.fit_model(pa.Table.from_pandas(fair), spec),
            ai.fit_model(parquet, spec), ai.fit_model(str(csv), spec)]
    for f in fits:
        pd.testing.assert_series_equal(f.params, want, rtol=1e-10)
    assert {r[0] for r in con.execute("SHOW TABLES").fetchall()} == {"fair", "fair_view", "fair_frame"}  # nothing added


def test_missing_values_are_dropped_and_counted_as_statsmodels_does():
    """20% of a continuous and 10% of a categorical covariate missing: the fit equals statsmodels
    with missing='drop', and the rows are counted and named (before: x taken as 0, slope 0.37 for 2.06)."""
    rng = np.random.default_rng(5)
    n = 3000
    df = pd.DataFrame({"id": np.arange(n), "x": rng.normal(size=n), "g": rng.choice(["a", "b", "c"], n)})
    df["y"] = 2 * df["x"] + 0.5 * (df["g"] == "b") + rng.normal(size=n)
    df.loc[rng.random(n) < 0.2, "x"] = np.nan
    df.loc[rng.random(n) < 0.1, "g"] = None
    spec = ai.parse_spec('[model]\noutcomes = ["y"]\n[[model.terms]]\ncolumn = "x"\nkind = "continuous"\n'
                         '[[model.terms]]\ncolumn = "g"\nkind = "categorical"\nreference = "a"\n')
    fit = ai.fit_model(df, spec)
    ref = smf.ols("y ~ x + C(g)", data=df, missing="drop").fit(cov_type="HC1")
    np.testing.assert_allclose(_matched(fit.params, ref.params), ref.params, rtol=1e-8)
    np.testing.assert_allclose(_matched(fit.bse, ref.bse), ref.bse, rtol=1e-6)
    dropped = int(df["x"].isna().sum() + df["g"].isna().sum() - (df["x"].isna() & df["g"].isna()).sum())
    assert fit.nobs == ref.nobs == n - dropped and fit.n_missing == dropped
    assert any("x mangler" in note for note in fit.notes) and any("g mangler" in note for note in fit.notes)
    pred = fit.predict(df, row_id="id")
    assert pred["expected_y"].isna().sum() == dropped and list(pred["id"]) == list(df["id"])
    complete = df.dropna()
    np.testing.assert_allclose(pred.set_index("id").loc[complete["id"], "expected_y"], ref.predict(complete), rtol=1e-10)


def test_a_wide_design_with_missing_outcomes_weights_and_repeated_persons():
    """Many levels, two outcomes observed on different rows, weights, persons with many rows:
    statsmodels (WLS, clustered) and pyfixest agree to 1e-8 in coefficients, 1e-6 in SEs."""
    pf = pytest.importorskip("pyfixest")
    rng = np.random.default_rng(9)
    n, persons = 20_000, 2_500
    df = pd.DataFrame({"person": rng.integers(0, persons, n), "a": rng.integers(0, 40, n).astype(str),
                       "b": rng.choice(list("pqrstuvw"), n), "x1": rng.normal(size=n), "x2": rng.gamma(2, 1, n),
                       "w": rng.uniform(0.5, 2.0, n)})
    u = rng.normal(size=persons)[df["person"]]
    df["y1"] = 0.3 * df["x1"] - 0.2 * df["x2"] + df["a"].astype(int) / 40 + u + rng.normal(size=n)
    df["y2"] = np.where(rng.random(n) < 0.3, np.nan, df["y1"] * 0.5 + rng.normal(size=n))
    terms = "".join(f'[[model.terms]]\ncolumn = "{c}"\nkind = "{k}"\n' + (f'reference = "{r}"\n' if r else "")
                    for c, k, r in (("a", "categorical", "0"), ("b", "categorical", "p"), ("x1", "continuous", None),
                                    ("x2", "continuous", None)))
    spec = ai.parse_spec(f'[model]\noutcomes = ["y1", "y2"]\nweight = "w"\ncluster = "person"\n{terms}')
    fit = ai.fit_model(df, spec)
    for y in ("y1", "y2"):
        d = df[df[y].notna()]
        ref = smf.wls(f"{y} ~ C(a, Treatment('0')) + C(b) + x1 + x2", data=d, weights=d["w"]).fit(
            cov_type="cluster", cov_kwds={"groups": d["person"]})
        names = [re.sub(r"C\(a, Treatment\('0'\)\)", "C(a)", n) for n in ref.params.index]
        mine = _matched(fit[y].params, ref.params.set_axis(names))
        np.testing.assert_allclose(mine, ref.params.to_numpy(), rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(_matched(fit[y].bse, ref.bse.set_axis(names)), ref.bse.to_numpy(), rtol=1e-6)
        fx = pf.feols(f"{y} ~ C(a) + C(b) + x1 + x2", data=d, weights="w", vcov={"CRV1": "person"})
        np.testing.assert_allclose(fit[y].params["x1"], fx.coef()["x1"], rtol=1e-8)
        np.testing.assert_allclose(fit[y].bse["x1"], fx.se()["x1"], rtol=1e-6)
    assert fit["y2"].nobs == int(df["y2"].notna().sum()) and fit["y1"].n_clusters == df["person"].nunique()


def test_problems_with_table_or_specification_are_config_errors(fair):
    spec = ai.parse_spec(FAIR_SPEC)
    with pytest.raises(ConfigError, match="'religious'.*does not exist"):
        ai.fit_model(fair.drop(columns="religious"), spec)
    text = fair.assign(age=fair["age"].astype(str))
    with pytest.raises(ConfigError, match="'age' is a continuous term and must be numeric"):
        ai.fit_model(text, spec)
    with pytest.raises(ConfigError, match="needs model.cluster"):
        ai.parse_spec(FAIR_SPEC.replace("[model]", '[model]\nse_type = "cluster"'))
    with pytest.raises(ConfigError, match="'person_id'.*clustered"):
        ai.fit_model(fair, ai.parse_spec(FAIR_SPEC.replace("[model]", '[model]\ncluster = "person_id"')))
    with pytest.raises(ConfigError, match="'month'.*estimation period"):
        ai.fit_model(fair, ai.parse_spec(FAIR_SPEC.replace("[model]", '[model]\nestimation_period = { from = "2020-01" }')))
    with pytest.raises(ConfigError, match="cannot fit on a list"):
        ai.fit_model([1, 2, 3], spec)
    con = duckdb.connect()
    with pytest.raises(ConfigError, match="cannot be read"):
        ai.fit_model(con, "SELECT * FROM nowhere", spec)
    with pytest.raises(ConfigError, match="must look like 'YYYY-MM'"):
        ai.parse_spec(FAIR_SPEC.replace("[model]", """[model]\nestimation_period = { from = "20'1-01" }"""))
