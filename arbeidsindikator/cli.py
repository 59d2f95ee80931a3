"""Command line: a thin layer over the Python API (`arbeidsindikator.api`)."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .validate import ValidationError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Arbeidsindikatoren: synthetic Nav world, the indicator, and its publication.")
console = Console()


def _terminate(signum, frame):
    """SIGTERM ends the command like Ctrl-C: cleanup runs (working directories, transactions)."""
    raise SystemExit(128 + signum)


@app.callback()
def _main():
    signal.signal(signal.SIGTERM, _terminate)


@contextmanager
def progress_bar(title: str):
    """Yields a callback(step, fraction) that drives a rich progress bar."""
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=console, transient=False) as prog:
        task = prog.add_task(title, total=1.0)

        def update(step: str, frac: float):
            prog.update(task, completed=frac, description=f"{title}: {step}")

        yield update


def _fail_validation(e: ValidationError) -> None:
    from rich.table import Table
    t = Table(title="Inndata bryter datakontrakten (ingenting er skrevet)", show_lines=False)
    for c in ("tabell", "kolonne", "regel", "rader", "eksempler"):
        t.add_column(c, overflow="fold")
    for v in e.violations:
        if v.severity != "error":
            continue
        ex = "; ".join(", ".join(f"{k}={x}" for k, x in r.items()) for r in v.examples)
        t.add_row(v.table, v.column, v.rule, str(v.n_rows or ""), ex)
    console.print(t)
    raise typer.Exit(code=2)


@app.command()
def synth(
    out: Path = typer.Option(..., help="Directory to write the world to (replaced atomically)."),
    scale: str = typer.Option("medium", help="small | medium | national"),
    seed: int = typer.Option(1, help="Random seed; the same seed gives byte-identical files."),
    clean: bool = typer.Option(False, "--clean", help="No unobserved traits correlated with the office, no unforeseeable labour-market shocks."),
    employment_observed_to: str = typer.Option("2024-12", help="Last month of employment data (2024-12 .. 2025-12)."),
    report: bool = typer.Option(False, "--report", help="Print the calibration report afterwards."),
):
    """Generate a synthetic Nav world (Parquet, one file per table, plus truth/)."""
    from .synth import generate_world
    from .synth.params import SCALES
    if scale not in SCALES:
        raise typer.BadParameter(f"scale must be one of {', '.join(SCALES)}")
    with progress_bar(f"Syntetisk verden ({scale})") as cb:
        summary = generate_world(out, scale=scale, seed=seed, clean=clean,
                                 employment_observed_to=employment_observed_to, progress=cb)
    console.print(f"Skrev {summary['persons']:,} personer, {summary['offices']} kontor, "
                  f"{summary['commuting_regions']} bo- og arbeidsmarkedsregioner til [bold]{out}[/] "
                  f"på {summary['seconds']} s.")
    if report:
        calibrate(data=out)


@app.command()
def calibrate(data: Path = typer.Option(..., help="Directory of a synthetic world.")):
    """Print the world's key figures beside the published ones."""
    from .synth.calibration import calibration_report, report_table
    console.print(report_table(calibration_report(data)))


@app.command()
def validate(data: Path = typer.Option(..., help="Directory with the contract's tables.")):
    """Check a data directory against the contract; report every violation at once."""
    from .validate import validate as run_validation
    try:
        found = run_validation(data)
    except ValidationError as e:
        _fail_validation(e)
    for w in found:
        console.print(f"[yellow]advarsel[/] {w}")
    console.print(f"[green]Gyldig:[/] {data} oppfyller datakontrakten.")


@app.command()
def contract(out: Path = typer.Option(Path("docs/data-contract.md"), help="Where to write the Markdown.")):
    """Write the data contract as Markdown (generated from the code)."""
    from .contract import contract_markdown
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(contract_markdown())
    console.print(f"Skrev {out}")


def _run_with_errors(fn):
    """Turn contract and configuration errors into one clear message and exit code 2."""
    from .config import ConfigError
    try:
        return fn()
    except ValidationError as e:
        _fail_validation(e)
    except ConfigError as e:
        console.print("[red]Modellspesifikasjonen kan ikke brukes (ingenting er skrevet):[/]")
        for p in e.problems:
            console.print(f"  - {p}")
        raise typer.Exit(code=2)


