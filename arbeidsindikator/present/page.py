"""A first, simple HTML page from the published table (Norwegian bokmål, self-contained).

National and one region over time for each outcome, and actual vs expected by
innsatsgruppe. Charts are inline SVG (charts.py): the page opens offline, with no external
fonts or scripts. It reads only the published (aggregated, suppressed) table.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..data import atomic
from .. import norsk
from .charts import (COLOURS, COUNTRY_COLOUR, UNIT_COLOUR, band_line, ci_patch, inline_svg, legend_below, monthly, plt,
                     style_axis)
from .htmlpage import esc, page, section
from ..pipeline.results import Results

OUTCOMES = ("atid3", "atid12", "jobb3", "jobb12")
BAND = ["INDIKATOR", "INDIKATOR_KI_NEDRE", "INDIKATOR_KI_OVRE"]


def _indicator_chart(nat: pd.DataFrame, reg: pd.DataFrame, region: str) -> str:
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4), sharex=True)
    for ax, o in zip(axes.ravel(), OUTCOMES):
        band_line(ax, monthly(reg[reg["UTFALL"] == o], BAND), *BAND, UNIT_COLOUR, region)
        n = monthly(nat[nat["UTFALL"] == o], ["INDIKATOR"])
        ax.plot(n.index, n["INDIKATOR"], color=COUNTRY_COLOUR, lw=1.2, ls="--", label="Norge")
        ax.set_title(norsk.outcome(o))
        style_axis(ax, norsk.INDICATOR_UNIT[o], 1)
    legend_below(fig, axes, extra=[ci_patch(label=f"95 % konfidensintervall, {region}")])
    return inline_svg(fig, "indikator", f"Indikatoren over tid for Norge og {region}")


def _groups_chart(df: pd.DataFrame, outcome: str) -> str:
    fig, ax = plt.subplots(figsize=(10, 4))
    for i, (g, gd) in enumerate(df[df["UTFALL"] == outcome].groupby("GRUPPE")):
        d = monthly(gd, ["faktisk", "forventet"])
        ax.plot(d.index, d["faktisk"], color=COLOURS[i], lw=1.5, label=norsk.group(g))
        ax.plot(d.index, d["forventet"], color=COLOURS[i], lw=1.1, ls="--")
    style_axis(ax, norsk.LEVEL_UNIT[outcome], 0, zero=False)
    legend_below(fig, ax, ncol=5)
    return inline_svg(fig, f"grupper-{outcome}", f"Faktisk og forventet etter innsatsgruppe: {norsk.outcome(outcome)}")


def write_page(db: Path | str, out: Path | str, region: str | None = None) -> Path:
    """Write index.html for the latest run in `db`; returns the path."""
    res = Results(db)
    try:
        rid = res.run_id()
        nat = res.published(ORG_NIVAA=1, NEDBRYTNING="Alle")
        regions = res.published(ORG_NIVAA=2, NEDBRYTNING="Alle")
        if region is None:  # the largest region (not NOE, which follows standard users only)
            sizes = regions[regions["ORG_STED_ID"] != "NOE"].groupby("ORG_STED")["ANTALL_PERSONER"].sum()
            region = sizes.idxmax()
        else:
            region = res.unit(region)["ORG_STED"]
        reg = regions[regions["ORG_STED"] == region]
        groups = res.published(ORG_NIVAA=1, NEDBRYTNING="Innsatsgruppe")
        model = res.runs().set_index("run_id").loc[rid]
    finally:
        res.close()
    body = "".join([
        section("indikator", f"Indikatoren over tid: Norge og {region}",
                "Indikatoren er faktisk minus forventet arbeidsdeltakelse. Den er relativ: null er Navs gjennomsnittlige bidrag "
                "i hele perioden. Positive tall betyr at brukerne jobber mer enn forventet gitt hvem de er og arbeidsmarkedet de "
                "bor i. Linjen er brutt der en måned er prikket.", _indicator_chart(nat, reg, region)),
        section("innsatsgruppe-atid3", "Faktisk og forventet etter innsatsgruppe (Norge): arbeidstid de neste 3 månedene",
                "Innsatsgruppe er ikke med i modellen, så nivåene kan sammenlignes mellom gruppene. Heltrukken linje er faktisk, "
                "stiplet er forventet, i timer per uke.", _groups_chart(groups, "atid3")),
        section("innsatsgruppe-jobb12", "Faktisk og forventet etter innsatsgruppe (Norge): i jobb 12 måneder etter",
                "Andel i jobb (minst 19 timer i uka) 12 måneder etter måletidspunktet, i prosent.", _groups_chart(groups, "jobb12")),
        section("slik-leser-du", "Slik leser du tallene",
                "Indikatoren er et relativt mål: gjennomsnittet over hele perioden er null. Et negativt tall betyr ikke at Nav "
                "gjør brukerne dårligere, bare at bidraget er lavere enn Navs gjennomsnitt. Grupper som er med i modellen (alder, "
                "kjønn, landbakgrunn) har gjennomsnitt null over perioden per konstruksjon; for dem kan bare utviklingen over tid "
                "sammenlignes, ikke nivået. Indikatoren er ikke laget for rangering av kontorer.", ""),
    ])
    lead = (f"<p class='meta'>Kjøring {esc(rid)} · modell «{esc(model['model_name'])}» · "
            f"{esc(norsk.integer(model['n_person_months'], html=True))} personmåneder. Tallene er aggregerte; celler med for "
            "få personer er prikket.</p><p>Arbeidsindikatoren måler Navs bidrag til at brukerne kommer i arbeid: forskjellen "
            "mellom faktisk og forventet arbeidsdeltakelse, der forventet er beregnet ut fra brukernes kjennetegn og det lokale "
            "arbeidsmarkedet.</p>")
    return atomic.write_text(out, page("Arbeidsindikatoren", body, lead))


# labels for the dashboard's meta endpoint (defined once in norsk.py)
OUTCOME_LABEL = norsk.OUTCOME
GROUP_LABEL = norsk.GROUP

__all__ = ["write_page"]
