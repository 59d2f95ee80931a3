"""Norwegian for the command-line framework's own words (typer and the copy of click it carries).

typer writes its help headings ("Usage:", "Options", "[required]") and its argument errors
("Error: Missing option '--data'.") in English, and an argument error takes four lines (usage,
hint, blank, error). Our users read Norwegian: `install()` translates what a user can meet and
makes an argument error one line, "Feil: <what is wrong>. Se «<command> --help».", exit code 2.
typer ships no Norwegian catalogue (its click copy has no gettext at all), hence these tables;
a message that is not in them stays as typer wrote it.
"""

from __future__ import annotations

import re

import typer._click.exceptions as click_exceptions
import typer._click.formatting as click_formatting
import typer._click.utils as click_utils
import typer.core

# what typer.core passes through gettext, and the help option's text
MESSAGES = {
    "Arguments": "Argumenter",
    "Options": "Valg",
    "Commands": "Kommandoer",
    "Missing command.": "Mangler kommando.",
    "No such command {name!r}.": "Ukjent kommando {name!r}.",
    "required": "påkrevd",
    "default: {default}": "standard: {default}",
    "env var: {var}": "miljøvariabel: {var}",
    "(dynamic)": "(beregnes)",
    "Aborted!": "Avbrutt.",
    "Show this message and exit.": "Vis denne hjelpen og avslutt.",
}


# the rest is written without gettext: translated whole
PATTERNS = [(re.compile(p), r) for p, r in (
    (r"^Missing option (.+?)\.", r"Mangler valget \1."),
    (r"^Missing argument (.+?)\.", r"Mangler argumentet \1."),
    (r"^Missing parameter: (.+)$", r"Mangler parameteren \1"),
    (r"^Missing command\.", "Mangler kommando."),
    (r"Option (.+?) requires an argument\.", r"Valget \1 trenger en verdi."),
    (r"Option (.+?) requires (\d+) arguments\.", r"Valget \1 trenger \2 verdier."),
    (r"Option (.+?) does not take a value\.", r"Valget \1 tar ingen verdi."),
    (r"^No such command (.+?)\.", r"Ukjent kommando \1."),
    (r"^No such option: (.+?)(?=\s*(Did you mean|\(Possible options|$))", r"Ukjent valg: \1"),
    (r"Did you mean (.+?)\?", r"Mente du \1?"),
    (r"\(Possible options: (.+?)\)", r"(Mulige valg: \1)"),
    (r"Got unexpected extra argument\(s\) \((.+)\)", r"Uventede ekstra argumenter (\1)"),
    (r"^Invalid value for (.+?): ", r"Ugyldig verdi for \1: "),
    (r"^Invalid value: ", "Ugyldig verdi: "),
    (r"Value (.+?) is not a valid integer\.", r"\1 er ikke et gyldig heltall."),
    (r"Value (.+?) is not a valid float\.", r"\1 er ikke et gyldig desimaltall."),
    (r"Value (.+?) is not a valid (\w+)\.", r"\1 er ikke en gyldig verdi (\2)."),
    (r"(.+?) is not a valid integer\.", r"\1 er ikke et gyldig heltall."),
    (r"Input should be a valid integer.*$", "må være et heltall."),
    (r"Input should be a valid number.*$", "må være et tall."),
    (r"Input should be a valid boolean.*$", "må være true eller false."),
    (r"(.+?) is not one of (.+)\.", r"\1 er ikke blant \2."),
    (r"(.+?) is not in the range (.+)\.", r"\1 er utenfor området \2."),
    (r"\bPath (.+?) does not exist\.", r"Stien \1 finnes ikke."),
    (r"\bFile (.+?) does not exist\.", r"Filen \1 finnes ikke."),
    (r"\bDirectory (.+?) does not exist\.", r"Mappen \1 finnes ikke."),
)]


def translate(message: str) -> str:
    """An error message of the framework in Norwegian (as far as the table knows it)."""
    for pattern, replacement in PATTERNS:
        message = pattern.sub(replacement, message)
    return message


def gettext(message: str) -> str:
    return MESSAGES.get(message, message)


def _one_line(self: click_exceptions.ClickException, file=None) -> None:
    """An argument error as one line on standard error: what is wrong, and where help is."""
    ctx = getattr(self, "ctx", None)
    hint = ""
    if ctx is not None and ctx.command.get_help_option(ctx) is not None:
        hint = f" Se «{ctx.command_path} --help»."
    message = translate(" ".join(self.format_message().split()))  # choices come on lines of their own
    if hint and not message.endswith((".", "?", "!")):
        message += "."
    click_utils.echo(f"Feil: {message}{hint}", file=file, err=file is None)


def install() -> None:
    """Norwegian messages, and one-line argument errors, for this process's command line."""
    typer.core._ = gettext  # typer's headings (Arguments, Options, Commands), [required], two errors
    click_exceptions.ClickException.show = _one_line
    click_exceptions.UsageError.show = _one_line
    formatter = click_formatting.HelpFormatter
    if getattr(formatter, "_norsk", False):
        return
    write_usage, write_dl = formatter.write_usage, formatter.write_dl

    def usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        args = args.replace("[OPTIONS]", "[VALG]").replace("COMMAND", "KOMMANDO").replace("[ARGS]", "[ARGUMENTER]")
        write_usage(self, prog, args, "Bruk: " if prefix is None else prefix)

    def dl(self, rows, *a, **k) -> None:  # the help option's text
        write_dl(self, [(term, gettext(text)) for term, text in rows], *a, **k)
    formatter.write_usage, formatter.write_dl, formatter._norsk = usage, dl, True


__all__ = ["MESSAGES", "install", "translate"]