@app.command()
def run(
    data: Path = typer.Option(..., help="Directory with the contract's tables."),
    config: Path = typer.Option(None, help="Model specification (TOML); default: Nav's model."),
    db: Path = typer.Option(Path("arbeidsindikator.duckdb"), help="Results store (DuckDB)."),
    person_level: bool = typer.Option(False, "--person-level", help="Also store person-level actual/expected/indicator."),
    engine: str = typer.Option("duckdb", help="duckdb (embedded, default) or spark (Apache Spark, same results)."),
    spark_master: str = typer.Option("local[2]", help="Spark master URL with --engine spark (local[N], spark://..., yarn)."),
    spark_workdir: str = typer.Option(None, help="Spark: directory for intermediate tables, reachable by every "
                                                 "executor on a cluster (hdfs://..., s3a://...); default: a local temp dir."),
):
    """Validate, compute outcomes, fit the model, publish; store the run in --db."""
    from .api import ENGINES, run_indicator
    if engine not in ENGINES:  # before a Spark session is started
        console.print(f"[red]Ukjent motor {engine!r}: velg duckdb eller spark.[/]")
        raise typer.Exit(2)
    session = None
    if engine == "spark":
        from .spark import local_session
        session = local_session(spark_master)
    with progress_bar("Arbeidsindikatoren") as cb:
        r = _run_with_errors(lambda: run_indicator(data, config, db, keep_person_level=person_level, progress=cb,
                                                   engine=engine, spark=session, spark_workdir=spark_workdir))
    console.print(f"Kjøring [bold]{r.run_id}[/] lagret i [bold]{db}[/] ({r.n_person_months:,} personmåneder).")
    for o, res in r.model.results_.items():
        console.print(f"  {o}: N = {res.nobs:,}, R² = {res.r2:.3f}"
                      + (f", {res.n_missing:,} utelatt for manglende verdier" if res.n_missing else "")
                      + (f", {len(res.notes)} merknad(er)" if res.notes else ""))
    return r


@app.command()
def export(
    db: Path = typer.Option(Path("arbeidsindikator.duckdb"), help="Results store."),
    out: Path = typer.Option(Path("publisert"), help="Output path without extension (.csv and .parquet are written)."),
    run_id: str = typer.Option(None, help="Run to export (default: the latest)."),
):
    """Export the published table of a run to CSV and Parquet."""
    import duckdb

    from .publish import export as export_query
    from .runs import latest_run_id, run_exists
    if not db.exists():
        console.print(f"[red]Resultatbasen {db} finnes ikke.[/] Kjør først `arbeidsindikator run`.")
        raise typer.Exit(2)
    con = duckdb.connect(str(db), read_only=True)
    rid = run_id or latest_run_id(con)
    if rid is None or not run_exists(con, rid):
        console.print(f"[red]Fant ingen kjøring {run_id or ''} i {db}.[/]".replace("  ", " "))
        raise typer.Exit(2)
    files = export_query(con, "SELECT * EXCLUDE (run_id) FROM published WHERE run_id = ?", out, params=[rid])
    con.close()
    console.print("Skrev " + ", ".join(str(f) for f in files))


@app.command()
def page(db: Path = typer.Option(Path("arbeidsindikator.duckdb")), out: Path = typer.Option(Path("index.html"))):
    """Write a simple HTML page (national and one region; actual vs expected by innsatsgruppe)."""
    from .page import write_page
    console.print(f"Skrev {write_page(db, out)}")


@app.command()
def report(
    unit: str = typer.Option("Norge", help="'Norge', a region or an office (name or id)."),
    db: Path = typer.Option(Path("arbeidsindikator.duckdb")), out: Path = typer.Option(Path("rapporter")),
    reference: str = typer.Option(None, help="Reference month YYYY-MM for the index of change."),
):
    """Self-contained HTML report for a unit (opens offline), with SVG/PNG charts for slides."""
    from .report import write_report
    console.print(f"Skrev {write_report(db, unit, out, f'{reference}-01' if reference else None)}")


@app.command()
def serve(
    db: Path = typer.Option(Path("arbeidsindikator.duckdb"), help="Results store to serve (published tables only)."),
    host: str = typer.Option("127.0.0.1", help="Bind address; anything but loopback requires --token."),
    port: int = typer.Option(8000),
    token: str = typer.Option(None, envvar="ARBEIDSINDIKATOR_TOKEN",
                              help="Token required on every route (Authorization: Bearer <token>; browsers ask for it "
                                   "as a password). Required when binding to anything but loopback."),
):
    """Start the dashboard: a JSON API (OpenAPI at /docs) and its front end, from published tables only."""
    import uvicorn

    from .dashboard import create_app, is_loopback
    if not is_loopback(host) and not token:
        console.print("[red]Dashbordet bindes til en annen adresse enn 127.0.0.1; oppgi --token (eller ARBEIDSINDIKATOR_TOKEN).[/]")
        raise typer.Exit(code=2)
    console.print(f"Dashbord: http://{host}:{port}/  (API-beskrivelse: http://{host}:{port}/docs)")
    uvicorn.run(create_app(db, token), host=host, port=port, log_level="warning")


