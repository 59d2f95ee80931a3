"""Suppressed cells as published: no values, and counts only in a protected form.

Which cells are suppressed is decided in disclosure.py (primary: fewer persons than the
threshold; secondary: so that no suppressed value follows from the published cells). Here the
decision is applied to the published rows:

- every value derived from outcomes (means, standard errors, intervals, covariances, the
  shrunken indicator, work volume) is removed;
- the counts (ANTALL_PERSONER, and ANTALL_PERSONMANEDER in period rows) are removed too, as
  their exact values would give bounds (and a count of 1 says one person is behind the cell).
  With the specification's `publish.counts = "intervall"` a band is published instead
  (ANTALL_INTERVALL: '1-19', '20-49', '50-99', '100+' for a threshold of 10; empty where the
  band together with the relations would prove a cell small);
- PRIKKET marks the cell; PRIKKET_ARSAK says it is suppressed without saying whether it was
  small itself (primary) or suppressed to protect another cell (secondary): that would tell
  an attacker which cells have fewer persons than the threshold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .disclosure import count_band

REASON = "prikket for å beskytte små grupper"
SUPPRESSED_VALUES = ["faktisk", "forventet", "INDIKATOR", "faktisk_SE", "forventet_SE", "INDIKATOR_SE",
                     "faktisk_KI_NEDRE", "faktisk_KI_OVRE", "forventet_KI_NEDRE", "forventet_KI_OVRE",
                     "INDIKATOR_KI_NEDRE", "INDIKATOR_KI_OVRE", "KOV_INDIKATOR_FAKTISK", "model_var", "model_var_indicator",
                     "var_y", "var_e", "cov_ey"]
COUNTS = ["ANTALL_PERSONER", "ANTALL_PERSONMANEDER"]


def apply_suppression(d: pd.DataFrame, suppressed: np.ndarray, primary: np.ndarray, unbanded: np.ndarray | None,
                      counts: str, threshold: int) -> pd.DataFrame:
    """Mark and empty the suppressed rows of `d` (in its row order); `unbanded`: suppressed rows
    whose band is withheld too (with the relations it would prove a cell small)."""
    d = d.copy(deep=False)  # new columns only: the caller's frame is left as it was
    supp = np.asarray(suppressed, bool)
    d["PRIKKET"] = supp
    d["PRIKKET_ARSAK"] = np.where(supp, REASON, None).astype(object)
    if counts == "intervall":
        banded = supp & ~(np.zeros(len(d), bool) if unbanded is None else np.asarray(unbanded, bool))
        d["ANTALL_INTERVALL"] = np.where(banded, count_band(d["ANTALL_PERSONER"].to_numpy(), threshold), None).astype(object)
    for c in SUPPRESSED_VALUES:
        if c in d.columns:
            d[c] = d[c].mask(supp)
    for c in COUNTS:
        if c in d.columns:
            d[c] = d[c].astype("Int64").mask(supp)
    return d
