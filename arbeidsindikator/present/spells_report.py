"""The follow-up spell analysis (the NOE evaluation) as files: aggregated spell counts, shares by
3, 6 and 12 months, life tables, hazard ratios, the before/after comparison beside the truth
(CSV and JSON), the figures, and a self-contained Norwegian HTML report. Nothing person-level
is written; life-table rows with fewer than `MIN_PERSONS` spells entering are left out."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import fields
from functools import partial
from pathlib import Path

import numpy as np

from .. import norsk
from ..analyses.spells.cohorts import OUTCOMES, CohortConfig, CohortResult, analyse_cohorts
from ..analyses.spells.build import SpellError, SpellRules
from ..data import atomic
from .charts import COLOURS, Figures, legend_below, plt, style_axis
from .htmlpage import csv_link, esc, page, section, table
from .output_rules import MIN_COUNT, check_folder

MIN_PERSONS = MIN_COUNT
_num = partial(norsk.number, decimals=1)
TERMS = {"kohort_etter": "Kohort etter (NOE)", "mann": "Mann", "alder": "Alder (år)", "alder2": "Alder², sentrert",
         "utd_grunnskole": "Grunnskole", "utd_hoyere": "Høyere utdanning", "utd_ukjent": "Utdanning ukjent",
         "innv_vestlig": "Innvandrer, vestlig", "innv_ikke_vestlig": "Innvandrer, ikke-vestlig",
         "innv_ukjent": "Landbakgrunn ukjent", "permittert": "Permittert ved start",
         "ledige_stillinger": "Ledige stillinger ved start (%)"}
HR_OUTCOMES = {**OUTCOMES, "arbeid_fine_gray": "Overgang til arbeid (Fine–Gray, andre avganger konkurrerer)"}
DESIGNS = {"naiv": "Naiv før/etter", "justert": "Justert for kjennetegn",
           "forskjell_i_forskjeller": "Forskjell i forskjeller (30–59 mot 25–29 og 60–66 år)",
           "ruting": "NOE mot lokalkontor i etter-kohorten, ganger NOEs andel"}


TYPE_NAMES = {int: "et heltall", float: "et tall", bool: "true eller false", str: "tekst"}


def _is(v, want: type) -> bool:
    """TOML's value has the rule's type: true is no number, a whole number is a float too."""
    if want is bool or isinstance(v, bool):
        return want is bool and isinstance(v, bool)
    return isinstance(v, (int, float)) if want is float else isinstance(v, want)


def load_config(path: Path | str | None) -> CohortConfig:
    """[spells] age_min, age_max, gap_months, after_ikke_vurdert, after_sick_listed,
    work_hours_per_week, work_window; [cohorts] before = ["2021-03", "2021-11"], after = [...],
    horizons = [3, 6, 12]."""
    if path is None:
        return CohortConfig()
    p = Path(path)
    if not p.exists():
        raise SpellError(f"konfigurasjonsfilen {p} finnes ikke")
    if p.is_dir():
        raise SpellError(f"konfigurasjonen {p} er en mappe, ikke en fil")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SpellError(f"{p} kan ikke leses som TOML: {e}") from None
    allowed = {f.name for f in fields(SpellRules)}
    rules_raw = raw.get("spells", {})
    if not isinstance(rules_raw, dict):
        raise SpellError(f"[spells] må være en tabell, ikke {rules_raw!r}")
    unknown = set(rules_raw) - allowed
    if unknown:
        raise SpellError(f"ukjente nøkler i [spells]: {', '.join(sorted(unknown))} (tillatt: {', '.join(sorted(allowed))})")
    wrong = [f"{k} må være {TYPE_NAMES[type(getattr(SpellRules(), k))]}, ikke {v!r}" for k, v in rules_raw.items()
             if not _is(v, type(getattr(SpellRules(), k)))]
    if wrong:
        raise SpellError("; ".join(wrong))
    rules = SpellRules(**rules_raw)
    rules.check()
    c = raw.get("cohorts", {})
    if not isinstance(c, dict):
        raise SpellError(f"[cohorts] må være en tabell (before, after, horizons), ikke {c!r}")
    unknown = set(c) - {"before", "after", "horizons"}
    if unknown:
        raise SpellError(f"ukjente nøkler i [cohorts]: {', '.join(sorted(unknown))}")
    cohorts = {}
    for key, default in (("before", ("2021-03", "2021-11")), ("after", ("2023-03", "2023-11"))):
        span = c.get(key, default)
        if (not isinstance(span, list | tuple) or len(span) != 2
                or not all(isinstance(m, str) and re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", m) for m in span)):
            raise SpellError(f"[cohorts] {key} må være to måneder [\"ÅÅÅÅ-MM\", \"ÅÅÅÅ-MM\"], ikke {span!r}")
        cohorts[span[0][:4]] = (span[0], span[1])  # named by the year it starts
    if len(cohorts) != 2:
        raise SpellError("kohortene før og etter må starte i ulike år")
    horizons = c.get("horizons", [3, 6, 12])
    if not isinstance(horizons, list | tuple) or not horizons or not all(_is(h, int) and 1 <= h <= 36 for h in horizons):
        raise SpellError(f"[cohorts] horizons må være en liste med måneder fra 1 til 36, ikke {horizons!r}")
    horizons = tuple(sorted(set(horizons)))
    return CohortConfig(rules=rules, cohorts=cohorts, horizons=horizons)


def _curves_figure(res: CohortResult):
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, o in zip(axes, ("avsluttet", "arbeid")):
        for i, (c, g) in enumerate(res.life_tables[res.life_tables["outcome"] == o].groupby("cohort")):
            g = g.merge(_lt(res)[["cohort", "outcome", "from"]], on=["cohort", "outcome", "from"])
            ax.step(np.r_[0, g["to"]], 100 * np.r_[1.0, g["survival"]], where="post", color=COLOURS[i], label=f"kohort {c}")
        style_axis(ax, "prosent", dates=False, zero=False)
        ax.set_ylim(0, 100)
        ax.set_xlabel("måneder siden start")
        ax.set_title("Fortsatt arbeidssøker" if o == "avsluttet" else "Ennå ikke i arbeid")
    legend_below(fig, list(axes), ncol=2)
    return fig


def _html(res: CohortResult, cfg: CohortConfig, figure: str) -> str:
    before, after = list(cfg.cohorts)
    r = cfg.rules
    counts = {row["cohort"]: row for _, row in res.counts.iterrows()}
    lead = (f"<p class='note'>Forløp for personer {r.age_min}–{r.age_max} år med standard innsats, som starter "
            f"{esc(' – '.join(cfg.cohorts[before]))} (før NOE) og {esc(' – '.join(cfg.cohorts[after]))} (etter). "
            f"{norsk.integer(counts[before]['spells'])} og {norsk.integer(counts[after]['spells'])} forløp. Andelen "
            f"permitterte ved start: {_num(counts[before]['laid_off_share'])} og {_num(counts[after]['laid_off_share'])} "
            "prosent.</p>")
    rules = (f"Et forløp starter når en person på {r.age_min}–{r.age_max} år er registrert med standard innsats og "
             f"enten ikke var registrert de {r.gap_months} månedene før"
             + (", var «ikke vurdert» måneden før" if r.after_ikke_vurdert else "")
             + (" eller var sykmeldt måneden før" if r.after_sick_listed else "")
             + ". Forløpet slutter ved første av: start på et tiltak, vedtak om situasjonsbestemt (eller annen) innsats, "
             "overføring fra NOE til et lokalkontor, eller slutt på arbeidssøkerperioden (måneden personen ikke lenger er "
             f"registrert). Overgang til arbeid: perioden slutter og personen arbeider minst {_num(r.work_hours_per_week)} "
             f"timer i uka i snitt (a-ordningen) i en av de {r.work_window} første månedene etter. Forløp som fortsatt "
             "pågår i siste måned i dataene, er sensurert der.")
    body = section("regler", "Forløpsregler", rules, "")
    rows = []
    for o, name in OUTCOMES.items():
        for k in cfg.horizons:
            cells = [name, str(k)]
            for c in (before, after):
                x = res.shares[(res.shares["cohort"] == c) & (res.shares["outcome"] == o) & (res.shares["month"] == k)].iloc[0]
                cells.append(f"{_num(x['share'])} ({_num(x['ci_low'])}–{_num(x['ci_high'])})")
            rows.append(cells)
    body += section("andeler", "Andeler innen 3, 6 og 12 måneder",
                    "Kumulativ insidens (Aalen–Johansen) der andre avganger konkurrerer; for arbeid Kaplan–Meier for tiden "
                    "til første måned i arbeid. Prosent med 95 % konfidensintervall.",
                    table(["utfall", "måneder", f"kohort {before}", f"kohort {after}"], rows)
                    + csv_link(res.shares, "andeler", "andelene"))
    body += section("kurver", "Overlevelseskurver (livstabeller)", "Andelen som ennå ikke har hatt utfallet, måned for "
                    f"måned (aktuarisk livstabell med sensurering; måneder med færre enn {MIN_PERSONS} forløp vises ikke).",
                    figure + csv_link(_lt(res), "livstabeller", "livstabellene"))
    hr = res.hazard_ratios
    rows = [[HR_OUTCOMES[x["outcome"]], TERMS.get(x["term"], x["term"]), norsk.number(x["hazard_ratio"], 3),
             f"{norsk.number(x['hr_low'], 3)}–{norsk.number(x['hr_high'], 3)}", norsk.number(x["p"], 3)]
            if x["estimable"] else [HR_OUTCOMES[x["outcome"]], TERMS.get(x["term"], x["term"]), "ikke estimerbar", "", ""]
            for _, x in hr.iterrows()]
    body += section("cox", "Cox-regresjon: hasardrater",
                    "Cox-modell (Efrons metode for like tider), standardfeil klynget per person (én person kan ha flere "
                    "forløp). For avsluttet periode og situasjonsbestemt innsats er andre avganger sensurert "
                    "(årsaksspesifikk hasard). Hasardrate over 1: utfallet kommer raskere. «Ikke estimerbar»: ingen hendelser i "
                    "én av gruppene leddet skiller mellom, så estimatet vokser uten grense.",
                    table(["utfall", "ledd", "hasardrate", "95 % KI", "p"], rows) + csv_link(hr, "hasardrater", "hasardratene"))
    if len(res.ph_tests):
        ph = res.ph_tests[res.ph_tests["term"].isin(["kohort_etter", "GLOBAL"])]
        rows = [[OUTCOMES[x["outcome"]], "Alle ledd samlet" if x["term"] == "GLOBAL" else TERMS[x["term"]],
                 norsk.number(x["chisq"], 2), str(int(x["df"])), norsk.number(x["p"], 3)] for _, x in ph.iterrows()]
        body += section("ph", "Proporsjonale hasarder?",
                        "Test av om hasardraten endrer seg med tiden siden start (Grambsch og Therneau; som R-funksjonen "
                        "cox.zph). Liten p: hasardraten for kohorten er ikke den samme hele forløpet, og tallet over er et "
                        "gjennomsnitt over tid.",
                        table(["utfall", "ledd", "kjikvadrat", "fg", "p"], rows) + csv_link(res.ph_tests, "ph_tester", "testene"))
    cmp = res.comparison
    rows = [[OUTCOMES[x["outcome"]], str(x["month"]), DESIGNS[x["design"]], _num(x["estimate"]),
             f"{_num(x['ci_low'])} til {_num(x['ci_high'])}"] for _, x in cmp.iterrows()]
    body += section("sammenligning", "Før/etter: hva forskjellen består av",
                    "Forskjellen mellom kohortene i prosentpoeng. Den naive forskjellen blander NOE med alt annet som endret "
                    "seg fra 2021 til 2023: arbeidsmarkedet, og hvem som ble arbeidssøkere (flere permitterte i 2021). "
                    "Justeringen fjerner forskjeller i de observerte kjennetegnene; forskjell i forskjeller bruker i tillegg "
                    "aldersgrupper NOE ikke er for, til å fjerne det arbeidsmarkedet gjorde med begge.",
                    table(["utfall", "måneder", "design", "forskjell", "95 % KI"], rows) + csv_link(cmp, "sammenligning", "tabellen"))
    if res.truth is not None:
        t = res.truth
        rows = [[OUTCOMES[x["outcome"]], str(x["month"]), _num(x["before"]), _num(x["actual"]), _num(x["without_noe"]),
                 _num(x["noe_effect"]), _num(x["other_change"])] for _, x in t.iterrows()]
        body += section("fasit", "Fasit fra den syntetiske verdenen",
                        f"Den samme verdenen med NOE slått av (samme tilfeldige tall; bare rutingen er ulik): kohort {after}s "
                        "forløp uten NOEs forlengelse, og timene personene ville ha jobbet. NOEs sanne effekt er faktisk minus "
                        "uten NOE; resten av den naive forskjellen er alt annet som endret seg mellom kohortene.",
                        table(["utfall", "måneder", f"kohort {before}", f"kohort {after}", f"{after} uten NOE",
                               "NOEs effekt", "annen endring"], rows) + csv_link(t, "fasit", "fasiten"))
    body += section("lesemaate", "Lesemåte og forbehold",
                    "Et før/etter-design kan ikke skille NOE fra andre endringer mellom kohortene. Justering hjelper bare "
                    "for det som er observert; forskjell i forskjeller forutsetter at aldersgruppene ville ha utviklet seg "
                    "likt uten NOE. Hasardratene antar proporsjonale hasarder; tidene er hele måneder.", "")
    for n in res.notes:
        body += f"<p class='meta'>{esc(n)}</p>"
    return page("Oppfølgingsforløp og NOE: før og etter", body, lead)


def _lt(res: CohortResult):
    """The life tables as published: rows with at least MIN_PERSONS spells entering, and only
    while the spells left after the row (entering - events - censored, the next row's entering)
    are none or at least MIN_PERSONS, so that no small number follows by difference."""
    lt = res.life_tables
    left = lt["entering"] - lt["events"] - lt["censored"]
    ok = (lt["entering"] >= MIN_PERSONS) & ((left <= 0) | (left >= MIN_PERSONS))
    # once a row fails, the cohort's later rows go too (a later row would give the gap back)
    ok = ok.groupby([lt["cohort"], lt["outcome"]]).cummin()
    return lt[ok].reset_index(drop=True)


def write_spells_report(data_dir: Path | str, out: Path | str, config: Path | str | None = None) -> Path:
    cfg = load_config(config)
    res = analyse_cohorts(data_dir, cfg)
    with atomic.directory(out) as tmp:
        res.counts.to_csv(tmp / "forlop.csv", index=False)
        res.shares.to_csv(tmp / "andeler.csv", index=False)
        _lt(res).to_csv(tmp / "livstabeller.csv", index=False)
        res.hazard_ratios.to_csv(tmp / "hasardrater.csv", index=False)
        res.ph_tests.to_csv(tmp / "ph_tester.csv", index=False)
        res.comparison.to_csv(tmp / "sammenligning.csv", index=False)
        if res.truth is not None:
            res.truth.to_csv(tmp / "fasit.csv", index=False)
        summary = {"regler": {f.name: getattr(cfg.rules, f.name) for f in fields(SpellRules)},
                   "kohorter": cfg.cohorts,
                   **{name: json.loads(df.to_json(orient="records")) for name, df in (
                       ("forlop", res.counts), ("andeler", res.shares), ("hasardrater", res.hazard_ratios),
                       ("sammenligning", res.comparison))},
                   "fasit": None if res.truth is None else json.loads(res.truth.to_json(orient="records"))}
        (tmp / "resultater.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
        figs = Figures(tmp / "figurer")
        figure = figs.add(_curves_figure(res), "livstabeller", "Andel fortsatt arbeidssøker og ennå ikke i arbeid")
        (tmp / "rapport.html").write_text(_html(res, cfg, figure), encoding="utf-8")
        check_folder(tmp, "forlop")
    return Path(out) / "rapport.html"


__all__ = ["write_spells_report", "load_config", "MIN_PERSONS"]