@app.command()
def revisjon(
    db: Path = typer.Option(Path("arbeidsindikator.duckdb"), help="Resultatbase (DuckDB)."),
    run_id: str = typer.Option(None, help="Kjøringen som revideres (standard: den siste)."),
    intervaller: int = typer.Option(0, help="Regn ut angriperens intervall (lineær programmering) for så mange "
                                            "prikkede celler per utfall."),
):
    """Disclosure audit: attack the published tables of a run and report every suppressed value that follows from them."""
    import duckdb
    from rich.table import Table

    from .audit import audit
    from .runs import latest_run_id, run_exists
    if not db.exists():
        console.print(f"[red]Resultatbasen {db} finnes ikke.[/]")
        raise typer.Exit(2)
    con = duckdb.connect(str(db), read_only=True)
    rid = run_id or latest_run_id(con)
    if rid is None or not run_exists(con, rid):
        console.print(f"[red]Fant ingen kjøring {run_id or ''} i {db}.[/]")
        raise typer.Exit(2)
    tables = {t: con.execute(f"SELECT * EXCLUDE (run_id) FROM {t} WHERE run_id = ?", [rid]).df()
              for t in ("published", "published_period")}
    has_witness = bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'disclosure_witness'").fetchall()[0][0])
    witness = con.execute("SELECT * EXCLUDE (run_id) FROM disclosure_witness WHERE run_id = ?", [rid]).df() if has_witness else None
    con.close()
    with console.status("Angriper de publiserte tabellene ..."):
        res = audit(tables["published"], tables["published_period"], witness, intervals=intervaller)
    t = Table(title=f"Avsløringsrevisjon av kjøring {rid}")
    for c in ("utfall", "celler", "prikket", "relasjoner", "funnet ved differanser", "bevist (vitne)", "bevist (numerisk)", "bestemt"):
        t.add_column(c, justify="right")
    for r in res.summary().itertuples(index=False):
        t.add_row(*[f"{v:,}".replace(",", " ") if isinstance(v, int) else str(v) for v in r])
    console.print(t)
    if res.witness_ok is False:
        console.print("[yellow]Vitnet i resultatbasen stemmer ikke med tabellene; cellene ble avgjort numerisk.[/]")
    if intervaller:
        iv = pd_concat([o.intervals.assign(UTFALL=o.outcome) for o in res.outcomes if o.intervals is not None])
        if len(iv):
            point = (iv["ovre"] - iv["nedre"] <= 1e-9).sum()
            console.print(f"Intervaller for {len(iv)} prikkede celler: {point} er festet til ett punkt; "
                          f"median bredde {float((iv['ovre'] - iv['nedre']).median()):,.1f} (sum av faktisk utfall).")
    if not res.passed:
        det = res.determined
        console.print(f"[red]{len(det)} prikkede celler kan regnes ut fra de publiserte tabellene.[/] De første:")
        console.print(det.head(10).to_string(index=False))
        raise typer.Exit(1)
    console.print("[green]Ingen prikket verdi følger av de publiserte tabellene.[/]")


def pd_concat(frames):
    import pandas as pd
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@app.command()
def validity(data: Path = typer.Option(..., help="Synthetic world (with truth/)."),
             db: Path = typer.Option(Path("arbeidsindikator.duckdb"), help="Results store of a run on that world.")):
    """The indicator against the world's truth: correlation by office and year, and how often the 95% intervals of
    office-month and office-year cells cover the true contribution."""
    from rich.table import Table

    from .validity import coverage, office_year_correlations
    t = Table(title="Validitet: kontor x år mot sann kontoreffekt")
    for c in ("utfall", "kontorår", "r indikator", "r faktisk rate", "RMSE indikator"):
        t.add_column(c)
    for o, v in office_year_correlations(data, db).items():
        t.add_row(o, str(v["office_years"]), f"{v['r_indicator']:.3f}", f"{v['r_actual']:.3f}", f"{v['rmse_indicator']:.3f}")
    console.print(t)
    c = Table(title="Dekning: andel 95 %-intervaller som inneholder den sanne kontoreffekten (z = feil / standardfeil)")
    for col in ("celler", "utfall", "antall", "dekning", "sd(z)", "snitt(z)"):
        c.add_column(col, justify="right")
    for r in coverage(data, db).itertuples(index=False):
        c.add_row(r.celler, r.UTFALL, f"{r.antall:,}".replace(",", " "), f"{100 * r.dekning_95:.1f} %".replace(".", ","),
                  f"{r.sd_z:.2f}".replace(".", ","), f"{r.snitt_z:+.2f}".replace(".", ","))
    console.print(c)
    console.print("Med riktige standardfeil dekker 95 %-intervallene om lag 95 % og sd(z) er om lag 1.")


