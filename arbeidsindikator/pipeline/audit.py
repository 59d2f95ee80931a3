"""The disclosure audit: an attacker's solver over exactly what is published.

It takes the published monthly and period tables (nothing else: not the person rows, not the
suppression code's own arrays), turns every published cell into what an attacker gets from it
(persons x mean = the sums of the actual, expected and indicator values, and the person-months
themselves), and sets up every exact linear relation between cells that the tables' own keys
imply:

- the groups of each breakdown add up to the unit's 'Alle' cell (same month or period, unit);
- the offices with a region's REGION_ID add up to the region, the regions (with NOE) to the
  country (same month or period, group). For a period, only offices whose REGION_ID is the
  same in every month of it count: a moved office's period cell belongs to two regions;
- a period cell is the sum of the monthly cells of its months (same unit, group).

A suppressed cell's values are unknowns; a published cell's are known; an absent cell is 0.
For every suppressed cell the audit decides whether the relations determine it:

1. peeling: a relation with one unknown left gives it; repeated until nothing changes (this is
   the differencing attack: a period minus its months, a region minus its other offices, ...);
2. the witness (disclosure.py): a claimed perturbation that changes suppressed cells only. The
   audit checks with integer arithmetic that it satisfies every relation it set up; then each
   cell where it is non-zero is proved undetermined (its value can move without changing any
   published number);
3. what remains (no witness, or a cell the witness does not move) is decided numerically: a
   random vector projected on the relations' null space (LSQR) moves every undetermined cell;
   a cell it does not move is solved for explicitly, and reported with the value recovered.

Optionally (`intervals`), for a sample of suppressed cells the attacker's interval for the sum
of the actual outcome is computed by linear programming (sums at least 0), with the cells more
than a few relations away fixed at their true values: that gives the attacker more than he has,
so the interval shown is a lower bound of the real protection.

A run whose audit finds a determined cell is not stored (api.run_indicator).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import linprog
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import lsqr

from .publish import DECIMALS
from .uncertainty import month_numbers

STATS = ("n", "actual", "expected", "indicator")  # the additive statistics of a cell
UNIT_KEY = ["ORG_NIVAA", "ORG_STED_ID"]
GROUP_KEY = ["NEDBRYTNING", "GRUPPE"]


class DisclosureError(RuntimeError):
    """The published tables would let suppressed values be recovered."""


@dataclass
class OutcomeAudit:
    outcome: str
    cells: int
    suppressed: int
    relations: int
    peeled: int  # determined by repeated differencing
    proved: int  # shown undetermined by the witness
    numeric_free: int  # shown undetermined by the null-space projection
    determined: pd.DataFrame  # the determined cells, with the values an attacker gets
    intervals: pd.DataFrame | None = None


@dataclass
class AuditResult:
    outcomes: list[OutcomeAudit] = field(default_factory=list)
    witness_ok: bool | None = None

    @property
    def determined(self) -> pd.DataFrame:
        frames = [o.determined for o in self.outcomes if len(o.determined)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @property
    def passed(self) -> bool:
        return all(len(o.determined) == 0 for o in self.outcomes)

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([{"UTFALL": o.outcome, "celler": o.cells, "prikket": o.suppressed, "relasjoner": o.relations,
                              "funnet_ved_differanser": o.peeled, "bevist_ved_vitne": o.proved,
                              "bevist_numerisk": o.numeric_free, "bestemt": len(o.determined)} for o in self.outcomes])


def _count_col(d: pd.DataFrame) -> str:
    """The published count that the means are over (person-months)."""
    return "ANTALL_PERSONMANEDER" if "ANTALL_PERSONMANEDER" in d.columns else "ANTALL_PERSONER"


def _cells(monthly: pd.DataFrame, period: pd.DataFrame) -> pd.DataFrame:
    """One row per published cell of one outcome: its keys (labels for the report, integer codes
    for the relations), whether it is suppressed, and the known sums."""
    parts = []
    for d, kind in ((monthly, "m"), (period, "p")):
        if d is None or d.empty:
            continue
        n = d[_count_col(d)].astype(float)
        c = pd.DataFrame({
            "kind": kind,
            "time": (pd.to_datetime(d["BEHOLDNINGSMAANED"]).dt.strftime("%Y-%m-%d") if kind == "m"
                     else d["PERIODE"].astype(str)).to_numpy(),
            "lvl": d["ORG_NIVAA"].astype(int).to_numpy(), "unit": d["ORG_STED_ID"].astype(str).to_numpy(),
            "region": d["REGION_ID"].astype(object).where(d["REGION_ID"].notna(), None).to_numpy(),
            "bd": d["NEDBRYTNING"].astype(str).to_numpy(), "grp": d["GRUPPE"].astype(str).to_numpy(),
            "supp": d["PRIKKET"].astype(bool).to_numpy(),
            "n": n.to_numpy(), "actual": (n * d["faktisk"]).to_numpy(), "expected": (n * d["forventet"]).to_numpy(),
            "indicator": (n * d["INDIKATOR"]).to_numpy()})
        if kind == "p":
            c["a"], c["b"] = month_numbers(d["PERIODE_FRA"]), month_numbers(d["PERIODE_TIL"])
        else:
            c["a"] = c["b"] = month_numbers(d["BEHOLDNINGSMAANED"])
        parts.append(c)
    cells = pd.concat(parts, ignore_index=True)
    cells["id"] = np.arange(len(cells))
    # integer codes: every key compared as a small integer, never as a string
    cells["k"] = (cells["kind"] == "p").astype(np.int8)
    cells["t"] = np.where(cells["k"] == 1, -1 - pd.factorize(cells["time"])[0], cells["a"])
    ids = pd.factorize(pd.concat([cells["unit"], cells["region"].fillna("")], ignore_index=True))[0]
    cells["u"] = ids[:len(cells)]
    cells["r"] = np.where(cells["region"].notna(), ids[len(cells):], -1)
    cells["bdc"] = pd.factorize(cells["bd"])[0]
    cells["g"] = pd.factorize(pd.MultiIndex.from_arrays([cells["bd"], cells["grp"]]))[0]
    cells["alle"] = (cells["bd"] == "Alle").to_numpy()
    return cells


def _relations(cells: pd.DataFrame) -> tuple[sp.csr_matrix, int]:
    """Every exact relation as a row of a sparse matrix over the cells: +1 the parent, -1 each child."""
    rows, cols, vals = [], [], []
    n_rel = 0

    def family(children: pd.DataFrame, parents: pd.DataFrame, on: list[str]):
        """Relations parent = sum of its children, matching on the integer keys `on`; only
        parents that exist (an empty parent has empty children)."""
        nonlocal n_rel
        if children.empty or parents.empty:
            return
        fam = children[on].drop_duplicates().merge(parents[on + ["id"]], on=on, how="inner").reset_index(drop=True)
        fam["rel"] = np.arange(len(fam)) + n_rel
        ch = children[on + ["id"]].merge(fam[on + ["rel"]], on=on, how="inner")
        rows.extend([fam["rel"].to_numpy(), ch["rel"].to_numpy()])
        cols.extend([fam["id"].to_numpy(), ch["id"].to_numpy()])
        vals.extend([np.ones(len(fam)), -np.ones(len(ch))])
        n_rel += len(fam)

    key = cells[["k", "t", "lvl", "u", "r", "bdc", "g", "a", "b", "id", "alle"]]
    # the groups of each breakdown within a unit
    family(key[~key["alle"]], key[key["alle"]].drop(columns="bdc").merge(
        key.loc[~key["alle"], ["k", "t", "lvl", "u", "bdc"]].drop_duplicates(), on=["k", "t", "lvl", "u"]),
        ["k", "t", "lvl", "u", "bdc"])
    # offices within regions. In a period, an office that was in two regions (its monthly rows
    # say which) belongs to neither region's relation exactly: those relations are left out
    offices = key[key["lvl"] == 3]
    regions = key[key["lvl"] == 2].assign(r=lambda x: x["u"])
    per_off = offices[offices["k"] == 1]
    if len(per_off):
        months = offices.loc[offices["k"] == 0, ["u", "a", "r"]].drop_duplicates()
        j = per_off[["id", "t", "u", "a", "b"]].merge(months, on="u", suffixes=("", "_m"))
        j = j[(j["a_m"] >= j["a"]) & (j["a_m"] <= j["b"])]
        moved = j.groupby("id")["r"].transform("nunique") > 1
        if moved.any():
            bad = j.loc[moved, ["t", "r"]].drop_duplicates().assign(bad=True)
            offices = offices[~offices["id"].isin(j.loc[moved, "id"])]
            regions = regions.merge(bad, on=["t", "r"], how="left")
            regions = regions[regions["bad"].isna()].drop(columns="bad")
    family(offices, regions, ["k", "t", "r", "g"])
    family(key[key["lvl"] == 2], key[key["lvl"] == 1], ["k", "t", "g"])
    # months within periods: a dense lookup (unit x group, month) -> monthly cell
    per, mon = key[key["k"] == 1], key[key["k"] == 0]
    if len(per) and len(mon):
        ug = pd.factorize(pd.MultiIndex.from_arrays([key["lvl"], key["u"], key["g"]]))[0]
        m0, m1 = int(mon["a"].min()), int(mon["a"].max())
        look = np.full((ug.max() + 1, m1 - m0 + 1), -1, np.int64)
        look[ug[mon.index], mon["a"].to_numpy() - m0] = mon["id"].to_numpy()
        a = np.clip(per["a"].to_numpy() - m0, 0, m1 - m0 + 1)
        b = np.clip(per["b"].to_numpy() - m0 + 1, 0, m1 - m0 + 1)
        length = np.maximum(b - a, 0)
        rel = np.repeat(np.arange(len(per)), length)
        month = np.repeat(a, length) + (np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length))
        child = look[np.repeat(ug[per.index], length), month]
        ok = child >= 0
        rows.extend([n_rel + np.arange(len(per)), n_rel + rel[ok]])
        cols.extend([per["id"].to_numpy(), child[ok]])
        vals.extend([np.ones(len(per)), -np.ones(int(ok.sum()))])
        n_rel += len(per)
    a = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_rel, len(cells)))
    return a, n_rel


def _peel(a: sp.csr_matrix, cells: pd.DataFrame, unknown: np.ndarray) -> tuple[np.ndarray, dict]:
    """The differencing attack: a relation with a single unknown gives it; repeated until
    nothing changes. Returns the cells found (in order) and their values per statistic."""
    known = ~unknown
    x = {s: np.where(known, np.nan_to_num(cells[s].to_numpy(float)), 0.0) for s in STATS}
    partial = {s: a @ x[s] for s in STATS}  # each relation's sum over the cells known so far
    csc = a.tocsc()
    left = np.asarray((a[:, np.flatnonzero(unknown)] != 0).sum(axis=1)).ravel()
    queue = list(np.flatnonzero(left == 1))
    peeled = []
    while queue:
        r = queue.pop()
        if left[r] != 1:
            continue
        cols = a.indices[a.indptr[r]:a.indptr[r + 1]]
        coef = a.data[a.indptr[r]:a.indptr[r + 1]]
        free = ~known[cols]
        if free.sum() != 1:
            continue
        j, c = int(cols[free][0]), float(coef[free][0])
        known[j] = True
        peeled.append(j)
        for s in STATS:
            x[s][j] = -partial[s][r] / c
        col_rows = csc.indices[csc.indptr[j]:csc.indptr[j + 1]]
        col_vals = csc.data[csc.indptr[j]:csc.indptr[j + 1]]
        for s in STATS:
            partial[s][col_rows] += col_vals * x[s][j]
        left[col_rows] -= 1
        queue.extend(col_rows[left[col_rows] == 1].tolist())
    peeled = np.array(peeled, np.int64)
    return peeled, {s: x[s][peeled] for s in STATS}


def _decide(a: sp.csr_matrix, x: dict, core: np.ndarray, undecided: np.ndarray, rng: np.random.Generator,
            dense_limit: int = 800) -> tuple[np.ndarray, list[tuple[int, dict]]]:
    """Decide the `undecided` cells among the `core` unknowns (suppressed, not peeled): which are
    free (a null-space vector of the relations moves them) and which are determined, with the
    values an attacker gets (`x`: the known sums per statistic, peeled ones included). Works per
    connected component of the unknowns: dense SVD for small ones, LSQR for the others."""
    free = np.zeros(len(core), bool)
    found = []
    c_idx = np.flatnonzero(core)
    a_c = a[:, c_idx].tocsr()
    rows = np.flatnonzero(np.diff(a_c.indptr) > 0)
    a_c = a_c[rows]
    n_r, n_c = a_c.shape
    pattern = (a_c != 0).astype(np.int8)
    graph = sp.bmat([[None, pattern], [pattern.T, None]]).tocsr()
    _, label = connected_components(graph, directed=False)
    cell_label, rel_label = label[n_r:], label[:n_r]
    lone = np.ones(n_c, bool)
    lone[np.unique(a_c.indices)] = False  # in no relation at all: free
    free[c_idx[lone]] = True
    for comp in np.unique(cell_label[undecided[c_idx] & ~lone]):
        cols = np.flatnonzero(cell_label == comp)
        rws = np.flatnonzero(rel_label == comp)
        sub = a_c[rws][:, cols]
        dense = len(cols) <= dense_limit
        if dense:
            _, sv, vt = np.linalg.svd(sub.toarray(), full_matrices=True)
            rank = int((sv > 1e-9 * max(1.0, sv.max(initial=0))).sum())
            moved = np.sqrt((vt[rank:] ** 2).sum(axis=0)) > 1e-8
        else:
            moved = np.zeros(len(cols), bool)
            for _ in range(2):
                r = rng.standard_normal(len(cols))
                y = lsqr(sub.T.tocsr(), r, atol=1e-14, btol=1e-14, iter_lim=50000)[0]
                z = r - sub.T @ y
                if np.abs(sub @ z).max() <= 1e-6 * max(1.0, np.abs(z).max()):
                    moved |= np.abs(z) > 1e-6
        free[c_idx[cols[moved]]] = True
        det = np.flatnonzero(~moved & undecided[c_idx[cols]])
        if not len(det):
            continue
        # a determined cell has the same value in every solution: take one, per statistic
        full = a[rows[rws]]
        values = {}
        for st in STATS:
            b = -(full @ x[st])
            if dense:
                sol = np.linalg.lstsq(sub.toarray(), b, rcond=None)[0]
            else:
                sol = lsqr(sub, b, atol=1e-14, btol=1e-14, iter_lim=50000)[0]
            values[st] = sol[det]
        found += [(int(c_idx[cols[j]]), {st: float(values[st][i]) for st in STATS}) for i, j in enumerate(det)]
    return free, found


# Published means are rounded (publish.DECIMALS): a published cell's sum n x mean is known to
# within n x half a unit of the last decimal, so the attacker's relations hold within the sum of
# those errors. Equalities on rounded sums would have no solution; these bands are what he knows.
HALF_UNIT = 0.5 * 10.0 ** -DECIMALS["faktisk"]


def _slack(a: sp.csr_matrix, n_known: np.ndarray) -> np.ndarray:
    """Per relation, how far the rounded published sums in it can be from the exact ones."""
    return abs(a) @ (np.nan_to_num(n_known) * HALF_UNIT) + 1e-9


def _band_lp(c: np.ndarray, a_eq, b: np.ndarray, slack: np.ndarray):
    """min c'x subject to b - slack <= a_eq x <= b + slack, x >= 0: as equalities with one
    bounded error variable per relation (a_eq x + e = b, |e| <= slack), which the solver
    handles as cheaply as the exact equalities (two-sided rows would double the problem)."""
    n, m = a_eq.shape[1], a_eq.shape[0]
    a = sp.hstack([sp.csr_matrix(a_eq), sp.identity(m, format="csr")]).tocsr()
    bounds = [(0, None)] * n + [(-e, e) for e in slack]
    res = linprog(np.concatenate([c, np.zeros(m)]), A_eq=a, b_eq=b, bounds=bounds, method="highs")
    if res.status == 0:
        res.x = res.x[:n]
    return res


def _intervals(a: sp.csr_matrix, cells: pd.DataFrame, supp: np.ndarray, sample: np.ndarray, radius: int = 3) -> pd.DataFrame:
    """LP bounds of the sum of the actual outcome for the sampled suppressed cells, the cells
    further than `radius` relations away fixed at their true values (a lower bound of the room)."""
    truth = np.nan_to_num(cells["actual_true"].to_numpy()) if "actual_true" in cells else None
    if truth is None:
        return pd.DataFrame()
    a_csc = a.tocsc()
    out = []
    for j in sample:
        near = {int(j)}
        frontier = {int(j)}
        rel = set()
        for _ in range(radius):
            rs = set(np.unique(a_csc[:, list(frontier)].nonzero()[0]).tolist()) - rel
            rel |= rs
            new = set(np.unique(a[list(rs)].nonzero()[1]).tolist()) if rs else set()
            new = {c for c in new if supp[c]} - near
            near |= new
            frontier = new
            if not frontier:
                break
        var = np.array(sorted(near))
        rows = np.array(sorted(rel))
        if not len(rows):
            continue
        sub = a[rows]
        fixed = np.ones(a.shape[1], bool)
        fixed[var] = False
        known = np.where(supp, truth, np.nan_to_num(cells["actual"].to_numpy()))
        b = -(sub[:, fixed] @ known[fixed])
        slack = _slack(sub[:, fixed], cells["n_true"].to_numpy()[fixed])
        a_eq = sub[:, var]
        c = np.zeros(len(var))
        c[np.searchsorted(var, j)] = 1.0
        lo = _band_lp(c, a_eq, b, slack)
        hi = _band_lp(-c, a_eq, b, slack)
        if lo.status != 0 or hi.status not in (0, 3):
            continue
        out.append({"id": int(j), "verdi": truth[j], "nedre": lo.fun, "ovre": -hi.fun if hi.status == 0 else np.inf})
    return pd.DataFrame(out)


def _intervals_exact(a: sp.csr_matrix, cells: pd.DataFrame, supp: np.ndarray, sample: np.ndarray) -> pd.DataFrame:
    """The attacker's LP interval of the sum of the actual outcome for the sampled suppressed
    cells, over every relation of the cell's connected component of unknowns (sums at least 0).
    Needs only the published tables."""
    x = np.where(supp, 0.0, np.nan_to_num(cells["actual"].to_numpy(float)))
    s_idx = np.flatnonzero(supp)
    a_s = a[:, s_idx].tocsr()
    rows = np.flatnonzero(np.diff(a_s.indptr) > 0)
    a_s = a_s[rows]
    b = -(a[rows] @ x)
    slack = _slack(a[rows], np.where(supp, 0.0, cells["n"].to_numpy(float)))
    n_r = a_s.shape[0]
    pattern = (a_s != 0).astype(np.int8)
    _, label = connected_components(sp.bmat([[None, pattern], [pattern.T, None]]).tocsr(), directed=False)
    cell_label, rel_label = label[n_r:], label[:n_r]
    out = []
    for j in sample:
        k = int(np.searchsorted(s_idx, j))
        cols = np.flatnonzero(cell_label == cell_label[k])
        rws = np.flatnonzero(rel_label == cell_label[k])
        c = np.zeros(len(cols))
        c[np.searchsorted(cols, k)] = 1.0
        a_eq = a_s[rws][:, cols]
        lo = _band_lp(c, a_eq, b[rws], slack[rws])
        hi = _band_lp(-c, a_eq, b[rws], slack[rws])
        if lo.status != 0:
            continue
        out.append({"id": int(j), "nedre": lo.fun, "ovre": -hi.fun if hi.status == 0 else np.inf, "variabler": len(cols)})
    return pd.DataFrame(out)


def audit(monthly: pd.DataFrame, period: pd.DataFrame | None = None, witness: pd.DataFrame | None = None,
          truth: tuple[pd.DataFrame, pd.DataFrame] | None = None, intervals: int = 0, seed: int = 0,
          outcomes: list[str] | None = None) -> AuditResult:
    """Attack the published tables (module docstring). `witness`: rows UTFALL, the cell's keys
    (BEHOLDNINGSMAANED or PERIODE, ORG_NIVAA, ORG_STED_ID, NEDBRYTNING, GRUPPE) and VERDI.
    `truth`: the unsuppressed tables, only to measure the LP intervals of `intervals` cells."""
    result = AuditResult()
    rng = np.random.default_rng(seed)
    period = period if period is not None else monthly.iloc[:0]
    for outcome in outcomes or sorted(monthly["UTFALL"].unique()):
        m = monthly[monthly["UTFALL"] == outcome]
        p = period[period["UTFALL"] == outcome] if len(period) else None
        cells = _cells(m, p)
        a, n_rel = _relations(cells)
        supp = cells["supp"].to_numpy()
        # peeling
        peeled, peeled_values = _peel(a, cells, supp)
        # witness: integer check against the relations set up here
        proved = np.zeros(len(cells), bool)
        primary = np.zeros(len(cells), bool)  # as the protection reports it (the witness table)
        room = np.zeros(len(cells), bool)
        if witness is not None and len(witness):
            mine = witness[witness["UTFALL"] == outcome]
            if "PRIMAER" in mine:
                primary = _witness_vector(cells, mine, "PRIMAER").astype(bool)
                room = _witness_vector(cells, mine, "ROM_BEVIST").astype(bool)
            w = _witness_vector(cells, mine)
            if w is not None:
                ok = not np.any((a @ w.astype(np.int64)) != 0) and not np.any(w[~supp] != 0)
                result.witness_ok = ok if result.witness_ok is None else (result.witness_ok and ok)
                if ok:
                    proved = w != 0
        # numeric decision for what the witness does not cover
        core = supp.copy()
        core[peeled] = False
        x = {st: np.where(supp, 0.0, np.nan_to_num(cells[st].to_numpy(float))) for st in STATS}
        for st in STATS:
            x[st][peeled] = peeled_values[st]
        undecided = core & ~proved
        numeric_free = np.zeros(len(cells), bool)
        found = []
        if undecided.any():
            free, found = _decide(a, x, core, undecided, rng)
            numeric_free = free & undecided
        keys = ["kind", "time", "lvl", "unit", "bd", "grp"]  # the labels, for the report
        det_rows = [{**cells.loc[j, keys].to_dict(), "UTFALL": outcome, **{f"{s}_funnet": float(peeled_values[s][i]) for s in STATS}}
                    for i, j in enumerate(peeled)]
        det_rows += [{**cells.loc[j, keys].to_dict(), "UTFALL": outcome, **{f"{s}_funnet": v for s, v in vals.items()}}
                     for j, vals in found]
        det = pd.DataFrame(det_rows)
        oa = OutcomeAudit(outcome, len(cells), int(supp.sum()), n_rel, len(peeled), int((proved & supp).sum()),
                          int(numeric_free.sum()), det)
        if intervals and truth is None and supp.any():
            pool = np.flatnonzero(supp & primary) if primary.any() else np.flatnonzero(supp)
            sample = rng.choice(pool, size=min(intervals, len(pool)), replace=False)
            oa.intervals = _intervals_exact(a, cells, supp, sample)
            if len(oa.intervals):
                ids = oa.intervals["id"].to_numpy()
                oa.intervals = pd.concat([cells.loc[ids, ["kind", "time", "lvl", "unit", "bd", "grp"]].reset_index(drop=True),
                                          oa.intervals.reset_index(drop=True)], axis=1)
                oa.intervals["ROM_BEVIST"] = room[ids]
        if intervals and truth is not None and supp.any():
            tm, tp = truth
            tc = _cells(tm[tm["UTFALL"] == outcome], tp[tp["UTFALL"] == outcome] if tp is not None else None)
            cells["actual_true"] = cells[["kind", "time", "lvl", "unit", "bd", "grp"]].merge(
                tc[["kind", "time", "lvl", "unit", "bd", "grp", "actual"]], how="left")["actual"].to_numpy()
            cells["n_true"] = cells[["kind", "time", "lvl", "unit", "bd", "grp"]].merge(
                tc[["kind", "time", "lvl", "unit", "bd", "grp", "n"]], how="left")["n"].to_numpy()
            pool = np.flatnonzero(supp & primary) if primary.any() else np.flatnonzero(supp)
            sample = rng.choice(pool, size=min(intervals, len(pool)), replace=False)
            oa.intervals = _intervals(a, cells, supp, sample)
            if len(oa.intervals):
                oa.intervals["PRIMAER"] = primary[oa.intervals["id"].to_numpy()]
                oa.intervals["ROM_BEVIST"] = room[oa.intervals["id"].to_numpy()]
        result.outcomes.append(oa)
    return result


def _witness_vector(cells: pd.DataFrame, w: pd.DataFrame, column: str = "VERDI") -> np.ndarray | None:
    if w.empty:
        return None
    kind = np.where(w["PERIODE"].notna(), "p", "m") if "PERIODE" in w else np.full(len(w), "m")
    time = np.where(kind == "p", w.get("PERIODE", pd.Series(index=w.index, dtype=object)).astype(str),
                    w["BEHOLDNINGSMAANED"].astype(str))
    keyed = pd.DataFrame({"kind": kind, "time": time, "lvl": w["ORG_NIVAA"].astype(int).to_numpy(),
                          "unit": w["ORG_STED_ID"].astype(str).to_numpy(), "bd": w["NEDBRYTNING"].astype(str).to_numpy(),
                          "grp": w["GRUPPE"].astype(str).to_numpy(), "VERDI": w[column].to_numpy().astype(np.int64)})
    j = cells[["kind", "time", "lvl", "unit", "bd", "grp", "id"]].merge(keyed, how="inner")
    v = np.zeros(len(cells), np.int64)
    v[j["id"].to_numpy()] = j["VERDI"].to_numpy().astype(np.int64)
    if len(j) < len(keyed):  # the witness names cells that are not published: it proves nothing
        return np.zeros(len(cells), np.int64)
    return v


__all__ = ["AuditResult", "DisclosureError", "OutcomeAudit", "audit"]
