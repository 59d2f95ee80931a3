"""Disclosure control over the linked published tables, with a proof for every suppressed cell.

What is protected. The published cells (monthly and period, country / region / office, every
breakdown group) are linked by exact linear relations. For every additive statistic of a cell
(person-months, and the sums of the actual, expected and indicator values, which anyone gets
as count x mean):

- time:   a period cell is the sum of its months (years, the last 12 months, the whole period,
          the specification's own periods: they overlap, which is fine);
- org:    a region cell is the sum of its offices (in the month; a moved office contributes to
          each region for the months it was there), the country the sum of the regions and NOE;
- groups: the groups of each breakdown add up to the unit's 'Alle' cell.

A suppressed cell is disclosed exactly if its value follows from the published cells through
these relations, in any number of steps. Primary suppression (fewer persons than the
threshold; different persons for period cells) is not enough: a period minus its published
months gives a suppressed month back.

How the pattern is made safe. A suppressed cell j is safe if there is a perturbation z of all
cell values that keeps every relation true, is zero on every published (or empty) cell and is
non-zero on j: then j and j + t z_j are consistent with everything published, for every t.
We build such a z for every suppressed cell as a product of three one-dimensional
perturbations, z(time, unit, group) = f(time) h(unit) k(group):

- f on months, f = +1 on month a and -1 on month b (or +1 on a alone), extended to every
  period as the sum over its months (a year holding both a and b gets 0);
- h on offices (strictly: office x region pairs, so moved offices are exact), +1 / -1 on two
  offices, extended up to regions and the country as sums;
- k on groups, +1 / -1 on two groups of one breakdown ('Alle' gets 0), or +1 on 'Alle' and on
  one group of every breakdown.

Every relation sums along one dimension with the other two fixed, so the product satisfies it
by construction, however the dimensions' hierarchies look. Its support (every cell where it is
non-zero) is suppressed; for a cell that still has no certificate, the cheapest certificate
(fewest persons newly suppressed; empty cells are impossible) is searched over all (a, b),
office pairs and group pairs (the hypercube method of tau-argus / sdcTable, here with
hierarchies and links handled exactly because the perturbation is defined on the finest
units). One certificate protects every cell of its support, and their random integer
combination is one witness vector that proves the whole pattern: `audit.py` checks it against
the relations it sets up itself from the published tables.

Protection intervals. Along a certificate the attacker cannot exclude values of the cell
between the bounds where some cell of the support would leave its a-priori range (a sum of a
non-negative outcome is at least 0). For the sum of the actual outcome, every suppressed cell
must be movable upwards by at least `share` of its value, and downwards too (or to 0); cells
whose certificates do not reach that get further certificates chosen to reach it.

Beyond the relations. Cells where fewer than `k` are in work or not in work (or have hours) are
primary too (the attribute rule), and each primary cell must be able to gain a person in work
where nobody was (and out of work where everybody was): along one certificate, a sum of them
(proof.combined_step), or else a further certificate searched for at any cost (`_late`). An
attacker who also knows bounds (whole counts, 0 <= in work <= count, hours per person, period
persons, count bands) is run after the certificates, with LPs within each month for small
cells: what he pins or proves small is repaired by further suppression (`_repair`, attacker.py).

Across releases (carry.py). A monthly release keeps the decisions of the release before it:
its published cells are known (never part of a perturbation), its suppressed cells stay
suppressed. Where the 12-month outcomes of a month arrive after its 3-month outcomes were
published, a cell can be suppressed in one system alone (`Protector.only`).

Counts of suppressed cells are not published exactly (`publish.counts` in the specification):
'skjult' leaves them empty, 'intervall' gives a band (1-19, 20-49, 50-99, 100+ for a threshold
of 10: no band says that a cell is below the threshold). Their exact values are protected by the same
certificates: person-months are additive like the sums.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import attacker, proof
from .carry import PUBLISHED_BEFORE, SUPPRESSED_BEFORE
from .outcomes import outcome_kind

ATTRIBUTE_K = 3  # at least this many in work and not in work (with hours) in a published cell
REPAIR_ROUNDS = 60  # rounds of the bounded attacker and further suppression
BIG = 1e15  # the cost of an impossible perturbation (an empty cell would change)
WITNESS_SEED = 20240601  # the witness combines the certificates with reproducible random weights


@dataclass
class Shape:
    """The dimensions of the linked tables, as node indexes.

    time nodes: months 0..M-1 (relative to `m0`), then the periods M..M+P-1;
    org nodes: 0 the country, 1..R the regions, R+1..R+O the offices, then one node per
    (office, region) pair of an office that was in more than one region (not a published cell);
    group nodes: 0 'Alle', then each breakdown's groups from `group_offsets[bd]`.
    The last index of each dimension is a dummy node (zero cost) that pads candidate lists."""
    m0: int
    n_months: int
    period_months: np.ndarray  # (P, M) bool: month in period
    n_regions: int
    n_offices: int
    leaf_pairs: np.ndarray  # (L, 2) office code, region code
    chain: np.ndarray  # (U, L) int8: org node contains leaf
    leaf_node: np.ndarray  # (L,) the node that is the leaf (office node, or its pair node)
    pair_node: np.ndarray  # (U,) bool: node is a pair node (no published cell)
    active: np.ndarray  # (M, L) bool: the leaf has person-months in the month
    group_offsets: np.ndarray  # (n_bd,) first group node of each breakdown (0 for 'Alle')
    group_sizes: np.ndarray  # (n_bd,)

    @property
    def n_time(self) -> int:
        return self.n_months + len(self.period_months)

    @property
    def n_org(self) -> int:
        return len(self.chain)

    @property
    def n_group(self) -> int:
        return int(self.group_offsets[-1] + self.group_sizes[-1])

    def org_node(self, lvl: np.ndarray, unit: np.ndarray) -> np.ndarray:
        lvl, unit = np.asarray(lvl), np.asarray(unit)
        return np.where(lvl == 1, 0, np.where(lvl == 2, 1 + unit, 1 + self.n_regions + unit))

    def group_node(self, bd: np.ndarray, grp: np.ndarray) -> np.ndarray:
        return self.group_offsets[np.asarray(bd)] + np.asarray(grp)

    @classmethod
    def build(cls, month_pairs: np.ndarray, periods: list[tuple[int, int]], n_regions: int, n_offices: int,
              group_sizes: list[int]) -> "Shape":
        """`month_pairs`: rows (month index, office code, region code) of every office-month with
        persons; `periods`: (first, last) month index of each period."""
        mp = np.asarray(month_pairs, np.int64).reshape(-1, 3)
        m0, m1 = int(mp[:, 0].min()), int(mp[:, 0].max())
        n_m = m1 - m0 + 1
        pm = np.array([[a <= m0 + m <= b for m in range(n_m)] for a, b in periods], bool).reshape(len(periods), n_m)
        pairs = np.unique(mp[:, 1:], axis=0)
        moved = np.bincount(pairs[:, 0], minlength=n_offices) > 1
        n_base = 1 + n_regions + n_offices
        n_pairnodes = int(moved[pairs[:, 0]].sum())
        n_org = n_base + n_pairnodes
        chain = np.zeros((n_org, len(pairs)), np.int8)
        leaf_node = np.empty(len(pairs), np.int64)
        nxt = n_base
        for i, (o, r) in enumerate(pairs):
            chain[0, i] = chain[1 + r, i] = chain[1 + n_regions + o, i] = 1
            if moved[o]:
                chain[nxt, i] = 1
                leaf_node[i] = nxt
                nxt += 1
            else:
                leaf_node[i] = 1 + n_regions + o
        pair_node = np.zeros(n_org, bool)
        pair_node[n_base:] = True
        leaf_of = {(int(o), int(r)): i for i, (o, r) in enumerate(pairs)}
        active = np.zeros((n_m, len(pairs)), bool)
        active[mp[:, 0] - m0, [leaf_of[(int(o), int(r))] for o, r in mp[:, 1:]]] = True
        sizes = np.array(group_sizes, np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        return cls(m0, n_m, pm, n_regions, n_offices, pairs, chain, leaf_node, pair_node, active, offsets, sizes)


def shape_relations(s: Shape, exists: np.ndarray) -> sp.csr_matrix:
    """Every relation between the cells of one system as rows of a sparse matrix over the flat
    cell index (+1 the parent, -1 each child): a period and its months, a region and its
    offices (a moved office's parts), a moved office and its parts, the country and its
    regions, a unit's 'Alle' and the groups of each breakdown. Only parents that exist."""
    dims = exists.shape
    T, U, G = dims
    M = s.n_months
    idx = np.arange(np.prod(dims)).reshape(dims)
    rows, cols, vals = [], [], []
    r = 0

    def family(parents: np.ndarray, children: list[np.ndarray]) -> None:
        nonlocal r
        m = len(parents)
        if not m:
            return
        rows.append(np.arange(m) + r)
        cols.append(parents)
        vals.append(np.ones(m))
        for ch in children:
            rows.append(np.arange(m) + r)
            cols.append(ch)
            vals.append(-np.ones(m))
        r += m

    for p, months in enumerate(s.period_months):
        ok = exists[M + p]
        family(idx[M + p][ok], [idx[m][ok] for m in np.flatnonzero(months)])
    chain = s.chain.astype(bool)
    R = s.n_regions
    for u in range(s.n_org):
        if s.pair_node[u]:
            continue
        if u == 0:
            kids = np.arange(1, R + 1)
        else:
            leaves = np.flatnonzero(chain[u])
            if u > R and len(leaves) < 2:
                continue  # an office that never moved is a leaf
            kids = np.unique(np.where(s.pair_node[s.leaf_node[leaves]], s.leaf_node[leaves], 1 + R + s.leaf_pairs[leaves, 0])) \
                if u <= R else s.leaf_node[leaves]
        ok = exists[:T - 1, u, :G - 1]
        family(idx[:T - 1, u, :G - 1][ok], [idx[:T - 1, kd, :G - 1][ok] for kd in kids])
    for bd in range(1, len(s.group_offsets)):
        a0, kk = int(s.group_offsets[bd]), int(s.group_sizes[bd])
        ok = exists[:T - 1, :U - 1, 0]
        family(idx[:T - 1, :U - 1, 0][ok], [idx[:T - 1, :U - 1, gg][ok] for gg in range(a0, a0 + kk)])
    if not rows:
        return sp.csr_matrix((0, int(np.prod(dims))))
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, int(np.prod(dims))))


