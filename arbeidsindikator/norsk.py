"""Norwegian presentation, defined once: numbers, months, units, outcome and group labels.

Everything a reader sees (the command line, the reports, the web page, the dashboard) takes
its words and number format from here, so a label is written in one place and a raw code
(`ikke_vestlig`, `atid3`, `True`) never reaches the screen.

Number format: Norwegian (bokmål) writes a decimal comma and groups thousands with a space
(no-break space in HTML, so a number never wraps): 2 897 539 personmåneder, 30 182,7 timer.
"""

from __future__ import annotations

import datetime as dt
import math

NBSP = "\u00a0"
MINUS = "\u2212"  # a real minus sign, as typeset numbers use

MONTHS = ("januar", "februar", "mars", "april", "mai", "juni", "juli", "august", "september", "oktober",
          "november", "desember")
MONTHS_SHORT = ("jan.", "feb.", "mars", "apr.", "mai", "juni", "juli", "aug.", "sep.", "okt.", "nov.", "des.")

OUTCOME = {
    "atid3": "Arbeidstid de neste 3 månedene",
    "atid12": "Arbeidstid de neste 12 månedene",
    "jobb3": "I jobb 3 måneder etter",
    "jobb12": "I jobb 12 måneder etter",
}
OUTCOME_SHORT = {"atid3": "Arbeidstid 3 mnd", "atid12": "Arbeidstid 12 mnd", "jobb3": "I jobb 3 mnd", "jobb12": "I jobb 12 mnd"}
# the level of an outcome (faktisk, forventet) and the indicator (a difference) have different units
LEVEL_UNIT = {"atid3": "timer per uke", "atid12": "timer per uke", "jobb3": "prosent", "jobb12": "prosent"}
INDICATOR_UNIT = {"atid3": "timer per uke", "atid12": "timer per uke", "jobb3": "prosentpoeng", "jobb12": "prosentpoeng"}
HOURS_OUTCOMES = ("atid3", "atid12")

GROUP = {
    # innsatsgrupper
    "standard": "Standard innsats", "situasjonsbestemt": "Situasjonsbestemt innsats",
    "spesielt_tilpasset": "Spesielt tilpasset innsats", "varig_tilpasset": "Varig tilpasset innsats",
    "ikke_vurdert": "Ikke vurdert", "sykmeldt_uten_arbeidsgiver": "Sykmeldt uten arbeidsgiver",
    # country background
    "norskfodt": "Født i Norge", "vestlig": "Innvandrer, EU/EØS mv.", "ikke_vestlig": "Innvandrer, øvrige land",
    "ukjent": "Ukjent",
    # sex
    "kvinne": "Kvinner", "mann": "Menn",
    # education
    "grunnskole": "Grunnskole", "videregaende": "Videregående", "hoyere_kort": "Høyere utdanning, kort",
    "hoyere_lang": "Høyere utdanning, lang",
    # benefit
    "ingen": "Ingen ytelse", "dagpenger": "Dagpenger", "aap": "Arbeidsavklaringspenger", "annen": "Annen ytelse",
    # youth guarantee and other yes/no groups
    "ja": "Ja", "nei": "Nei", "true": "Ja", "false": "Nei",
    "Alle": "Alle",
}
BREAKDOWN = {"Alle": "Alle", "Innsatsgruppe": "Innsatsgruppe", "Ungdomsgaranti": "Ungdomsgarantien",
             "Innvandrerkategori": "Landbakgrunn", "Aldersgruppe": "Aldersgruppe", "Kjønn": "Kjønn"}
LEVEL = {1: "Landet", 2: "Region", 3: "Kontor"}


def group(code) -> str:
    """A breakdown group's label: 'Født i Norge' for norskfodt, 'Under 25 år' for 'under 25',
    '25–29 år' for '25-29', '60 år og over' for '60+'."""
    if code is None or (isinstance(code, float) and math.isnan(code)):
        return "Ukjent"
    c = str(code)
    if c in GROUP:
        return GROUP[c]
    if c.startswith("under "):
        return f"Under {c[6:]} år"
    if c.endswith("+") and c[:-1].isdigit():
        return f"{c[:-1]} år og over"
    if "-" in c and all(p.isdigit() for p in c.split("-")):
        a, b = c.split("-")
        return f"{a}–{b} år"
    return c.replace("_", " ").capitalize()


def breakdown(name: str) -> str:
    return BREAKDOWN.get(name, name)


def outcome(code: str, short: bool = False) -> str:
    return (OUTCOME_SHORT if short else OUTCOME).get(code, code)


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or str(x) in ("nan", "<NA>", "NaT")


def number(x, decimals: int = 1, html: bool = False, sign: bool = False) -> str:
    """1234567.891 -> '1 234 567,9'; missing -> '–'; `sign`: '+0,8' and '−0,8'."""
    if _missing(x):
        return "–"
    if math.isinf(float(x)):  # an interval without an end (test inversion that never rejects)
        return ("−" if float(x) < 0 else "") + "∞"
    s = f"{abs(float(x)):,.{decimals}f}".replace(",", "\u2009").replace(".", ",").replace("\u2009", NBSP if html else " ")
    if float(x) < 0 and any(ch not in "0, " + NBSP for ch in s):
        return MINUS + s
    return ("+" + s) if sign and float(x) > 0 else s


def significant(x, digits: int = 4) -> str:
    """A coefficient to `digits` significant digits: 0.001234 -> '0,001234', -12.5 -> '−12,5'."""
    if _missing(x):
        return "–"
    if abs(float(x)) >= 10 ** digits:  # a large number keeps its digits, grouped
        return number(x, 0)
    s = f"{abs(float(x)):.{digits}g}".replace(".", ",")
    return (MINUS + s) if float(x) < 0 and s.strip("0,") else s


def integer(x, html: bool = False) -> str:
    return number(x, 0, html)


def percent(x, decimals: int = 1, html: bool = False) -> str:
    """A share already in per cent: 12.34 -> '12,3 %'."""
    return "–" if _missing(x) else f"{number(x, decimals, html)}{NBSP if html else ' '}%"


def value(x, outcome_code: str, decimals: int = 1, html: bool = False, indicator: bool = False) -> str:
    """A level or an indicator with its unit: '31,2 timer per uke', '42,0 prosent', '+1,3 prosentpoeng'."""
    unit = (INDICATOR_UNIT if indicator else LEVEL_UNIT).get(outcome_code, "")
    return "–" if _missing(x) else f"{number(x, decimals, html, sign=indicator)} {unit}".strip()


def month(d, short: bool = False) -> str:
    """A month: 'juni 2023' (short: 'juni 2023' / 'jan. 2024')."""
    if _missing(d):
        return "–"
    if isinstance(d, str):
        d = dt.date(int(d[:4]), int(d[5:7]), 1)
    return f"{(MONTHS_SHORT if short else MONTHS)[d.month - 1]} {d.year}"


def yes_no(b) -> str:
    return "–" if _missing(b) else ("ja" if bool(b) else "nei")


def axis_formatter(decimals: int = 1):
    """A matplotlib tick formatter in Norwegian format."""
    from matplotlib.ticker import FuncFormatter
    return FuncFormatter(lambda v, _: number(v, decimals))


__all__ = ["BREAKDOWN", "GROUP", "HOURS_OUTCOMES", "INDICATOR_UNIT", "LEVEL", "LEVEL_UNIT", "OUTCOME", "axis_formatter",
           "breakdown", "group", "integer", "significant", "month", "number", "outcome", "percent", "value", "yes_no"]
