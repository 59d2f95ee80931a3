"""Command line: a thin layer over the Python API (`arbeidsindikator.api`) and the analyses.

What it prints is Norwegian, with Norwegian number format (`norsk.py`). A wrong argument, a
missing file or a refused comparison ends with one sentence saying what is wrong and what is
valid, and exit code 2; never a traceback (set ARBEIDSINDIKATOR_DEBUG=1 to see one for an
unexpected error, which exits with 1).
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from . import norsk
from .present import clitext
from .data.validate import ValidationError

clitext.install()  # click's own words (help headings, argument errors) in Norwegian, errors on one line

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                  help="Arbeidsindikatoren: syntetisk Nav-verden, indikatoren og publiseringen av den.")
analyse_app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                          help="Analyser bygd på indikatoren (kontorressurser, ...).")
app.add_typer(analyse_app, name="analyse")
modell_app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                         help="Modellversjoner: frosne modeller som månedlige publiseringer bruker.")
app.add_typer(modell_app, name="modell")
console = Console()

DB = typer.Option(Path("arbeidsindikator.duckdb"), "--db", metavar="FIL", help="Resultatbasen (DuckDB).")
UNIT = typer.Option("Norge", "--unit", metavar="ENHET", help="«Norge», en region eller et kontor: navn eller nummer "
                                                            "(store og små bokstaver spiller ingen rolle).")
OUTCOME = typer.Option("atid3", "--outcome", metavar="UTFALL",
                       help="atid3, atid12 (timer per uke de neste 3 / 12 månedene), jobb3 eller jobb12 (i jobb 3 / 12 "
                            "måneder etter).")
BREAKDOWN = typer.Option("Alle", "--breakdown", metavar="NEDBRYTNING",
                         help="Alle, Innsatsgruppe, Ungdomsgaranti, Innvandrerkategori, Aldersgruppe eller Kjønn.")
GROUP = typer.Option("Alle", "--group", metavar="GRUPPE", help="Gruppen i nedbrytningen, for eksempel standard eller "
                                                              "ja («Alle» for hele enheten).")
MONTH = "ÅÅÅÅ-MM"


def _terminate(signum, frame):
    """SIGTERM ends the command like Ctrl-C: cleanup runs (working directories, transactions)."""
    raise SystemExit(128 + signum)


@app.callback()
def _main():
    signal.signal(signal.SIGTERM, _terminate)


def _fail(message: str, code: int = 2):
    """One sentence to the user, and an exit code: never a traceback."""
    console.print(f"[red]{escape(message)}[/]", highlight=False)  # "[spells]" in a message is text, not markup
    raise typer.Exit(code)


def _fail_validation(e: ValidationError) -> None:
    from rich.table import Table
    t = Table(title="Inndata bryter datakontrakten (ingenting er skrevet)", show_lines=False)
    for c in ("tabell", "kolonne", "regel", "rader", "eksempler"):
        t.add_column(c, overflow="fold")
    for v in e.violations:
        if v.severity != "error":
            continue
        ex = "; ".join(", ".join(f"{k}={x}" for k, x in r.items()) for r in v.examples)
        t.add_row(v.table, v.column, v.rule, norsk.integer(v.n_rows) if v.n_rows else "", ex)
    console.print(t)
    raise typer.Exit(code=2)


def friendly(fn):
    """Known problems become one clear message and exit code 2; anything else one line and 1."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from .pipeline.audit import DisclosureError
        from .pipeline.config import ConfigError
        from .pipeline.reading import ReadingRuleError
        try:
            return fn(*args, **kwargs)
        except (KeyboardInterrupt, SystemExit) as e:  # Ctrl-C, or SIGTERM (_terminate)
            code = 130 if isinstance(e, KeyboardInterrupt) else e.code
            if isinstance(e, KeyboardInterrupt) or code == 128 + signal.SIGTERM:
                console.print("[yellow]Avbrutt; det som ikke var ferdig, ble ikke lagret.[/]", highlight=False)
            raise SystemExit(code)
        except (typer.Exit, typer.Abort):
            raise
        except ValidationError as e:
            _fail_validation(e)
        except ConfigError as e:
            console.print("[red]Modellspesifikasjonen eller tabellen kan ikke brukes (ingenting er skrevet):[/]")
            for p in e.problems:
                console.print(f"  - {p}", highlight=False)
            raise typer.Exit(2)
        except ReadingRuleError as e:
            _fail(f"Ikke tillatt: {e}")
        except (LookupError, FileNotFoundError, DisclosureError, ValueError) as e:
            _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
        except Exception as e:  # noqa: BLE001
            if os.environ.get("ARBEIDSINDIKATOR_DEBUG"):
                raise
            _fail(f"Uventet feil ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
                  "Kjør med ARBEIDSINDIKATOR_DEBUG=1 for detaljer.", 1)
    return wrapper


def command(*args, **kwargs):
    """`app.command` with `friendly` error handling."""
    def deco(fn):
        return app.command(*args, **kwargs)(friendly(fn))
    return deco


@contextmanager
def progress_bar(title: str):
    """Yields a callback(step, fraction) that drives a rich progress bar."""
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=console, transient=False) as prog:
        task = prog.add_task(title, total=1.0)

        def update(step: str, frac: float):
            prog.update(task, completed=frac, description=f"{title}: {step}")

        yield update


def _month(value: str | None, name: str) -> str | None:
    """A month argument 'ÅÅÅÅ-MM' -> 'ÅÅÅÅ-MM-01'."""
    import re
    if value is None:
        return None
    if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", value):
        _fail(f"Ugyldig måned i {name}: {value!r}. Bruk ÅÅÅÅ-MM, for eksempel 2023-06.")
    return f"{value}-01"


def _results(db: Path):
    from .pipeline.results import Results
    if not db.exists():
        _fail(f"Resultatbasen {db} finnes ikke. Kjør først «arbeidsindikator run --data MAPPE --db {db}».")
    return Results(db)


def _table(df, title: str, columns: dict, out: Path | None = None) -> None:
    """Print a frame with Norwegian headers and numbers; `columns`: column -> (header, formatter)."""
    from rich.table import Table
    t = Table(title=title)
    for header, _ in columns.values():
        t.add_column(header, justify="right", overflow="fold")  # ids whole, not cut with "…"
    for row in df[list(columns)].itertuples(index=False):
        t.add_row(*[fmt(v) for v, (_, fmt) in zip(row, columns.values())])
    console.print(t)
    if out is not None:
        df.to_csv(out, index=False)
        console.print(f"Skrev {out}")


