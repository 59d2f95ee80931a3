"""Persons, registration spells and the monthly follow-up stock.

A person registers (a spell starts), is followed up by the office of their municipality
(or by NOE), and leaves the stock after a number of months, to work or to something else;
some register again later. All randomness of the stock lives in `Spells`, so the stock can
be expanded again, identically, chunk by chunk of persons.

The stock path does not depend on the month-to-month hours shocks of the employment
generator (it depends on persistent traits and the labour market only). That keeps the
ground truth exact: expected outcomes given the path have a closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contract import BENEFIT, EDUCATION, IMMIGRANT_CATEGORY, INNSATSGRUPPE
from .geography import T0, Geography
from .params import (
    BURN_IN, NOE_NATIONAL_START, NOE_PILOT_REGIONS, NOE_PILOT_START, PANDEMIC_START,
    STOCK_FIRST, STOCK_LAST, YOUTH_GUARANTEE_START, Scale, TrueModel, month_index,
)

G = {g: i for i, g in enumerate(INNSATSGRUPPE)}
B = {b: i for i, b in enumerate(BENEFIT)}
STD, SIT, SPES, VARIG, IKKE, SYKM = (G[g] for g in INNSATSGRUPPE)
# mean spell length in months by decided group, and the share of spells ending in work
MEAN_DURATION = {STD: 6.0, SIT: 11.0, SPES: 17.0, VARIG: 30.0, SYKM: 7.0}


@dataclass
class Persons:
    birth: np.ndarray  # month index
    male: np.ndarray  # bool
    education: np.ndarray  # code into EDUCATION
    immigrant: np.ndarray  # code into IMMIGRANT_CATEGORY
    base: np.ndarray  # base municipality index
    health: np.ndarray  # health problem index (higher = worse), partly observed
    need_noise: np.ndarray  # unobserved part of the need index
    unobserved: np.ndarray  # realistic mode: trait correlated with the office (0 in clean mode)
    moved_at: np.ndarray | None = None  # month index of the person's move (NEVER: no move)
    base_after: np.ndarray | None = None  # base municipality from that month on

    def base_at(self, person: np.ndarray, month: np.ndarray) -> np.ndarray:
        """The base municipality person lives in in month (before or after their move)."""
        if self.moved_at is None:
            return self.base[person]
        return np.where(month >= self.moved_at[person], self.base_after[person], self.base[person])


@dataclass
class Spells:
    person: np.ndarray
    start: np.ndarray
    dur: np.ndarray
    group: np.ndarray  # decided group
    undecided: np.ndarray  # months as 'ikke vurdert' at the start
    exit_work: np.ndarray
    benefit: np.ndarray
    laid_off: np.ndarray
    reduced: np.ndarray
    h12: np.ndarray
    h24: np.ndarray
    noe_from: np.ndarray  # spell month (offset) of transfer to NOE, -1 if never
    noe_until: np.ndarray  # offset of the first month back at the local office
    group_after_noe: np.ndarray
    e_perm: np.ndarray  # permanent latent employability during this spell (true model)
    # set after the population is drawn (world.py): NOE's extension and the programmes
    dur_without_noe: np.ndarray | None = None  # the spell's length had NOE not existed
    prog_start: np.ndarray | None = None  # spell month of the programme episode, -1 if none
    prog_len: np.ndarray | None = None
    prog_actual: np.ndarray | None = None  # in a programme, with the places the world has
    prog_without_cut: np.ndarray | None = None  # ... had no region cut its places
    prog_without_noe: np.ndarray | None = None  # ... had NOE not existed (NOE's users are not offered one)
    prog_len_without_noe: np.ndarray | None = None  # the episode within the spell's length without NOE
    prog_type: np.ndarray | None = None
    region: np.ndarray | None = None  # region paying for the programme

    def __len__(self):
        return len(self.person)

    def take(self, idx: np.ndarray) -> "Spells":
        return Spells(**{k: None if v is None else v[idx] for k, v in self.__dict__.items()})


def _logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


def _age_effect(age: np.ndarray, tm: TrueModel) -> np.ndarray:
    return -tm.age_curv * (age - tm.age_peak) ** 2 - 0.4 * (age >= 62)


def make_persons(n: int, first_start: np.ndarray, geo: Geography, clean: bool, tm: TrueModel,
                 rng: np.random.Generator) -> Persons:
    base = rng.choice(len(geo.base_weight), size=n, p=geo.base_weight)
    urban = geo.base_urban[base]
    age0 = np.clip(17 + rng.gamma(2.2, 8.5, n), 17, 66)
    birth = first_start - np.floor(age0 * 12).astype(int) - rng.integers(0, 12, n)
    male = rng.random(n) < 0.53
    # country background: more non-Western immigrants in urban areas
    p_iv = 0.10 + 0.25 * urban
    u = rng.random(n)
    imm = np.where(u < p_iv, 2, np.where(u < p_iv + 0.08, 1, np.where(u < p_iv + 0.10, 3, 0)))
    # education: 5 levels; unknown mostly among immigrants
    edu_p = np.array([0.36, 0.38, 0.14, 0.08, 0.04])
    edu = rng.choice(5, size=n, p=edu_p)
    unknown = (imm >= 2) & (rng.random(n) < 0.35)
    edu = np.where(unknown, 4, edu)
    health = rng.normal(0, 1, n) + 0.025 * (age0 - 38)
    need_noise = rng.normal(0, 1, n)
    if clean:
        unobserved = np.zeros(n)
    else:
        unobserved = tm.unobserved_office_sd * geo.base_office_delta[base] + rng.normal(0, tm.unobserved_person_sd, n)
    return Persons(birth, male, edu, imm, base, health, need_noise, unobserved)


# Moving house. Each person moves at most once, from their first registration on, with a monthly
# hazard that falls with age (in Norway about 4 % of the population move to another municipality
# a year, 10 % of those in their twenties: SSB, flyttinger). Half of the moves stay within the
# region. In the realistic world the hazard also rises mildly with the person's unobserved
# employability (x exp(MOVE_UNOBSERVED x trait): +45 % / -31 % at one SD of the trait), so movers are a
# selected group there; where they move is unrelated to any office's contribution.
NEVER = 10**6
MOVE_HAZARD = 0.005  # per month, ages 30-49
MOVE_AGE_FACTOR = ((25, 2.2), (30, 1.6), (50, 1.0), (200, 0.45))  # (below this age, factor)
MOVE_WITHIN_REGION = 0.5
MOVE_UNOBSERVED = 1.5


def draw_moves(p: Persons, first_start: np.ndarray, geo: Geography, rng: np.random.Generator) -> None:
    """Set `moved_at` and `base_after` of every person (in place)."""
    n = len(p.base)
    age = (first_start - p.birth) / 12.0
    factor = np.select([age < a for a, _ in MOVE_AGE_FACTOR], [f for _, f in MOVE_AGE_FACTOR])
    hazard = np.clip(MOVE_HAZARD * factor * np.exp(MOVE_UNOBSERVED * p.unobserved), 1e-6, 0.5)
    moved_at = first_start + rng.geometric(hazard)
    anywhere = rng.choice(len(geo.base_weight), size=n, p=geo.base_weight)
    local = rng.random(n) < MOVE_WITHIN_REGION
    dest = anywhere.copy()
    for r in np.unique(geo.base_region):  # a move within the region: drawn by the region's weights
        bases = np.flatnonzero(geo.base_region == r)
        who = np.flatnonzero(local & (geo.base_region[p.base] == r))
        w = geo.base_weight[bases]
        dest[who] = rng.choice(bases, size=len(who), p=w / w.sum())
    stays = dest == p.base  # drew their own municipality: no move
    p.moved_at = np.where(stays, NEVER, moved_at)
    p.base_after = np.where(stays, p.base, dest)


def _spell_attributes(p: Persons, person: np.ndarray, start: np.ndarray, laid_off_wave: np.ndarray,
                      lm_z: np.ndarray, geo: Geography, tm: TrueModel, rng: np.random.Generator) -> Spells:
    """Everything about a spell that is decided when it starts."""
    n = len(person)
    age = (start - p.birth[person]) / 12.0
    imm = p.immigrant[person]
    edu = p.education[person]
    health = p.health[person] + rng.normal(0, 0.5, n)
    # work before registration: more for healthy, educated, prime-aged
    work_score = 0.6 - 0.5 * health + 0.25 * (edu >= 2) - 0.4 * (imm == 2) - 0.6 * (age < 21) + rng.normal(0, 0.8, n)
    worked = _logistic(1.2 * work_score) > rng.random(n)
    h12 = np.where(worked, 1950 * rng.beta(2.0, 1.4, n) * _logistic(work_score), 0.0)
    h24 = h12 + np.where(worked | (rng.random(n) < 0.3), 1950 * rng.beta(2.0, 1.6, n) * _logistic(work_score), 0.0)
    h12 = np.where(laid_off_wave, np.maximum(h12, 1200 + 600 * rng.random(n)), h12)
    h24 = np.maximum(h24, np.where(laid_off_wave, h12 + 1000, h12))
    h12, h24 = np.round(h12, 1), np.round(h24, 1)
    # need index -> innsatsgruppe; partly unobserved (need_noise), which is why
    # innsatsgruppe is not in the indicator model but its drivers are
    need = (0.75 * health - 0.45 * (h12 / 1000) + 0.3 * (edu == 0) + 0.3 * (edu == 4) + 0.25 * (imm == 2)
            + 0.5 * p.need_noise[person] + rng.normal(0, 0.35, n))
    group = np.select([need < 0.1, need < 0.85, need < 1.75], [STD, SIT, SPES], VARIG)
    sick = (~laid_off_wave) & (h12 > 900) & (health > 0.4) & (rng.random(n) < 0.35)
    group = np.where(sick, SYKM, group)
    group = np.where(laid_off_wave, STD, group)
    reduced = np.select(
        [group == SPES, group == VARIG, group == SIT, group == SYKM],
        [rng.random(n) < 0.85, rng.random(n) < 0.95, rng.random(n) < 0.12, rng.random(n) < 0.35],
        rng.random(n) < 0.02)
    # temporary lay-offs: common among new standard users with recent work, more in winter
    # and in the long tail of the pandemic (Proba: 34 % of new spells in 2021, 22 % in 2023)
    tail = (start >= PANDEMIC_START + 3) & (start < month_index("2022-01"))
    p_laid = 0.45 * (1 + 0.3 * ((start % 12) < 3)) * np.where(tail, 1.6, 1.0)
    laid_off = laid_off_wave | ((group == STD) & (h12 > 700) & (rng.random(n) < p_laid))
    # permanent employability of the person during the spell (the true model's mu without
    # state, labour market and office terms)
    e = (tm.intercept + _age_effect(age, tm) + tm.male * p.male[person]
         + np.array(list(tm.education.values()))[edu] + np.array(list(tm.immigrant.values()))[imm]
         + tm.health * health + tm.reduced_capacity * reduced + tm.work_history * (h12 / 1000)
         + tm.need * np.clip(need, -2, 4) + p.unobserved[person])
    # duration and exit: better prospects and a better labour market mean shorter spells
    mean_dur = np.vectorize(MEAN_DURATION.get)(group).astype(float)
    mean_dur = mean_dur * np.exp(-0.35 * (e - 0.0) + 0.12 * lm_z)
    mean_dur = np.where(laid_off_wave, 2.5, np.where(laid_off, 4.0, mean_dur))
    dur = 1 + rng.geometric(np.clip(1.0 / np.maximum(mean_dur, 1.01), 0.01, 1.0), n) - 1
    exit_work = rng.random(n) < np.where(laid_off, 0.85, _logistic(1.3 * e + 1.0 - 1.2 * (group == VARIG)))
    undecided = np.where(group == SYKM, 0, np.select([rng.random(n) < 0.55, rng.random(n) < 0.33], [1, 2], 0))
    # benefit
    u = rng.random(n)
    benefit = np.select(
        [laid_off, group == SYKM,
         (group == SPES) | (group == VARIG),
         (group == STD) & (h12 > 700),
         (group == SIT)],
        [np.full(n, B["dagpenger"]),
         np.where(u < 0.85, B["annen"], B["ingen"]),
         np.where(u < 0.72, B["aap"], np.where(u < 0.88, B["annen"], B["ingen"])),
         np.where(u < 0.65, B["dagpenger"], B["ingen"]),
         np.where(u < 0.2, B["dagpenger"], np.where(u < 0.45, B["annen"], B["ingen"]))],
        np.where(u < 0.15, B["annen"], B["ingen"]))
    # the national follow-up unit: new standard users aged 30-59 without exceptions
    decided = start + undecided
    region = geo.base_region[p.base_at(person, decided)]
    pilot = np.isin(np.array(geo.region_ids)[region], NOE_PILOT_REGIONS)
    open_ = (decided >= NOE_NATIONAL_START) | (pilot & (decided >= NOE_PILOT_START))
    age_dec = (decided - p.birth[person]) / 12.0
    exempt = rng.random(n) < 0.20  # activity requirement, business start, digital opt-out, language
    to_noe = ((group == STD) & open_ & (age_dec >= 30) & (age_dec < 60) & ~exempt & ~laid_off
              & (dur > undecided) & (rng.random(n) < 0.65))
    noe_from = np.where(to_noe, undecided, -1)
    stay = rng.random(n) < 0.25  # the few who stay in NOE beyond the reassessment
    noe_until = np.where(to_noe, np.where(stay, dur, undecided + 5 + rng.integers(0, 2, n)), -1)
    group_after_noe = np.where(rng.random(n) < 0.7, SIT, STD)
    return Spells(person, start, dur, group, undecided, exit_work, benefit, laid_off, reduced,
                  h12, h24, noe_from, noe_until, group_after_noe, e)


def make_population(scale: Scale, geo: Geography, lm_z: np.ndarray, clean: bool, tm: TrueModel,
                    rng: np.random.Generator, moves: np.random.Generator | None = None) -> tuple[Persons, Spells]:
    """Generate persons and all their spells from BURN_IN to the end of the stock. `moves`: the
    random stream of the persons' moves (None: nobody moves)."""
    months = np.arange(BURN_IN, STOCK_LAST + 1)
    nat_lm = lm_z.mean(axis=0)[months - T0]
    season = 1 + 0.15 * np.cos(2 * np.pi * ((months % 12) - 0.5) / 12)  # more registrations in winter
    # first spells per month; the constant is calibrated so the average stock hits the target
    lam = scale.stock_per_month * 0.0755 * season * np.exp(0.15 * nat_lm)
    n_first = rng.poisson(lam)
    first_start = np.repeat(months, n_first)
    # the pandemic: a wave of laid-off users with standard innsats in March-May 2020
    wave_n = rng.poisson(scale.stock_per_month * np.array([0.55, 0.25, 0.08]))
    wave_start = np.repeat(PANDEMIC_START + np.arange(3), wave_n)
    starts = np.concatenate([first_start, wave_start])
    wave = np.concatenate([np.zeros(len(first_start), bool), np.ones(len(wave_start), bool)])
    persons = make_persons(len(starts), starts, geo, clean, tm, rng)
    if moves is not None:
        draw_moves(persons, starts, geo, moves)
    person = np.arange(len(starts))

    def lm_at(person, start):
        cr = geo.base_cr[persons.base_at(person, start)]
        return lm_z[cr, np.clip(start, T0, None) - T0]

    spells = [_spell_attributes(persons, person, starts, wave, lm_at(person, starts), geo, tm, rng)]
    # repeat registrations after a gap
    prev = spells[0]
    for p_again in (0.35, 0.30):
        again = rng.random(len(prev)) < p_again * np.where(prev.exit_work, 0.8, 1.3)
        nxt = prev.start + prev.dur + 1 + rng.geometric(1 / 9.0, len(prev))
        keep = again & (nxt <= STOCK_LAST)
        if not keep.any():
            break
        who, st = prev.person[keep], nxt[keep]
        prev = _spell_attributes(persons, who, st, np.zeros(len(who), bool), lm_at(who, st), geo, tm, rng)
        spells.append(prev)
    allsp = Spells(**{k: np.concatenate([s.__dict__[k] for s in spells]) for k in spells[0].__dict__
                      if spells[0].__dict__[k] is not None})
    # keep only persons who are in the stock at least once in the observation period
    end = allsp.start + allsp.dur - 1
    in_period = (end >= STOCK_FIRST) & (allsp.start <= STOCK_LAST)
    keep_person = np.zeros(len(starts), bool)
    keep_person[allsp.person[in_period]] = True
    new_id = np.cumsum(keep_person) - 1
    persons = Persons(**{k: None if v is None else v[keep_person] for k, v in persons.__dict__.items()})
    allsp = allsp.take(np.flatnonzero(keep_person[allsp.person]))
    allsp.person = new_id[allsp.person]
    order = np.lexsort((allsp.start, allsp.person))
    return persons, allsp.take(order)


