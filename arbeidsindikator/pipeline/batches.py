"""Arrow record batches out of DuckDB (or Spark) and reductions over them: the streaming that
lets the model's sums run in constant memory, whole clusters kept together across batches, and
batches written back to a table."""

from __future__ import annotations

import itertools
from contextlib import contextmanager

import duckdb
import numpy as np
import pyarrow as pa

BATCH_ROWS = 1_000_000


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
