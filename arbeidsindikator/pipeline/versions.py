"""Model versions and releases: the monthly cycle (issue 29).

Nav estimates its production model once, on a fixed period, and applies it month after month;
re-estimating would rewrite every published number, since the indicator is relative to the
estimation period's average. Here every estimation run stores a frozen **model version**: the
specification and its SHA-256, the estimation period, the coefficients with their covariances,
every coding (levels, reference levels, decile cut points), the fingerprints of the data it was
estimated on and the library versions. A version is a `kandidat` when made; one version at a
time is in `produksjon` (setting one retires the one before, `pensjonert`).

A **release** (`arbeidsindikator publiser`) applies the production version (or one named) to a
register extract as it stood at the end of a month: nothing is estimated, the cells are
computed, protected, audited and stored as a new run, append-only, with the extract's as-of
month, the version and the time. Every published cell says whether it is final (`ENDELIG`):
its outcome window closed at least `REVISION_MONTHS` months before the end of the extract's
employment data, after which the a-ordning's late reports no longer move it.

The model itself is stored as a pickle of the fitted `IndicatorModel` (numpy arrays and the
specification; 0.4 MB for the default model) beside JSON of what a reader needs (codings,
period, libraries): the pickle is read only from the project's own store.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import pickle
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

STATUSES = ("kandidat", "produksjon", "pensjonert")
REVISION_MONTHS = 2  # late a-ordning reports move a month's hours for about two months
LIBRARIES = ("arbeidsindikator", "numpy", "scipy", "duckdb", "pyarrow", "pandas")

SCHEMA = """
CREATE TABLE IF NOT EXISTS model_versions (
    version VARCHAR PRIMARY KEY, run_id VARCHAR, created_at TIMESTAMP, status VARCHAR, model_name VARCHAR,
    spec_sha256 VARCHAR, spec_toml VARCHAR, period_from VARCHAR, period_to VARCHAR, input_fingerprints JSON,
    libraries JSON, codings JSON, model BLOB);
CREATE TABLE IF NOT EXISTS releases (
    release_id VARCHAR PRIMARY KEY, created_at TIMESTAMP, as_of VARCHAR, employment_observed_to VARCHAR,
    model_version VARCHAR, data_dir VARCHAR, input_fingerprints JSON);
"""


class VersionError(LookupError):
    """A model version that is not in the store, or a status that does not exist."""


def libraries() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "ukjent"
    return out


def _codings(model) -> list[dict]:
    return [{"term": c.term.column, "kind": c.term.kind, "levels": [str(x) for x in c.levels],
             "reference": None if c.reference is None else str(c.levels[c.reference]),
             "cutpoints": list(map(float, c.cutpoints))}
            for c in model.codings_]


def version_row(model, manifest: dict) -> dict:
    """The row a fitted model is stored as (status `kandidat`); its name is the run's id."""
    spec = model.spec
    return {"version": manifest["run_id"], "run_id": manifest["run_id"], "created_at": manifest["created_at"],
            "status": "kandidat", "model_name": spec.name,
            "spec_sha256": hashlib.sha256(spec.source_text.encode("utf-8")).hexdigest(), "spec_toml": spec.source_text,
            "period_from": spec.period_from, "period_to": spec.period_to,
            "input_fingerprints": json.dumps(manifest["input_fingerprints"]), "libraries": json.dumps(libraries()),
            "codings": json.dumps(_codings(model), ensure_ascii=False), "model": pickle.dumps(model)}


def insert(work: duckdb.DuckDBPyConnection, schema: str, table: str, row: dict) -> None:
    """One row into `schema.table` (created by SCHEMA), values bound."""
    cols = list(row)
    work.execute(f"INSERT INTO {schema}.{table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                 [row[c] for c in cols])


def _connect(db: Path | str, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    db = Path(db)
    if not db.exists():
        raise FileNotFoundError(f"resultatbasen {db} finnes ikke")
    return duckdb.connect(str(db), read_only=read_only)


def _has(con, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]).fetchall()[0][0])


def list_versions(db: Path | str) -> pd.DataFrame:
    """The store's model versions, newest first (without the pickled model)."""
    with _connect(db) as con:
        if not _has(con, "model_versions"):
            return pd.DataFrame(columns=["version", "status", "model_name", "period_from", "period_to", "created_at"])
        return con.execute("""SELECT version, status, model_name, period_from, period_to, created_at, spec_sha256
                              FROM model_versions ORDER BY created_at DESC""").df()


