"""One policy evaluation from a configuration file: the panel of the published indicator, the
treatment table, the estimators and the robustness checks, as result tables (no files
written; `present.evaluation_report` writes them).

    [evaluation]
    name = "Kutt i tiltaksplasser"
    outcome = "jobb3"          # atid3, atid12, jobb3, jobb12
    level = 2                  # 2 regions, 3 offices
    breakdown = "Alle"         # and group = "Alle"
    from = "2022-01"           # the panel's months (optional)
    to = "2024-12"
    treatment = "tiltak.csv"   # relative to this file: unit, month, <dose>  or  unit, <adoption>
    dose = "kutt"              # a dose per unit and month ... or: adoption = "start"
    weighted = true            # weight cells by their persons
    bootstrap = 9999           # wild cluster bootstrap draws
    bootstrap_weights = "webb" # or "rademacher"
    seed = 1
    leads = 6                  # event study (adoption designs)
    lags = 12
    reference = -1
    placebo_shifts = [6, 12]   # placebo adoption dates (dose designs)
    exclude = ["NOE"]          # units left out of the panel (ids or names): NOE is no region
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .twfe import SMALL_SAMPLE, EvaluationError, event_study, twfe, wild_bootstrap
from .imputation import imputation
from .panels import indicator_panel, treatment_table, with_treatment
from .robustness import (leave_one_out, minimum_detectable_effect, placebo_dates, randomization_inference,
                         shorter_pre_periods)

KEYS = {"name": str, "outcome": str, "level": int, "breakdown": str, "group": str, "from": str, "to": str,
        "treatment": str, "dose": str, "adoption": str, "weighted": bool, "bootstrap": int, "bootstrap_weights": str,
        "seed": int, "leads": int, "lags": int, "reference": int, "placebo_shifts": list, "exclude": list,
        "small_sample": str, "average_by": str}


@dataclass
class EvaluationConfig:
    treatment: Path
    name: str = "Evaluering"
    outcome: str = "jobb3"
    level: int = 2
    breakdown: str = "Alle"
    group: str = "Alle"
    start: str | None = None
    end: str | None = None
    dose: str | None = None
    adoption: str | None = None
    weighted: bool = True
    bootstrap: int = 9999
    bootstrap_weights: str = "webb"
    seed: int = 1
    leads: int = 6
    lags: int = 12
    reference: int = -1
    placebo_shifts: list = field(default_factory=lambda: [6, 12])
    exclude: list = field(default_factory=list)  # unit ids or names left out of the panel
    small_sample: str = "full"  # CR1's convention (evaluation.SMALL_SAMPLE): full, or nested as fixest
    average_by: str = "event_time"  # the imputation variance's smart average: event_time or cohort_period


TYPE_NAMES = {str: "tekst", int: "et heltall", bool: "true eller false", list: "en liste"}
RANGES = {"bootstrap": (99, 99_999), "seed": (0, 2**32 - 1), "leads": (1, 60), "lags": (0, 120), "reference": (-60, -1)}


def load_config(path: Path | str) -> EvaluationConfig:
    """Read and check the [evaluation] table: every problem at once, with the key and what is
    valid, in Norwegian (the user reads it)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8")).get("evaluation")
    except (OSError, tomllib.TOMLDecodeError) as e:
        why = "det er en mappe" if path.is_dir() else ("finnes ikke" if not path.exists() else str(e))
        raise EvaluationError(f"kan ikke lese konfigurasjonen {path}: {why}") from None
    if not isinstance(raw, dict):
        raise EvaluationError(f"{path} har ingen [evaluation]-tabell")
    problems = [f"ukjent nøkkel {k!r}" for k in raw if k not in KEYS]
    for k, v in raw.items():
        want = KEYS.get(k)
        # TOML's true is a Python int too: a count or a seed must not be a boolean
        if want is not None and (not isinstance(v, want) or (want is int and isinstance(v, bool))):
            problems.append(f"{k} må være {TYPE_NAMES[want]}, ikke {v!r}")
        elif k in RANGES and not RANGES[k][0] <= v <= RANGES[k][1]:
            problems.append(f"{k} må være fra {RANGES[k][0]} til {RANGES[k][1]}, ikke {v}")
    if "treatment" not in raw:
        problems.append("treatment (behandlingstabellen) mangler")
    if ("dose" in raw) == ("adoption" in raw):
        problems.append("oppgi nøyaktig én av dose og adoption")
    if raw.get("bootstrap_weights", "webb") not in ("webb", "rademacher"):
        problems.append("bootstrap_weights må være webb eller rademacher")
    if not isinstance(raw.get("exclude", []), list) or not all(isinstance(u, str) and u for u in raw.get("exclude", [])):
        problems.append("exclude må være en liste med enhetsnumre eller -navn")
    shifts = raw.get("placebo_shifts", [6, 12])
    if not isinstance(shifts, list) or not all(isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= 120 for x in shifts):
        problems.append(f"placebo_shifts må være en liste med heltall fra 1 til 120 (måneder), ikke {shifts!r}")
    if raw.get("small_sample", "full") not in SMALL_SAMPLE:
        problems.append(f"small_sample må være {' eller '.join(SMALL_SAMPLE)}")
    if raw.get("average_by", "event_time") not in ("event_time", "cohort_period"):
        problems.append("average_by må være event_time eller cohort_period")
    if raw.get("level", 2) not in (2, 3):
        problems.append("level må være 2 (regioner) eller 3 (kontorer)")
    for k in ("from", "to"):
        if k in raw and not (isinstance(raw[k], str) and re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", raw[k])):
            problems.append(f"{k} må være en måned \"ÅÅÅÅ-MM\", ikke {raw[k]!r}")
    if problems:
        raise EvaluationError(f"{path}: " + "; ".join(problems))
    args = {k: v for k, v in raw.items() if k not in ("from", "to", "treatment")}
    return EvaluationConfig(treatment=(path.parent / raw["treatment"]), start=raw.get("from"), end=raw.get("to"), **args)


@dataclass
class EvaluationOutput:
    config: EvaluationConfig
    results: pd.DataFrame  # term, estimate, se, ci_low, ci_high, p, p_bootstrap, method
    panel_summary: dict
    event_study: pd.DataFrame | None = None
    pretrend: dict | None = None
    robustness: dict = field(default_factory=dict)


def _panel(db, c: EvaluationConfig, treatment: pd.DataFrame) -> pd.DataFrame:
    panel = indicator_panel(db, c.outcome, c.level, c.breakdown, c.group)
    suppressed = panel.attrs["suppressed"]
    if c.exclude:
        left = {u.casefold() for u in c.exclude}
        out = panel["unit"].str.casefold().isin(left) | panel["unit_name"].astype(str).str.casefold().isin(left)
        unknown = left - set(panel["unit"].str.casefold()) - set(panel["unit_name"].astype(str).str.casefold())
        if unknown:
            raise EvaluationError(f"exclude nevner enheter som ikke er i panelet: {', '.join(sorted(unknown))}")
        panel = panel[~out]
    if c.start:
        panel = panel[panel["month"] >= pd.Timestamp(c.start + "-01")]
    if c.end:
        panel = panel[panel["month"] <= pd.Timestamp(c.end + "-01")]
    if panel.empty:
        raise EvaluationError(f"ingen publiserte celler mellom {c.start} og {c.end}")
    panel = with_treatment(panel.reset_index(drop=True), treatment, dose=c.dose, adoption=c.adoption)
    panel.attrs["suppressed"] = suppressed
    return panel


def run_evaluation(db: Path | str, config: EvaluationConfig) -> EvaluationOutput:
    c = config
    treatment = treatment_table(c.treatment, c.dose, c.adoption)  # read once: the join and the permutation paths
    panel = _panel(db, c, treatment)
    w = "persons" if c.weighted else None
    if c.adoption:
        panel["treated"] = (panel["month"] >= panel[c.adoption]).astype(float)
        term = "treated"
    else:
        term = c.dose
    fit = twfe(panel, "indicator", term, weight=w, small_sample=c.small_sample)
    boot = wild_bootstrap(panel, "indicator", term, weight=w, B=c.bootstrap, weights=c.bootstrap_weights, seed=c.seed)
    row = fit.table().iloc[0].to_dict()
    rows = [{**row, "term": term, "p_bootstrap": boot.p, "ci_low_bootstrap": boot.ci_low, "ci_high_bootstrap": boot.ci_high,
             "method": f"TWFE{' (vektet)' if w else ''}, CR1 etter enhet"
                       f"{' (nøstede faste effekter ikke telt)' if c.small_sample == 'nested' else ''}; villkluster-bootstrap ({c.bootstrap_weights}, "
                       f"B = {boot.draws}{', alle fortegn' if boot.enumerated else ''})"}]
    out = EvaluationOutput(c, pd.DataFrame(), {
        "units": int(panel["unit"].nunique()), "months": int(panel["month"].nunique()), "rows": len(panel),
        "suppressed_left_out": int(panel.attrs.get("suppressed", 0)),
        "first_month": str(panel["month"].min().date()), "last_month": str(panel["month"].max().date())})
    if c.adoption:
        imp = imputation(panel, "indicator", c.adoption, weight=w, average_by=c.average_by)
        o = imp.overall.iloc[0].to_dict()
        rows.append({**o, "term": "ATT (imputasjon)", "p_bootstrap": np.nan, "t": o["estimate"] / o["se"] if o["se"] else np.nan})
        es = event_study(panel, "indicator", c.adoption, leads=c.leads, lags=c.lags, reference=c.reference, weight=w,
                         B=c.bootstrap, weights=c.bootstrap_weights, seed=c.seed)
        out.event_study = es.table.merge(imp.by_event_time[["event_time", "estimate", "se"]].rename(
            columns={"estimate": "imputation", "se": "imputation_se"}), how="left", on="event_time")
        if es.pretrend is not None:
            out.pretrend = {"statistic": es.pretrend.t, "p": es.pretrend.p, "leads": len(es.pretrend.term.split(", ")),
                            "draws": es.pretrend.draws}
    else:
        out.robustness["randomisering"] = randomization_inference(panel, "indicator", term, weight=w,
                                                                  R=min(c.bootstrap, 2000), seed=c.seed, paths=treatment)
        out.robustness["placebo"] = placebo_dates(panel, "indicator", term, c.placebo_shifts, weight=w)
    out.robustness["forperiode"] = shorter_pre_periods(panel, "indicator", term, weight=w)
    post = panel.loc[panel[term].to_numpy(float) != 0, "month"]
    out.panel_summary["treated_months"] = int(post.nunique())
    names = panel.drop_duplicates("unit").set_index("unit")["unit_name"].astype(str)
    loo = leave_one_out(panel, "indicator", term, weight=w)
    out.robustness["utelat_en"] = loo.assign(left_out_name=loo["left_out"].map(names).fillna(loo["left_out"]))
    out.robustness["mde"] = minimum_detectable_effect(float(fit.bse[0]), fit.n_clusters)
    out.results = pd.DataFrame(rows)[["term", "estimate", "se", "ci_low", "ci_high", "p", "p_bootstrap", "method"]
                                     + [k for k in ("ci_low_bootstrap", "ci_high_bootstrap") if k in rows[0]]]
    return out


__all__ = ["EvaluationConfig", "EvaluationOutput", "load_config", "run_evaluation"]
