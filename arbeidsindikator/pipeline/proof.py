"""Proved room: points the bounded attacker cannot rule out, built from the certificates.

attacker.py gives the bounded attacker's intervals from outside (propagation: the attacker's
exact interval lies inside). That proves disclosures, not safety: an exact LP or MILP can be
tighter than propagation. Safety needs the other side: values of the whole publication,
different from the true ones, that satisfy everything the attacker knows. Two such points with
a suppressed cell at different values prove that he cannot pin it, whatever solver he has.

Every certificate of the secondary suppression (disclosure.py) is such a direction: an integer
vector d, zero on every published and empty cell, that keeps every relation of its system. The
true tables x are feasible; so is x + t d for every whole t as long as every bound holds. We
move one quantity at a time, the others staying at their true values:

- the number in work of a jobbK outcome: 0 <= s <= n, the hours of atidK moving with it by 19/K
  per person (a person in work after K months has at least 19/K hours a week on average), up to
  60 x n;
- the hours of an atidK outcome: 19/K x the number in work <= h <= 60 x n;
- the count n, in every system holding the certificate's months at once (a month's count is
  the same for the 3- and the 12-month outcomes): n >= 1 (or its band's lower end), n >= the
  number in work, n >= hours / 60, n <= the persons of a published period holding the month
  (and its band's upper end). A certificate that would move a count some system publishes, or
  a month of a system it does not hold in, moves no count.

Each certificate gives every cell of it a room up and down (the largest whole t each way,
times its sign); a cell's proved interval is the widest over its certificates. Because t and d
are whole, the points are whole: the proof holds against the integer (MILP) attacker too.

One certificate can be blocked where another is not: a cell where nobody is in work cannot go
down, so no single certificate that lowers it can add a person in work to the cell we prove.
A sum of certificates, x + sum(l_c d_c) with whole l_c, can cancel the blocked cell
(`combined_step`: a small integer programme over the certificates around the cell, HiGHS
through scipy, its answer checked in whole numbers here). That is how nobody / everybody in
work is proved for cells no single certificate reaches, here and in the protector, which looks
for further suppression only where no combination is found.

What is proved per suppressed cell: its count and each sum can take at least two values; a
count below the threshold can reach the threshold (no proof that the cell is small); at least
one person in work can be added and removed (no proof of "nobody" or "everybody"). For primary
cells, also the protection range: `share` of the sum each way (upwards some room at 0).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from .attacker import MAX_WEEKLY_HOURS, System
from .outcomes import IN_WORK_WEEKLY_HOURS


def _bounds(s: System) -> dict:
    """Per quantity, the (lower, upper) bound of each cell with every other quantity at its true
    value (module docstring)."""
    n = np.asarray(s.values["n"], float)
    b = {}
    for q, (kind, horizon) in s.kinds.items():
        if q == "n":
            continue
        v = np.asarray(s.values[q], float)
        if kind == "binary":
            # the hours of the same horizon move with it, 19/K per person (so both bounds hold)
            hours = [np.asarray(s.values[h], float) for h, (hk, hh) in s.kinds.items() if hk == "hours" and hh == horizon]
            b[q] = work_bounds(n, v, hours[0] if hours else None, horizon)
        elif kind == "hours":
            lo = np.zeros_like(v)
            for c, (ck, ch) in s.kinds.items():
                if ck == "binary" and ch == horizon:
                    lo = np.maximum(lo, IN_WORK_WEEKLY_HOURS / horizon * np.asarray(s.values[c], float))
            b[q] = (lo, MAX_WEEKLY_HOURS * n)
        else:
            b[q] = (np.full_like(v, -np.inf), np.full_like(v, np.inf))
    lo_n = np.maximum(s.floor, 1.0)
    for q, (kind, _) in s.kinds.items():
        if kind == "binary":
            lo_n = np.maximum(lo_n, np.asarray(s.values[q], float))
        elif kind == "hours":
            lo_n = np.maximum(lo_n, np.ceil(np.asarray(s.values[q], float) / MAX_WEEKLY_HOURS - 1e-6))
    b["n"] = (lo_n, s.caps)
    return b


def _steps(v: np.ndarray, lo: np.ndarray, hi: np.ndarray, sign: np.ndarray, whole: bool) -> tuple[float, float]:
    """How far t can go up and down along the signs before a cell leaves its bounds."""
    plus = np.where(sign > 0, hi - v, v - lo).min()
    minus = np.where(sign > 0, v - lo, hi - v).min()
    if whole:
        plus, minus = np.floor(plus + 1e-6), np.floor(minus + 1e-6)
    return max(float(plus), 0.0), max(float(minus), 0.0)


def prove(systems: list[System], certificates: list, n_months_cells: int) -> list[dict]:
    """Rooms per system and quantity from the certificates (module docstring). `certificates`:
    (systems it holds in, flat cells, signs); `n_months_cells`: flat cells below it are months
    (their counts are shared by the systems)."""
    bounds = [_bounds(s) for s in systems]
    rooms = [{q: (np.zeros(len(s.unknown)), np.zeros(len(s.unknown))) for q in s.kinds} for s in systems]
    public = [s.count_public if s.count_public is not None else np.zeros(len(s.unknown), bool) for s in systems]
    exists = [np.asarray(s.values["n"]) > 0 for s in systems]
    for valid, cells, sign in certificates:
        for j in valid:
            s, b = systems[j], bounds[j]
            for q, (kind, _) in s.kinds.items():
                if q == "n":
                    continue
                plus, minus = _steps(np.asarray(s.values[q], float)[cells], b[q][0][cells], b[q][1][cells], sign,
                                     kind == "binary")
                _widen(rooms[j][q], cells, sign, plus, minus)
        # the count: moved in every system whose months it touches, or not at all
        months = cells[cells < n_months_cells]
        touch = [j for j in range(len(systems)) if exists[j][months].any() or j in valid]
        if not set(touch) <= set(valid) or any(public[j][cells].any() for j in touch):
            continue
        best = (0.0, 0.0)
        for steps in (_count_alone, _count_with_work):
            plus, minus = np.inf, np.inf
            for j in touch:
                p, m = steps(systems[j], bounds[j], cells, sign)
                plus, minus = min(plus, p), min(minus, m)
            best = (max(best[0], plus), max(best[1], minus))
        for j in touch:
            _widen(rooms[j]["n"], cells, sign, *best)
    _combine(systems, bounds, rooms, certificates)
    return rooms


def _combine(systems: list[System], bounds: list, rooms: list, certificates: list) -> None:
    """Nobody / everybody in work, where no single certificate proves otherwise: a person more
    in work, or out of work, along a sum of certificates (`combined_step`)."""
    index = certificate_index(certificates)
    for j, (s, b) in enumerate(zip(systems, bounds)):
        n = np.asarray(s.values["n"], float)
        for q, (kind, _) in s.kinds.items():
            if kind != "binary":
                continue
            v = np.asarray(s.values[q], float)
            down, up = rooms[j][q]
            for direction, cells in ((1, np.flatnonzero(s.suppressed & (v + up < 1))),
                                     (-1, np.flatnonzero(s.suppressed & (n - (v - down) < 1)))):
                for c in cells.tolist():
                    if combined_step(certificates, index, j, v, b[q][0], b[q][1], s.suppressed, c, direction):
                        (up if direction > 0 else down)[c] = max((up if direction > 0 else down)[c], 1.0)


def work_bounds(n: np.ndarray, work: np.ndarray, hours: np.ndarray | None, horizon: int | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """The range of the number in work with the count and every other sum at its true value,
    the hours of the same horizon moving with it by 19/K per person (`_bounds`)."""
    hi = np.asarray(n, float).copy()
    if hours is not None:
        room = (MAX_WEEKLY_HOURS * n - hours) * horizon / IN_WORK_WEEKLY_HOURS
        hi = np.minimum(hi, work + np.floor(room + 1e-6))
    return np.zeros_like(hi), hi


def certificate_index(certificates: list) -> dict:
    """flat cell -> the certificates (by position) that hold it."""
    at = defaultdict(list)
    for i, (_, cells, _) in enumerate(certificates):
        for c in cells.tolist():
            at[c].append(i)
    return at


COMBINED_CERTIFICATES = 300  # at most this many certificates in one programme
COMBINED_SECONDS = 2.0
STEPS = 2  # each certificate taken at most this many times either way


def combined_step(certificates: list, index: dict, system: int, values: np.ndarray, lo: np.ndarray,
                  hi: np.ndarray, bounded: np.ndarray, target: int, direction: int) -> bool:
    """Whether whole multiples l_c of the certificates around `target` (flat) move it by at
    least one whole unit in `direction` (+1 / -1) with every bounded cell within [lo, hi]
    (flat arrays of one system and quantity). The certificates: those holding the target and
    those holding a cell that blocks them; if that is not enough, once more. The solver's
    answer is rounded and checked here, so a True is a proof."""
    own = lambda cell: [i for i in index.get(cell, ()) if system in certificates[i][0]]  # noqa: E731
    ids = own(target)
    if not ids:
        return False
    for _ in range(2):  # the smaller programme first: most cells need few certificates
        blocked = set()
        for i in ids:
            _, cells, _ = certificates[i]
            v = values[cells]
            room = np.minimum(hi[cells] - v, v - lo[cells])  # a cell that cannot move both ways
            blocked.update(cells[bounded[cells] & (room < 1)].tolist())
        more = sorted({i for c in blocked for i in own(c)} - set(ids), key=lambda i: (len(certificates[i][1]), i))
        ids = (ids + more)[:COMBINED_CERTIFICATES]  # the smallest first: fewer cells to keep in range
        if _solve(certificates, ids, values, lo, hi, bounded, target, direction):
            return True
    return False


def _solve(certificates, ids, values, lo, hi, bounded, target, direction) -> bool:
    """One programme over the certificates `ids` (combined_step)."""
    cells = np.unique(np.concatenate([certificates[i][1] for i in ids]))
    rows = np.concatenate([np.searchsorted(cells, certificates[i][1]) for i in ids])
    cols = np.repeat(np.arange(len(ids)), [len(certificates[i][1]) for i in ids])
    vals = np.concatenate([certificates[i][2] for i in ids]).astype(float)
    d = sp.csr_matrix((vals, (rows, cols)), shape=(len(cells), len(ids)))
    v = values[cells]
    # a cell that no admissible step can push out of its range need not be a constraint
    reach = STEPS * (abs(d) @ np.ones(len(ids)))
    keep = bounded[cells] & ((v - reach < lo[cells]) | (v + reach > hi[cells]))
    t = int(np.searchsorted(cells, target))
    # the linear programme first: its vertex is often whole already (the certificates are
    # +-1 vectors); the integer programme only where it is not
    a_ub = sp.vstack([d[keep], -d[keep], -direction * d[[t]]]).tocsr()
    b_ub = np.r_[(hi[cells] - v)[keep], (v - lo[cells])[keep], -1.0]
    lp = linprog(np.zeros(len(ids)), A_ub=a_ub, b_ub=b_ub, bounds=(-STEPS, STEPS), method="highs")
    if lp.status == 2:
        return False
    if lp.status == 0 and _whole_and_inside(d, np.rint(lp.x), v, lo[cells], hi[cells], keep, t, direction):
        return True
    res = milp(np.zeros(len(ids)), integrality=np.ones(len(ids)), bounds=Bounds(-STEPS, STEPS),
               constraints=[LinearConstraint(d[keep], (lo[cells] - v)[keep], (hi[cells] - v)[keep]),
                            LinearConstraint(direction * d[[t]], 1, np.inf)],
               options={"time_limit": COMBINED_SECONDS})
    return res.x is not None and _whole_and_inside(d, np.rint(res.x), v, lo[cells], hi[cells], keep, t, direction)


def _whole_and_inside(d, steps, v, lo, hi, keep, t, direction) -> bool:
    """The check that makes a solver's answer a proof: whole steps, every cell in range."""
    moved = v + d @ steps
    return bool(direction * (moved[t] - v[t]) >= 1 and np.all((moved >= lo - 1e-6)[keep])
                and np.all((moved <= hi + 1e-6)[keep]))


