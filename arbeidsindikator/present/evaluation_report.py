"""The policy evaluation's report: the result table as CSV and JSON (term, estimate, se,
ci_low, ci_high, p, p_bootstrap, method), the event-study or leave-one-out figure, the
robustness tables, and a self-contained Norwegian HTML page that states the design, its
assumptions, what the pre-trend test can and cannot tell, and how to read the numbers."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np

from .. import norsk
from ..analyses.evaluation.run import EvaluationOutput, load_config, run_evaluation
from ..data import atomic
from .charts import COLOURS, UNIT_COLOUR, Figures, legend_below, plt, style_axis
from .htmlpage import csv_link, esc, page, section, table
from .output_rules import check_folder


_num = partial(norsk.number, decimals=2)  # estimates, SEs and bounds in the report


def _p(x) -> str:
    return "< 0,001" if x is not None and x < 0.001 else norsk.number(x, 3)


def _event_figure(out: EvaluationOutput, unit: str):
    es = out.event_study
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    ax.errorbar(es["event_time"], es["estimate"], yerr=[es["estimate"] - es["ci_low"], es["ci_high"] - es["estimate"]],
                fmt="o", color=UNIT_COLOUR, ms=4, lw=1, capsize=2, label="TWFE med ledd, 95 % KI (CR1)")
    ax.plot([out.config.reference], [0], "o", mfc="white", color=UNIT_COLOUR, ms=4,
            label="referanse (satt til null)")
    imp = es.dropna(subset=["imputation"])
    ax.plot(imp["event_time"], imp["imputation"], "s", color=COLOURS[1], ms=4, label="Imputasjon (BJS)")
    ax.axvline(out.config.reference + 0.5, color="#999", lw=0.8, ls=":")
    style_axis(ax, unit, dates=False)
    ax.set_xlabel(f"måneder fra innføring (referanse: {norsk.number(out.config.reference, 0)})")
    ax.set_title("Effekt etter tid siden innføring")
    legend_below(fig, [ax], ncol=3)
    return fig


def _loo_figure(out: EvaluationOutput, unit: str):
    loo = out.robustness["utelat_en"].sort_values("estimate")
    r = out.results.iloc[0]
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    x = np.arange(len(loo))
    ax.axhspan(r["ci_low"], r["ci_high"], color=UNIT_COLOUR, alpha=0.12, lw=0, label="95 % KI, alle enheter")
    ax.axhline(r["estimate"], color=UNIT_COLOUR, lw=1, label="estimat, alle enheter")
    ax.plot(x, loo["estimate"], "o", color=COLOURS[1], ms=4, label="uten én enhet")
    labels = loo["left_out_name"] if "left_out_name" in loo else loo["left_out"]
    ax.set_xticks(x, [str(u) for u in labels], rotation=90, fontsize=7)
    style_axis(ax, unit, dates=False)
    ax.set_title("Estimatet når én enhet utelates")
    legend_below(fig, [ax], ncol=3)
    return fig


def _warnings(out: EvaluationOutput) -> list[str]:
    """What the checks say an evaluator must watch for in this evaluation, in plain words."""
    w = []
    months = out.panel_summary.get("treated_months")
    if months is not None and months < 6:
        w.append(f"Bare {months} {'måned' if months == 1 else 'måneder'} etter innføring har utfall. Estimatet sammenligner "
                 "dem med gjennomsnittet av alle månedene før, så en endring i enhetenes bidrag som ikke har med tiltaket å "
                 "gjøre (for eksempel mellom to år) kan se ut som en effekt. Vent på flere måneder, og se tabellen over "
                 "kortere forperioder.")
    fp = out.robustness.get("forperiode")
    if fp is not None and (fp["p_difference"] < 0.05).any():
        x = fp[fp["p_difference"] < 0.05].iloc[0]
        w.append(f"Med forperiode på {x['pre_periods']} måneder blir estimatet {_num(x['estimate'])} mot {_num(fp['estimate'].iloc[0])} "
                 f"på hele panelet (p for forskjellen {_p(x['p_difference'])}). Enhetenes nivå har trolig endret seg over tid "
                 "i takt med behandlingen; forutsetningen om parallelle trender holder neppe for hele panelet.")
    pl = out.robustness.get("placebo")
    if pl is not None and (pl["p"] < 0.10).any():
        x = pl[pl["p"] < 0.10].iloc[0]
        w.append(f"Dosen flyttet {x['shift']} måneder tidligere gir en «effekt» på {_num(x['estimate'])} (p = {_p(x['p'])}) "
                 "før tiltaket fantes: tegn på ulike trender eller forventningseffekter.")
    if out.pretrend and out.pretrend["p"] < 0.10:
        w.append(f"Leddene før innføring er til sammen ulik null (p = {_p(out.pretrend['p'])}): parallelle trender er tvilsomt.")
    return w


def _html(out: EvaluationOutput, figure: str, files: dict) -> str:
    c, r = out.config, out.results.iloc[0]
    unit = norsk.INDICATOR_UNIT.get(c.outcome, "")
    s = out.panel_summary
    design = (f"Panelet har {s['units']} {'regioner' if c.level == 2 else 'kontor'} og {s['months']} måneder "
              f"({s['first_month'][:7]} til {s['last_month'][:7]}), {norsk.integer(s['rows'])} celler av "
              f"indikatoren for {norsk.outcome(c.outcome).lower()}"
              f"{'' if c.breakdown == 'Alle' else f' ({norsk.breakdown(c.breakdown)}: {norsk.group(c.group)})'}. {norsk.integer(s['suppressed_left_out'])} prikkede celler er utelatt, ikke "
              f"fylt inn. Cellene er {'vektet med antall personer' if c.weighted else 'ikke vektet'}. Modellen har faste "
              "effekter for enhet og måned; standardfeilene er klynget per enhet (CR1), og fordi det er få klynger er "
              "p-verdi og intervall også regnet med villkluster-bootstrap med nullhypotesen pålagt.")
    treat = (f"Behandlingen er dosen «{c.dose}» per enhet og måned." if c.dose else
             f"Behandlingen starter i måneden «{c.adoption}» for hver enhet (tom for enheter som ikke behandles).")
    rows = [[x["term"], _num(x["estimate"]), _num(x["se"]), f"{_num(x['ci_low'])} til {_num(x['ci_high'])}", _p(x["p"]),
             _p(x["p_bootstrap"]), x["method"]] for _, x in out.results.iterrows()]
    body = section("design", "Design", design, "")
    body += section("resultat", "Resultat", f"Estimatene er i indikatorens enhet ({unit}). " + treat,
                   table(["ledd", "estimat", "SE", "95 % KI (CR1)", "p (t, G−1 fg)", "p (bootstrap)", "metode"], rows)
                   + f"<p>Bootstrap-intervall (testinversjon): {_num(r.get('ci_low_bootstrap'))} til "
                     f"{_num(r.get('ci_high_bootstrap'))}. Minste effekt som kan oppdages med 80 % styrke (5 % nivå): "
                     f"{_num(out.robustness['mde'])} {esc(unit)}.</p>" + csv_link(out.results, "resultater", "resultatene"))
    warnings = _warnings(out)
    if warnings:
        body += section("advarsler", "Vær oppmerksom på", "",
                        "".join(f"<p class='rule'>{esc(w)}</p>" for w in warnings))
    body += section("figur", "Figur", "", figure)
    if out.pretrend:
        pt = out.pretrend
        body += section("parallelle", "Parallelle trender før innføring",
                        f"Felles test av {pt['leads']} ledd før innføring (summen av kvadrerte t-verdier, villkluster-"
                        f"bootstrap med {norsk.integer(pt['draws'])} trekk): p = {_p(pt['p'])}. Testen er gyldig også når "
                        "det er flere ledd enn klynger. At den ikke forkaster, beviser ikke parallelle trender: med få "
                        "enheter har den liten styrke, og trender kan bøye av akkurat ved innføringen.", "")
    if "placebo" in out.robustness:
        pl = out.robustness["placebo"]
        body += section("placebo", "Placebodatoer", "Dosen flyttet s måneder tidligere, estimert bare på månedene før "
                        "noen ble behandlet. En effekt her tyder på forventningseffekter eller ulike trender.",
                        table(["flyttet (mnd)", "estimat", "SE", "p"], [[str(x["shift"]), _num(x["estimate"]), _num(x["se"]),
                                                                          _p(x["p"])] for _, x in pl.iterrows()]))
    if "forperiode" in out.robustness and len(out.robustness["forperiode"]) > 1:
        fp = out.robustness["forperiode"]
        body += section("forperiode", "Kortere forperiode",
                        "Estimatet igjen med panelet startet 24, 12 og 6 måneder før første behandlede måned. Med parallelle "
                        "trender anslår alle det samme, og den lange forperioden er den mest presise; en forskjell større enn "
                        "tilfeldig variasjon (p for forskjellen, en Hausman-sammenligning) tyder på at enhetenes nivå har "
                        "endret seg over tid på en måte som følger behandlingen.",
                        table(["forperiode (mnd)", "fra", "estimat", "SE", "forskjell fra hele panelet", "p (forskjell)"],
                              [[str(x["pre_periods"]), x["first_period"][:7], _num(x["estimate"]), _num(x["se"]),
                                _num(x["difference"]), _p(x["p_difference"])] for _, x in fp.iterrows()]))
    if "randomisering" in out.robustness:
        ri = out.robustness["randomisering"]
        body += section("ri", "Randomiseringsinferens", f"Hele dosebaner fordelt tilfeldig på enhetene "
                        f"({norsk.integer(ri['draws'])} {'(alle) ' if ri['exact'] else ''}omfordelinger): p = {_p(ri['p'])}.", "")
    body += section("forutsetninger", "Forutsetninger og lesemåte",
                    "Designet forutsetter at enhetene ville hatt samme utvikling i indikatoren uten tiltaket (parallelle "
                    "trender), at ingen endret atferd før innføringen (ingen forventningseffekt), og at tiltaket i én enhet "
                    "ikke påvirker de andre. Indikatoren er faktisk minus forventet utfall, så en effekt her er en endring i "
                    "Navs bidrag slik indikatoren måler det, utover det brukernes kjennetegn og arbeidsmarkedet forklarer; "
                    "endrer tiltaket hvem som følges opp, endres også sammenligningsgrunnlaget. Prikkede celler er utelatt, "
                    "og det kan endre vektene i små enheter.", "")
    links = " · ".join(f"<a href='{esc(n)}'>{esc(n)}</a>" for n in files)
    return page(f"Evaluering: {c.name}", body + f"<p class='meta'>Filer: {links}</p>")


def write_evaluation(db: Path | str, config: Path | str, out: Path | str) -> Path:
    """Run the evaluation of `config` on the results store `db` and write everything to `out`
    (replaced whole when done). Returns the HTML report."""
    cfg = load_config(config)
    result = run_evaluation(db, cfg)
    unit = norsk.INDICATOR_UNIT.get(cfg.outcome, "")
    with atomic.directory(out) as tmp:
        files = {}
        result.results.to_csv(tmp / "resultater.csv", index=False)
        files["resultater.csv"] = 1
        summary = {"konfigurasjon": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items()},
                   "panel": result.panel_summary, "resultater": json.loads(result.results.to_json(orient="records")),
                   "parallelle_trender": result.pretrend, "minste_oppdagbare_effekt": result.robustness["mde"]}
        (tmp / "resultater.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
        files["resultater.json"] = 1
        if result.event_study is not None:
            result.event_study.to_csv(tmp / "hendelsesstudie.csv", index=False)
            files["hendelsesstudie.csv"] = 1
        for name, df in result.robustness.items():
            if hasattr(df, "to_csv"):
                df.to_csv(tmp / f"robusthet_{name}.csv", index=False)
                files[f"robusthet_{name}.csv"] = 1
        figs = Figures(tmp / "figurer")
        fig = _event_figure(result, unit) if result.event_study is not None else _loo_figure(result, unit)
        figure = figs.add(fig, "evaluering", "Effekt av tiltaket")
        (tmp / "rapport.html").write_text(_html(result, figure, files), encoding="utf-8")
        check_folder(tmp, "evaluering")
    return Path(out) / "rapport.html"


__all__ = ["write_evaluation"]