def set_status(db: Path | str, name: str, status: str) -> None:
    """Set a version's status ('siste': the newest version); a new production version retires
    the one before it."""
    if status not in STATUSES:
        raise VersionError(f"ukjent status {status!r}; velg en av {', '.join(STATUSES)}")
    with _connect(db, read_only=False) as con:
        if name == "siste" and _has(con, "model_versions"):  # the newest version
            name = (con.execute("SELECT version FROM model_versions ORDER BY created_at DESC LIMIT 1").fetchall() or [[name]])[0][0]
        if not _has(con, "model_versions") or not con.execute(
                "SELECT count(*) FROM model_versions WHERE version = ?", [name]).fetchall()[0][0]:
            raise VersionError(f"modellversjonen {name} finnes ikke i {db}")
        con.execute("BEGIN TRANSACTION")
        if status == "produksjon":
            con.execute("UPDATE model_versions SET status = 'pensjonert' WHERE status = 'produksjon' AND version <> ?", [name])
        con.execute("UPDATE model_versions SET status = ? WHERE version = ?", [status, name])
        con.execute("COMMIT")


def load_version(db: Path | str, name: str | None = None):
    """(version, the frozen IndicatorModel): `name`, or the version in production."""
    with _connect(db) as con:
        if not _has(con, "model_versions"):
            raise VersionError(f"{db} har ingen modellversjoner; kjør `arbeidsindikator run` først")
        if name is None:
            rows = con.execute("SELECT version, model FROM model_versions WHERE status = 'produksjon'").fetchall()
            if not rows:
                raise VersionError("ingen modellversjon er i produksjon; velg en med "
                                   "`arbeidsindikator modell status VERSJON produksjon`")
        else:
            rows = con.execute("SELECT version, model FROM model_versions WHERE version = ?", [name]).fetchall()
            if not rows:
                raise VersionError(f"modellversjonen {name} finnes ikke i {db}")
    return rows[0][0], pickle.loads(rows[0][1])


def list_releases(db: Path | str) -> pd.DataFrame:
    with _connect(db) as con:
        if not _has(con, "releases"):
            return pd.DataFrame(columns=["release_id", "as_of", "model_version", "created_at"])
        return con.execute("SELECT release_id, as_of, employment_observed_to, model_version, created_at "
                           "FROM releases ORDER BY created_at").df()


def release_info(con, run_id: str) -> dict | None:
    """A release's as-of month, model version and time (None for a run that estimated its model),
    read on an open connection to the store."""
    if not _has(con, "releases"):
        return None
    row = con.execute("SELECT as_of, employment_observed_to, model_version, created_at FROM releases WHERE release_id = ?",
                      [run_id]).fetchall()
    if not row:
        return None
    as_of, emp, ver, at = row[0]
    return {"as_of": as_of, "employment_observed_to": emp, "model_version": ver, "created_at": str(at)[:16]}


def release_text(info: dict | None, run_id: str) -> str:
    """One Norwegian sentence naming what a reader sees: the release, or the estimation run."""
    if info is None:
        return f"Kjøring {run_id}: modellen er estimert i kjøringen selv."
    return (f"Publisering per {info['as_of']} (arbeidstimer til {info['employment_observed_to']}) med modellversjon "
            f"{info['model_version']}, laget {info['created_at']}. Tall merket foreløpig kan endres i senere publiseringer.")


def final_month_index(employment_observed_to: dt.date, horizon: int) -> int:
    """The last stock month (as a month index, year x 12 + month - 1) whose K-month outcome is
    final: its window closed REVISION_MONTHS before the end of the employment data."""
    return employment_observed_to.year * 12 + employment_observed_to.month - 1 - horizon - REVISION_MONTHS


REVISION_CAUSES = {
    "ny": "ny celle (utfallsvinduet har lukket seg, eller en ny måned)",
    "borte": "cellen er ikke med i den nye publiseringen",
    "modell": "ny modellversjon",
    "forelopig": "foreløpig tall oppdatert (sene registerdata innenfor revisjonsperioden)",
    "endelig": "endelig tall endret (sene rettelser etter revisjonsperioden)",
    "prikking": "prikkingen er endret",
}
_KEYS = ("BEHOLDNINGSMAANED", "ORG_NIVAA", "ORG_STED_ID", "UTFALL", "NEDBRYTNING", "GRUPPE")