def extend_noe_spells(s: Spells, tm: TrueModel, rng: np.random.Generator) -> None:
    """NOE keeps some jobseekers registered longer (in place). The spell's length without NOE is
    kept in `dur_without_noe`; an extension never closes the two-month gap before the
    person's next spell, so spells stay apart in the register."""
    n = len(s)
    ext = np.where(rng.random(n) < tm.noe_extension_prob,
                   rng.geometric(1.0 / max(tm.noe_extension_months, 1.0), n), 0)
    ext = np.where(s.noe_from >= 0, ext, 0)
    nxt = np.full(n, np.iinfo(np.int64).max // 4)
    same = s.person[1:] == s.person[:-1]  # spells are sorted by person and start
    nxt[:-1][same] = s.start[1:][same]
    ext = np.clip(np.minimum(ext, nxt - (s.start + s.dur) - 2), 0, None)
    s.dur_without_noe = s.dur.copy()
    stays = (s.noe_from >= 0) & (s.noe_until == s.dur)
    s.dur = s.dur + ext
    s.noe_until = np.where(stays, s.dur, s.noe_until)


RETIREMENT_AGE = 67


@dataclass
class StockRows:
    """Expanded stock rows (all months of the spells, including burn-in months)."""

    spell: np.ndarray
    person: np.ndarray
    month: np.ndarray
    offset: np.ndarray  # months since registration
    office: np.ndarray
    home_office: np.ndarray
    muni: np.ndarray
    group: np.ndarray
    benefit: np.ndarray
    youth: np.ndarray


def expand_stock(p: Persons, s: Spells, geo: Geography, last: int = STOCK_LAST) -> StockRows:
    """One row per spell month up to month `last` (deterministic given the spells). The
    employment generator expands beyond the extract's end (to HORIZON), so that a person
    still registered in December 2024 is still registered in the months their outcomes look
    at, instead of appearing to have left when the extract ends."""
    spell = np.repeat(np.arange(len(s)), s.dur)
    first = np.cumsum(s.dur) - s.dur
    offset = np.arange(len(spell)) - np.repeat(first, s.dur)
    month = s.start[spell] + offset
    # the stock ends with the extract; work-oriented follow-up ends at 67, the retirement age
    keep = (month >= T0) & (month <= last) & (month - p.birth[s.person[spell]] < RETIREMENT_AGE * 12)
    spell, offset, month = spell[keep], offset[keep], month[keep]
    person = s.person[spell]
    base = p.base_at(person, month)
    k = np.clip(month - T0, 0, geo.office_of_base.shape[1] - 1)
    home = geo.office_of_base[base, k]
    muni = geo.muni_of_base[base, k]
    in_noe = (offset >= s.noe_from[spell]) & (offset < s.noe_until[spell]) & (s.noe_from[spell] >= 0)
    after_noe = (s.noe_from[spell] >= 0) & (offset >= s.noe_until[spell])
    office = np.where(in_noe, geo.noe, home)
    group = s.group[spell]
    group = np.where(after_noe, s.group_after_noe[spell], group)
    group = np.where(offset < s.undecided[spell], IKKE, group)
    benefit = s.benefit[spell]
    benefit = np.where((benefit == B["dagpenger"]) & (offset >= 24), B["ingen"], benefit)
    age = (month - p.birth[person]) / 12.0
    youth = (month >= YOUTH_GUARANTEE_START) & (age >= 16) & (age < 30) & np.isin(group, [SIT, SPES])
    return StockRows(spell, person, month, offset, office, home, muni, group, benefit, youth)


def stock_counts(rows: StockRows, n_office: int, nt: int, observed_only: bool = True):
    """Persons per (home office, month): all users, and situasjonsbestemt + spesielt tilpasset."""
    k = rows.month - T0
    all_ = np.bincount(rows.home_office * nt + k, minlength=n_office * nt).reshape(n_office, nt)
    sel = np.isin(rows.group, [SIT, SPES])
    ss = np.bincount(rows.home_office[sel] * nt + k[sel], minlength=n_office * nt).reshape(n_office, nt)
    noe = np.bincount(k[rows.office == n_office - 1], minlength=nt)
    return all_, ss, noe


__all__ = ["Persons", "Spells", "StockRows", "make_population", "extend_noe_spells", "expand_stock", "stock_counts",
           "EDUCATION", "IMMIGRANT_CATEGORY", "month_index"]
