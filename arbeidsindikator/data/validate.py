"""Validation of a data directory against the contract (`contract.py`).

All checks run as SQL in DuckDB over the files in place (nothing is loaded into Python),
and every violation is collected before anything is reported: the user gets one message
naming table, column, rule and a few offending rows for each problem. A file that cannot be
read (truncated, corrupt, empty, not Parquet, not UTF-8 text) is a violation like any other,
and the other tables are still checked.

Parquet files are read with their own types (and checked against the contract's). CSV files
are read as text and every contract column is converted to its declared type: a value that
does not convert is a violation with examples, so a CSV file never depends on type guessing
(an all-empty column would otherwise be guessed as a number).

File paths never enter SQL text: the files are opened through DuckDB's relational API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from .contract import TABLES, Column, Table

EXAMPLES = 3

_TYPES = {
    "int": {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"},
    "float": {"FLOAT", "DOUBLE", "REAL", "DECIMAL"},
    "str": {"VARCHAR"},
    "date": {"DATE"},
    "bool": {"BOOLEAN"},
}
_TYPES["float"] |= _TYPES["int"]  # integers are acceptable where a float is declared
SQL_TYPE = {"int": "BIGINT", "float": "DOUBLE", "str": "VARCHAR", "date": "DATE", "bool": "BOOLEAN"}
# ages at which a person in the follow-up stock is impossible (an error) or unusual (a warning)
AGE_POSSIBLE = (14, 100)
AGE_USUAL = (16, 67)


@dataclass
class Violation:
    table: str
    column: str
    rule: str
    n_rows: int = 0
    examples: list[dict] = field(default_factory=list)
    severity: str = "error"

    def __str__(self) -> str:
        ex = "; ".join(", ".join(f"{k}={v}" for k, v in e.items()) for e in self.examples)
        rows = f" ({self.n_rows} rows)" if self.n_rows else ""
        return f"[{self.severity}] {self.table}.{self.column}: {self.rule}{rows}" + (f" e.g. {ex}" if ex else "")


class ValidationError(Exception):
    """Raised when input data break the contract; carries every violation found."""

    def __init__(self, violations: list[Violation]):
        self.violations = violations
        errors = [v for v in violations if v.severity == "error"]
        super().__init__(
            f"{len(errors)} contract violation(s) in the input data; nothing was written.\n"
            + "\n".join(str(v) for v in errors)
        )


def table_file(data_dir: Path, name: str) -> Path | None:
    for ext in ("parquet", "csv"):
        p = Path(data_dir) / f"{name}.{ext}"
        if p.exists():
            return p
    return None


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _relation(con: duckdb.DuckDBPyConnection, t: Table, p: Path) -> duckdb.DuckDBPyRelation:
    """The table's rows: Parquet as stored; CSV as text, each contract column converted to its
    declared type (TRY_CAST: what does not convert becomes NULL here and a violation in
    validate, which reads the raw text too)."""
    if p.suffix == ".parquet":
        return con.read_parquet(p.as_posix())
    raw = con.read_csv(p.as_posix(), header=True, all_varchar=True)
    have = set(raw.columns)
    cols = [f"TRY_CAST({_q(c.name)} AS {SQL_TYPE[c.type]}) AS {_q(c.name)}" if c.name in have else None for c in t.columns]
    extra = [_q(c) for c in raw.columns if c not in {x.name for x in t.columns}]
    return raw.project(", ".join([c for c in cols if c] + extra))


def view_file(con: duckdb.DuckDBPyConnection, name: str, path: Path) -> None:
    """A view `name` over a Parquet file (for files outside the contract, e.g. the truth)."""
    con.read_parquet(Path(path).as_posix()).create_view(name, replace=True)


def register_tables(con: duckdb.DuckDBPyConnection, data_dir: Path, tables=None) -> list[str]:
    """Create a view per contract table found in `data_dir`; return the names found."""
    if getattr(con, "engine", "duckdb") == "spark":  # pipeline.spark.SparkConnection reads the files itself
        return con.register_tables(data_dir)
    found = []
    for name in tables or TABLES:
        p = table_file(data_dir, name)
        if p is None:
            continue
        _relation(con, TABLES[name], p).create_view(name, replace=True)
        found.append(name)
    return found


def _examples(con, sql: str, params: list | None = None) -> tuple[int, list[dict]]:
    n = con.execute(f"SELECT count(*) FROM ({sql})", params or []).fetchall()[0][0]
    if n == 0:
        return 0, []
    cur = con.execute(f"SELECT * FROM ({sql}) LIMIT {EXAMPLES}", params or [])
    names = [d[0] for d in cur.description]
    return n, [dict(zip(names, (str(v) for v in row))) for row in cur.fetchall()]


def _column_checks(con, t: Table, c: Column) -> list[Violation]:
    out = []
    q = _q(c.name)
    show = ", ".join(_q(k) for k in t.key) if t.key else "*"
    show = f"{show}, {q}" if c.name not in t.key else show

    def check(rule: str, where: str, params: list | None = None, severity: str = "error"):
        n, ex = _examples(con, f"SELECT {show} FROM {t.name} WHERE {where}", params)
        if n:
            out.append(Violation(t.name, c.name, rule, n, ex, severity))

    if not c.nullable:
        check("must not be missing", f"{q} IS NULL")
    if c.allowed:
        check(f"must be one of {', '.join(c.allowed)}", f"{q} IS NOT NULL AND NOT list_contains(?, {q}::VARCHAR)",
              [list(c.allowed)], c.severity)
    if c.min is not None:
        check(f"must be >= {c.min:g}", f"{q} < ?", [c.min], c.severity)
    if c.max is not None:
        check(f"must be <= {c.max:g}", f"{q} > ?", [c.max], c.severity)
    if c.month:
        check("must be the first day of a month", f"{q} IS NOT NULL AND day({q}) <> 1")
    return out


def _csv_conversion(con, t: Table, p: Path) -> list[Violation]:
    """CSV values that are not of the declared type (read again as text, converted here)."""
    out = []
    raw = con.read_csv(p.as_posix(), header=True, all_varchar=True)
    raw.create_view("__raw", replace=True)
    for c in t.columns:
        if c.name not in raw.columns or c.type == "str":
            continue
        q = _q(c.name)
        n, ex = _examples(con, f"SELECT {q} FROM __raw WHERE {q} IS NOT NULL AND TRY_CAST({q} AS {SQL_TYPE[c.type]}) IS NULL")
        if n:
            out.append(Violation(t.name, c.name, f"must have type {c.type} (text that is not a {c.type})", n, ex))
    con.execute("DROP VIEW __raw")
    return out


def _readable(con, t: Table, p: Path) -> Violation | None:
    """Read every value once (a truncated or corrupt file, or text that is not UTF-8, fails
    here), naming the column where it can."""
    try:
        rel = _relation(con, t, p)
        rel.aggregate("count(*)").fetchall()
        text = [c for c, ty in zip(rel.columns, rel.types) if str(ty) == "VARCHAR"]
        if text:
            rel.aggregate(", ".join(f"max(length({_q(c)}))" for c in text)).fetchall()
        return None
    except (duckdb.Error, UnicodeDecodeError, OSError) as e:
        column = "*"
        kind = "Parquet" if p.suffix == ".parquet" else "CSV (UTF-8 text with a header row)"
        reason = str(e).splitlines()[0][:160]
        if "unicode" in reason.lower() or "utf" in reason.lower() or "encoding" in reason.lower():
            rule = "text must be UTF-8"
            for c in t.columns:  # which column, if the file opens at all
                try:
                    _relation(con, t, p).aggregate(f"max(length({_q(c.name)}))").fetchall()
                except Exception:  # noqa: BLE001 (any failure here names the column)
                    column = c.name
                    break
        else:
            rule = f"file {p.name} cannot be read as {kind}"
        return Violation(t.name, column, f"{rule} ({reason})")


def _key_check(con, t: Table) -> list[Violation]:
    n = con.execute(f"SELECT count(*) FROM {t.name}").fetchall()[0][0]
    if not t.key:
        return [] if n == 1 else [Violation(t.name, "*", f"must have exactly one row (has {n})", n)]
    if n == 0:
        return [Violation(t.name, "*", "must not be empty" + (f" ({t.empty_note})" if t.empty_note else ""),
                          severity=t.empty_severity)]
    keys = ", ".join(_q(k) for k in t.key)
    n, ex = _examples(con, f"SELECT {keys}, count(*) AS copies FROM {t.name} GROUP BY ALL HAVING count(*) > 1")
    return [Violation(t.name, ",".join(t.key), "key must be unique (duplicate rows)", n, ex)] if n else []


def _validity_overlap_check(con, t: Table) -> list[Violation]:
    """Tables with valid_from/valid_to: periods of the same id must not overlap."""
    if "valid_from" not in {c.name for c in t.columns}:
        return []
    idc = _q(t.key[0])
    sql = f"""
        SELECT a.{idc}, a.valid_from, a.valid_to, b.valid_from AS other_valid_from
        FROM {t.name} a JOIN {t.name} b
          ON a.{idc} = b.{idc} AND a.valid_from < b.valid_from
         AND (a.valid_to IS NULL OR a.valid_to >= b.valid_from)"""
    n, ex = _examples(con, sql)
    return [Violation(t.name, "valid_from,valid_to", "validity periods of the same id must not overlap", n, ex)] if n else []


def _reference_checks(con, t: Table, present: set[str]) -> list[Violation]:
    out = []
    for r in t.references:
        if r.table not in present:
            continue
        on = " AND ".join(f'x.{_q(a)} = y.{_q(b)}' for a, b in zip(r.columns, r.target_columns))
        if r.valid_at:
            on += f' AND x.{_q(r.valid_at)} >= y.valid_from AND (y.valid_to IS NULL OR x.{_q(r.valid_at)} <= y.valid_to)'
        cols = ", ".join(f'x.{_q(a)}' for a in r.columns)
        extra = f', x.{_q(r.valid_at)}' if r.valid_at else ""
        sql = f"SELECT DISTINCT {cols}{extra} FROM {t.name} x WHERE NOT EXISTS (SELECT 1 FROM {r.table} y WHERE {on})"
        n, ex = _examples(con, sql)
        if n:
            when = f" valid at {r.valid_at}" if r.valid_at else ""
            rule = f"must exist in {r.table}.{','.join(r.target_columns)}{when} ({r.description})"
            out.append(Violation(t.name, ",".join(r.columns), rule, n, ex))
    return out


def _labour_market_coverage(con, present: set[str]) -> list[Violation]:
    """Every stock month must have labour-market data for the person's commuting region."""
    if not {"stock", "municipalities", "labour_market"} <= present:
        return []
    sql = """
        SELECT DISTINCT m.commuting_region_id, s.month
        FROM stock s JOIN municipalities m
          ON s.municipality_id = m.municipality_id AND s.month >= m.valid_from
         AND (m.valid_to IS NULL OR s.month <= m.valid_to)
        WHERE NOT EXISTS (SELECT 1 FROM labour_market l
                          WHERE l.commuting_region_id = m.commuting_region_id AND l.month = s.month)"""
    n, ex = _examples(con, sql)
    if n:
        return [Violation("labour_market", "commuting_region_id,month",
                          "must cover every commuting region and month in the stock", n, ex)]
    return []


