"""Geography and labour market of the synthetic world.

Regions -> commuting regions -> offices -> municipalities, with the structural changes a
real extract shows: office mergers in 2020 (the municipality reform), an office split in
2021 and municipality mergers in 2020. Everything is kept as month-indexed lookup arrays
for the generator and compressed to valid-from/valid-to rows for the contract tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import BURN_IN, HORIZON, NOE_OFFICE, REGIONS, Scale, month_index

T0 = BURN_IN
NT = HORIZON - BURN_IN + 1  # months in the lookup arrays
REFORM = month_index("2020-01")
SPLIT = month_index("2021-01")


@dataclass
class Geography:
    region_ids: list[str]
    region_names: list[str]
    # offices (index = office code; the last one is NOE)
    office_ids: list[str]
    office_names: list[str]
    office_region: np.ndarray  # region index, -1 for NOE
    office_from: np.ndarray  # month index
    office_to: np.ndarray  # month index, HORIZON if open
    office_successor: list[str | None]
    office_weight: np.ndarray  # share of the stock (for staffing and sizes)
    office_cr: np.ndarray  # commuting region index of the office
    # base (pre-2020) municipalities: where persons live
    base_weight: np.ndarray
    base_urban: np.ndarray  # 0..1 urbanity
    base_region: np.ndarray
    base_cr: np.ndarray
    base_office_delta: np.ndarray  # realistic mode: unobserved trait of the office's users
    muni_ids: list[str]  # all municipality ids (base + merged)
    muni_names: list[str]
    muni_of_base: np.ndarray  # [n_base, NT] -> municipality index valid in the month
    office_of_base: np.ndarray  # [n_base, NT] -> office index serving the base area
    cr_ids: list[str]
    cr_region: np.ndarray

    @property
    def noe(self) -> int:
        return len(self.office_ids) - 1


def _split_counts(total: int, shares: np.ndarray) -> np.ndarray:
    n = np.maximum(1, np.floor(shares * total)).astype(int)
    while n.sum() < total:
        n[np.argmax(shares * total - n)] += 1
    while n.sum() > total:
        n[np.argmax(n)] -= 1
    return n


def build_geography(scale: Scale, rng: np.random.Generator) -> Geography:
    shares = np.array([r[2] for r in REGIONS])
    shares = shares / shares.sum()
    n_off = _split_counts(scale.offices, shares)
    n_cr = np.minimum(n_off, _split_counts(scale.commuting_regions, shares))

    office_ids, office_names, office_region, office_w, office_cr = [], [], [], [], []
    cr_ids, cr_region = [], []
    for r, (rid, rname, _) in enumerate(REGIONS):
        w = rng.lognormal(0.0, 1.0, n_off[r])
        w = np.sort(w)[::-1] / w.sum() * shares[r]
        cr0 = len(cr_ids)
        for c in range(n_cr[r]):
            cr_ids.append(f"{rid}{c + 1:02d}")
            cr_region.append(r)
        # offices in commuting regions: the largest office anchors the first (urban) one
        crs = np.concatenate([np.arange(n_cr[r]), rng.integers(0, n_cr[r], n_off[r] - n_cr[r])])
        for k in range(n_off[r]):
            office_ids.append(f"{rid}{k + 1:02d}")
            office_names.append(f"Nav {rname} {k + 1:02d}")
            office_region.append(r)
            office_w.append(w[k])
            office_cr.append(cr0 + crs[k])

    n_orig = len(office_ids)
    office_w = np.array(office_w)
    office_region = np.array(office_region)
    office_cr = np.array(office_cr)
    office_from = np.full(n_orig, T0)
    office_to = np.full(n_orig, HORIZON)
    successor: list[str | None] = [None] * n_orig

    # base municipalities: 1 + Poisson(0.45) per office
    n_muni_per = 1 + rng.poisson(0.45, n_orig)
    base_office0 = np.repeat(np.arange(n_orig), n_muni_per)
    nb = len(base_office0)
    base_weight = office_w[base_office0] * rng.dirichlet(np.ones(nb) * 2.0)  # rough split
    for o in range(n_orig):  # make the municipality weights of an office sum to its weight
        idx = np.flatnonzero(base_office0 == o)
        base_weight[idx] = office_w[o] * base_weight[idx] / base_weight[idx].sum()
    rank = np.argsort(np.argsort(-office_w))
    office_urban = 1.0 - rank / max(1, n_orig - 1)  # the largest offices are the most urban
    base_urban = np.clip(office_urban[base_office0] + rng.normal(0, 0.05, nb), 0, 1)
    base_region = office_region[base_office0]
    base_cr = office_cr[base_office0]

    office_of_base = np.repeat(base_office0[:, None], NT, axis=1)
    used = set()

    def add_office(region: int, cr: int, start: int, weight: float) -> int:
        rid = REGIONS[region][0]
        k = sum(1 for i in office_ids if i.startswith(rid)) + 1
        office_ids.append(f"{rid}{k:02d}")
        office_names.append(f"Nav {REGIONS[region][1]} {k:02d}")
        nonlocal office_region, office_cr, office_from, office_to, office_w
        office_region = np.append(office_region, region)
        office_cr = np.append(office_cr, cr)
        office_from = np.append(office_from, start)
        office_to = np.append(office_to, HORIZON)
        office_w = np.append(office_w, weight)
        successor.append(None)
        return len(office_ids) - 1

    # office mergers (municipality reform, January 2020): two offices in one commuting region
    n_merge = max(1, round(0.03 * n_orig))
    order = rng.permutation(n_orig)
    merges = 0
    for a in order:
        if merges >= n_merge or a in used:
            continue
        partners = [b for b in np.flatnonzero(office_cr == office_cr[a]) if b != a and b not in used and b < n_orig]
        if not partners:
            continue
        b = partners[0]
        used |= {a, b}
        new = add_office(office_region[a], office_cr[a], REFORM, office_w[a] + office_w[b])
        for old in (a, b):
            office_to[old] = REFORM - 1
            successor[old] = office_ids[new]
            office_of_base[base_office0 == old, REFORM - T0:] = new
        merges += 1

    # an office split (January 2021): an office with at least two municipalities
    n_split = max(1, round(0.01 * n_orig))
    splits = 0
    for a in order:
        if splits >= n_split or a in used or n_muni_per[a] < 2:
            continue
        used.add(a)
        idx = np.flatnonzero(base_office0 == a)
        half = len(idx) // 2
        first = add_office(office_region[a], office_cr[a], SPLIT, base_weight[idx[:half]].sum())
        second = add_office(office_region[a], office_cr[a], SPLIT, base_weight[idx[half:]].sum())
        office_to[a] = SPLIT - 1
        successor[a] = office_ids[first if base_weight[idx[:half]].sum() >= base_weight[idx[half:]].sum() else second]
        office_of_base[idx[:half], SPLIT - T0:] = first
        office_of_base[idx[half:], SPLIT - T0:] = second
        splits += 1

    # municipality mergers (January 2020): two municipalities served by the same office
    muni_ids = [f"{REGIONS[base_region[i]][0]}{i + 1:02d}" for i in range(nb)]
    muni_names = [f"Kommune {m}" for m in muni_ids]
    muni_of_base = np.repeat(np.arange(nb)[:, None], NT, axis=1)
    n_mm = max(1, round(0.08 * nb))
    mm = 0
    for o in rng.permutation(n_orig):
        if mm >= n_mm:
            break
        idx = np.flatnonzero(base_office0 == o)
        if len(idx) < 2 or not np.all(office_of_base[idx[0]] == office_of_base[idx[1]]):
            continue
        new_id = f"{REGIONS[base_region[idx[0]]][0]}{len(muni_ids) + 1:02d}"
        muni_ids.append(new_id)
        muni_names.append(f"Kommune {new_id}")
        muni_of_base[idx[:2], REFORM - T0:] = len(muni_ids) - 1
        mm += 1

    # the national follow-up unit NOE, last office index
    office_ids.append(NOE_OFFICE)
    office_names.append("Nav Nasjonal oppfølgingsenhet")
    office_region = np.append(office_region, -1)
    office_cr = np.append(office_cr, -1)
    office_from = np.append(office_from, month_index("2022-09"))
    office_to = np.append(office_to, HORIZON)
    office_w = np.append(office_w, 0.0)
    successor.append(None)

    # realistic mode: users of some offices have better unobserved traits than others
    office_delta = rng.normal(0, 1, len(office_ids))
    base_office_delta = office_delta[base_office0]

    return Geography(
        region_ids=[r[0] for r in REGIONS], region_names=[r[1] for r in REGIONS],
        office_ids=office_ids, office_names=office_names, office_region=office_region,
        office_from=office_from, office_to=office_to, office_successor=successor,
        office_weight=office_w, office_cr=office_cr,
        base_weight=base_weight / base_weight.sum(), base_urban=base_urban, base_region=base_region,
        base_cr=base_cr, base_office_delta=base_office_delta,
        muni_ids=muni_ids, muni_names=muni_names, muni_of_base=muni_of_base, office_of_base=office_of_base,
        cr_ids=cr_ids, cr_region=np.array(cr_region),
    )


def _interp_knots(knots: list[tuple[str, float]]) -> np.ndarray:
    x = np.array([month_index(k) for k, _ in knots])
    y = np.array([v for _, v in knots])
    return np.interp(np.arange(T0, HORIZON + 1), x, y)


def build_labour_market(geo: Geography, rng: np.random.Generator, clean: bool = False) -> dict[str, np.ndarray]:
    """Unemployment, inflow and vacancy rates per commuting region x month ([n_cr, NT]).

    Realistic mode: a national cycle with the 2020 lockdown, seasons, the oil-price downturn on
    the west coast, and month-to-month regional noise (AR(1) in unemployment, white noise in
    inflow and vacancies).

    Clean mode is a labour market that the indicator's model can describe up to sampling
    error, so the machinery itself can be checked:
    - no national change over time, no seasons: any national change during an outcome window
      is one no measurement month foresees, and it enters every office's indicator alike (with
      cycles of +-20% a year the office-year jobb12 error averaged -2.0 pp in 2019 and +1.8 pp in
      2021, and 95% intervals covered 75% in those years);
    - no passing regional shocks and no monthly noise: with them the measurement month's
      inflow mixes a region's lasting level with a passing deviation, and the errors they leave
      are common to every office of a commuting region in a month (medium world: office-month
      intervals covered 87%, the errors were 1.3 standard errors wide);
    - no lasting differences between regions either. With levels that vary continuously, a
      region's level differs from its decile's average, a lasting error of all its offices
      (office-year intervals covered 83%). With levels on a few plateaus that deciles describe
      exactly, each plateau's coefficient is estimated from a few commuting regions and takes
      part of their offices' contributions for the labour market: an error shared by many
      offices, which their standard errors cannot hold in one world (five plateaus: -1.5 hours
      a week for a fifth of the offices in one world, intervals covered 79-88%; three: 90-98%
      depending on the world). With no regional differences, intervals covered 92-96% in every
      world tried. The realistic world keeps all of it."""
    if clean:
        knots = [("2013-01", 0.023), ("2025-12", 0.023)]
    else:
        knots = [("2013-01", 0.026), ("2016-06", 0.031), ("2017-01", 0.029), ("2018-01", 0.025),
                 ("2019-06", 0.022), ("2020-02", 0.023), ("2020-03", 0.105), ("2020-04", 0.100),
                 ("2020-06", 0.050), ("2020-12", 0.040), ("2021-06", 0.030), ("2021-12", 0.020),
                 ("2022-06", 0.016), ("2023-06", 0.017), ("2024-06", 0.020), ("2025-12", 0.021)]
    u_nat = _interp_knots(knots)
    months = np.arange(T0, HORIZON + 1)
    noisy = 0.0 if clean else 1.0
    # seasonal swings in inflow say little about the coming months' work (a flaw of a model
    # that enters inflow at the measurement month); the clean world has none
    season = 1 + 0.08 * noisy * np.cos(2 * np.pi * (months % 12) / 12)
    # the oil-price downturn hit the west coast hardest until 2017
    oil = np.clip((month_index("2018-01") - months) / 36.0, 0, 1) * 0.35 * noisy
    n_cr = len(geo.cr_ids)
    level = np.exp(rng.normal(0, 0.22, n_cr))
    if clean:
        level = np.ones(n_cr)
    west = np.isin(np.array(geo.region_ids)[geo.cr_region], ["11", "42", "46"])
    u = np.empty((n_cr, len(months)))
    noise = np.zeros(n_cr)
    for k in range(len(months)):
        noise = 0.8 * noise + rng.normal(0, 0.04, n_cr) * noisy
        u[:, k] = u_nat[k] * season[k] * level * (1 + oil[k] * west) * np.exp(noise)
    u = np.clip(u, 0.004, 0.25)
    du = np.diff(u, axis=1, prepend=u[:, :1])
    inflow = np.clip(0.17 * u + np.maximum(du, 0) + rng.normal(0, 0.0004, u.shape) * noisy, 0.0005, 0.2)
    spring = 1 + 0.12 * noisy * np.sin(2 * np.pi * ((months % 12) - 1) / 12)
    vacancy = np.clip((0.032 - 0.45 * (u - 0.025)) * spring * np.exp(rng.normal(0, 0.05, u.shape) * noisy), 0.004, 0.08)
    return {"unemployment_rate": u, "inflow_rate": inflow, "vacancy_rate": vacancy}


def labour_market_measures(geo: Geography, lm: dict[str, np.ndarray], rng: np.random.Generator,
                           clean: bool = False) -> dict[str, np.ndarray]:
    """The measures of Nav's candidate models per commuting region x month ([n_cr, NT]), made
    from the world's own labour market with known relations (they do not enter the true model of
    work; a model that uses them can only gain by describing the same labour market better):

    - youth unemployment: 2.2 times the region's unemployment, more cyclical (elasticity 1.2 to
      the region's own unemployment relative to its mean), with its own AR(1) noise;
    - a shift-share index: the 12-month employment growth predicted from the region's mix of
      five industries (Dirichlet shares) and each industry's national growth, which follows the
      national cycle (minus the change in national unemployment) with its own loading and noise.

    The clean world's are flat, as its labour market is."""
    u = lm["unemployment_rate"]
    n_cr, nt = u.shape
    if clean:
        return {"youth_unemployment_rate": np.clip(2.2 * u, 0, 1), "shift_share_index": np.full((n_cr, nt), 1.0)}
    rel = u / u.mean(axis=1, keepdims=True)
    noise = np.zeros((n_cr, nt))
    for k in range(1, nt):
        noise[:, k] = 0.7 * noise[:, k - 1] + rng.normal(0, 0.05, n_cr)
    youth = np.clip(2.2 * u.mean(axis=1, keepdims=True) * rel ** 1.2 * np.exp(noise), 0.005, 0.4)
    shares = rng.dirichlet(np.full(5, 2.0), n_cr)  # five industries
    u_nat = u.mean(axis=0)
    cycle = -(u_nat - np.r_[np.full(12, u_nat[0]), u_nat[:-12]]) / u_nat.mean()  # falling unemployment: growth
    loading = rng.uniform(0.5, 2.0, 5)
    growth = 1.2 + 4.0 * loading[:, None] * cycle[None, :] + rng.normal(0, 0.4, (5, nt))  # per cent, per industry
    return {"youth_unemployment_rate": youth, "shift_share_index": np.clip(shares @ growth, -30, 30)}
