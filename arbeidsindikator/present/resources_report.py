"""`arbeidsindikator analyse ressurser`: the office-resources analysis as tables, figures and a
methods note (Norwegian bokmål), written atomically to one directory.

Reads a run's person-level results (internal; nothing person-level is written) and the office
HR table; see resources.py for the definitions.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import atomic
from .. import norsk
from .charts import Figures, plt
from .htmlpage import FIGURE_CSS
from .htmlpage import csv_link as _csv_link
from .output_rules import check_folder
from ..analyses.resources import (OUTCOMES, SAMPLES, SE_LABEL, SE_TYPES, Panel, article_fits, article_table,
                        article_table_long, exclusion_summary, monthly_series, office_month_panel, published_months,
                        quintile_table, se_type_comparison, true_effects, wls, yearly_fits, SPECS, SPEC_LABEL)

VAR_LABEL = {"sick_leave": "Sykefravær (prosentpoeng)", "staffing": "Bemanning (timer per bruker per måned)",
             "indicator": "Indikator"}
CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:.5em 0 1em}td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}figure{margin:0}.note{background:#f5f7fa;padding:.6em 1em;border-left:4px solid #3e6fb0}
a.csv{font-size:13px}.scroll{overflow-x:auto;max-width:100%}"""


# what a reader sees instead of the tables' codes (the CSV files keep the codes, for programs)
LABELS = {"sit_spes": "situasjonsbestemt og spesielt tilpasset", "alle": "alle brukere", "maaned": "samme måned",
          "vindu": "snitt over utfallsvinduet", "sick_leave": "sykefravær", "staffing": "bemanning", "const": "konstant",
          "cluster": "klyngerobuste", "robust": "robuste", "classical": "klassiske",
          **{o: norsk.outcome(o, short=True) for o in OUTCOMES}}
HEADERS = {"utvalg": "utvalg", "utfall": "utfall", "spesifikasjon": "spesifikasjon", "variabel": "variabel",
           "estimat": "estimat", "ki_nedre": "95 % KI nedre", "ki_ovre": "95 % KI øvre", "sann_effekt": "sann effekt",
           "dekker_sann_effekt": "KI dekker sann effekt", "samme_regresjon_paa_fasit": "samme regresjon på fasit",
           "se_classical": "SE klassisk", "se_robust": "SE robust", "se_cluster": "SE klynge", "koeffisient": "koeffisient",
           "n": "N", "grunn": "grunn", "kontormaaneder": "kontor-måneder"}


def _html_table(df: pd.DataFrame, index: bool = False, digits: int = 4) -> str:
    """Numbers in Norwegian format with `digits` significant digits (at least one decimal); codes,
    yes/no and missing values in words."""
    def fmt(v, d=digits):
        if pd.isna(v):
            return "–"
        mag = int(np.floor(np.log10(abs(v)))) if v else 0
        return norsk.number(v, max(0, min(6, d - 1 - mag)))

    def word(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "–"
        if isinstance(v, (bool, np.bool_)):
            return "ja" if v else "nei"
        return LABELS.get(v, v) if isinstance(v, str) else v
    df = df.copy()
    for c in df.columns:
        if df[c].dtype.kind in "bO":
            df[c] = df[c].map(word)
    df = df.rename(columns=HEADERS)
    cols = {c: fmt for c in df.columns if df[c].dtype.kind == "f"}
    # a wide table scrolls in its own box, so the page keeps a phone's width
    return f"<div class='scroll'>{df.to_html(index=index, border=0, formatters=cols, escape=True, na_rep='–')}</div>"


def _markdown_html(text: str) -> str:
    """The methods note (Markdown: a heading, bullets with continued lines, **bold**, *italic*,
    `code`) as HTML. Written here because the note uses only these, and a Markdown library is
    not worth a dependency for one page."""
    def inline(t: str) -> str:
        t = html.escape(t)
        t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
        t = re.sub(r"\*(.+?)\*", r"<em>\1</em>", t)
        return re.sub(r"`(.+?)`", r"<code>\1</code>", t)
    out, items, para = [], [], []
    for line in text.splitlines() + [""]:
        if line.startswith("- "):
            items.append(line[2:].strip())
        elif line.startswith("  ") and items:
            items[-1] += " " + line.strip()
        elif line.startswith("#"):
            out.append(f"<h3>{inline(line.lstrip('#').strip())}</h3>")
        elif line.strip():
            para.append(line.strip())
        else:
            if items:
                out.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in items) + "</ul>")
                items = []
            if para:
                out.append(f"<p>{inline(' '.join(para))}</p>")
                para = []
    return "".join(out)


