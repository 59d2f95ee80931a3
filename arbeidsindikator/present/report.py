"""Self-contained HTML report for the country, a region or an office (Norwegian bokmål).

Reads only the published (aggregated, suppressed) tables of a run. The HTML has its charts
inline as SVG and its tables as CSV downloads in data: URIs, and loads nothing from elsewhere.
Every chart is also written as SVG and PNG under figurer/<unit>/ for slides. An office that
closed is reported for the months it existed, with the office that took over its users.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..data import atomic
from .. import norsk
from .charts import (COLOURS, COUNTRY_COLOUR, REGION_COLOUR, UNIT_COLOUR, Figures, band_line, ci_patch, legend_below,
                     log_axis, monthly, plt, style_axis)
from .htmlpage import csv_link, esc, page, section, table
from ..pipeline.reading import ReadingRuleError
from ..pipeline.versions import release_info, release_text
from ..pipeline.results import Results
from ..pipeline.shrinkage import NOE_ID, funnel_curve

OUTCOMES = ("atid3", "atid12", "jobb3", "jobb12")
LEVEL_NAME = {1: "landet", 2: "regionen", 3: "kontoret"}
BAND = ["INDIKATOR", "INDIKATOR_KI_NEDRE", "INDIKATOR_KI_OVRE"]


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def unit_slug(name: str, uid: str, level: int) -> str:
    """The file name of a unit's report: its name, or for a name without letters or digits
    (which would make a hidden file), its id."""
    return _slug(name) or f"enhet-{_slug(uid) or level}"


def write_report(db: Path | str, unit: str, out: Path | str, reference_month: str | None = None) -> Path:
    """Write out/<unit>.html (+ figurer/<unit>/); returns the HTML path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = Results(db)
    try:
        return _write(res, unit, out, reference_month)
    finally:
        res.close()


