"""Generate a synthetic Nav world and write it as Parquet, one file per contract table.

    generate_world(out_dir, scale="medium", seed=1, clean=False)

writes the contract tables into out_dir and the ground truth into out_dir/truth/ (which
the indicator pipeline never reads). The directory appears atomically: everything is
written to a temporary sibling and renamed at the end, so an interrupted run leaves no
half-written world.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import atomic
from ..contract import BENEFIT, EDUCATION, IMMIGRANT_CATEGORY, INNSATSGRUPPE
from .employment import OUTCOMES, indicator_population, simulate_chunk
from .geography import NT, T0, build_geography, build_labour_market, labour_market_measures
from .offices import make_office_hr, make_theta, office_valid
from .params import HORIZON, NOE_REGION, SCALES, STOCK_FIRST, STOCK_LAST, TrueModel, month_date
from .params import PROGRAMMES
from .population import VARIG, expand_stock, extend_noe_spells, make_population, stock_counts
from .programmes import assign_programmes, in_programme, places_table
from .surveys import write_surveys

WRITE_OPTS = dict(compression="zstd", use_dictionary=True, write_statistics=True)


def _dict_col(codes: np.ndarray, values) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(list(values)))


def _dates(m: np.ndarray) -> pa.Array:
    return pa.array(month_date(m), type=pa.date32())


def _opt_dates(ms) -> pa.Array:
    """Month indices or None (open-ended validity) -> date32 with nulls."""
    return pa.array([None if m is None else month_date(m).item() for m in ms], pa.date32())


def _write(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, **WRITE_OPTS)


def _chunks(spell_person: np.ndarray, n_persons: int, size: int):
    """Contiguous spell ranges covering whole persons, about `size` persons each."""
    bounds = np.searchsorted(spell_person, np.arange(0, n_persons + size, size))
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            yield a, b


def generate_world(out_dir: Path | str, scale: str = "medium", seed: int = 1, clean: bool = False,
                   employment_observed_to: str = "2024-12", person_truth: bool | None = None,
                   progress: Callable[[str, float], None] | None = None) -> dict:
    """Generate the world; returns a summary dict (also written to truth/world.json)."""
    t_start = time.perf_counter()
    sc = SCALES[scale]
    tm = TrueModel()
    if person_truth is None:
        person_truth = scale != "national"
    report = progress or (lambda step, frac: None)
    out_dir = Path(out_dir)
    ss = np.random.SeedSequence(seed)
    # a seventh stream for what was added later (NOE's extension, programmes), an eighth for the
    # candidate models' labour-market measures, a ninth for the persons' moves: the first
    # children are the same as before, so what they drew did not change
    s_geo, s_lm, s_pop, s_hr, s_theta, s_chunks, s_policy, s_measures, s_moves = ss.spawn(9)
    from .params import month_index
    emp_end = month_index(employment_observed_to)
    if not STOCK_LAST <= emp_end <= HORIZON:
        raise ValueError(f"siste måned med arbeidstimer (employment_observed_to) må være mellom 2024-12 og 2025-12, "
                         f"ikke {employment_observed_to}")

    report("geografi og arbeidsmarked", 0.0)
    geo = build_geography(sc, np.random.default_rng(s_geo))
    lm = build_labour_market(geo, np.random.default_rng(s_lm), clean=clean)
    lm_more = labour_market_measures(geo, lm, np.random.default_rng(s_measures), clean=clean)
    loginf = np.log(lm["inflow_rate"])
    period = slice(STOCK_FIRST - T0, STOCK_LAST - T0 + 1)
    spread = loginf[:, period].std()
    lm_z = (loginf - loginf[:, period].mean()) / (spread if spread > 1e-12 else 1.0)  # the clean world: flat

    report("personer og forløp", 0.05)
    persons, spells = make_population(sc, geo, lm_z, clean, tm, np.random.default_rng(s_pop),
                                      moves=np.random.default_rng(s_moves))
    # The clean world checks the machinery: the office contribution is the only thing that
    # differs between units, so no region cuts its programmes and NOE keeps no one longer
    # (the draws are made all the same, so the rest of the world is the same random numbers).
    rng_policy = np.random.default_rng(s_policy)
    cuts = {} if clean else None
    extend_noe_spells(spells, replace(tm, noe_extension_prob=0.0) if clean else tm, rng_policy)
    assign_programmes(persons, spells, geo, rng_policy, tm.programme_effect, cuts)
    n_persons = len(persons.birth)
    n_off = len(geo.office_ids)

    # pass 1: counts per office and month (for staffing, and to centre theta)
    users = np.zeros((n_off, NT), np.int64)
    users_ss = np.zeros((n_off, NT), np.int64)
    pop_follow = np.zeros((n_off, NT), np.int64)
    noe_users = np.zeros(NT, np.int64)
    chunks = list(_chunks(spells.person, n_persons, sc.chunk_persons))
    for a, b in chunks:
        rows = expand_stock(persons, spells.take(np.arange(a, b)), geo)
        u_all, u_ss, u_noe = stock_counts(rows, n_off, NT)
        users += u_all
        users_ss += u_ss
        noe_users += u_noe
        ind = rows.group != VARIG
        pop_follow += np.bincount(rows.office[ind] * NT + (rows.month[ind] - T0), minlength=n_off * NT).reshape(n_off, NT)

    report("kontorressurser og kontorbidrag", 0.15)
    hr = make_office_hr(geo, users, np.random.default_rng(s_hr))
    theta_raw, sick, staffing = make_theta(geo, hr, users, tm, np.random.default_rng(s_theta), nav_wide=not clean)
    w = pop_follow[:, period]
    centre = float((theta_raw[:, period] * w).sum() / w.sum())
    theta = theta_raw - centre
    # after the extract the offices have no users to staff for; their contribution is held at
    # its last value (it only matters for users still registered after the extract's end)
    theta[:, STOCK_LAST - T0 + 1:] = theta[:, [STOCK_LAST - T0]]

    with atomic.directory(out_dir) as tmp:
        (tmp / "truth").mkdir()
        _write_static_tables(tmp, geo, lm | lm_more, hr, emp_end)
        _write_persons(tmp, persons)
        # pass 2: stock, employment and truth, chunk by chunk of persons
        stock_w = emp_w = truth_w = prog_w = nn_w = None
        n_reg = len(geo.region_ids)
        participants = np.zeros((n_reg, NT))
        policy = {k: {o: np.zeros((n_reg + 1, NT)) for o in OUTCOMES} for k in ("cut", "noe")}
        policy_n = {k: np.zeros((n_reg + 1, NT)) for k in ("cut", "noe")}
        noe_att = {o: 0.0 for o in OUTCOMES}
        noe_att_n = 0
        sums = {o: np.zeros((n_off, NT)) for o in OUTCOMES}
        dsum = {o: 0.0 for o in OUTCOMES}
        n_pm = np.zeros((n_off, NT))
        n_ind = 0
        chunk_seeds = s_chunks.spawn(len(chunks))
        for ci, (a, b) in enumerate(chunks):
            report("bestand, arbeidstimer og fasit", 0.2 + 0.75 * ci / len(chunks))
            sp = spells.take(np.arange(a, b))
            rows = expand_stock(persons, sp, geo, last=HORIZON)
            sp_local = sp  # spell indices in rows refer to this chunk's spells
            res = simulate_chunk(persons, sp_local, rows, theta, lm_z, geo, tm, np.random.default_rng(chunk_seeds[ci]))
            idx = res.stock_index
            stock_tbl = _stock_table(persons, sp_local, rows, idx, geo)
            stock_w = stock_w or pq.ParquetWriter(tmp / "stock.parquet", stock_tbl.schema, **WRITE_OPTS)
            stock_w.write_table(stock_tbl)
            keep = res.emp_month <= emp_end
            emp_tbl = pa.table({
                "person_id": pa.array(res.emp_person[keep] + 1, pa.int64()),
                "month": _dates(res.emp_month[keep]),
                "hours": pa.array(res.emp_hours[keep], pa.float64()),
            })
            emp_w = emp_w or pq.ParquetWriter(tmp / "employment.parquet", emp_tbl.schema, **WRITE_OPTS)
            emp_w.write_table(emp_tbl)
            # programme participation (stock rows in a programme) and the participants per region
            spi, offi = rows.spell[idx], rows.offset[idx]
            inp = in_programme(sp_local, spi, offi)
            prog_tbl = pa.table({
                "person_id": pa.array(rows.person[idx][inp] + 1, pa.int64()),
                "month": _dates(rows.month[idx][inp]),
                "programme": _dict_col(sp_local.prog_type[spi][inp], PROGRAMMES),
            })
            prog_w = prog_w or pq.ParquetWriter(tmp / "programme_participation.parquet", prog_tbl.schema, **WRITE_OPTS)
            prog_w.write_table(prog_tbl)
            np.add.at(participants, (sp_local.region[spi][inp], rows.month[idx][inp] - T0), 1)
            nn_tbl = pa.table({"person_id": pa.array(res.noe_person + 1, pa.int64()), "month": _dates(res.noe_month),
                               "hours": pa.array(res.noe_hours, pa.float64())})
            nn_w = nn_w or pq.ParquetWriter(tmp / "truth" / "employment_without_noe.parquet", nn_tbl.schema, **WRITE_OPTS)
            nn_w.write_table(nn_tbl)
            # truth: sums over the indicator population per (following office, month)
            ind = indicator_population(rows, idx)
            cell = rows.office[idx][ind] * NT + (rows.month[idx][ind] - T0)
            n_pm += np.bincount(cell, minlength=n_off * NT).reshape(n_off, NT)
            n_ind += int(ind.sum())
            scale_out = {"atid3": 1.0, "atid12": 1.0, "jobb3": 100.0, "jobb12": 100.0}
            # the policies' true effects: the cuts by the following office's region (NOE its own
            # unit), NOE by the home office's region (where the user would have been followed)
            follow_reg = np.where(rows.office[idx] == geo.noe, n_reg, geo.office_region[rows.office[idx]])[ind]
            home_reg = geo.office_region[rows.home_office[idx]][ind]
            k_ind = rows.month[idx][ind] - T0
            at_noe = ((sp_local.noe_from[spi] >= 0) & (offi >= sp_local.noe_from[spi]))[ind]
            for key, reg in (("cut", follow_reg), ("noe", home_reg)):
                np.add.at(policy_n[key], (reg, k_ind), 1)
            for o in OUTCOMES:
                d_cut = (res.expected_with[o] - res.expected_no_cut[o])[ind] * scale_out[o]
                d_noe = (res.expected_with[o] - res.expected_no_noe[o])[ind] * scale_out[o]
                np.add.at(policy["cut"][o], (follow_reg, k_ind), d_cut)
                np.add.at(policy["noe"][o], (home_reg, k_ind), d_noe)
                noe_att[o] += float(d_noe[at_noe].sum())
            noe_att_n += int(at_noe.sum())
            for o in OUTCOMES:
                diff = (res.expected_with[o] - res.expected_without[o])[ind] * scale_out[o]
                sums[o] += np.bincount(cell, weights=diff, minlength=n_off * NT).reshape(n_off, NT)
                dsum[o] += float(res.derivative[o][ind].sum()) * scale_out[o]
            if person_truth:
                cols = {"person_id": pa.array(rows.person[idx] + 1, pa.int64()), "month": _dates(rows.month[idx])}
                for o in OUTCOMES:
                    cols[f"expected_with_office_{o}"] = pa.array(res.expected_with[o] * scale_out[o])
                    cols[f"expected_average_office_{o}"] = pa.array(res.expected_without[o] * scale_out[o])
                    cols[f"expected_without_cut_{o}"] = pa.array(res.expected_no_cut[o] * scale_out[o])
                    cols[f"expected_without_noe_{o}"] = pa.array(res.expected_no_noe[o] * scale_out[o])
                ttbl = pa.table(cols)
                truth_w = truth_w or pq.ParquetWriter(tmp / "truth" / "person_month.parquet", ttbl.schema, **WRITE_OPTS)
                truth_w.write_table(ttbl)
        for wtr in (stock_w, emp_w, truth_w, prog_w, nn_w):
            if wtr is not None:
                wtr.close()
        report("fasit og oppsummering", 0.96)
        summary = _write_truth(tmp, geo, theta, sums, n_pm, dsum, n_ind, sick, staffing, users, tm, centre)
        summary.update(_write_policy_truth(tmp, geo, spells, participants, policy, policy_n, noe_att, noe_att_n, cuts))
        report("undersøkelser", 0.98)
        summary.update(write_surveys(tmp, seed))
        summary.update(scale=scale, seed=seed, clean=clean, employment_observed_to=employment_observed_to,
                       persons=n_persons, persons_moving=_movers(persons, spells), spells=len(spells), offices=n_off - 1,
                       commuting_regions=len(geo.cr_ids), municipalities=len(geo.muni_ids),
                       seconds=round(time.perf_counter() - t_start, 1))
        # no timings in the file: the same seed must give byte-identical output
        (tmp / "truth" / "world.json").write_text(json.dumps(
            {k: v for k, v in summary.items() if k != "seconds"} | {"true_model": asdict(tm)},
            indent=2, ensure_ascii=False, default=float))
    report("ferdig", 1.0)
    return summary


def _movers(persons, spells) -> int:
    """Persons who move while registered (between the start of their first spell in the stock
    period and the end of their last)."""
    brk = np.flatnonzero(np.r_[True, spells.person[1:] != spells.person[:-1]])
    first = np.maximum(np.minimum.reduceat(spells.start, brk), STOCK_FIRST)
    last = np.minimum(np.maximum.reduceat(spells.start + spells.dur - 1, brk), STOCK_LAST)
    moved = persons.moved_at[spells.person[brk]]
    return int(((moved > first) & (moved <= last)).sum())


def _stock_table(persons, sp, rows, idx, geo) -> pa.Table:
    person = rows.person[idx]
    spell = rows.spell[idx]
    return pa.table({
        "month": _dates(rows.month[idx]),
        "person_id": pa.array(person + 1, pa.int64()),
        "office_id": _dict_col(rows.office[idx], geo.office_ids),
        "municipality_id": _dict_col(rows.muni[idx], geo.muni_ids),
        "innsatsgruppe": _dict_col(rows.group[idx], INNSATSGRUPPE),
        "months_since_registration": pa.array(rows.offset[idx].astype(np.int32)),
        "benefit": _dict_col(rows.benefit[idx], BENEFIT),
        "laid_off": pa.array(sp.laid_off[spell]),
        "youth_guarantee": pa.array(rows.youth[idx]),
        "work_hours_12m": pa.array(sp.h12[spell], pa.float64()),
        "work_hours_24m": pa.array(sp.h24[spell], pa.float64()),
        "reduced_work_capacity": pa.array(sp.reduced[spell]),
    })


def _write_persons(tmp: Path, p) -> None:
    n = len(p.birth)
    _write(pa.table({
        "person_id": pa.array(np.arange(1, n + 1), pa.int64()),
        "birth_month": _dates(p.birth),
        "sex": _dict_col(np.where(p.male, 1, 0), ("kvinne", "mann")),
        "education": _dict_col(p.education, EDUCATION),
        "immigrant_category": _dict_col(p.immigrant, IMMIGRANT_CATEGORY),
    }), tmp / "persons.parquet")


def _validity_rows(values: np.ndarray):
    """Runs of equal values along the month axis -> (start index, end index, value)."""
    change = np.flatnonzero(np.diff(values)) + 1
    starts = np.r_[0, change]
    ends = np.r_[change - 1, len(values) - 1]
    return [(s, e, values[s]) for s, e in zip(starts, ends)]


def _write_static_tables(tmp: Path, geo, lm, hr, emp_end: int) -> None:
    obs = slice(STOCK_FIRST - T0, emp_end - T0 + 1)
    months = np.arange(STOCK_FIRST, emp_end + 1)
    n_cr = len(geo.cr_ids)
    _write(pa.table({
        "commuting_region_id": pa.array(np.repeat(geo.cr_ids, len(months))),
        "month": _dates(np.tile(months, n_cr)),
        "inflow_rate": pa.array(np.round(lm["inflow_rate"][:, obs].ravel(), 6)),
        "unemployment_rate": pa.array(np.round(lm["unemployment_rate"][:, obs].ravel(), 6)),
        "vacancy_rate": pa.array(np.round(lm["vacancy_rate"][:, obs].ravel(), 6)),
    }), tmp / "labour_market.parquet")
    _write(pa.table({
        "commuting_region_id": pa.array(np.repeat(geo.cr_ids, len(months))),
        "month": _dates(np.tile(months, n_cr)),
        "youth_unemployment_rate": pa.array(np.round(lm["youth_unemployment_rate"][:, obs].ravel(), 6)),
        "shift_share_index": pa.array(np.round(lm["shift_share_index"][:, obs].ravel(), 4)),
    }), tmp / "labour_market_measures.parquet")
    _write(pa.table({"region_id": geo.region_ids + [NOE_REGION],
                     "region_name": geo.region_names + ["Nasjonal oppfølgingsenhet"]}), tmp / "regions.parquet")
    # offices: valid from/to; open-ended offices have no valid_to
    region_ids = np.array(geo.region_ids + [NOE_REGION])
    _write(pa.table({
        "office_id": geo.office_ids, "office_name": geo.office_names,
        "region_id": region_ids[geo.office_region].tolist(),
        "office_type": ["nasjonal" if i == geo.noe else "lokalkontor" for i in range(len(geo.office_ids))],
        "valid_from": _dates(np.maximum(geo.office_from, STOCK_FIRST)),
        "valid_to": _opt_dates([None if t >= HORIZON else t for t in geo.office_to]),
        "successor_office_id": geo.office_successor,
    }), tmp / "offices.parquet")
    # municipalities: one row per run of (municipality, office) over time
    rows = {}
    nb = geo.muni_of_base.shape[0]
    first = STOCK_FIRST - T0
    for b in range(nb):
        pair = geo.muni_of_base[b, first:] * 100_000 + geo.office_of_base[b, first:]
        for s, e, v in _validity_rows(pair):
            rows[(int(v // 100_000), int(v % 100_000), s)] = (e, geo.base_cr[b])
    recs = sorted(rows.items())
    last = HORIZON - STOCK_FIRST
    _write(pa.table({
        "municipality_id": [geo.muni_ids[m] for (m, o, s), _ in recs],
        "municipality_name": [geo.muni_names[m] for (m, o, s), _ in recs],
        "commuting_region_id": [geo.cr_ids[cr] for _, (e, cr) in recs],
        "office_id": [geo.office_ids[o] for (m, o, s), _ in recs],
        "valid_from": _dates(np.array([s + STOCK_FIRST for (m, o, s), _ in recs])),
        "valid_to": _opt_dates([None if e >= last else e + STOCK_FIRST for _, (e, cr) in recs]),
    }), tmp / "municipalities.parquet")
    # office HR for every office-month in which the office exists
    valid = office_valid(geo)[:, obs]
    o_idx, k_idx = np.nonzero(valid)
    _write(pa.table({
        "office_id": pa.array(np.array(geo.office_ids)[o_idx]),
        "month": _dates(months[k_idx]),
        "agreed_hours": pa.array(hr["agreed_hours"][:, obs][o_idx, k_idx]),
        "sick_leave_hours": pa.array(hr["sick_leave_hours"][:, obs][o_idx, k_idx]),
    }), tmp / "office_hr.parquet")
    _write(pa.table({
        "employment_observed_to": _dates(np.array([emp_end])),
        "description": ["Syntetisk Nav-verden (arbeidsindikator synth)"],
    }), tmp / "extract.parquet")


def _write_truth(tmp, geo, theta, sums, n_pm, dsum, n_ind, sick, staffing, users, tm, centre) -> dict:
    period = slice(STOCK_FIRST - T0, STOCK_LAST - T0 + 1)
    o_idx, k_idx = np.nonzero(n_pm[:, period] > 0)
    k_abs = k_idx + (STOCK_FIRST - T0)
    n = n_pm[o_idx, k_abs]
    cols = {
        "office_id": pa.array(np.array(geo.office_ids)[o_idx]),
        "month": _dates(k_abs + T0),
        "n_persons": pa.array(n.astype(np.int64)),
        "theta": pa.array(theta[o_idx, k_abs]),
        "sick_leave_share": pa.array(np.where(o_idx == geo.noe, np.nan, sick[o_idx, k_abs])),
        "staffing_hours_per_user": pa.array(np.where(o_idx == geo.noe, np.nan, staffing[o_idx, k_abs])),
    }
    for o in OUTCOMES:
        cols[f"true_{o}"] = pa.array(sums[o][o_idx, k_abs] / n)
    _write(pa.table(cols), tmp / "truth" / "office_month.parquet")
    # true effects: latent coefficients and their average marginal effect in outcome units
    # (a persistent one-unit change, averaged over the indicator population)
    ame = {o: dsum[o] / n_ind for o in OUTCOMES}
    effects = []
    for name, latent, unit in (("sick_leave", tm.sick_leave, "per unit share of agreed hours on sick leave"),
                               ("staffing", tm.staffing, "per agreed hour per user and month"),
                               ("noe", tm.noe_effect, "NOE vs an average office")):
        for o in OUTCOMES:
            effects.append((name, o, latent, latent * ame[o], unit))
    _write(pa.table({
        "effect": [e[0] for e in effects], "outcome": [e[1] for e in effects],
        "latent": [e[2] for e in effects], "outcome_scale": [e[3] for e in effects],
        "unit": [e[4] for e in effects],
    }), tmp / "truth" / "effects.parquet")
    return {"theta_centre": centre, "indicator_person_months": n_ind}


def _write_policy_truth(tmp, geo, spells, participants, policy, policy_n, noe_att, noe_att_n, cuts) -> dict:
    """The programme places (a contract table), and the true effects of the programme cuts and of
    NOE per region and month, in the indicator's units (hours a week; percentage points)."""
    months = np.arange(STOCK_FIRST, STOCK_LAST + 1)
    k = months - T0
    places = places_table(participants[:, k], geo, months, cuts)
    n_reg = len(geo.region_ids)
    _write(pa.table({
        "region_id": pa.array(np.repeat(geo.region_ids, len(months))),
        "month": _dates(np.tile(months, n_reg)),
        "places": pa.array(places["allocated"].ravel().astype(np.int64)),
        "participants": pa.array(participants[:, k].ravel().astype(np.int64)),
    }), tmp / "programme_places.parquet")
    region_names = np.array(geo.region_ids + [NOE_REGION])
    out = {}
    for key, fname, label in (("cut", "programme_cut_effects", "programme_cut"), ("noe", "noe_effects", "noe")):
        n = policy_n[key][:, k]
        r_idx, m_idx = np.nonzero(n > 0)
        cols = {"region_id": pa.array(region_names[r_idx]), "month": _dates(months[m_idx]),
                "n_persons": pa.array(n[r_idx, m_idx].astype(np.int64))}
        if key == "cut":
            cut = np.vstack([places["cut"], np.zeros((1, len(months)))])
            cols["cut"] = pa.array(cut[r_idx, m_idx])
        for o in OUTCOMES:
            cols[f"true_{o}"] = pa.array(policy[key][o][:, k][r_idx, m_idx] / n[r_idx, m_idx])
        _write(pa.table(cols), tmp / "truth" / f"{fname}.parquet")
        if key == "cut":  # the average over treated region-months, and per unit of cut
            treated = cut[r_idx, m_idx] > 0
            w = n[r_idx, m_idx][treated]
            for o in OUTCOMES:
                tau = (policy[key][o][:, k][r_idx, m_idx] / n[r_idx, m_idx])[treated]
                out[f"{label}_att_{o}"] = float((w * tau).sum() / w.sum()) if w.sum() else 0.0
                out[f"{label}_att_per_unit_{o}"] = float((w * tau).sum() / (w * cut[r_idx, m_idx][treated]).sum()) \
                    if w.sum() else 0.0
    for o in OUTCOMES:  # NOE: the average over person-months followed by NOE or after it
        out[f"noe_att_{o}"] = noe_att[o] / noe_att_n if noe_att_n else 0.0
    _write(pa.table({
        "person_id": pa.array(spells.person + 1, pa.int64()), "start": _dates(spells.start),
        "months": pa.array(spells.dur, pa.int32()), "months_without_noe": pa.array(spells.dur_without_noe, pa.int32()),
        "noe": pa.array(spells.noe_from >= 0), "exit_work": pa.array(spells.exit_work),
        "programme": pa.array(spells.prog_actual), "programme_without_cut": pa.array(spells.prog_without_cut),
        "programme_without_noe": pa.array(spells.prog_without_noe),
        "programme_month": pa.array(spells.prog_start, pa.int32()),  # spell month of the episode's start, -1 none
    }), tmp / "truth" / "spells.parquet")
    return out
