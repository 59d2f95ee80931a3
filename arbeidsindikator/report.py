"""Self-contained HTML report for the country, a region or an office (Norwegian bokmål).

Reads only the published (aggregated, suppressed) tables of a run. The HTML has its charts
inline as SVG and its tables as CSV downloads in data: URIs, and loads nothing from elsewhere.
Every chart is also written as SVG and PNG under figurer/<unit>/ for slides.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import atomic  # noqa: E402
from .api import Results  # noqa: E402
from .page import GROUP_LABEL, OUTCOME_LABEL  # noqa: E402  (page also sets the chart style)

OUTCOMES = ("atid3", "atid12", "jobb3", "jobb12")
LEVEL_NAME = {1: "landet", 2: "regionen", 3: "kontoret"}


class Figures:
    """Collects charts: inline SVG for the page, SVG + PNG files for slides."""

    def __init__(self, out: Path, slug: str):
        self.dir = out / "figurer" / slug
        self.dir.mkdir(parents=True, exist_ok=True)

    def add(self, fig, name: str) -> str:
        meta = {"Creator": None, "Date": None, "Format": None, "Type": None}
        fig.savefig(self.dir / f"{name}.svg", bbox_inches="tight", metadata=meta)
        fig.savefig(self.dir / f"{name}.png", bbox_inches="tight", dpi=150)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata=meta)
        plt.close(fig)
        s = buf.getvalue()
        return f'<figure id="fig-{name}">{s[s.index("<svg"):]}</figure>'


def _csv_link(df: pd.DataFrame, name: str, label: str) -> str:
    data = base64.b64encode(df.to_csv(index=False).encode("utf-8")).decode("ascii")
    return f'<a class="csv" download="{name}.csv" href="data:text/csv;base64,{data}">Last ned {html.escape(label)} (CSV)</a>'


def _dates(df):
    return pd.to_datetime(df["BEHOLDNINGSMAANED"])


def _month(v) -> str:
    return pd.Timestamp(v).strftime("%Y-%m")


def _fmt(v, d=2):
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:,.{d}f}".replace(",", " ")


def write_report(db: Path | str, unit: str, out: Path | str, reference_month: str | None = None) -> Path:
    """Write out/<unit>.html (+ figurer/); returns the HTML path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = Results(db)
    rid = res.run_id()
    level, uid = res._unit(unit)
    alle = res.published(ORG_NIVAA=level, ORG_STED_ID=uid, NEDBRYTNING="Alle")
    name = alle["ORG_STED"].iloc[0]
    nat = res.published(ORG_NIVAA=1, NEDBRYTNING="Alle")
    region_id = alle["REGION_ID"].iloc[0] if level == 3 else (uid if level == 2 else None)
    reg = res.published(ORG_NIVAA=2, ORG_STED_ID=region_id, NEDBRYTNING="Alle") if region_id else None
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    figs = Figures(out, slug)
    sections = []

    # 1. the indicator over time with its 95% band, and the region's and the country's lines
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex=True)
    for ax, o in zip(axes.ravel(), OUTCOMES):
        d = alle[alle["UTFALL"] == o]
        ax.fill_between(_dates(d), d["INDIKATOR_KI_NEDRE"], d["INDIKATOR_KI_OVRE"], color="C0", alpha=0.2, lw=0,
                        label="95 % konfidensintervall")
        ax.plot(_dates(d), d["INDIKATOR"], color="C0", lw=1.5, label=name)
        if reg is not None and level == 3:
            r = reg[reg["UTFALL"] == o]
            ax.plot(_dates(r), r["INDIKATOR"], color="C1", lw=1.1, label=r["ORG_STED"].iloc[0] if len(r) else "Region")
        if level > 1:
            n = nat[nat["UTFALL"] == o]
            ax.plot(_dates(n), n["INDIKATOR"], color="#555", lw=1.1, ls="--", label="Norge")
        ax.axhline(0, color="#999", lw=0.7)
        ax.set_title(OUTCOME_LABEL[o], fontsize=9)
    axes[0, 0].legend(frameon=False, fontsize=8)
    sections.append(("indikator", "Indikatoren over tid",
                     f"Linjen viser {LEVEL_NAME[level]}s indikator med 95 % konfidensintervall (skyggelagt). "
                     "Null er Navs gjennomsnittlige bidrag i hele perioden. Når båndet dekker null, kan avviket være tilfeldig.",
                     figs.add(fig, "indikator") + _csv_link(alle, f"{slug}-indikator", "indikatoren per måned")))

    # latest numbers, straight from the published table
    rows = []
    for o in OUTCOMES:
        d = alle[(alle["UTFALL"] == o) & ~alle["PRIKKET"]]
        if d.empty:
            continue
        last = d.iloc[-1]
        rows.append(f"<tr><td>{OUTCOME_LABEL[o]}</td><td>{_month(last['BEHOLDNINGSMAANED'])}</td><td>{int(last['ANTALL_PERSONER']):,}</td>"
                    f"<td>{_fmt(last['faktisk'])}</td><td>{_fmt(last['forventet'])}</td><td>{_fmt(last['INDIKATOR'])}</td>"
                    f"<td>{_fmt(last['INDIKATOR_KI_NEDRE'])} til {_fmt(last['INDIKATOR_KI_OVRE'])}</td></tr>".replace(",", " "))
    sections.append(("siste", "Siste publiserte måned", "Tallene er hentet direkte fra den publiserte tabellen.",
                     "<table><tr><th>Utfall</th><th>Måned</th><th>Personer</th><th>Faktisk</th><th>Forventet</th>"
                     "<th>Indikator</th><th>95 % KI</th></tr>" + "".join(rows) + "</table>"))

    # 2. actual vs expected by innsatsgruppe
    ig = res.published(ORG_NIVAA=level, ORG_STED_ID=uid, NEDBRYTNING="Innsatsgruppe")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, o in zip(axes, ("atid3", "jobb12")):
        for i, (g, gd) in enumerate(ig[(ig["UTFALL"] == o) & ~ig["PRIKKET"]].groupby("GRUPPE")):
            ax.plot(_dates(gd), gd["faktisk"], color=f"C{i}", lw=1.3, label=GROUP_LABEL.get(g, g))
            ax.plot(_dates(gd), gd["forventet"], color=f"C{i}", lw=1.0, ls="--")
        ax.set_title(OUTCOME_LABEL[o] + ": faktisk (heltrukket) og forventet (stiplet)", fontsize=9)
    axes[0].legend(frameon=False, fontsize=7)
    sections.append(("innsatsgruppe", "Faktisk og forventet etter innsatsgruppe",
                     "Innsatsgruppe er ikke med i modellen, så nivåene kan sammenlignes mellom gruppene.",
                     figs.add(fig, "innsatsgruppe") + _csv_link(ig, f"{slug}-innsatsgruppe", "innsatsgrupper")))

    # 3. breakdowns, with the reading rule where it matters
    ref = reference_month or _default_reference(alle)
    parts = []
    for bd in ("Ungdomsgaranti", "Innvandrerkategori", "Aldersgruppe", "Kjønn"):
        b = res.published(ORG_NIVAA=level, ORG_STED_ID=uid, NEDBRYTNING=bd, UTFALL="atid3")
        if b.empty:
            continue
        in_model = bool(b["I_MODELLEN"].iloc[0])
        fig, ax = plt.subplots(figsize=(10, 3.2))
        for i, (g, gd) in enumerate(b.groupby("GRUPPE")):
            if in_model:
                try:
                    idx = res.index_of_change(uid, "atid3", ref, bd, g)
                except LookupError:
                    continue
                ax.plot(pd.to_datetime(idx["BEHOLDNINGSMAANED"]), idx["ENDRINGSINDEKS"], color=f"C{i}", lw=1.3, label=g)
            else:
                ax.plot(_dates(gd), gd["INDIKATOR"], color=f"C{i}", lw=1.3, label=g)
        ax.axhline(0, color="#999", lw=0.7)
        ax.legend(frameon=False, fontsize=7, ncol=4)
        rule = (f"<p class='rule'>Lesebetingelse: {bd.lower()} er med i modellen. Hver gruppe har gjennomsnitt null over perioden, "
                f"så nivåene kan ikke sammenlignes. Figuren viser derfor utviklingen: endringsindeks i prosent fra {ref[:7]}.</p>"
                if in_model else f"<p>{bd} er ikke med i modellen; indikatornivåene kan sammenlignes mellom gruppene.</p>")
        parts.append(f"<h3>{html.escape(bd)}</h3>{rule}" + figs.add(fig, f"nedbrytning-{bd.lower()}")
                     + _csv_link(b, f"{slug}-{bd.lower()}", bd.lower()))
    sections.append(("nedbrytninger", "Brukergrupper (arbeidstid neste 3 måneder)", "", "".join(parts)))

    # 4. index of change from the reference month
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    idx_tables = []
    for ax, o in zip(axes, ("atid3", "jobb3")):
        try:
            idx = res.index_of_change(uid, o, ref)
        except LookupError:
            continue
        t = pd.to_datetime(idx["BEHOLDNINGSMAANED"])
        ax.fill_between(t, idx["ENDRINGSINDEKS_KI_NEDRE"], idx["ENDRINGSINDEKS_KI_OVRE"], color="C2", alpha=0.2, lw=0)
        ax.plot(t, idx["ENDRINGSINDEKS"], color="C2", lw=1.4)
        ax.axhline(0, color="#999", lw=0.7)
        ax.set_title(f"{OUTCOME_LABEL[o]}: endring i prosent fra {ref[:7]}", fontsize=9)
        idx_tables.append(idx)
    sections.append(("endringsindeks", f"Endringsindeks fra {ref[:7]}",
                     "Endringsindeksen viser utviklingen fra referansemåneden (der den er null), med 95 % konfidensintervall. "
                     "Den kan brukes for alle grupper, også dem som er med i modellen.",
                     figs.add(fig, "endringsindeks") + (_csv_link(pd.concat(idx_tables), f"{slug}-endringsindeks", "endringsindeksen") if idx_tables else "")))

    # 5. work volume
    wv = alle[alle["UTFALL"].isin(["atid3", "atid12"]) & ~alle["PRIKKET"]].tail(24)
    wrows = "".join(f"<tr><td>{_month(r.BEHOLDNINGSMAANED)}</td><td>{r.UTFALL}</td><td>{int(r.ANTALL_PERSONER):,}</td><td>{_fmt(r.INDIKATOR, 3)}</td>"
                    f"<td>{_fmt(r.EKSTRA_TIMER_PER_UKE, 0)}</td><td>{_fmt(r.ARSVERK, 1)}</td></tr>".replace(",", " ")
                    for r in wv[wv["UTFALL"] == "atid3"].tail(12).itertuples())
    sections.append(("arbeidsvolum", "Arbeidsvolum",
                     "Indikatoren for arbeidstid er timer per uke per bruker. Ganget med antall brukere blir det ekstra (eller manglende) "
                     "timer per uke for enheten. Omregning: årsverk = timer per uke / 37,5 (en full stilling er 37,5 timer i uka).",
                     "<table><tr><th>Måned</th><th>Utfall</th><th>Brukere</th><th>Indikator (timer/uke)</th><th>Timer per uke</th>"
                     "<th>Årsverk</th></tr>" + wrows + "</table>" + _csv_link(wv, f"{slug}-arbeidsvolum", "arbeidsvolum")))

    # 6. funnel plot of the offices in the region (never a league table)
    period = _last_full_year(res)
    fsec = ""
    if region_id and region_id != "NOE":
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        ftabs = []
        for ax, o in zip(axes, ("atid3", "jobb3")):
            f = res.funnel(3, o, period=period, region=region_id)
            if f.empty:
                continue
            from .shrinkage import funnel_curve
            sigma2 = float(np.average(f["INDIKATOR_SE"] ** 2 * f["ANTALL_PERSONER"], weights=f["ANTALL_PERSONER"]))
            c = funnel_curve(sigma2, float(f["MELLOMVARIANS"].iloc[0]), float(f["MAL"].iloc[0]), float(f["ANTALL_PERSONER"].max()))
            for lo, hi, ls in (("lower95", "upper95", "--"), ("lower998", "upper998", ":")):
                ax.plot(c["N"], c[lo], color="#777", ls=ls, lw=0.9)
                ax.plot(c["N"], c[hi], color="#777", ls=ls, lw=0.9)
            colour = np.where(f["ORG_STED_ID"] == uid, "C3", "C0")
            ax.scatter(f["ANTALL_PERSONER"], f["INDIKATOR"], c=colour, s=18)
            ax.set_xscale("log")
            ax.set_xlabel("personmåneder (log)")
            ax.set_title(f"{OUTCOME_LABEL[o]}, {period}", fontsize=9)
            ftabs.append(f)
        fsec = figs.add(fig, "traktplott") + (_csv_link(pd.concat(ftabs), f"{slug}-traktplott", "traktplottet") if ftabs else "")
        sections.append(("traktplott", f"Kontorene i regionen: traktplott ({period})",
                         "Hvert punkt er et kontor, plassert etter antall personmåneder. Stiplede linjer er 95 %-grenser, prikkede 99,8 %. "
                         "Et kontor utenfor grensene skiller seg ut mer enn tilfeldig variasjon tilsier. Plottet rangerer ikke kontorene."
                         + (" Kontoret i denne rapporten er rødt." if level == 3 else ""), fsec))

    sections.append(("slik-leser-du", "Slik leser du tallene",
                     "Arbeidsindikatoren er faktisk minus forventet arbeidsdeltakelse. Forventet er beregnet ut fra brukernes alder, kjønn, "
                     "utdanning, innvandrerbakgrunn, arbeidserfaring, helse, ytelse, tid som registrert og arbeidsmarkedet der de bor. "
                     "Indikatoren er relativ: null er Navs gjennomsnittlige bidrag i hele perioden. Et negativt tall betyr ikke at Nav "
                     "gjør brukerne dårligere, bare at bidraget er lavere enn gjennomsnittet. Tall for grupper som er med i modellen "
                     "(alder, kjønn, innvandrerkategori) kan bare sammenlignes over tid. Små enheter har brede konfidensintervaller; "
                     "celler med for få personer er prikket. Indikatoren er ikke laget for å rangere kontorer.", ""))
    res.close()
    body = "".join(f'<section id="{sid}"><h2>{html.escape(t)}</h2>' + (f"<p>{html.escape(p)}</p>" if p else "") + c + "</section>"
                   for sid, t, p, c in sections)
    page = f"""<!doctype html><html lang="nb"><head><meta charset="utf-8"><title>Arbeidsindikatoren: {html.escape(name)}</title>
<style>body{{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1040px;margin:2em auto;color:#222;padding:0 1em}}
h1{{font-size:1.6em}} h2{{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}} p{{line-height:1.5}}
svg{{max-width:100%;height:auto}} table{{border-collapse:collapse;font-size:.9em}} td,th{{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}}
.rule{{background:#fff6e0;padding:.5em .8em;border-left:4px solid #e0a800}} a.csv{{display:inline-block;margin:.3em 0;font-size:.9em}}</style>
</head><body><h1>Arbeidsindikatoren: {html.escape(name)}</h1>
<p>Rapport for {LEVEL_NAME[level]} fra den publiserte tabellen (kjøring {html.escape(rid)}). Alle tall er aggregerte.</p>
{body}</body></html>"""
    return atomic.write_text(out / f"{slug}.html", page)


def _default_reference(alle: pd.DataFrame) -> str:
    """Twelve months before the last month with atid3, as in Skjøstad (June 2023 -> June 2024)."""
    last = pd.to_datetime(alle.loc[alle["UTFALL"] == "atid3", "BEHOLDNINGSMAANED"]).max()
    return (last - pd.DateOffset(months=12)).strftime("%Y-%m-01")


def _last_full_year(res: Results) -> str:
    years = res.con.execute("""SELECT DISTINCT PERIODE FROM published_period WHERE run_id = ? AND length(PERIODE) = 4
                               AND MANEDER = 12 ORDER BY 1""", [res.run_id()]).fetchall()
    full = [y[0] for y in years]
    return full[-2] if len(full) >= 2 else full[-1]
