"""The model on any table: what `fit_model` accepts, and the results it returns.

The estimator (model.IndicatorModel) reads a table through DuckDB in Arrow batches. Here any
input becomes such a table: a DuckDB table, view or query on the caller's connection (a view
on the query, visible to the cursors the estimator streams on, dropped afterwards); a pandas or
polars DataFrame or an Arrow table (copied into a private in-memory database); a Parquet or
CSV path (read where it lies). The table needs the columns the specification names and no
others: no `month` unless an estimation period is given, no cluster column unless clustered
standard errors are asked for.

The results follow statsmodels and linearmodels: `params`, `bse`, `cov`, `tvalues`,
`pvalues`, `conf_int()`, `nobs`, `summary()`, `to_frame()`, `predict(table)`. Rows with a
missing covariate, weight or cluster are left out (listwise) and counted (`n_missing`, and a
note per column), never filled in; they get no prediction.
"""

from __future__ import annotations

import re
import secrets
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import stats

from .config import ConfigError, ModelSpec, load_spec
from .batches import arrow_batches, _q
from .design import term_arrays
from .model import IndicatorModel

NUMERIC = re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|DOUBLE|REAL|"
                     r"DECIMAL.*|BOOLEAN)$")
QUERY = re.compile(r"^\s*(select|with|from|values|table|pivot|unpivot|\()", re.IGNORECASE)


@contextmanager
def source_table(data, query: str | None = None):
    """(connection, table name) for any input the module docstring lists."""
    if isinstance(data, duckdb.DuckDBPyConnection):
        if not isinstance(query, str) or not query.strip():
            raise ConfigError(["with a DuckDB connection, give a table or view name or a SELECT query"])
        name = f"__fit_source_{secrets.token_hex(4)}"
        try:
            rel = data.sql(query) if QUERY.match(query) else data.table(query)
        except duckdb.Error as e:
            raise ConfigError([f"the table or query cannot be read: {str(e).splitlines()[0]}"]) from None
        rel.create_view(name)
        try:
            yield data, name
        finally:
            data.execute(f"DROP VIEW IF EXISTS {_q(name)}")
        return
    con = duckdb.connect()
    try:
        if isinstance(data, (str, Path)):
            p = Path(data)
            if not p.exists():
                raise ConfigError([f"{p} does not exist"])
            try:
                rel = con.read_csv(p.as_posix()) if p.suffix.lower() == ".csv" else con.read_parquet(
                    (p / "*.parquet").as_posix() if p.is_dir() else p.as_posix())
            except duckdb.Error as e:
                raise ConfigError([f"{p} cannot be read: {str(e).splitlines()[0]}"]) from None
            rel.create_view("__fit_source")
        else:
            if type(data).__module__.startswith("polars"):
                data = data.to_arrow()
            if not isinstance(data, (pd.DataFrame, pa.Table, pa.RecordBatch)):
                raise ConfigError([f"cannot fit on a {type(data).__name__}: give a DuckDB connection with a table or query, "
                                   "a pandas or polars DataFrame, an Arrow table, or a Parquet or CSV path"])
            con.register("__fit_frame", data)
            con.execute("CREATE TABLE __fit_source AS SELECT * FROM __fit_frame")
            con.unregister("__fit_frame")
        yield con, "__fit_source"
    finally:
        con.close()


def check_table(con, table: str, spec: ModelSpec, row_id: str | None = None) -> dict[str, str]:
    """Every problem with the table for this specification, at once, as a ConfigError naming
    the column and the rule. Returns the table's column types."""
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {table}").fetchall()}
    problems = []
    for c in sorted(spec.columns() | ({row_id} if row_id else set())):
        if c not in types:
            why = (" (an estimation period is given)" if c == "month" else
                   " (clustered standard errors are asked for)" if c == spec.cluster else "")
            problems.append(f"column {c!r} does not exist{why}; the table has: {', '.join(types)}")
    numeric = [(t.column, f"a {t.kind} term") for t in spec.terms if t.kind != "categorical"]
    numeric += [(o, "an outcome") for o in spec.outcomes]
    numeric += [(spec.weight, "the weight")] if spec.weight else []
    for c, what in numeric:
        if c in types and not NUMERIC.match(types[c]):
            problems.append(f"column {c!r} is {what} and must be numeric (found {types[c]})")
    if problems:
        raise ConfigError(problems, table)
    return types


