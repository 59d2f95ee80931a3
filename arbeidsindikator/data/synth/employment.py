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
from .programmes import programme_term

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
    expected_no_cut: dict  # outcome -> E[Y] had no region cut its programme places
    expected_no_noe: dict  # outcome -> E[Y] had NOE not existed
    noe_person: np.ndarray  # hours had NOE not existed, for persons with a spell at NOE
    noe_month: np.ndarray
    noe_hours: np.ndarray


def simulate_chunk(p: Persons, s: Spells, rows: StockRows, theta: np.ndarray, lm_z: np.ndarray,
                   geo: Geography, tm: TrueModel, rng: np.random.Generator) -> ChunkResult:
    # only rows in the observation period (stock rows are sorted by person, then month)
    # rows from the observation period on, including months after the extract's end (rows
    # expanded to HORIZON): they carry the registration state of the months outcomes look at
    sel = np.flatnonzero(rows.month >= STOCK_FIRST)
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
    cr = geo.base_cr[p.base_at(wp, wm)]  # where the person lives that month
    # bounded: the 20-fold inflow spike of March 2020 must not wipe out all work
    lm = tm.inflow_effect * 1.5 * np.tanh(lm_z[cr, wm - T0] / 1.5)
    # programmes: spell month of every window row (after the spell's end too)
    off_w = wm - s.start[latest_spell]
    prog = programme_term(s, latest_spell, off_w, s.prog_actual[latest_spell], tm.programme_lockin, tm.programme_effect)
    prog_nc = programme_term(s, latest_spell, off_w, s.prog_without_cut[latest_spell], tm.programme_lockin,
                             tm.programme_effect)
    mu0 = e_w + state_w + lm + prog
    mu1 = mu0 + dose
    mu_nc = mu1 - prog + prog_nc  # had no region cut its programme places
    prog_nn = programme_term(s, latest_spell, off_w, s.prog_without_noe[latest_spell], tm.programme_lockin,
                             tm.programme_effect, s.prog_len_without_noe)
    mu_nn, noe_person = _without_noe(p, s, rows, sel, j, n, pos0, wp, latest_spell, off_w, exit_term,
                                     in_stock_terms, theta, e_w + lm + prog_nn, tm)
    # realised hours
    eps = _ar1(n, pos0, tm.ar_rho, rng)
    u = rng.random(n)
    shift = tm.reduced_band_shift * s.reduced[latest_spell]
    monthly = _monthly_hours(mu1 + eps, u, shift, tm)
    # the same persons' hours had NOE not existed (same random numbers: only the routing differs)
    nn_rows = noe_person & (wm >= STOCK_FIRST)
    monthly_nn = _monthly_hours(mu_nn[nn_rows] + eps[nn_rows], u[nn_rows], shift[nn_rows], tm)
    # expected outcomes per window month: with the offices' doses (the world as it is), with an
    # average office everywhere, without the programme cuts, and without NOE
    in_extract = rows.month[sel] <= STOCK_LAST
    obs, j = sel[in_extract], j[in_extract]  # the stock rows the extract holds
    scen = {"with": mu1, "without": mu0, "no_cut": mu_nc, "no_noe": mu_nn}
    eh = {k: expected_week_hours(m, tm, shift) for k, m in scen.items()}
    pw = {k: p_work(m, tm, shift) for k, m in scen.items()}
    expected = {k: {} for k in scen}
    deriv = {}
    for name, k, avg in (("atid3", 3, True), ("atid12", 12, True), ("jobb3", 3, False), ("jobb12", 12, False)):
        src = eh if avg else pw
        for sc_name in scen:
            expected[sc_name][name] = _forward(src[sc_name][0], j, k, avg)
        deriv[name] = _forward(src["with"][1], j, k, avg)
    keep = (monthly > 0) & (wm >= STOCK_FIRST)
    keep_nn = monthly_nn > 0
    return ChunkResult(wp[keep], wm[keep], monthly[keep], obs, expected["with"], expected["without"], deriv,
                       expected["no_cut"], expected["no_noe"], wp[nn_rows][keep_nn], wm[nn_rows][keep_nn],
                       monthly_nn[keep_nn])


def _forward(a: np.ndarray, j: np.ndarray, k: int, average: bool) -> np.ndarray:
    """The outcome of stock row j: the mean of `a` over the k months after it, or its value k
    months later."""
    if not average:
        return a[j + k]
    c = np.r_[0.0, np.cumsum(a)]
    return (c[j + k + 1] - c[j + 1]) / k


def _monthly_hours(z: np.ndarray, u: np.ndarray, shift: np.ndarray, tm: TrueModel) -> np.ndarray:
    """Monthly hours from the latent z: the band, and a uniform place within it."""
    lo = np.array([b[0] for b in tm.band_hours])
    hi = np.array([b[1] for b in tm.band_hours])
    band = np.where(z < 0, -1, np.where(z < tm.k1 + shift, 0, np.where(z < tm.k2 + shift, 1, 2)))
    bsafe = np.maximum(band, 0)
    weekly = np.where(band < 0, 0.0, lo[bsafe] + u * (hi[bsafe] - lo[bsafe]))
    return np.round(weekly * WEEKS_PER_MONTH, 1)


def _without_noe(p, s, rows, sel, j, n, pos0, wp, latest_spell, off_w, exit_term, in_stock_terms, theta,
                 common, tm):
    """The latent mean of every window row had NOE not existed: spells keep their length without
    NOE's extension, users stay at their home office with their decided group (no reassessment
    after NOE), the dose is the home office's contribution, and they get the programme place a local
    office would have offered (in `common`). Also returns which rows belong to persons with a
    spell at NOE (the only ones whose outcomes can differ)."""
    sp = rows.spell[sel]
    has_noe = s.noe_from[latest_spell] >= 0
    ended = has_noe & (off_w >= s.dur_without_noe[latest_spell])  # beyond the spell's end without NOE
    in_stock = np.zeros(n, bool)
    in_stock[j] = True
    in_stock_nn = in_stock & ~ended
    state = np.zeros(n)
    state[j] = (in_stock_terms[s.group[sp]] + tm.laid_off_in_stock * s.laid_off[sp]
                + tm.months_since_reg * np.minimum(rows.offset[sel], 48))
    state = np.where(in_stock_nn, state, exit_term)
    theta_home = np.zeros(n)
    theta_home[j] = theta[rows.home_office[sel], rows.month[sel] - T0]
    latest = np.maximum.accumulate(np.where(in_stock_nn, np.arange(n), -1))
    prev = np.r_[-1, latest[:-1]]
    person_first = np.repeat(pos0, np.diff(np.r_[pos0, n]))
    dose = np.where(prev >= person_first, theta_home[np.maximum(prev, 0)], 0.0)
    noe_person = np.zeros(n, bool)
    touched = np.zeros(len(p.birth), bool)
    touched[s.person[s.noe_from >= 0]] = True
    noe_person = touched[wp]
    return common + state + dose, noe_person


def indicator_population(rows: StockRows, index: np.ndarray) -> np.ndarray:
    """Person-months that count in the indicator: everyone except varig tilpasset innsats."""
    return rows.group[index] != VARIG
