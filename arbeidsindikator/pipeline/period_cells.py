"""Period cells: the moments of every (level, breakdown) cell of a period with each person's
months clustered.

The clustered variance of a period cell needs, per person, the square of the person's sums in
that cell (publish._long turns the moments into means and variances). A person whose months
all lie in one finest cell (office x every breakdown group) has the same sums in every
coarser cell; a person who moved (another office, an older age group, ...) has different sums
in different coarser cells. The person-months stream once, each person's months together
(publish._period_cells); each batch of whole persons becomes every period's rows (a person's
sums over runs of months in one finest cell, _period_rows), and:

- persons are grouped by the columns they stayed put in within the period (the others marked
  as moved). The groups' moments are merged across batches and spread, at the end, into every
  set whose columns they stayed put in: everyone for most sets, since most movers changed
  one column only;
- persons who changed breakdown group but not unit are summed per person and group once per
  breakdown; the three levels share those sums;
- persons who changed unit are summed per person and cell for each set.

This replaced one GROUP BY over persons per level x breakdown in SQL (18 per period, 2 s each
over the whole period at national scale). The sums are sufficient statistics: the Spark
engine computes them per partition (whole persons in each) and adds them up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .indicator import CellCodes
from .batches import BATCH_ROWS, whole_clusters  # the model's clustered pass re-cuts the same way

# per outcome: months with an observed outcome, persons with one, the sums of the actual,
# expected and indicator, and the cross-products of persons' sums the clustered variance needs
MOMENTS = ("n", "g", "sy", "sx", "se", "syy", "see", "nsy", "nse", "nn")
SUMS = ("n", "sy", "se", "sx")  # a person's sums per outcome in a period's rows
KEY_LIMIT = 2.0 ** 62  # combinations of codes up to this many get one integer key each


@dataclass(frozen=True)
class CellSets:
    """The published (level, breakdown) sets and the sizes of their code ranges."""
    sets: tuple[tuple[int, int], ...]
    n_periods: int
    n_units: dict[int, int]  # level -> number of unit codes (1 for the country)
    n_groups: tuple[int, ...]  # breakdown -> number of group codes ('Alle': 1)
    outcomes: tuple[str, ...]

    def size(self, s: tuple[int, int]) -> int:
        return self.n_periods * self.n_units[s[0]] * self.n_groups[s[1]]

    @property
    def code_cols(self) -> list[str]:
        return CellCodes.key_cols(len(self.n_groups))

    @property
    def code_sizes(self) -> list[int]:
        """How many codes each of code_cols has."""
        return [self.n_units[lvl] for lvl in CellCodes.UNIT_COLS] + list(self.n_groups[1:])


def _moments(t: np.ndarray) -> np.ndarray:
    """Persons' sums (4 per outcome x persons) -> their moment terms (10 per outcome x persons)."""
    out = np.empty((len(MOMENTS) * (t.shape[0] // len(SUMS)), t.shape[1]))
    for k in range(t.shape[0] // len(SUMS)):
        n, sy, se, sx = t[4 * k: 4 * k + 4]
        o = out[10 * k: 10 * k + 10]  # written row by row: a tuple of ten arrays was stacked first, then copied
        o[0], o[1], o[2], o[3], o[4] = n, n > 0, sy, sx, se
        np.multiply(sy, sy, out=o[5])
        np.multiply(se, se, out=o[6])
        np.multiply(n, sy, out=o[7])
        np.multiply(n, se, out=o[8])
        np.multiply(n, n, out=o[9])
    return out


def _sum_by(idx: np.ndarray, w: np.ndarray, size: int) -> np.ndarray:
    """Columns of w (terms x rows) summed by idx into (terms x size)."""
    out = np.zeros((len(w), size))
    for j, x in enumerate(w):
        out[j] = np.bincount(idx, weights=x, minlength=size)  # (an empty idx gives integers)
    return out


def period_moments(batches, cs: CellSets, months: list[tuple[int, int]] | None = None) -> dict:
    """Moments per cell of every set, (terms x cells) arrays keyed by (level, breakdown).

    Without `months`: over period rows in person order (column __cluster) with columns __p,
    the unit and group codes and the persons' SUMS per outcome (a person's sums over some of
    their months in a period and cell; one row or several per person x period x cell).

    With `months` (each period's first and last month as year * 12 + month - 1): over
    person-months with each person's rows together (not necessarily in person order: a table
    the model's pass wrote), with columns __mi (the month so numbered), the codes and
    actual_*, expected_* and indicator_* per outcome; `_period_rows` makes the period rows of
    each batch of whole persons on the way."""
    acc: dict = {}
    stay = None  # the groups of persons by where they stayed put: their codes and moments
    if months is None:
        parts = (_columns(b, cs) for b in whole_clusters(batches))
    else:
        parts = (_period_rows(b, cs, months) for b in whole_clusters(batches, in_order=False))
    for rows in _joined(parts, BATCH_ROWS):
        stay = _merge(stay, _add_batch(acc, rows, cs), cs)
    if stay is not None:
        _add_stayed(acc, stay, cs)
    return acc


def _columns(b, cs: CellSets) -> dict:
    """A batch of period rows as arrays: __cluster, __p and the codes (int64), and `v`, the
    SUMS per outcome (terms x rows, a missing sum as 0)."""
    col = lambda c: b.column(c).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)  # noqa: E731
    v = np.array([np.nan_to_num(b.column(f"{m}_{o}").to_numpy(zero_copy_only=False).astype(float))
                  for o in cs.outcomes for m in SUMS])
    return {c: col(c) for c in ["__cluster", "__p"] + cs.code_cols} | {"v": v}


def _period_rows(b, cs: CellSets, months: list[tuple[int, int]]) -> dict:
    """A batch of whole persons' months as period rows (arrays as in _columns): for every
    period, each run of a person's consecutive months in it with the same codes, summed.

    The months are first summed into atoms: runs that also end wherever some period starts or
    ends, so that every period is a union of atoms. A period's rows are then its atoms, with
    neighbouring atoms of one person and cell added: the person-months are summed once, not
    once per period they lie in. A person who comes back to a cell has two runs there;
    _add_batch adds them up. The rows come period by period, so each person x period is
    together, which is all _add_batch needs."""
    col = lambda c: b.column(c).to_numpy(zero_copy_only=False)  # noqa: E731
    person, mi = col("__cluster").astype(np.int64, copy=False), col("__mi").astype(np.int64, copy=False)
    codes = {c: col(c).astype(np.int64, copy=False) for c in cs.code_cols}
    v = np.empty((len(SUMS) * len(cs.outcomes), b.num_rows))  # terms x rows: reduceat along rows is 5x faster than across
    for k, o in enumerate(cs.outcomes):  # SUMS: months observed, sums of actual, indicator, expected
        y = col(f"actual_{o}").astype(float, copy=False)
        seen = ~np.isnan(y)
        v[4 * k] = seen
        v[4 * k + 1] = np.where(seen, y, 0.0)
        v[4 * k + 2] = np.where(seen, col(f"indicator_{o}").astype(float, copy=False), 0.0)
        v[4 * k + 3] = np.where(seen, col(f"expected_{o}").astype(float, copy=False), 0.0)
    new_run = np.ones(b.num_rows, bool)  # a run starts where the person or a code changes
    new_run[1:] = person[1:] != person[:-1]
    for x in codes.values():
        new_run[1:] |= x[1:] != x[:-1]
    edges = sorted({a for a, _ in months} | {e + 1 for _, e in months})  # months where a period starts or ends
    band = np.searchsorted(edges, mi, side="right")  # months between the same edges lie in the same periods
    first = np.flatnonzero(new_run | np.r_[True, band[1:] != band[:-1]])  # each atom's first month
    atoms = np.add.reduceat(v, first, axis=1) if len(first) else v[:, :0]
    a_band, a_new_run = band[first], new_run[first]
    parts = []
    for i, (lo, hi) in enumerate(months):  # the period's months are the bands after edge lo up to edge hi + 1
        inside = np.flatnonzero((a_band > edges.index(lo)) & (a_band <= edges.index(hi + 1)))
        if not len(inside):
            continue
        # a run also ends where atoms are left out in between
        starts = np.flatnonzero(a_new_run[inside] | np.r_[True, np.diff(inside) > 1])
        at = first[inside[starts]]
        parts.append({"__cluster": person[at], "__p": np.full(len(at), i, np.int64), **{c: x[at] for c, x in codes.items()},
                      "v": np.add.reduceat(atoms[:, inside], starts, axis=1)})
    if not parts:
        return {c: np.zeros(0, np.int64) for c in ["__cluster", "__p"] + cs.code_cols} | {"v": v[:, :0]}
    return _concat(parts)


def _joined(parts, rows: int):
    """Consecutive period-row arrays (_columns, _period_rows) joined until they hold `rows`
    rows: DuckDB hands out batches of about 120 000 rows, and each call of _add_batch has
    fixed work."""
    pending, n = [], 0
    for p in parts:
        pending.append(p)
        n += len(p["__p"])
        if n >= rows:
            yield _concat(pending)
            pending, n = [], 0
    if pending:
        yield _concat(pending)


def _concat(parts: list[dict]) -> dict:
    return parts[0] if len(parts) == 1 else {c: np.concatenate([p[c] for p in parts], axis=-1) for c in parts[0]}


def _groups(codes: np.ndarray, cs: CellSets):
    """np.unique over rows of (period, stayed-put codes): one integer per combination where
    they fit in one, else whole rows compared."""
    radix = [cs.n_periods] + [n + 1 for n in cs.code_sizes]  # + 1: 0 marks a column moved in
    if np.prod([float(n) for n in radix]) < KEY_LIMIT:
        key = np.zeros(len(codes), np.int64)
        for j in reversed(range(len(radix))):
            key = key * radix[j] + codes[:, j]
        _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    else:
        _, first, inv = np.unique(codes, return_index=True, return_inverse=True, axis=0)
    return first, inv.reshape(-1)


def _merge(a, b, cs: CellSets):
    """Two sets of groups (codes, moments) as one, the moments of equal groups added."""
    if a is None or b is None:
        return b if a is None else a
    codes, moments = np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]], axis=1)
    first, inv = _groups(codes, cs)
    return codes[first], _sum_by(inv, moments, len(first))


