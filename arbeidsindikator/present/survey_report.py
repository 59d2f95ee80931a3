"""The survey analyses as files: the time-use tables (Proba's 3-3 / 4-1 and 4-2 with intervals)
and the office, user and follow-up survey tables, each as CSV and JSON plus a self-contained
Norwegian HTML report. Small domains are marked, not printed as if precise."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from .. import norsk
from ..analyses.surveys.tables import GROUP_FLAGS, MIN_ANSWERS, MIN_N, survey_tables
from ..analyses.surveys.time_use import USER_GROUPS, time_use_tables
from ..data import atomic
from .htmlpage import csv_link, esc, page, section, table
from .output_rules import check_folder

_num = partial(norsk.number, decimals=1)
GROUP_NAMES = {"standard": "Standard innsats", "situasjonsbestemt": "Situasjonsbestemt innsats",
               "spesielt_tilpasset": "Spesielt tilpasset innsats", "varig_tilpasset": "Varig tilpasset innsats",
               "ikke_fastsatt": "Innsatsgruppe ikke fastsatt", "ikke_knyttet": "Ikke knyttet til innsatsgruppe",
               "oppfolging": "Arbeidsrettet oppfølging i alt"}
ITEMS = {"cooperation": "Samarbeidet med arbeidsgivere fungerer godt", "capacity": "Kontoret har kapasitet til oppfølgingen",
         "satisfaction": "Fornøyd med oppfølgingen", "helped": "Oppfølgingen hjalp meg mot arbeid"}
STATS = {"snitt": "gjennomsnitt (1–6)", "1-2": "andel 1–2 (%)", "3-4": "andel 3–4 (%)", "5-6": "andel 5–6 (%)",
         "topp": "andel 6 (%)"}
OUTCOMES = {"plan": "Har skriftlig plan (kontor)", "satisfaction": "Fornøyd med oppfølgingen (1–6)",
            "in_work": "I arbeid (oppfølging)"}
SURVEYS = {"kontor": "kontorundersøkelsen", "bruker": "brukerundersøkelsen", "oppfolging": "oppfølgingsundersøkelsen"}
# the tables as written for readers: Norwegian file names
FILES = {"likert": "skalaer", "groups": "grupper", "regressions": "regresjoner", "in_work": "i_arbeid",
         "response_rates": "svarprosent", "notes": "merknader"}
FEW = " *"  # marks an estimate on fewer than MIN_N answers
WITHHELD = "for få svar"  # an estimate on fewer than MIN_ANSWERS answers is not shown


def _ci(lo, hi, d=1) -> str:
    return f"{norsk.number(lo, d)} til {norsk.number(hi, d)}"


def _write(tmp: Path, name: str, df) -> None:
    df.to_csv(tmp / f"{name}.csv", index=False)


def write_time_use_report(data_dir: Path | str, out: Path | str, team: float = 0.0) -> Path:
    t = time_use_tables(data_dir, team)
    fte, change, per = t["fte"], t["change"], t["per_thousand"]
    years = sorted(fte["year"].unique())
    rows = []
    for g in GROUP_NAMES:
        cells = [GROUP_NAMES[g]]
        for y in years:
            r = fte[(fte["year"] == y) & (fte["group"] == g)].iloc[0]
            cells += [_num(r["fte"]), _ci(r["ci_low"], r["ci_high"]), norsk.number(r["deff"], 2)]
        rows.append(cells)
    head = ["innsatsgruppe"] + [h for y in years for h in (f"årsverk {y}", "95 % KI", "designeffekt")]
    body = section("aarsverk", "Årsverk til arbeidsrettet oppfølging (tabell 3-3 / 4-1)",
                   "Ressurskartleggingens timer vektet opp til landets årsverk: i hvert utvalgsstratum andelen av "
                   "årsverkene som går til gruppen, ganger stratumets kjente årsverk fra HR. Intervallene tar med både "
                   "utvalget av kontorer og at to uker er et utvalg av tiden; t-fordeling med designets frihetsgrader.",
                   table(head, rows) + csv_link(fte, "aarsverk", "årsverkene"))
    if len(change):
        rows = [[GROUP_NAMES[r["group"]], _num(r["before"]), _num(r["team"]) if r["team"] else "", _num(r["after"]),
                 f"{_num(r['difference'])} ({_num(r['difference_without_team'])})" if r["team"] else _num(r["difference"]),
                 _ci(r["ci_low"], r["ci_high"]),
                 f"{norsk.number(r['pct'], 0)} % ({norsk.number(r['pct_without_team'], 0)} %)" if r["team"]
                 else f"{norsk.number(r['pct'], 0)} %"] for _, r in change.iterrows()]
        body += section("endring", f"Endring fra {years[-2]} til {years[-1]}",
                        "Innsatsteamets årsverk er lagt til det første årets standardinnsats når de er oppgitt; tallene "
                        "uten innsatsteam står i parentes, som i Proba-rapporten.",
                        table(["innsatsgruppe", str(years[-2]), "innsatsteam", str(years[-1]), "differanse",
                               "95 % KI", "prosentvis"], rows) + csv_link(change, "endring", "endringen"))
    rows = [[GROUP_NAMES[r["group"]], str(r["year"]), norsk.number(r["fte_per_1000"], 2), _ci(r["ci_low"], r["ci_high"], 2),
             norsk.integer(round(r["users"]))] for _, r in per.iterrows() if r["group"] in USER_GROUPS]
    body += section("per1000", "Årsverk per 1 000 brukere (tabell 4-2)",
                    "Årsverkene delt på registerets brukere i gruppen (snitt av månedene i året).",
                    table(["innsatsgruppe", "år", "årsverk per 1 000", "95 % KI", "brukere"], rows)
                    + csv_link(per, "per_1000", "tabellen"))
    with atomic.directory(out) as tmp:
        _write(tmp, "aarsverk", fte)
        _write(tmp, "endring", change)
        _write(tmp, "per_1000", per)
        (tmp / "resultater.json").write_text(json.dumps({k: json.loads(v.to_json(orient="records")) for k, v in t.items()},
                                                        ensure_ascii=False, indent=2), encoding="utf-8")
        (tmp / "rapport.html").write_text(page("Tidsbruk: årsverk til arbeidsrettet oppfølging", body), encoding="utf-8")
        check_folder(tmp, "tidsbruk")
    return Path(out) / "rapport.html"


def write_survey_report(data_dir: Path | str, out: Path | str) -> Path:
    t = survey_tables(data_dir)
    body = ""
    if "response_rates" in t:
        rr = t["response_rates"]
        rows = [[SURVEYS.get(r["survey"], r["survey"]), norsk.integer(r["respondents"]), norsk.integer(r["refused_or_other"]),
                 norsk.integer(r["not_contacted"]), norsk.number(r["eligible_share"], 2), _num(r["response_rate"]) + " %"]
                for _, r in rr.iterrows()]
        body += section("svarprosent", "Svarprosent", "Svar / (svar + nektet eller annet frafall + e × ikke nådd), der e er "
                        "anslått andel i målgruppen blant dem som ikke ble nådd (AAPOR RR3; RR1 når e = 1).",
                        table(["undersøkelse", "svar", "frafall", "ikke nådd", "e", "svarprosent"], rows))
    if "likert" in t:
        lk = t["likert"]
        rows = [[esc(SURVEYS.get(r["survey"], r["survey"])), ITEMS.get(r["item"], r["item"]), r["domain"], STATS[r["statistic"]],
                 *((WITHHELD, "", "") if r["withheld"] else
                   (_num(r["estimate"]) + (FEW if r["few"] else ""), _ci(r["ci_low"], r["ci_high"]), norsk.number(r["deff"], 2))),
                 norsk.integer(r["n"])] for _, r in lk.iterrows()]
        body += section("skalaer", "Svar på skalaer fra 1 til 6",
                        f"Vektede gjennomsnitt og fordelinger med 95 % konfidensintervall og designeffekt. * betyr færre enn "
                        f"{MIN_N} svar: usikkert. Med færre enn {MIN_ANSWERS} svar vises ikke estimatet (svarene ville være "
                        "enkeltes).",
                        table(["undersøkelse", "spørsmål", "gruppe", "mål", "estimat", "95 % KI", "designeffekt", "svar"], rows)
                        + csv_link(lk, "skalaer", "tabellen"))
    if "groups" in t:
        gr = t["groups"]
        rows = [[r["label"], *((WITHHELD, "", "") if r["withheld"] else
                               (_num(r["difference"]) + (FEW if r["few"] else ""), _ci(r["ci_low"], r["ci_high"], 2),
                                norsk.number(r["p"], 3))), norsk.integer(r["n_group"])]
                for _, r in gr.iterrows()]
        body += section("grupper", "Utsatte grupper mot resten (brukerundersøkelsen)",
                        "Forskjell i gjennomsnittlig fornøydhet (1–6) mellom gruppen og alle andre, vektet per region.",
                        table(["gruppe", "forskjell", "95 % KI", "p", "svar i gruppen"], rows) + csv_link(gr, "grupper", "tabellen"))
    if "in_work" in t:
        w = t["in_work"].iloc[0]
        body += section("arbeid", "I arbeid etter oppfølgingen (oppfølgingsundersøkelsen)",
                        f"Andel i arbeid: {_num(w['share'])} % (95 % KI {_ci(w['ci_low'], w['ci_high'])}), vektet til "
                        f"befolkningen etter kjønn og alder (poststratifisering); designeffekt {norsk.number(w['deff'], 2)}.", "")
    if "regressions" in t:
        rg = t["regressions"]
        names = {**GROUP_FLAGS, "konstant": "Konstant", "stort_kontor": "Stort kontor (40+ årsverk)",
                 "bemanning": "Bemanning (årsverk per 100 brukere, sentrert)"}
        rows = [[SURVEYS.get(r["survey"], r["survey"]), OUTCOMES.get(r["outcome"], r["outcome"]),
                 names.get(r["term"], r["term"]), norsk.number(r["coef"], 3),
                 norsk.number(r["se"], 3),
                 (f"{norsk.number(r['odds_ratio'], 2)} ({_ci(r['or_low'], r['or_high'], 2)})"
                  if "odds_ratio" in r and r["odds_ratio"] == r["odds_ratio"] else ""), norsk.number(r["p"], 3)]
                for _, r in rg.iterrows()]
        body += section("regresjoner", "Regresjoner med designbaserte standardfeil",
                        "Vektet lineær eller logistisk regresjon; standardfeilene tar hensyn til utvalgsdesignet "
                        "(Taylor-linearisering), intervallene bruker designets frihetsgrader. Oddsrate for logistiske modeller.",
                        table(["undersøkelse", "utfall", "ledd", "koeffisient", "SE", "oddsrate (95 % KI)", "p"], rows)
                        + csv_link(rg, "regresjoner", "tabellen"))
    for n in t.get("notes", {"note": []})["note"]:
        body += f"<p class='meta'>{esc(n)}</p>"
    with atomic.directory(out) as tmp:
        for k, v in t.items():
            _write(tmp, FILES.get(k, k), v)
        (tmp / "resultater.json").write_text(json.dumps({FILES.get(k, k): json.loads(v.to_json(orient="records"))
                                                         for k, v in t.items()}, ensure_ascii=False, indent=2), encoding="utf-8")
        (tmp / "rapport.html").write_text(page("Spørreundersøkelser: kontorer, brukere og oppfølging", body), encoding="utf-8")
        check_folder(tmp, "undersokelse")
    return Path(out) / "rapport.html"


__all__ = ["write_time_use_report", "write_survey_report"]
