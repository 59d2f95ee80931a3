"""The bounded attacker: what the published tables prove about each suppressed cell.

An attacker who knows every relation between the published cells (disclosure.py lists them)
also knows that counts are whole and at least 1 in a cell that is in the table, that the number
in work is whole and between 0 and the count, that hours are between 0 and MAX_WEEKLY_HOURS a
week per person-month and at least IN_WORK_WEEKLY_HOURS / K for each person in work after K
months, that a month's count is at most the persons of a published period that holds it, and
that a count published as a band lies in it. Interval propagation (bounds tightening, as in
every MILP presolve) applies these facts until nothing moves. It is sound: the attacker's exact
interval (by LP/MILP) lies inside the propagated one; the tests compare the two on small
components with scipy's HiGHS.

We use it where it is conclusive: an interval that already pins a count or a number in work,
proves a cell below the threshold, or proves that nobody (or everybody) in a cell was in work,
is a disclosure, and the protector suppresses more until there is none (`disclosed`, `repair`).
Written here rather than taken from a library: sdcTable and tau-argus audit one table with
their own solvers; none handles our linked systems with these couplings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from .outcomes import IN_WORK_WEEKLY_HOURS

MAX_WEEKLY_HOURS = 60.0  # the most hours a week anyone is taken to average: tighter helps an attacker
TOL = 1e-7
JOINT_ROUNDS = 16  # joint LPs per month in `small_in_month` before the cells left get one each
ROUNDS = 300


@dataclass
class System:
    """One system of cells (the outcomes with the same cells and counts), flat over its cells.
    Quantities: 'n' (person-months) and one sum per outcome (persons in work, or hours)."""
    kinds: dict  # quantity -> ('binary' | 'hours' | 'other', horizon)
    relations: sp.coo_matrix  # rows: sum(v x) = 0 over flat cells
    unknown: np.ndarray  # bool: suppressed (or never published, such as a moved office's parts)
    values: dict  # quantity -> true value per cell (used where known)
    floor: np.ndarray  # fewest persons the attacker knows a cell holds (1, or the band's lower end)
    caps: np.ndarray  # most persons (periods' distinct persons, bands); inf if nothing is known
    suppressed: np.ndarray  # bool: the cells that are published as suppressed (checked for disclosure)
    count_public: np.ndarray | None = None  # bool: suppressed cells whose count another system publishes


def intervals(systems: list[System], links: list[tuple[int, int, np.ndarray]]) -> list[dict]:
    """Per system, quantity -> [lower, upper] per flat cell. `links` (i, j, cells): cells
    whose count is the same in systems i and j (months both observe)."""
    out = []
    for s in systems:
        b = {}
        for q, v in s.values.items():
            v = np.asarray(v, float)
            b[q] = [np.where(s.unknown, 0.0, v), np.where(s.unknown, np.inf, v)]
        b["n"][0] = np.where(s.unknown, s.floor, b["n"][0])
        b["n"][1] = np.where(s.unknown, s.caps, b["n"][1])
        out.append(b)
    # a relation among published cells only tells nothing new: leave it out of the sweeps
    active = [_with_unknowns(s.relations, s.unknown) for s in systems]
    for _ in range(ROUNDS):
        moved = 0
        for s, rel, b in zip(systems, active, out):
            for q in b:
                exact = q == "n" or s.kinds[q][0] == "binary"
                moved += _sweep(rel, b[q], 0.0 if exact else 1e-3)
            moved += _couple(s.kinds, b)
        for i, j, cells in links:
            lo = np.maximum(out[i]["n"][0][cells], out[j]["n"][0][cells])
            hi = np.minimum(out[i]["n"][1][cells], out[j]["n"][1][cells])
            moved += int(np.sum(lo > out[i]["n"][0][cells] + TOL) + np.sum(hi < out[i]["n"][1][cells] - TOL))
            moved += int(np.sum(lo > out[j]["n"][0][cells] + TOL) + np.sum(hi < out[j]["n"][1][cells] - TOL))
            out[i]["n"][0][cells] = out[j]["n"][0][cells] = lo
            out[i]["n"][1][cells] = out[j]["n"][1][cells] = hi
        if not moved:
            break
    return out


def _with_unknowns(rel: sp.coo_matrix, unknown: np.ndarray) -> sp.coo_matrix:
    """The relations (rows) that hold at least one unknown cell, renumbered."""
    has = np.bincount(rel.row, weights=unknown[rel.col], minlength=rel.shape[0]) > 0
    keep = has[rel.row]
    new_row = np.cumsum(has) - 1
    return sp.coo_matrix((rel.data[keep], (new_row[rel.row[keep]], rel.col[keep])), shape=(int(has.sum()), rel.shape[1]))


def disclosed(system: System, bounds: dict, threshold: int) -> dict[str, np.ndarray]:
    """What the intervals prove about suppressed cells: reason -> flat cells.

    'antall': the count is pinned; 'under_grensen': the count is proved below the threshold;
    then per outcome: '<q>': the sum is pinned (within half a person or half an hour);
    '<q>_ingen' / '<q>_alle': nobody / everybody in the cell was in work."""
    sup = system.suppressed
    lo_n, hi_n = bounds["n"]
    sup_n = sup if system.count_public is None else sup & ~system.count_public
    out = {"antall": sup_n & (hi_n - lo_n < 0.5), "under_grensen": sup_n & (hi_n < threshold)}
    for q, (kind, _) in system.kinds.items():
        if q == "n":
            continue
        lo, hi = bounds[q]
        out[q] = sup & (hi - lo < 0.5)
        if kind == "binary":
            out[f"{q}_ingen"] = sup & (hi < 0.5)
            out[f"{q}_alle"] = sup & (hi_n - lo < 0.5)
    return {k: np.flatnonzero(v) for k, v in out.items() if v.any()}


def binding_rows(system: System, bounds: dict, q: str, cell: int, upper: bool) -> list[tuple[float, int]]:
    """The relations holding `cell`, tightest first for its bound on `q` (upper or lower):
    [(the bound this relation alone implies, row)]."""
    csc = _csc(system)
    lo, hi = bounds[q]
    res = []
    for r in csc.indices[csc.indptr[cell]:csc.indptr[cell + 1]]:
        cols, vals = _row(system, r)
        vj = vals[cols == cell][0]
        oth = cols != cell
        c, v = cols[oth], vals[oth]
        L = np.sum(np.where(v > 0, v * lo[c], v * hi[c]))
        H = np.sum(np.where(v > 0, v * hi[c], v * lo[c]))
        bound = (-L / vj if vj > 0 else -H / vj) if upper else (-H / vj if vj > 0 else -L / vj)
        if np.isfinite(bound):
            res.append((float(bound) if upper else -float(bound), int(r)))
    return sorted(res)


def _csc(system: System) -> sp.csc_matrix:
    if not hasattr(system, "_csc_cache"):
        system._csc_cache = system.relations.tocsc()
        system._csr_cache = system.relations.tocsr()
    return system._csc_cache


def _row(system: System, r: int) -> tuple[np.ndarray, np.ndarray]:
    csr = system._csr_cache
    sl = slice(csr.indptr[r], csr.indptr[r + 1])
    return csr.indices[sl], csr.data[sl]


def row_cells(system: System, r: int) -> np.ndarray:
    _csc(system)
    return _row(system, r)[0]


def row_values(system: System, r: int) -> np.ndarray:
    _csc(system)
    return _row(system, r)[1]


def _sweep(rel: sp.coo_matrix, bounds: list, eps: float) -> int:
    """One pass of bounds tightening over relations sum(v x) = 0 (within eps per relation, for
    sums published rounded), on bounds = [lower, upper]. Returns how many bounds moved."""
    lo, hi = bounds
    r, c, v = rel.row, rel.col, rel.data
    nr = rel.shape[0]
    lt = np.where(v > 0, v * lo[c], v * hi[c])
    ht = np.where(v > 0, v * hi[c], v * lo[c])
    il, ih = np.isinf(lt), np.isinf(ht)
    n_il, n_ih = np.bincount(r, weights=il, minlength=nr), np.bincount(r, weights=ih, minlength=nr)
    s_l = np.bincount(r, weights=np.where(il, 0.0, lt), minlength=nr)
    s_h = np.bincount(r, weights=np.where(ih, 0.0, ht), minlength=nr)
    o_lo = np.where(n_il[r] - il > 0, -np.inf, s_l[r] - np.where(il, 0.0, lt))
    o_hi = np.where(n_ih[r] - ih > 0, np.inf, s_h[r] - np.where(ih, 0.0, ht))
    with np.errstate(invalid="ignore", divide="ignore"):
        t_lo = np.where(v > 0, (-o_hi - eps) / v, (-o_lo + eps) / v)
        t_hi = np.where(v > 0, (-o_lo + eps) / v, (-o_hi - eps) / v)
    new_lo, new_hi = lo.copy(), hi.copy()
    np.maximum.at(new_lo, c, np.nan_to_num(t_lo, nan=-np.inf))
    np.minimum.at(new_hi, c, np.nan_to_num(t_hi, nan=np.inf))
    new_lo, new_hi = np.minimum(new_lo, hi), np.maximum(new_hi, lo)  # known cells stay (rounding)
    moved = int(np.sum(new_lo > lo + TOL) + np.sum(new_hi < hi - TOL))
    lo[:], hi[:] = new_lo, new_hi
    return moved


def _couple(kinds: dict, b: dict) -> int:
    """Bounds between a cell's quantities (0 <= in work <= persons, hours <= MAX x persons,
    hours after K months >= IN_WORK/K x in work then), whole numbers rounded inwards. Returns
    how many bounds moved."""
    before = [x.copy() for q in b for x in b[q]]
    ln, hn = b["n"]
    with np.errstate(invalid="ignore", over="ignore"):
        for q, (kind, horizon) in kinds.items():
            if q == "n":
                continue
            ls, hs = b[q]
            np.maximum(ls, 0.0, out=ls)
            if kind == "binary":
                np.minimum(hs, hn, out=hs)
                np.maximum(ln, ls, out=ln)
                ls[:], hs[:] = np.ceil(ls - 1e-6), np.floor(hs + 1e-6)
            elif kind == "hours":
                np.minimum(hs, MAX_WEEKLY_HOURS * hn, out=hs)
                np.maximum(ln, np.ceil(ls / MAX_WEEKLY_HOURS - 1e-6), out=ln)
                for bq, (bk, bh) in kinds.items():
                    if bk == "binary" and bh == horizon:
                        kk = IN_WORK_WEEKLY_HOURS / horizon
                        np.maximum(ls, kk * b[bq][0], out=ls)
                        np.minimum(b[bq][1], np.floor(hs / kk + 1e-6), out=b[bq][1])
        ln[:], hn[:] = np.ceil(ln - 1e-6), np.floor(hn + 1e-6)
    after = [x for q in b for x in b[q]]
    moved = 0
    for x, y in zip(before, after):
        diff = ~((x == y) | (np.isinf(x) & np.isinf(y))) & (np.abs(np.nan_to_num(y - x)) > TOL)
        moved += int(diff.sum())
    return moved


def small_in_month(system: System, bounds: dict, threshold: int, cells_per_month: int, n_months: int,
                   clean: dict | None = None) -> np.ndarray:
    """Suppressed cells whose count an exact LP over the relations within their month proves
    below `threshold` where propagation does not (the tests' attacker found one on the small
    world). Per month: the count of every suppressed cell between its propagated bounds, every
    relation whose cells all lie in the month; one programme maximises sum(min(n_c, threshold))
    over the cells that really are small, and only those that stay below get their own
    (HiGHS through scipy). Only cells that are small can be proved small, so the others are
    not asked. A finder of disclosures, not a proof: relations across months are left out.

    `clean` (month -> its suppressed cells) remembers months where nothing was found: with the
    same cells suppressed there, nothing can be found again (suppressing more elsewhere only
    widens the bounds), so a repair round solves only the months it changed."""
    lo, hi = (np.asarray(x, float) for x in bounds["n"])
    n = np.asarray(system.values["n"], float)
    hidden = system.suppressed if system.count_public is None else system.suppressed & ~system.count_public
    asked = hidden & (n < threshold) & (hi >= threshold)
    rel = system.relations.tocoo()
    month = rel.col // cells_per_month
    first = np.full(rel.shape[0], np.iinfo(np.int64).max)
    last = np.full(rel.shape[0], -1)
    np.minimum.at(first, rel.row, month)
    np.maximum.at(last, rel.row, month)
    within = (first == last) & (last < n_months)
    rel = rel.tocsr()
    found = []
    for m in np.unique(first[within]):
        rows = np.flatnonzero(within & (first == m))
        block = rel[rows]
        cells = np.unique(block.indices)
        unknown = cells[system.unknown[cells]]
        targets = unknown[asked[unknown]]
        key = unknown.tobytes()
        if not len(targets) or (clean is not None and clean.get(m) == key):
            continue
        before = len(found)
        a = block[:, unknown]
        known = cells[~system.unknown[cells]]
        b = -(block[:, known] @ n[known])
        k, t = len(unknown), len(targets)
        col = np.searchsorted(unknown, targets)
        pick = sp.csr_matrix((np.ones(t), (np.arange(t), col)), shape=(t, k))
        var = [(lo[c], None if np.isinf(hi[c]) else hi[c]) for c in unknown]
        # joint programmes over the cells not yet shown to reach the threshold, while they show
        # more; the cells left get their own
        left = np.arange(t)
        for _ in range(JOINT_ROUNDS):
            sub = pick[left]
            res = linprog(np.r_[np.zeros(k), -np.ones(len(left))],
                          A_ub=sp.hstack([-sub, sp.identity(len(left))]).tocsr(), b_ub=np.zeros(len(left)),
                          A_eq=sp.hstack([a, sp.csr_matrix((a.shape[0], len(left)))]), b_eq=b,
                          bounds=var + [(0, threshold)] * len(left), method="highs")
            if res.status != 0:  # undecided: every cell left gets its own programme
                break
            reached = res.x[k:] >= threshold - 1e-6
            left = left[~reached]
            if not reached.any() or not len(left):
                break
        reached = np.zeros(t, bool)
        for i in left:  # each programme's point also shows the other cells it takes to the threshold
            if reached[i]:
                continue
            objective = np.zeros(k)
            objective[col[i]] = -1.0
            res = linprog(objective, A_eq=a, b_eq=b, bounds=var, method="highs")
            if res.status != 0:
                continue
            reached[left] |= res.x[col[left]] >= threshold - 1e-6
            if -res.fun < threshold - 1e-6:
                found.append(int(targets[i]))
        if clean is not None and len(found) == before:
            clean[m] = key
    return np.array(sorted(found), np.int64)


__all__ = ["MAX_WEEKLY_HOURS", "System", "binding_rows", "disclosed", "intervals", "row_cells", "row_values",
           "small_in_month"]