def _employment_observed(con, present: set[str]) -> list[Violation]:
    """The extract's observation limit against the employment rows: every month up to it must
    have employment rows (a month without any would be read as zero hours for everyone, and
    outcomes that should be censored would be published as 0); rows after it are ignored."""
    if not {"extract", "employment"} <= present:
        return []
    out = []
    sql = """
        WITH lim AS (SELECT max(employment_observed_to) AS obs FROM extract),
             months AS (SELECT DISTINCT month FROM employment),
             span AS (SELECT unnest(generate_series((SELECT min(month) FROM employment), (SELECT obs FROM lim),
                                                     INTERVAL 1 MONTH))::DATE AS month)
        SELECT span.month AS month_without_employment_rows, (SELECT obs FROM lim) AS employment_observed_to
        FROM span WHERE span.month NOT IN (SELECT month FROM months) ORDER BY 1"""
    n, ex = _examples(con, sql)
    if n:
        out.append(Violation("extract", "employment_observed_to",
                             "every month up to employment_observed_to must have employment rows "
                             "(a month without any would count as zero hours for everyone)", n, ex))
    n, ex = _examples(con, "SELECT person_id, month FROM employment WHERE month > (SELECT max(employment_observed_to) FROM extract)")
    if n:
        out.append(Violation("employment", "month", "rows after extract.employment_observed_to are not used", n, ex, "warning"))
    return out


