"""Period cells: the moments of every (level, breakdown) cell of a period with each person's
months clustered.

The clustered variance of a period cell needs, per person, the square of the person's sums in
that cell (publish._long turns the moments into means and variances). A person whose months
all lie in one finest cell (office x every breakdown group) has the same sums in every
coarser cell; a person who moved (another office, an older age group, ...) has different sums
in different coarser cells. The rows of __pp (person x period x finest cell) are streamed in
person order, and:

- persons are grouped by the columns in which they stayed put within the period (the others
  marked as moved), their moments summed per group once. A set whose columns a person stayed
  put in takes that person from these groups: everyone for most sets, since most movers
  changed one or two columns only;
- the persons who moved in a set's own columns are summed per person and cell for that set.

This replaced one GROUP BY over persons per level x breakdown in SQL (18 per period, 2 s each
over the whole period at national scale). The sums are sufficient statistics: the Spark
engine computes them per partition (whole persons in each) and adds them up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .model import BATCH_ROWS, _concat, _whole_clusters  # the same re-cutting as the model's clustered pass

# per outcome: months with an observed outcome, persons with one, the sums of the actual,
# expected and indicator, and the cross-products of persons' sums the clustered variance needs
MOMENTS = ("n", "g", "sy", "sx", "se", "syy", "see", "nsy", "nse", "nn")
SUMS = ("n", "sy", "se", "sx")  # a person's sums per outcome, as in the table __pp
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


UNIT_COLS = {2: "__region", 3: "__office"}


def _moments(t: np.ndarray) -> np.ndarray:
    """Persons' sums (4 per outcome x persons) -> their moment terms (10 per outcome x persons)."""
    out = np.empty((len(MOMENTS) * (t.shape[0] // len(SUMS)), t.shape[1]))
    for k in range(t.shape[0] // len(SUMS)):
        n, sy, se, sx = t[4 * k: 4 * k + 4]
        out[10 * k: 10 * k + 10] = (n, n > 0, sy, sx, se, sy * sy, se * se, n * sy, n * se, n * n)
    return out


def _sum_by(idx: np.ndarray, w: np.ndarray, size: int) -> np.ndarray:
    """Columns of w (terms x rows) summed by idx into (size x terms)."""
    out = np.zeros((size, len(w)))
    for j, x in enumerate(w):
        out[:, j] = np.bincount(idx, weights=x, minlength=size)  # (an empty idx gives integers)
    return out


def period_moments(batches, cs: CellSets) -> dict:
    """Moments per cell of every set, (cells x terms) arrays keyed by (level, breakdown), over
    rows in person order (column __cluster) with columns __p, the unit and group codes and
    the persons' SUMS per outcome (one row per person x period x finest cell)."""
    acc: dict = {}
    for b in _coalesced(_whole_clusters(batches), BATCH_ROWS):
        _add_batch(acc, b, cs)
    return acc


def _coalesced(batches, rows: int):
    """Consecutive batches joined until they hold `rows` rows. A batch's fixed work (summing
    its groups of persons into every set's cells) does not shrink with the batch, and a
    sorted DuckDB query hands out batches of about 120 000 rows."""
    pending, n = [], 0
    for b in batches:
        pending.append(b)
        n += b.num_rows
        if n >= rows:
            yield _concat(pending)
            pending, n = [], 0
    if pending:
        yield _concat(pending)


def _add_batch(acc: dict, b, cs: CellSets) -> None:
    col = lambda c: b.column(c).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)  # noqa: E731
    person, p = col("__cluster"), col("__p")
    start = np.flatnonzero(np.r_[True, (person[1:] != person[:-1]) | (p[1:] != p[:-1])])  # each person x period
    size = np.diff(np.r_[start, len(p)])
    v = np.array([np.nan_to_num(b.column(f"{m}_{o}").to_numpy(zero_copy_only=False).astype(float))
                  for o in cs.outcomes for m in SUMS])
    codes = {c: col(c) for c in UNIT_COLS.values()} | {f"__g{k}": col(f"__g{k}") for k in range(1, len(cs.n_groups))}
    # where each person stayed put: the column's code + 1, or 0 where they moved
    stayed = {}
    for c, x in codes.items():
        lo, hi = np.minimum.reduceat(x, start), np.maximum.reduceat(x, start)
        stayed[c] = np.where(lo == hi, lo + 1, 0)
    # persons grouped by period and where they stayed put, with their moments summed
    parts = [(p[start], cs.n_periods)] + [(stayed[c], int(x.max()) + 2) for c, x in codes.items()]
    if np.prod([float(n) for _, n in parts]) < KEY_LIMIT:  # one integer key per combination
        key = np.zeros(len(start), np.int64)
        for x, n in reversed(parts):
            key = key * n + x
    else:  # too many combinations for one integer: compare whole rows
        key = np.stack([x for x, _ in parts], axis=1)
    uniq, first, inv = np.unique(key, return_index=True, return_inverse=True, axis=0 if key.ndim > 1 else None)
    inv = inv.reshape(-1)
    stay_moments = _sum_by(inv, _moments(np.add.reduceat(v, start, axis=1)), len(uniq))
    g_p, g_stayed = p[start][first], {c: x[first] for c, x in stayed.items()}
    for s in cs.sets:
        cols = _set_cols(s)
        # the groups of persons who stayed put in this set's columns
        ok = np.logical_and.reduce([g_stayed[c] > 0 for c in cols]) if cols else np.ones(len(uniq), bool)
        cell = _cell(s, cs, g_p[ok], {c: g_stayed[c][ok] - 1 for c in cols})
        m = _sum_by(cell, stay_moments[ok].T, cs.size(s))
        # the persons who moved in this set's columns: sums per person x cell first
        moved = ~np.logical_and.reduce([stayed[c] > 0 for c in cols]) if cols else np.zeros(len(start), bool)
        if moved.any():
            rows = np.flatnonzero(np.repeat(moved, size))
            person_cell = np.repeat(np.arange(len(start)), size)[rows] * cs.size(s) + _cell(s, cs, p[rows], {c: codes[c][rows] for c in cols})
            u, inv_pc = np.unique(person_cell, return_inverse=True)
            sums = np.array([np.bincount(inv_pc, weights=x, minlength=len(u)) for x in v[:, rows]])
            m += _sum_by(u % cs.size(s), _moments(sums), cs.size(s))
        acc[s] = acc[s] + m if s in acc else m


def _set_cols(s: tuple[int, int]) -> list[str]:
    lvl, bd = s
    return [c for c in (UNIT_COLS.get(lvl), f"__g{bd}" if bd else None) if c]


def _cell(s: tuple[int, int], cs: CellSets, p: np.ndarray, codes: dict) -> np.ndarray:
    """The index of (period, unit, group) in a set's (n_periods x units x groups) cells."""
    lvl, bd = s
    unit = codes[UNIT_COLS[lvl]] if lvl in UNIT_COLS else 0
    grp = codes[f"__g{bd}"] if bd else 0
    return (p * cs.n_units[lvl] + unit) * cs.n_groups[bd] + grp


def period_frame(acc: dict, cs: CellSets) -> pd.DataFrame:
    """The cells with persons in them as rows: __p, lvl, unit, bd, grp and the moments."""
    names = [f"{m}_{o}" for o in cs.outcomes for m in MOMENTS]
    frames = []
    for (lvl, bd), m in acc.items():
        idx = np.flatnonzero(m[:, [MOMENTS.index("n") + len(MOMENTS) * k for k in range(len(cs.outcomes))]].sum(axis=1) > 0)
        p, rest = np.divmod(idx, cs.n_units[lvl] * cs.n_groups[bd])
        unit, grp = np.divmod(rest, cs.n_groups[bd])
        f = pd.DataFrame(m[idx], columns=names)
        f.insert(0, "__p", p)
        f.insert(1, "lvl", lvl)
        f.insert(2, "unit", unit)
        f.insert(3, "bd", bd)
        f.insert(4, "grp", grp)
        frames.append(f)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["__p", "lvl", "unit", "bd", "grp"] + names)