# -- the world and the data ---------------------------------------------------------------------
@command()
def synth(
    out: Path = typer.Option(..., metavar="MAPPE", help="Mappen verdenen skrives til (erstattes helt når den er ferdig)."),
    scale: str = typer.Option("medium", metavar="STØRRELSE", help="small (2 500 personer per måned), medium (30 000) "
                                                                  "eller national (300 000)."),
    seed: int = typer.Option(1, metavar="TALL", help="Frø for tilfeldighetene: samme frø gir byte-like filer."),
    clean: bool = typer.Option(False, "--clean", metavar="", help="Ren verden: ingen uobserverte trekk som henger sammen "
                               "med kontoret, et flatt arbeidsmarked uten sjokk (for å sjekke maskineriet)."),
    employment_observed_to: str = typer.Option("2024-12", metavar=MONTH, help="Siste måned med arbeidstimer "
                                                                              "(2024-12 til 2025-12)."),
    report: bool = typer.Option(False, "--report", metavar="", help="Vis kalibreringsrapporten etterpå."),
):
    """Lag en syntetisk Nav-verden (Parquet, én fil per tabell, pluss fasit i truth/)."""
    from .data.synth import generate_world
    from .data.synth.params import SCALES
    if scale not in SCALES:
        _fail(f"Ukjent størrelse {scale!r}; velg {', '.join(SCALES)}.")
    with progress_bar(f"Syntetisk verden ({scale})") as cb:
        summary = generate_world(out, scale=scale, seed=seed, clean=clean,
                                 employment_observed_to=employment_observed_to, progress=cb)
    console.print(f"Skrev {norsk.integer(summary['persons'])} personer, {summary['offices']} kontor og "
                  f"{summary['commuting_regions']} bo- og arbeidsmarkedsregioner til {out} på "
                  f"{norsk.number(summary['seconds'], 1)} s.", highlight=False)
    if report:
        calibrate(data=out)


@command()
def calibrate(data: Path = typer.Option(..., metavar="MAPPE", help="Mappen med en syntetisk verden.")):
    """Vis verdenens nøkkeltall ved siden av de publiserte."""
    from .analyses.calibration import calibration_report, report_table
    console.print(report_table(calibration_report(data)))


@command()
def validate(data: Path = typer.Option(..., metavar="MAPPE", help="Mappen med tabellene i datakontrakten.")):
    """Sjekk en datamappe mot datakontrakten; alle brudd rapporteres samtidig (exit 2 hvis noen)."""
    from .data.validate import validate as run_validation
    for w in run_validation(data):
        console.print(f"[yellow]advarsel[/] {w}", highlight=False)
    console.print(f"[green]Gyldig:[/] {data} oppfyller datakontrakten.")


@command()
def contract(out: Path = typer.Option(None, metavar="FIL", help="Markdown-filen som skrives (standard: skjermen, "
                                                                 "for eksempel > docs/data-contract.md).")):
    """Skriv datakontrakten som Markdown (laget fra koden som validerer)."""
    from .data import atomic
    from .data.contract import contract_markdown
    text = contract_markdown()
    if out is None:
        sys.stdout.write(text)  # plain: the document itself, nothing else on standard output
        return
    if not out.parent.exists():
        _fail(f"Mappen {out.parent} finnes ikke.")
    atomic.write_text(out, text)
    console.print(f"Skrev {out}", highlight=False)


# -- the indicator -------------------------------------------------------------------------------
@command()
def run(
    data: Path = typer.Option(..., metavar="MAPPE", help="Mappen med tabellene i datakontrakten."),
    config: Path = typer.Option(None, metavar="FIL", help="Modellspesifikasjon (TOML); standard: Navs modell "
                                                          "(arbeidsindikator/pipeline/configs/default.toml)."),
    db: Path = DB,
    person_level: bool = typer.Option(False, "--person-level", metavar="",
                                      help="Lagre også resultater per person og måned (for analyser; aldri publisert)."),
    engine: str = typer.Option("duckdb", metavar="MOTOR", help="duckdb (innebygd, standard) eller spark (Apache Spark, "
                                                               "samme resultater)."),
    spark_master: str = typer.Option("local[2]", metavar="URL", help="Spark master med --engine spark (local[N], "
                                                                      "spark://..., yarn)."),
    spark_workdir: str = typer.Option(None, metavar="MAPPE", help="Spark: mappe for mellomtabeller som alle executorer "
                                                                  "når (hdfs://..., s3a://...); standard: en lokal temp-mappe."),
):
    """Valider, beregn utfall, tilpass modellen, publiser og revider; lagre kjøringen i --db."""
    from .api import ENGINES, run_indicator
    if engine not in ENGINES:  # before a Spark session is started
        _fail(f"Ukjent motor {engine!r}: velg duckdb eller spark.")
    session = None
    if engine == "spark":
        try:
            from .pipeline.spark import local_session
            session = local_session(spark_master)
        except ModuleNotFoundError as e:
            _fail(f"Spark-motoren trenger {e.name or 'pyspark'}: installer med «pip install pyspark» (og Java 17 eller nyere), "
                  "eller bruk --engine duckdb.")
    with progress_bar("Arbeidsindikatoren") as cb:
        r = run_indicator(data, config, db, keep_person_level=person_level, progress=cb, engine=engine, spark=session,
                          spark_workdir=spark_workdir)
    console.print(f"Kjøring {r.run_id} lagret i {db} ({norsk.integer(r.n_person_months)} personmåneder).", highlight=False)
    for o, res in r.model.results_.items():
        console.print(f"  {norsk.outcome(o)}: N = {norsk.integer(res.nobs)}, R² = {norsk.number(res.r2, 3)}"
                      + (f", {norsk.integer(res.n_missing)} utelatt for manglende verdier" if res.n_missing else "")
                      + (f", {len(res.notes)} merknad(er)" if res.notes else ""), highlight=False)
    if r.interrupted:
        console.print("Avbrutt etter at kjøringen var lagret; den er lagret og komplett.", highlight=False)
        raise typer.Exit(128 + r.interrupted)
    return r