@dataclass
class Mask:
    """One system of cells: the outcomes that have exactly the same cells and counts (the
    3-month and the 12-month outcomes differ where the 12-month window is censored)."""
    outcomes: list[int]
    n: np.ndarray  # (T+1, U+1, G+1) person-months; 0 = empty cell
    values: dict[int, np.ndarray]  # outcome -> sum of the actual outcome per cell
    certified: np.ndarray = field(init=False)  # the cell has a certificate in this system
    witness: np.ndarray = field(init=False)  # the certificates' random integer combination
    up: dict = field(init=False)  # outcome -> room upwards proved for each cell's sum
    down: dict = field(init=False)

    def __post_init__(self):
        shape = self.n.shape
        self.certified = np.zeros(shape, bool)
        self.witness = np.zeros(shape, np.int64)
        self.up = {o: np.zeros(shape) for o in self.outcomes}
        self.down = {o: np.zeros(shape) for o in self.outcomes}

    @cached_property
    def exists(self) -> np.ndarray:
        return self.n > 0


@dataclass
class Protection:
    """The result: suppressed cells, why, and the proof."""
    suppressed: np.ndarray  # (T+1, U+1, G+1) bool, shared by every outcome
    primary: np.ndarray
    masks: list[Mask]
    shape: Shape
    n_certificates: int
    weak: set  # (system index, cell) of primary cells whose room no certificate proves
    disclosed: list = field(default_factory=list)  # (system, reason, flat cells) the bounded attacker still proves
    bounds: list = field(default_factory=list)  # per system: the attacker's intervals (attacker.intervals)
    only: list = field(default_factory=list)  # per system: suppressed in it alone (Protector.only)

    @property
    def unmet(self) -> int:
        return len(self.weak)

    def witness_frame(self) -> pd.DataFrame:
        """One row per (system, suppressed cell) with its witness value (the perturbation the audit
        checks against the relations it sets up from the published tables), whether the cell is
        primary, and whether its room is proved (or, for a secondary cell, not required)."""
        rows = []
        for k, mask in enumerate(self.masks):
            live = (self.suppressed | (self.only[k] if self.only else False)) & mask.exists
            live[:, np.append(self.shape.pair_node, True)] = False
            live[-1], live[:, :, -1] = False, False
            t, u, g = np.nonzero(live)
            weak = np.array([(k, (a, b, c)) in self.weak for a, b, c in zip(t.tolist(), u.tolist(), g.tolist())], bool)
            rows.append(pd.DataFrame({"system": k, "t": t, "u": u, "g": g, "value": mask.witness[t, u, g],
                                      "primary": self.primary[t, u, g], "room": ~weak}))
        return pd.concat(rows, ignore_index=True)


    def interval_frame(self) -> pd.DataFrame:
        """One row per outcome, suppressed cell and quantity ('antall', 'sum') with the bounded
        attacker's interval (attacker.intervals); the count's row is repeated per outcome."""
        rows = []
        for k, (mask, b) in enumerate(zip(self.masks, self.bounds)):
            live = (self.suppressed | (self.only[k] if self.only else False)) & mask.exists
            live[:, np.append(self.shape.pair_node, True)] = False
            live[-1], live[:, :, -1] = False, False
            flat = np.flatnonzero(live.ravel())
            # a count another system publishes (suppressed in this one `only`) is no secret
            public = (self.only[k] if self.only else np.zeros(live.shape, bool)).ravel()[flat]
            for o in mask.outcomes:
                for q, key in (("antall", "n"), ("sum", str(o))):
                    f = flat[~public] if q == "antall" else flat
                    t, u, g = np.unravel_index(f, live.shape)
                    rows.append(pd.DataFrame({"oi": o, "t": t, "u": u, "g": g, "quantity": q,
                                              "lower": b[key][0][f], "upper": b[key][1][f]}))
        if not rows:
            return pd.DataFrame({"oi": np.zeros(0, np.int64), "t": np.zeros(0, np.int64), "u": np.zeros(0, np.int64),
                                 "g": np.zeros(0, np.int64), "quantity": np.zeros(0, object), "lower": np.zeros(0),
                                 "upper": np.zeros(0)})
        return pd.concat(rows, ignore_index=True)


