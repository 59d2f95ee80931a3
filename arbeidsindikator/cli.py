"""Command line: a thin layer over the Python API (`arbeidsindikator.api`)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .validate import ValidationError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Arbeidsindikatoren: synthetic Nav world, the indicator, and its publication.")
console = Console()


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
    clean: bool = typer.Option(False, "--clean", help="No unobserved person traits correlated with the office."),
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


if __name__ == "__main__":
    app()