# -- the monthly cycle: extracts, model versions, releases --------------------------------------
@command()
def kutt(
    data: Path = typer.Option(..., metavar="MAPPE", help="Verdenen (alle tabellene i datakontrakten)."),
    out: Path = typer.Option(..., metavar="MAPPE", help="Mappen uttrekket skrives til (erstattes helt)."),
    per: str = typer.Option(..., metavar="ÅÅÅÅ-MM", help="Måneden uttrekket tas ved utgangen av."),
    forsinkelse: int = typer.Option(1, metavar="MÅNEDER", help="Hvor mange måneder a-ordningen ligger etter (standard 1)."),
):
    """Skriv registeruttrekket slik det så ut ved utgangen av en måned: bestanden til måneden,
    arbeidstimer til måneden minus forsinkelsen."""
    from .data.extracts import cut_extract
    _month(per, "--per")
    path = cut_extract(data, out, per, forsinkelse)
    console.print(f"Skrev uttrekket per {per} til {path}.", highlight=False)


@command()
def publiser(
    data: Path = typer.Option(..., metavar="MAPPE", help="Uttrekket som publiseres (se «kutt»)."),
    db: Path = DB,
    modell: str = typer.Option(None, metavar="VERSJON", help="Modellversjonen; standard: versjonen i produksjon."),
):
    """Månedlig publisering: en frosset modellversjon på et nytt uttrekk. Ingenting estimeres på
    nytt; publiseringen lagres ved siden av de tidligere, som aldri endres."""
    from .api import run_indicator
    if not db.exists():
        _fail(f"Resultatbasen {db} finnes ikke. Estimer først en modell med «arbeidsindikator run --data MAPPE --db {db}».")
    with progress_bar("Publisering") as cb:
        r = run_indicator(data, db=db, progress=cb, model_version=modell if modell else True)
    console.print(f"Publisering {r.run_id} lagret i {db} med modellversjon {r.model_version} "
                  f"({norsk.integer(r.n_person_months)} personmåneder).", highlight=False)
    if r.interrupted:
        raise typer.Exit(128 + r.interrupted)


@command()
def publiseringer(db: Path = DB):
    """List publiseringene i resultatbasen: uttrekkets måned, modellversjon og tid."""
    from .pipeline.versions import list_releases
    rel = list_releases(db)
    if rel.empty:
        console.print(f"{db} har ingen publiseringer ennå (se «arbeidsindikator publiser»).", highlight=False)
        return
    _table(rel, "Publiseringer", {"release_id": ("publisering", str), "as_of": ("uttrekk per", str),
                                  "employment_observed_to": ("arbeidstimer til", str),
                                  "model_version": ("modellversjon", str), "created_at": ("laget", lambda v: f"{v:%Y-%m-%d %H:%M}")})


@command()
def revisjoner(
    fra: str = typer.Option(..., "--fra", metavar="KJØRING", help="Den eldre publiseringen (eller kjøringen); "
                                                                  "«forrige»: den nest siste."),
    til: str = typer.Option(..., "--til", metavar="KJØRING", help="Den nyere; «siste»: den siste."),
    db: Path = DB,
    out: Path = typer.Option(None, metavar="FIL", help="Skriv hele revisjonstabellen som CSV."),
):
    """Revisjonene mellom to publiseringer: hver månedscelle som er ny, borte, prikket annerledes
    eller har endret verdi, med gammel og ny verdi og årsak."""
    from .data.spreadsheet import escape_frame
    from .pipeline.versions import REVISION_CAUSES, revisions
    d = revisions(db, fra, til)
    counts = d["AARSAK"].value_counts()
    if d.empty:
        console.print("Ingen celle er endret.", highlight=False)
    for k, n in counts.items():
        console.print(f"  {norsk.integer(n)}: {REVISION_CAUSES[k]}", highlight=False)
    if out is not None:
        escape_frame(d).to_csv(out, index=False)
        console.print(f"Skrev {out}", highlight=False)


@modell_app.command("liste")
@friendly
def modell_liste(db: Path = DB):
    """List modellversjonene: status (kandidat, produksjon, pensjonert), estimeringsperiode og tid."""
    from .pipeline.versions import list_versions
    v = list_versions(db)
    if v.empty:
        console.print(f"{db} har ingen modellversjoner ennå (hver «arbeidsindikator run» lager en).", highlight=False)
        return
    _table(v, "Modellversjoner", {"version": ("versjon", str), "status": ("status", str), "model_name": ("modell", str),
                                  "period_from": ("fra", lambda x: x or "–"), "period_to": ("til", lambda x: x or "–"),
                                  "created_at": ("laget", lambda t: f"{t:%Y-%m-%d %H:%M}")})


@modell_app.command("status")
@friendly
def modell_status(
    versjon: str = typer.Argument(..., metavar="VERSJON", help="Versjonen (se «modell liste»); «siste»: den nyeste."),
    status: str = typer.Argument(..., metavar="STATUS", help="kandidat, produksjon eller pensjonert."),
    db: Path = DB,
):
    """Sett en modellversjons status; en ny versjon i produksjon pensjonerer den forrige."""
    from .pipeline.versions import set_status
    set_status(db, versjon, status)
    console.print(f"Modellversjon {versjon} har status {status}.", highlight=False)


@modell_app.command("sammenlign")
@friendly
def modell_sammenlign(
    data: list[Path] = typer.Option(..., "--data", metavar="MAPPE", help="Dataene (gjenta for flere syntetiske "
                                    "verdener: målene får da spredning mellom verdenene)."),
    spesifikasjon: list[Path] = typer.Option(None, "--spesifikasjon", metavar="FIL", help="En modellspesifikasjon "
                                             "(TOML; gjenta), eller navnet på en som følger med (default, "
                                             "tilstromming-12m, ledige-stillinger, skift-andel, ledighet, "
                                             "ungdomsledighet). Standard: alle disse."),
    out: Path = typer.Option(Path("modellsammenligning"), metavar="MAPPE", help="Mappen resultatene skrives til "
                             "(erstattes helt)."),
):
    """Tilpass flere modellspesifikasjoner på de samme dataene og sammenlign dem: Navs akseptmål (stramhet,
    rangstabilitet, volatilitet, nasjonal SD) og, på en syntetisk verden, målene mot fasit."""
    from .analyses.model_comparison import ComparisonError
    from .present.model_comparison_report import write_model_comparison
    shipped = {p.stem: p for p in shipped_specs()}
    # a file that exists is taken as given; otherwise a shipped specification's name
    specs = [shipped.get(str(p), p) if not p.exists() else p for p in spesifikasjon or []] or list(shipped.values())
    try:  # a bad specification or data: the decorator's Norwegian messages
        path = write_model_comparison(specs, data, out, progress=lambda t: console.print(f"  {t}", highlight=False))
    except ComparisonError as e:
        _fail(f"Sammenligningen kan ikke kjøres: {e}")
    console.print(f"Skrev {path}", highlight=False)


