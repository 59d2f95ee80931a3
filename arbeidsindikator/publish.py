"""The published table: month x organisational level x unit x outcome x breakdown group.

Columns follow Nav's published table (BEHOLDNINGSMAANED, ORG_NIVAA, ORG_STED, UTFALL,
NEDBRYTNING, ANTALL_PERSONER, faktisk, forventet, INDIKATOR) plus what a reader needs to
use a number correctly:

- GRUPPE: the group within the breakdown ('Alle' for the whole unit);
- I_MODELLEN: the breakdown variable is in the model, so its groups average to zero over
  the period by construction: compare their development over time, never their levels;
- ENHET: 'timer per uke' for atid*, 'prosentpoeng' for jobb* (faktisk and forventet for jobb*
  are percentages, so INDIKATOR = faktisk - forventet holds in every row);
- PRIKKET: the cell has fewer than `min_persons` persons and its values are suppressed.

ORG_NIVAA: 1 the country, 2 a region, 3 an office. The national follow-up unit NOE is its
own unit at level 2 and 3 (as in Nav's table), so the regions plus NOE add up to the country.
ANTALL_PERSONER counts persons with an observed outcome (censored months are not published).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from .config import ModelSpec
from .indicator import breakdown_sql
from .model import _q
from .outcomes import UNITS

LEVELS = (
    (1, "'Norge'", "'0000'"),
    (2, "region_name", "region_id"),
    (3, "office_name", "office_id"),
)


def _scale(outcome: str) -> str:
    return "100.0" if outcome.startswith("jobb") else "1.0"


def published_sql(spec: ModelSpec, source: str = "person_results") -> str:
    parts = []
    for level, sted, sted_id in LEVELS:
        for name, _, in_model in breakdown_sql(spec):
            grp = "'Alle'" if name == "Alle" else _q("grp_" + name)
            for o in spec.outcomes:
                s = _scale(o)
                parts.append(f"""
                SELECT month AS BEHOLDNINGSMAANED, {level} AS ORG_NIVAA, {sted} AS ORG_STED, {sted_id} AS ORG_STED_ID,
                       '{o}' AS UTFALL, '{name}' AS NEDBRYTNING, {grp} AS GRUPPE, {str(in_model).upper()} AS I_MODELLEN,
                       count(actual_{o}) AS ANTALL_PERSONER,
                       {s} * avg(actual_{o}) AS faktisk,
                       {s} * avg(CASE WHEN actual_{o} IS NOT NULL THEN expected_{o} END) AS forventet,
                       {s} * avg(indicator_{o}) AS INDIKATOR,
                       '{UNITS[o]}' AS ENHET
                FROM {source} WHERE actual_{o} IS NOT NULL
                GROUP BY ALL""")
    return " UNION ALL ".join(parts)


def build_published(con: duckdb.DuckDBPyConnection, spec: ModelSpec, source: str = "person_results",
                    target: str = "published") -> None:
    """Aggregate and apply small-cell suppression (values NULL, PRIKKET true)."""
    k = int(spec.min_persons)
    con.execute(f"""
        CREATE OR REPLACE TABLE {target} AS
        SELECT BEHOLDNINGSMAANED, ORG_NIVAA, ORG_STED, ORG_STED_ID, UTFALL, NEDBRYTNING, GRUPPE, I_MODELLEN,
               ANTALL_PERSONER,
               CASE WHEN ANTALL_PERSONER >= {k} THEN faktisk END AS faktisk,
               CASE WHEN ANTALL_PERSONER >= {k} THEN forventet END AS forventet,
               CASE WHEN ANTALL_PERSONER >= {k} THEN INDIKATOR END AS INDIKATOR,
               ENHET, ANTALL_PERSONER < {k} AS PRIKKET
        FROM ({published_sql(spec, source)})
        ORDER BY ORG_NIVAA, ORG_STED_ID, UTFALL, NEDBRYTNING, GRUPPE, BEHOLDNINGSMAANED
    """)


def export(con: duckdb.DuckDBPyConnection, query: str, out: Path, formats=("csv", "parquet")) -> list[Path]:
    """Write a query result to CSV and/or Parquet (atomically: temp file, then rename)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        p = out.with_suffix(f".{fmt}")
        tmp = p.with_name(f".{p.name}.tmp")
        opts = "(FORMAT csv, HEADER true)" if fmt == "csv" else "(FORMAT parquet, COMPRESSION zstd)"
        con.execute(f"COPY ({query}) TO '{tmp.as_posix()}' {opts}")
        tmp.replace(p)
        written.append(p)
    return written