def _count_alone(s: System, b: dict, cells: np.ndarray, sign: np.ndarray) -> tuple[float, float]:
    """Steps of the count with every sum at its true value."""
    return _steps(np.asarray(s.values["n"], float)[cells], b["n"][0][cells], b["n"][1][cells], sign, True)


def _count_with_work(s: System, b: dict, cells: np.ndarray, sign: np.ndarray) -> tuple[float, float]:
    """Steps of the count with the persons in work moving with it (persons not in work stay),
    and their hours by 19/K each: a small cell where everybody works can grow."""
    n = np.asarray(s.values["n"], float)[cells]
    plus, minus = _steps(n, np.maximum(s.floor[cells], 1.0), s.caps[cells], sign, True)
    for q, (kind, horizon) in s.kinds.items():
        v = np.asarray(s.values[q], float)[cells]
        if kind == "binary":
            p, m = _steps(v, np.zeros_like(v), np.full_like(v, np.inf), sign, True)
        elif kind == "hours":
            paired = any(k == "binary" and h == horizon for k, h in s.kinds.values())
            a = IN_WORK_WEEKLY_HOURS / horizon if paired else 0.0
            slack = (MAX_WEEKLY_HOURS * n - v) / (MAX_WEEKLY_HOURS - a)  # hours <= 60 x persons
            p, m = _steps(slack, np.zeros_like(v), np.full_like(v, np.inf), sign, True)
        else:
            continue
        plus, minus = min(plus, p), min(minus, m)
    return plus, minus