def _yearly_figure(yearly: pd.DataFrame, sample: str):
    fig, axes = plt.subplots(2, 4, figsize=(12, 5), sharex=True)
    for j, o in enumerate(OUTCOMES):
        for i, v in enumerate(("sick_leave", "staffing")):
            ax = axes[i, j]
            d = yearly[(yearly["utfall"] == o) & (yearly["variabel"] == v)]
            ax.errorbar(d["aar"], d["koeffisient"], yerr=[d["koeffisient"] - d["ki_nedre"], d["ki_ovre"] - d["koeffisient"]],
                        fmt="o", color="#3e6fb0", capsize=3)
            ax.axhline(0, color="#999", lw=0.8)
            ax.set_title(f"{norsk.outcome(o, short=True)}: {'sykefravær' if v == 'sick_leave' else 'bemanning'}", fontsize=9)
            ax.yaxis.set_major_formatter(norsk.axis_formatter(2))
    fig.suptitle(f"Koeffisient per år med 95 % konfidensintervall – {SAMPLES[sample][0].lower()}", fontsize=10)
    return fig


def _quintile_figure(qt: dict, sample: str, variable: str):
    fig, axes = plt.subplots(1, 4, figsize=(12, 3))
    for ax, o in zip(axes, OUTCOMES):
        d = qt[o]
        ax.errorbar(d["kvintil"], d["snitt_indikator"], yerr=1.96 * d["se_indikator"], fmt="o-", color="#3e6fb0", capsize=3)
        ax.axhline(0, color="#999", lw=0.8)
        ax.set_xticks(range(1, 6))
        ax.set_xlabel(f"Kvintil av {'sykefravær' if variable == 'sick_leave' else 'bemanning'}")
        ax.set_title(norsk.outcome(o), fontsize=8)
        ax.yaxis.set_major_formatter(norsk.axis_formatter(1))
    fig.suptitle(f"Vektet snitt av indikatoren per kvintil (±1,96 SE) – {SAMPLES[sample][0].lower()}", fontsize=10)
    return fig


def _series_figure(series: dict, sample: str):
    fig, axes = plt.subplots(1, 3, figsize=(12, 3))
    s = series["jobb3"]
    for ax, v in zip(axes[:2], ("sick_leave", "staffing")):
        ax.plot(s["month"], s[f"{v}_snitt"], color="#3e6fb0")
        ax.fill_between(s["month"], s[f"{v}_snitt"] - s[f"{v}_sd"], s[f"{v}_snitt"] + s[f"{v}_sd"], color="#3e6fb0", alpha=0.15)
        ax.set_title(f"{VAR_LABEL[v]}: vektet snitt ± SD", fontsize=8)
    ax = axes[2]
    for o, c in zip(("jobb3", "jobb12"), ("#3e6fb0", "#c0504d")):
        ax.plot(series[o]["month"], series[o]["indicator_snitt"], color=c, label=o)
    ax.axhline(0, color="#999", lw=0.8)
    ax.legend(fontsize=8)
    ax.set_title("Indikatoren (prosentpoeng): vektet snitt", fontsize=8)
    fig.suptitle(f"Utvikling per måned – {SAMPLES[sample][0].lower()}", fontsize=10)
    fig.autofmt_xdate()
    return fig


