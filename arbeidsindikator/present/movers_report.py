"""`arbeidsindikator analyse flyttere`: the movers' forecast-bias test as a Norwegian report with
its tables (analyses/movers.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import norsk
from ..analyses.movers import ForecastTest, forecast_test
from ..data import atomic
from .charts import COUNTRY_COLOUR, UNIT_COLOUR, Figures, plt
from .htmlpage import csv_link, page, section, table
from .output_rules import check_folder


def _figure(t: ForecastTest, run_id: str):
    """The binned scatter per outcome: change in the mover's result against change in the
    indicator, with the 45-degree line a forecast without bias would follow."""
    b = t.binned[t.binned["run_id"] == run_id]
    outcomes = list(dict.fromkeys(b["outcome"]))
    cols = min(2, len(outcomes))
    rows = int(np.ceil(len(outcomes) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.2 * rows), squeeze=False, layout="constrained")
    for ax in axes.ravel()[len(outcomes):]:
        ax.set_visible(False)
    for ax, o in zip(axes.ravel(), outcomes):
        d = b[b["outcome"] == o]
        row = t.table[(t.table["run_id"] == run_id) & (t.table["outcome"] == o)].iloc[0]
        lim = float(np.nanmax(np.abs(np.r_[d["dva"], d["dy"]]))) * 1.1 or 1.0
        ax.plot([-lim, lim], [-lim, lim], color=COUNTRY_COLOUR, lw=1, ls="--", label="koeffisient 1")
        ax.scatter(d["dva"], d["dy"], color=UNIT_COLOUR, s=18, label="flyttere (gruppert)")
        x = np.array([-lim, lim])
        ax.plot(x, row["coefficient"] * x + (d["dy"].mean() - row["coefficient"] * d["dva"].mean()), color=UNIT_COLOUR,
                lw=1.4, label=f"koeffisient {norsk.number(row['coefficient'], 2)}")
        ax.set_title(norsk.outcome(o, short=True))
        unit = norsk.INDICATOR_UNIT.get(o, "")
        ax.set_xlabel(f"endring i kontorindikatoren ({unit})")
        ax.set_ylabel(f"endring i eget resultat ({unit})")
        ax.legend(fontsize=8, loc="upper left", frameon=False)
    return fig


def _verdict(r) -> str:
    if r["ci_low"] <= 1 <= r["ci_high"]:
        return "kan være 1"
    return "under 1" if r["ci_high"] < 1 else "over 1"


def _person_effects_section(t: ForecastTest) -> str:
    """Nav's office mean beside the office effects of a model with person effects."""
    d = t.office_measures
    if d.empty:
        return ""
    num = norsk.number
    truth = "indicator_r_truth" in d and d["indicator_r_truth"].notna().any()
    header = ["kjøring", "utfall", "kontorer", "flyttere per kontor (median)", "SD Navs mål", "andel signal",
              "SD med personeffekter", "andel signal"] + (["r mot fasit: Navs mål", "r mot fasit: med personeffekter"]
                                                          if truth else [])
    rows = [[r["run_id"], norsk.outcome(r["outcome"], short=True), norsk.integer(r["offices"]),
             norsk.integer(r["movers_per_office"]), num(r["indicator_sd"], 2), norsk.percent(100 * r["indicator_signal_share"]),
             num(r["person_effects_sd"], 2), norsk.percent(100 * r["person_effects_signal_share"])]
            + ([num(r["indicator_r_truth"], 3), num(r["person_effects_r_truth"], 3)] if truth else [])
            for _, r in d.iterrows()]
    return section("personeffekter", "En variant med personeffekter",
                   "Navs kontortall er snittet av brukernes resultat: kontorets bidrag pluss det brukerne har felles som "
                   "modellen ikke ser. En modell med en egen effekt for hver person (Abowd, Kramarz og Margolis 1999) tar bort "
                   "alt en bruker har med seg overalt, men kan da bare lære om kontorene fra dem som bytter kontor. "
                   "«Andel signal» er hvor mye av spredningen mellom kontorene som er mer enn tilfeldig støy (kovariansen mellom "
                   "to uavhengige halvdeler av brukerne). Over hele perioden; ingen tall for enkeltkontorer."
                   + (" Mot fasit: korrelasjonen med kontorenes sanne bidrag over perioden." if truth else ""),
                   table(header, rows) + csv_link(d, "personeffekter", "tabellen"))


