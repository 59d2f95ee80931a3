"""Labour-market programmes (tiltak) and the cuts in programme places from mid-2024.

A spell of a person with standard, situasjonsbestemt or spesielt tilpasset innsats can hold one
programme episode: it starts some months after the need assessment and lasts a few months (never
beyond the spell). Whether the person gets a place is decided with one uniform draw per spell,
compared with the probability of a place in the person's region in the month the programme
would start. Some regions cut their places from July 2024 by different amounts; a cut scales
that probability down. Because the same uniform decides both, the world knows each spell's
participation with and without the cut ("same random numbers, only the places differ"), and
with it the true effect of the cuts.

Participation works on the latent employability of the true model: a lock-in while in the
programme (`TrueModel.programme_lockin`) and a lasting gain after it (`programme_effect`) for
the rest of the spell and after it, until the person's next spell.

The draws come from their own random stream, so adding programmes leaves every other random
number of the world unchanged.
"""

from __future__ import annotations

import numpy as np

from .geography import T0, Geography
from .params import PROGRAMME_CUT_START, PROGRAMME_CUTS, PROGRAMMES
from .population import SIT, SPES, STD, Persons, Spells

# probability of a place (per spell) by decided group before any cut
P_PLACE = {STD: 0.12, SIT: 0.40, SPES: 0.45}


def region_cut(geo: Geography, cuts: dict | None = None) -> np.ndarray:
    """Cut share per region index (0 where the region keeps its places)."""
    cuts = PROGRAMME_CUTS if cuts is None else cuts
    return np.array([cuts.get(r, 0.0) for r in geo.region_ids])


PROGRAMME_GAIN_SHARE = 0.9


def assign_programmes(p: Persons, s: Spells, geo: Geography, rng: np.random.Generator, effect: float,
                      cuts: dict | None = None) -> None:
    """Add the programme episode of every spell to `s` (in place): prog_start (spell month
    offset, -1 if none), prog_len, prog_actual and prog_without_cut (participation with the
    places the world has, and had no region cut), prog_type and the person's region."""
    n = len(s)
    p_place = np.zeros(n)
    for g, q in P_PLACE.items():
        p_place[s.group == g] = q
    eligible_anywhere = (p_place > 0) & ~s.laid_off  # NOE's users are not offered programmes
    eligible = eligible_anywhere & (s.noe_from < 0)
    offset = s.undecided + rng.geometric(1 / 4.0, n) - 1
    length = 1 + rng.geometric(1 / 3.5, n)
    u = rng.random(n)
    kind = rng.integers(0, len(PROGRAMMES), n)
    possible = eligible & (offset < s.dur)
    start_month = s.start + offset
    # the region whose budget pays: that of the home office when the programme starts
    k = np.clip(start_month - T0, 0, geo.office_of_base.shape[1] - 1)
    region = geo.office_region[geo.office_of_base[p.base_at(s.person, start_month), k]]
    cut = np.where(start_month >= PROGRAMME_CUT_START, region_cut(geo, cuts)[region], 0.0)
    s.prog_without_cut = possible & (u < p_place)
    s.prog_actual = possible & (u < p_place * (1.0 - cut))
    # had NOE not existed: the same draw decides, within the spell's length without NOE
    dur_nn = s.dur_without_noe if s.dur_without_noe is not None else s.dur
    s.prog_without_noe = eligible_anywhere & (offset < dur_nn) & (u < p_place * (1.0 - cut))
    s.prog_start = np.where(s.prog_without_cut | s.prog_without_noe, offset, -1)
    s.prog_len = np.where(s.prog_without_cut, np.minimum(length, s.dur - offset), 0)
    s.prog_len_without_noe = np.where(s.prog_without_noe, np.minimum(length, dur_nn - offset), 0)
    s.prog_type = kind
    s.region = region
    # The calibration targets (outcomes by innsatsgruppe) are outcomes of a Nav with programmes,
    # so the employability drawn before programmes is lowered by the average gain a spell of its
    # group gets (a place with probability p, the gain for most of the months that count):
    # the world's outcomes stay where they were calibrated, and programmes still matter.
    s.e_perm = s.e_perm - np.where(eligible, p_place * PROGRAMME_GAIN_SHARE, 0.0) * effect


def programme_term(s: Spells, spell: np.ndarray, offset: np.ndarray, participates: np.ndarray,
                   lockin: float, effect: float, length: np.ndarray | None = None) -> np.ndarray:
    """Latent term of a programme for rows of `spell` at spell month `offset` (which may lie
    after the spell's end): the lock-in during the episode, the gain after it. `length`: the
    episode's length per spell (default: in the world as it is)."""
    a = s.prog_start[spell]
    end = a + (s.prog_len if length is None else length)[spell]
    during = participates & (offset >= a) & (offset < end)
    after = participates & (offset >= end)
    return lockin * during + effect * after


def in_programme(s: Spells, spell: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Stock rows (spell, spell month) in a programme in the world as it is."""
    a = s.prog_start[spell]
    return s.prog_actual[spell] & (offset >= a) & (offset < a + s.prog_len[spell])


def places_table(participants: np.ndarray, geo: Geography, months: np.ndarray, cuts: dict | None = None) -> dict[str, np.ndarray]:
    """Allocated places per region and month (what a budget letter says): the places the
    region's participants used in the first half of 2024 on average, scaled down by the cut
    from July 2024. `participants` is [region, month] over `months`."""
    base_idx = (months >= PROGRAMME_CUT_START - 6) & (months < PROGRAMME_CUT_START)
    base = participants[:, base_idx].mean(axis=1)
    cut = np.where(months[None, :] >= PROGRAMME_CUT_START, region_cut(geo, cuts)[:, None], 0.0)
    return {"allocated": np.round(base[:, None] * (1 - cut)), "cut": cut}


__all__ = ["assign_programmes", "programme_term", "in_programme", "places_table", "region_cut", "P_PLACE"]
