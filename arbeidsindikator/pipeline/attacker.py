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

from .outcomes import IN_WORK_WEEKLY_HOURS

MAX_WEEKLY_HOURS = 60.0  # the most hours a week anyone is taken to average: tighter helps an attacker
TOL = 1e-7
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
    out = {"antall": sup & (hi_n - lo_n < 0.5), "under_grensen": sup & (hi_n < threshold)}
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


def exact_disclosed(systems: list[System], links: list[tuple[int, int, np.ndarray]], bounds: list[dict],
                    threshold: int) -> list[dict[str, np.ndarray]]:
    """What a linear programme over every fact proves about the suppressed cells that the
    propagated intervals leave open: per system, reason -> flat cells (the reasons of `disclosed`).

    Propagation is sound but not exact; the attacker's exact interval of a cell is what an LP over
    all relations, bounds and couplings at once gives (rounded inwards, as quantities are whole).
    A cell's interval needs computing only where no known feasible point already shows the
    requirement: the truth itself is one (a cell with someone in work cannot be proved to have
    nobody), and each LP solved along the way is another (`LinearAttack`)."""
    return LinearAttack(systems, links, bounds).disclosed(threshold)


class LinearAttack:
    """The attacker's linear programme (HiGHS), one per connected block of unknown quantities.

    Columns: every unknown quantity (count, each outcome's sum) of every suppressed cell, with the
    propagated interval as its bounds (they follow from the facts, so they cut nothing the
    attacker could not); rows: the relations holding an unknown, the couplings within a cell
    (in work <= persons, hours <= MAX x persons, hours >= 19/K x in work) and the links between
    systems (a month's count is the same in each). Integrality enters by rounding each optimum
    inwards: the LP is a relaxation, so its rounded interval still holds every whole solution."""

    def __init__(self, systems: list[System], links, bounds: list[dict]):
        self.systems, self.bounds = systems, bounds
        col = {}
        lo_c, hi_c, truth = [], [], []
        n_cols = 0
        for i, (s, b) in enumerate(zip(systems, bounds)):
            unk = np.flatnonzero(s.unknown)
            for q in s.kinds:
                lo, hi = b[q][0][unk], b[q][1][unk]
                free = hi - lo > TOL  # a quantity the intervals pin is a constant already
                idx = np.full(s.unknown.size, -1, np.int64)
                idx[unk[free]] = n_cols + np.arange(int(free.sum()))
                n_cols += int(free.sum())
                col[i, q] = idx
                lo_c.append(lo[free]); hi_c.append(hi[free])
                truth.append(np.asarray(s.values[q], float)[unk[free]])
        self.col, self.n = col, n_cols
        self.lo, self.hi = np.concatenate(lo_c), np.concatenate(hi_c)
        self.truth = np.clip(np.concatenate(truth), self.lo, self.hi)
        rows, cols, vals, rlo, rhi = [], [], [], [], []
        r0 = 0

        def add(rr, cc, vv, lo_, hi_):
            nonlocal r0
            rows.append(rr + r0); cols.append(cc); vals.append(vv); rlo.append(lo_); rhi.append(hi_)
            r0 += len(lo_)

        for i, (s, b) in enumerate(zip(systems, bounds)):
            rel = s.relations.tocsr()
            for q, (kind, horizon) in s.kinds.items():
                idx = col[i, q]
                fixed = np.where(idx < 0, (b[q][0] + b[q][1]) / 2, 0.0)  # a pinned or known value
                rhs = -(rel @ np.nan_to_num(fixed))
                coo = rel.tocoo()
                var = idx[coo.col] >= 0
                has = np.bincount(coo.row[var], minlength=rel.shape[0]) > 0
                renum = np.cumsum(has) - 1
                eps = 0.0 if q == "n" or kind == "binary" else 1e-3
                add(renum[coo.row[var]], idx[coo.col[var]], coo.data[var], rhs[has] - eps, rhs[has] + eps)
                if q == "n":
                    continue
                n_idx = col[i, "n"]
                both = np.flatnonzero((idx >= 0) & (n_idx >= 0))
                k = np.arange(len(both))
                if kind == "binary":  # in work - persons <= 0
                    add(np.r_[k, k], np.r_[idx[both], n_idx[both]], np.r_[np.ones(len(k)), -np.ones(len(k))],
                        np.full(len(k), -np.inf), np.zeros(len(k)))
                elif kind == "hours":
                    add(np.r_[k, k], np.r_[idx[both], n_idx[both]], np.r_[np.ones(len(k)), -MAX_WEEKLY_HOURS * np.ones(len(k))],
                        np.full(len(k), -np.inf), np.zeros(len(k)))
                    for bq, (bk, bh) in s.kinds.items():
                        if bk == "binary" and bh == horizon:
                            b_idx = col[i, bq]
                            both2 = np.flatnonzero((idx >= 0) & (b_idx >= 0))
                            k2 = np.arange(len(both2))
                            add(np.r_[k2, k2], np.r_[idx[both2], b_idx[both2]],
                                np.r_[np.ones(len(k2)), -IN_WORK_WEEKLY_HOURS / horizon * np.ones(len(k2))],
                                np.zeros(len(k2)), np.full(len(k2), np.inf))
        for i, j, cells in links:
            a, c = col[i, "n"][cells], col[j, "n"][cells]
            ok = (a >= 0) & (c >= 0)
            k = np.arange(int(ok.sum()))
            add(np.r_[k, k], np.r_[a[ok], c[ok]], np.r_[np.ones(len(k)), -np.ones(len(k))], np.zeros(len(k)), np.zeros(len(k)))
        self.A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r0, self.n))
        self.row_lo, self.row_hi = np.concatenate(rlo), np.concatenate(rhi)
        from scipy.sparse.csgraph import connected_components
        inc = self.A.tocsc()
        adj = (inc.T @ inc) if self.n else sp.csr_matrix((0, 0))
        self.n_blocks, self.block = connected_components(adj, directed=False) if self.n else (0, np.zeros(0, int))
        self.n_lp = 0
        self._models = {}

    def _model(self, blk: int):
        """The HiGHS model of one block, kept so that each new objective starts from the last basis."""
        if blk not in self._models:
            import highspy
            cols = np.flatnonzero(self.block == blk)
            sub = self.A[:, cols]
            keep = np.diff(sub.indptr) > 0
            sub = sub[keep].tocsc()
            h = highspy.Highs()
            h.setOptionValue("output_flag", False)
            lp = highspy.HighsLp()
            lp.num_col_, lp.num_row_ = len(cols), int(keep.sum())
            lp.col_cost_ = np.zeros(len(cols))
            lp.col_lower_, lp.col_upper_ = self.lo[cols], np.where(np.isinf(self.hi[cols]), highspy.kHighsInf, self.hi[cols])
            lp.row_lower_ = np.where(np.isinf(self.row_lo[keep]), -highspy.kHighsInf, self.row_lo[keep])
            lp.row_upper_ = np.where(np.isinf(self.row_hi[keep]), highspy.kHighsInf, self.row_hi[keep])
            lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
            lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = sub.indptr, sub.indices, sub.data
            h.passModel(lp)
            local = np.full(self.n, -1, np.int64)
            local[cols] = np.arange(len(cols))
            self._models[blk] = (h, cols, local)
        return self._models[blk]

    def optimum(self, weights: dict[int, float]) -> tuple[float, np.ndarray | None]:
        """Maximise sum(w x) over the columns given (all in one block); returns the optimum and
        the solution over the block's columns (None if unbounded)."""
        import highspy
        first = next(iter(weights))
        h, cols, local = self._model(int(self.block[first]))
        c = np.zeros(len(cols))
        for j, w in weights.items():
            c[local[j]] = -w  # HiGHS minimises
        h.changeColsCost(len(cols), np.arange(len(cols), dtype=np.int32), c)
        h.run()
        self.n_lp += 1
        status = h.getModelStatus()
        if status == highspy.HighsModelStatus.kUnbounded:
            return np.inf, None
        if status != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"the attacker's linear programme ended with {h.modelStatusToString(status)}")
        x = np.asarray(h.getSolution().col_value)
        return -h.getInfo().objective_function_value, (cols, x)

    def disclosed(self, threshold: int) -> list[dict[str, np.ndarray]]:
        out = []
        for i, s in enumerate(self.systems):
            found = {}
            sup = np.flatnonzero(s.suppressed)
            n_idx = self.col[i, "n"]
            for q, (kind, _) in s.kinds.items():
                idx = self.col[i, q]
                cells = sup[idx[sup] >= 0]
                if not len(cells):
                    continue
                v = idx[cells]
                t = self.truth[v]
                hi = np.array([self._max({j: 1.0}) for j in v])
                lo = np.array([-self._max({j: -1.0}) for j in v])
                unit = q == "n" or kind == "binary"
                if unit:
                    hi, lo = np.floor(hi + 1e-6), np.ceil(lo - 1e-6)
                pinned = hi - lo < 0.5
                if q == "n":
                    found["antall"] = cells[pinned]
                    found["under_grensen"] = cells[hi < threshold]
                else:
                    found[q] = cells[pinned]
                    if kind == "binary":
                        found[f"{q}_ingen"] = cells[hi < 0.5]
                        nn = n_idx[cells]
                        alle = []
                        for c, jn, js in zip(cells.tolist(), nn.tolist(), v.tolist()):
                            if jn < 0:  # a count the intervals pin: everyone iff the sum can't go below it
                                gap = self.bounds[i]["n"][1][c] - lo[cells.tolist().index(c)]
                            else:
                                gap = np.floor(self._max({jn: 1.0, js: -1.0}) + 1e-6)
                            if gap < 0.5:
                                alle.append(c)
                        found[f"{q}_alle"] = np.array(alle, np.int64)
            out.append({k: np.asarray(c, np.int64) for k, c in found.items() if len(c)})
        return out

    def _max(self, weights: dict[int, float]) -> float:
        return self.optimum(weights)[0]


__all__ = ["MAX_WEEKLY_HOURS", "LinearAttack", "System", "binding_rows", "disclosed", "exact_disclosed", "intervals",
           "row_cells", "row_values"]