@modell_app.command("overgang")
@friendly
def modell_overgang(
    fra: str = typer.Option("forrige", "--fra", metavar="KJØRING", help="Den gamle modellens kjøring eller publisering "
                            "(«forrige»: den nest nyeste)."),
    til: str = typer.Option("siste", "--til", metavar="KJØRING", help="Den nye modellens kjøring (en tilbakeberegning av "
                            "hele historikken; «siste»: den nyeste)."),
    db: Path = DB,
    out: Path = typer.Option(Path("modellovergang"), metavar="MAPPE", help="Mappen resultatene skrives til (erstattes helt)."),
):
    """Gammel og ny modell side om side: landets serie under begge og hvor mye endringen flytter tallene."""
    from .pipeline.versions import VersionError
    from .present.model_transition_report import write_model_transition
    try:
        path = write_model_transition(db, fra, til, out)
    except VersionError as e:
        _fail(f"Overgangen kan ikke lages: {e}.")
    console.print(f"Skrev {path}", highlight=False)


def shipped_specs() -> list[Path]:
    """The specifications that come with the package: Nav's model first, then its variants."""
    from importlib import resources
    folder = Path(str(resources.files("arbeidsindikator.pipeline").joinpath("configs")))
    return sorted(folder.glob("*.toml"), key=lambda p: (p.name != "default.toml", p.name))


@command()
def export(
    db: Path = DB,
    out: Path = typer.Option(Path("publisert"), metavar="FIL", help="Filnavn uten endelse: <FIL>.csv og .parquet "
                             "(måneder), <FIL>_perioder.csv og .parquet, <FIL>.manifest.json."),
    run_id: str = typer.Option(None, metavar="ID", help="Kjøringen som eksporteres (standard: den siste)."),
    tabell: str = typer.Option("begge", metavar="TABELL", help="maaned, periode eller begge."),
):
    """Eksporter de publiserte tabellene for en kjøring (CSV og Parquet) med et manifest."""
    from .pipeline.publish import EXPORT_TABLES, export_run
    if tabell not in (*EXPORT_TABLES, "begge"):
        _fail(f"Ukjent tabell {tabell!r}: velg maaned, periode eller begge.")
    if not db.exists():
        _fail(f"Resultatbasen {db} finnes ikke. Kjør først «arbeidsindikator run».")
    files = export_run(db, out, run_id, tuple(EXPORT_TABLES) if tabell == "begge" else (tabell,))
    console.print("Skrev " + ", ".join(str(f) for f in files))


@command()
def enheter(db: Path = DB):
    """Vis enhetene i den siste kjøringen: landet, regionene og kontorene, med nedlagte kontor og etterfølgeren."""
    u = _results(db).units()
    _table(u, "Enheter", {
        "ORG_NIVAA": ("nivå", lambda v: norsk.LEVEL[int(v)]), "ORG_STED_ID": ("nummer", str), "ORG_STED": ("navn", str),
        "FORSTE_MAANED": ("fra", lambda v: norsk.month(v, short=True)), "SISTE_MAANED": ("til", lambda v: norsk.month(v, short=True)),
        "ETTERFOLGER": ("slått sammen med", lambda v: "" if v is None or v != v else str(v))})


@command()
def revisjon(
    db: Path = DB,
    run_id: str = typer.Option(None, metavar="ID", help="Kjøringen som revideres (standard: den siste)."),
    intervaller: int = typer.Option(0, metavar="TALL", help="Regn ut angriperens intervall (lineær programmering) for så mange "
                                                            "prikkede celler per utfall; opptil et halvt minutt per celle "
                                                            "i store sammenhengende mønstre."),
):
    """Avsløringsrevisjon: angrip de publiserte tabellene og vis hver prikket verdi som kan regnes ut (exit 1 hvis noen)."""
    import pandas as pd
    from rich.table import Table

    from .pipeline.audit import audit
    res = _results(db)
    rid = res.run_id(run_id)
    tables = {t: res.con.execute(f"SELECT * EXCLUDE (run_id) FROM {t} WHERE run_id = ?", [rid]).df()
              for t in ("published", "published_period")}
    has_witness = res.con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'disclosure_witness'").fetchall()[0][0]
    witness = (res.con.execute("SELECT * EXCLUDE (run_id) FROM disclosure_witness WHERE run_id = ?", [rid]).df()
               if has_witness else None)
    with console.status("Angriper de publiserte tabellene ..."):
        result = audit(tables["published"], tables["published_period"], witness, intervals=intervaller)
    t = Table(title=f"Avsløringsrevisjon av kjøring {rid}")
    for c in ("utfall", "celler", "prikket", "relasjoner", "funnet ved differanser", "bevist (vitne)", "bevist (numerisk)",
              "bestemt"):
        t.add_column(c, justify="right")
    for r in result.summary().itertuples(index=False):
        t.add_row(*[norsk.integer(v) if isinstance(v, (int,)) or hasattr(v, "dtype") else str(v) for v in r])
    console.print(t)
    if result.witness_ok is False:
        console.print("[yellow]Vitnet i resultatbasen stemmer ikke med tabellene; cellene ble avgjort numerisk.[/]")
    if intervaller:
        frames = [o.intervals for o in result.outcomes if o.intervals is not None]
        iv = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if len(iv):
            point = int((iv["ovre"] - iv["nedre"] <= 1e-9).sum())
            console.print(f"Intervaller for {norsk.integer(len(iv))} prikkede celler: {point} er festet til ett punkt; "
                          f"median bredde {norsk.number(float((iv['ovre'] - iv['nedre']).median()), 1)} (sum av faktisk utfall).",
                          highlight=False)
    bounded = _bounded_summary(res, rid)
    history = _history_summary(res, rid)
    if not result.passed:
        det = result.determined
        console.print(f"[red]{norsk.integer(len(det))} prikkede celler kan regnes ut fra de publiserte tabellene.[/] De første:")
        console.print(det.head(10).to_string(index=False))
        raise typer.Exit(1)
    if bounded:
        console.print(f"[red]{norsk.integer(bounded)} prikkede celler avgrenses for snevert av en angriper som kjenner grensene.[/]")
        raise typer.Exit(1)
    if history:
        console.print(f"[red]{norsk.integer(history)} celler er publisert i én publisering og prikket i en annen; "
                      "revisjonen dekker ikke publiseringene samlet.[/]")
        raise typer.Exit(1)
    console.print("[green]Ingen prikket verdi følger av de publiserte tabellene, heller ikke med grensene "
                  "(hele tall, 0 <= i jobb <= antall).[/]")


