"""One production run: validate the register tables, build outcomes and the analysis table,
fit the model, compute the indicator, publish with disclosure control, attack the tables with
the audit, and store the run atomically. `api.run_indicator` is this module's face."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import duckdb

from ..data.atomic import work_directory
from ..data.contract import TABLES
from ..data.validate import register_tables, table_file, validate
from .audit import DisclosureError, audit
from .config import ModelSpec, check_columns, load_spec
from .indicator import cell_codes, coded_table, person_results_view
from .batches import is_spark
from .model import IndicatorModel
from .outcomes import build_analysis
from .carry import previous_release
from .publish import _store, build_published, unit_table
from .runs import fingerprint, new_run_id, store_run
from . import versions

ENGINES = ("duckdb", "spark")
# DuckDB's share of memory in a run (at most 6 GB in all at national scale). While numpy
# accumulators and the published frames sit beside it (model, publish) it gets 3 GB. While it
# builds the outcomes and the analysis table it works alone and gets 5 GB: their joins spill
# far less (national scale: outcomes 135 s -> 95 s, peak RSS 5.0 GB).
WORK_MEMORY_LIMIT = "3GB"
SQL_MEMORY_LIMIT = "5GB"


@dataclass
class RunResult:
    run_id: str
    db: Path
    model: IndicatorModel
    timings: dict
    n_person_months: int
    interrupted: int | None = None  # a termination signal that came while the run was being stored
    model_version: str | None = None  # the frozen version a release applied (None: the run estimated one)


def run_indicator(data_dir: Path | str, config: Path | str | ModelSpec | None = None,
                  db: Path | str = "arbeidsindikator.duckdb", keep_person_level: bool = False,
                  progress=None, memory_limit: str | None = None, engine: str = "duckdb", spark=None,
                  spark_workdir: str | None = None, _fail_after_published: bool = False,
                  model_version: str | bool | None = None) -> RunResult:
    """validate -> outcomes -> model -> indicator -> publish -> store (one transaction).

    engine="duckdb" (default) computes in an embedded DuckDB working database. engine="spark"
    runs the same SQL and estimators on Apache Spark: on `spark` (a SparkSession, e.g. on a
    cluster) or, if none is given, on a local session; its intermediate tables go to
    `spark_workdir` (on a cluster a URI every executor reaches). The results store is the same.

    model_version: None estimates the model (and stores it as a candidate version); a version's
    name, or True for the one in production, makes a release under that frozen version
    (versions.py): nothing is estimated, and `config` is the version's own specification."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {ENGINES}")
    report = progress or (lambda step, frac: None)
    timings = {}
    t = time.perf_counter()

    def lap(name):
        nonlocal t
        now = time.perf_counter()
        timings[name] = round(now - t, 3)
        t = now

    data_dir = Path(data_dir)
    frozen = None
    if model_version is not None and model_version is not False:
        name, frozen = versions.load_version(db, None if model_version is True else model_version)
        frozen.version_name_ = name
        spec = frozen.spec
    else:
        spec = config if isinstance(config, ModelSpec) else load_spec(config)
    report("validering", 0.0)
    validate(data_dir)  # raises with every violation before anything is written
    lap("validate")
    if engine == "spark":
        from .spark import SparkConnection, local_session
        work = SparkConnection(spark or local_session(), spark_workdir)
        try:
            return _run(work, data_dir, spec, db, keep_person_level, report, lap, timings, _fail_after_published,
                        frozen=frozen)
        finally:
            work.close()
    # The working database lives in a temporary file, not in memory: DuckDB then compresses
    # the person-month tables and spills to disk under `memory_limit`, so a national run
    # (30 million person-months) fits in a few GB. It is deleted when the run ends.
    with work_directory() as workdir:
        work = duckdb.connect(str(workdir / "work.duckdb"))
        try:
            work.execute("SET memory_limit = ?", [memory_limit or WORK_MEMORY_LIMIT])
            work.execute("SET temp_directory = ?", [(workdir / "spill").as_posix()])
            work.execute("SET preserve_insertion_order = false")  # every output is sorted explicitly
            limits = (memory_limit, memory_limit) if memory_limit else (SQL_MEMORY_LIMIT, WORK_MEMORY_LIMIT)
            return _run(work, data_dir, spec, db, keep_person_level, report, lap, timings, _fail_after_published, limits,
                        frozen)
        finally:
            work.close()