class OutcomeFit:
    """One outcome's regression, in the style of statsmodels and linearmodels."""

    def __init__(self, result, se_type: str):
        self._r = result
        self.cov_type = se_type if se_type in result.cov else ("cluster" if "cluster" in result.cov else "robust")
        keep = result.kept
        self._names = [result.names[i] for i in keep]

    @property
    def outcome(self) -> str:
        return self._r.outcome

    @property
    def params(self) -> pd.Series:
        return pd.Series(self._r.params[self._r.kept], index=self._names, name=self.outcome)

    def std_errors(self, cov_type: str | None = None) -> pd.Series:
        return pd.Series(self._r.std_errors(cov_type or self.cov_type)[self._r.kept], index=self._names, name="std_err")

    @property
    def bse(self) -> pd.Series:
        return self.std_errors()

    def cov_params(self, cov_type: str | None = None) -> pd.DataFrame:
        return pd.DataFrame(self._r.cov[cov_type or self.cov_type], index=self._names, columns=self._names)

    @property
    def cov(self) -> pd.DataFrame:
        return self.cov_params()

    @property
    def tvalues(self) -> pd.Series:
        return self.params / self.bse

    @property
    def pvalues(self) -> pd.Series:
        t = self.tvalues
        p = 2 * stats.t.sf(np.abs(t), self.df_resid) if self.cov_type == "classical" else 2 * stats.norm.sf(np.abs(t))
        return pd.Series(p, index=self._names, name="p_value")

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        q = stats.t.ppf(1 - alpha / 2, self.df_resid) if self.cov_type == "classical" else stats.norm.ppf(1 - alpha / 2)
        return pd.DataFrame({"lower": self.params - q * self.bse, "upper": self.params + q * self.bse})

    nobs = property(lambda self: self._r.nobs)
    n_missing = property(lambda self: self._r.n_missing)
    n_clusters = property(lambda self: self._r.n_clusters)
    df_resid = property(lambda self: self._r.df_resid)
    rsquared = property(lambda self: self._r.r2)
    notes = property(lambda self: list(self._r.notes))

    def to_frame(self) -> pd.DataFrame:
        ci = self.conf_int()
        return pd.DataFrame({"term": self._names, "estimate": self.params.to_numpy(), "std_err": self.bse.to_numpy(),
                             "t": self.tvalues.to_numpy(), "p": self.pvalues.to_numpy(), "ci_low": ci["lower"].to_numpy(),
                             "ci_high": ci["upper"].to_numpy(), "cov_type": self.cov_type})

    def summary(self) -> str:
        return self._r.summary(self.cov_type)

    def __repr__(self) -> str:
        return f"<OutcomeFit {self.outcome}: N = {self.nobs}, {len(self._names)} parameters, {self.cov_type} SE>"


class ModelFit:
    """The fitted specification: one OutcomeFit per outcome (`fit[outcome]`; with one outcome
    its attributes are the fit's own), and `predict` for any table."""

    def __init__(self, model: IndicatorModel):
        self.model = model
        self.spec = model.spec
        self.results = {o: OutcomeFit(r, model.spec.se_type) for o, r in model.results_.items()}

    @property
    def outcomes(self) -> list[str]:
        return list(self.results)

    def __getitem__(self, outcome: str) -> OutcomeFit:
        return self.results[outcome]

    def __getattr__(self, name):
        if name in ("params", "bse", "cov", "tvalues", "pvalues", "conf_int", "nobs", "n_missing", "n_clusters",
                    "rsquared", "df_resid", "to_frame", "std_errors", "cov_params", "notes", "cov_type"):
            if len(self.results) != 1:
                raise AttributeError(f"{name}: the model has {len(self.results)} outcomes; use fit[outcome].{name}")
            return getattr(next(iter(self.results.values())), name)
        raise AttributeError(name)

    def summary(self) -> str:
        return "\n\n".join(r.summary() for r in self.results.values())

    def predict(self, data, query: str | None = None, row_id: str | None = None) -> pd.DataFrame:
        """Expected value of every outcome for every row of a table (any input fit_model takes).
        A row with a missing covariate, or a category the fit never saw, gets NaN."""
        m = self.model
        with source_table(data, query) as (con, table):
            types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {table}").fetchall()}
            need = {t.column for t in self.spec.terms} | ({row_id} if row_id else set())
            if missing := sorted(c for c in need if c not in types):
                raise ConfigError([f"column {c!r} does not exist in the table to predict for" for c in missing])
            cols = [f"{_q(row_id)} AS __id"] if row_id else []
            for (name, _), c in zip(m.design_types().items(), m.codings_):
                cols.append(f"{c.sql} AS {name}")
            complete = " AND ".join([f"{_q(t.column)} IS NOT NULL" + ("" if t.kind == "categorical" else
                                     f" AND NOT isnan(CAST({_q(t.column)} AS DOUBLE))") for t in self.spec.terms]) or "TRUE"
            cols.append(f"({complete}) AS __ok")
            parts = []
            for b in arrow_batches(con, f"SELECT {', '.join(cols)} FROM {table}", 1_000_000):
                codes, conts = term_arrays(m.codings_, b)
                ok = b.column("__ok").to_numpy(zero_copy_only=False).astype(bool)
                for c, coding in zip(codes, (c for c in m.codings_ if c.is_coded)):
                    ok &= c < len(coding.levels)  # the 'unseen' slot: a category the fit never saw
                out = {"__id": b.column("__id").to_pandas()} if row_id else {}
                for o in self.spec.outcomes:
                    out[f"expected_{o}"] = np.where(ok, m.layout_.predict(m.beta_full_[o], codes, conts), np.nan)
                parts.append(pd.DataFrame(out))
        df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        return df.rename(columns={"__id": row_id}) if row_id else df


def fit(data, query_or_spec=None, spec: ModelSpec | str | Path | None = None, *, row_id: str | None = None) -> ModelFit:
    """Fit a model specification on any table (module docstring). Call as fit(con, "SELECT ...",
    spec), fit(con, "table", spec), fit(dataframe, spec), fit("data.parquet", spec)."""
    query = None
    if isinstance(data, duckdb.DuckDBPyConnection):
        query = query_or_spec
    elif spec is None:
        spec = query_or_spec
    if not isinstance(spec, ModelSpec):
        spec = load_spec(spec)
    with source_table(data, query) as (con, table):
        check_table(con, table, spec, row_id)
        try:
            model = IndicatorModel(spec).fit(con, table, predictions_table=None)
        except ValueError as e:  # e.g. an outcome with no observed value
            raise ConfigError([str(e)], table) from None
    return ModelFit(model)


__all__ = ["ModelFit", "OutcomeFit", "check_table", "fit", "source_table"]
