"""The office, user and follow-up surveys' tables (AFI 2014 and Proba 2024), design-based.

- Office managers: answering offices stand for their size class (weight offices in the class /
  answering ones, finite population correction); 1-6 items as means, 1-2 / 3-4 / 5-6 and the
  share answering 6, overall and by size class; a logistic regression of having a written plan
  on office size and staffing.
- Users: sampled within regions, answering users weighted to their region's users; the items
  overall, each vulnerable group against its complement (the difference with its interval), and
  a linear regression of satisfaction on the groups.
- Follow-up: weighted to the population's sex x age cells (post-stratification; those who answer
  differ by sex and age); the share in work and a logistic regression on the groups, odds ratios.
- Response rates from the fieldwork counts (AAPOR RR3 with the eligible share; RR1 when it is 1).

Estimates resting on fewer than `MIN_N` answers are flagged, not printed as if precise; on fewer
than `MIN_ANSWERS` they are withheld (the answers of a handful of respondents, such as the few
large offices of a size class, would be theirs), and the row says so (`withheld`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...data.validate import table_file, validate
from . import design as sv

MIN_N = 30
MIN_ANSWERS = 10  # fewer answers than this: the estimate is withheld (present/output_rules.py checks it)
ESTIMATE_COLUMNS = ("estimate", "se", "ci_low", "ci_high", "deff", "difference", "p")
GROUP_FLAGS = {"ung": "Unge under 25 år", "ikke_vestlig": "Innvandrere fra ikke-vestlige land",
               "langtid": "Langtidsledige (6 måneder eller mer)", "nedsatt_arbeidsevne": "Nedsatt arbeidsevne",
               "lav_utdanning": "Lav utdanning (grunnskole)"}
SURVEY_TABLES = ("survey_offices", "survey_users", "survey_followup", "survey_population", "survey_fieldwork")


def _read(data_dir: Path, name: str) -> pd.DataFrame | None:
    p = table_file(data_dir, name)
    if p is None:
        return None
    return pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)


def office_design(df: pd.DataFrame) -> sv.Design:
    d = df.copy()
    d["weight"] = d["size_class_offices"] / d.groupby("size_class")["office_id"].transform("count")
    return sv.design(d, "weight", "size_class", None, "size_class_offices", lonely_psu="certainty")


def user_design(df: pd.DataFrame) -> sv.Design:
    d = df.copy()
    d["weight"] = d["region_population"] / d.groupby("region_id")["respondent_id"].transform("count")
    return sv.design(d, "weight", "region_id", None, "region_population", lonely_psu="certainty")


def followup_design(df: pd.DataFrame, population: pd.DataFrame) -> sv.Design:
    d = df.copy()
    pop = population[population["survey"] == "oppfolging"]
    d["weight"] = pop["persons"].sum() / len(d)
    d["cell"] = d["sex"].astype(str) + "|" + d["age_group"].astype(str)
    cells = dict(zip(pop["sex"].astype(str) + "|" + pop["age_group"].astype(str), pop["persons"]))
    return sv.poststratify(sv.design(d, "weight"), "cell", cells)


def _flags_as_float(df: pd.DataFrame, cols) -> pd.DataFrame:
    return df.assign(**{c: df[c].astype(float) for c in cols})


def survey_tables(data_dir: Path | str) -> dict[str, pd.DataFrame]:
    data_dir = Path(data_dir)
    present = [t for t in SURVEY_TABLES if table_file(data_dir, t) is not None]
    if not present:
        raise sv.SurveyError(f"{data_dir} has no survey tables ({', '.join(SURVEY_TABLES)})")
    validate(data_dir, tables=present)
    out: dict[str, pd.DataFrame] = {}
    likert_rows, regs, groups, notes = [], [], [], []

    def fit(d, y, covs, family, survey):
        used = [c for c in covs if d.data[c].nunique() > 1]
        if len(used) < len(covs):
            notes.append(f"{survey}: {', '.join(sorted(set(covs) - set(used)))} varierer ikke blant svarene og er utelatt")
        if used:
            regs.append(sv.regression(d, y, used, family).table().assign(survey=survey, outcome=y))
    offices = _read(data_dir, "survey_offices")
    if offices is not None and len(offices):
        d = office_design(_flags_as_float(offices, ["plan"]).assign(
            stort_kontor=lambda x: (x["size_class"] == "stor").astype(float),
            bemanning=lambda x: x["staffing"] - x["staffing"].mean()))
        for item in ("cooperation", "capacity"):
            likert_rows.append(sv.likert(d, item, min_n=MIN_N).assign(survey="kontor", domain="alle"))
            for c in sorted(d.data["size_class"].unique()):
                m = (d.data["size_class"] == c).to_numpy()
                likert_rows.append(sv.likert(d, item, domain=m, min_n=MIN_N).assign(survey="kontor", domain=c))
        fit(d, "plan", ["stort_kontor", "bemanning"], "logistic", "kontor")
    users = _read(data_dir, "survey_users")
    if users is not None and len(users):
        d = user_design(_flags_as_float(users, GROUP_FLAGS))
        for item in ("satisfaction", "helped"):
            likert_rows.append(sv.likert(d, item, min_n=MIN_N).assign(survey="bruker", domain="alle"))
        for flag, label in GROUP_FLAGS.items():
            n = int(d.data[flag].sum())
            if n == 0 or n == len(d.data):
                notes.append(f"bruker: ingen sammenligning for {label.lower()} (ingen i gruppen eller alle)")
                continue
            g = sv.regression(d, "satisfaction", [flag], "linear").table().iloc[1]
            groups.append({"survey": "bruker", "group": flag, "label": label, "difference": g["coef"], "se": g["se"],
                           "ci_low": g["ci_low"], "ci_high": g["ci_high"], "p": g["p"], "n_group": n,
                           "few": n < MIN_N})
        fit(d, "satisfaction", ["ung", "ikke_vestlig", "nedsatt_arbeidsevne"], "linear", "bruker")
    follow, pop = _read(data_dir, "survey_followup"), _read(data_dir, "survey_population")
    if follow is not None and len(follow) and pop is not None:
        d = followup_design(_flags_as_float(follow, [*GROUP_FLAGS, "in_work"]), pop)
        e = sv.mean(d, "in_work")
        lo, hi = e.ci()
        out["in_work"] = pd.DataFrame([{"survey": "oppfolging", "share": 100 * e.estimate, "se": 100 * e.se,
                                        "ci_low": 100 * lo, "ci_high": 100 * hi, "deff": e.deff, "n": e.n}])
        fit(d, "in_work", ["ung", "ikke_vestlig", "langtid", "nedsatt_arbeidsevne"], "logistic", "oppfolging")
    field = _read(data_dir, "survey_fieldwork")
    if field is not None and len(field):
        out["response_rates"] = field.assign(response_rate=[
            100 * sv.response_rate(r.respondents, r.refused_or_other, r.not_contacted, r.eligible_share)
            for r in field.itertuples()])
    if likert_rows:
        out["likert"] = _withhold(pd.concat(likert_rows, ignore_index=True), "n")
    if groups:
        out["groups"] = _withhold(pd.DataFrame(groups), "n_group")
    if regs:
        out["regressions"] = pd.concat(regs, ignore_index=True)
    out["notes"] = pd.DataFrame({"note": notes})
    return out


def _withhold(df: pd.DataFrame, n: str) -> pd.DataFrame:
    """Blank the estimates that rest on fewer than MIN_ANSWERS answers; `withheld` marks them."""
    few = df[n] < MIN_ANSWERS
    cols = [c for c in ESTIMATE_COLUMNS if c in df]
    df = df.astype({c: float for c in cols})
    df.loc[few, cols] = float("nan")
    return df.assign(withheld=few)


__all__ = ["MIN_ANSWERS", "survey_tables", "office_design", "user_design", "followup_design", "MIN_N", "GROUP_FLAGS"]
