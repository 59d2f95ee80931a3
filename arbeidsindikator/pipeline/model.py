"""The indicator model: one (weighted) OLS per outcome from accumulated sufficient statistics.

The design is built in SQL: every term becomes a small integer code (categorical levels,
bins, deciles) or a numeric column. Arrow record batches of codes stream out of the
database and are reduced to X'WX, X'Wy and per-person score sums with `np.bincount`, never
a dense one-hot matrix, so memory does not grow with the number of rows and the same
reduction runs per partition on Spark (sum per partition, then add). The second, clustered
pass also writes each row's actual, expected and indicator values (the person rows) while it
streams, with any columns the caller asks it to carry along (the cell codes, in the run).

    model = IndicatorModel(spec).fit(con, "analysis")
    model.results_["jobb3"].params, .std_errors("cluster"), .summary()

Collinear columns and levels without observations are dropped with a note (never a crash);
their coefficients are reported as missing.
"""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats

from .. import norsk
from .config import ModelSpec, Term

BATCH_ROWS = 1_000_000
COLLINEAR_TOL = 1e-9
BLOCK_CELLS = 256  # level combinations per block of terms in the gram (see Layout._blocks)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def arrow_batches(con: duckdb.DuckDBPyConnection, sql: str, rows: int):
    """A query result as Arrow record batches, streamed on a cursor of its own (so the
    connection stays usable). DuckDB 2.x calls the reader to_arrow_reader, 1.x record_batch."""
    cur = con.cursor()
    try:
        rel = cur.sql(sql)
        reader = rel.to_arrow_reader(rows) if hasattr(rel, "to_arrow_reader") else rel.record_batch(rows)
        yield from reader
    finally:
        cur.close()


def is_spark(con) -> bool:
    """True for the Spark engine (spark.SparkConnection), False for a DuckDB connection."""
    return getattr(con, "engine", "duckdb") == "spark"


def reduce_batches(con, sql: str, fn, rows: int = BATCH_ROWS, progress=None, cluster: str | None = None,
                   order: tuple[str, ...] = ()) -> dict:
    """fn(iterator of Arrow record batches) -> nested dict of sums, over every row of `sql`.

    DuckDB streams all rows through fn once, in the query's own order, calling progress(rows)
    after each batch. The Spark engine runs fn on every partition (the rows of one `cluster`
    together, sorted by `order`) and adds the partitions' sums."""
    if is_spark(con):
        return _add_all(con.reduce_partitions(sql, fn, cluster, order))

    def counted(batches):
        for b in batches:
            yield b
            if progress:
                progress(b.num_rows)
    return fn(counted(arrow_batches(con, sql, rows)))


def _sql_literal(v) -> str:
    return "'" + str(v).replace("'", "''") + "'"


@dataclass
class TermCoding:
    term: Term
    levels: list[str]  # labels, code i <-> levels[i]; empty for continuous
    reference: int | None
    sql: str  # SQL expression giving the code (or the value for continuous)
    cutpoints: list[float] = field(default_factory=list)

    @property
    def is_coded(self) -> bool:
        return self.term.kind != "continuous"


def _bin_labels(breaks: list[float]) -> list[str]:
    b = [f"{x:g}" for x in breaks]
    return [f"<{b[0]}"] + [f"[{b[i]}, {b[i + 1]})" for i in range(len(b) - 1)] + [f">={b[-1]}"]


def _bin_sql(col: str, breaks: list[float]) -> str:
    whens = " ".join(f"WHEN {col} < {x!r} THEN {i}" for i, x in enumerate(breaks))
    return f"(CASE WHEN {col} IS NULL THEN NULL {whens} ELSE {len(breaks)} END)"


def _deciles_sql(con, col: str) -> str:
    """The nine decile cut points of a column, interpolated linearly between order statistics
    (DuckDB's quantile_cont and Spark's exact percentile compute the same)."""
    qs = ", ".join(f"{q / 10:.1f}" for q in range(1, 10))
    if is_spark(con):
        return f"percentile({col}, array({qs}))"
    return f"quantile_cont({col}, [{qs}])"


def _level_code_sql(col: str, levels: list[str], as_enum: bool) -> str:
    """The position of a column's value among `levels`, strings with '<NA>' for a missing value
    (NULL for any other value). `as_enum` (a DuckDB VARCHAR or ENUM column): looked up as an
    ENUM, by a hash or, from an ENUM, by its dictionary: 2x and 5x faster than a CASE over the
    levels, which other columns and Spark use."""
    if as_enum:
        na = levels.index("<NA>") if "<NA>" in levels else "NULL"
        enum = f"ENUM({', '.join(_sql_literal(v) for v in levels)})"
        return f"(CASE WHEN {col} IS NULL THEN {na} ELSE enum_code(TRY_CAST({col} AS {enum})) END)"
    cases = " ".join(f"WHEN {_sql_literal(v)} THEN {i}" for i, v in enumerate(levels))
    return f"(CASE coalesce(CAST({col} AS STRING), '<NA>') {cases} ELSE NULL END)"


def _string_columns(con, table: str) -> set[str]:
    """The VARCHAR and ENUM columns of a DuckDB table (none on Spark)."""
    if is_spark(con):
        return set()
    return {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {table}").fetchall()
            if r[1] == "VARCHAR" or r[1].startswith("ENUM(")}