def _add_stayed(acc: dict, stay, cs: CellSets) -> None:
    """The groups of persons by where they stayed put, into the cells of every set whose
    columns they stayed put in (the others go to a bin that is dropped)."""
    codes, moments = stay
    col = {c: codes[:, 1 + j] for j, c in enumerate(cs.code_cols)}  # code + 1, 0: moved
    for s in cs.sets:
        cols = CellCodes.set_cols(*s)
        ok = np.logical_and.reduce([col[c] > 0 for c in cols]) if cols else np.ones(len(codes), bool)
        cell = np.where(ok, _cell(s, cs, codes[:, 0], {c: col[c] - 1 for c in cols}), cs.size(s))
        m = _sum_by(cell, moments, cs.size(s) + 1)[:, :-1]
        acc[s] = acc[s] + m if s in acc else m


def _add_batch(acc: dict, rows: dict, cs: CellSets):
    """Add the persons who moved in a set's columns to its cells; return the groups of
    persons by where they stayed put (codes, moments), for _add_stayed at the end. `rows`:
    period rows as arrays (_columns), each person x period's rows together."""
    person, p, v = rows["__cluster"], rows["__p"], rows["v"]
    if not len(p):
        return None
    start = np.flatnonzero(np.r_[True, (person[1:] != person[:-1]) | (p[1:] != p[:-1])])  # each person x period
    size = np.diff(np.r_[start, len(p)])
    codes = {c: rows[c] for c in cs.code_cols}
    # every key below is a mixed-radix number of these codes: one out of range would collide
    ranges = {"__p": (p, cs.n_periods)} | {c: (codes[c], n) for c, n in zip(cs.code_cols, cs.code_sizes)}
    bad = [f"{c} has {x.min()}..{x.max()}, expected 0..{n - 1}" for c, (x, n) in ranges.items()
           if len(x) and (x.min() < 0 or x.max() >= n)]
    if bad:
        raise ValueError("period cells: codes outside their ranges: " + "; ".join(bad))
    # where each person stayed put: the column's code + 1, or 0 where they moved
    stayed = {}
    for c, x in codes.items():
        lo, hi = np.minimum.reduceat(x, start), np.maximum.reduceat(x, start)
        stayed[c] = np.where(lo == hi, lo + 1, 0)
    pp = np.repeat(np.arange(len(start)), size)  # each row's person x period
    p_pp = p[start]  # each person x period's period

    def per_person_and(persons: np.ndarray, key: np.ndarray, n_keys: int):
        """The moments of some persons' sums per person and key (a row's cell or group):
        their person x period, key and moments (terms x persons' keys)."""
        rows = np.flatnonzero(np.repeat(persons, size))
        u, inv = np.unique(pp[rows] * n_keys + key[rows], return_inverse=True)
        return u // n_keys, u % n_keys, _moments(_sum_by(inv, v[:, rows], len(u)))

    by_group = {}  # breakdown -> the persons who changed group, summed per person and group
    for s in cs.sets:
        lvl, bd = s
        unit_col, group_col = CellCodes.UNIT_COLS.get(lvl), CellCodes.group_col(bd) if bd else None
        m = np.zeros((len(MOMENTS) * len(cs.outcomes), cs.size(s)))
        # persons who changed group but not unit: their sums per group are the same at every
        # level, so they are made once per breakdown (most movers only grew a year older)
        unit_moved = stayed[unit_col] == 0 if unit_col else np.zeros(len(start), bool)
        if group_col and (stayed[group_col] == 0).any():
            if bd not in by_group:
                by_group[bd] = per_person_and(stayed[group_col] == 0, codes[group_col], cs.n_groups[bd])
            who, grp, w = by_group[bd]
            unit = {unit_col: stayed[unit_col][who] - 1} if unit_col else {}
            cell = np.where(unit_moved[who], cs.size(s), _cell(s, cs, p_pp[who], unit | {group_col: grp}))
            m += _sum_by(cell, w, cs.size(s) + 1)[:, :-1]  # unit movers into the dropped bin
        # persons who changed unit: their sums per person and cell
        if unit_moved.any():
            _, cell, w = per_person_and(unit_moved, _cell(s, cs, p, {c: codes[c] for c in CellCodes.set_cols(*s)}), cs.size(s))
            m += _sum_by(cell, w, cs.size(s))
        acc[s] = acc[s] + m if s in acc else m
    # persons grouped by period and where they stayed put, with their moments summed
    group_codes = np.stack([p_pp] + [stayed[c] for c in codes], axis=1)
    first, inv = _groups(group_codes, cs)
    return group_codes[first], _sum_by(inv, _moments(np.add.reduceat(v, start, axis=1)), len(first))