def _print_frame(df, title: str, columns: list[str], out: Path | None = None) -> None:
    from rich.table import Table
    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for row in df[columns].itertuples(index=False):
        t.add_row(*[f"{v:,.3f}" if isinstance(v, float) else str(v) for v in row])
    console.print(t)
    if out is not None:
        df.to_csv(out, index=False)
        console.print(f"Skrev {out}")


@app.command()
def indeks(
    unit: str = typer.Option(..., help="Unit name or id ('Norge', a region, an office)."),
    outcome: str = typer.Option("atid3"),
    reference: str = typer.Option(..., help="Reference month YYYY-MM (index 0 there)."),
    breakdown: str = typer.Option("Alle"), group: str = typer.Option("Alle"),
    db: Path = typer.Option(Path("arbeidsindikator.duckdb")), out: Path = typer.Option(None, help="Also write CSV."),
):
    """Index of change from a reference month, with 95% intervals (allowed for every breakdown)."""
    from .api import Results
    df = Results(db).index_of_change(unit, outcome, f"{reference}-01", breakdown, group)
    _print_frame(df, f"Endringsindeks for {unit}, {outcome}, {group} (referanse {reference})",
                 ["BEHOLDNINGSMAANED", "ENDRINGSINDEKS", "ENDRINGSINDEKS_KI_NEDRE", "ENDRINGSINDEKS_KI_OVRE"], out)


@app.command()
def sammenlign(
    unit: str = typer.Option("Norge"), outcome: str = typer.Option("atid3"), breakdown: str = typer.Option(...),
    month: str = typer.Option(None, help="YYYY-MM"), period: str = typer.Option(None, help="e.g. 2023 or 'hele perioden'"),
    db: Path = typer.Option(Path("arbeidsindikator.duckdb")),
):
    """Compare the levels of a breakdown's groups (refused for breakdowns in the model)."""
    from .api import Results
    from .reading import ReadingRuleError
    try:
        df = Results(db).compare_levels(unit, outcome, breakdown, month=f"{month}-01" if month else None, period=period)
    except ReadingRuleError as e:
        console.print(f"[red]Ikke tillatt:[/] {e}")
        raise typer.Exit(code=2)
    time_col = "PERIODE" if period else "BEHOLDNINGSMAANED"
    _print_frame(df, f"{breakdown}: {unit}, {outcome}", [time_col, "GRUPPE", "ANTALL_PERSONER", "faktisk", "forventet",
                                                        "INDIKATOR", "INDIKATOR_KI_NEDRE", "INDIKATOR_KI_OVRE"])


@app.command()
def funnel(
    level: int = typer.Option(3, help="2 regions, 3 offices."), outcome: str = typer.Option("jobb3"),
    month: str = typer.Option(None, help="YYYY-MM"), period: str = typer.Option(None, help="e.g. 2023"),
    region: str = typer.Option(None, help="Only the offices of this region."),
    db: Path = typer.Option(Path("arbeidsindikator.duckdb")), out: Path = typer.Option(None, help="Also write CSV."),
):
    """Funnel-plot data: units against their size with 95% / 99.8% control limits (no ranking)."""
    from .api import Results
    if not (month or period):
        raise typer.BadParameter("give --month or --period")
    df = Results(db).funnel(level, outcome, month=f"{month}-01" if month else None, period=period, region=region)
    _print_frame(df, f"Traktplott {outcome} ({month or period}); mellomvarians {df['MELLOMVARIANS'].iloc[0]:.3f}" if len(df) else "Ingen enheter",
                 ["ORG_STED", "ANTALL_PERSONER", "INDIKATOR", "GRENSE_95_NEDRE", "GRENSE_95_OVRE", "UTENFOR_95", "UTENFOR_998"], out)


