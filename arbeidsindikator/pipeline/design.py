"""The design in SQL: every term of a model specification becomes a small integer code
(categorical levels, bins, deciles) or a numeric column, and a batch's codes become arrays."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .batches import _q, is_spark
from .config import ModelSpec, Term


def _sql_literal(v) -> str:
    return "'" + str(v).replace("'", "''") + "'"


@dataclass
class TermCoding:
    term: Term
    levels: list[str]  # labels, code i <-> levels[i]; empty for continuous
    reference: int | None
    sql: str  # SQL expression giving the code (or the value for continuous)
    cutpoints: list[float] = field(default_factory=list)

    @property
    def is_coded(self) -> bool:
        return self.term.kind != "continuous"


def _bin_labels(breaks: list[float]) -> list[str]:
    b = [f"{x:g}" for x in breaks]
    return [f"<{b[0]}"] + [f"[{b[i]}, {b[i + 1]})" for i in range(len(b) - 1)] + [f">={b[-1]}"]


def _bin_sql(col: str, breaks: list[float]) -> str:
    whens = " ".join(f"WHEN {col} < {x!r} THEN {i}" for i, x in enumerate(breaks))
    return f"(CASE WHEN {col} IS NULL THEN NULL {whens} ELSE {len(breaks)} END)"


def _deciles_sql(con, col: str) -> str:
    """The nine decile cut points of a column, interpolated linearly between order statistics
    (DuckDB's quantile_cont and Spark's exact percentile compute the same)."""
    qs = ", ".join(f"{q / 10:.1f}" for q in range(1, 10))
    if is_spark(con):
        return f"percentile({col}, array({qs}))"
    return f"quantile_cont({col}, [{qs}])"


def _level_code_sql(col: str, levels: list[str], as_enum: bool) -> str:
    """The position of a column's value among `levels`, strings with '<NA>' for a missing value
    (NULL for any other value). `as_enum` (a DuckDB VARCHAR or ENUM column): looked up as an
    ENUM, by a hash or, from an ENUM, by its dictionary: 2x and 5x faster than a CASE over the
    levels, which other columns and Spark use."""
    if as_enum:
        na = levels.index("<NA>") if "<NA>" in levels else "NULL"
        enum = f"ENUM({', '.join(_sql_literal(v) for v in levels)})"
        return f"(CASE WHEN {col} IS NULL THEN {na} ELSE enum_code(TRY_CAST({col} AS {enum})) END)"
    cases = " ".join(f"WHEN {_sql_literal(v)} THEN {i}" for i, v in enumerate(levels))
    return f"(CASE coalesce(CAST({col} AS STRING), '<NA>') {cases} ELSE NULL END)"


def _string_columns(con, table: str) -> set[str]:
    """The VARCHAR and ENUM columns of a DuckDB table (none on Spark)."""
    if is_spark(con):
        return set()
    return {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {table}").fetchall()
            if r[1] == "VARCHAR" or r[1].startswith("ENUM(")}


def code_terms(spec: ModelSpec, con: duckdb.DuckDBPyConnection, table: str, est_where: str) -> list[TermCoding]:
    """Decide the levels of every term from the estimation sample: one scan for all decile cut
    points, then one GROUPING SETS scan that counts the levels of every term."""
    terms = [t for t in spec.terms if t.kind != "continuous"]
    deciles = [t for t in terms if t.kind == "deciles"]
    cuts = {}
    if deciles:
        row = con.execute(f"SELECT {', '.join(_deciles_sql(con, _q(t.column)) for t in deciles)} "
                          f"FROM {table} WHERE {est_where}").fetchall()[0]
        cuts = {t.column: sorted(set(float(x) for x in (qs or []))) for t, qs in zip(deciles, row)}
    # grouped by the raw values, made strings only in the few result rows (casting every row's
    # value first cost 0.5 s at 5 M rows); GROUPING tells a missing value from a set's other keys
    keys = [_q(t.column) if t.kind == "categorical" else _bin_sql(_q(t.column), cuts[t.column] if t.kind == "deciles" else list(t.breaks))
            for t in terms]
    counts = [{} for _ in terms]
    if terms:
        n = len(terms)
        sets = ", ".join(f"(__k{i})" for i in range(n))
        shown = [f"CAST(__k{i} AS STRING)" if t.kind == "categorical" else f"__k{i}" for i, t in enumerate(terms)]
        rows = con.execute(f"SELECT {', '.join(f'grouping(__k{i})' for i in range(n))}, {', '.join(shown)}, count(*) FROM ("
                           f"SELECT {', '.join(f'{k} AS __k{i}' for i, k in enumerate(keys))} FROM {table} WHERE {est_where}) "
                           f"GROUP BY GROUPING SETS ({sets})").fetchall()
        for r in rows:
            i = r[:n].index(0)  # the term this row counts
            v = r[n + i]
            if v is None:  # a missing value: its own level '<NA>' if categorical, no level (-1) if binned
                v = "<NA>" if terms[i].kind == "categorical" else -1
            counts[i][v] = counts[i].get(v, 0) + r[-1]  # (distinct values with one string add up)
    strings = _string_columns(con, table)
    counts_in_order = iter(counts)  # `terms` keeps spec order, so coded terms meet their counts in turn
    codings = []
    for t in spec.terms:
        col = _q(t.column)
        if t.kind == "continuous":
            codings.append(TermCoding(t, [], None, f"CAST({col} AS DOUBLE)"))
            continue
        got = next(counts_in_order)
        if t.kind == "categorical":
            levels = sorted(got)
            n = [got[v] for v in levels]
            sql = _level_code_sql(col, levels, t.column in strings)
            cut = []
        else:
            cut = cuts[t.column] if t.kind == "deciles" else list(t.breaks)
            levels = [f"D{i + 1}" for i in range(len(cut) + 1)] if t.kind == "deciles" else _bin_labels(cut)
            sql = _bin_sql(col, cut)
            n = [got.get(i, 0) for i in range(len(levels))]
        if t.reference is not None and t.reference in levels:
            ref = levels.index(t.reference)
        else:
            ref = int(np.argmax(n)) if n else 0
        codings.append(TermCoding(t, levels, ref, sql, cut))
    return codings


def code_type(n: int) -> type:
    """The smallest signed integer type for codes 0..n-1 (signed, so that Spark reads it too)."""
    return np.int8 if n <= 127 else np.int16 if n <= 32767 else np.int32


SQL_INT = {np.int8: "TINYINT", np.int16: "SMALLINT", np.int32: "INTEGER"}  # code_type's names in SQL


def term_arrays(codings: list[TermCoding], batch: pa.RecordBatch) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Columns __t0, __t1, ... of a batch as integer codes (coded terms) and floats (continuous).
    A missing code goes to the term's 'unseen' slot (filled in Arrow, no float round trip); a
    missing continuous value stays NaN. Rows with a missing value are not in the estimation
    sample (column __ok, IndicatorModel.complete_sql) and get no prediction."""
    codes, conts = [], []
    for i, c in enumerate(codings):
        col = batch.column(f"__t{i}")
        if c.is_coded:
            # kept in the column's small type (code_type): widened only where codes are combined
            codes.append(pc.fill_null(col, len(c.levels)).to_numpy(zero_copy_only=False))
        else:
            conts.append(col.to_numpy(zero_copy_only=False).astype(float))
    return codes, conts