def _write(res: Results, unit: str, out: Path, reference_month: str | None) -> Path:
    rid = res.run_id()
    u = res.unit(unit)
    level, uid, name = int(u["ORG_NIVAA"]), str(u["ORG_STED_ID"]), str(u["ORG_STED"])
    first, last = pd.Timestamp(u["FORSTE_MAANED"]), pd.Timestamp(u["SISTE_MAANED"])
    alle = res.published(ORG_NIVAA=level, ORG_STED_ID=uid, NEDBRYTNING="Alle")
    nat = res.published(ORG_NIVAA=1, NEDBRYTNING="Alle")
    region_id = u["REGION_ID"] if level == 3 else (uid if level == 2 else None)
    reg = res.published(ORG_NIVAA=2, ORG_STED_ID=region_id, NEDBRYTNING="Alle") if level == 3 and region_id else None
    slug = unit_slug(name, uid, level)
    figs = Figures(out / "figurer" / slug)
    sections = []
    ref = _reference(res, alle, reference_month)

    # 1. the indicator over time with its band, against the region and the country
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.6), sharex=True)
    for ax, o in zip(axes.ravel(), OUTCOMES):
        d = monthly(alle[alle["UTFALL"] == o], BAND)
        band_line(ax, d, *BAND, UNIT_COLOUR, name)
        if reg is not None:
            r = monthly(reg[reg["UTFALL"] == o], ["INDIKATOR"]).loc[first:last]
            ax.plot(r.index, r["INDIKATOR"], color=REGION_COLOUR, lw=1.1, label=str(reg["ORG_STED"].iloc[0]))
        if level > 1:
            n = monthly(nat[nat["UTFALL"] == o], ["INDIKATOR"]).loc[first:last]
            ax.plot(n.index, n["INDIKATOR"], color=COUNTRY_COLOUR, lw=1.1, ls="--", label="Norge")
        ax.set_title(norsk.outcome(o))
        style_axis(ax, norsk.INDICATOR_UNIT[o], 1)
    legend_below(fig, axes, extra=[ci_patch()])
    sections.append(section(
        "indikator", "Indikatoren over tid",
        f"Linjen viser {LEVEL_NAME[level]}s indikator med 95 % konfidensintervall (skyggelagt). Null er Navs gjennomsnittlige "
        "bidrag i hele perioden; når båndet dekker null, kan avviket være tilfeldig. Der en måned er prikket (for få personer), "
        "er linjen brutt.",
        figs.add(fig, "indikator", f"Indikatoren for {name} over tid") + csv_link(alle, f"{slug}-indikator", "indikatoren per måned")))

    # the latest published month, straight from the table
    rows = []
    for o in OUTCOMES:
        d = alle[(alle["UTFALL"] == o) & ~alle["PRIKKET"].astype(bool)]
        if d.empty:
            continue
        x = d.iloc[-1]
        rows.append([norsk.outcome(o), norsk.month(x["BEHOLDNINGSMAANED"]), norsk.integer(x["ANTALL_PERSONER"]),
                     norsk.value(x["faktisk"], o, 1), norsk.value(x["forventet"], o, 1),
                     norsk.value(x["INDIKATOR"], o, 2, indicator=True),
                     f"{norsk.number(x['INDIKATOR_KI_NEDRE'], 2)} til {norsk.number(x['INDIKATOR_KI_OVRE'], 2)}",
                     norsk.number(x["INDIKATOR_KRYMPET"], 2, sign=True)])
    sections.append(section(
        "siste", "Siste publiserte måned", "",
        table(["Utfall", "Måned", "Personer", "Faktisk", "Forventet", "Indikator", "95 % KI", "Krympet¹"], rows)
        + "<p class='meta'>¹ Krympet indikator (empirisk Bayes): kontorets indikator trukket mot gjennomsnittet av kontorene, "
          "mer jo mer usikker den er. Den er et bedre anslag for små kontor enn den rå indikatoren, men kan ikke brukes "
          "for regioner, landet og Nasjonal oppfølgingsenhet (tomt der).</p>"))

    # 2. actual vs expected by innsatsgruppe (levels: innsatsgruppe is not in the model)
    ig = res.published(ORG_NIVAA=level, ORG_STED_ID=uid, NEDBRYTNING="Innsatsgruppe")
    sections.append(section(
        "innsatsgruppe", "Faktisk og forventet etter innsatsgruppe",
        "Innsatsgruppe er ikke med i modellen, så nivåene kan sammenlignes mellom gruppene. Forskjellen mellom faktisk og "
        "forventet er indikatoren for gruppen. Ett lite diagram per gruppe og utfall, med samme skala for hvert utfall.",
        _groups_small_multiples(ig, ("atid3", "jobb12"), figs, f"Faktisk og forventet etter innsatsgruppe, {name}")
        + csv_link(ig, f"{slug}-innsatsgruppe", "innsatsgrupper")))

    # 3. breakdowns, each with the reading rule that applies to it
    parts = []
    for bd, in_model in res.breakdowns().items():
        if bd in ("Alle", "Innsatsgruppe"):
            continue
        b = res.published(ORG_NIVAA=level, ORG_STED_ID=uid, NEDBRYTNING=bd, UTFALL="atid3")
        if b.empty:
            continue
        fig, ax = plt.subplots(figsize=(10, 3.4))
        drawn, differences = 0, False
        for i, (g, gd) in enumerate(b.groupby("GRUPPE")):
            colour = COLOURS[i % len(COLOURS)]
            if in_model:
                try:
                    idx = res.index_of_change(uid, "atid3", ref, bd, g)
                except (LookupError, ReadingRuleError):  # no reference value, or one too near zero
                    continue
                differences |= bool((idx["ENDRING_ENHET"] == "differanse").any())
                d = monthly(idx.assign(PRIKKET=False), ["ENDRINGSINDEKS", "ENDRINGSINDEKS_KI_NEDRE", "ENDRINGSINDEKS_KI_OVRE"])
                band_line(ax, d, "ENDRINGSINDEKS", "ENDRINGSINDEKS_KI_NEDRE", "ENDRINGSINDEKS_KI_OVRE", colour, norsk.group(g))
            else:
                band_line(ax, monthly(gd, BAND), *BAND, colour, norsk.group(g))
            drawn += 1
        if not drawn:
            plt.close(fig)
            continue
        axis_label = ("endring (prosent; differanse i timer der nivået er nær null)" if differences else "endring i prosent")
        style_axis(ax, axis_label if in_model else norsk.INDICATOR_UNIT["atid3"], 0 if in_model else 1)
        legend_below(fig, ax, ncol=6, extra=[ci_patch("#888")])
        label = norsk.breakdown(bd)
        rule = (f"<p class='rule'>Lesebetingelse: {esc(label.lower())} er med i modellen. Hver gruppe har gjennomsnitt null over "
                f"perioden, så nivåene kan ikke sammenlignes mellom gruppene. Figuren viser derfor utviklingen: endringsindeks i "
                f"prosent fra {esc(norsk.month(ref))}, med 95 % konfidensintervall.</p>" if in_model else
                f"<p>{esc(label)} er ikke med i modellen; indikatornivåene kan sammenlignes mellom gruppene.</p>")
        parts.append(f"<h3>{esc(label)}</h3>{rule}" + figs.add(fig, f"nedbrytning-{_slug(bd)}", f"{label}, {name}")
                     + csv_link(b, f"{slug}-{_slug(bd)}", label.lower()))
    sections.append(section("nedbrytninger", "Brukergrupper (arbeidstid de neste 3 månedene)", "", "".join(parts)))

    # 4. index of change from the reference month
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    idx_tables = []
    for ax, o in zip(axes, ("atid3", "jobb3")):
        try:
            idx = res.index_of_change(uid, o, ref)
        except (LookupError, ReadingRuleError):
            ax.set_visible(False)
            continue
        d = monthly(idx.assign(PRIKKET=False), ["ENDRINGSINDEKS", "ENDRINGSINDEKS_KI_NEDRE", "ENDRINGSINDEKS_KI_OVRE"])
        band_line(ax, d, "ENDRINGSINDEKS", "ENDRINGSINDEKS_KI_NEDRE", "ENDRINGSINDEKS_KI_OVRE", COLOURS[2], norsk.outcome(o))
        ax.set_title(f"{norsk.outcome(o)}: endring fra {norsk.month(ref)}")
        near_zero = bool((idx["ENDRING_ENHET"] == "differanse").any())
        style_axis(ax, f"endring ({norsk.INDICATOR_UNIT[o]})" if near_zero else "endring i prosent", 0)
        idx_tables.append(idx)
    sections.append(section(
        "endringsindeks", f"Endringsindeks fra {norsk.month(ref)}",
        "Endringsindeksen viser utviklingen fra referansemåneden (der den er null), med 95 % konfidensintervall. Den kan brukes "
        "for alle grupper, også dem som er med i modellen.",
        figs.add(fig, "endringsindeks", f"Endringsindeks for {name}")
        + (csv_link(pd.concat(idx_tables), f"{slug}-endringsindeks", "endringsindeksen") if idx_tables else "")))

    # 5. work volume (hours outcomes only)
    wv = alle[(alle["UTFALL"] == "atid3") & ~alle["PRIKKET"].astype(bool)].tail(12)
    wrows = [[norsk.month(r.BEHOLDNINGSMAANED), norsk.integer(r.ANTALL_PERSONER), norsk.number(r.INDIKATOR, 3, sign=True),
              norsk.number(r.EKSTRA_TIMER_PER_UKE, 0, sign=True), norsk.number(r.ARSVERK, 1, sign=True)] for r in wv.itertuples()]
    sections.append(section(
        "arbeidsvolum", "Arbeidsvolum",
        "Indikatoren for arbeidstid er timer per uke per bruker. Ganget med antall brukere blir det ekstra (eller manglende) "
        "timer per uke for enheten. Omregning: årsverk = timer per uke / 37,5 (en full stilling er 37,5 timer i uka). "
        "For andelen i jobb finnes ikke noe arbeidsvolum: den er ikke timer.",
        table(["Måned", "Brukere", "Indikator (timer per uke)", "Timer per uke i alt", "Årsverk"], wrows)
        + csv_link(wv, f"{slug}-arbeidsvolum", "arbeidsvolum")))

    # 6. funnel plot: the offices of the region, or the regions of the country (never a league table)
    sections.append(_funnel_section(res, level, uid, name, region_id, first, last, figs, slug))

    sections.append(section(
        "slik-leser-du", "Slik leser du tallene",
        "Arbeidsindikatoren er faktisk minus forventet arbeidsdeltakelse. Forventet er beregnet ut fra brukernes alder, kjønn, "
        "utdanning, innvandrerbakgrunn, arbeidserfaring, helse, ytelse, tid som registrert og arbeidsmarkedet der de bor. "
        "Indikatoren er relativ: null er Navs gjennomsnittlige bidrag i hele perioden. Et negativt tall betyr ikke at Nav gjør "
        "brukerne dårligere, bare at bidraget er lavere enn gjennomsnittet. Arbeidstid måles i timer per uke; andelen i jobb i "
        "prosent, og indikatoren for den i prosentpoeng. Tall for grupper som er med i modellen (alder, kjønn, landbakgrunn) "
        "kan bare sammenlignes over tid. Små enheter har brede konfidensintervaller; celler med for få personer er prikket, "
        "og antallet personer i dem vises ikke. Indikatoren er ikke laget for å rangere kontorer.", ""))
    release = release_info(res.con, rid)  # a release names its as-of month and model version
    lead = (f"<p class='meta'>Rapport for {esc(LEVEL_NAME[level])} fra de publiserte tabellene (kjøring {esc(rid)}), "
            f"{esc(norsk.month(first))} til {esc(norsk.month(last))}. Alle tall er aggregerte."
            f"{' ' + esc(release_text(release, rid)) if release else ''}</p>" + _closure_note(u))
    return atomic.write_text(out / f"{slug}.html", page(f"Arbeidsindikatoren: {name}", "".join(sections), lead))


