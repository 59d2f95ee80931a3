"""Validation of a data directory against the contract (`contract.py`).

All checks run as SQL in DuckDB over the files in place (nothing is loaded into Python),
and every violation is collected before anything is reported: the user gets one message
naming table, column, rule and a few offending rows for each problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from .contract import TABLES, Column, Table

EXAMPLES = 3

_TYPES = {
    "int": {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"},
    "float": {"FLOAT", "DOUBLE", "REAL"},
    "str": {"VARCHAR"},
    "date": {"DATE"},
    "bool": {"BOOLEAN"},
}
_TYPES["float"] |= _TYPES["int"]  # integers are acceptable where a float is declared


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


def register_tables(con: duckdb.DuckDBPyConnection, data_dir: Path, tables=None) -> list[str]:
    """Create a view per contract table found in `data_dir`; return the names found."""
    from .model import is_spark  # here, so `validate` alone does not load the estimators
    if is_spark(con):
        return con.register_tables(data_dir)
    found = []
    for name in tables or TABLES:
        p = table_file(data_dir, name)
        if p is None:
            continue
        reader = "read_parquet" if p.suffix == ".parquet" else "read_csv_auto"
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {reader}('{p.as_posix()}')")
        found.append(name)
    return found


def _examples(con, sql: str) -> tuple[int, list[dict]]:
    n = con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0]
    if n == 0:
        return 0, []
    cur = con.execute(f"SELECT * FROM ({sql}) LIMIT {EXAMPLES}")
    names = [d[0] for d in cur.description]
    return n, [dict(zip(names, (str(v) for v in row))) for row in cur.fetchall()]


def _column_checks(con, t: Table, c: Column) -> list[Violation]:
    out = []
    q = f'"{c.name}"'
    show = ", ".join(f'"{k}"' for k in t.key) if t.key else "*"
    show = f"{show}, {q}" if c.name not in t.key else show

    def check(rule: str, where: str, severity: str = "error"):
        n, ex = _examples(con, f"SELECT {show} FROM {t.name} WHERE {where}")
        if n:
            out.append(Violation(t.name, c.name, rule, n, ex, severity))

    if not c.nullable:
        check("must not be missing", f"{q} IS NULL")
    if c.allowed:
        allowed = ", ".join(f"'{a}'" for a in c.allowed)
        check(f"must be one of {', '.join(c.allowed)}", f"{q} IS NOT NULL AND {q}::VARCHAR NOT IN ({allowed})", c.severity)
    if c.min is not None:
        check(f"must be >= {c.min:g}", f"{q} < {c.min}", c.severity)
    if c.max is not None:
        check(f"must be <= {c.max:g}", f"{q} > {c.max}", c.severity)
    if c.month:
        check("must be the first day of a month", f"{q} IS NOT NULL AND day({q}) <> 1")
    return out


def _key_check(con, t: Table) -> list[Violation]:
    if not t.key:
        n = con.execute(f"SELECT count(*) FROM {t.name}").fetchall()[0][0]
        return [] if n == 1 else [Violation(t.name, "*", f"must have exactly one row (has {n})", n)]
    keys = ", ".join(f'"{k}"' for k in t.key)
    n, ex = _examples(
        con, f"SELECT {keys}, count(*) AS copies FROM {t.name} GROUP BY ALL HAVING count(*) > 1"
    )
    return [Violation(t.name, ",".join(t.key), "key must be unique (duplicate rows)", n, ex)] if n else []


def _validity_overlap_check(con, t: Table) -> list[Violation]:
    """Tables with valid_from/valid_to: periods of the same id must not overlap."""
    if "valid_from" not in {c.name for c in t.columns}:
        return []
    idc = t.key[0]
    sql = f"""
        SELECT a."{idc}", a.valid_from, a.valid_to, b.valid_from AS other_valid_from
        FROM {t.name} a JOIN {t.name} b
          ON a."{idc}" = b."{idc}" AND a.valid_from < b.valid_from
         AND (a.valid_to IS NULL OR a.valid_to >= b.valid_from)"""
    n, ex = _examples(con, sql)
    return [Violation(t.name, "valid_from,valid_to", "validity periods of the same id must not overlap", n, ex)] if n else []


def _reference_checks(con, t: Table, present: set[str]) -> list[Violation]:
    out = []
    for r in t.references:
        if r.table not in present:
            continue
        on = " AND ".join(f'x."{a}" = y."{b}"' for a, b in zip(r.columns, r.target_columns))
        if r.valid_at:
            on += (
                f' AND x."{r.valid_at}" >= y.valid_from'
                f' AND (y.valid_to IS NULL OR x."{r.valid_at}" <= y.valid_to)'
            )
        cols = ", ".join(f'x."{a}"' for a in r.columns)
        extra = f', x."{r.valid_at}"' if r.valid_at else ""
        sql = (
            f"SELECT DISTINCT {cols}{extra} FROM {t.name} x "
            f"WHERE NOT EXISTS (SELECT 1 FROM {r.table} y WHERE {on})"
        )
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


def validate(data_dir: Path | str, tables: list[str] | None = None, raise_on_error: bool = True) -> list[Violation]:
    """Check `data_dir` against the contract. Returns all violations (errors and warnings);
    raises ValidationError listing every error if there is at least one."""
    data_dir = Path(data_dir)
    wanted = tables or list(TABLES)
    con = duckdb.connect()
    violations: list[Violation] = []
    if not data_dir.is_dir():
        violations.append(Violation("*", "*", f"data directory {data_dir} does not exist"))
    present = set(register_tables(con, data_dir, wanted)) if data_dir.is_dir() else set()
    sound: set[str] = set()  # tables whose columns and types are right (value checks can run)
    for name in wanted:
        t = TABLES[name]
        if name not in present:
            if data_dir.is_dir():
                violations.append(Violation(name, "*", f"table file missing ({name}.parquet or {name}.csv)"))
            continue
        types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {name}").fetchall()}
        good_cols = []
        for c in t.columns:
            if c.name not in types:
                violations.append(Violation(name, c.name, "column missing"))
            elif types[c.name].split("(")[0] not in _TYPES[c.type]:
                violations.append(Violation(name, c.name, f"must have type {c.type} (found {types[c.name]})"))
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
    con.close()
    if raise_on_error and any(v.severity == "error" for v in violations):
        raise ValidationError(violations)
    return violations