def code_terms(spec: ModelSpec, con: duckdb.DuckDBPyConnection, table: str, est_where: str) -> list[TermCoding]:
    """Decide the levels of every term from the estimation sample: one scan for all decile cut
    points, then one GROUPING SETS scan that counts the levels of every term."""
    terms = [t for t in spec.terms if t.kind != "continuous"]
    deciles = [t for t in terms if t.kind == "deciles"]
    cuts = {}
    if deciles:
        row = con.execute(f"SELECT {', '.join(_deciles_sql(con, _q(t.column)) for t in deciles)} "
                          f"FROM {table} WHERE {est_where}").fetchall()[0]
        cuts = {t.column: sorted(set(float(x) for x in (qs or []))) for t, qs in zip(deciles, row)}
    # grouped by the raw values, made strings only in the few result rows (casting every row's
    # value first cost 0.5 s at 5 M rows); GROUPING tells a missing value from a set's other keys
    keys = [_q(t.column) if t.kind == "categorical" else _bin_sql(_q(t.column), cuts[t.column] if t.kind == "deciles" else list(t.breaks))
            for t in terms]
    counts = [{} for _ in terms]
    if terms:
        n = len(terms)
        sets = ", ".join(f"(__k{i})" for i in range(n))
        shown = [f"CAST(__k{i} AS STRING)" if t.kind == "categorical" else f"__k{i}" for i, t in enumerate(terms)]
        rows = con.execute(f"SELECT {', '.join(f'grouping(__k{i})' for i in range(n))}, {', '.join(shown)}, count(*) FROM ("
                           f"SELECT {', '.join(f'{k} AS __k{i}' for i, k in enumerate(keys))} FROM {table} WHERE {est_where}) "
                           f"GROUP BY GROUPING SETS ({sets})").fetchall()
        for r in rows:
            i = r[:n].index(0)  # the term this row counts
            v = r[n + i]
            if v is None:  # a missing value: its own level '<NA>' if categorical, no level (-1) if binned
                v = "<NA>" if terms[i].kind == "categorical" else -1
            counts[i][v] = counts[i].get(v, 0) + r[-1]  # (distinct values with one string add up)
    strings = _string_columns(con, table)
    counts_in_order = iter(counts)  # `terms` keeps spec order, so coded terms meet their counts in turn
    codings = []
    for t in spec.terms:
        col = _q(t.column)
        if t.kind == "continuous":
            codings.append(TermCoding(t, [], None, f"CAST({col} AS DOUBLE)"))
            continue
        got = next(counts_in_order)
        if t.kind == "categorical":
            levels = sorted(got)
            n = [got[v] for v in levels]
            sql = _level_code_sql(col, levels, t.column in strings)
            cut = []
        else:
            cut = cuts[t.column] if t.kind == "deciles" else list(t.breaks)
            levels = [f"D{i + 1}" for i in range(len(cut) + 1)] if t.kind == "deciles" else _bin_labels(cut)
            sql = _bin_sql(col, cut)
            n = [got.get(i, 0) for i in range(len(levels))]
        if t.reference is not None and t.reference in levels:
            ref = levels.index(t.reference)
        else:
            ref = int(np.argmax(n)) if n else 0
        codings.append(TermCoding(t, levels, ref, sql, cut))
    return codings


def code_type(n: int) -> type:
    """The smallest signed integer type for codes 0..n-1 (signed, so that Spark reads it too)."""
    return np.int8 if n <= 127 else np.int16 if n <= 32767 else np.int32


SQL_INT = {np.int8: "TINYINT", np.int16: "SMALLINT", np.int32: "INTEGER"}  # code_type's names in SQL


