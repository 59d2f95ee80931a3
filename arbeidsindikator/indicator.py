"""The indicator at person level: actual minus expected, for every person-month.

Because each OLS has a constant, the indicator averages to zero over the estimation
sample: it is relative to Nav's average contribution in the period (DOMAIN.md section 2).
Person-level rows never leave the working database except into the results store when
the user asks for them (`keep_person_level`); reports, API and dashboard read aggregates.

Besides the labels (office_id, region_id, grp_*), every row carries integer codes of its
office, region and breakdown groups (`__office`, `__region`, `__g1`, `__g2`, ...; see CellCodes).
Publishing groups 30 million rows by cell and by person, and grouping by small integers
instead of strings is what keeps that within memory and fast (national scale: a GROUP BY
over strings spilled and took three times as long).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import duckdb
import numpy as np

from .config import ModelSpec
from .model import _q, _sql_literal


def breakdown_sql(spec: ModelSpec) -> list[tuple[str, str, bool]]:
    """(name, SQL expression for the group, in_model) for 'Alle' and every breakdown."""
    out = [("Alle", "'Alle'", False)]
    for b in spec.breakdowns:
        col = _q(b.column)
        if b.bins:
            edges = [int(x) if float(x).is_integer() else x for x in b.bins]
            labels = [f"under {edges[0]}"] + [f"{edges[i]}-{edges[i + 1] - 1}" for i in range(len(edges) - 1)] + [f"{edges[-1]}+"]
            whens = " ".join(f"WHEN {col} < {e!r} THEN '{labels[i]}'" for i, e in enumerate(edges))
            expr = f"(CASE {whens} ELSE '{labels[-1]}' END)"
        else:
            expr = f"(CASE CAST({col} AS STRING) WHEN 'true' THEN 'ja' WHEN 'false' THEN 'nei' ELSE CAST({col} AS STRING) END)"
        out.append((b.name, expr, spec.in_model(b)))
    return out


NULL_GROUP = "ukjent"  # the label of a breakdown group whose value is missing


@dataclass
class CellCodes:
    """What the integer codes of person_results stand for.

    `__office` and `__region` index `offices` and `regions` (sorted ids); `__g1`, `__g2`, ...
    index `labels[b]`, the groups of breakdown b in sorted order. Breakdown 0 is 'Alle'."""
    offices: list[str]
    office_names: list[str]
    regions: list[str]
    region_names: list[str]
    pairs: np.ndarray  # the (office, region) code pairs that occur, one row each
    breakdowns: list[tuple[str, bool]]  # (name, in the model), 'Alle' first
    labels: list[list[str]]

    # the code column of each level's unit (level 1, the country, has none)
    UNIT_COLS: ClassVar[dict[int, str]] = {2: "__region", 3: "__office"}

    @staticmethod
    def group_col(b: int) -> str:
        """The column with the group code of breakdown b (b >= 1; 'Alle' has no column)."""
        return f"__g{b}"

    @staticmethod
    def set_cols(lvl: int, bd: int) -> list[str]:
        """The code columns that key the cells of a level x breakdown."""
        return [c for c in (CellCodes.UNIT_COLS.get(lvl), CellCodes.group_col(bd) if bd else None) if c]

    @staticmethod
    def key_cols(n_breakdowns: int) -> list[str]:
        """Every code column: the units' (region, office), then each breakdown's but 'Alle'."""
        return list(CellCodes.UNIT_COLS.values()) + [CellCodes.group_col(b) for b in range(1, n_breakdowns)]

    @classmethod
    def read(cls, con, spec: ModelSpec, source: str = "person_results") -> "CellCodes":
        """Decode the codes from the rows themselves: one scan for the (few) distinct combinations."""
        bds = breakdown_sql(spec)
        grp = "".join(f", __g{b}, {_q('grp_' + n)}" for b, (n, _, _) in enumerate(bds) if b)
        rows = con.execute(f"SELECT DISTINCT __office, office_id, office_name, __region, region_id, region_name{grp} "
                           f"FROM {source}").fetchall()
        rows.sort(key=lambda r: tuple("" if v is None else str(v) for v in r))  # names: the last in order win
        offices, office_names = _decode([(r[0], r[1]) for r in rows]), _decode([(r[0], r[2]) for r in rows])
        regions, region_names = _decode([(r[3], r[4]) for r in rows]), _decode([(r[3], r[5]) for r in rows])
        pairs = np.array(sorted({(r[0], r[3]) for r in rows}), dtype=np.int64).reshape(-1, 2)
        labels = [["Alle"]] + [[NULL_GROUP if v is None else v for v in _decode([(r[6 + 2 * k], r[7 + 2 * k]) for r in rows])]
                               for k in range(len(bds) - 1)]
        return cls(offices, office_names, regions, region_names, pairs, [(n, im) for n, _, im in bds], labels)


def _decode(code_label: list[tuple]) -> list:
    """code -> label as a list (codes that do not occur get an empty label)."""
    out = [""] * (max(c for c, _ in code_label) + 1)
    for c, label in code_label:
        out[c] = label
    return out


def _labels_sql(con, exprs: list[str], table: str) -> list[list]:
    """The sorted distinct values of some expressions (NULL last), in one scan."""
    rows = con.execute(f"SELECT DISTINCT {', '.join(exprs)} FROM {table}").fetchall()
    return [sorted({r[i] for r in rows}, key=lambda v: (v is None, "" if v is None else str(v))) for i in range(len(exprs))]


def _code_sql(expr: str, values: list) -> str:
    """CASE mapping the values of a (low-cardinality) expression to 0, 1, ..."""
    whens = " ".join(f"WHEN {expr} IS NULL THEN {i}" if v is None else f"WHEN {expr} = {_sql_literal(v)} THEN {i}"
                     for i, v in enumerate(values))
    return f"(CASE {whens} END)"


def build_person_results(con: duckdb.DuckDBPyConnection, spec: ModelSpec, analysis: str = "analysis",
                         predictions: str = "predictions", target: str = "person_results") -> None:
    """One row per person-month of the indicator population with actual, expected and indicator
    per outcome, plus the organisation and breakdown groups needed to publish."""
    bds = breakdown_sql(spec)[1:]
    groups = ", ".join(f"{expr} AS {_q('grp_' + name)}" for name, expr, _ in bds)
    per_outcome = ", ".join(
        f"a.{o} AS actual_{o}, p.expected_{o}, a.{o} - p.expected_{o} AS indicator_{o}" for o in spec.outcomes)
    # integer codes (CellCodes): offices and regions through small joins (a CASE over some
    # hundred office ids is 50 times slower), breakdown groups through a CASE over their few labels
    offices, regions, *labels = _labels_sql(con, ["office_id", "region_id"] + [e for _, e, _ in bds], analysis)
    table = lambda ids: ", ".join(f"({_sql_literal(v)}, {i})" for i, v in enumerate(ids))  # noqa: E731
    codes = "".join(f", {_code_sql('r.' + _q('grp_' + name), lab)} AS __g{k + 1}"
                    for k, ((name, _, _), lab) in enumerate(zip(bds, labels)))
    con.execute(f"""
        CREATE OR REPLACE TABLE {target} AS
        SELECT r.*, uo.__office, ur.__region{codes}
        FROM (SELECT a.person_id, a.month, a.office_id, a.office_name, a.region_id, a.region_name,
                     a.home_office_id, a.innsatsgruppe, {groups}{', ' if groups else ''}{per_outcome}
              FROM {analysis} a JOIN {predictions} p USING (person_id, month)) r
        JOIN (VALUES {table(offices)}) AS uo(office_id, __office) ON r.office_id = uo.office_id
        JOIN (VALUES {table(regions)}) AS ur(region_id, __region) ON r.region_id = ur.region_id
    """)