def resolve_runs(con, names: list[str], db: Path | str = "") -> list[str]:
    """Run ids for `names`, where 'siste' is the newest run of the store and 'forrige' the one
    before it; a run the store does not hold is refused (all named at once)."""
    ids = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 2").fetchall()]
    alias = {"siste": ids[0] if ids else "siste", "forrige": ids[1] if len(ids) > 1 else "forrige"}
    rids = [alias.get(n, n) for n in names]
    have = {r[0] for r in con.execute(f"SELECT run_id FROM runs WHERE run_id IN ({', '.join('?' * len(rids))})",
                                      rids).fetchall()}
    if missing := sorted(set(rids) - have):
        raise VersionError(f"kjøringen {', '.join(missing)} finnes ikke{f' i {db}' if db else ''}")
    return rids


def revisions(db: Path | str, old: str, new: str) -> pd.DataFrame:
    """Every monthly cell whose published value differs between runs `old` and `new` ('siste' and
    'forrige': the newest run and the one before it) (a cell
    in one only, a changed indicator, actual or expected value, or a changed suppression), with
    the old and new values and the cause (REVISION_CAUSES)."""
    keys = ", ".join(_KEYS)
    with _connect(db) as con:
        old, new = resolve_runs(con, [old, new], db)
        model = dict(con.execute("""SELECT r.run_id, coalesce(x.model_version, r.run_id) FROM runs r
                                    LEFT JOIN releases x ON x.release_id = r.run_id WHERE r.run_id IN (?, ?)""",
                                 [old, new]).fetchall()) if _has(con, "releases") else {old: old, new: new}
        d = con.execute(f"""
            WITH a AS (SELECT * FROM published WHERE run_id = ?), b AS (SELECT * FROM published WHERE run_id = ?)
            SELECT {', '.join(f'coalesce(a.{k}, b.{k}) AS {k}' for k in _KEYS)}, coalesce(a.ORG_STED, b.ORG_STED) AS ORG_STED,
                   a.INDIKATOR AS gammel_indikator, b.INDIKATOR AS ny_indikator,
                   a.faktisk AS gammel_faktisk, b.faktisk AS ny_faktisk, a.PRIKKET AS gammel_prikket, b.PRIKKET AS ny_prikket,
                   a.ENDELIG AS gammel_endelig, a.run_id IS NULL AS _new, b.run_id IS NULL AS _gone,
                   a.forventet IS DISTINCT FROM b.forventet AS _expected
            FROM a FULL OUTER JOIN b USING ({keys})
            WHERE a.run_id IS NULL OR b.run_id IS NULL OR a.PRIKKET IS DISTINCT FROM b.PRIKKET
               OR a.INDIKATOR IS DISTINCT FROM b.INDIKATOR OR a.faktisk IS DISTINCT FROM b.faktisk
               OR a.forventet IS DISTINCT FROM b.forventet
            ORDER BY ALL""", [old, new]).df()
    def flag(x):
        return pd.Series(x).astype("boolean").fillna(False).to_numpy(bool)
    cause = np.select(
        [flag(d["_new"]), flag(d["_gone"]), flag(d["gammel_prikket"].astype("boolean") != d["ny_prikket"].astype("boolean")),
         np.full(len(d), model[old] != model[new]), ~flag(d["gammel_endelig"])],
        ["ny", "borte", "prikking", "modell", "forelopig"], "endelig")
    return d.drop(columns=[c for c in d if c.startswith("_")]).assign(AARSAK=cause)


def mark_final(con, outcomes: list[str], employment_observed_to: dt.date) -> None:
    """Add ENDELIG to the tables `published` and `published_period` of a DuckDB connection: the
    cell's outcome window (to the end of its month or period plus the outcome's horizon) closed at
    least REVISION_MONTHS before the end of the extract's employment data."""
    from .outcomes import outcome_kind
    con.execute("CREATE OR REPLACE TEMP TABLE __horizon (UTFALL VARCHAR, last_final INTEGER)")
    con.executemany("INSERT INTO __horizon VALUES (?, ?)",
                    [(o, final_month_index(employment_observed_to, outcome_kind(o)[1] or 0)) for o in outcomes])
    for table, month in (("published", "BEHOLDNINGSMAANED"), ("published_period", "PERIODE_TIL")):
        con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS ENDELIG BOOLEAN")
        con.execute(f"""UPDATE {table} SET ENDELIG = (year({month}) * 12 + month({month}) - 1 <= h.last_final)
                        FROM __horizon h WHERE {table}.UTFALL = h.UTFALL""")
    con.execute("DROP TABLE __horizon")


__all__ = ["release_info", "release_text", "REVISION_CAUSES", "REVISION_MONTHS", "mark_final", "revisions", "SCHEMA", "STATUSES", "VersionError", "final_month_index", "insert", "libraries",
           "list_releases", "list_versions", "load_version", "resolve_runs", "set_status", "version_row"]
