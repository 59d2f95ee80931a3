"""Panels of the published indicator for evaluations: region x month or office x month cells
of one outcome and breakdown group, with the number of persons as the weight, joined to a
treatment table the user supplies (a dose per unit and month, or an adoption month per unit).

Suppressed cells have no value in the published tables; they are left out and counted in
`panel.attrs["suppressed"]`, never filled in."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from ...pipeline.results import Results
from .twfe import EvaluationError

LEVELS = {"region": 2, "kontor": 3, 2: 2, 3: 3}


def indicator_panel(db: Path | str, outcome: str = "jobb3", level: int | str = 2, breakdown: str = "Alle",
                    group: str = "Alle", run_id: str | None = None) -> pd.DataFrame:
    """One row per unit and month: unit (id), unit_name, month, indicator, actual, expected,
    persons (the weight)."""
    if level not in LEVELS:
        raise EvaluationError(f"nivået må være 2 (regioner) eller 3 (kontorer), ikke {level!r}")
    res = Results(db)
    try:
        res.check_outcome(outcome)
        cells = res.published(run_id, ORG_NIVAA=LEVELS[level], UTFALL=outcome, NEDBRYTNING=breakdown, GRUPPE=group)
    finally:
        res.close()
    if cells.empty:
        raise EvaluationError(f"ingen publiserte celler for {outcome}, {breakdown} = {group} på nivå {level}")
    kept = cells[~cells["PRIKKET"].astype(bool) & cells["INDIKATOR"].notna()]
    panel = pd.DataFrame({"unit": kept["ORG_STED_ID"].astype(str).to_numpy(), "unit_name": kept["ORG_STED"].to_numpy(),
                          "month": pd.to_datetime(kept["BEHOLDNINGSMAANED"]).to_numpy(),
                          "indicator": kept["INDIKATOR"].to_numpy(float), "actual": kept["faktisk"].to_numpy(float),
                          "expected": kept["forventet"].to_numpy(float),
                          "persons": kept["ANTALL_PERSONER"].to_numpy(float)})
    panel = panel.sort_values(["unit", "month"]).reset_index(drop=True)
    panel.attrs["suppressed"] = int(len(cells) - len(kept))
    return panel


def home_region_panel(db: Path | str, data_dir: Path | str, outcome: str = "jobb3",
                      run_id: str | None = None) -> pd.DataFrame:
    """Region x month panel by the region of each user's *home* office (the office of the
    municipality they live in), from a run's person-level results (`run --person-level`).
    Users followed by NOE count in the region they would otherwise have been followed in, which
    is what an evaluation of NOE's rollout across regions needs. Internal: the cells are not
    disclosure-protected and must not be published."""
    from ...data.validate import register_tables, validate
    from ...pipeline.results import Results
    res = Results(db)
    try:
        res.check_outcome(outcome)
    finally:
        res.close()
    scale = 100.0 if outcome.startswith("jobb") else 1.0
    validate(data_dir, tables=["offices", "regions"])
    con = duckdb.connect()
    try:
        con.execute("ATTACH ? AS res (READ_ONLY)", [Path(db).as_posix()])
        has = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'res' "
                          "AND table_name = 'person_results'").fetchall()[0][0]
        if not has:
            raise EvaluationError(f"{db} har ingen resultater på personnivå: kjør «arbeidsindikator run --person-level»")
        rid = run_id or con.execute("SELECT run_id FROM res.runs ORDER BY created_at DESC, run_id DESC LIMIT 1").fetchall()[0][0]
        register_tables(con, Path(data_dir), ["offices", "regions"])
        # outcome names are the package's own (checked above); every value is bound
        panel = con.execute(f"""
            SELECT o.region_id AS unit, any_value(g.region_name) AS unit_name, p.month,
                   {scale} * avg(p.indicator_{outcome}) AS indicator, count(p.indicator_{outcome}) AS persons
            FROM res.person_results p
            JOIN offices o ON o.office_id = p.home_office_id AND p.month >= o.valid_from
                 AND (o.valid_to IS NULL OR p.month <= o.valid_to)
            JOIN regions g ON g.region_id = o.region_id
            WHERE p.run_id = ? AND p.indicator_{outcome} IS NOT NULL
            GROUP BY o.region_id, p.month ORDER BY unit, p.month""", [rid]).df()
    finally:
        con.close()
    panel["month"] = pd.to_datetime(panel["month"])
    panel["persons"] = panel["persons"].astype(float)
    return panel


def read_treatment(source: pd.DataFrame | Path | str) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source.copy()
    p = Path(source)
    if not p.exists():
        raise EvaluationError(f"behandlingstabellen {p} finnes ikke")
    return pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p, dtype={"unit": str})


def _months(values: pd.Series, column: str) -> pd.Series:
    """Months as dates (YYYY-MM or YYYY-MM-DD); a value that is none of them is an error."""
    parsed = pd.to_datetime(values.astype("string").str.slice(0, 7), format="%Y-%m", errors="coerce")
    bad = values.notna() & parsed.isna()
    if bad.any():
        raise EvaluationError(f"{column} i behandlingstabellen må være en måned (ÅÅÅÅ-MM); "
                              f"{int(bad.sum())} rader er ikke det, f.eks. {values[bad].iloc[0]!r}")
    return parsed


def treatment_table(treatment: pd.DataFrame | Path | str, dose: str | None = None,
                    adoption: str | None = None) -> pd.DataFrame:
    """The treatment table read and checked: with `dose`, rows (unit, month, dose); with
    `adoption`, rows (unit, adoption month), the month missing for units never treated. Units as
    text, months as dates; a bad month, a missing dose or a duplicate row is an error."""
    if (dose is None) == (adoption is None):
        raise EvaluationError("oppgi enten dose (enhet, måned, dose) eller adoption (enhet, startmåned)")
    t = read_treatment(treatment)
    keys = ["unit", "month"] if dose else ["unit"]
    need = keys + [dose or adoption]
    missing = [c for c in need if c not in t.columns]
    if missing:
        raise EvaluationError(f"behandlingstabellen mangler kolonnen {', '.join(missing)} (trenger {', '.join(need)})")
    t = t[need].copy()
    t["unit"] = t["unit"].astype(str)
    for c in ("month",) if dose else (adoption,):
        t[c] = _months(t[c], c)
    if dose:
        if t[dose].isna().any():
            raise EvaluationError(f"behandlingstabellen har {int(t[dose].isna().sum())} rader uten {dose}")
        if not pd.api.types.is_numeric_dtype(t[dose]):
            raise EvaluationError(f"{dose} i behandlingstabellen må være et tall (en dose), f.eks. ikke {t[dose].iloc[0]!r}")
    dup = t.duplicated(keys)
    if dup.any():
        raise EvaluationError(f"behandlingstabellen har {int(dup.sum())} doble rader for {', '.join(keys)}, "
                              f"e.g. {t.loc[dup, keys].iloc[0].tolist()}")
    return t


def with_treatment(panel: pd.DataFrame, treatment: pd.DataFrame | Path | str, dose: str | None = None,
                   adoption: str | None = None) -> pd.DataFrame:
    """Join a treatment table (see treatment_table) to the panel. Every unit and month of the
    panel must be in it: a unit left out is an error, not an untreated unit."""
    t = treatment_table(treatment, dose, adoption)
    keys = ["unit", "month"] if dose else ["unit"]
    out = panel.merge(t, how="left", on=keys, indicator=True)
    lost = out[out["_merge"] == "left_only"]
    if len(lost):
        raise EvaluationError(f"{len(lost)} rader i panelet har ingen rad i behandlingstabellen (legg dem til, eller ta enheten ut med "
                              f"exclude), f.eks. "
                              f"{lost[keys].drop_duplicates().head(3).astype(str).values.tolist()}")
    return out.drop(columns="_merge")


__all__ = ["indicator_panel", "home_region_panel", "read_treatment", "treatment_table", "with_treatment"]