def _cell(s: tuple[int, int], cs: CellSets, p: np.ndarray, codes: dict) -> np.ndarray:
    """The index of (period, unit, group) in a set's (n_periods x units x groups) cells."""
    lvl, bd = s
    unit = codes[CellCodes.UNIT_COLS[lvl]] if lvl in CellCodes.UNIT_COLS else 0
    grp = codes[CellCodes.group_col(bd)] if bd else 0
    return (p * cs.n_units[lvl] + unit) * cs.n_groups[bd] + grp


def period_frame(acc: dict, cs: CellSets) -> pd.DataFrame:
    """The cells with persons in them as rows: __p, lvl, unit, bd, grp and the moments (the
    counts n_* and g_* as integers: they were summed as floats)."""
    names = [f"{m}_{o}" for o in cs.outcomes for m in MOMENTS]
    frames = []
    for (lvl, bd), m in acc.items():
        m = m.T  # cells x terms
        idx = np.flatnonzero(m[:, [MOMENTS.index("n") + len(MOMENTS) * k for k in range(len(cs.outcomes))]].sum(axis=1) > 0)
        p, rest = np.divmod(idx, cs.n_units[lvl] * cs.n_groups[bd])
        unit, grp = np.divmod(rest, cs.n_groups[bd])
        f = pd.DataFrame(m[idx], columns=names)
        counts = [f"{c}_{o}" for o in cs.outcomes for c in ("n", "g")]
        f[counts] = f[counts].round().astype(np.int64)
        f.insert(0, "__p", p)
        f.insert(1, "lvl", lvl)
        f.insert(2, "unit", unit)
        f.insert(3, "bd", bd)
        f.insert(4, "grp", grp)
        frames.append(f)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["__p", "lvl", "unit", "bd", "grp"] + names)