def _history_summary(res, rid: str) -> int:
    """A release against every release before it (carry.py): it must hold their published cells
    unchanged and keep their suppressed cells suppressed, so that this audit covers them all.
    Returns how many cells break that."""
    from .pipeline.carry import history_check
    h = history_check(res.con, rid)
    if h.empty:
        return 0
    bad = int(h["skjult_senere"].sum() + h["vist_senere"].sum())
    if not bad:
        console.print(f"Publiseringen holder alle {len(h)} tidligere publiseringer: hver celle de publiserte, er publisert "
                      "med samme verdi, og hver celle de prikket, er prikket.", highlight=False)
    else:
        console.print(f"Mot {len(h)} tidligere publiseringer: {norsk.integer(int(h['skjult_senere'].sum()))} celler "
                      f"publisert før er prikket eller endret nå, {norsk.integer(int(h['vist_senere'].sum()))} prikket "
                      "før er publisert nå.", highlight=False)
    return bad


def _bounded_summary(res, rid: str) -> int:
    """The bounded attacker's intervals stored with the run (disclosure.py, attacker.py): per
    outcome, the narrowest intervals. Returns how many cells they disclose."""
    from rich.table import Table
    has = res.con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'disclosure_intervals'").fetchall()[0][0]
    if not has:
        console.print("[yellow]Kjøringen er laget før grenseangrepet ble revidert; intervallene mangler.[/]")
        return 0
    df = res.con.execute("""
        SELECT UTFALL, STORRELSE, count(*) AS celler, min(OVRE - NEDRE) AS smalest,
               count(*) FILTER (WHERE OVRE - NEDRE < 0.5) AS festet,
               count(*) FILTER (WHERE STORRELSE = 'antall' AND OVRE < ?) AS under_grensen
        FROM disclosure_intervals WHERE run_id = ? GROUP BY ALL ORDER BY UTFALL, STORRELSE""",
                         [_threshold_of(res, rid), rid]).df()
    t = Table(title="Angriper som kjenner grensene: intervaller for de prikkede cellene")
    for c in ("utfall", "størrelse", "celler", "smaleste intervall", "festet", "bevist under grensen"):
        t.add_column(c, justify="right")
    for r in df.itertuples(index=False):
        t.add_row(r.UTFALL, "antall" if r.STORRELSE == "antall" else "sum (i jobb / timer)", norsk.integer(r.celler),
                  norsk.number(float(r.smalest), 1), norsk.integer(r.festet), norsk.integer(r.under_grensen))
    console.print(t)
    return int(df["festet"].sum() + df["under_grensen"].sum())


def _threshold_of(res, rid: str) -> int:
    from .pipeline.config import parse_spec
    toml = res.con.execute("SELECT config_toml FROM runs WHERE run_id = ?", [rid]).fetchall()[0][0]
    return parse_spec(toml).min_persons


@command()
def validity(data: Path = typer.Option(..., metavar="MAPPE", help="Den syntetiske verdenen (med truth/)."), db: Path = DB):
    """Indikatoren mot verdenens fasit: korrelasjon per kontor og år, og hvor ofte 95 %-intervallene for kontor-måneder
    og kontor-år dekker det sanne bidraget."""
    from rich.table import Table

    from .analyses.validity import coverage, office_year_correlations
    if not db.exists():
        _fail(f"Resultatbasen {db} finnes ikke. Kjør først «arbeidsindikator run».")
    if not data.is_dir():
        _fail(f"Mappen {data} finnes ikke.")
    t = Table(title="Validitet: kontor x år mot sann kontoreffekt")
    for c in ("utfall", "kontorår", "r indikator", "r faktisk rate", "RMSE indikator"):
        t.add_column(c, justify="right")
    for o, v in office_year_correlations(data, db).items():
        t.add_row(norsk.outcome(o, short=True), norsk.integer(v["office_years"]), norsk.number(v["r_indicator"], 3),
                  norsk.number(v["r_actual"], 3), norsk.number(v["rmse_indicator"], 3))
    console.print(t)
    c = Table(title="Dekning: andel 95 %-intervaller som inneholder den sanne kontoreffekten (z = feil / standardfeil)")
    for col in ("celler", "utfall", "antall", "dekning", "sd(z)", "snitt(z)"):
        c.add_column(col, justify="right")
    for r in coverage(data, db).itertuples(index=False):
        c.add_row(r.celler, norsk.outcome(r.UTFALL, short=True), norsk.integer(r.antall), norsk.percent(100 * r.dekning_95),
                  norsk.number(r.sd_z, 2), norsk.number(r.snitt_z, 2, sign=True))
    console.print(c)
    console.print(_validity_reading(data), highlight=False)


def _validity_reading(data: Path) -> str:
    """How to read the coverage: only a clean world can show it (issue 31)."""
    import json
    world = data / "truth" / "world.json"
    clean = json.loads(world.read_text(encoding="utf-8")).get("clean") if world.exists() else None
    if clean:
        return ("Verdenen er «ren» (--clean): med riktige standardfeil dekker 95 %-intervallene om lag 95 % "
                "og sd(z) er om lag 1.")
    return ("Verdenen er realistisk: brukerne har skjulte egenskaper som modellen ikke ser, og det kommer sjokk i "
            "arbeidsmarkedet. Da måler indikatoren kontorets bidrag pluss disse, og intervallene kan ikke dekke det "
            "sanne bidraget 95 % av gangene; lav dekning her er ikke feil i standardfeilene. Dekningen prøves på en "
            "ren verden: arbeidsindikator synth --clean.")


# -- reading the published numbers ----------------------------------------------------------
@command()
def indeks(
    unit: str = UNIT, outcome: str = OUTCOME,
    reference: str = typer.Option(..., metavar=MONTH, help="Referansemåneden (indeks 0 der)."),
    breakdown: str = BREAKDOWN, group: str = GROUP, db: Path = DB,
    out: Path = typer.Option(None, metavar="FIL", help="Skriv også tabellen som CSV."),
):
    """Endringsindeks fra en referansemåned, med 95 %-intervall (tillatt for alle nedbrytninger)."""
    df = _results(db).index_of_change(unit, outcome, _month(reference, "--reference"), breakdown, group)
    _table(df, f"Endringsindeks for {df['ORG_STED'].iloc[0]}, {norsk.outcome(outcome)}, {norsk.group(group)} "
               f"(referanse {norsk.month(reference + '-01')})",
           {"BEHOLDNINGSMAANED": ("måned", lambda v: norsk.month(v, short=True)),
            "ENDRINGSINDEKS": ("indeks (%)", lambda v: norsk.number(v, 1, sign=True)),
            "ENDRINGSINDEKS_KI_NEDRE": ("95 % KI fra", lambda v: norsk.number(v, 1)),
            "ENDRINGSINDEKS_KI_OVRE": ("til", lambda v: norsk.number(v, 1))}, out)