def _groups_small_multiples(rows: pd.DataFrame, outcomes: tuple[str, ...], figs: Figures, alt: str) -> str:
    """Actual and expected per group as small multiples: a row per group, a column per outcome,
    one y scale per outcome (the levels are compared across groups). Five groups' actual and
    expected lines in one chart were ten tangled lines."""
    order = list(norsk.GROUP)  # the groups in their usual order (standard first), unknown codes last
    groups = sorted(rows["GRUPPE"].dropna().unique(), key=lambda g: (order.index(g) if g in order else len(order), g))
    if not groups:
        return "<p>Ingen publiserte tall for innsatsgruppene.</p>"
    fig, axes = plt.subplots(len(groups), len(outcomes), figsize=(10, 1.55 * len(groups) + 0.9), sharex=True,
                             sharey="col", squeeze=False)
    for r, g in enumerate(groups):
        for c, o in enumerate(outcomes):
            ax = axes[r, c]
            d = monthly(rows[(rows["GRUPPE"] == g) & (rows["UTFALL"] == o)], ["faktisk", "forventet"])
            if not d.empty:
                ax.plot(d.index, d["faktisk"], color=UNIT_COLOUR, lw=1.4, label="faktisk")
                ax.plot(d.index, d["forventet"], color=COUNTRY_COLOUR, lw=1.0, ls="--", label="forventet")
            ax.set_title(f"{norsk.group(g)}: {norsk.outcome(o, short=True).lower()}")
            style_axis(ax, norsk.LEVEL_UNIT[o], 0, zero=False, ticks=3)
    legend_below(fig, axes, ncol=2)
    return figs.add(fig, "innsatsgruppe", alt)