def _pack(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int, dummy: int) -> tuple[np.ndarray, np.ndarray]:
    """Sparse candidate supports (entry (rows[i], cols[i]) = vals[i]) as padded index and sign
    arrays (n x width), padded with the dummy node and sign 0."""
    order = np.lexsort((cols, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    pos = np.arange(len(rows)) - np.searchsorted(rows, rows)
    width = int(pos.max()) + 1 if len(pos) else 1
    idx = np.full((n, width), dummy, np.int64)
    sign = np.zeros((n, width), np.int8)
    idx[rows, pos], sign[rows, pos] = cols, vals
    return idx, sign


class Protector:
    """Secondary suppression by certificates (module docstring)."""

    def __init__(self, shape: Shape, masks: list[Mask], primary: np.ndarray, share: float = 0.1,
                 room_cap: float = 200.0, kept: list[np.ndarray] | None = None, known: list[np.ndarray] | None = None,
                 kinds: dict | None = None):
        self.s = shape
        # outcomes counted in persons (jobbK): their cells must not prove nobody or everybody in
        # work; the persons not in work are the second quantity for that (`attribute_need`)
        self.kinds = kinds or {}
        self.binary = {o for o, (kind, _) in self.kinds.items() if kind == "binary"}
        for m in masks:
            for o in m.outcomes:
                if o in self.binary:
                    m.values[("ikke", o)] = m.n - m.values[o]
                    m.up[("ikke", o)], m.down[("ikke", o)] = np.zeros(m.n.shape), np.zeros(m.n.shape)
        self.masks = masks
        self.j = {id(m): j for j, m in enumerate(masks)}  # a system's index (masks compare by identity)
        # Per system, the cells an earlier release suppressed (they stay suppressed) and published
        # (they stay published, and no certificate may change them: carry.py). A place published
        # in one system only (the 3-month outcomes of a month whose 12-month outcomes are new)
        # keeps that; what the other system suppresses there is suppressed in it `only`.
        none = [np.zeros(primary.shape, bool) for _ in masks]
        kept, known = kept or none, [k.copy() for k in (known or none)]
        everywhere = np.logical_and.reduce([k | ~m.exists for k, m in zip(known, masks)])
        for k in known:  # primary now where every system published it before: another value or rule
            k &= ~(primary & everywhere)
        self.known, self.kept = known, kept
        self.published_before = np.logical_or.reduce(known)
        self.S = (primary | np.logical_or.reduce(kept)) & ~self.published_before
        self.only = [(primary | kp) & self.published_before & ~kn & m.exists for kp, kn, m in zip(kept, known, masks)]
        self.primary = primary
        self.share = share
        self.rng = np.random.default_rng(WITNESS_SEED)
        self.n_cert = 0
        self.certificates = []  # (systems, flat cells, signs) of every certificate applied
        self.cert_at = defaultdict(list)  # flat cell -> the certificates holding it
        self.deferred = {}  # primary cells whose attribute room waits for every other certificate (`_late`)
        self._work = {}  # (system, outcome) -> the range of its number in work, flat (`_combined`)
        self.pm = shape.period_months.astype(np.int8)
        self.t_dummy, self.u_dummy, self.g_dummy = shape.n_time, shape.n_org, shape.n_group
        self.year = (np.arange(shape.n_months) + shape.m0) // 12
        leaf_total = np.zeros(len(shape.leaf_pairs))
        for mask in masks:
            leaf_total += mask.n[:shape.n_months, shape.leaf_node, 0].sum(0)
        self.leaf_total = leaf_total
        self.is_pair = np.append(shape.pair_node, False)  # with the dummy node
        self.C = [self.cost(m) for m in masks]
        # for room beyond exactness, no cell with more than `room_cap` persons is given up
        self.room_cap = room_cap
        self.C_room = [np.where((c > room_cap) & (c < BIG), BIG, c) for c in self.C]
        self.weak = set()  # (system, cell) whose room could not be proved
        self.unbanded = np.zeros(primary.shape, bool)  # suppressed cells whose count band is withheld (_repair)
        self._cache = {}  # candidate supports per target node and width

    # -- candidates per dimension ------------------------------------------------------------
    def time_candidates(self, t0: int, wide: bool):
        """f = +1 on month a and -1 on month b (or +1 on a alone): a is the target month or a
        month of the target period, b another month (the same year unless `wide`) or a month
        outside the target period. Support: a, b and every period holding exactly one of them."""
        M = self.s.n_months
        months = np.arange(M)
        if t0 < M:
            a_set = np.array([t0])
            b_set = months[(months != t0) & (wide | (self.year == self.year[t0]))]
        else:
            inside = self.s.period_months[t0 - M]
            a_set, b_set = months[inside], months[~inside]
            if not wide:
                a_set, b_set = a_set[:3], b_set[np.isin(self.year[b_set], self.year[a_set[:3]])][:24]
        a = np.concatenate([np.repeat(a_set, len(b_set)), a_set])
        b = np.concatenate([np.tile(b_set, len(a_set)), np.full(len(a_set), -1)])
        n = len(a)
        sp = self.pm[:, a].T - np.where(b[:, None] >= 0, self.pm[:, np.maximum(b, 0)].T, 0)  # (n, P)
        r_p, c_p = np.nonzero(sp)
        has_b = np.flatnonzero(b >= 0)
        rows = np.concatenate([np.arange(n), has_b, r_p])
        cols = np.concatenate([a, b[has_b], M + c_p])
        vals = np.concatenate([np.ones(n, np.int8), -np.ones(len(has_b), np.int8), sp[r_p, c_p]])
        return _pack(rows, cols, vals, n, self.t_dummy)

    def org_candidates(self, u0: int, wide: bool, cap: int = 40):
        """h = +1 on leaf p (under the target unit) and -1 on leaf q (not under it), or +1 on p
        alone, summed up the org tree. Narrow: q in the same region as p (the region's cell is
        then left alone). Wide: for an office, also the `cap` smallest offices elsewhere; for a
        region, the `cap // 3` smallest leaves on either side."""
        s = self.s
        under = s.chain[u0].astype(bool)
        leaves = np.arange(len(s.leaf_pairs))
        p_set = leaves[under]
        others = leaves[~under]
        smallest = lambda xs, k: xs[np.argsort(self.leaf_total[xs], kind="stable")[:k]]  # noqa: E731
        if u0 == 0:
            q_set = others
        elif u0 <= s.n_regions:
            p_set, q_set = smallest(p_set, cap // 3), (smallest(others, cap // 3) if wide else others[:0])
        else:
            near = others[np.isin(s.leaf_pairs[others, 1], s.leaf_pairs[p_set, 1])]
            q_set = np.union1d(near, smallest(others, cap)) if wide else near
        p = np.concatenate([np.repeat(p_set, len(q_set)), p_set])
        q = np.concatenate([np.tile(q_set, len(p_set)), np.full(len(p_set), -1)])
        vec = s.chain[:, p].astype(np.int8) - np.where(q >= 0, s.chain[:, np.maximum(q, 0)], 0)  # (U, n)
        col, row = np.nonzero(vec.T)
        return _pack(col, row, vec[row, col], len(p), self.u_dummy)

    # -- the search ---------------------------------------------------------------------------
    def cost(self, mask: Mask) -> np.ndarray:
        """Cost of making each cell part of a perturbation: 0 if suppressed already, the number
        of persons if published, impossible if empty or published by an earlier release (padded
        with a free dummy per dimension)."""
        j = self.j[id(mask)]
        c = np.where(mask.exists & ~self.known[j], np.where(self.S | self.only[j], 0.0, mask.n.astype(float)), BIG)
        s = self.s
        # pair nodes are not cells: free where the pair has persons in the month, free in periods
        for node in np.flatnonzero(s.pair_node):
            leaf = int(np.flatnonzero(s.leaf_node == node)[0])
            c[:s.n_months, node, :] = np.where(s.active[:, leaf, None], 0.0, BIG)
            c[s.n_months:, node, :] = 0.0
        c[-1, :, :] = 0.0
        c[:, -1, :] = 0.0
        c[:, :, -1] = 0.0
        return c

    def _time(self, t0: int, wide: bool):
        key = (t0, wide)
        if key not in self._cache:
            self._cache[key] = self.time_candidates(t0, wide)
        return self._cache[key]

    def _org(self, u0: int, wide: bool, cap: int = 40):
        key = ("u", u0, wide, cap)
        if key not in self._cache:
            self._cache[key] = self.org_candidates(u0, wide, cap)
        return self._cache[key]

    def search(self, mask: Mask, C: np.ndarray, target: tuple[int, int, int], need: dict | None = None,
               top: int = 48, prune: int = 16, exhaustive: bool = False) -> tuple | None:
        """The cheapest certificate non-zero at `target`. Near partners first (the same year and
        region, another group of the same breakdown), taken if they cost nothing new; then also
        far ones (any month, other regions), of which the `prune` cheapest partners per dimension
        (by the cost of the cube's edges at the target) are combined. 'Alle'-type group
        perturbations only for an 'Alle' target or if nothing else is possible. With `need`
        (outcome -> room up and down required at the target), the cheapest of the `top` cheapest
        that gives that room."""
        bd0 = int(np.searchsorted(self.s.group_offsets, target[2], side="right") - 1)
        best = (BIG, None)
        for alle in ((False, True) if bd0 > 0 else (True,)):
            for wide in (False, True):
                cost, cert = self._search(mask, C, target, need, wide, alle, top, prune)
                if cert is not None and cost < best[0]:
                    best = (cost, cert)
                if best[0] == 0:
                    return best[1]
            if best[1] is not None:
                return best[1]
        # Pruning to the cheapest partners per dimension can leave only combinations whose
        # cube crosses an empty cell, while others exist (a small group present in a few
        # months only): search the far partners again without the pruning before giving up.
        # Only for exactness, and for the room that keeps nobody / everybody in work from
        # following (`exhaustive`, attribute_need): the protection range beyond it is a wish (the
        # audit reports the cells without), and an unpruned search buys it with many more
        # suppressed cells.
        if need and not exhaustive:
            return None
        for alle in ((False, True) if bd0 > 0 else (True,)):
            for wide_prune in (4 * prune, 1 << 30):
                cost, cert = self._search(mask, C, target, need, True, alle, top, wide_prune)
                if cert is not None:
                    return cert
        if self.published_before.any():  # cells an earlier release published rule out partners: every office
            for alle in ((False, True) if bd0 > 0 else (True,)):
                cost, cert = self._search(mask, C, target, need, True, alle, top, 1 << 30, cap=1 << 30)
                if cert is not None:
                    return cert
        return None

    def _search(self, mask, C, target, need, wide: bool, alle: bool, top: int, prune: int, cap: int = 40):
        s = self.s
        t0, u0, g0 = target
        bd0 = int(np.searchsorted(s.group_offsets, g0, side="right") - 1)
        ti, ts = self._time(t0, wide)
        ui, us = self._org(u0, wide, cap)
        if need:  # partners whose edge of the cube already blocks the room are no use
            ok_t = self._edge_ok(mask, ti, ts, lambda idx: (idx, u0, g0), t0, need)
            ok_u = self._edge_ok(mask, ui, us, lambda idx: (t0, idx, g0), u0, need)
            ti, ts, ui, us = ti[ok_t], ts[ok_t], ui[ok_u], us[ok_u]
        if wide:  # the cheapest partners by the cost of their edge of the cube
            if len(ti) > prune:
                keep = np.sort(np.argpartition(C[ti, u0, g0].sum(axis=1), prune - 1)[:prune])
                ti, ts = ti[keep], ts[keep]
            if len(ui) > prune:
                keep = np.sort(np.argpartition(C[t0][ui, g0].sum(axis=1), prune - 1)[:prune])
                ui, us = ui[keep], us[keep]
        if not len(ti) or not len(ui):
            return BIG, None
        cols, ui_local = np.unique(ui, return_inverse=True)
        ui_local = ui_local.reshape(ui.shape)
        lo, n_g = int(s.group_offsets[bd0]), int(s.group_sizes[bd0])
        nodes = np.arange(s.n_group + 1) if alle else np.arange(lo, lo + n_g)
        B = C[np.ix_(np.unique(ti), cols, nodes)]
        B = B[np.searchsorted(np.unique(ti), ti)].sum(axis=1)[:, ui_local, :].sum(axis=2)  # (nF, nH, nodes)
        if not alle:  # +1 on the target's group, -1 on another group of its breakdown
            j0 = g0 - lo
            costs = B[:, :, [j0]] + B  # (nF, nH, n_g); the target's own column is not a candidate
            costs[:, :, j0] = BIG
        else:  # +1 on 'Alle' and on one group of every breakdown (the target's own where it has one)
            total = B[:, :, 0] + (B[:, :, g0] if g0 != 0 else 0.0)
            picks = []
            for bd in range(1, len(s.group_offsets)):
                if bd == bd0:
                    continue
                a, k = int(s.group_offsets[bd]), int(s.group_sizes[bd])
                j = B[:, :, a:a + k].argmin(axis=2)
                picks.append(a + j)
                total = total + np.take_along_axis(B[:, :, a:a + k], j[:, :, None], 2)[:, :, 0]
            costs = total[:, :, None]
        flat = costs.ravel()
        k = min(top if need else 1, flat.size)
        cand = np.argpartition(flat, k - 1)[:k] if k < flat.size else np.arange(flat.size)
        cand = cand[np.lexsort((cand, flat[cand]))]
        cand = cand[flat[cand] < BIG / 2]
        if not len(cand):
            return BIG, None
        f, h, kk = np.unravel_index(cand, costs.shape)
        if alle:
            gi = np.column_stack([np.zeros(len(cand), np.int64), np.full(len(cand), g0)] + [pk[f, h] for pk in picks])
            gi = np.where(np.arange(gi.shape[1]) == 1, np.where(g0 == 0, self.g_dummy, gi), gi)  # 'Alle' only once
            gs = (gi != self.g_dummy).astype(np.int8)
        else:
            gi = np.column_stack([np.full(len(cand), g0), nodes[kk]])
            gs = np.tile(np.array([1, -1], np.int8), (len(cand), 1))
        if need:
            ok = self._room_ok(mask, ti[f], ts[f], ui[h], us[h], gi, gs, need)
            if not ok.any():
                return BIG, None
            i = int(np.argmax(ok))
        else:
            i = 0
        keep = gs[i] != 0
        return float(flat[cand[i]]), (ti[f[i]], ts[f[i]], ui[h[i]], us[h[i]], gi[i][keep], gs[i][keep])

    def _edge_ok(self, mask: Mask, idx, sign, at, own: int, need: dict) -> np.ndarray:
        """Candidates of one dimension whose cells on the target's edge (the other two dimensions
        at the target) leave the room `need` asks for: going down (-1) by the room up, going up
        (+1, the target itself excepted) by the room down."""
        ok = np.ones(len(idx), bool)
        real = (sign != 0) & (idx != own)
        if at(idx)[1] is not None and not np.isscalar(at(idx)[1]):
            real &= ~self.is_pair[idx]
        for o, (need_up, need_down) in need.items():
            v = mask.values[o][at(idx)]
            ok &= np.where(real & (sign < 0), v >= need_up, True).all(axis=1)
            ok &= np.where(real & (sign > 0), v >= need_down, True).all(axis=1)
        return ok

    def _room_ok(self, mask: Mask, ti, ts, ui, us, gi, gs, need: dict) -> np.ndarray:
        """Which candidates (rows) give the target (sign +1 in each) the room `need` asks for:
        up until a cell going down reaches 0, down until a cell going down (the target among
        them) reaches 0."""
        T, U, G = ti[:, :, None, None], ui[:, None, :, None], gi[:, None, None, :]
        sign = ts[:, :, None, None].astype(np.int8) * us[:, None, :, None] * gs[:, None, None, :]
        real = ~self.is_pair[U]
        neg, pos = (sign < 0) & real, (sign > 0) & real
        ok = np.ones(len(ti), bool)
        for o, (need_up, need_down) in need.items():
            v = mask.values[o][T, U, G]
            up = np.where(neg, v, np.inf).min(axis=(1, 2, 3))
            down = np.where(pos, v, np.inf).min(axis=(1, 2, 3))
            ok &= (up >= need_up) & (down >= need_down)
        return ok

    def _support(self, cert) -> tuple[np.ndarray, ...]:
        """The cells (time, org, group node) of a certificate, their signs and which are cells
        (not pair nodes), as 3-d arrays (time x org x group)."""
        ti, ts, ui, us, gi, gs = cert
        kt, ku = ts != 0, us != 0
        ti, ts, ui, us = ti[kt], ts[kt], ui[ku], us[ku]
        sign = ts[:, None, None].astype(np.int64) * us[None, :, None] * gs[None, None, :]
        T, U, G = np.broadcast_arrays(ti[:, None, None], ui[None, :, None], gi[None, None, :])
        return T, U, G, sign, ~self.is_pair[U]

    def _rooms(self, mask: Mask, o: int, T, U, G, sign, real) -> tuple[np.ndarray, np.ndarray]:
        """Room up and down along the certificate for every cell of it, for outcome o's sums
        (each at least 0; no upper bound, as the counts are not published)."""
        v = mask.values[o][T, U, G]
        neg, pos = real & (sign < 0), real & (sign > 0)
        t_hi = v[neg].min() if neg.any() else np.inf  # how far up before a cell going down reaches 0
        t_lo = v[pos].min() if pos.any() else np.inf
        return np.where(sign > 0, t_hi, t_lo), np.where(sign > 0, t_lo, t_hi)

    def apply(self, mask: Mask, cert) -> None:
        """Suppress the certificate's support; it proves every system in which it empties no cell."""
        T, U, G, sign, real = self._support(cert)
        t, u, g, sg = T[real], U[real], G[real], sign[real]
        mine = self.published_before[t, u, g]  # published by an earlier release in another system
        self.S[t[~mine], u[~mine], g[~mine]] = True
        self.only[self.j[id(mask)]][t[mine], u[mine], g[mine]] = True
        r = int(self.rng.integers(1, 1 << 20))
        valid = []
        for j, (m, C, Cr) in enumerate(zip(self.masks, self.C, self.C_room)):
            on = m.exists[t, u, g] & (~mine | (m is mask))
            C[t[on], u[on], g[on]] = 0.0
            Cr[t[on], u[on], g[on]] = 0.0
            if m is not mask and not (on.all() and (self.S | self.only[j])[t, u, g].all()):
                continue  # it would change an empty cell there (the 12-month system lacks the last months)
            valid.append(j)
            m.certified[t, u, g] = True
            np.add.at(m.witness, (t, u, g), r * sg)
            for o in m.outcomes + [("ikke", o) for o in m.outcomes if o in self.binary]:
                up, down = self._rooms(m, o, T, U, G, sign, real)
                np.maximum.at(m.up[o], (t, u, g), up[real])
                np.maximum.at(m.down[o], (t, u, g), down[real])
        # kept for the proof of room under every bound (proof.py): the systems it holds in,
        # its cells (flat) and their signs
        flat = np.ravel_multi_index((t, u, g), self.S.shape)
        for c in flat.tolist():
            self.cert_at[c].append(len(self.certificates))
        self.certificates.append((tuple(valid), flat, sg.astype(np.int8)))
        self.n_cert += 1

    def _publish_here(self, mask: Mask, cell) -> None:
        """A cell no certificate in this system reaches, suppressed for another system's sake: in
        a release, a new period of the 3-month outcomes whose months were all published before is
        a sum of published values. It is published in this system (and stays so) and suppressed in
        the others alone. Anything else without a certificate is an error."""
        j = self.j[id(mask)]
        if self.primary[cell] or self.kept[j][cell] or not self.published_before.any():
            raise RuntimeError(f"no certificate for cell {cell}: the tables' structure is inconsistent")
        for i, m in enumerate(self.masks):
            if i != j and m.exists[cell] and self.S[cell]:
                self.only[i][cell] = True
        self.S[cell] = False
        self.known[j][cell] = self.published_before[cell] = True
        self.C[j][cell] = self.C_room[j][cell] = BIG

    # -- the loop -----------------------------------------------------------------------------
    def _order(self, cells) -> np.ndarray:
        """Targets top-down: country, regions, offices; 'Alle' first; periods before months
        (as HiTaS works through a hierarchy), then by position."""
        t, u, g = cells
        lvl = np.where(u == 0, 0, np.where(u <= self.s.n_regions, 1, 2))
        return np.lexsort((t, g, u, t < self.s.n_months, g > 0, lvl))

    def need(self, mask: Mask, cell) -> dict:
        """Room a primary cell still lacks, per outcome: `share` of its sum of the actual outcome
        down (or to 0), and up as much and at least something (at 0, or the attacker knows it)."""
        out = {}
        if not self.primary[cell] or (id(mask), cell) in self.weak or (id(mask), cell) in self.deferred:
            return out
        for o in mask.outcomes:
            v = abs(mask.values[o][cell])
            need_up, need_down = max(self.share * v, 1e-9), self.share * v
            if mask.up[o][cell] < need_up or mask.down[o][cell] < need_down:
                out[o] = (need_up if mask.up[o][cell] < need_up else 0.0, need_down if mask.down[o][cell] < need_down else 0.0)
        for key, room in self.attribute_need(mask, cell).items():
            if mask.up[key][cell] < room[0]:
                out[key] = room
        return out

    def attribute_need(self, mask: Mask, cell) -> dict:
        """The room a primary cell needs so that the attacker who knows bounds cannot tell that
        nobody (or everybody) in it was in work: one person more in work where none was (the
        cells going down along the certificate must have someone in work), one more not in work
        where all were (they must have someone not in work). Unlike the protection range, this
        is searched for at any cost: linear programming over all relations finds such cells
        where propagation does not (on the small world, 2 of 8 sampled cells without it)."""
        if not self.primary[cell]:
            return {}
        out = {}
        for o in mask.outcomes:
            if o not in self.binary:
                continue
            if mask.values[o][cell] < 0.5:
                out[o] = (1e-9, 0.0)
            if mask.values[("ikke", o)][cell] < 0.5:
                out[("ikke", o)] = (1e-9, 0.0)
        return out

    def _combined(self, mask: Mask, cell, need: dict) -> bool:
        """Whether a sum of the certificates applied so far gives the attribute room `need` asks
        for (proof.combined_step); if so, it is recorded as the cell's room."""
        j = self.j[id(mask)]
        flat = int(np.ravel_multi_index(cell, self.S.shape))
        for key in need:
            o = key[1] if isinstance(key, tuple) else key
            if (j, o) not in self._work:
                horizon = self.kinds[o][1]
                hours = [mask.values[h].ravel() for h in mask.outcomes if self.kinds[h] == ("hours", horizon)]
                work = mask.values[o].ravel()
                lo, hi = proof.work_bounds(mask.n.ravel().astype(float), work, hours[0] if hours else None, horizon)
                bounded = (mask.exists & ~self.is_pair[None, :, None]).ravel()
                self._work[(j, o)] = (work, lo, hi, bounded)
            work, lo, hi, bounded = self._work[(j, o)]
            direction = -1 if isinstance(key, tuple) else 1  # a person out of work, or into it
            if not proof.combined_step(self.certificates, self.cert_at, j, work, lo, hi, bounded, flat, direction):
                return False
        for key in need:
            mask.up[key][cell] = max(mask.up[key][cell], 1.0)
        return True

    def _late(self) -> bool:
        """The primary cells whose attribute room neither one certificate nor a sum of them
        gives, once every other certificate is in place: the exhaustive search for each."""
        changed = False
        todo, self.deferred = list(self.deferred.values()), {}
        for mask, cell in todo:
            attr = {k: r for k, r in self.attribute_need(mask, cell).items() if mask.up[k][cell] < r[0]}
            if not attr or self._combined(mask, cell, attr):
                continue
            cert = self._attribute_search(mask, self.C[self.j[id(mask)]], cell, attr)
            if cert is None:
                self.weak.add((id(mask), cell))
                continue
            self.apply(mask, cert)
            changed = True
        return changed

    def _attribute_search(self, mask: Mask, C: np.ndarray, cell, need: dict):
        """The cheapest certificate with the attribute room, at any cost but the national 'Alle'
        series (the one series every reader has; closed for the search, then reopened)."""
        national = C[:, 0, 0].copy()
        C[:, 0, 0] = np.where(national > 0, BIG, national)
        try:
            return self.search(mask, C, cell, need, exhaustive=True)
        finally:
            C[:, 0, 0] = national

    def run(self) -> None:
        """A certificate for every suppressed cell of every system; then further certificates for
        primary cells whose proved room is short of the requirement; until nothing changes."""
        for _ in range(100):  # new suppressions in one system may need certificates in another
            changed = self._pass(rooms=False)
            changed = self._pass(rooms=True) or changed
            if not changed and not self._late():
                return
        raise RuntimeError("secondary suppression did not settle")

    def _pass(self, rooms: bool) -> bool:
        changed = False
        for mask, C, C_room in zip(self.masks, self.C, self.C_room):
            live = (self.S | self.only[self.j[id(mask)]]) & mask.exists
            live[-1], live[:, -1], live[:, :, -1] = False, False, False
            todo = np.nonzero(live & (self.primary if rooms else ~mask.certified))
            stuck = []
            for i in self._order(todo):
                cell = (int(todo[0][i]), int(todo[1][i]), int(todo[2][i]))
                if rooms:
                    need = self.need(mask, cell)
                    if not need:
                        continue
                    cert = self.search(mask, C_room, cell, need)
                    attr = {k: r for k, r in self.attribute_need(mask, cell).items() if mask.up[k][cell] < r[0]}
                    if cert is None and attr:
                        # that nobody or everybody worked must not follow: proved by a sum of
                        # certificates, or searched for at any cost, once every cheaper
                        # certificate is in place (`_late`)
                        self.deferred[(id(mask), cell)] = (mask, cell)
                        continue
                    if cert is None:
                        self.weak.add((id(mask), cell))  # no room provable here: the audit reports it
                        continue
                elif mask.certified[cell]:
                    continue
                else:
                    cert = self.search(mask, C, cell)
                    if cert is None:
                        # a cell an earlier release suppressed can have been certified there by
                        # another cell's certificate (an office's, through its region): the
                        # cells after it in this pass may do that again
                        stuck.append(cell)
                        continue
                self.apply(mask, cert)
                changed = True
            for cell in stuck:
                if not mask.certified[cell]:
                    self._publish_here(mask, cell)
        return changed

def protect(monthly: pd.DataFrame, period: pd.DataFrame, shape: Shape, min_persons: int,
            share: float = 0.1, outcomes: list[str] | None = None, k: int = ATTRIBUTE_K,
            counts: str = "skjult", before: tuple[np.ndarray, np.ndarray] | None = None
            ) -> tuple[np.ndarray, np.ndarray, Protection]:
    """Primary and secondary suppression of the monthly and period cells together.

    `monthly`: rows __mi, lvl, unit, bd, grp, oi, ANTALL_PERSONER (person-months), faktisk and,
    for hours outcomes, __pos (person-months with any hours); `period`: rows __p, ...,
    ANTALL_PERSONER (different persons: the threshold applies to them) and ANTALL_PERSONMANEDER
    (the person-months the sums are over). `outcomes`: the names by index `oi` (jobbK are shares
    in per cent, atidK hours). Returns, per row of each frame, whether it is suppressed and
    whether primarily, and the Protection (with its witness and the attacker's intervals).
    `before`: per row of each frame, what the release before did with the cell (carry.py):
    published cells stay published (no certificate may use them), suppressed ones suppressed."""
    M = shape.n_months
    names = list(outcomes) if outcomes is not None else [f"o{i}" for i in range(int(max(monthly["oi"].max(), 0)) + 1)]
    dims = (shape.n_time + 1, shape.n_org + 1, shape.n_group + 1)
    keys = []
    for frame, t in ((monthly, monthly["__mi"].to_numpy() - shape.m0), (period, M + period["__p"].to_numpy())):
        keys.append((t.astype(np.int64), shape.org_node(frame["lvl"].to_numpy(), frame["unit"].to_numpy()),
                     shape.group_node(frame["bd"].to_numpy(), frame["grp"].to_numpy())))
    oi = np.concatenate([monthly["oi"].to_numpy(), period["oi"].to_numpy()])
    t, u, g = (np.concatenate([a, b]) for a, b in zip(*keys))
    n = np.concatenate([monthly["ANTALL_PERSONER"].to_numpy(), period["ANTALL_PERSONMANEDER"].to_numpy()]).astype(np.int64)
    persons = np.concatenate([monthly["ANTALL_PERSONER"].to_numpy(), period["ANTALL_PERSONER"].to_numpy()]).astype(np.int64)
    mean = np.concatenate([monthly["faktisk"].to_numpy(), period["faktisk"].to_numpy()]).astype(float)
    scale = np.array([100.0 if outcome_kind(x)[0] == "binary" else 1.0 for x in names])[oi]
    total = n * mean / scale
    total = np.where(scale > 1, np.rint(total), total)  # persons in work are whole
    flat = np.ravel_multi_index((t, u, g), dims)
    primary = np.zeros(dims, bool)
    primary.flat[flat[persons < min_persons]] = True
    primary |= _attribute_cells(monthly, shape, flat, oi, n, total, names, k, dims)
    # systems: outcomes with identical cells and counts share one
    systems: dict[bytes, list[int]] = {}
    for o in np.unique(oi):
        sel = oi == o
        order = np.argsort(flat[sel], kind="stable")
        systems.setdefault(flat[sel][order].tobytes() + n[sel][order].tobytes(), []).append(int(o))
    mask_list = []
    for outs in systems.values():
        sel = oi == outs[0]
        arr, per = np.zeros(dims, np.int64), np.zeros(dims, np.int64)
        arr.flat[flat[sel]], per.flat[flat[sel]] = n[sel], persons[sel]
        values = {}
        for o in outs:
            v = np.zeros(dims)
            v.flat[flat[oi == o]] = total[oi == o]
            values[o] = v
        mask = Mask(outs, arr, values)
        mask.persons = per
        mask_list.append(mask)
    system_of = np.zeros(int(oi.max()) + 1 if len(oi) else 1, np.int64)
    for j, outs in enumerate(systems.values()):
        system_of[outs] = j
    kept = [np.zeros(dims, bool) for _ in mask_list]
    known = [np.zeros(dims, bool) for _ in mask_list]
    if before is not None:
        b = np.concatenate(before)
        for j in range(len(mask_list)):
            mine = system_of[oi] == j
            kept[j].flat[flat[mine & (b == SUPPRESSED_BEFORE)]] = True
            known[j].flat[flat[mine & (b == PUBLISHED_BEFORE)]] = True
    pr = Protector(shape, mask_list, primary, share, room_cap=20.0 * min_persons, kept=kept, known=known,
                   kinds={i: outcome_kind(x) for i, x in enumerate(names)})
    pr.run()
    left, bounds = _repair(pr, shape, names, min_persons, counts)
    if any(((pr.S | o) & k).any() for o, k in zip(pr.only, pr.known)):  # no certificate or repair uses them
        raise RuntimeError("a cell published in an earlier release was suppressed")
    prot = Protection(pr.S, primary, mask_list, shape, pr.n_cert, {(pr.j[i], c) for i, c in pr.weak}, left, bounds,
                      pr.only)
    sup = pr.S.flat[flat] | np.stack(pr.only).reshape(len(mask_list), -1)[system_of[oi], flat]
    prim = primary.flat[flat]
    unb = pr.unbanded.flat[flat]
    nm = len(monthly)
    return (sup[:nm], prim[:nm], unb[:nm]), (sup[nm:], prim[nm:], unb[nm:]), prot


def _attribute_cells(monthly, shape, flat, oi, n, total, names, k, dims) -> np.ndarray:
    """Cells that tell something about everyone in them (the attribute rule, docs/disclosure.md):
    fewer than k persons in work, or fewer than k not in work (jobbK); fewer than k person-months
    with any hours (atidK: a sum of hours over one or two persons is theirs). A period's
    person-months with hours are its months'."""
    M = shape.n_months
    out = np.zeros(dims, bool)
    nm = len(monthly)
    for o in np.unique(oi):
        sel = oi == o
        kind = outcome_kind(names[o])[0]
        if kind == "binary":
            out.flat[flat[sel & ((total < k) | (n - total < k))]] = True
        elif kind == "hours" and "__pos" in monthly:  # without the counts there is no hours rule
            pos = np.zeros(dims)
            mrow = sel[:nm]
            pos.flat[flat[:nm][mrow]] = monthly["__pos"].to_numpy(float)[mrow]
            pos[M:M + len(shape.period_months)] = np.einsum("pm,mug->pug", shape.period_months.astype(float), pos[:M])
            out.flat[flat[sel]] |= pos.flat[flat[sel]] < k
    return out


def _systems(pr: "Protector", shape: Shape, names: list[str], threshold: int, counts: str):
    """The protector's systems as the bounded attacker sees them (attacker.System), and links."""
    M = shape.n_months
    out = []
    pair = np.zeros(pr.S.shape, bool)
    pair[:, np.append(shape.pair_node, False)] = True
    for mask in pr.masks:
        if not hasattr(mask, "relations"):
            mask.relations = shape_relations(shape, mask.exists).tocoo()
        only = pr.only[pr.j[id(mask)]] & mask.exists
        sup = (pr.S | only) & mask.exists
        unknown = sup | pair
        cap, floor = _count_bounds(mask, shape, pr.S | only, counts, threshold, pr.unbanded)
        kinds = {"n": ("count", None), **{str(o): outcome_kind(names[o]) for o in mask.outcomes}}
        values = {"n": mask.n.ravel().astype(float), **{str(o): mask.values[o].ravel() for o in mask.outcomes}}
        out.append(attacker.System(kinds, mask.relations, unknown.ravel(), values,
                                   np.where(sup, floor, 0.0).ravel(), np.where(sup, cap, np.inf).ravel(),
                                   (sup & ~pair).ravel(), only.ravel()))
    links = []
    for i in range(len(pr.masks)):
        for j in range(i + 1, len(pr.masks)):
            both = np.zeros(pr.S.shape, bool)
            both[:M] = pr.masks[i].exists[:M] & pr.masks[j].exists[:M]
            links.append((i, j, np.flatnonzero(both.ravel())))
    return out, links


# which bound a disclosure comes from: reason -> (quantity, bound to widen: upper?)
def _target(reason: str) -> list[tuple[str, bool]]:
    if reason == "antall":
        return [("n", True), ("n", False)]
    if reason == "under_grensen":
        return [("n", True)]
    if reason.endswith("_ingen"):
        return [(reason[:-6], True)]
    if reason.endswith("_alle"):
        return [(reason[:-5], False), ("n", True)]
    return [(reason, True), (reason, False)]


def _repair(pr: "Protector", shape: Shape, names: list[str], threshold: int, counts: str):
    """Suppress further cells until the bounded attacker proves nothing (attacker.disclosed):
    for each disclosure, the relation that gives the binding bound gets one more suppressed
    cell (the smallest holding at least the threshold, never the national series), and the
    new cells get certificates. Returns what is still disclosed and the final intervals."""
    clean = [{} for _ in pr.masks]  # per system, the months the LP found nothing in (attacker.small_in_month)
    for _ in range(REPAIR_ROUNDS):
        systems, links = _systems(pr, shape, names, threshold, counts)
        bounds = attacker.intervals(systems, links)
        found = [(i, reason, cells) for i, (s, b) in enumerate(zip(systems, bounds))
                 for reason, cells in attacker.disclosed(s, b, threshold).items()]
        if not found:  # what propagation does not prove, an LP within a month can (a cell small)
            per_month = pr.S.shape[1] * pr.S.shape[2]
            found = [(i, "under_grensen", cells) for i, (s, b) in enumerate(zip(systems, bounds))
                     if len(cells := attacker.small_in_month(s, b, threshold, per_month, shape.n_months, clean[i]))]
        if not found:
            return [], bounds
        added, unband = set(), set()
        for i, reason, cells in found:
            for cell in cells.tolist():
                act = _widen(pr, systems, bounds, i, reason, cell, threshold, counts == "intervall")
                if act is not None:
                    (unband if act[0] == "band" else added).add(act[1])
        if not added and not unband:
            return found, bounds
        for c in unband:
            pr.unbanded.flat[c] = True
        for c in added:
            pr.S.flat[c] = True
        if added:
            pr.run()
    return found, bounds


def _widen(pr, systems, bounds, i, reason, cell, threshold, banded: bool = False, depth: int = 4,
           budget: int = 300) -> tuple[str, int] | None:
    """What loosens the binding bound of `cell`: ('cell', c) a published cell to suppress, or,
    with counts published as bands, ('band', c) a suppressed cell whose band is binding and is
    withheld (a published band cannot be loosened by suppressing more). When every cell of the
    binding relation is suppressed already, the bound comes from theirs: search on through them
    (breadth first, `depth` relations deep). None if nothing is found."""
    from collections import deque
    order = [i] + [j for j in range(len(systems)) if j != i]
    queue = deque((cell, q, upper, 0) for q, upper in _target(reason))
    seen = set()
    while queue and budget > 0:
        c0, q, upper, d = queue.popleft()
        if (c0, q, upper) in seen:
            continue
        seen.add((c0, q, upper))
        budget -= 1
        if banded and q == "n" and _band_binds(pr, systems, bounds, c0, upper, threshold):
            return ("band", c0)
        for j in (order if q == "n" else [i]):
            s = systems[j]
            if not pr.masks[j].exists.flat[c0]:
                continue
            for _, r in attacker.binding_rows(s, bounds[j], q, c0, upper):
                cells, vals = attacker.row_cells(s, r), attacker.row_values(s, r)
                c = _choose(pr, s, cells, threshold)
                if c is not None:
                    return ("cell", c)
                if d + 1 < depth:
                    vj = vals[cells == c0][0]
                    for x, v in zip(cells.tolist(), vals.tolist()):
                        if x != c0 and s.unknown[x]:
                            queue.append((x, q, upper if v * vj < 0 else not upper, d + 1))
    return None


def _band_binds(pr, systems, bounds, c: int, upper: bool, threshold: int) -> bool:
    """Whether the published band of suppressed cell `c` is what bounds its count (upper or
    lower) in some system, and is still published."""
    if pr.unbanded.flat[c]:
        return False
    for mask, s, b in zip(pr.masks, systems, bounds):
        if not (mask.exists.flat[c] and s.suppressed[c]):
            continue
        lo, hi = band_bounds(np.array([mask.persons.flat[c]]), threshold)
        if upper and np.isfinite(hi[0]) and b["n"][1][c] >= hi[0] - 0.5 and c // (pr.S.shape[1] * pr.S.shape[2]) < pr.s.n_months:
            return True
        if not upper and lo[0] > 1 and b["n"][0][c] <= lo[0] + 0.5:
            return True
    return False


def _choose(pr, s, cells: np.ndarray, threshold: int) -> int | None:
    """Of a relation's cells, the one to suppress: published, in the table, not the national
    'Alle' series, not a moved office's part; below the national level if there is one; the
    smallest with at least the threshold, else the largest. (A rare group's national cell can
    prove all its regions small: 22 persons over 13 regions that each hold one.)"""
    _, u, g = np.unravel_index(cells, pr.S.shape)
    n = s.values["n"][cells]
    ok = ~s.unknown[cells] & (n > 0) & ~((u == 0) & (g == 0)) & ~pr.published_before.flat[cells]
    if (ok & (u != 0)).any():
        ok &= u != 0
    if not ok.any():
        return None
    cand, cn = cells[ok], n[ok]
    big = cn >= threshold
    return int(cand[big][np.argmin(cn[big])] if big.any() else cand[np.argmax(cn)])


def _count_bounds(mask: Mask, shape: Shape, primary: np.ndarray, counts: str, threshold: int,
                  unbanded: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The bounds on a cell's persons an attacker has besides the relations: a month holds at
    most the different persons of any published period that holds it (periods sensitive in
    themselves are never published: the rest may be), and with counts published as bands, the
    band. Returns (most, fewest) per cell; the fewest is at least 1 (a cell in the table holds
    someone)."""
    M = shape.n_months
    cap = np.full(mask.n.shape, np.inf)
    for p, months in enumerate(shape.period_months):
        open_ = mask.exists[M + p] & ~primary[M + p]
        per = np.where(open_, mask.persons[M + p], np.inf)
        cap[:M][months] = np.minimum(cap[:M][months], per[None])
    floor = np.ones(mask.n.shape)
    if counts == "intervall":
        lo, hi = band_bounds(mask.persons, threshold)
        if unbanded is not None:  # cells whose band is withheld (_repair)
            lo, hi = np.where(unbanded, 1.0, lo), np.where(unbanded, np.inf, hi)
        cap[:M] = np.minimum(cap[:M], hi[:M])
        floor = np.maximum(floor, lo)  # a period's person-months are at least its persons
    return cap, floor


BAND_MULTIPLES = (1, 2, 5, 10)  # band edges in multiples of the threshold; the first band is 1 to 2k - 1


def band_bounds(n: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """The band (lowest, highest) of each count: [1, 2k-1], [2k, 5k-1], [5k, 10k-1], [10k, inf)."""
    k = threshold
    edges = np.array([1] + [m * k for m in BAND_MULTIPLES[1:]], float)
    i = np.clip(np.searchsorted(edges, n, side="right") - 1, 0, len(edges) - 1)
    upper = np.append(edges[1:] - 1, np.inf)
    return edges[i], upper[i]


def count_band(n: np.ndarray, threshold: int) -> np.ndarray:
    """Labels of the bands for the counts of suppressed cells (band_bounds): the first band holds
    the threshold, so a band never says that a cell is below it."""
    lo, hi = band_bounds(np.asarray(n), threshold)
    return np.array([f"{int(a)}-{int(b)}" if np.isfinite(b) else f"{int(a)}+" for a, b in zip(lo, hi)], dtype=object)


__all__ = ["ATTRIBUTE_K", "BIG", "Mask", "Protection", "Protector", "Shape", "band_bounds", "count_band", "protect",
           "shape_relations"]
