"""Panels of the published indicator for evaluations: region x month or office x month cells
of one outcome and breakdown group, with the number of persons as the weight, joined to a
treatment table the user supplies (a dose per unit and month, or an adoption month per unit).

Suppressed cells have no value in the published tables; they are left out and counted in
`panel.attrs["suppressed"]`, never filled in."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..pipeline.results import Results
from .evaluation import EvaluationError

LEVELS = {"region": 2, "kontor": 3, 2: 2, 3: 3}


def indicator_panel(db: Path | str, outcome: str = "jobb3", level: int | str = 2, breakdown: str = "Alle",
                    group: str = "Alle", run_id: str | None = None) -> pd.DataFrame:
    """One row per unit and month: unit (id), unit_name, month, indicator, actual, expected,
    persons (the weight)."""
    if level not in LEVELS:
        raise EvaluationError(f"level must be 2 (regions) or 3 (offices), not {level!r}")
    res = Results(db)
    try:
        res.check_outcome(outcome)
        cells = res.published(run_id, ORG_NIVAA=LEVELS[level], UTFALL=outcome, NEDBRYTNING=breakdown, GRUPPE=group)
    finally:
        res.close()
    if cells.empty:
        raise EvaluationError(f"no published cells for {outcome}, {breakdown} = {group} at level {level}")
    kept = cells[~cells["PRIKKET"].astype(bool) & cells["INDIKATOR"].notna()]
    panel = pd.DataFrame({"unit": kept["ORG_STED_ID"].astype(str).to_numpy(), "unit_name": kept["ORG_STED"].to_numpy(),
                          "month": pd.to_datetime(kept["BEHOLDNINGSMAANED"]).to_numpy(),
                          "indicator": kept["INDIKATOR"].to_numpy(float), "actual": kept["faktisk"].to_numpy(float),
                          "expected": kept["forventet"].to_numpy(float),
                          "persons": kept["ANTALL_PERSONER"].to_numpy(float)})
    panel = panel.sort_values(["unit", "month"]).reset_index(drop=True)
    panel.attrs["suppressed"] = int(len(cells) - len(kept))
    return panel


def read_treatment(source: pd.DataFrame | Path | str) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source.copy()
    p = Path(source)
    if not p.exists():
        raise EvaluationError(f"the treatment table {p} does not exist")
    return pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p, dtype={"unit": str})


def _months(values: pd.Series, column: str) -> pd.Series:
    """Months as dates (YYYY-MM or YYYY-MM-DD); a value that is none of them is an error."""
    parsed = pd.to_datetime(values.astype("string").str.slice(0, 7), format="%Y-%m", errors="coerce")
    bad = values.notna() & parsed.isna()
    if bad.any():
        raise EvaluationError(f"{column} in the treatment table must be a month (YYYY-MM); "
                              f"{int(bad.sum())} rows are not, e.g. {values[bad].iloc[0]!r}")
    return parsed


def treatment_table(treatment: pd.DataFrame | Path | str, dose: str | None = None,
                    adoption: str | None = None) -> pd.DataFrame:
    """The treatment table read and checked: with `dose`, rows (unit, month, dose); with
    `adoption`, rows (unit, adoption month), the month missing for units never treated. Units as
    text, months as dates; a bad month, a missing dose or a duplicate row is an error."""
    if (dose is None) == (adoption is None):
        raise EvaluationError("give either dose (unit, month, dose) or adoption (unit, adoption month)")
    t = read_treatment(treatment)
    keys = ["unit", "month"] if dose else ["unit"]
    need = keys + [dose or adoption]
    missing = [c for c in need if c not in t.columns]
    if missing:
        raise EvaluationError(f"the treatment table has no column {', '.join(missing)} (needs {', '.join(need)})")
    t = t[need].copy()
    t["unit"] = t["unit"].astype(str)
    for c in ("month",) if dose else (adoption,):
        t[c] = _months(t[c], c)
    if dose:
        if t[dose].isna().any():
            raise EvaluationError(f"the treatment table has {int(t[dose].isna().sum())} rows without {dose}")
        if not pd.api.types.is_numeric_dtype(t[dose]):
            raise EvaluationError(f"{dose} in the treatment table must be a number (a dose), e.g. not {t[dose].iloc[0]!r}")
    dup = t.duplicated(keys)
    if dup.any():
        raise EvaluationError(f"the treatment table has {int(dup.sum())} duplicate rows of {', '.join(keys)}, "
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
        raise EvaluationError(f"{len(lost)} panel rows have no treatment row, e.g. "
                              f"{lost[keys].drop_duplicates().head(3).astype(str).values.tolist()}")
    return out.drop(columns="_merge")


__all__ = ["indicator_panel", "read_treatment", "treatment_table", "with_treatment"]