@app.command()
def arbeidsvolum(
    unit: str = typer.Option(...), month: str = typer.Option(..., help="YYYY-MM"), outcome: str = typer.Option("atid3"),
    db: Path = typer.Option(Path("arbeidsindikator.duckdb")),
):
    """The indicator as extra hours per week and full-time equivalents for a unit."""
    from .api import Results
    v = Results(db).work_volume(unit, f"{month}-01", outcome)
    console.print(f"{v['unit']}, {month}: {v['persons']:,.0f} brukere x {v['indicator_hours_per_week']:+.3f} timer per uke "
                  f"= {v['extra_hours_per_week']:+,.0f} timer per uke = {v['fte']:+,.1f} årsverk ({v['conversion']}).")


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output"), help="Directory for everything the demo writes."),
    scale: str = typer.Option("medium", help="Size of the synthetic world."),
    seed: int = typer.Option(1),
):
    """The whole chain on a synthetic world: data, indicator, published table, HTML page."""
    import time

    from .api import Results, run_indicator
    from .page import write_page
    from .synth import generate_world
    from .synth.calibration import calibration_report, report_table
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    data, db = out / "data", out / "arbeidsindikator.duckdb"
    with progress_bar(f"1/3 Syntetisk Nav-verden ({scale})") as cb:
        generate_world(data, scale=scale, seed=seed, progress=cb)
    console.print(report_table(calibration_report(data)))
    if db.exists():
        db.unlink()  # the demo starts from an empty results store
    with progress_bar("2/3 Arbeidsindikatoren") as cb:
        r = run_indicator(data, None, db, progress=cb)
    console.print("3/3 Publisering og nettside")
    files = []
    import duckdb

    from .publish import export as export_query
    con = duckdb.connect(str(db), read_only=True)
    files += export_query(con, "SELECT * EXCLUDE (run_id) FROM published WHERE run_id = ?", out / "publisert", params=[r.run_id])
    files += export_query(con, "SELECT * EXCLUDE (run_id) FROM coefficients WHERE run_id = ?", out / "koeffisienter", ("csv",),
                          params=[r.run_id])
    con.close()
    page_path = write_page(db, out / "index.html")
    from .report import write_report
    res = Results(db)
    biggest = res.published(ORG_NIVAA=2, NEDBRYTNING="Alle", UTFALL="atid3").groupby("ORG_STED")["ANTALL_PERSONER"].sum()
    res.close()
    region = biggest.drop("Nasjonal oppfølgingsenhet", errors="ignore").idxmax()
    reports = [write_report(db, u, out / "rapporter") for u in ("Norge", region)]
    console.print(f"\n[bold green]Ferdig på {time.perf_counter() - t0:.0f} s.[/] Dette ble skrevet:")
    console.print(f"  Syntetiske registerdata (Parquet): {data}/  (fasit i {data}/truth/)")
    console.print(f"  Resultatdatabase (DuckDB):          {db}  (kjøring {r.run_id})")
    for f in files:
        console.print(f"  Tabell:                             {f}")
    console.print(f"  Nettside:                           {page_path}")
    for rp in reports:
        console.print(f"  Rapport:                            {rp}")
    console.print("\nLag rapport for en annen enhet: arbeidsindikator report --db " + str(db) + " --unit <navn> --out "
                  + str(out / "rapporter"))
    console.print(f"Start dashbordet: .venv/bin/arbeidsindikator serve --db {db}   (åpne http://127.0.0.1:8000/)")


if __name__ == "__main__":
    app()


analyse_app = typer.Typer(add_completion=False, no_args_is_help=True,
                          help="Analyses built on the indicator (office resources, ...).")
app.add_typer(analyse_app, name="analyse")


@analyse_app.command("ressurser")
def analyse_ressurser(
    db: Path = typer.Option(Path("arbeidsindikator.duckdb"), help="Results store with a run kept at person level."),
    data: Path = typer.Option(..., help="Directory with the contract's tables (stock, municipalities, office_hr)."),
    out: Path = typer.Option(Path("ressurser"), help="Output directory (replaced atomically)."),
    run_id: str = typer.Option(None, help="Run to analyse (default: the latest)."),
    se: str = typer.Option("cluster", help="Standard errors in the tables: classical | robust | cluster (by office)."),
):
    """Sick leave and staffing against the office indicator (Dahl 2025): tables, figures, methods note."""
    from .resources import ResourcesError
    from .resources_report import write_resources_analysis
    try:
        path = write_resources_analysis(db, data, out, run_id, se)
    except (ResourcesError, ValueError) as e:
        console.print(f"[red]{e}[/]")
        raise typer.Exit(code=2)
    console.print(f"Skrev {path}")