def term_arrays(codings: list[TermCoding], batch: pa.RecordBatch) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Columns __t0, __t1, ... of a batch as integer codes (coded terms) and floats (continuous).
    A missing code goes to the term's 'unseen' slot (filled in Arrow, no float round trip); a
    missing continuous value stays NaN. Rows with a missing value are not in the estimation
    sample (column __ok, IndicatorModel.complete_sql) and get no prediction."""
    codes, conts = [], []
    for i, c in enumerate(codings):
        col = batch.column(f"__t{i}")
        if c.is_coded:
            # kept in the column's small type (code_type): widened only where codes are combined
            codes.append(pc.fill_null(col, len(c.levels)).to_numpy(zero_copy_only=False))
        else:
            conts.append(col.to_numpy(zero_copy_only=False).astype(float))
    return codes, conts


class Layout:
    """Columns of the full one-hot design: intercept, every level of every coded term, continuous."""

    def __init__(self, codings: list[TermCoding], block_cells: int = BLOCK_CELLS):
        self.codings = codings
        self.coded = [c for c in codings if c.is_coded]
        self.cont = [c for c in codings if not c.is_coded]
        self.sizes = [len(c.levels) + 1 for c in self.coded]  # +1: unseen level (predicted as reference)
        self.offsets = np.cumsum([1] + self.sizes[:-1]).tolist() if self.coded else []
        self.p = 1 + sum(self.sizes) + len(self.cont)
        names, base = ["(Intercept)"], []
        for c in self.coded:
            names += [f"{c.term.column}[{lv}]" for lv in c.levels] + [f"{c.term.column}[<unseen>]"]
        names += [c.term.column for c in self.cont]
        self.names = names
        # columns that are never estimable: reference levels and the 'unseen' slot
        for c, off, size in zip(self.coded, self.offsets, self.sizes):
            base += [off + c.reference, off + size - 1]
        self.structural_zero = sorted(base)
        self.blocks = self._blocks(block_cells)

    def _blocks(self, block_cells: int) -> list[dict]:
        """Consecutive coded terms joined into blocks of at most `block_cells` level combinations.

        A gram over blocks needs one bincount per pair of blocks instead of one per pair of
        terms (Nav's eleven terms: 4 blocks, 10 bincounts instead of 66). Each block's joint
        code J = sum of code_t * stride_t maps back to the terms' columns through the 0/1
        matrix `onehot` (cells x the block's columns), which is contiguous in the layout."""
        groups, cur, cells = [], [], 1
        for t, size in enumerate(self.sizes):
            if cur and cells * size > block_cells:
                groups.append(cur)
                cur, cells = [], 1
            cur.append(t)
            cells *= size
        if cur:
            groups.append(cur)
        blocks = []
        for g in groups:
            sizes = [self.sizes[t] for t in g]
            strides = np.cumprod([1] + sizes[:-1]).tolist()
            n_cells = int(np.prod(sizes))
            start = self.offsets[g[0]]
            onehot = np.zeros((n_cells, sum(sizes)))
            j = np.arange(n_cells)
            col0 = 0
            for size, stride in zip(sizes, strides):
                onehot[j, col0 + (j // stride) % size] = 1.0
                col0 += size
            blocks.append({"terms": g, "strides": strides, "cells": n_cells, "onehot": onehot,
                           "cols": slice(start, start + sum(sizes))})
        return blocks

    def _joint(self, codes: list[np.ndarray]) -> list[np.ndarray]:
        """Every block's joint code per row."""
        out = []
        for b in self.blocks:
            j = codes[b["terms"][0]].astype(np.intp, copy=True)
            for t, stride in zip(b["terms"][1:], b["strides"][1:]):
                j += codes[t] * np.intp(stride)  # a NumPy scalar: the product is widened, not int8
            out.append(j)
        return out

    def cross(self, codes: list[np.ndarray], conts: list[np.ndarray], a: np.ndarray, joint=None) -> np.ndarray:
        """X' a for the full design."""
        out = np.empty(self.p)
        out[0] = a.sum()
        for b, j in zip(self.blocks, joint if joint is not None else self._joint(codes)):
            out[b["cols"]] = np.bincount(j, weights=a, minlength=b["cells"]) @ b["onehot"]
        for k, x in enumerate(conts):
            out[1 + sum(self.sizes) + k] = (a * x).sum()
        return out

    def gram(self, codes: list[np.ndarray], conts: list[np.ndarray], a: np.ndarray, joint=None) -> np.ndarray:
        """X' diag(a) X for the full design, from co-occurrence counts of the blocks' joint
        codes (no one-hot matrix of the rows)."""
        p, g = self.p, np.zeros((self.p, self.p))
        joint = joint if joint is not None else self._joint(codes)
        g[0] = self.cross(codes, conts, a, joint)
        k0 = 1 + sum(self.sizes)
        for i, (bi, ji) in enumerate(zip(self.blocks, joint)):
            cnt = np.bincount(ji, weights=a, minlength=bi["cells"])
            g[bi["cols"], bi["cols"]] = bi["onehot"].T @ (cnt[:, None] * bi["onehot"])
            for bj, jj in zip(self.blocks[i + 1:], joint[i + 1:]):
                co = np.bincount(ji * bj["cells"] + jj, weights=a, minlength=bi["cells"] * bj["cells"])
                g[bi["cols"], bj["cols"]] = bi["onehot"].T @ co.reshape(bi["cells"], bj["cells"]) @ bj["onehot"]
            for k, x in enumerate(conts):
                g[bi["cols"], k0 + k] = np.bincount(ji, weights=a * x, minlength=bi["cells"]) @ bi["onehot"]
        for k, x in enumerate(conts):
            for m in range(k, len(conts)):
                g[k0 + k, k0 + m] = (a * x * conts[m]).sum()
        iu = np.triu_indices(p, 1)
        g[(iu[1], iu[0])] = g[iu]
        g[:, 0] = g[0]
        return g

    def cluster_scores(self, cluster: np.ndarray, n_clusters: int, codes, conts, a: np.ndarray) -> np.ndarray:
        """S[g] = sum over the cluster's rows of x * a  (n_clusters x p).

        Stored column by column (the transpose is filled): each term's block of columns is then
        one contiguous write, where row-major storage made strided writes that cost three times
        the bincounts. Callers see an ordinary n_clusters x p array."""
        s = np.empty((self.p, n_clusters))
        s[0] = np.bincount(cluster, weights=a, minlength=n_clusters)
        for c, off, size in zip(codes, self.offsets, self.sizes):
            s[off:off + size] = np.bincount(c * np.intp(n_clusters) + cluster, weights=a, minlength=size * n_clusters).reshape(size, n_clusters)
        k0 = 1 + sum(self.sizes)
        for j, x in enumerate(conts):
            s[k0 + j] = np.bincount(cluster, weights=a * x, minlength=n_clusters)
        return s.T

    def predict(self, beta_full: np.ndarray, codes, conts) -> np.ndarray:
        yhat = np.full(len(codes[0]) if codes else len(conts[0]), beta_full[0])
        for c, off, size in zip(codes, self.offsets, self.sizes):
            yhat += beta_full[off:off + size][c]
        k0 = 1 + sum(self.sizes)
        for j, x in enumerate(conts):
            yhat += beta_full[k0 + j] * x
        return yhat


def _sorted(ids: np.ndarray) -> bool:
    return bool(np.all(ids[:-1] <= ids[1:]))


class ClustersApart(ValueError):
    """A cluster's rows do not come together (or the cluster column has missing values)."""


def whole_clusters(batches, in_order: bool = True):
    """The rows of batches with each cluster's rows together, re-cut so that no cluster spans
    two batches: each batch's last cluster is held back until its continuation at the head of
    the next batch has joined it. Only those few rows are copied (copying whole batches cost
    10 s at national scale), and the completed clusters come together, as one batch of a
    batch's size at most, so they come later than their neighbours.

    `in_order`: the rows come sorted by cluster, which each batch shows at once. Otherwise each
    cluster's rows only have to be together (a table the model's pass wrote): that is checked
    at the end, when every cluster has been seen once. Either way a violation raises
    ClustersApart."""
    carry, carry_id, last = None, None, None
    done, n_done = [], 0  # completed held-back clusters, yielded together
    firsts = []  # without in_order: one id per cluster, to check at the end
    for b in batches:
        if not b.num_rows:
            continue
        cid = b.column("__cluster").to_numpy(zero_copy_only=False)
        if in_order and (not _sorted(cid) or (last is not None and not cid[0] >= last)):
            raise ClustersApart("the rows do not come in cluster order (or the cluster column has missing values)")
        last = cid[-1]
        if carry is not None:  # the held-back cluster, continued at the head of this batch
            head = 0  # the rows that continue the held-back cluster
            if cid[0] == carry_id:
                other = np.flatnonzero(cid != carry_id)
                head = int(other[0]) if len(other) else len(cid)
            carry = concat_batches([carry, b.slice(0, head)]) if head else carry
            if head == b.num_rows:
                continue
            done.append(carry)
            n_done += carry.num_rows
            b, cid = b.slice(head), cid[head:]
        if n_done >= b.num_rows:
            yield concat_batches(done)
            done, n_done = [], 0
        apart = np.flatnonzero(cid != cid[-1])
        cut = int(apart[-1]) + 1 if len(apart) else 0  # where the last cluster starts
        if not in_order:
            firsts.append(cid[np.r_[True, cid[1:] != cid[:-1]]])  # each cluster's id once (its continuation was cut off above)
        if cut:
            yield b.slice(0, cut)
        # a copy of the cluster's few rows: a slice would keep the whole batch's buffers alive
        # for as long as the cluster waits among the completed ones
        carry, carry_id = b.slice(cut).take(np.arange(b.num_rows - cut)), cid[-1]
    if carry is not None:
        done.append(carry)
    if done:
        yield concat_batches(done)
    if firsts:
        ids = np.concatenate(firsts)
        if len(np.unique(ids)) < len(ids) or (ids.dtype.kind == "f" and np.isnan(ids).any()):
            raise ClustersApart("a cluster's rows do not come together (or the cluster column has missing values)")


@contextmanager
def insertion_order(con: duckdb.DuckDBPyConnection):
    """Within the block DuckDB keeps rows in the order they come: a table is written in its
    source's order, and a scan reads a table in the order it was written. (The working
    connection otherwise lets DuckDB reorder rows, which saves memory.)"""
    before = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0]
    con.execute("SET preserve_insertion_order = true")
    try:
        yield
    finally:
        con.execute(f"SET preserve_insertion_order = {str(before).lower()}")


def stream_to_table(con: duckdb.DuckDBPyConnection, name: str, batches) -> None:
    """Table `name` from an iterator of Arrow record batches, consumed by DuckDB as they come
    (the first batch gives the schema), and stored in their order."""
    batches = iter(batches)
    first = next(batches, None)
    if first is None:
        raise ValueError(f"no rows for table {name}")
    con.register("__stream", pa.RecordBatchReader.from_batches(first.schema, itertools.chain([first], batches)))
    try:
        with insertion_order(con):
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM __stream")
    finally:
        con.unregister("__stream")


def concat_batches(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


class _RowSets:
    """A batch's code and value arrays restricted to a row mask, with the blocks' joint codes;
    computed once per distinct mask (outcomes observed on the same rows share them), and
    without copies when the mask keeps every row."""

    def __init__(self, layout: "Layout", codes, conts):
        self.layout, self.codes, self.conts, self.cache = layout, codes, conts, {}

    def get(self, m: np.ndarray):
        key = m.tobytes()
        if key not in self.cache:
            if m.all():
                cm, xm = self.codes, self.conts
            else:
                cm, xm = [c[m] for c in self.codes], [x[m] for x in self.conts]
            self.cache[key] = (cm, xm, self.layout._joint(cm))
        return self.cache[key]


@dataclass
class FitResult:
    outcome: str
    names: list[str]
    params: np.ndarray  # NaN where dropped
    cov: dict  # se type -> covariance over the kept columns
    kept: np.ndarray  # indices (into names) of estimated columns
    nobs: int
    n_clusters: int
    sum_weights: float
    rss: float
    tss: float
    notes: list[str]
    n_missing: int = 0  # rows with an observed outcome left out for a missing covariate, weight or cluster

    @property
    def df_resid(self) -> int:
        return self.nobs - len(self.kept)

    @property
    def r2(self) -> float:
        return 1 - self.rss / self.tss if self.tss > 0 else float("nan")

    def std_errors(self, se_type: str = "cluster") -> np.ndarray:
        if se_type not in self.cov:
            raise ValueError(f"no {se_type} standard errors: the model was fitted "
                             + ("without a cluster column" if se_type == "cluster" else f"with {', '.join(self.cov)}"))
        out = np.full(len(self.names), np.nan)
        out[self.kept] = np.sqrt(np.diag(self.cov[se_type]))
        return out

    def tvalues(self, se_type: str = "cluster") -> np.ndarray:
        return self.params / self.std_errors(se_type)

    def pvalues(self, se_type: str = "cluster") -> np.ndarray:
        t = self.tvalues(se_type)
        if se_type == "classical":
            return 2 * stats.t.sf(np.abs(t), self.df_resid)
        return 2 * stats.norm.sf(np.abs(t))

    def table(self, se_type: str = "cluster") -> list[dict]:
        """Rows like Nav's model_metrics: variable, coefficient, std_err, t_value, p_value."""
        se = {k: self.std_errors(k) if k in self.cov else np.full(len(self.names), np.nan)
              for k in ("classical", "robust", "cluster")}
        t, p = self.tvalues(se_type), self.pvalues(se_type)
        return [{"response_variable": self.outcome, "variable": n, "coefficient": float(b),
                 "std_err": float(se[se_type][i]), "t_value": float(t[i]), "p_value": float(p[i]),
                 "se_type": se_type, "std_err_classical": float(se["classical"][i]),
                 "std_err_robust": float(se["robust"][i]), "std_err_cluster": float(se["cluster"][i])}
                for i, (n, b) in enumerate(zip(self.names, self.params))]

    def summary(self, se_type: str | None = None) -> str:
        se_type = se_type or ("cluster" if "cluster" in self.cov else "robust")
        lines = [f"{self.outcome}: N = {norsk.integer(self.nobs)}, klynger = {norsk.integer(self.n_clusters)}, "
                 f"R² = {norsk.number(self.r2, 4)}, SE = {se_type}"
                 + (f", utelatt for manglende verdier: {norsk.integer(self.n_missing)}" if self.n_missing else "")]
        for r in self.table(se_type):
            if np.isnan(r["coefficient"]):
                continue
            lines.append(f"  {r['variable']:<45} {norsk.number(r['coefficient'], 4):>10} ({norsk.number(r['std_err'], 4)})")
        return "\n".join(lines + [f"  merknad: {n}" for n in self.notes])


def _add_all(partials: list[dict]) -> dict:
    """Add up sums computed per partition (nested dicts of arrays and numbers). A key that
    only some partitions have is a sum over no rows in the others."""
    def add(a, b):
        if not isinstance(a, dict):
            return a + b
        out = dict(a)
        for k, v in b.items():
            out[k] = add(out[k], v) if k in out else v
        return out
    out = partials[0]
    for q in partials[1:]:
        out = add(out, q)
    return out


def _select_columns(xtx: np.ndarray, candidates: list[int], layout: Layout, notes: list[str]) -> list[int]:
    """Keep columns in order, dropping empty and collinear ones (sequential Cholesky)."""
    kept: list[int] = []
    for j in candidates:
        if xtx[j, j] <= 0:
            notes.append(f"{layout.names[j]} har ingen observasjoner i estimeringsutvalget og er utelatt")
            continue
        if kept:
            a = xtx[np.ix_(kept, kept)]
            b = xtx[kept, j]
            resid = xtx[j, j] - b @ np.linalg.solve(a, b)
        else:
            resid = xtx[j, j]
        if resid <= COLLINEAR_TOL * xtx[j, j]:
            notes.append(f"{layout.names[j]} er kollineær med andre variabler og er utelatt")
            continue
        kept.append(j)
    return kept


class IndicatorModel:
    """Configure with a ModelSpec, `fit` on a table in a DuckDB connection, then `predict`."""

    def __init__(self, spec: ModelSpec, batch_rows: int = BATCH_ROWS):
        self.spec = spec
        self.batch_rows = batch_rows
        # what the table offers, decided by fit: a month column, and the spec's cluster column
        self.has_month_ = True
        self.cluster_ = spec.cluster

    # -- SQL ------------------------------------------------------------------------------
    def population_where(self) -> str:
        parts = ["TRUE"]
        for col, values in self.spec.exclude.items():
            vals = ", ".join(_sql_literal(v) for v in values)
            parts.append(f"coalesce(CAST({_q(col)} AS STRING), '') NOT IN ({vals})")
        return " AND ".join(parts)

    def period_where(self) -> str:
        """The estimation period (the spec's months are checked 'YYYY-MM' by parse_spec)."""
        parts = []
        if self.spec.period_from:
            parts.append(f"month >= DATE '{self.spec.period_from}-01'")
        if self.spec.period_to:
            parts.append(f"month <= DATE '{self.spec.period_to}-01'")
        return " AND ".join(parts) or "TRUE"

    def complete_sql(self) -> str:
        """A row is complete when no term, weight or cluster value is missing (NULL, or NaN
        for numbers). Incomplete rows are left out of the estimation (listwise, counted and
        reported in the notes), never filled in."""
        parts = []
        for t in self.spec.terms:
            col = _q(t.column)
            parts.append(f"{col} IS NOT NULL")
            if t.kind != "categorical":
                parts.append(f"NOT isnan(CAST({col} AS DOUBLE))")
        if self.spec.weight:
            w = _q(self.spec.weight)
            parts.append(f"{w} IS NOT NULL AND NOT isnan(CAST({w} AS DOUBLE))")
        if getattr(self, "cluster_", None):
            parts.append(f"{_q(self.cluster_)} IS NOT NULL")
        return " AND ".join(parts) or "TRUE"

    def missing_counts(self, con, table: str) -> dict[str, dict[str, int]]:
        """Per outcome, the rows of the estimation sample with an observed outcome left out for
        a missing value, per column (a row can lack several)."""
        cols = [t.column for t in self.spec.terms if t.kind != "categorical"]
        checks = {t.column: f"{_q(t.column)} IS NULL" + (f" OR isnan(CAST({_q(t.column)} AS DOUBLE))" if t.column in cols else "")
                  for t in self.spec.terms}
        if self.spec.weight:
            checks[self.spec.weight] = f"{_q(self.spec.weight)} IS NULL OR isnan(CAST({_q(self.spec.weight)} AS DOUBLE))"
        if getattr(self, "cluster_", None):
            checks[self.cluster_] = f"{_q(self.cluster_)} IS NULL"
        exprs, keys = [], []
        for o in self.spec.outcomes:
            obs = f"{_q(o)} IS NOT NULL AND NOT isnan(CAST({_q(o)} AS DOUBLE))"
            exprs.append(f"count(*) FILTER (WHERE {obs} AND NOT ({self.complete_sql()}))")
            keys.append((o, None))
            for c, e in checks.items():
                exprs.append(f"count(*) FILTER (WHERE {obs} AND ({e}))")
                keys.append((o, c))
        row = con.execute(f"SELECT {', '.join(exprs)} FROM {table} WHERE {self.population_where()} "
                          f"AND {self.period_where()}").fetchall()[0]
        out = {o: {} for o in self.spec.outcomes}
        for (o, c), v in zip(keys, row):
            out[o]["*" if c is None else c] = int(v or 0)
        return out

    def design_sql(self, table: str, ordered: bool = True, carried: bool = False) -> str:
        """The rows the model reads; `carried`: with the columns that its person rows carry along."""
        cluster = f"{_q(self.cluster_)}" if self.cluster_ else "CAST(NULL AS BIGINT)"
        month = "month" if self.has_month_ else "CAST(NULL AS DATE)"
        cols = [f"{cluster} AS __cluster", f"{month} AS __month",
                f"({self.period_where()}) AND ({self.complete_sql()}) AS __est", f"({self.complete_sql()}) AS __ok"]
        if carried:
            cols += [f"{expr} AS {name}" for name, expr in self.carry_.items()]
        # codes in their smallest type: the clustered pass sorts these rows, and at national
        # scale four-byte codes were a third of what the sort moves
        for (name, t), c in zip(self.design_types().items(), self.codings_):
            cols.append(f"CAST({c.sql} AS {SQL_INT[t]}) AS {name}" if c.is_coded else f"{c.sql} AS {name}")
        if self.spec.cluster2:
            cols.append(f"{self.cluster2_sql_} AS __cluster2")
        for o in self.spec.outcomes:
            cols.append(f"CAST({_q(o)} AS DOUBLE) AS __y_{o}")
        if self.spec.weight:  # unweighted: no column of ones to sort and stream (see _arrays)
            cols.append(f"CAST({_q(self.spec.weight)} AS DOUBLE) AS __w")
        return (f"SELECT {', '.join(cols)} FROM {table} WHERE {self.population_where()}"
                + (" ORDER BY __cluster, __month" if ordered and self.cluster_ else ""))

    # -- batches --------------------------------------------------------------------------
    def _arrays(self, batch: pa.RecordBatch):
        codes, conts = term_arrays(self.codings_, batch)
        ys = {o: batch.column(f"__y_{o}").to_numpy(zero_copy_only=False).astype(float, copy=False) for o in self.spec.outcomes}
        w = (batch.column("__w").to_numpy(zero_copy_only=False).astype(float, copy=False) if self.spec.weight
             else np.ones(batch.num_rows))
        est = batch.column("__est").to_numpy(zero_copy_only=False).astype(bool, copy=False)
        return codes, conts, ys, w, est

    def design_columns(self, codes, conts) -> dict[str, np.ndarray]:
        """The rows' design as the model coded it, columns __t0, __t1, ... (a missing level in
        the term's 'unseen' slot), in the types of `design_types`. They travel with the
        person rows, so the cells' model variance needs no second pass over the analysis table."""
        codes, conts = iter(codes), iter(conts)
        return {name: (next(codes).astype(t) if c.is_coded else next(conts))
                for (name, t), c in zip(self.design_types().items(), self.codings_)}

    def design_types(self) -> dict[str, type]:
        return {f"__t{i}": code_type(len(c.levels) + 1) if c.is_coded else np.float64 for i, c in enumerate(self.codings_)}

    def person_row_columns(self) -> dict[str, str | type]:
        """The person rows' columns in order: a design query column (its type kept) or a numpy type."""
        return {"person_id": "__cluster", "month": "__month", **{c: c for c in self.carry_}, **self.design_types(),
                **{f"{k}_{o}": np.float64 for o in self.spec.outcomes for k in ("actual", "expected", "indicator")}}

    def _moment_sums(self, batches) -> dict:
        """X'WX, X'Wy, y'Wy, n and the sum of weights per outcome over some batches (all rows,
        or one Spark partition: the sums of the partitions add up to the same)."""
        layout, outs, p = self.layout_, self.spec.outcomes, self.layout_.p
        acc = {"xtx": {o: np.zeros((p, p)) for o in outs}, "xty": {o: np.zeros(p) for o in outs},
               "yy": dict.fromkeys(outs, 0.0), "n": dict.fromkeys(outs, 0), "sw": dict.fromkeys(outs, 0.0)}
        for batch in batches:
            codes, conts, ys, w, est = self._arrays(batch)
            rows = _RowSets(layout, codes, conts)
            grams = {}
            for o in outs:
                m = est & ~np.isnan(ys[o])
                cm, xm, joint = rows.get(m)
                key = m.tobytes()
                if key not in grams:  # outcomes observed on the same rows share X'WX
                    grams[key] = layout.gram(cm, xm, w[m], joint)
                acc["xtx"][o] += grams[key]
                acc["xty"][o] += layout.cross(cm, xm, w[m] * ys[o][m], joint)
                acc["yy"][o] += float((w[m] * ys[o][m] ** 2).sum())
                acc["n"][o] += int(m.sum())
                acc["sw"][o] += float(w[m].sum())
        return acc

    def _meat_acc(self) -> dict:
        outs, p = self.spec.outcomes, self.layout_.p
        return {"hc": {o: np.zeros((p, p)) for o in outs},
                "cl": {o: np.zeros((len(self.kept_[o]), len(self.kept_[o]))) for o in outs},
                "s2": {o: np.zeros((getattr(self, "n_cluster2_", 0), p)) for o in outs},
                "rss": dict.fromkeys(outs, 0.0), "n_clusters": dict.fromkeys(outs, 0)}

    def _meat_pass(self, batches, acc: dict, person_rows: bool):
        """Add the residual sums of squares and the meat of the robust, person-clustered and
        second-level clustered covariances of batches whose rows come in cluster order (a
        cluster may span batches but not partitions) to `acc`; with `person_rows`, yield each
        batch's person rows (`_person_rows`) as it is done."""
        layout, outs = self.layout_, self.spec.outcomes
        for b in (whole_clusters(batches) if self.cluster_ else batches):
            codes, conts, ys, w, est = self._arrays(b)
            rows = _RowSets(layout, codes, conts)
            if self.cluster_:
                cid = b.column("__cluster").to_numpy(zero_copy_only=False)
                g = np.concatenate([[0], np.cumsum(cid[1:] != cid[:-1])])  # clusters numbered by run length
            else:  # no cluster column: every row its own (the clustered covariance is then not reported)
                g = np.arange(b.num_rows)
            ng = int(g.max()) + 1
            yhat = {o: layout.predict(self.beta_full_[o], codes, conts) for o in outs}
            for o in outs:
                m = est & ~np.isnan(ys[o])
                if not m.any():
                    continue
                e = ys[o][m] - yhat[o][m]
                wm = w[m]
                acc["rss"][o] += float((wm * e * e).sum())
                cm, xm, joint = rows.get(m)
                acc["hc"][o] += layout.gram(cm, xm, wm * wm * e * e, joint)
                gm = g[m]
                s = layout.cluster_scores(gm, ng, cm, xm, wm * e)  # clusters without rows here: zero
                acc["cl"][o] += (s.T @ s)[np.ix_(self.kept_[o], self.kept_[o])]
                acc["n_clusters"][o] += int(np.count_nonzero(np.bincount(gm, minlength=ng)))
                if self.spec.cluster2:
                    c2 = b.column("__cluster2").to_numpy(zero_copy_only=False).astype(np.int64)[m]
                    acc["s2"][o] += layout.cluster_scores(c2, self.n_cluster2_, cm, xm, wm * e)
            if person_rows:
                yield self._person_rows(b, codes, conts, yhat)

    def _meat_sums(self, batches) -> dict:
        """The sums of `_meat_pass` over some batches (all rows, or one Spark partition)."""
        acc = self._meat_acc()
        for _ in self._meat_pass(batches, acc, person_rows=False):
            pass
        return acc

    def _person_rows(self, b: pa.RecordBatch, codes, conts, yhat: dict | None = None) -> pa.RecordBatch:
        """A batch's person rows: person_id, month, the carried columns, the design as coded
        (design_columns), and per outcome the actual value (NULL where not observed), the
        expected value and the indicator, actual minus expected."""
        cols = {out: b.column(src) for out, src in self.person_row_columns().items() if isinstance(src, str)}
        cols |= {k: pa.array(v) for k, v in self.design_columns(codes, conts).items()}
        ok = b.column("__ok").to_numpy(zero_copy_only=False).astype(bool)
        for o in self.spec.outcomes:
            actual = b.column(f"__y_{o}")
            pred = yhat[o] if yhat else self.layout_.predict(self.beta_full_[o], codes, conts)
            expected = pa.array(np.where(ok, pred, np.nan), from_pandas=True)
            cols |= {f"actual_{o}": actual, f"expected_{o}": expected, f"indicator_{o}": pc.subtract(actual, expected)}
        return pa.RecordBatch.from_pydict({c: cols[c] for c in self.person_row_columns()})  # Spark's schema order

    def _person_row_batches(self, batches):
        """The person rows of batches in any order (Spark writes them per partition)."""
        for b in batches:
            codes, conts = term_arrays(self.codings_, b)
            yield self._person_rows(b, codes, conts)

    # -- fit ------------------------------------------------------------------------------
    def fit(self, con: duckdb.DuckDBPyConnection, table: str = "analysis", predictions_table: str | None = "predictions",
            progress=None, carry: dict[str, str] | None = None) -> "IndicatorModel":
        """Estimate every outcome; optionally write the person rows to `predictions_table`: per
        row of the population the actual, expected and indicator value of every outcome, the
        design as coded, and the columns `carry` ({name: SQL expression over `table`}).

        `con` is a DuckDB connection, or the Spark engine (spark.SparkConnection): there the
        same sums are computed per partition on the executors and added on the driver."""
        self.carry_ = dict(carry or {})
        have = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {table}").fetchall()}
        self.has_month_ = "month" in have
        self.cluster_ = self.spec.cluster if self.spec.cluster in have else None
        self.missing_ = self.missing_counts(con, table)
        est_where = f"{self.population_where()} AND {self.period_where()} AND {self.complete_sql()}"
        self.codings_ = code_terms(self.spec, con, table, est_where)
        if self.spec.cluster2:  # e.g. commuting region: the level at which the labour market varies
            levels = [r[0] for r in con.execute(f"SELECT DISTINCT CAST({_q(self.spec.cluster2)} AS STRING) FROM {table} "
                                                f"WHERE {self.population_where()} ORDER BY 1").fetchall()]
            cases = " ".join(f"WHEN {_sql_literal(v)} THEN {i}" for i, v in enumerate(levels))
            self.cluster2_sql_ = f"(CASE CAST({_q(self.spec.cluster2)} AS STRING) {cases} END)"
            self.n_cluster2_ = len(levels)
        layout = self.layout_ = Layout(self.codings_)
        outs = self.spec.outcomes
        p = layout.p
        spark = is_spark(con)
        # in a fixed order, so that the float sums (and the coefficients to the last digit) are
        # the same in every run of the same data (national: 10 s unordered, 18 s ordered)
        moments_sql = self.design_sql(table, ordered=True)
        sql = self.design_sql(table, ordered=not spark, carried=bool(predictions_table))
        total = con.execute(f"SELECT count(*) FROM {table} WHERE {self.population_where()}").fetchall()[0][0]

        def tick(label: str, start: float):
            done = 0

            def f(rows):
                nonlocal done
                done += rows
                if progress:
                    progress(label, start + 0.5 * min(done, total) / max(total, 1))
            return f

        mom = reduce_batches(con, moments_sql, self._moment_sums, self.batch_rows, tick("modell: momenter", 0.0))
        xtx, xty, yy, n, sw = (mom[k] for k in ("xtx", "xty", "yy", "n", "sw"))
        # solve
        self.beta_full_ = {}
        self.kept_ = {}
        self.notes_ = {}
        self.ainv_ = {}
        self.xbar_ = {}  # the estimation sample's (weighted) mean design row: the indicator's reference
        for o in outs:
            notes = [f"{norsk.integer(v)} rader med observert utfall er utelatt fordi {c} mangler"
                     for c, v in self.missing_[o].items() if c != "*" and v]
            if n[o] == 0:
                raise ValueError(f"outcome {o} has no observed values in the estimation sample")
            cand = [j for j in range(p) if j not in set(layout.structural_zero)]
            kept = _select_columns(xtx[o], cand, layout, notes)
            a = xtx[o][np.ix_(kept, kept)]
            ainv = np.linalg.inv(a)
            b = np.linalg.solve(a, xty[o][kept])
            full = np.zeros(p)
            full[kept] = b
            self.beta_full_[o], self.kept_[o], self.notes_[o], self.ainv_[o] = full, np.array(kept), notes, ainv
            self.xbar_[o] = xtx[o][0] / sw[o]
        # second pass (rows in cluster order): residuals, robust and clustered meat, the person rows
        ticks = tick("modell: residualer og standardfeil", 0.5)
        if spark or not predictions_table:
            meat = reduce_batches(con, sql, self._meat_sums, self.batch_rows, ticks,
                                  cluster="__cluster", order=("__cluster", "__month"))
        else:  # DuckDB writes the person rows while they stream out of the pass (none kept in memory)
            meat = self._meat_acc()
            reduce_batches(con, sql, lambda batches: stream_to_table(con, predictions_table, self._meat_pass(batches, meat, True)),
                           self.batch_rows, ticks)
        if spark and predictions_table:
            con.map_to_table(sql, self._person_row_batches, predictions_table, self.person_row_columns())
        hc, cl, s2, rss, n_clusters = (meat[k] for k in ("hc", "cl", "s2", "rss", "n_clusters"))
        self.results_ = {}
        for o in outs:
            kept = self.kept_[o]
            ainv = self.ainv_[o]
            k = len(kept)
            ybar = xty[o][0] / sw[o]
            tss = yy[o] - sw[o] * ybar * ybar
            sigma2 = rss[o] / (n[o] - k)
            hck = hc[o][np.ix_(kept, kept)]
            cov = {
                "classical": sigma2 * ainv,
                "robust": n[o] / (n[o] - k) * ainv @ hck @ ainv,
            }
            if self.cluster_:
                cov["cluster"] = (n_clusters[o] / (n_clusters[o] - 1)) * ((n[o] - 1) / (n[o] - k)) * ainv @ cl[o] @ ainv
            if self.spec.cluster2:
                sk = s2[o][:, kept]
                g2 = int((np.abs(sk).sum(axis=1) > 0).sum())
                cov["cluster2"] = (g2 / (g2 - 1)) * ((n[o] - 1) / (n[o] - k)) * ainv @ (sk.T @ sk) @ ainv
            params = np.full(p, np.nan)
            params[kept] = self.beta_full_[o][kept]
            self.results_[o] = FitResult(o, layout.names, params, cov, kept, n[o], n_clusters[o] if self.cluster_ else 0,
                                         sw[o], rss[o], tss, self.notes_[o], self.missing_[o].get("*", 0))
        return self

    def coefficient_rows(self) -> list[dict]:
        """Coefficient table of every outcome (estimated columns only) with fit statistics."""
        rows = []
        for o, r in self.results_.items():
            for row in r.table(self.spec.se_type):
                if row["coefficient"] == row["coefficient"]:  # skip dropped (NaN) columns
                    rows.append(row | {"nobs": r.nobs, "n_clusters": r.n_clusters, "r2": r.r2})
        return rows