def truth_comparison(panel: Panel, data_dir: Path | str, se_type: str = "cluster") -> pd.DataFrame | None:
    """Month-FE estimates of both specifications against the synthetic world's truth.

    Two yardsticks: the true average marginal effect of a lasting change (truth/effects), and
    the same regression run on the world's true office contribution instead of the indicator
    (what a perfectly measured indicator would give with this specification)."""
    truth = true_effects(data_dir)
    if truth is None:
        return None
    office_truth = pd.read_parquet(Path(data_dir) / "truth" / "office_month.parquet")
    office_truth["month"] = pd.to_datetime(office_truth["month"])
    rows = []
    for s in SAMPLES:
        for spec, (sick, staff) in SPECS.items():
            for o in OUTCOMES:
                d = panel.sample(s, o).merge(office_truth[["office_id", "month", f"true_{o}"]],
                                             on=["office_id", "month"], how="left")
                d = d.dropna(subset=[sick, staff, f"true_{o}"])
                t = wls(d, "indicator", [sick, staff], fe="month", se_type=se_type).table().set_index("variable")
                oracle = wls(d, f"true_{o}", [sick, staff], fe="month", se_type=se_type)
                for v, name in (("sick_leave", sick), ("staffing", staff)):
                    true = float(truth[(truth["variabel"] == v) & (truth["utfall"] == o)]["sann_effekt"].iloc[0])
                    if v == "staffing" and s != "alle":
                        true = float("nan")  # the world's staffing counts all users; other variants differ in unit
                    lo, hi = t.loc[name, "ci_low"], t.loc[name, "ci_high"]
                    rows.append({"utvalg": s, "spesifikasjon": spec, "utfall": o, "variabel": v,
                                 "estimat": t.loc[name, "coefficient"], "ki_nedre": lo, "ki_ovre": hi,
                                 "sann_effekt": true, "dekker_sann_effekt": bool(lo <= true <= hi) if true == true else None,
                                 "samme_regresjon_paa_fasit": oracle.coef(name), "n": int(len(d))})
    return pd.DataFrame(rows)


def methods_note(panel: Panel, se_type: str) -> str:
    return f"""# Metodenotat: kontorressurser og arbeidsindikatoren

- **Enhet for analysen:** Nav-kontor x måned. Brukere som følges opp av Navs oppfølgingsenhet (NOE)
  telles ved kontoret de hører til (kontoret for bostedskommunen), som i Dahl (2025).
  Kontorer kobles til HR-data måned for måned; {panel.offices_with_structure_change} kontorer endret struktur
  (sammenslåing eller deling) i perioden og inngår med den strukturen som gjaldt hver måned.
- **Indikatoren:** vektet snitt av faktisk minus forventet per person i kontor-måneden;
  *prosentpoeng* for jobb3/jobb12, *timer per uke* for atid3/atid12.
- **Sykefravær:** sykefraværstimer / avtalte timer for statlig ansatte ved kontoret, i *prosentpoeng*
  (0–100). En koeffisient leses som endring i indikatoren per prosentpoeng høyere sykefravær.
  (Artikkelen oppgir ikke enhet; her kan det ikke misforstås.)
- **Bemanning:** avtalte timer / personer under oppfølging ved kontoret i måneden, i *timer per bruker
  per måned*. Utvalget «{SAMPLES['sit_spes'][0].lower()}» bruker bare disse brukerne i nevneren;
  utvalget «{SAMPLES['alle'][0].lower()}» bruker alle brukere under oppfølging.
- **Vekter:** antall personer med observert utfall i kontor-måneden (små kontorer teller mindre).
- **To spesifikasjoner:** som artikkelen (kontorets ressurser samme måned som indikatoren måles),
  og med ressursene i snitt over utfallsvinduet (t til t+2 eller t+11). Den første undervurderer
  virkningen av en varig endring når sykefraværet svinger fra måned til måned (se kontrollen mot fasit).
- **Modell:** vektet minste kvadraters metode (WLS), uten og med månedsdummyer. Med månedsdummyer
  er konstanten nivået i første måned; bare forskjeller mellom kontorer samme måned brukes.
  Regresjonene per år har ikke månedsdummyer (som artikkelen).
- **Standardfeil:** {SE_LABEL[se_type]} i hovedtabellene. Artikkelen oppgir ikke hvilken type den brukte;
  tabellen «Valg av standardfeil» viser alle tre. Konfidensintervaller og p-verdier bruker
  t-fordelingen med G−1 frihetsgrader for klyngerobuste feil (G = antall kontorer), ellers N−k.
  Stjerner: *** p < 0,01, ** p < 0,05, * p < 0,1.
- **Kvintiler:** kontor-månedene sorteres etter forklaringsvariabelen og deles slik at hver kvintil
  har 20 % av vekten (like verdier havner i samme kvintil). Standardfeilen til snittet per kvintil
  er av samme type som i tabellene.
- **Utelatt:** {len(panel.excluded)} kontor-måneder med manglende eller inkonsistente HR-data, se
  `utelatt.csv` og oversikten i rapporten.
- **Personvern:** bare aggregater per kontor og måned brukes; ingenting på personnivå skrives ut.
"""