def _run(work, data_dir, spec, db, keep_person_level, report, lap, timings, _fail_after_published,
         limits: tuple[str, str] | None = None, frozen: IndicatorModel | None = None) -> "RunResult":
    """The stages on a working connection. `limits`: DuckDB's memory limit while it works alone
    and while Python holds arrays beside it (None on Spark)."""
    spark = is_spark(work)

    def alone(yes: bool):
        if limits:
            work.execute("SET memory_limit = ?", [limits[0] if yes else limits[1]])

    found = register_tables(work, data_dir)
    as_of = work.execute("SELECT max(month) FROM stock").fetchall()[0][0]
    # a release is protected with the ones before it (carry.py; refused if older than the
    # newest stored one); an estimation run stands alone
    carried = None if frozen is None else previous_release(db, f"{as_of:%Y-%m}")
    report("utfall", 0.05)
    alone(True)
    build_analysis(work, measures="labour_market_measures" in found)
    alone(False)
    lap("outcomes")
    cols = {r[0] for r in work.execute("DESCRIBE analysis").fetchall()}
    check_columns(spec, cols)
    report("modell", 0.15)
    # the model's pass over the rows writes the person results with their cell codes
    table, carry = cell_codes(work, spec)
    if frozen is None:
        model = IndicatorModel(spec).fit(work, table, predictions_table=coded_table("person_results"), carry=carry,
                                         progress=lambda s, f: report(s, 0.15 + 0.55 * f))
    else:  # a release: the frozen version's coefficients and codings on this extract
        model = frozen.apply(work, table, predictions_table=coded_table("person_results"), carry=carry,
                             progress=lambda s, f: report(s, 0.15 + 0.55 * f))
    lap("model")
    report("indikator", 0.72)
    person_results_view(work, spec)
    lap("indicator")
    report("publisering", 0.8)
    pub = build_published(work, spec, model, carried=carried)
    employment_to = work.execute("SELECT max(employment_observed_to) FROM extract").fetchall()[0][0]
    lap("publish")
    report("revisjon", 0.86)
    check = audit(pub.monthly, pub.period, pub.witness)  # the attacker's solver over what would be published
    if not check.passed:
        raise DisclosureError(f"{len(check.determined)} prikkede celler kan regnes ut fra de publiserte tabellene; "
                              "kjøringen er ikke lagret.")
    # the attacker who also knows bounds (whole counts, 0 <= in work <= persons, ...): no
    # suppressed count or sum pinned, no cell proved small, nobody / everybody in work proved
    left = pub.protection.disclosed
    if left:
        n_left = len({c for _, _, cells in left for c in cells.tolist()})
        raise DisclosureError(f"{n_left} prikkede celler kan avgrenses for snevert av en angriper som kjenner grensene "
                              "(hele tall, 0 <= i jobb <= antall); kjøringen er ikke lagret.")
    _store(work, "units", unit_table(pub.monthly, work.execute("SELECT * FROM offices").df()))
    del pub
    lap("audit")
    n_pm = work.execute(f"SELECT count(*) FROM {coded_table('person_results')}").fetchall()[0][0]
    run_id = new_run_id()
    manifest = {
        "run_id": run_id, "created_at": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
        "model_name": spec.name, "package_version": version("arbeidsindikator"), "engine": "spark" if spark else "duckdb",
        "data_dir": str(data_dir.resolve()), "config_toml": spec.source_text,
        "input_fingerprints": {n: fingerprint(table_file(data_dir, n)) for n in TABLES if table_file(data_dir, n)},
        "timings": timings, "n_person_months": n_pm,
        "notes": {o: r.notes for o, r in model.results_.items()},
    }
    new_version = release = None
    if frozen is None:
        new_version = versions.version_row(model, manifest)
    else:
        release = {"release_id": run_id, "created_at": manifest["created_at"], "as_of": f"{as_of:%Y-%m}",
                   "employment_observed_to": f"{employment_to:%Y-%m}", "model_version": frozen.version_name_,
                   "data_dir": manifest["data_dir"], "input_fingerprints": json.dumps(manifest["input_fingerprints"])}
        manifest["model_name"] = f"{spec.name} (versjon {frozen.version_name_})"
    report("lagring", 0.9)
    # Spark: the published frames (and person rows, if kept) go through a local DuckDB connection
    store = work.to_duckdb(("person_results",) if keep_person_level else ()) if spark else work
    try:
        versions.mark_final(store, spec.outcomes, employment_to)
        interrupted = store_run(store, Path(db), manifest, model.coefficient_rows(), keep_person_level,
                                fail_after_published=_fail_after_published, version=new_version, release=release)
    finally:
        if spark:
            store.close()
    lap("store")
    report("ferdig", 1.0)
    return RunResult(run_id, Path(db), model, timings, n_pm, interrupted,
                     None if frozen is None else frozen.version_name_)


__all__ = ["ENGINES", "RunResult", "run_indicator"]
