"""The indicator at person level: actual minus expected, for every person-month.

Because each OLS has a constant, the indicator averages to zero over the estimation
sample: it is relative to Nav's average contribution in the period (DOMAIN.md section 2).
Person-level rows never leave the working database except into the results store when
the user asks for them (`keep_person_level`); reports, API and dashboard read aggregates.
"""

from __future__ import annotations

import duckdb

from .config import ModelSpec
from .model import _q


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


def build_person_results(con: duckdb.DuckDBPyConnection, spec: ModelSpec, analysis: str = "analysis",
                         predictions: str = "predictions", target: str = "person_results") -> None:
    """One row per person-month of the indicator population with actual, expected and indicator
    per outcome, plus the organisation and breakdown groups needed to publish."""
    groups = ", ".join(f"{expr} AS {_q('grp_' + name)}" for name, expr, _ in breakdown_sql(spec)[1:])
    per_outcome = ", ".join(
        f"a.{o} AS actual_{o}, p.expected_{o}, a.{o} - p.expected_{o} AS indicator_{o}" for o in spec.outcomes)
    con.execute(f"""
        CREATE OR REPLACE TABLE {target} AS
        SELECT a.person_id, a.month, a.office_id, a.office_name, a.region_id, a.region_name,
               a.home_office_id, a.innsatsgruppe, {groups}{', ' if groups else ''}{per_outcome}
        FROM {analysis} a JOIN {predictions} p USING (person_id, month)
    """)
