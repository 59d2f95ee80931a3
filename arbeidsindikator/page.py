"""A first, simple HTML page from the published table (Norwegian bokmål, self-contained).

National and one region over time for each outcome, and actual vs expected by
innsatsgruppe. Charts are inline SVG made with matplotlib: the page opens offline, with no
external fonts or scripts. It reads only the published (aggregated, suppressed) table.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

import matplotlib
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from . import atomic  # noqa: E402
from .api import Results  # noqa: E402

OUTCOME_LABEL = {
    "atid3": "Arbeidstid neste 3 mnd (timer per uke)",
    "atid12": "Arbeidstid neste 12 mnd (timer per uke)",
    "jobb3": "I jobb 3 mnd etter (prosentpoeng)",
    "jobb12": "I jobb 12 mnd etter (prosentpoeng)",
}
GROUP_LABEL = {
    "standard": "Standard innsats", "situasjonsbestemt": "Situasjonsbestemt innsats",
    "spesielt_tilpasset": "Spesielt tilpasset innsats", "ikke_vurdert": "Ikke vurdert",
    "sykmeldt_uten_arbeidsgiver": "Sykmeldt uten arbeidsgiver", "varig_tilpasset": "Varig tilpasset innsats",
}
plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False})


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight",
                metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    plt.close(fig)
    s = buf.getvalue()
    return s[s.index("<svg"):]


def _indicator_chart(df, units: list[str], title: str) -> str:
    outcomes = [o for o in OUTCOME_LABEL if o in set(df["UTFALL"])]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharex=True)
    for ax, o in zip(axes.ravel(), outcomes):
        for u in units:
            d = df[(df["UTFALL"] == o) & (df["ORG_STED"] == u)]
            ax.plot(d["BEHOLDNINGSMAANED"], d["INDIKATOR"], label=u, lw=1.4)
        ax.axhline(0, color="#888", lw=0.8)
        ax.set_title(OUTCOME_LABEL[o], fontsize=9)
    axes[0, 0].legend(frameon=False)
    fig.suptitle(title)
    return _svg(fig)


def _groups_chart(df, outcome: str) -> str:
    d = df[df["UTFALL"] == outcome]
    fig, ax = plt.subplots(figsize=(10, 4))
    for i, (g, gd) in enumerate(d.groupby("GRUPPE")):
        c = f"C{i}"
        ax.plot(gd["BEHOLDNINGSMAANED"], gd["faktisk"], color=c, lw=1.5, label=f"{GROUP_LABEL.get(g, g)}: faktisk")
        ax.plot(gd["BEHOLDNINGSMAANED"], gd["forventet"], color=c, lw=1.2, ls="--", label="forventet")
    ax.set_ylabel(OUTCOME_LABEL[outcome])
    ax.legend(frameon=False, ncol=3, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08))
    return _svg(fig)


def write_page(db: Path | str, out: Path | str, region: str | None = None) -> Path:
    """Write index.html for the latest run in `db`; returns the path."""
    res = Results(db)
    rid = res.run_id()
    nat = res.published(ORG_NIVAA=1, NEDBRYTNING="Alle")
    regions = res.published(ORG_NIVAA=2, NEDBRYTNING="Alle")
    if region is None:  # the largest region
        region = regions.groupby("ORG_STED")["ANTALL_PERSONER"].sum().drop("Nasjonal oppfølgingsenhet", errors="ignore").idxmax()
    reg = regions[regions["ORG_STED"] == region]
    groups = res.published(ORG_NIVAA=1, NEDBRYTNING="Innsatsgruppe")
    runs = res.runs()
    res.close()
    both = pd.concat([nat, reg])
    charts = [
        ("Indikatoren over tid: Norge og " + region,
         "Indikatoren er faktisk minus forventet arbeidsdeltakelse. Den er relativ: null er Navs gjennomsnittlige "
         "bidrag i hele perioden. Positive tall betyr at brukerne jobber mer enn forventet gitt hvem de er og "
         "arbeidsmarkedet de bor i.", _indicator_chart(both, ["Norge", region], "")),
        ("Faktisk og forventet etter innsatsgruppe (Norge): arbeidstid neste 3 måneder",
         "Innsatsgruppe er ikke med i modellen, så nivåene kan sammenlignes mellom gruppene. Heltrukken linje er faktisk, "
         "stiplet er forventet.", _groups_chart(groups, "atid3")),
        ("Faktisk og forventet etter innsatsgruppe (Norge): i jobb 12 måneder etter",
         "Andel i jobb (minst 19 timer i uka) 12 måneder etter måletidspunktet, i prosent.", _groups_chart(groups, "jobb12")),
    ]
    model = runs[runs["run_id"] == rid].iloc[0]
    body = "".join(f"<section><h2>{html.escape(t)}</h2><p>{html.escape(p)}</p>{svg}</section>" for t, p, svg in charts)
    page = f"""<!doctype html>
<html lang="nb"><head><meta charset="utf-8"><title>Arbeidsindikatoren</title>
<style>body{{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1000px;margin:2em auto;color:#222;padding:0 1em}}
h1{{font-size:1.6em}} h2{{font-size:1.15em;margin-top:2em}} p{{line-height:1.5}} svg{{max-width:100%;height:auto}}
.meta{{color:#555;font-size:.9em}}</style></head><body>
<h1>Arbeidsindikatoren</h1>
<p class="meta">Kjøring {html.escape(rid)} · modell «{html.escape(str(model['model_name']))}» ·
{int(model['n_person_months']):,} personmåneder. Tallene er aggregerte; celler med for få personer er prikket.</p>
<p>Arbeidsindikatoren måler Navs bidrag til at brukerne kommer i arbeid: forskjellen mellom faktisk og forventet
arbeidsdeltakelse, der forventet er beregnet ut fra brukernes kjennetegn og det lokale arbeidsmarkedet.</p>
{body}
<section><h2>Slik leser du tallene</h2><p>Indikatoren er et relativt mål: gjennomsnittet over hele perioden er null.
Et negativt tall betyr ikke at Nav gjør brukerne dårligere, bare at bidraget er lavere enn Navs gjennomsnitt.
Grupper som er med i modellen (alder, kjønn, innvandrerkategori) har gjennomsnitt null over perioden per konstruksjon;
for dem kan bare utviklingen over tid sammenlignes, ikke nivået. Indikatoren er ikke laget for rangering av kontorer.</p></section>
</body></html>"""
    return atomic.write_text(out, page)
