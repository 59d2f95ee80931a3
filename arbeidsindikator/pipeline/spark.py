"""The Spark engine: the same pipeline on Apache Spark (PySpark), for when data or organisation
outgrow one machine.

Nothing of the pipeline is written twice. The stages send the same SQL to a
`SparkConnection` that they send to DuckDB (the SQL is kept to what both dialects read:
GROUPING SETS, window frames, GROUP BY ALL, CAST ... AS STRING, double-quoted identifiers).
The estimators are the same functions too: the model's sufficient statistics (X'WX, X'Wy, the
robust and person-clustered meat) and the design sums behind the cells' model variance are
computed per partition on the executors with `mapInArrow` and added on the driver. For the
clustered meat the rows are repartitioned by person and sorted within partitions, so a
person's months never straddle two partitions.

What stays on the driver: validation of the input files (DuckDB reads them where they are),
the published frames (aggregates, a few hundred thousand rows at national scale), and the
results store, an embedded DuckDB file written in one transaction like the DuckDB engine's.

    spark = SparkSession.builder.master("local[2]").getOrCreate()      # or a cluster
    run_indicator("data/", db="resultater.duckdb", engine="spark", spark=spark)
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import sys
import tempfile
from pathlib import Path

import duckdb
import pandas as pd

from ..data.contract import TABLES
from ..data.atomic import _process_start, clean_stale_workdirs
from ..data.validate import _relation, table_file

SPARK_PREFIX = "arbeidsindikator-spark-"

# Spark settings the pipeline relies on. ANSI mode with double-quoted identifiers makes Spark
# read "column" as DuckDB does; the rest keeps a local session small and quiet.
SESSION_CONF = {
    "spark.sql.ansi.enabled": "true",
    "spark.sql.ansi.doubleQuotedIdentifiers": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
LOCAL_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.driver.memory": "2g",
    "spark.sql.adaptive.enabled": "true",
}

_CREATE = re.compile(r"^\s*CREATE\s+OR\s+REPLACE\s+(?:TEMP\s+|TEMPORARY\s+)?(TABLE|VIEW)\s+(\w+)\s+AS\s+(.*)$", re.S | re.I)
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)\s+BY\s+NAME\s+(.*)$", re.S | re.I)
_DROP = re.compile(r"^\s*DROP\s+(?:TABLE|VIEW)\s+(?:IF\s+EXISTS\s+)?(\w+)\s*$", re.I)
_DESCRIBE = re.compile(r"^\s*DESCRIBE\s+(\w+)\s*$", re.I)


def local_session(master: str = "local[2]"):
    """A Spark session: local mode by default (tests, one machine), or any master URL
    (`spark://host:7077`, `yarn`, `k8s://...`); local-only settings are left out there."""
    from pyspark.sql import SparkSession

    # the workers run this interpreter (its packages), not whatever `python3` is on the PATH
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    b = SparkSession.builder.master(master).appName("arbeidsindikator")
    for k, v in ((LOCAL_CONF if master.startswith("local") else {}) | SESSION_CONF).items():
        b = b.config(k, v)
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


class _Result:
    def __init__(self, df):
        self._df = df

    def fetchall(self) -> list[tuple]:
        return [tuple(r) for r in self._df.collect()] if self._df is not None else []

    def df(self) -> pd.DataFrame:
        return self._df.toArrow().to_pandas()


class SparkConnection:
    """The part of a DuckDB connection the pipeline uses, on a Spark session.

    Tables created with CREATE TABLE ... AS are materialised as Parquet under `workdir`
    (a shared file system path on a cluster) and read back, so later statements do not
    recompute them and every reader sees the same rows."""

    engine = "spark"  # what model.is_spark looks for

    def __init__(self, spark, workdir: str | None = None):
        self.spark = spark
        for k, v in SESSION_CONF.items():
            spark.conf.set(k, v)
        self._own_dir = workdir is None
        # a local temporary directory, or a URI every executor can reach (hdfs://, s3a://, ...)
        if workdir is None:  # a local one, cleaned up like the DuckDB engine's (also after a killed run)
            clean_stale_workdirs(prefix=SPARK_PREFIX)
            workdir = tempfile.mkdtemp(prefix=SPARK_PREFIX)
            (Path(workdir) / "owner").write_text(f"{os.getpid()} {_process_start(os.getpid()) or 'alive'}")
        self.workdir = str(workdir).rstrip("/")
        self._version = 0
        self._parts: dict[str, list[str]] = {}  # table -> its Parquet directories
        self._pending: dict[str, list] = {}  # table -> inserted rows not yet written
        self._views: set[str] = set()  # temporary views this connection made (dropped on close)
        self.frames: dict[str, pd.DataFrame] = {}

    # -- the DuckDB-like surface ------------------------------------------------------------
    def execute(self, sql: str, params=None) -> _Result:
        if params:
            raise NotImplementedError("the Spark engine takes no bound parameters")
        result = _Result(None)
        for stmt in (s for s in sql.split(";") if s.strip()):
            result = self._statement(stmt)
        return result

    def _statement(self, stmt: str) -> _Result:
        if m := _CREATE.match(stmt):
            kind, name, query = m.groups()
            if kind.upper() == "VIEW":
                self.spark.sql(query).createOrReplaceTempView(name)
                self._views.add(name)
            else:
                self._materialise(name, self.spark.sql(query))
            return _Result(None)
        if m := _INSERT.match(stmt):
            # Only the new rows are written, and not yet: consecutive INSERTs into a table are
            # written together by one Spark job when anything else runs (a job costs ~0.5 s).
            name, query = m.groups()
            schema = self.spark.table(name).schema
            new = self.spark.sql(query)
            self._pending.setdefault(name, []).append(
                new.select([new[f.name].cast(f.dataType).alias(f.name) for f in schema.fields]))
            return _Result(None)
        self._flush()
        if m := _DROP.match(stmt):
            self.spark.catalog.dropTempView(m.group(1))
            return _Result(None)
        if m := _DESCRIBE.match(stmt):
            df = self.spark.table(m.group(1))
            return _Result(self.spark.createDataFrame([(f.name, f.dataType.simpleString()) for f in df.schema.fields],
                                                      "column_name string, column_type string"))
        return _Result(self.spark.sql(stmt))

    def _flush(self) -> None:
        for name, dfs in self._pending.items():
            union = dfs[0]
            for d in dfs[1:]:
                union = union.unionByName(d)
            self._materialise(name, union, append=True)
        self._pending = {}

    def _materialise(self, name: str, df, append: bool = False) -> None:
        self._version += 1
        path = f"{self.workdir}/{name}.{self._version}"
        df.write.mode("overwrite").parquet(path)
        self._parts[name] = (self._parts.get(name, []) if append else []) + [path]
        self.spark.read.parquet(*self._parts[name]).createOrReplaceTempView(name)
        self._views.add(name)

    def store_frame(self, name: str, df: pd.DataFrame) -> None:
        """A published frame: kept on the driver for the results store."""
        self.frames[name] = df

    # -- the estimators over partitions ------------------------------------------------------
    def reduce_partitions(self, query: str, fn, cluster: str | None = None, order: tuple[str, ...] = ()) -> list:
        """fn(iterator of Arrow record batches) -> sums, run on every partition of the query's
        rows; returns the partitions' sums. With `cluster`, the rows of one cluster share a
        partition and come sorted by `order`."""
        self._flush()
        df = self.spark.sql(query)
        if cluster:
            df = df.repartition(cluster).sortWithinPartitions(*order)

        def per_partition(batches):
            import pyarrow as pa
            yield pa.RecordBatch.from_pydict({"sums": [pickle.dumps(fn(batches), protocol=5)]})

        parts = [pickle.loads(r["sums"]) for r in df.mapInArrow(per_partition, "sums binary").collect()]
        if not parts:  # no partitions: the sums over no rows
            parts = [fn(iter(()))]
        return parts

    def map_to_table(self, query: str, fn, name: str, columns: dict[str, str | type]) -> None:
        """Table `name` from fn(iterator of batches) -> iterator of batches, per partition.
        `columns`, in fn's output order: a query column's name (the same type) or a numpy type."""
        import numpy as np
        from pyspark.sql import types as T

        spark_type = {np.float64: T.DoubleType(), np.int8: T.ByteType(), np.int16: T.ShortType(), np.int32: T.IntegerType()}
        df = self.spark.sql(query)
        schema = T.StructType([T.StructField(c, df.schema[t].dataType if isinstance(t, str) else spark_type[t])
                               for c, t in columns.items()])
        self._materialise(name, df.mapInArrow(fn, schema))

    # -- data in and out -----------------------------------------------------------------------
    def register_tables(self, data_dir: Path) -> list[str]:
        """A view per contract table. Parquet is read by Spark where it lies; a CSV file is
        converted to Parquet once (by DuckDB, with the types the validation saw)."""
        found = []
        for name in TABLES:
            p = table_file(data_dir, name)
            if p is None:
                continue
            if p.suffix == ".csv":
                if "://" in self.workdir:
                    raise ValueError(f"{p}: the Spark engine on a cluster reads Parquet; convert the CSV files first")
                dest = Path(self.workdir) / f"input_{name}.parquet"
                with duckdb.connect() as con:  # with the contract's types, as validation read it
                    _relation(con, TABLES[name], p).write_parquet(dest.as_posix())
                p = dest
            self.spark.read.parquet(p.as_posix()).createOrReplaceTempView(name)
            self._views.add(name)
            found.append(name)
        return found

    def to_duckdb(self, tables: tuple[str, ...] = ()) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection holding the published frames and the named Spark
        tables (collected to the driver as Arrow), for the results store."""
        from .publish import _store

        self._flush()
        con = duckdb.connect()
        for name, df in self.frames.items():
            _store(con, name, df)
        for name in tables:
            con.register("__t", self.spark.table(name).toArrow())
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM __t")
            con.unregister("__t")
        return con

    def close(self) -> None:
        for name in self._views:
            self.spark.catalog.dropTempView(name)
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)


__all__ = ["SparkConnection", "local_session", "SESSION_CONF"]
