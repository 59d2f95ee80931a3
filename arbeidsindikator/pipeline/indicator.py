"""The indicator at person level: actual minus expected, for every person-month.

Because each OLS has a constant, the indicator averages to zero over the estimation
sample: it is relative to Nav's average contribution in the period (DOMAIN.md section 2).
Person-level rows never leave the working database except into the results store when
the user asks for them (`keep_person_level`); reports, API and dashboard read aggregates.

The rows are stored with integer codes of their office, region and breakdown groups
(`__office`, `__region`, `__g1`, `__g2`, ...; see CellCodes) instead of labels, and a view
joins the labels back for whoever reads person level. Publishing groups 30 million rows by
cell and by person, and grouping by small integers instead of strings is what keeps that
within memory and fast (national scale: a GROUP BY over strings spilled and took three times
as long; writing the label strings alone cost 20 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import duckdb
import numpy as np

from .config import ModelSpec
from .batches import _q
from .design import code_type, SQL_INT, _sql_literal
from .outcomes import valid_sql


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
        """What the codes of `source`'s coded rows stand for: its labels table, and the
        (office, region) pairs that occur (one scan of two integer columns)."""
        by_col: dict[str, dict[int, tuple]] = {}
        for col, code, id_, label in con.execute(f"SELECT code_col, code, id, label FROM {labels_table(source)}").fetchall():
            by_col.setdefault(col, {})[int(code)] = (id_, label)
        unit = lambda col, i: _decode([(c, v[i]) for c, v in by_col.get(col, {}).items()])  # noqa: E731
        bds = breakdown_sql(spec)
        labels = [["Alle"]] + [[NULL_GROUP if v is None else v for v in unit(CellCodes.group_col(b), 1)]
                               for b in range(1, len(bds))]
        pairs = np.array(sorted(con.execute(f"SELECT DISTINCT __office, __region FROM {coded_table(source)}").fetchall()),
                         dtype=np.int64).reshape(-1, 2)
        return cls(unit("__office", 0), unit("__office", 1), unit("__region", 0), unit("__region", 1), pairs,
                   [(n, im) for n, _, im in bds], labels)


def coded_table(person_results: str) -> str:
    """The table of person results with integer cell codes and no labels (what publishing reads)."""
    return f"{person_results}_coded"


def labels_table(person_results: str) -> str:
    """The small table of what the cell codes stand for: (code_col, code, id, label)."""
    return f"{person_results}_labels"


def _decode(code_label: list[tuple]) -> list:
    """code -> label as a list (codes that do not occur get an empty label)."""
    out = [""] * (max((c for c, _ in code_label), default=-1) + 1)
    for c, label in code_label:
        out[c] = label
    return out


def _sorted_values(values) -> list:
    """Distinct values in the order of their codes: sorted as strings, a missing value last."""
    return sorted(set(values), key=lambda v: (v is None, "" if v is None else str(v)))


def _code_sql(expr: str, values: list) -> str:
    """CASE mapping the values of a (low-cardinality) expression to 0, 1, ..."""
    whens = " ".join(f"WHEN {expr} IS NULL THEN {i}" if v is None else f"WHEN {expr} = {_sql_literal(v)} THEN {i}"
                     for i, v in enumerate(values))
    return f"(CASE {whens} END)"


def _label_rows(con, exprs: list[str], analysis: str) -> tuple[list, ...]:
    """The sorted offices and regions of `analysis` with their names, and each breakdown's
    sorted groups, from one scan of the distinct values. An office's name is that of its latest
    version in `offices` (a renamed office is published under its current name)."""
    rows = con.execute(f"SELECT DISTINCT office_id, region_id, {', '.join(exprs)} FROM {analysis}").fetchall()
    office_name = {i: n for i, n, _ in sorted(con.execute("SELECT office_id, office_name, valid_from FROM offices").fetchall(),
                                              key=lambda r: (r[0], r[2]))}
    region_name = dict(con.execute("SELECT region_id, region_name FROM regions").fetchall())
    offices, regions = _sorted_values(r[0] for r in rows), _sorted_values(r[1] for r in rows)
    return ((offices, [office_name.get(v, "") for v in offices]), (regions, [region_name.get(v, "") for v in regions]),
            [_sorted_values(r[2 + k] for r in rows) for k in range(len(exprs))])


def cell_codes(con: duckdb.DuckDBPyConnection, spec: ModelSpec, analysis: str = "analysis",
               target: str = "person_results") -> tuple[str, dict[str, str]]:
    """Decide the integer codes of office, region and breakdown groups (CellCodes) and write
    what they stand for to `{target}_labels`. Returns the table the model reads (`analysis`
    with the office and region codes joined) and the code columns its person rows carry
    (IndicatorModel.fit(carry=...)), so `{target}_coded` is written by the model's own pass."""
    bds = breakdown_sql(spec)[1:]
    (offices, office_names), (regions, region_names), labels = _label_rows(con, [e for _, e, _ in bds], analysis)
    lit = lambda v: "NULL" if v is None else _sql_literal(v)  # noqa: E731
    label_rows = ([("__office", i, v, n) for i, (v, n) in enumerate(zip(offices, office_names))]
                  + [("__region", i, v, n) for i, (v, n) in enumerate(zip(regions, region_names))]
                  + [(CellCodes.group_col(b), i, None, v) for b, lab in enumerate(labels, start=1) for i, v in enumerate(lab)])
    con.execute(f"""CREATE OR REPLACE TABLE {labels_table(target)} AS
        SELECT CAST(code_col AS STRING) AS code_col, CAST(code AS INTEGER) AS code, CAST(id AS STRING) AS id,
               CAST(label AS STRING) AS label
        FROM (VALUES {', '.join(f"({lit(c)}, {i}, {lit(v)}, {lit(n)})" for c, i, v, n in label_rows)})
             AS t(code_col, code, id, label)""")
    # offices and regions coded through small joins (a CASE over some hundred office ids is 50
    # times slower), breakdown groups through a CASE over their few labels
    values = lambda ids: ", ".join(f"({_sql_literal(v)}, {i})" for i, v in enumerate(ids))  # noqa: E731
    groups = "".join(f", {expr} AS __grp{k}" for k, (_, expr, _) in enumerate(bds))
    table = f"""(SELECT a.*, uo.__office, ur.__region{groups} FROM {analysis} a
        JOIN (VALUES {values(offices)}) AS uo(office_id, __office) ON a.office_id = uo.office_id
        JOIN (VALUES {values(regions)}) AS ur(region_id, __region) ON a.region_id = ur.region_id) AS __coded"""
    # in their smallest types: the model's clustered pass sorts its rows with these columns
    small = lambda expr, n: f"CAST({expr} AS {SQL_INT[code_type(n)]})"  # noqa: E731
    carry = {"__office": small("__office", len(offices)), "__region": small("__region", len(regions)),
             **{CellCodes.group_col(k + 1): small(_code_sql(f"__grp{k}", lab), len(lab)) for k, lab in enumerate(labels)}}
    return table, carry