@command()
def sammenlign(
    unit: str = UNIT, outcome: str = OUTCOME,
    breakdown: str = typer.Option(..., "--breakdown", metavar="NEDBRYTNING",
                                  help="En nedbrytning som ikke er med i modellen: Innsatsgruppe eller Ungdomsgaranti."),
    month: str = typer.Option(None, metavar=MONTH, help="Måned."),
    period: str = typer.Option(None, metavar="PERIODE", help="Periode, for eksempel 2023 eller «hele perioden»."),
    db: Path = DB,
):
    """Sammenlign nivået mellom gruppene i en nedbrytning (avvist for nedbrytninger som er med i modellen)."""
    res = _results(db)
    df = res.compare_levels(unit, outcome, breakdown, month=_month(month, "--month"), period=period)
    time_col = "PERIODE" if period else "BEHOLDNINGSMAANED"
    fmt = {time_col: ("periode" if period else "måned", (str if period else (lambda v: norsk.month(v, short=True)))),
           "GRUPPE": ("gruppe", norsk.group), "ANTALL_PERSONER": ("personer", norsk.integer),
           "faktisk": (f"faktisk ({norsk.LEVEL_UNIT[outcome]})", lambda v: norsk.number(v, 2)),
           "forventet": ("forventet", lambda v: norsk.number(v, 2)),
           "INDIKATOR": (f"indikator ({norsk.INDICATOR_UNIT[outcome]})", lambda v: norsk.number(v, 2, sign=True)),
           "INDIKATOR_KI_NEDRE": ("95 % KI fra", lambda v: norsk.number(v, 2)),
           "INDIKATOR_KI_OVRE": ("til", lambda v: norsk.number(v, 2))}
    _table(df, f"{norsk.breakdown(breakdown)}: {res.unit(unit)['ORG_STED']}, {norsk.outcome(outcome)}", fmt)


@command()
def funnel(
    level: int = typer.Option(3, metavar="NIVÅ", help="2 regioner, 3 kontor."),
    outcome: str = typer.Option("jobb3", "--outcome", metavar="UTFALL", help="atid3, atid12, jobb3 eller jobb12."),
    month: str = typer.Option(None, metavar=MONTH, help="Måned."),
    period: str = typer.Option(None, metavar="PERIODE", help="Periode, for eksempel 2023."),
    region: str = typer.Option(None, metavar="REGION", help="Bare kontorene i denne regionen."),
    db: Path = DB, out: Path = typer.Option(None, metavar="FIL", help="Skriv også tabellen som CSV."),
):
    """Traktplott: enhetene mot antall personer, med 95 %- og 99,8 %-kontrollgrenser (ingen rangering)."""
    if not (month or period):
        _fail("Oppgi --month ÅÅÅÅ-MM eller --period, for eksempel --period 2023.")
    df = _results(db).funnel(level, outcome, month=_month(month, "--month"), period=period, region=region)
    if df.empty:
        _fail("Ingen publiserte enheter å vise for dette valget.")
    side = {"over": "over", "under": "under", "": ""}
    _table(df, f"Traktplott: {norsk.outcome(outcome)} ({month or period}); mellomvarians "
               f"{norsk.number(df['MELLOMVARIANS'].iloc[0], 3)}",
           {"ORG_STED": ("enhet", str), "ANTALL_PERSONER": ("personer", norsk.integer),
            "INDIKATOR": (f"indikator ({norsk.INDICATOR_UNIT[outcome]})", lambda v: norsk.number(v, 2, sign=True)),
            "GRENSE_95_NEDRE": ("95 %-grense fra", lambda v: norsk.number(v, 2)),
            "GRENSE_95_OVRE": ("til", lambda v: norsk.number(v, 2)),
            "UTENFOR_95": ("utenfor 95 %", lambda v: side.get(v, v)), "UTENFOR_998": ("utenfor 99,8 %", lambda v: side.get(v, v))},
           out)


@command()
def arbeidsvolum(
    unit: str = typer.Option(..., "--unit", metavar="ENHET", help="«Norge», en region eller et kontor (navn eller nummer)."),
    month: str = typer.Option(..., metavar=MONTH, help="Måned."),
    outcome: str = typer.Option("atid3", "--outcome", metavar="UTFALL", help="atid3 eller atid12 (arbeidstid; "
                                                                             "jobb-utfallene er andeler, ikke timer)."),
    db: Path = DB,
):
    """Indikatoren som ekstra (eller manglende) timer per uke og årsverk for en enhet i en måned."""
    v = _results(db).work_volume(unit, _month(month, "--month"), outcome)
    console.print(f"{v['unit']}, {norsk.month(v['month'])}: {norsk.integer(v['persons'])} brukere × "
                  f"{norsk.number(v['indicator_hours_per_week'], 3, sign=True)} timer per uke = "
                  f"{norsk.number(v['extra_hours_per_week'], 0, sign=True)} timer per uke = "
                  f"{norsk.number(v['fte'], 1, sign=True)} årsverk ({v['conversion']}).", highlight=False)


# -- what people read ------------------------------------------------------------------------
@command()
def page(db: Path = DB, out: Path = typer.Option(Path("index.html"), metavar="FIL", help="HTML-filen som skrives.")):
    """Skriv en enkel nettside: landet og én region over tid, faktisk og forventet per innsatsgruppe."""
    from .present.page import write_page
    _results(db)
    console.print(f"Skrev {write_page(db, out)}")


@command()
def report(
    unit: str = UNIT, db: Path = DB,
    out: Path = typer.Option(Path("rapporter"), metavar="MAPPE", help="Mappen rapporten og figurene skrives til."),
    reference: str = typer.Option(None, metavar=MONTH, help="Referansemåned for endringsindeksen (standard: et år før "
                                                            "enhetens siste måned)."),
):
    """Selvstendig HTML-rapport for en enhet (åpnes uten nett), med figurer som SVG og PNG."""
    from .present.report import write_report
    _results(db).unit(unit)
    console.print(f"Skrev {write_report(db, unit, out, _month(reference, '--reference'))}")


