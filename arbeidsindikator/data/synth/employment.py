"""Monthly hours worked, and the exact ground truth of the office contribution.

For each person, months from their first month in the stock (in the observation period)
to 12 months after their last are simulated. Weekly hours in a month are banded on a
latent z = mu + eps (see `TrueModel`), with eps a stationary AR(1) over months, N(0, 1)
in every month. mu holds the person's employability, their state (in follow-up, after an
exit to work or to something else), the local labour market and the dose D of office
contribution: theta of the office that followed the person in their latest month in the
stock before this month.

Because eps is N(0, 1) given the stock path, the expected weekly hours and the probability
of working at least 19 hours have closed forms, with and without the office doses. The
truth of an office-month is the average over its users of the difference: exactly "the
difference the office makes compared with an average office (theta = 0)".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter
from scipy.special import ndtr

from ..contract import INNSATSGRUPPE, WEEKS_PER_MONTH
from .geography import T0, Geography
from .params import HORIZON, STOCK_FIRST, STOCK_LAST, TrueModel
from .population import IKKE, VARIG, Persons, Spells, StockRows

OUTCOMES = ("atid3", "atid12", "jobb3", "jobb12")
_SQRT2PI = np.sqrt(2 * np.pi)


def _phi(x):
    return np.exp(-0.5 * x * x) / _SQRT2PI


def band_means(tm: TrueModel) -> np.ndarray:
    return np.array([(a + b) / 2 for a, b in tm.band_hours])


def expected_week_hours(mu: np.ndarray, tm: TrueModel, shift=0.0) -> tuple[np.ndarray, np.ndarray]:
    """E[weekly hours | mu] and its derivative in mu (`shift` moves both work thresholds)."""
    m1, m2, m3 = band_means(tm)
    k1, k2 = tm.k1 + shift, tm.k2 + shift
    c0, c1, c2 = ndtr(mu), ndtr(mu - k1), ndtr(mu - k2)
    f0, f1, f2 = _phi(mu), _phi(mu - k1), _phi(mu - k2)
    e = m1 * (c0 - c1) + m2 * (c1 - c2) + m3 * c2
    de = m1 * (f0 - f1) + m2 * (f1 - f2) + m3 * f2
    return e, de


def p_work(mu: np.ndarray, tm: TrueModel, shift=0.0) -> tuple[np.ndarray, np.ndarray]:
    """P(at least 19 hours a week | mu) and its derivative."""
    return ndtr(mu - tm.k1 - shift), _phi(mu - tm.k1 - shift)


def _ar1(n_rows: int, starts: np.ndarray, rho: float, rng: np.random.Generator) -> np.ndarray:
    """Stationary AR(1) N(0,1) series, restarted at each index in `starts` (sorted, starts[0]=0)."""
    xi = rng.standard_normal(n_rows)
    x = xi * np.sqrt(1 - rho * rho)
    x[starts] = xi[starts]  # stationary start
    y = lfilter([1.0], [1.0, -rho], x)
    # remove what leaked over from the previous person: y_true = y - rho^(k+1) * y[start-1]
    seg = np.searchsorted(starts, np.arange(n_rows), side="right") - 1
    k = np.arange(n_rows) - starts[seg]
    carry = np.zeros(len(starts))
    carry[1:] = y[starts[1:] - 1]
    return y - rho ** (k + 1) * carry[seg]


@dataclass
class ChunkResult:
    emp_person: np.ndarray
    emp_month: np.ndarray
    emp_hours: np.ndarray
    # per stock row with month in the observation period (aligned with `stock_index`)
    stock_index: np.ndarray  # indices into the StockRows given
    expected_with: dict  # outcome -> array (E[Y] with the offices' contributions)
    expected_without: dict  # outcome -> array (E[Y] with an average office everywhere)
    derivative: dict  # outcome -> dE[Y]/d(theta) for a persistent shift


def simulate_chunk(p: Persons, s: Spells, rows: StockRows, theta: np.ndarray, lm_z: np.ndarray,
                   geo: Geography, tm: TrueModel, rng: np.random.Generator) -> ChunkResult:
    # only rows in the observation period (stock rows are sorted by person, then month)
    sel = np.flatnonzero((rows.month >= STOCK_FIRST) & (rows.month <= STOCK_LAST))
    person = rows.person[sel]
    month = rows.month[sel]
    brk = np.flatnonzero(np.r_[True, person[1:] != person[:-1]])
    persons_u = person[brk]
    w0 = month[brk]
    last = np.maximum.reduceat(month, brk)
    w1 = np.minimum(last + 12, HORIZON)
    length = w1 - w0 + 1
    pos0 = np.cumsum(length) - length
    n = int(length.sum())
    wp = np.repeat(persons_u, length)
    wm = np.repeat(w0, length) + (np.arange(n) - np.repeat(pos0, length))
    # place stock rows in the window
    pidx = np.repeat(np.arange(len(persons_u)), np.diff(np.r_[brk, len(sel)]))
    j = pos0[pidx] + (month - w0[pidx])
    in_stock = np.zeros(n, bool)
    in_stock[j] = True
    spell_w = np.full(n, -1)
    spell_w[j] = rows.spell[sel]
    theta_w = np.zeros(n)
    theta_w[j] = theta[rows.office[sel], month - T0]
    grp = rows.group[sel].copy()
    undecided = grp == IKKE
    grp[undecided] = s.group[rows.spell[sel]][undecided]  # latent uses the decided need
    in_stock_terms = np.array([tm.in_stock.get(g, 0.0) for g in INNSATSGRUPPE])
    state_w = np.zeros(n)
    sp = rows.spell[sel]
    state_w[j] = (in_stock_terms[grp] + tm.laid_off_in_stock * s.laid_off[sp]
                  + tm.months_since_reg * np.minimum(rows.offset[sel], 48))
    # forward fill: the latest stock row at or before each window row (never crosses persons,
    # because every person's window starts with a stock row)
    idx = np.where(in_stock, np.arange(n), -1)
    latest = np.maximum.accumulate(idx)
    latest_spell = spell_w[latest]
    # after the spell has ended: state by the exit type of the latest spell
    after = ~in_stock
    exit_term = np.where(s.exit_work[latest_spell], tm.after_exit_work, tm.after_exit_other)
    state_w[after] = exit_term[after]
    e_w = s.e_perm[latest_spell]
    # dose: theta in the latest stock month strictly before this month
    prev = np.r_[-1, latest[:-1]]
    first_row = np.zeros(n, bool)
    first_row[pos0] = True
    dose = np.where(first_row, 0.0, theta_w[np.maximum(prev, 0)])
    cr = geo.base_cr[p.base[wp]]
    # bounded: the 20-fold inflow spike of March 2020 must not wipe out all work
    lm = tm.inflow_effect * 1.5 * np.tanh(lm_z[cr, wm - T0] / 1.5)
    mu0 = e_w + state_w + lm
    mu1 = mu0 + dose
    # realised hours
    eps = _ar1(n, pos0, tm.ar_rho, rng)
    z = mu1 + eps
    lo = np.array([b[0] for b in tm.band_hours])
    hi = np.array([b[1] for b in tm.band_hours])
    shift = tm.reduced_band_shift * s.reduced[latest_spell]
    band = np.where(z < 0, -1, np.where(z < tm.k1 + shift, 0, np.where(z < tm.k2 + shift, 1, 2)))
    u = rng.random(n)
    bsafe = np.maximum(band, 0)
    weekly = np.where(band < 0, 0.0, lo[bsafe] + u * (hi[bsafe] - lo[bsafe]))
    monthly = np.round(weekly * WEEKS_PER_MONTH, 1)
    # expected outcomes per window month, with and without the office doses
    eh1, dh1 = expected_week_hours(mu1, tm, shift)
    eh0, _ = expected_week_hours(mu0, tm, shift)
    pw1, dp1 = p_work(mu1, tm, shift)
    pw0, _ = p_work(mu0, tm, shift)
    obs = sel  # stock rows of the observation period, window index j
    exp_with, exp_without, deriv = {}, {}, {}
    for name, a1, a0, d1, k, avg in (
        ("atid3", eh1, eh0, dh1, 3, True), ("atid12", eh1, eh0, dh1, 12, True),
        ("jobb3", pw1, pw0, dp1, 3, False), ("jobb12", pw1, pw0, dp1, 12, False),
    ):
        if avg:
            c1, c0, cd = (np.r_[0.0, np.cumsum(a)] for a in (a1, a0, d1))
            exp_with[name] = (c1[j + k + 1] - c1[j + 1]) / k
            exp_without[name] = (c0[j + k + 1] - c0[j + 1]) / k
            deriv[name] = (cd[j + k + 1] - cd[j + 1]) / k
        else:
            exp_with[name], exp_without[name], deriv[name] = a1[j + k], a0[j + k], d1[j + k]
    keep = (monthly > 0) & (wm >= STOCK_FIRST)
    return ChunkResult(wp[keep], wm[keep], monthly[keep], obs, exp_with, exp_without, deriv)


def indicator_population(rows: StockRows, index: np.ndarray) -> np.ndarray:
    """Person-months that count in the indicator: everyone except varig tilpasset innsats."""
    return rows.group[index] != VARIG
