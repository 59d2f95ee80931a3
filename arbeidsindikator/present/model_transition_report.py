"""`arbeidsindikator modell overgang`: the old and the new model's published series side by side,
as a Norwegian report with its tables (analyses/model_transition.py)."""

from __future__ import annotations

from pathlib import Path

from .. import norsk
from ..analyses.model_transition import LEVELS, Transition, model_transition
from ..data import atomic
from .charts import COUNTRY_COLOUR, UNIT_COLOUR, Figures, legend_below, monthly, plt, style_axis
from .htmlpage import csv_link, page, section, table
from .output_rules import check_folder


def _figure(t: Transition):
    outcomes = list(dict.fromkeys(t.national["outcome"]))
    fig, axes = plt.subplots(len(outcomes), 1, figsize=(10, 2.4 * len(outcomes) + 0.6), squeeze=False)
    for ax, o in zip(axes[:, 0], outcomes):
        d = monthly(t.national[t.national["outcome"] == o].rename(columns={"month": "BEHOLDNINGSMAANED"}), ["old", "new"])
        ax.plot(d.index, d["old"], color=COUNTRY_COLOUR, lw=1.2, ls="--", label=f"gammel modell ({t.old})")
        ax.plot(d.index, d["new"], color=UNIT_COLOUR, lw=1.6, label=f"ny modell ({t.new})")
        ax.set_title(f"{norsk.outcome(o)}: landet")
        style_axis(ax, norsk.INDICATOR_UNIT[o], 1)
    legend_below(fig, axes[:, 0], ncol=2)
    return fig


def _html(t: Transition, figure: str) -> str:
    s = t.summary
    num = norsk.number
    rows = [[norsk.outcome(r.outcome, short=True), LEVELS[r.level], norsk.integer(r.cells), num(r.mean_diff, 3, sign=True),
             num(r.mean_abs_diff, 3), num(r.max_abs_diff, 3), num(r.r, 3), num(r.spearman, 3),
             "–" if r.signal_changed != r.signal_changed else norsk.percent(100 * r.signal_changed)]
            for r in s.itertuples()]
    body = section("serien", "Landet under gammel og ny modell",
                   "Den nye modellversjonens tilbakeberegning av hele historikken ved siden av serien som er publisert i dag. "
                   "Forskjellen mellom linjene skyldes modellen, ikke kontorene.", figure
                   + csv_link(t.national, "nasjonal_serie", "serien"))
    body += section("forskjeller", "Hvor mye flytter modellendringen tallene?",
                    "Over cellene begge publiserer (alle brukere): gjennomsnittlig og største forskjell i indikatoren (ny minus "
                    "gammel), korrelasjonen mellom dem, for kontorene Spearman-korrelasjonen mellom årsindikatorene (holder "
                    "rekkefølgen?) og andelen kontor-år der 95 %-intervallet utelukker null under bare én av modellene.",
                    table(["utfall", "nivå", "celler", "snitt forskjell", "snitt |forskjell|", "største |forskjell|",
                           "korrelasjon", "Spearman (kontor-år)", "signal endret"], rows)
                    + csv_link(s, "overgang", "tabellen"))
    body += section("lesemaate", "Slik brukes overgangen",
                    "Nav publiserer den nye modellens serie ved siden av den gamle i en overgangsperiode, slik at leserne ser hva "
                    "som flytter seg på grunn av modellen. Indikatoren er relativ til gjennomsnittet i estimeringsperioden; en ny "
                    "modell eller periode flytter derfor hele historikken, ikke bare de nyeste månedene.", "")
    return page("Modellovergang", body, f"<p class='meta'>Gammel: {t.old}. Ny: {t.new}.</p>")


def write_model_transition(db: Path | str, old: str, new: str, out: Path | str) -> Path:
    t = model_transition(db, old, new)
    with atomic.directory(out) as tmp:
        t.summary.to_csv(tmp / "overgang.csv", index=False)
        t.national.to_csv(tmp / "nasjonal_serie.csv", index=False)
        figure = Figures(tmp / "figurer").add(_figure(t), "overgang", "Landet under gammel og ny modell")
        (tmp / "rapport.html").write_text(_html(t, figure), encoding="utf-8")
        check_folder(tmp, "modellovergang")
    return Path(out) / "rapport.html"


__all__ = ["write_model_transition"]
