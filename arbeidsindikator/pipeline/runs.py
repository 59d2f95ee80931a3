"""Versioned runs in an embedded DuckDB results store.

Every run gets an id and a manifest (input fingerprints, configuration, package version,
timings) next to its outputs: coefficients (like Nav's model_metrics), notes from the
estimation, the published table and, if asked for, the person-level results.

All computation happens in a separate working database; the results store is written in a
single transaction at the very end. A failed or interrupted run therefore leaves the
previous results exactly as they were.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import contextlib
import json
import os
import re
import secrets
import signal
import threading
from pathlib import Path

import duckdb

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, created_at TIMESTAMP, model_name VARCHAR, package_version VARCHAR,
    engine VARCHAR, data_dir VARCHAR, config_toml VARCHAR, input_fingerprints JSON, timings JSON,
    n_person_months BIGINT, notes JSON);
CREATE TABLE IF NOT EXISTS coefficients (
    run_id VARCHAR, response_variable VARCHAR, variable VARCHAR, coefficient DOUBLE, std_err DOUBLE,
    t_value DOUBLE, p_value DOUBLE, se_type VARCHAR, std_err_classical DOUBLE, std_err_robust DOUBLE,
    std_err_cluster DOUBLE, nobs BIGINT, n_clusters BIGINT, r2 DOUBLE);
"""


def fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


_TEMP_STORE = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?[0-9a-f]{8}\.tmp(?:\.wal)?$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_temporaries(db: Path) -> list[Path]:
    """Remove temporary stores beside `db` left by processes that no longer run (a run killed
    outright while it created a new store). Names carry the creating process's id; names from
    before that (no id) are stale by definition once a new store is being made."""
    removed = []
    for p in db.parent.glob(f".{db.name}.*.tmp*"):
        m = _TEMP_STORE.match(p.name)
        if not m or m["name"] != db.name:
            continue
        if m["pid"] is None or (int(m["pid"]) != os.getpid() and not _alive(int(m["pid"]))):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


@contextlib.contextmanager
def deferred_signals(caught: list):
    """Ctrl-C and SIGTERM wait while a commit and rename complete: a run is then either stored
    or not, never stored behind an error. The signals that came are appended to `caught`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.getsignal(s) for s in sigs}
    for s in sigs:
        signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def store_run(work: duckdb.DuckDBPyConnection, db: Path, manifest: dict, coefficient_rows: list[dict],
              keep_person_level: bool, fail_after_published: bool = False, version: dict | None = None,
              release: dict | None = None) -> int | None:
    """Copy the run's outputs from the working connection into `db`, in one transaction.

    A new store is built under a temporary name beside `db` (schema and first run in the same
    transaction) and renamed into place when complete: a failure leaves no store behind, not
    even an empty one. A termination signal during the commit is held until the run is stored
    and returned (the caller reports the run as stored, then exits). `version`: the model version
    an estimation run makes; `release`: the release row of a run under a frozen version
    (versions.py); both in the same transaction."""
    from . import versions
    db = Path(db)
    db.parent.mkdir(parents=True, exist_ok=True)
    new = not db.exists()
    if new:
        remove_stale_temporaries(db)
    target = db.with_name(f".{db.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp") if new else db
    work.execute("ATTACH ? AS results", [target.as_posix()])
    try:
        work.execute("BEGIN TRANSACTION")
        for stmt in (SCHEMA + versions.SCHEMA).strip().split(";"):
            if stmt.strip():
                work.execute(stmt.replace("CREATE TABLE IF NOT EXISTS ", "CREATE TABLE IF NOT EXISTS results."))
        rid = manifest["run_id"]
        work.execute("""INSERT INTO results.runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", [
            rid, manifest["created_at"], manifest["model_name"], manifest["package_version"], manifest["engine"],
            manifest["data_dir"], manifest["config_toml"], json.dumps(manifest["input_fingerprints"]),
            json.dumps(manifest["timings"]), manifest["n_person_months"], json.dumps(manifest["notes"], ensure_ascii=False)])
        cols = ["response_variable", "variable", "coefficient", "std_err", "t_value", "p_value", "se_type",
                "std_err_classical", "std_err_robust", "std_err_cluster", "nobs", "n_clusters", "r2"]
        work.executemany(f"INSERT INTO results.coefficients VALUES (?, {', '.join('?' * len(cols))})",
                         [[rid] + [r[c] for c in cols] for r in coefficient_rows])
        for t in ("published", "published_period", "disclosure_witness", "disclosure_intervals", "units"):  # created on first use with the run's columns
            work.execute(f"CREATE TABLE IF NOT EXISTS results.{t} AS SELECT ''::VARCHAR AS run_id, * FROM {t} LIMIT 0")
            _add_new_columns(work, t)
            work.execute(f"INSERT INTO results.{t} BY NAME SELECT ? AS run_id, * FROM {t}", [rid])
        if version is not None:
            versions.insert(work, "results", "model_versions", version)
        if release is not None:
            versions.insert(work, "results", "releases", release)
        if fail_after_published:  # used by the tests to prove atomicity
            raise RuntimeError("simulated failure while storing the run")
        if keep_person_level:  # without the integer cell codes, which only publishing uses
            cols = ", ".join(f'"{c}"' for c, *_ in work.execute("DESCRIBE person_results").fetchall() if not c.startswith("__"))
            work.execute(f"CREATE TABLE IF NOT EXISTS results.person_results AS SELECT ''::VARCHAR AS run_id, {cols} FROM person_results LIMIT 0")
            work.execute(f"INSERT INTO results.person_results BY NAME SELECT ? AS run_id, {cols} FROM person_results", [rid])
    except BaseException:
        work.execute("ROLLBACK")
        _discard(work, target if new else None)
        raise
    caught: list = []
    with deferred_signals(caught):
        try:
            work.execute("COMMIT")
        except BaseException:  # a failed commit has rolled back itself
            _discard(work, target if new else None)
            raise
        work.execute("DETACH results")
        if new:
            target.replace(db)
    return caught[0] if caught else None


def _add_new_columns(work, table: str) -> None:
    """Columns a newer version publishes (such as ENDELIG) are added to an older store's table;
    earlier runs have NULL there."""
    have = {r[0] for r in work.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = 'results' AND table_name = ?", [table]).fetchall()}
    for name, typ, *_ in work.execute(f"DESCRIBE {table}").fetchall():
        if name not in have:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or not re.fullmatch(r"[A-Z][A-Z0-9_(), ]*", typ):
                raise ValueError(f"unexpected column {name!r} ({typ}) in {table}")
            work.execute(f'ALTER TABLE results.{table} ADD COLUMN "{name}" {typ}')


def _discard(work, temporary: Path | None) -> None:
    """Detach the store after a failure; a new store's temporary file goes too."""
    work.execute("DETACH results")
    if temporary is not None:
        for leftover in (temporary, temporary.with_name(temporary.name + ".wal")):
            leftover.unlink(missing_ok=True)


def latest_run_id(con: duckdb.DuckDBPyConnection) -> str | None:
    try:
        r = con.execute("SELECT run_id FROM runs ORDER BY created_at DESC, run_id DESC LIMIT 1").fetchall()
    except duckdb.CatalogException:  # not a results store (or an empty file)
        return None
    return r[0][0] if r else None


def run_exists(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    try:
        return bool(con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchall()[0][0])
    except duckdb.CatalogException:
        return False
