"""How to read the indicator, built in: reading rules, index of change, work volume.

Reading rule (Skjøstad). The groups of a breakdown whose variable is in the model (age,
sex, immigrant category, ...) each average to zero over the period by construction, so their
levels say nothing. Only their development over time can be compared. `compare_levels`
refuses such a comparison with an explanation. `index_of_change` compares development and is
allowed for every breakdown.

Index of change from a reference month r (Skjøstad's fact box):
    index_t = ((I_t + A_r) / (I_r + A_r) - 1) * 100
I is the indicator and A_r the group's actual mean outcome in month r, so index_r = 0
exactly. The 95% interval comes from the delta method. I_t is treated as independent of the
month-r quantities. Cov(I_r, A_r) is estimated from the month-r cell
(KOV_INDIKATOR_FAKTISK).

Work volume: the indicator for atid* is in hours per week per person. Times the number of
persons it gives extra (or missing) hours per week for the unit. The project converts hours
per week to full-time equivalents (årsverk) by dividing by 37.5, the ordinary working week in
Norway. The article's chain (169 hours, 230 days) mixes hours per month with working days per
year; see docs/reading-the-indicator.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .uncertainty import Z95

HOURS_PER_FTE_WEEK = 37.5
CONVERSION = "årsverk = timer per uke / 37,5 (en full stilling er 37,5 timer per uke)"


class ReadingRuleError(ValueError):
    """A comparison the indicator cannot support."""


def check_level_comparison(breakdown: str, in_model: bool) -> None:
    if in_model:
        raise ReadingRuleError(
            f"Nivået kan ikke sammenlignes mellom gruppene i «{breakdown}»: variabelen er med i modellen, "
            "så hver gruppe har gjennomsnitt null over perioden per konstruksjon. Sammenlign utviklingen "
            "over tid i stedet (endringsindeks).")


def index_of_change(series: pd.DataFrame, reference_month, difference_near_zero: bool = False) -> pd.DataFrame:
    """`series`: one unit/group/outcome over months with INDIKATOR, INDIKATOR_SE, faktisk,
    faktisk_SE, KOV_INDIKATOR_FAKTISK. Returns month, index and its 95% interval, and
    ENDRING_ENHET = 'prosent'.

    A percentage of a reference level that cannot be told from zero has no bounded interval
    (Fieller): it is refused (ReadingRuleError), or with `difference_near_zero` the change is
    given as a difference in the indicator's unit from the reference month instead
    (ENDRING_ENHET = 'differanse'; its interval leaves out the covariance between the two
    months, which is positive for a unit's months, so it is on the wide side)."""
    s = series.sort_values("BEHOLDNINGSMAANED").reset_index(drop=True)
    ref = pd.Timestamp(reference_month).date()
    months = pd.to_datetime(s["BEHOLDNINGSMAANED"]).dt.date
    r = s[months == ref]
    if r.empty or pd.isna(r["INDIKATOR"].iloc[0]):
        raise LookupError(f"no published (unsuppressed) value in the reference month {ref}")
    ind_r, act_r = float(r["INDIKATOR"].iloc[0]), float(r["faktisk"].iloc[0])
    v_r, v_ar = float(r["INDIKATOR_SE"].iloc[0]) ** 2, float(r["faktisk_SE"].iloc[0]) ** 2
    cov = float(np.nan_to_num(r["KOV_INDIKATOR_FAKTISK"].iloc[0]))
    a = s["INDIKATOR"] + act_r
    b = ind_r + act_r
    se_b = np.sqrt(max(v_r + v_ar + 2 * cov, 0.0))
    if not np.isfinite(b) or abs(b) <= max(Z95 * se_b, 1e-9):
        # a percentage of a level indistinguishable from zero is noise (it can be millions of per cent)
        if difference_near_zero:
            return _difference(s, months, ref, ind_r, v_r)
        raise ReadingRuleError(
            f"Referansenivået i {ref:%Y-%m} kan ikke skilles fra null, så en prosentvis endring fra det gir ingen mening. "
            "Velg en annen referansemåned, eller sammenlign indikatoren direkte.")
    idx = (a / b - 1) * 100
    d_t, d_r, d_a = 100 / b, -100 * a / b ** 2, 100 * (b - a) / b ** 2
    var = d_t ** 2 * s["INDIKATOR_SE"] ** 2 + d_r ** 2 * v_r + d_a ** 2 * v_ar + 2 * d_r * d_a * cov
    at_ref = (months == ref).to_numpy()
    idx[at_ref] = 0.0
    var[at_ref] = 0.0
    se = np.sqrt(var.clip(lower=0))
    return pd.DataFrame({"BEHOLDNINGSMAANED": s["BEHOLDNINGSMAANED"], "REFERANSEMAANED": ref,
                         "ENDRINGSINDEKS": idx, "ENDRINGSINDEKS_SE": se,
                         "ENDRINGSINDEKS_KI_NEDRE": idx - Z95 * se, "ENDRINGSINDEKS_KI_OVRE": idx + Z95 * se,
                         "ENDRING_ENHET": "prosent"})


def _difference(s: pd.DataFrame, months: pd.Series, ref, ind_r: float, v_r: float) -> pd.DataFrame:
    """The indicator's change from the reference month, in its own unit (index_of_change)."""
    d = s["INDIKATOR"] - ind_r
    at_ref = (months == ref).to_numpy()
    se = np.sqrt(s["INDIKATOR_SE"] ** 2 + v_r)
    d[at_ref], se[at_ref] = 0.0, 0.0
    return pd.DataFrame({"BEHOLDNINGSMAANED": s["BEHOLDNINGSMAANED"], "REFERANSEMAANED": ref,
                         "ENDRINGSINDEKS": d, "ENDRINGSINDEKS_SE": se,
                         "ENDRINGSINDEKS_KI_NEDRE": d - Z95 * se, "ENDRINGSINDEKS_KI_OVRE": d + Z95 * se,
                         "ENDRING_ENHET": "differanse"})


def work_volume(indicator_hours_per_week: float, persons: float) -> dict:
    """Extra (or missing) hours per week and full-time equivalents for a unit."""
    hours = indicator_hours_per_week * persons
    return {"persons": persons, "indicator_hours_per_week": indicator_hours_per_week,
            "extra_hours_per_week": hours, "fte": hours / HOURS_PER_FTE_WEEK, "conversion": CONVERSION}