def _html(t: ForecastTest, figures: dict[str, str]) -> str:
    num = norsk.number
    s = t.table
    truth = "truth_coefficient" in s and s["truth_coefficient"].notna().any()
    header = ["kjøring", "utfall", "flyttere", "kontorer (fra / til)", "koeffisient", "95 %-intervall", "vurdering",
              "nytt kontor / gammelt kontor", "p (like og motsatte)", "p (begge holder)"] + (["fasitens koeffisient"] if truth else [])
    rows = []
    for _, r in s.iterrows():
        if r.get("coefficient") != r.get("coefficient") or r.get("coefficient") is None:
            rows.append([r["run_id"], norsk.outcome(r["outcome"], short=True), norsk.integer(r["movers"]), "", "for få", "", "",
                         "", "", ""] + ([""] if truth else []))
            continue
        rows.append([r["run_id"], norsk.outcome(r["outcome"], short=True), norsk.integer(r["movers"]),
                     f"{norsk.integer(r['offices_left'])} / {norsk.integer(r['offices_joined'])}", num(r["coefficient"], 2),
                     f"{num(r['ci_low'], 2)} til {num(r['ci_high'], 2)}", _verdict(r),
                     f"{num(r['coefficient_joined'], 2)} / {num(r['coefficient_left'], 2)}", num(r["overid_p"], 3),
                     num(r["omnibus_p"], 3)] + ([num(r["truth_coefficient"], 2)] if truth else []))
    body = section("resultat", "Forutsier indikatoren hva et kontor gjør for en bruker?",
                   "Brukere som flytter og får nytt Nav-kontor tar med seg alt ved seg selv som modellen ikke ser. Hvis "
                   "indikatoren bare måler kontoret, endrer resultatet deres seg i snitt like mye som indikatoren mellom kontoret "
                   "de forlot og kontoret de kom til: koeffisienten er 1. Under 1 betyr at en del av forskjellen mellom "
                   "kontorene er hvem brukerne er.",
                   table(header, rows) + csv_link(s, "prognoseskjevhet", "tabellen"))
    for rid, fig in figures.items():
        body += section(f"figur-{rid}", f"Flytterne gruppert: kjøring {rid}",
                        "Hvert punkt er gjennomsnittet for en gruppe på minst ti flyttere med om lag lik endring i "
                        "kontorindikatoren. Den stiplede linjen er koeffisient 1.", fig)
    if len(t.by_year):
        yrows = [[r.run_id, norsk.outcome(r.outcome, short=True), str(r.year), norsk.integer(r.movers), num(r.coefficient, 2),
                  num(r.se, 2)] for r in t.by_year.itertuples()]
        body += section("per-aar", "Koeffisienten etter året for flyttingen",
                        "Forutsier indikatoren like godt hvert år? Bare år med minst 30 flyttere.",
                        table(["kjøring", "utfall", "år", "flyttere", "koeffisient", "standardfeil"], yrows)
                        + csv_link(t.by_year, "per_aar", "tabellen"))
    body += _person_effects_section(t)
    body += section("lesemaate", "Slik er testen laget",
                    "For hver bruker som bytter lokalkontor (flytting, eller kommune- og kontorsammenslåing): gjennomsnittet av "
                    "brukerens eget resultat (faktisk minus forventet, minus landets snitt den måneden) ved det nye kontoret, minus "
                    "gjennomsnittet ved det gamle. Bare måneder der utfallsvinduet ligger helt hos ett kontor teller: ved det gamle "
                    "kontoret måneder minst 3 (12) måneder før flyttingen for 3-månedersutfallene (12-månedersutfallene). "
                    "Kontorindikatoren er kontorets snitt over hele perioden uten flytterens egne måneder, krympet mot snittet "
                    "etter hvor sikkert det er målt (empirisk Bayes), slik at støy i indikatoren ikke trekker koeffisienten ned. "
                    "Intervallet er klynget på både kontoret brukeren forlot og kontoret brukeren kom til, med t-fordelingens "
                    "kritiske verdi for det minste antallet klynger. Overidentifikasjonstesten bruker de to kontorene hver for seg: "
                    "det nye kontoret skal ha koeffisient 1 og det gamle −1; testene spør om de er like store med motsatt fortegn, "
                    "og om begge holder. Bytter til og fra Nasjonal oppfølgingsenhet er ikke flytting mellom kontorer og er utelatt."
                    + (" Fasitens koeffisient er den samme regresjonen med flytterens endring i sitt sanne kontorbidrag i stedet for "
                       "det observerte resultatet: det testen ville funnet uten tilfeldig støy i utfallene. På en ren verden er den "
                       "om lag 1; der brukerne har skjulte forskjeller er den under 1, og den observerte koeffisienten skal ligge "
                       "nær den." if truth else ""), "")
    body += section("forbehold", "Hva testen ikke sier",
                    "Testen bygger på at flyttingen ikke henger sammen med endringer i brukerens egne utsikter utover det modellen "
                    "ser, og at de som flytter ligner de andre brukerne nok til at svaret gjelder dem også. Koeffisienten er et "
                    "snitt over alle kontorer: den sier hvor mye av forskjellene mellom kontorer som i snitt er kontoret, ikke "
                    "hvilke kontorer som er målt skjevt.", "")
    return page("Flyttere: forutsier indikatoren kontoret?", body,
                "<p class='meta'>Prognoseskjevhetstest med brukere som bytter kontor (Chetty, Friedman og Rockoff 2014; "
                "Angrist mfl. 2017).</p>")


def write_movers(db: Path | str, out: Path | str, run_ids: list[str] | None = None, data_dir: Path | str | None = None,
                 outcomes: list[str] | None = None) -> Path:
    t = forecast_test(db, run_ids, data_dir, outcomes)
    with atomic.directory(out) as tmp:
        t.table.to_csv(tmp / "prognoseskjevhet.csv", index=False)
        t.by_year.to_csv(tmp / "per_aar.csv", index=False)
        t.binned.to_csv(tmp / "gruppert.csv", index=False)
        t.office_measures.to_csv(tmp / "personeffekter.csv", index=False)
        figs = Figures(tmp / "figurer")
        figures = {rid: figs.add(_figure(t, rid), f"flyttere-{i + 1}", "Endring i resultat mot endring i kontorindikatoren")
                   for i, rid in enumerate(dict.fromkeys(t.binned["run_id"]))}
        (tmp / "rapport.html").write_text(_html(t, figures), encoding="utf-8")
        check_folder(tmp, "flyttere")
    return Path(out) / "rapport.html"


__all__ = ["write_movers"]
