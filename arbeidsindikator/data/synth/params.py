"""Parameters of the synthetic Nav world: scales, calendar and the true model.

Months are integers internally: 0 is January 2017 (`month_index`). The world starts
before 2017 (a burn-in) so that the stock in January 2017 holds people who registered
earlier, exactly as a real extract would.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

FIRST_YEAR = 2017
STOCK_FIRST = 0  # 2017-01
STOCK_LAST = 95  # 2024-12
BURN_IN = -84  # spells may start from 2010-01
HORIZON = STOCK_LAST + 12  # hours are simulated to 2025-12 so 12-month outcomes exist


def month_date(m: int | np.ndarray):
    """Month index -> datetime64[D] (first day of month)."""
    m = np.asarray(m)
    return (np.datetime64("2017-01", "M") + m.astype("timedelta64[M]")).astype("datetime64[D]")


def month_index(d: str | dt.date) -> int:
    """'2023-07' / date -> month index."""
    if isinstance(d, str):
        y, mo = int(d[:4]), int(d[5:7])
    else:
        y, mo = d.year, d.month
    return (y - FIRST_YEAR) * 12 + (mo - 1)


# The 12 Nav regions with approximate shares of the follow-up stock. Møre og Romsdal is
# set so that about 12 600 of 300 000 users live there (Skjøstad's example).
REGIONS = (
    ("03", "Oslo", 0.140),
    ("31", "Øst-Viken", 0.110),
    ("33", "Vest-Viken", 0.120),
    ("34", "Innlandet", 0.070),
    ("38", "Vestfold og Telemark", 0.080),
    ("42", "Agder", 0.060),
    ("11", "Rogaland", 0.085),
    ("46", "Vestland", 0.110),
    ("15", "Møre og Romsdal", 0.048),
    ("50", "Trøndelag", 0.085),
    ("18", "Nordland", 0.050),
    ("54", "Troms og Finnmark", 0.048),
)
NOE_OFFICE = "4154"
NOE_REGION = "NOE"
NOE_PILOT_REGIONS = ("46", "50", "38")  # pilot from September 2022
NOE_PILOT_START = month_index("2022-09")
NOE_NATIONAL_START = month_index("2023-01")
YOUTH_GUARANTEE_START = month_index("2023-07")
PANDEMIC_START = month_index("2020-03")
# labour-market programmes (tiltak): places cut from July 2024 by these shares (others keep theirs)
PROGRAMMES = ("arbeidsforberedende", "opplaering", "lonnstilskudd", "oppfolging")
PROGRAMME_CUT_START = month_index("2024-07")
PROGRAMME_CUTS = {"03": 0.40, "31": 0.25, "46": 0.30, "15": 0.15, "18": 0.50, "42": 0.10}


@dataclass(frozen=True)
class Scale:
    name: str
    stock_per_month: int  # target average persons under follow-up per month
    offices: int
    commuting_regions: int
    chunk_persons: int = 150_000


SCALES = {
    "small": Scale("small", 2_500, 24, 12),
    "medium": Scale("medium", 30_000, 60, 40),
    "national": Scale("national", 300_000, 250, 160),
}


@dataclass(frozen=True)
class TrueModel:
    """The true data-generating model (latent employability scale).

    Monthly weekly-hours are banded on z = mu + eps, eps ~ N(0, 1) (an AR(1) over months):
    z < 0 no work; [0, K1) small part time; [K1, K2) long part time; >= K2 full time.
    'In work' (>= 19 hours a week) is z >= K1.
    """

    k1: float = 0.55
    k2: float = 1.1
    band_hours: tuple = ((3.0, 18.5), (19.5, 34.0), (34.0, 40.0))
    ar_rho: float = 0.85
    # reduced work capacity: more small part-time work (both thresholds shifted up)
    reduced_band_shift: float = 0.9
    intercept: float = 0.35
    # person characteristics
    age_peak: float = 38.0
    age_curv: float = 0.0009  # per year^2 below/above the peak
    male: float = 0.04
    education: dict = field(default_factory=lambda: {
        "grunnskole": -0.30, "videregaende": 0.0, "hoyere_kort": 0.20, "hoyere_lang": 0.30, "ukjent": -0.30})
    immigrant: dict = field(default_factory=lambda: {
        "norskfodt": 0.0, "vestlig": -0.05, "ikke_vestlig": -0.35, "ukjent": -0.30})
    health: float = -0.08  # per SD of the health problem index
    reduced_capacity: float = 0.0
    work_history: float = 0.16  # per 1000 hours worked in the 12 months before registration
    need: float = -0.05  # per SD of the (partly unobserved) need index
    # state terms (only in the latent; the stock itself does not depend on hours)
    in_stock: dict = field(default_factory=lambda: {
        "standard": -0.42, "situasjonsbestemt": -0.32, "spesielt_tilpasset": 0.22,
        "varig_tilpasset": -1.2, "sykmeldt_uten_arbeidsgiver": -0.3})
    after_exit_work: float = 0.75
    after_exit_other: float = -0.45
    laid_off_in_stock: float = 0.35
    months_since_reg: float = -0.006  # per month, up to 48
    inflow_effect: float = -0.18  # per SD of log inflow rate across commuting region-months
    # office contribution (theta), latent units
    office_sd: float = 0.17  # persistent office quality
    office_year_sd: float = 0.08  # office x year deviation (AR over years)
    office_month_sd: float = 0.02
    sick_leave: float = -0.60  # per unit share of hours on sick leave
    staffing: float = 0.020  # per agreed hour per user and month
    noe_effect: float = -0.04  # NOE relative to an average office
    # NOE keeps some jobseekers registered longer: with this probability a spell followed by
    # NOE lasts longer by 1 + a geometric number of months (mean noe_extension_months)
    noe_extension_prob: float = 0.30
    noe_extension_months: float = 3.0
    # labour-market programmes: lock-in while in the programme, lasting gain after it
    programme_lockin: float = -0.10
    programme_effect: float = 0.60
    # unobserved person traits correlated with the office (realistic mode only)
    unobserved_office_sd: float = 0.15
    unobserved_person_sd: float = 0.20
