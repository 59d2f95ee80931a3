"""Norwegian for the command-line framework's own words (click, under typer).

click writes its help headings ("Usage:", "Options") and its argument errors ("Error: Missing
option '--data'.") through gettext, in English, and an argument error takes four lines (usage,
hint, blank, error). Our users read Norwegian: `install()` gives click's message catalogue a
Norwegian translation for the messages a user can meet, and makes an argument error one line,
"Feil: <what is wrong>. Se «<command> --help».", exit code 2. click has no Norwegian catalogue
to load (it ships none), hence this table; a message that is not in it stays as click wrote it.
"""

from __future__ import annotations

import importlib
import re

import click

MESSAGES = {
    "Usage:": "Bruk:",
    "Options": "Valg",
    "Commands": "Kommandoer",
    "Positional arguments": "Argumenter",
    "Arguments": "Argumenter",
    "Show this message and exit.": "Vis denne hjelpen og avslutt.",
    "Show the version and exit.": "Vis versjonen og avslutt.",
    "Try '{command} {option}' for help.": "Se «{command} {option}».",
    "Error: {message}": "Feil: {message}",
    "Aborted!": "Avbrutt.",
    "Missing argument": "Mangler argument",
    "Missing command.": "Mangler kommando.",
    "Missing option": "Mangler valget",
    "Missing parameter": "Mangler parameter",
    "Missing parameter: {param_name}": "Mangler parameteren {param_name}",
    "Missing {param_type}": "Mangler {param_type}",
    "No such command {name!r}.": "Ukjent kommando {name!r}.",
    "No such option {name!r}.": "Ukjent valg {name!r}.",
    "No such option: {name}": "Ukjent valg: {name}",
    "Option {name!r} does not take a value.": "Valget {name!r} tar ingen verdi.",
    "Invalid value for {param_hint}: {message}": "Ugyldig verdi for {param_hint}: {message}",
    "Invalid value: {message}": "Ugyldig verdi: {message}",
    "{value!r} is not a valid {number_type}.": "{value!r} er ikke et gyldig {number_type}.",
    "{value!r} is not a valid UUID.": "{value!r} er ikke en gyldig UUID.",
    "{value!r} is not a valid boolean. Recognized values: {states}":
        "{value!r} er ikke en gyldig sannhetsverdi. Gyldige verdier: {states}",
    "{value} is not in the range {range}.": "{value} er utenfor området {range}.",
    "{name} {filename!r} does not exist.": "{name} {filename!r} finnes ikke.",
    "{name} {filename!r} is a directory.": "{name} {filename!r} er en mappe.",
    "{name} {filename!r} is a file.": "{name} {filename!r} er en fil.",
    "{name} {filename!r} is not readable.": "{name} {filename!r} kan ikke leses.",
    "{name} {filename!r} is not writable.": "{name} {filename!r} kan ikke skrives.",
    "{name} {filename!r} is not executable.": "{name} {filename!r} kan ikke kjøres.",
    "Could not open file {filename!r}: {message}": "Kan ikke åpne filen {filename!r}: {message}",
    "file": "Filen", "directory": "Mappen", "path": "Stien",
    "integer": "heltall", "float": "desimaltall", "text": "tekst", "boolean": "sannhetsverdi",
    "Choose from:\n\t{choices}": "Velg blant:\n\t{choices}",
    "default: {default}": "standard: {default}",
    "env var: {var}": "miljøvariabel: {var}",
    "deprecated": "utgått",
    "required": "påkrevd",
    "default": "standard",
    "unknown error": "ukjent feil",
    "Do you want to continue?": "Vil du fortsette?",
    "Value must be an iterable.": "Verdien må være en liste.",
    "Argument {name!r} takes {nargs} values.": "Argumentet {name!r} tar {nargs} verdier.",
}

PLURALS = {
    "Got unexpected extra argument ({args})": ("Uventet ekstra argument ({args})", "Uventede ekstra argumenter ({args})"),
    "Option {name!r} requires an argument.": ("Valget {name!r} trenger en verdi.", "Valget {name!r} trenger {nargs} verdier."),
    "{value!r} is not {choice}.": ("{value!r} er ikke {choice}.", "{value!r} er ikke blant {choices}."),
    "Did you mean {possibility}?": ("Mente du {possibility}?", "(Mente du en av: {possibilities}?)"),
    "{value!r} does not match the format {format}.": ("{value!r} har ikke formatet {format}.",
                                                      "{value!r} har ikke et av formatene {formats}."),
    "Takes {nargs} values but 1 was given.": ("Tar {nargs} verdier, men fikk 1.", "Tar {nargs} verdier, men fikk {len}."),
}


# typer's own copy of click writes its messages without gettext: they are translated whole
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


def ngettext(singular: str, plural: str, n: int) -> str:
    one, many = PLURALS.get(singular, (singular, plural))
    return one if n == 1 else many


def _one_line(self: click.exceptions.ClickException, file=None) -> None:
    """An argument error as one line on standard error: what is wrong, and where help is."""
    ctx = getattr(self, "ctx", None)
    hint = ""
    if ctx is not None and ctx.command.get_help_option(ctx) is not None:
        hint = " " + gettext("Try '{command} {option}' for help.").format(command=ctx.command_path, option="--help")
    message = translate(" ".join(self.format_message().split()))  # click's choices come on lines of their own
    if hint and not message.endswith((".", "?", "!")):
        message += "."
    click.echo(gettext("Error: {message}").format(message=message) + hint, file=file, err=file is None)


# typer carries its own copy of click (typer._click) beside the installed one: both get it
PACKAGES = ("click", "typer._click")
MODULES = ("core", "decorators", "exceptions", "formatting", "parser", "termui", "types")


def install() -> None:
    """Norwegian messages, and one-line argument errors, for this process's click."""
    for package in PACKAGES:
        try:
            exceptions = importlib.import_module(f"{package}.exceptions")
        except ImportError:
            continue
        for name in MODULES:
            try:
                module = importlib.import_module(f"{package}.{name}")
            except ImportError:
                continue
            if hasattr(module, "_"):
                module._ = gettext
            if hasattr(module, "ngettext"):
                module.ngettext = ngettext
        exceptions.ClickException.show = _one_line
        exceptions.UsageError.show = _one_line
        formatting = importlib.import_module(f"{package}.formatting")
        _translate_help(formatting.HelpFormatter)
    import typer.core
    typer.core._ = gettext  # typer's headings (Arguments, Options, Commands) and two errors


def _translate_help(formatter: type) -> None:
    """'Usage:' and the help option's text in help pages."""
    if getattr(formatter, "_norsk", False):
        return
    write_usage, write_dl = formatter.write_usage, formatter.write_dl

    def usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        args = args.replace("[OPTIONS]", "[VALG]").replace("COMMAND", "KOMMANDO").replace("[ARGS]", "[ARGUMENTER]")
        write_usage(self, prog, args, "Bruk: " if prefix is None else prefix)

    def dl(self, rows, *a, **k) -> None:
        write_dl(self, [(term, gettext(text)) for term, text in rows], *a, **k)
    formatter.write_usage, formatter.write_dl, formatter._norsk = usage, dl, True


__all__ = ["MESSAGES", "install", "translate"]