def _closure_note(u: pd.Series) -> str:
    if not bool(u.get("NEDLAGT", False)):
        return ""
    after = (f" Brukerne ble overført til {esc(u['ETTERFOLGER'])}, som har sin egen rapport."
             if isinstance(u.get("ETTERFOLGER"), str) and u["ETTERFOLGER"] else "")
    return (f"<p class='note'>{esc(u['ORG_STED'])} ble lagt ned etter {esc(norsk.month(u['SISTE_MAANED']))}.{after} "
            "Rapporten viser månedene kontoret fantes.</p>")


def _reference(res: Results, alle: pd.DataFrame, reference_month: str | None) -> str:
    """The reference month of the index of change: as given (checked), or twelve months before
    the unit's last month with atid3 (Skjøstad: June 2023 -> June 2024), within its months."""
    shown = alle[(alle["UTFALL"] == "atid3") & ~alle["PRIKKET"].astype(bool)]
    months = pd.to_datetime(shown["BEHOLDNINGSMAANED"])
    if reference_month:
        m = res.check_month(reference_month)
        if months.empty or not months.min() <= m <= months.max():
            raise LookupError(f"Referansemåneden {norsk.month(m.date())} ligger utenfor månedene enheten har publiserte tall "
                              f"for ({norsk.month(months.min().date())} til {norsk.month(months.max().date())}).")
        return m.strftime("%Y-%m-01")
    target = months.max() - pd.DateOffset(months=12)
    return max(target, months.min()).strftime("%Y-%m-01")


