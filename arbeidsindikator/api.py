"""Python API, the package's face: everything the CLI does, in a few lines from a notebook.
The work is done in the layers below (docs/architecture.md); this module only gathers it.

    import arbeidsindikator as ai
    run = ai.run_indicator("data/", db="resultater.duckdb")          # validate -> publish
    res = ai.Results("resultater.duckdb")
    res.published(org_sted="Norge", utfall="jobb3").head()
    res.coefficients()

    # the model on any table with an outcome and covariates
    con = ai.connect_data("data/")                                    # contract tables as views
    model = ai.fit_model(con, "SELECT * FROM my_table", spec)          # spec names the columns
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from .data.validate import register_tables, validate
from .pipeline.config import ModelSpec, load_spec, parse_spec
from .pipeline.results import Results
from .pipeline.run import ENGINES, RunResult, run_indicator


def connect_data(data_dir: Path | str, check: bool = True) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the contract tables of `data_dir` as views."""
    if check:
        validate(data_dir)
    con = duckdb.connect()
    register_tables(con, Path(data_dir))
    return con


def fit_model(data, query_or_spec=None, spec: ModelSpec | str | Path | None = None, *, row_id: str | None = None):
    """Fit a model specification on any table: a DuckDB connection with a table, view or SELECT
    query, a pandas or polars DataFrame, an Arrow table, or a Parquet or CSV path.

        fit = ai.fit_model(con, "SELECT * FROM my_table", spec)
        fit = ai.fit_model(df, spec)
        fit["y"].params, fit["y"].bse, fit["y"].summary(), fit.predict(new_df, row_id="id")

    The table needs only the columns the specification names. Rows with a missing value in a
    covariate, the weight or the cluster are left out and counted (never filled in). Every
    problem with the table or the specification is a ConfigError naming column and rule."""
    from .pipeline.modelfit import fit
    return fit(data, query_or_spec, spec, row_id=row_id)


__all__ = ["ENGINES", "connect_data", "fit_model", "run_indicator", "Results", "RunResult", "load_spec", "parse_spec"]
