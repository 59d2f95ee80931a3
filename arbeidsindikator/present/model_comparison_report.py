"""`arbeidsindikator modell sammenlign`: the model laboratory's tables and a Norwegian report a
statistics team can take to a model-change decision (analyses/model_comparison.py)."""

from __future__ import annotations

from pathlib import Path

from .. import norsk
from ..analyses.model_comparison import MEASURES, Comparison, compare_models
from ..data import atomic
from .htmlpage import csv_link, esc, page, section, table
from .output_rules import check_folder

PERCENT = {"coverage"}  # measures shown in per cent


def _cell(summary_row, col: str, several: bool) -> str:
    v, sd = summary_row.get(col), summary_row.get(f"{col}_sd")
    scale = 100.0 if col in PERCENT else 1.0
    text = norsk.number(None if v is None else v * scale, 1 if col in PERCENT else 3)
    if several and sd is not None and sd == sd:
        text += f" (± {norsk.number(sd * scale, 1 if col in PERCENT else 3)})"
    return text + (" %" if col in PERCENT and text != "–" else "")


def _html(c: Comparison) -> str:
    s = c.summary
    worlds = int(s["worlds"].iloc[0])
    several = worlds > 1
    shown = [(col, label, better) for col, label, better in MEASURES if col in s and s[col].notna().any()]
    body = section("modeller", "Modellene", "", table(["modell", "beskrivelse"], [[n, d] for n, d in c.specs.items()]))
    for o in s["outcome"].drop_duplicates():
        rows = [[r["spec"]] + [_cell(r, col, several) for col, _, _ in shown] for _, r in s[s["outcome"] == o].iterrows()]
        body += section(f"utfall-{o}", norsk.outcome(o), "",
                        table(["modell"] + [f"{label} ({better} er best)" for _, label, better in shown], rows))
    body += section("lesemaate", "Slik leser du tabellene",
                    "Hver modell er kjørt gjennom hele løpet (modell, indikator, prikking) på de samme dataene, og målene er "
                    "regnet fra de publiserte cellene (prikkede celler er utelatt). Navs akseptmål: korrelasjonen mellom "
                    "kontorenes årsindikator og stramheten i arbeidsmarkedet (nye ledige stillinger per registrert ledig i "
                    "brukernes bo- og arbeidsmarkedsregioner; Nav bruker bedriftsundersøkelsens stramhet) skal være nær null, "
                    "fordi indikatoren skal måle kontoret og ikke arbeidsmarkedet; rangstabilitet er Spearman-korrelasjonen "
                    "mellom kontorenes indikator i to påfølgende år; volatilitet er gjennomsnittlig endring fra en måned til "
                    "den neste; SD i nasjonal indikator er standardavviket over månedene. Målene mot fasit finnes bare for "
                    "en syntetisk verden: korrelasjonen og feilen mot kontorenes sanne bidrag per år, og hvor ofte "
                    "95 %-intervallene for kontor-måneder dekker det sanne bidraget."
                    + (f" Tallene er gjennomsnitt over {worlds} verdener, med standardavviket mellom verdenene i parentes."
                       if several else " Med én verden er det ikke regnet usikkerhet mellom verdener; kjør med flere "
                       "«--data» for å se hvor mye målene varierer.")
                    + " Høy rangstabilitet og lav volatilitet er bare gode hvis kontorenes sanne bidrag er stabilt: en modell "
                    "kan bli roligere ved å ta bort noe av kontorenes bidrag. Derfor bør målene mot fasit veie tyngst der de "
                    "finnes.", "")
    return page("Modellsammenligning", body + csv_link(c.summary, "sammenligning", "sammenligningen"),
                "<p class='meta'>Modellvarianter tilpasset på de samme dataene og vurdert side om side.</p>")


def write_model_comparison(specs: list[Path | str], worlds: list[Path | str], out: Path | str, progress=None) -> Path:
    """Compare the specifications on the worlds and write the folder `out` (replaced whole)."""
    c = compare_models(specs, worlds, progress=progress)
    with atomic.directory(out) as tmp:
        c.summary.to_csv(tmp / "sammenligning.csv", index=False)
        c.per_world.to_csv(tmp / "per_verden.csv", index=False)
        (tmp / "rapport.html").write_text(_html(c), encoding="utf-8")
        check_folder(tmp, "modellsammenligning")
    return Path(out) / "rapport.html"


__all__ = ["write_model_comparison"]
