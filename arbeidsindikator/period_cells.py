"""Period cells: the moments of every (level, breakdown) cell of a period with each person's
months clustered.

The clustered variance of a period cell needs, per person, the square of the person's sums in
that cell (publish._long turns the moments into means and variances). A person whose months
all lie in one finest cell (office x every breakdown group) has the same sums in every
coarser cell; a person who moved (another office, an older age group, ...) has different sums
in different coarser cells. Each period's rows (person x finest cell, from
publish._person_period_rows) are streamed in person order, and:

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
from .model import BATCH_ROWS, concat_batches, whole_clusters  # the model's clustered pass re-cuts the same way

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
        out[10 * k: 10 * k + 10] = (n, n > 0, sy, sx, se, sy * sy, se * se, n * sy, n * se, n * n)
    return out


def _sum_by(idx: np.ndarray, w: np.ndarray, size: int) -> np.ndarray:
    """Columns of w (terms x rows) summed by idx into (terms x size)."""
    out = np.zeros((len(w), size))
    for j, x in enumerate(w):
        out[j] = np.bincount(idx, weights=x, minlength=size)  # (an empty idx gives integers)
    return out


def period_moments(batches, cs: CellSets) -> dict:
    """Moments per cell of every set, (terms x cells) arrays keyed by (level, breakdown), over
    rows in person order (column __cluster) with columns __p, the unit and group codes and
    the persons' SUMS per outcome (one row per person x period x finest cell)."""
    acc: dict = {}
    stay = None  # the groups of persons by where they stayed put: their codes and moments
    for b in _coalesced(whole_clusters(batches), BATCH_ROWS):
        stay = _merge(stay, _add_batch(acc, b, cs), cs)
    if stay is not None:
        _add_stayed(acc, stay, cs)
    return acc


def _coalesced(batches, rows: int):
    """Consecutive batches joined until they hold `rows` rows: a sorted DuckDB query hands
    out batches of about 120 000 rows, and every batch has fixed work."""
    pending, n = [], 0
    for b in batches:
        pending.append(b)
        n += b.num_rows
        if n >= rows:
            yield concat_batches(pending)
            pending, n = [], 0
    if pending:
        yield concat_batches(pending)


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
    if a is None:
        return b
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


def _add_batch(acc: dict, b, cs: CellSets):
    """Add the persons who moved in a set's columns to its cells; return the groups of
    persons by where they stayed put (codes, moments), for _add_stayed at the end."""
    col = lambda c: b.column(c).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)  # noqa: E731
    person, p = col("__cluster"), col("__p")
    start = np.flatnonzero(np.r_[True, (person[1:] != person[:-1]) | (p[1:] != p[:-1])])  # each person x period
    size = np.diff(np.r_[start, len(p)])
    v = np.array([np.nan_to_num(b.column(f"{m}_{o}").to_numpy(zero_copy_only=False).astype(float))
                  for o in cs.outcomes for m in SUMS])
    codes = {c: col(c) for c in cs.code_cols}
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