def person_results_view(con: duckdb.DuckDBPyConnection, spec: ModelSpec, analysis: str = "analysis",
                        target: str = "person_results") -> None:
    """The person results are three objects:

    - `{target}_coded` (table, written by IndicatorModel.fit with the carried codes of
      `cell_codes`): one row per person-month of the indicator population with actual,
      expected and indicator per outcome, the integer codes of office, region and breakdown
      groups, and the model's design columns, stored in the order the pass wrote them, each
      person's months together (publishing's period cells read it so, unsorted). No labels:
      publishing reads only this table, and at national scale writing 29 million rows of
      label strings cost 20 s and a join of the predictions with `analysis` 30 s more;
    - `{target}_labels` (table): what the codes stand for (CellCodes.read);
    - `{target}` (this view): the rows with their labels (office and region ids and names as
      in the month, home office, innsatsgruppe, breakdown groups), joined back from `analysis`,
      `offices` and `regions` when read, for the results store's person level and analysts."""
    named = "".join(f", {expr} AS {_q('grp_' + name)}" for name, expr, _ in breakdown_sql(spec)[1:])
    values = ", ".join(f"r.{k}_{o}" for o in spec.outcomes for k in ("actual", "expected", "indicator"))
    con.execute(f"""
        CREATE OR REPLACE VIEW {target} AS
        SELECT r.person_id, r.month, a.office_id, f.office_name, a.region_id, g.region_name, a.home_office_id,
               a.innsatsgruppe{named}, {values}
        FROM {analysis} a JOIN {coded_table(target)} r ON a.person_id = r.person_id AND a.month = r.month
        LEFT JOIN offices f ON f.office_id = a.office_id AND {valid_sql('f', 'a.month')}
        LEFT JOIN regions g ON g.region_id = a.region_id
    """)
