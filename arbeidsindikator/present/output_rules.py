"""What each analysis writes for others to read, and why it discloses nothing (issue 28).

The indicator's tables are protected as one system (pipeline/disclosure.py, audited by
pipeline/attacker.py). The analyses write more: regression tables, life tables, survey
estimates, monthly series. Each file they write is declared here with its basis:

- 'publisert': computed only from cells the run published, so it adds no relation the audit of
  the published tables has not already taken (the office-resources monthly series shows the
  indicator only in months where every national cell of the sample is published, and persons
  rounded to 100, so that nothing is recovered by difference with a published group);
- 'modell': estimates pooled over many units (coefficients, standard errors, tests, quintile
  means over hundreds of office-months whose membership is not published); no cell value of
  the indicator's tables can be solved from them;
- 'telling': counts of persons or spells in groups that are not the indicator's cells (the
  spells analysis' cohorts): each count is 0 or at least `MIN_COUNT`, and a life table stops
  before the persons still at risk could be a small number by difference;
- 'utvalg': survey estimates (weighted means, totals, differences) from samples; an estimate on
  fewer than `MIN_ANSWERS` answers is withheld (the answers of a few named respondents would
  be theirs);
- 'fasit': the synthetic world's truth, written only when the data are synthetic;
- 'side': the report page and its figures, drawn from the declared tables above.

`check_folder` runs as the last step of every analysis report, before its folder is made
visible: a file that is not declared, or a declared table that breaks its rule, stops the
report (`OutputDisclosureError`) and nothing is written. A new output must be declared here
first; that is the point.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..analyses.surveys.tables import ESTIMATE_COLUMNS, MIN_ANSWERS
from ..pipeline.audit import DisclosureError

MIN_COUNT = 10  # persons or spells: as the indicator's threshold for persons


class OutputDisclosureError(DisclosureError):
    """An analysis output is not declared or breaks its small-cell rule."""


@dataclass(frozen=True)
class Output:
    pattern: str  # file name (glob) inside the report folder
    basis: str  # publisert | modell | telling | utvalg | fasit | side
    counts: tuple[str, ...] = ()  # columns that count persons, spells or answers
    life_table: bool = False  # entering - events - censored is the next row's persons at risk


PAGES = (Output("rapport.html", "side"), Output("*.md", "side"), Output("figurer/*", "side"),
         Output("figurer/*/*", "side"), Output("resultater.json", "side"))

DECLARED: dict[str, tuple[Output, ...]] = {
    "ressurser": (
        Output("ressurser.html", "side"), Output("tabell*.html", "side"),
        Output("tabell*_*.csv", "modell"), Output("standardfeil_*.csv", "modell"), Output("per_aar_*.csv", "modell"),
        Output("kvintiler_*.csv", "modell"),
        Output("maanedlig_*.csv", "publisert"),
        Output("utelatt.csv", "modell"),  # office-months left out and why: no person counts
        Output("fasit.csv", "fasit"),
    ),
    # measures over the published cells of each model variant: correlations, SDs, shares
    "modellsammenligning": (Output("sammenligning.csv", "modell"), Output("per_verden.csv", "modell")),
    # two runs' published national series, and differences summarised over their published cells
    "modellovergang": (Output("nasjonal_serie.csv", "publisert"), Output("overgang.csv", "modell")),
    # the movers' forecast test: pooled coefficients and tests; movers counted only in groups of at
    # least MIN_COUNT (a run or year with fewer has no coefficient and no count)
    "flyttere": (
        Output("prognoseskjevhet.csv", "telling", counts=("movers", "persons")),
        Output("per_aar.csv", "telling", counts=("movers",)), Output("gruppert.csv", "telling", counts=("movers",)),
        # spreads and correlations over all offices of Nav's office mean and the person-effects variant
        Output("personeffekter.csv", "modell"),
    ),
    "evaluering": (
        Output("resultater.csv", "modell"), Output("hendelsesstudie.csv", "modell"), Output("robusthet_*.csv", "modell"),
    ),
    "forlop": (
        Output("forlop.csv", "telling", counts=("spells", "persons")),
        Output("andeler.csv", "telling", counts=("spells",)),
        # events and censored spells of a month are shares of a cohort of hundreds, not cells
        Output("livstabeller.csv", "telling", counts=("entering",), life_table=True),
        Output("hasardrater.csv", "modell"), Output("ph_tester.csv", "modell"), Output("sammenligning.csv", "modell"),
        Output("fasit.csv", "fasit"),
    ),
    "tidsbruk": (
        Output("aarsverk.csv", "utvalg", counts=("employees",)), Output("endring.csv", "utvalg"),
        Output("per_1000.csv", "utvalg"),
    ),
    "undersokelse": (
        Output("skalaer.csv", "utvalg", counts=("n",)), Output("grupper.csv", "utvalg", counts=("n_group",)),
        Output("regresjoner.csv", "modell"), Output("i_arbeid.csv", "utvalg", counts=("n",)),
        Output("svarprosent.csv", "utvalg"), Output("merknader.csv", "side"),
    ),
}

_LIMIT = {"telling": MIN_COUNT, "utvalg": MIN_ANSWERS}


def declaration(analysis: str, name: str) -> Output | None:
    """The declaration a file (its path inside the folder, with '/') falls under, if any."""
    for o in DECLARED[analysis] + PAGES:
        if fnmatch.fnmatchcase(name, o.pattern) and (o.pattern.count("/") == name.count("/")):
            return o
    return None


def problems(folder: Path | str, analysis: str) -> list[str]:
    """Every file of `folder` that is not declared for `analysis`, and every declared table
    that breaks its rule (at most three examples each)."""
    folder = Path(folder)
    out = []
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = f.relative_to(folder).as_posix()
        o = declaration(analysis, name)
        if o is None:
            out.append(f"{name}: ikke deklarert i present/output_rules.py")
        elif o.counts and f.suffix == ".csv":
            out += [f"{name}: {p}" for p in _count_problems(pd.read_csv(f), o)]
    return out


def _count_problems(df: pd.DataFrame, o: Output) -> list[str]:
    limit = _LIMIT[o.basis]
    out = []
    for c in o.counts:
        if c not in df:
            out.append(f"kolonnen {c} mangler")
            continue
        v = df[c].to_numpy(float)
        small = (v > 0) & (v < limit)
        if o.basis == "utvalg":  # a row on few answers may stand, its estimates withheld
            shown = [e for e in ESTIMATE_COLUMNS if e in df]
            small &= df[shown].notna().any(axis=1).to_numpy() if shown else False
        bad = np.flatnonzero(small)
        if len(bad):
            out.append(f"{c} under {limit} i {len(bad)} rader (f.eks. {', '.join(map(str, v[bad[:3]]))})")
    if o.life_table and {"entering", "events", "censored"} <= set(df):
        nxt = (df["entering"] - df["events"] - df["censored"]).to_numpy(float)
        bad = np.flatnonzero((nxt > 0) & (nxt < limit))
        if len(bad):
            out.append(f"personer igjen etter raden under {limit} i {len(bad)} rader")
    return out


def check_folder(folder: Path | str, analysis: str) -> None:
    """Refuse an analysis output that is not declared or breaks its rule (one sentence)."""
    found = problems(folder, analysis)
    if found:
        raise OutputDisclosureError(
            f"Analysen «{analysis}» ville skrevet utdata som ikke er beskyttet: {'; '.join(found[:5])}"
            + (f" (og {len(found) - 5} til)" if len(found) > 5 else "") + ". Ingenting er skrevet.")


__all__ = ["DECLARED", "MIN_ANSWERS", "MIN_COUNT", "Output", "OutputDisclosureError", "check_folder", "declaration",
           "problems"]