def write_resources_analysis(db: Path | str, data_dir: Path | str, out: Path | str, run_id: str | None = None,
                             se_type: str = "cluster") -> Path:
    """Write the analysis to `out` (replaced atomically). Returns the HTML file."""
    if se_type not in SE_TYPES:
        raise ValueError(f"se_type must be one of {SE_TYPES}")
    panel = office_month_panel(db, data_dir, run_id)
    with atomic.directory(out) as tmp:
        index = _write(panel, data_dir, tmp, se_type)
        check_folder(tmp, "ressurser")
    return Path(out) / index.name


def _write(panel: Panel, data_dir, out: Path, se_type: str) -> Path:
    figs = Figures(out / "figurer" / "ressurser")
    body = [f"<h1>Sykefravær, bemanning og arbeidsindikatoren</h1><p>Kjøring {html.escape(panel.run_id)}. "
            f"Standardfeil i tabellene: {SE_LABEL[se_type]}.</p>"]
    note = methods_note(panel, se_type)
    (out / "metode.md").write_text(note, encoding="utf-8")
    for k, (sample, (label, _)) in enumerate(SAMPLES.items(), start=1):
        fits = article_fits(panel, sample, se_type)
        table = article_table(fits)
        long = article_table_long(fits, sample)
        long.to_csv(out / f"tabell{k}_{sample}.csv", index=False)
        table.to_csv(out / f"tabell{k}_{sample}_formatert.csv")
        (out / f"tabell{k}_{sample}.html").write_text(
            f"<!doctype html><meta charset='utf-8'><style>{CSS}</style><h2>Tabell {k}. {html.escape(label)}</h2>"
            + _html_table(table, index=True), encoding="utf-8")
        wfits = article_fits(panel, sample, se_type, spec="vindu")
        wtable = article_table(wfits)
        article_table_long(wfits, sample).assign(spesifikasjon="vindu").to_csv(
            out / f"tabell{k}b_{sample}_vindu.csv", index=False)
        window_table = (f"<h3>Tabell {k}b. Samme, med ressursene i snitt over utfallsvinduet</h3>"
                    "<p>Brukernes utfall avhenger av kontorets ressurser mens de følges opp, og sykefraværet "
                    "svinger mye fra måned til måned. Derfor viser samme måneds sykefravær bare en del av "
                    "virkningen av en varig endring. Her er sykefravær og bemanning snittet over månedene "
                    "utfallet måles over (t til t+2 for 3-månedersutfallene, t til t+11 for 12-månedersutfallene); "
                    "kontor-måneder uten HR-data for hele vinduet er utelatt.</p>" + _html_table(wtable, index=True))
        # Tabell kb after Tabell k
        comp = se_type_comparison(panel, sample)
        comp.to_csv(out / f"standardfeil_{sample}.csv", index=False)
        yearly = pd.concat([yearly_fits(panel, sample, o, se_type) for o in OUTCOMES], ignore_index=True)
        yearly.to_csv(out / f"per_aar_{sample}.csv", index=False)
        body.append(f"<h2>Tabell {k}. {html.escape(label)}</h2>"
                    "<p>WLS av kontor-månedens indikator på sykefravær og bemanning, vektet med antall brukere. "
                    "Standardfeil i parentes.</p>" + _html_table(table, index=True)
                    + _csv_link(long, f"tabell{k}_{sample}", f"tabell {k}"))
        body.append(window_table)
        body.append(f"<h3>Valg av standardfeil (med månedsdummyer)</h3>{_html_table(comp)}")
        body.append(f"<h3>Per år</h3>{figs.add(_yearly_figure(yearly, sample), f'per_aar_{sample}', 'Koeffisient per år')}"
                    + _csv_link(yearly, f"per_aar_{sample}", "koeffisienter per år"))
        for v in ("sick_leave", "staffing"):
            qt = {o: quintile_table(panel.sample(sample, o), v, se_type) for o in OUTCOMES}
            qcsv = pd.concat([d.assign(utfall=o, variabel=v) for o, d in qt.items()], ignore_index=True)
            qcsv.to_csv(out / f"kvintiler_{v}_{sample}.csv", index=False)
            body.append(f"<h3>Kvintiler av {'sykefravær' if v == 'sick_leave' else 'bemanning'}</h3>"
                        + figs.add(_quintile_figure(qt, sample, v), f"kvintiler_{v}_{sample}", "Indikatoren per kvintil")
                        + _csv_link(qcsv, f"kvintiler_{v}_{sample}", "kvintiltabellen"))
        shown = published_months(panel.db, panel.run_id, sample)
        series = {o: monthly_series(panel.sample(sample, o), published_months=shown[o]) for o in OUTCOMES}
        scsv = pd.concat([d.assign(utfall=o) for o, d in series.items()], ignore_index=True)
        scsv.to_csv(out / f"maanedlig_{sample}.csv", index=False)
        body.append("<h3>Utvikling per måned</h3>" + figs.add(_series_figure(series, sample), f"maanedlig_{sample}", "Utvikling per måned")
                    + _csv_link(scsv, f"maanedlig_{sample}", "månedsseriene"))
    truth = truth_comparison(panel, data_dir, se_type)
    if truth is not None:
        truth.to_csv(out / "fasit.csv", index=False)
        body.append("<h2>Kontroll mot fasit (syntetisk verden)</h2><p>Estimat med månedsdummyer og 95 % "
                    "konfidensintervall mot den sanne gjennomsnittlige marginale effekten av en varig endring, "
                    "og mot samme regresjon kjørt på verdens sanne kontorbidrag i stedet for indikatoren. "
                    "Spesifikasjon «samme måned» er " + SPEC_LABEL["maaned"] + ", «snitt over utfallsvinduet» er " + SPEC_LABEL["vindu"]
                    + ". Sann effekt for bemanning gjelder varianten med alle brukere i nevneren.</p>"
                    + _html_table(truth))
    summary = exclusion_summary(panel.excluded)
    panel.excluded.to_csv(out / "utelatt.csv", index=False)
    body.append("<h2>Utelatte kontor-måneder</h2>" + (_html_table(summary) if len(summary) else "<p>Ingen.</p>"))
    body.append(f"<h2>Metode</h2><div class='note'>{_markdown_html(note)}</div>")
    index = out / "ressurser.html"
    index.write_text(f"<!doctype html><html lang='nb'><meta charset='utf-8'><title>Kontorressurser</title>"
                     "<meta name='viewport' content='width=device-width, initial-scale=1'>"
                     f"<style>{CSS}{FIGURE_CSS}</style><body>{''.join(body)}</body></html>", encoding="utf-8")
    return index


__all__ = ["write_resources_analysis", "truth_comparison", "methods_note"]
