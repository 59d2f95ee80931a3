"""A model change, old series beside new: what a new model version does to the published history.

Nav changes its model gradually: the new version's back-cast of the whole history is published
beside the old series for a transition period, so readers see what moves because of the model
and not because of the offices. Every estimation run in the store is such a back-cast (it
computes every month of the history under its own version), and a release applies a frozen
version; this module sets two of them side by side, cell by cell:

- per outcome and level, over the cells both publish: the mean and mean absolute difference
  of the indicator (new minus old), the largest, the correlation of the two, and for offices
  the Spearman correlation of their yearly indicators (does the ranking survive the change?)
  and the share of office-years whose 95 % interval excludes zero under one version only;
- the national monthly series under both.

Only published cells are read: the comparison is of what readers see.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from scipy import stats

from ..pipeline.versions import VersionError, resolve_runs

LEVELS = {1: "landet", 2: "regioner", 3: "kontor"}


@dataclass
class Transition:
    old: str
    new: str
    summary: pd.DataFrame  # outcome, level, cells, mean_diff, mean_abs_diff, max_abs_diff, r, spearman, signal_changed
    national: pd.DataFrame  # month, outcome, old, new


def model_transition(db: Path | str, old: str, new: str) -> Transition:
    if not Path(db).exists():
        raise VersionError(f"resultatbasen {db} finnes ikke")
    with duckdb.connect(str(db), read_only=True) as con:
        old, new = resolve_runs(con, [old, new], db)
        if old == new:
            raise VersionError("den gamle og den nye kjøringen er den samme")
        cells = con.execute("""
            WITH a AS (SELECT * FROM published WHERE run_id = ? AND NEDBRYTNING = 'Alle' AND NOT PRIKKET),
                 b AS (SELECT * FROM published WHERE run_id = ? AND NEDBRYTNING = 'Alle' AND NOT PRIKKET)
            SELECT a.BEHOLDNINGSMAANED AS month, a.ORG_NIVAA AS level, a.ORG_STED_ID AS unit, a.UTFALL AS outcome,
                   a.ANTALL_PERSONER AS n, a.INDIKATOR AS old, b.INDIKATOR AS new,
                   a.INDIKATOR_SE AS old_se, b.INDIKATOR_SE AS new_se
            FROM a JOIN b USING (BEHOLDNINGSMAANED, ORG_NIVAA, ORG_STED_ID, UTFALL, NEDBRYTNING, GRUPPE)""",
                            [old, new]).df()
    if cells.empty:
        raise VersionError(f"kjøringene {old} og {new} har ingen publiserte celler felles")
    cells["month"] = pd.to_datetime(cells["month"])
    rows = []
    for (o, lvl), g in cells.groupby(["outcome", "level"]):
        d = (g["new"] - g["old"]).to_numpy(float)
        rec = {"outcome": o, "level": int(lvl), "cells": len(g), "mean_diff": float(d.mean()),
               "mean_abs_diff": float(np.abs(d).mean()), "max_abs_diff": float(np.abs(d).max()),
               "r": float(np.corrcoef(g["old"], g["new"])[0, 1]) if len(g) > 2 else np.nan,
               "spearman": np.nan, "signal_changed": np.nan}
        if lvl == 3:
            rec |= _office_years(g)
        rows.append(rec)
    order = {o: i for i, o in enumerate(("atid3", "atid12", "jobb3", "jobb12"))}
    summary = pd.DataFrame(rows).sort_values(["level", "outcome"], key=lambda x: x.map(order) if x.name == "outcome" else x)
    national = cells[cells["level"] == 1][["month", "outcome", "old", "new"]].sort_values(["outcome", "month"])
    return Transition(old, new, summary.reset_index(drop=True), national.reset_index(drop=True))


def _office_years(g: pd.DataFrame) -> dict:
    """Offices' yearly indicators under both versions (weighted by persons; a year's standard
    error from its months' as if independent, for the sign of the interval only)."""
    g = g.assign(year=g["month"].dt.year)
    w = g["n"].astype(float)
    y = g.assign(wo=g["old"] * w, wn=g["new"] * w, vo=(g["old_se"] * w) ** 2, vn=(g["new_se"] * w) ** 2, w=w).groupby(
        ["unit", "year"])[["wo", "wn", "vo", "vn", "w"]].sum()
    old, new = y["wo"] / y["w"], y["wn"] / y["w"]
    so, sn = np.sqrt(y["vo"]) / y["w"], np.sqrt(y["vn"]) / y["w"]
    sig_old, sig_new = (old.abs() > 1.96 * so), (new.abs() > 1.96 * sn)
    return {"spearman": float(stats.spearmanr(old, new).statistic) if len(y) > 2 else np.nan,
            "signal_changed": float((sig_old != sig_new).mean())}


__all__ = ["LEVELS", "Transition", "model_transition"]