def _widen(room: tuple, cells: np.ndarray, sign: np.ndarray, plus: float, minus: float) -> None:
    down, up = room
    np.maximum.at(up, cells, np.where(sign > 0, plus, minus))
    np.maximum.at(down, cells, np.where(sign > 0, minus, plus))


def unproved(systems: list[System], rooms: list, threshold: int, primary: np.ndarray | None = None,
             share: float = 0.0) -> list[dict]:
    """Per system, reason -> suppressed flat cells for which the certificates prove nothing of:
    'antall' (the count can take two values), 'under_grensen' (the count can reach the
    threshold), '<q>' (the sum can take two values: a step of one person, or half an hour),
    '<q>_ingen' / '<q>_alle' (someone can be added / removed from work); with `primary` and
    `share`, '<q>_rom' (the primary cell's protection range)."""
    out = []
    for s, r in zip(systems, rooms):
        sup = s.suppressed
        n = np.asarray(s.values["n"], float)
        down, up = r["n"]
        own = sup if s.count_public is None else sup & ~s.count_public
        res = {"antall": own & (up + down < 1), "under_grensen": own & (n + up < threshold)}
        for q, (kind, _) in s.kinds.items():
            if q == "n":
                continue
            v = np.asarray(s.values[q], float)
            down, up = r[q]
            step = 1.0 if kind == "binary" else 0.5
            res[q] = sup & (up + down < step)
            if kind == "binary":
                res[f"{q}_ingen"] = sup & (v + up < 1)
                res[f"{q}_alle"] = sup & (n - (v - down) < 1)
            if primary is not None and share > 0:
                need = share * np.abs(v)
                res[f"{q}_rom"] = sup & primary & ((up < np.maximum(need, 1e-9)) | (down < np.minimum(need, v)))
        out.append({k: np.flatnonzero(v) for k, v in res.items() if v.any()})
    return out


__all__ = ["certificate_index", "combined_step", "prove", "unproved", "work_bounds"]
