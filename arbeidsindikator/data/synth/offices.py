"""Office HR (agreed and sick-leave hours of state employees) and the true office contribution.

The true contribution theta[office, month] is on the latent employability scale of the true
model. It is a persistent office level, an office-by-year deviation, monthly noise, a
Nav-wide component over time, and known effects of the office's sick leave and staffing.
NOE has its own level. theta is centred so that the average person-month of the
indicator population has theta = 0: an "average office" is the zero, as in the indicator.
"""

from __future__ import annotations

import numpy as np

from .geography import NT, T0, Geography, _interp_knots
from .params import HORIZON, TrueModel, month_index

HOURS_PER_FTE_MONTH = 37.5 * 52 / 12  # 162.5


def office_valid(geo: Geography) -> np.ndarray:
    m = np.arange(T0, HORIZON + 1)
    return (m[None, :] >= geo.office_from[:, None]) & (m[None, :] <= geo.office_to[:, None])


def _rolling_mean(x: np.ndarray, w: int) -> np.ndarray:
    c = np.cumsum(np.pad(x, ((0, 0), (w, 0)), mode="edge"), axis=1)
    return (c[:, w:] - c[:, :-w]) / w


def make_office_hr(geo: Geography, users: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Agreed and sick-leave hours per office x month ([n_office, NT]); NaN where no office."""
    n_off = len(geo.office_ids)
    valid = office_valid(geo)
    months = np.arange(T0, HORIZON + 1)
    # staff follow the number of users with a lag; offices differ in how well staffed they are
    smooth = _rolling_mean(users.astype(float), 12)
    level = 4.6 * np.exp(rng.normal(0, 0.25, n_off))  # agreed hours per user and month
    trend = np.interp(months, [month_index(x) for x in ("2013-01", "2022-06", "2023-06", "2025-12")],
                      [1.0, 1.04, 0.94, 0.93])
    fte = np.maximum(smooth, 1) * level[:, None] * trend[None, :] / HOURS_PER_FTE_MONTH
    fte[geo.noe, :] = 25.0  # NOE: about 25 FTE (Proba)
    fte *= np.exp(rng.normal(0, 0.03, fte.shape))
    staff = np.maximum(1, np.round(fte)).astype(int)
    july = (months % 12) == 6
    holiday = np.where(july, 0.62, np.where((months % 12) == 11, 0.93, 1.0))
    agreed = np.round(fte * HOURS_PER_FTE_MONTH * holiday[None, :], 1)
    # sick leave: national level over time; July's share is high because agreed hours are low
    share = _interp_knots([
        ("2013-01", 0.070), ("2019-12", 0.072), ("2020-03", 0.080), ("2020-06", 0.060),
        ("2021-03", 0.052), ("2021-10", 0.066), ("2022-01", 0.098), ("2022-03", 0.096),
        ("2022-06", 0.076), ("2022-12", 0.092), ("2023-06", 0.078), ("2025-12", 0.081)])
    share = share * np.where(july, 1.3, 1.0)
    office_level = np.exp(rng.normal(0, 0.2, n_off))
    q = 0.17  # chance that an employee has some sick leave in a month
    sick_emp = rng.binomial(staff, q)
    mean_frac = np.clip(share[None, :] * office_level[:, None] / q, 0.02, 0.95)
    alpha = 1.5
    total = rng.gamma(np.maximum(sick_emp, 1e-9) * alpha, mean_frac / alpha)
    total = np.where(sick_emp == 0, 0.0, np.minimum(total, sick_emp))
    sick = np.round(total / staff * agreed * 2) / 2
    agreed = np.where(valid, agreed, np.nan)
    sick = np.where(valid, np.minimum(sick, agreed), np.nan)
    return {"agreed_hours": agreed, "sick_leave_hours": sick, "staff": staff}


def make_theta(geo: Geography, hr: dict, users: np.ndarray, tm: TrueModel, rng: np.random.Generator,
               nav_wide: bool = True):
    """True office contribution on the latent scale, before centring ([n_office, NT]).

    `nav_wide`: a Nav-wide change over time (a 2021 peak, a dip from 2023). It coincides with
    the labour-market cycle, so the model partly mistakes it for the labour market and the
    labour-market coefficients absorb it (realistic); the clean world leaves it out."""
    n_off = len(geo.office_ids)
    months = np.arange(T0, HORIZON + 1)
    years = (months - months[0]) // 12
    ny = years.max() + 1
    persistent = rng.normal(0, tm.office_sd, n_off)
    yearly = np.zeros((n_off, ny))
    for y in range(ny):
        prev = yearly[:, y - 1] if y else 0.0
        yearly[:, y] = 0.5 * prev + rng.normal(0, tm.office_year_sd * np.sqrt(1 - 0.25), n_off)
    monthly = rng.normal(0, tm.office_month_sd, (n_off, NT))
    with np.errstate(invalid="ignore", divide="ignore"):
        sick = hr["sick_leave_hours"] / hr["agreed_hours"]
        staffing = hr["agreed_hours"] / np.maximum(users, 1)
    sick = np.nan_to_num(sick, nan=0.08)
    staffing = np.nan_to_num(staffing, nan=4.6)
    nav = float(nav_wide) * 0.05 * np.exp(-(((months - month_index("2021-09")) / 6.0) ** 2)) - 0.03 * (months >= month_index("2023-01"))
    theta = (persistent[:, None] + yearly[:, years] + monthly
             + tm.sick_leave * (sick - 0.075) + tm.staffing * (staffing - 4.6) + nav[None, :])
    noe = geo.noe
    theta[noe] = tm.noe_effect + nav + rng.normal(0, tm.office_month_sd, NT)
    return theta, sick, staffing