def _ages(con, present: set[str]) -> list[Violation]:
    """A person's age in a stock month: impossible outside AGE_POSSIBLE (a birth month in the
    future, or an age of 300), unusual for work-oriented follow-up outside AGE_USUAL."""
    if not {"stock", "persons"} <= present:
        return []
    age = "datediff('month', p.birth_month, s.month) / 12.0"
    base = f"SELECT s.person_id, s.month, p.birth_month, floor({age}) AS age FROM stock s JOIN persons p USING (person_id)"
    out = []
    n, ex = _examples(con, f"{base} WHERE {age} < ? OR {age} >= ?", list(AGE_POSSIBLE))
    if n:
        out.append(Violation("persons", "birth_month", f"age in the stock month must be {AGE_POSSIBLE[0]}-{AGE_POSSIBLE[1] - 1}",
                             n, ex))
    n, ex = _examples(con, f"{base} WHERE ({age} >= ? AND {age} < ?) OR ({age} >= ? AND {age} < ?)",
                      [AGE_POSSIBLE[0], AGE_USUAL[0], AGE_USUAL[1], AGE_POSSIBLE[1]])
    if n:
        out.append(Violation("persons", "birth_month", f"age in the stock month outside {AGE_USUAL[0]}-{AGE_USUAL[1] - 1} "
                             "is unusual for work-oriented follow-up", n, ex, "warning"))
    return out