def _funnel_section(res: Results, level: int, uid: str, name: str, region_id, first, last, figs: Figures, slug: str) -> str:
    """Offices of the unit's region (office and region reports) or the regions (national report),
    in the last full calendar year in which the unit existed."""
    if region_id == "NOE" or uid == NOE_ID:
        return section("traktplott", "Traktplott", "Nasjonal oppfølgingsenhet følger bare standardbrukere i hele landet og "
                       "er ikke en enhet som kan stilles ved siden av kontorene eller regionene.", "")
    end = min(last, res.months()[1])  # a whole calendar year within the unit's months and the run's
    years = [p for p in res.periods() if p.isdigit() and pd.Timestamp(f"{p}-01-01") >= first
             and pd.Timestamp(f"{p}-12-01") <= end]
    if not years:
        return section("traktplott", "Traktplott", "Enheten fantes ikke et helt kalenderår i perioden.", "")
    period = years[-1]
    funnel_level, within = (2, None) if level == 1 else (3, region_id)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    tabs = []
    for ax, o in zip(axes, ("atid3", "jobb3")):
        f = res.funnel(funnel_level, o, period=period, region=within)
        if f.empty:
            ax.set_visible(False)
            continue
        sigma2 = float(np.average(f["INDIKATOR_SE"] ** 2 * f["ANTALL_PERSONER"], weights=f["ANTALL_PERSONER"]))
        n = f["ANTALL_PERSONER"].astype(float)
        c = funnel_curve(sigma2, float(f["MELLOMVARIANS"].iloc[0]), float(f["MAL"].iloc[0]), float(n.max()) * 1.2,
                         n_min=float(n.min()) / 1.5)
        for lo, hi, ls, lab in (("lower95", "upper95", "--", "95 %-grenser"), ("lower998", "upper998", ":", "99,8 %-grenser")):
            ax.plot(c["N"], c[lo], color="#777", ls=ls, lw=0.9, label=lab)
            ax.plot(c["N"], c[hi], color="#777", ls=ls, lw=0.9)
        mine = f["ORG_STED_ID"] == uid
        ax.scatter(f.loc[~mine, "ANTALL_PERSONER"], f.loc[~mine, "INDIKATOR"], color=UNIT_COLOUR, s=20,
                   label="kontor" if funnel_level == 3 else "region")
        if mine.any():
            ax.scatter(f.loc[mine, "ANTALL_PERSONER"], f.loc[mine, "INDIKATOR"], color="#c0392b", s=36, label=name, zorder=3)
        for r in f.itertuples():  # every point named: a funnel shows who is where, never a ranking
            short = str(r.ORG_STED).replace("Nav ", "")
            ax.annotate(short, (r.ANTALL_PERSONER, r.INDIKATOR), fontsize=6.5, xytext=(3, 2), textcoords="offset points",
                        color="#333")
        log_axis(ax)
        ax.set_xlabel("personer i perioden (logaritmisk skala)")
        ax.set_title(f"{norsk.outcome(o)}, {period}")
        style_axis(ax, norsk.INDICATOR_UNIT[o], 1, dates=False)
        tabs.append(f.assign(UTFALL=o))
    legend_below(fig, axes, ncol=5)
    what = "regionene i landet" if funnel_level == 2 else "kontorene i regionen"
    return section(
        "traktplott", f"Traktplott: {what} ({period})",
        f"Hvert punkt er en enhet, plassert etter antall personer i {period}. Stiplede linjer er 95 %-grenser, prikkede 99,8 %. "
        "En enhet utenfor grensene skiller seg ut mer enn tilfeldig variasjon tilsier. Plottet rangerer ikke enhetene."
        + (f" {name} er rød." if level == 3 else ""),  # a region's funnel shows its offices, not the region
        figs.add(fig, "traktplott", f"Traktplott for {what}, {period}")
        + (csv_link(pd.concat(tabs), f"{slug}-traktplott", "traktplottet") if tabs else ""))


__all__ = ["write_report"]