@command()
def serve(
    db: Path = DB,
    host: str = typer.Option("127.0.0.1", metavar="ADRESSE", help="Adressen dashbordet lytter på; alt annet enn "
                                                                  "loopback krever --token."),
    port: int = typer.Option(8000, metavar="PORT", help="Porten dashbordet lytter på."),
    token: str = typer.Option(None, metavar="TOKEN", envvar="ARBEIDSINDIKATOR_TOKEN",
                              help="Token som kreves på alle sider (Authorization: Bearer <token>; nettleseren spør etter "
                                   "det som passord). Påkrevd når adressen ikke er loopback."),
):
    """Start dashbordet: et JSON-API (beskrivelse på /docs) og nettsiden, bare fra publiserte tabeller."""
    import uvicorn

    from .present.dashboard import create_app, is_loopback
    if not is_loopback(host) and not token:
        _fail(f"Dashbordet bindes til {host}, som ikke er loopback; oppgi --token (eller ARBEIDSINDIKATOR_TOKEN).")
    _results(db)
    console.print(f"Dashbord: http://{host}:{port}/  (API-beskrivelse: http://{host}:{port}/docs)")
    uvicorn.run(create_app(db, token), host=host, port=port, log_level="warning")


@command()
def demo(
    out: Path = typer.Option(Path("demo-output"), metavar="MAPPE", help="Mappen alt demoen lager skrives til."),
    scale: str = typer.Option("medium", metavar="STØRRELSE", help="Størrelsen på den syntetiske verdenen: small, "
                                                                  "medium (standard) eller national."),
    seed: int = typer.Option(1, metavar="TALL", help="Frø for verdenen."),
):
    """Hele kjeden på en syntetisk verden: data, indikator, publiserte tabeller, nettside, rapporter."""
    import time

    from .data.synth.params import SCALES
    if scale not in SCALES:
        _fail(f"Ukjent størrelse {scale!r}; velg {', '.join(SCALES)}.")

    from .api import run_indicator
    from .present.page import write_page
    from .pipeline.publish import export, export_run
    from .present.report import write_report
    from .data.synth import generate_world
    from .analyses.calibration import calibration_report, report_table
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
    console.print("3/3 Publisering, nettside og rapporter")
    files = export_run(db, out / "publisert", r.run_id)
    import duckdb
    con = duckdb.connect(str(db), read_only=True)
    files += export(con, "SELECT * EXCLUDE (run_id) FROM coefficients WHERE run_id = ? ORDER BY response_variable, variable",
                    out / "koeffisienter", ("csv",), params=[r.run_id])
    con.close()
    page_path = write_page(db, out / "index.html")
    res = _results(db)
    regions = res.units()
    regions = regions[(regions["ORG_NIVAA"] == 2) & (regions["ORG_STED_ID"] != "NOE")]
    sizes = res.published(ORG_NIVAA=2, NEDBRYTNING="Alle", UTFALL="atid3").groupby("ORG_STED_ID")["ANTALL_PERSONER"].sum()
    region = regions.set_index("ORG_STED_ID").loc[sizes.drop("NOE", errors="ignore").idxmax(), "ORG_STED"]
    res.close()
    reports = [write_report(db, u, out / "rapporter") for u in ("Norge", region)]
    evaluation = _demo_evaluation(data, db, out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    console.print(f"\n[bold green]Ferdig på {norsk.number(time.perf_counter() - t0, 0)} s.[/] Dette ble skrevet "
                  f"({norsk.number(size / 1e6, 0)} MB i alt):")
    console.print(f"  Syntetiske registerdata (Parquet): {data}/  (fasit i {data}/truth/)")
    console.print(f"  Resultatdatabase (DuckDB):          {db}  (kjøring {r.run_id})")
    for f in files:
        console.print(f"  Tabell:                             {f}")
    console.print(f"  Nettside:                           {page_path}")
    for rp in reports:
        console.print(f"  Rapport:                            {rp}")
    if evaluation:
        console.print(f"  Evaluering (kutt i tiltaksplasser): {evaluation}  (oppsett: {out / 'evaluering.toml'})")
    console.print(f"\nLag rapport for en annen enhet: .venv/bin/arbeidsindikator report --db {db} --unit <navn> "
                  f"--out {out / 'rapporter'}")
    console.print(f"Start dashbordet: .venv/bin/arbeidsindikator serve --db {db}   (åpne http://127.0.0.1:8000/)")


DEMO_EVALUATION = """[evaluation]
name = "Kutt i tiltaksplasser"
outcome = "jobb3"
level = 2                  # regions
from = "2022-01"
treatment = "tiltak_kutt.csv"   # the share of places each region lost, per month (from programme_places)
dose = "kutt"
weighted = true
bootstrap = 999
bootstrap_weights = "webb"
seed = 1
placebo_shifts = [6, 12]
exclude = ["NOE"]          # NOE follows users nationally: it is no region
"""


def _demo_evaluation(data: Path, db: Path, out: Path) -> Path | None:
    """The world's programme cuts evaluated as a user would: a treatment table and a
    configuration beside the outputs, and the report. None if the world has no cuts."""
    from .analyses.evaluation.twfe import EvaluationError
    from .analyses.evaluation.policy_truth import programme_cut_treatment
    from .data import atomic
    from .present.evaluation_report import write_evaluation
    try:
        treatment = programme_cut_treatment(data)
    except EvaluationError:
        return None
    treatment.assign(month=treatment["month"].dt.strftime("%Y-%m")).to_csv(out / "tiltak_kutt.csv", index=False)
    atomic.write_text(out / "evaluering.toml", DEMO_EVALUATION)
    return write_evaluation(db, out / "evaluering.toml", out / "evaluering")


@analyse_app.command("ressurser")
@friendly
def analyse_ressurser(
    db: Path = typer.Option(Path("arbeidsindikator.duckdb"), metavar="FIL",
                            help="Resultatbasen med en kjøring lagret på personnivå (run --person-level)."),
    data: Path = typer.Option(..., metavar="MAPPE", help="Mappen med tabellene i datakontrakten (stock, municipalities, "
                                                         "office_hr)."),
    out: Path = typer.Option(Path("ressurser"), metavar="MAPPE", help="Mappen resultatene skrives til (erstattes helt)."),
    run_id: str = typer.Option(None, metavar="ID", help="Kjøringen som analyseres (standard: den siste)."),
    se: str = typer.Option("cluster", metavar="TYPE", help="Standardfeil i tabellene: classical, robust eller cluster "
                                                           "(klynget per kontor)."),
):
    """Sykefravær og bemanning mot kontorindikatoren (Dahl 2025): tabeller, figurer og metodenotat."""
    from .analyses.resources import ResourcesError
    from .present.resources_report import write_resources_analysis
    if not db.exists():
        _fail(f"Resultatbasen {db} finnes ikke. Kjør først «arbeidsindikator run --person-level».")
    try:
        path = write_resources_analysis(db, data, out, run_id, se)
    except ResourcesError as e:
        _fail(str(e))
    console.print(f"Skrev {path}")


@analyse_app.command("flyttere")
@friendly
def analyse_flyttere(
    db: Path = typer.Option(Path("arbeidsindikator.duckdb"), metavar="FIL",
                            help="Resultatbasen med en kjøring lagret på personnivå (run --person-level)."),
    run_id: list[str] = typer.Option(None, "--run-id", metavar="ID", help="Kjøringen som prøves (gjenta for flere "
                                     "modellversjoner; standard: den siste på personnivå)."),
    data: Path = typer.Option(None, metavar="MAPPE", help="En syntetisk verden (med truth/): gir fasitens koeffisient."),
    utfall: list[str] = typer.Option(None, "--utfall", metavar="UTFALL", help="Utfall (gjenta; standard: alle)."),
    out: Path = typer.Option(Path("flyttere"), metavar="MAPPE", help="Mappen resultatene skrives til (erstattes helt)."),
):
    """Forutsier indikatoren hva et kontor gjør for en bruker? Prognoseskjevhetstest med brukere som bytter kontor."""
    from .analyses.movers import MoversError
    from .present.movers_report import write_movers
    try:
        path = write_movers(db, out, run_id or None, data, utfall or None)
    except MoversError as e:
        _fail(f"Flyttertesten kan ikke kjøres: {e}.")
    console.print(f"Skrev {path}")


@analyse_app.command("evaluering")
@friendly
def analyse_evaluering(
    config: Path = typer.Option(..., "--config", metavar="FIL", help="Evalueringens TOML-fil ([evaluation]: utfall, "
                                "nivå, behandlingstabell, dose eller adopsjon, bootstrap; se docs/evaluation.md)."),
    db: Path = DB,
    out: Path = typer.Option(Path("evaluering"), metavar="MAPPE", help="Mappen resultatene skrives til (erstattes helt)."),
):
    """Effekten av et tiltak på indikatoren med få klynger: TWFE, villkluster-bootstrap, hendelsesstudie, robusthet."""
    from .analyses.evaluation.twfe import EvaluationError
    from .present.evaluation_report import write_evaluation
    if not db.exists():
        _fail(f"Resultatbasen {db} finnes ikke. Kjør først «arbeidsindikator run».")
    try:
        path = write_evaluation(db, config, out)
    except EvaluationError as e:
        _fail(f"Evalueringen kan ikke kjøres: {e}")
    console.print(f"Skrev {path}")


def _data_analysis(name: str, data: Path, write, errors: tuple) -> None:
    """An analysis of a data directory: the directory must exist; the analysis's own errors
    become one Norwegian line (exit 2); the report's path is printed."""
    if not data.is_dir():
        _fail(f"Datamappen {data} finnes ikke.")
    try:
        path = write()
    except errors as e:
        _fail(f"{name} kan ikke kjøres: {e}")
    console.print(f"Skrev {path}")


@analyse_app.command("forlop")
@friendly
def analyse_forlop(
    data: Path = typer.Option(..., "--data", metavar="MAPPE", help="Mappen med tabellene i datakontrakten (med "
                              "programme_participation hvis tiltak skal telle som avgang)."),
    out: Path = typer.Option(Path("forlop"), metavar="MAPPE", help="Mappen resultatene skrives til (erstattes helt)."),
    config: Path | None = typer.Option(None, "--config", metavar="FIL", help="TOML med [spells] (forløpsregler) og "
                                       "[cohorts] (før, etter, horisonter); se docs/spells.md."),
):
    """Oppfølgingsforløp og NOE-evalueringen: forløp, livstabeller, Cox, før/etter mot fasit."""
    from .analyses.spells.build import SpellError
    from .analyses.spells.survival import SurvivalError
    from .present.spells_report import write_spells_report
    _data_analysis("Forløpsanalysen", data, lambda: write_spells_report(data, out, config), (SpellError, SurvivalError))


@analyse_app.command("tidsbruk")
@friendly
def analyse_tidsbruk(
    data: Path = typer.Option(..., "--data", metavar="MAPPE", help="Mappen med tabellene (med time_use: ressurskartleggingen)."),
    out: Path = typer.Option(Path("tidsbruk"), metavar="MAPPE", help="Mappen resultatene skrives til (erstattes helt)."),
    innsatsteam: float = typer.Option(0.0, "--innsatsteam", metavar="ÅRSVERK",
                                      help="Innsatsteamenes årsverk, lagt til det første årets standardinnsats."),
):
    """Årsverk til arbeidsrettet oppfølging per innsatsgruppe og år, endring og årsverk per 1 000 brukere."""
    from .analyses.surveys.design import SurveyError
    from .present.survey_report import write_time_use_report
    if not (0 <= innsatsteam < 1e6):  # NaN fails every comparison; inf is no number of FTEs
        _fail(f"--innsatsteam må være et antall årsverk fra 0 og oppover, ikke {innsatsteam}.")
    _data_analysis("Tidsbruksanalysen", data, lambda: write_time_use_report(data, out, innsatsteam), (SurveyError,))


@analyse_app.command("undersokelse")
@friendly
def analyse_undersokelse(
    data: Path = typer.Option(..., "--data", metavar="MAPPE", help="Mappen med undersøkelsestabellene (survey_*)."),
    out: Path = typer.Option(Path("undersokelse"), metavar="MAPPE", help="Mappen resultatene skrives til (erstattes helt)."),
):
    """Kontor-, bruker- og oppfølgingsundersøkelsene: skalaer, grupper, regresjoner og svarprosent."""
    from .analyses.surveys.design import SurveyError
    from .present.survey_report import write_survey_report
    _data_analysis("Undersøkelsesanalysen", data, lambda: write_survey_report(data, out), (SurveyError,))


if __name__ == "__main__":
    app()