def validate(data_dir: Path | str, tables: list[str] | None = None, raise_on_error: bool = True) -> list[Violation]:
    """Check `data_dir` against the contract. Returns all violations (errors and warnings);
    raises ValidationError listing every error if there is at least one."""
    data_dir = Path(data_dir)
    wanted = tables or list(TABLES)
    con = duckdb.connect()
    violations: list[Violation] = []
    if not data_dir.is_dir():
        violations.append(Violation("*", "*", f"datamappen {data_dir} finnes ikke"))
    sound: set[str] = set()  # tables whose file reads and whose columns and types are right
    for name in wanted:
        t = TABLES[name]
        p = table_file(data_dir, name) if data_dir.is_dir() else None
        if p is None:
            if data_dir.is_dir() and t.required:
                violations.append(Violation(name, "*", f"table file missing ({name}.parquet or {name}.csv)"))
            continue
        bad = _readable(con, t, p)
        if bad:
            violations.append(bad)
            continue
        if p.suffix == ".csv":
            conversion = _csv_conversion(con, t, p)
            violations += conversion
        _relation(con, t, p).create_view(name, replace=True)
        types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {name}").fetchall()}
        good_cols = []
        for c in t.columns:
            if c.name not in types:
                violations.append(Violation(name, c.name, "column missing"))
            elif types[c.name].split("(")[0] not in _TYPES[c.type]:
                violations.append(Violation(name, c.name, f"must have type {c.type} (found {types[c.name]})"))
            elif p.suffix == ".csv" and any(v.column == c.name for v in conversion):
                pass  # reported above, with the text that does not convert
            else:
                good_cols.append(c)
        for c in good_cols:
            violations += _column_checks(con, t, c)
        if len(good_cols) == len(t.columns):
            sound.add(name)
            violations += _key_check(con, t)
            violations += _validity_overlap_check(con, t)
    for name in wanted:
        if name in sound:
            violations += _reference_checks(con, TABLES[name], sound)
    violations += _labour_market_coverage(con, sound)
    violations += _employment_observed(con, sound)
    violations += _ages(con, sound)
    con.close()
    if raise_on_error and any(v.severity == "error" for v in violations):
        raise ValidationError(violations)
    return violations
