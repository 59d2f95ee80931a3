"""The NOE evaluation as Proba (2024) designed it, and what its before/after comparison is
made of.

Cohorts of spells starting March-November 2021 (before NOE) and March-November 2023 (after),
configurable. For each cohort: the shares with each exit by 3, 6 and 12 months (cumulative
incidence, competing exits), the share in work by then (Kaplan-Meier of the time to the first
month of work), life tables, and Cox hazard ratios for the 2023 cohort with the report's
covariates, clustered by person.

Then the question the report could not settle. For a share by k months:

- naive: the 2023 cohort minus the 2021 cohort;
- adjusted: the same difference from a linear probability model with the covariates (sex, age,
  education, country background, laid off at the start, vacancies at the start), spells
  followed for at least k months;
- difference in differences: the adjusted difference among those NOE is for (aged 30-59) minus
  that among those it is not for (25-29 and 60-66, the same rules otherwise), which removes
  what the labour market did to both;
- the truth, when the data come with the synthetic world's (`truth/`): the realised outcomes of
  the 2023 cohort's spells with NOE switched off (same random numbers: each spell's length
  without NOE and the hours its person would have worked), so NOE's true effect on the cohort
  is actual minus that, and the rest of the naive difference is what else changed between the
  cohorts (the labour market and who registered).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ...data.contract import WEEKS_PER_MONTH
from .build import ENDED, SpellError, SpellRules, build_spells
from .survival import cox, cumulative_incidence, fine_gray, kaplan_meier, life_table, ph_test

COHORTS = {"2021": ("2021-03", "2021-11"), "2023": ("2023-03", "2023-11")}
HORIZONS = (3, 6, 12)
OUTCOMES = {"avsluttet": "Arbeidssøkerperioden avsluttet", "arbeid": "I arbeid (a-ordningen)",
            "situasjonsbestemt": "Vedtak om situasjonsbestemt innsats"}
COVARIATES = ("mann", "alder", "alder2", "utd_grunnskole", "utd_hoyere", "utd_ukjent", "innv_vestlig",
              "innv_ikke_vestlig", "innv_ukjent", "permittert", "ledige_stillinger")


@dataclass
class CohortConfig:
    rules: SpellRules = field(default_factory=SpellRules)
    cohorts: dict = field(default_factory=lambda: dict(COHORTS))
    horizons: tuple = HORIZONS
    comparison_ages: tuple = ((25, 29), (60, 66))  # not NOE's target group, for the DiD


@dataclass
class CohortResult:
    spells: pd.DataFrame  # person-level: never written, only aggregated
    shares: pd.DataFrame  # cohort, outcome, month, share, se, ci_low, ci_high, spells
    life_tables: pd.DataFrame  # cohort, outcome, from, to, entering, events, censored, hazard, survival, se
    hazard_ratios: pd.DataFrame  # outcome, term, coef, se, hazard_ratio, hr_low, hr_high, p, spells, events
    ph_tests: pd.DataFrame  # outcome, term, chisq, df, p (proportional hazards, Grambsch-Therneau)
    comparison: pd.DataFrame  # outcome, month, design, estimate, se, ci_low, ci_high
    truth: pd.DataFrame | None  # outcome, month, actual, without_noe, noe_effect, other_change
    counts: pd.DataFrame  # cohort, spells, persons, laid_off_share, censored by 12 months
    notes: list[str]


def label_cohorts(spells: pd.DataFrame, cohorts: dict) -> pd.Series:
    lab = pd.Series(pd.NA, index=spells.index, dtype="object")
    for name, (a, b) in cohorts.items():
        lo, hi = pd.Timestamp(a + "-01"), pd.Timestamp(b + "-01")
        lab[(spells["start"] >= lo) & (spells["start"] <= hi)] = name
    return lab


def design_matrix(s: pd.DataFrame) -> pd.DataFrame:
    """The report's covariates at the start of the spell (reference: woman, upper secondary,
    born in Norway)."""
    return pd.DataFrame({
        "mann": (s["sex"] == "mann").astype(float), "alder": s["age"].astype(float),
        "alder2": (s["age"].astype(float) - 45) ** 2 / 100,
        "utd_grunnskole": (s["education"] == "grunnskole").astype(float),
        "utd_hoyere": s["education"].isin(["hoyere_kort", "hoyere_lang"]).astype(float),
        "utd_ukjent": (s["education"] == "ukjent").astype(float),
        "innv_vestlig": (s["immigrant_category"] == "vestlig").astype(float),
        "innv_ikke_vestlig": (s["immigrant_category"] == "ikke_vestlig").astype(float),
        "innv_ukjent": (s["immigrant_category"] == "ukjent").astype(float),
        "permittert": s["laid_off"].astype(float), "ledige_stillinger": 100 * s["vacancy_rate"].astype(float),
    }, index=s.index)


def outcome_times(s: pd.DataFrame, outcome: str) -> tuple[np.ndarray, np.ndarray]:
    """(time, event) of an outcome: the period's end (either kind), the first month of work, or a
    situasjonsbestemt decision (cause-specific: other exits censor)."""
    if outcome == "arbeid":
        return s["work_time"].to_numpy(float), s["work_event"].to_numpy(int)
    kinds = ENDED if outcome == "avsluttet" else (outcome,)
    return s["time"].to_numpy(float), s["exit"].isin(kinds).to_numpy().astype(int)


def _share(s: pd.DataFrame, outcome: str, k: int) -> tuple[float, float]:
    """Share with the outcome by month k: cumulative incidence where other exits compete, 1 - KM
    for work (which no exit stops)."""
    t, e = outcome_times(s, outcome)
    if outcome == "arbeid":
        km = kaplan_meier(t, e)
        row = km[km["time"] <= k]
        return (0.0, 0.0) if row.empty else (float(1 - row["survival"].iloc[-1]), float(row["se"].iloc[-1]))
    kinds = ENDED if outcome == "avsluttet" else (outcome,)
    kind = np.where(s["exit"] == "sensurert", None, np.where(s["exit"].isin(kinds), "x", "annen"))
    ci = cumulative_incidence(t, kind, "x")
    row = ci[ci["time"] <= k]
    return (0.0, 0.0) if row.empty else (float(row["cif"].iloc[-1]), float(row["se"].iloc[-1]))


def _by_k(s: pd.DataFrame, outcome: str, k: int) -> pd.Series:
    """0/1 outcome by month k for spells followed at least k months (else missing)."""
    t, e = outcome_times(s, outcome)
    seen = (e == 1) & (t <= k)
    followed = seen | (t >= k)
    if outcome != "arbeid":  # a competing exit is an outcome too (0): only censoring leaves it unknown
        followed |= s["event"].to_numpy() == 1
    return pd.Series(np.where(followed, seen.astype(float), np.nan), index=s.index)


def _ols_cluster(y: np.ndarray, X: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OLS with CR1 standard errors by cluster (persons with several spells)."""
    XtX_inv = np.linalg.inv(X.T @ X)
    beta = XtX_inv @ X.T @ y
    u = y - X @ beta
    codes = pd.factorize(groups)[0]
    G = codes.max() + 1
    sg = np.zeros((G, X.shape[1]))
    np.add.at(sg, codes, X * u[:, None])
    n, k = X.shape
    c = G / (G - 1) * (n - 1) / (n - k)
    return beta, np.sqrt(np.diag(c * XtX_inv @ (sg.T @ sg) @ XtX_inv))


def _row(outcome, k, design, est, se):
    q = stats.norm.ppf(0.975)
    return {"outcome": outcome, "month": k, "design": design, "estimate": 100 * est, "se": 100 * se,
            "ci_low": 100 * (est - q * se), "ci_high": 100 * (est + q * se)}


def _adjusted(s: pd.DataFrame, outcome: str, k: int, term: str, extra: pd.DataFrame | None = None):
    y = _by_k(s, outcome, k)
    ok = y.notna().to_numpy()
    X = design_matrix(s)
    if extra is not None:
        X = pd.concat([X, extra], axis=1)
    X.insert(0, "konstant", 1.0)
    X = X.loc[:, X[ok].std() > 0].assign(konstant=1.0)
    beta, se = _ols_cluster(y[ok].to_numpy(), X[ok].to_numpy(), s.loc[ok, "person_id"].to_numpy())
    j = list(X.columns).index(term)
    return beta[j], se[j]


def _routing(a: pd.DataFrame, outcome: str, k: int) -> tuple[float, float]:
    """Within the after cohort: spells NOE took at the start against spells of the same kind
    (not laid off) that a local office took, adjusted for the covariates; the effect on those NOE
    took, times their share of the cohort, is the effect on the cohort. Valid if which of them NOE
    took is as good as random given the covariates (in the synthetic world it is: a fixed share
    of the eligible, exempted at random); in real data the exemption rules decide, and this
    comparison is only as good as the covariates that describe them."""
    elig = a[~a["laid_off"].astype(bool)].copy()
    elig["noe_start"] = (elig["office_type"] == "nasjonal").astype(float)
    if elig["noe_start"].sum() == 0 or elig["noe_start"].sum() == len(elig):
        return np.nan, np.nan
    share = elig["noe_start"].sum() / len(a)
    b, se = _adjusted(elig, outcome, k, "noe_start", elig[["noe_start"]])
    return share * b, share * se


def analyse_cohorts(data_dir: Path | str, config: CohortConfig = CohortConfig()) -> CohortResult:
    data_dir = Path(data_dir)
    names = list(config.cohorts)
    if len(names) != 2:
        raise ValueError("the before/after design needs exactly two cohorts (before, after)")
    before, after = names
    r = config.rules
    lo = min([r.age_min] + [a for a, _ in config.comparison_ages])
    hi = max([r.age_max] + [b for _, b in config.comparison_ages])
    wide = build_spells(data_dir, replace(r, age_min=lo, age_max=hi))
    wide["cohort"] = label_cohorts(wide, config.cohorts)
    wide = wide[wide["cohort"].notna()].copy()
    target = wide["age"].between(r.age_min, r.age_max)
    comp = pd.Series(False, index=wide.index)
    for a, b in config.comparison_ages:
        comp |= wide["age"].between(a, b)
    s = wide[target].copy()
    for name, (a, b) in config.cohorts.items():
        n = int((s["cohort"] == name).sum())
        if n < 20:  # too few to estimate shares, hazards or a difference from
            raise SpellError(f"kohorten {name} ({a} til {b}) har {n} forløp for {r.age_min}–{r.age_max} år i dataene; "
                             "velg måneder og aldre som registeret dekker")
    notes = []
    shares, tables, comparison = [], [], []
    for c in names:
        g = s[s["cohort"] == c]
        for o in OUTCOMES:
            for k in config.horizons:
                v, se = _share(g, o, k)
                shares.append({"cohort": c, "outcome": o, "month": k, "share": 100 * v, "se": 100 * se,
                               "ci_low": 100 * max(v - 1.96 * se, 0), "ci_high": 100 * min(v + 1.96 * se, 1),
                               "spells": len(g)})
            t, e = outcome_times(g, o)
            lt = life_table(t, e, last=max(config.horizons))
            tables.append(lt.assign(cohort=c, outcome=o))
    s["kohort_etter"] = (s["cohort"] == after).astype(float)
    hr, ph = [], []
    X = design_matrix(s)
    for o in OUTCOMES:
        t, e = outcome_times(s, o)
        d = pd.concat([X, s[["kohort_etter", "person_id"]]], axis=1).assign(_t=t, _e=e)
        cols = ["kohort_etter"] + [c for c in COVARIATES if d[c].std() > 0]
        fit = cox(d, "_t", "_e", cols, cluster="person_id")
        tab = fit.table()
        tab.insert(0, "outcome", o)
        tab["spells"], tab["events"] = fit.n, fit.events
        hr.append(tab)
        if fit.estimable.all():
            ph.append(ph_test(d, fit, "_t", "_e").assign(outcome=o))
    # exit to work against every other exit (competing risks): the subdistribution hazard
    d = pd.concat([X, s[["kohort_etter", "person_id", "time", "exit"]]], axis=1)
    cols = ["kohort_etter"] + [c for c in COVARIATES if d[c].std() > 0]
    fg = fine_gray(d, "time", "exit", "arbeid", cols, cluster="person_id")
    tab = fg.table()
    tab.insert(0, "outcome", "arbeid_fine_gray")
    tab["spells"], tab["events"] = fg.n, fg.events
    hr.append(tab)
    # the difference-in-differences sample: NOE's age group and the comparison ages
    w = wide[target | comp].copy()
    w["noe_gruppe"] = target[target | comp].astype(float)
    w["kohort_etter"] = (w["cohort"] == after).astype(float)
    w["did"] = w["noe_gruppe"] * w["kohort_etter"]
    share = pd.DataFrame(shares).set_index(["cohort", "outcome", "month"])  # computed above, not again
    for o in OUTCOMES:
        for k in config.horizons:
            (vb, sb), (va, sa) = (share.loc[(c, o, k), ["share", "se"]].to_numpy() / 100 for c in (before, after))
            comparison.append(_row(o, k, "naiv", va - vb, np.hypot(sa, sb)))
            comparison.append(_row(o, k, "justert", *_adjusted(s, o, k, "kohort_etter", s[["kohort_etter"]])))
            comparison.append(_row(o, k, "forskjell_i_forskjeller",
                                   *_adjusted(w, o, k, "did", w[["noe_gruppe", "kohort_etter", "did"]])))
            comparison.append(_row(o, k, "ruting", *_routing(s[s["cohort"] == after], o, k)))
    counts = s.groupby("cohort").agg(spells=("person_id", "size"), persons=("person_id", "nunique"),
                                     laid_off_share=("laid_off", "mean")).reset_index()
    counts["laid_off_share"] *= 100
    truth = _truth(data_dir, s, after, before, config) if (data_dir / "truth" / "spells.parquet").exists() else None
    if truth is None:
        notes.append("Dataene har ingen fasit (truth/): sannheten vises ikke.")
    ph_tab = pd.concat(ph, ignore_index=True)[["outcome", "term", "chisq", "df", "p"]] if ph else pd.DataFrame()
    return CohortResult(s, pd.DataFrame(shares), pd.concat(tables, ignore_index=True), pd.concat(hr, ignore_index=True),
                        ph_tab, pd.DataFrame(comparison), truth, counts, notes)


def _truth(data_dir: Path, s: pd.DataFrame, after: str, before: str, config: CohortConfig) -> pd.DataFrame:
    """The after-cohort's outcomes with NOE switched off (the world's same random numbers), as
    shares by k months, beside the actual; the before cohort is unchanged (NOE did not exist)."""
    world_spells = pd.read_parquet(data_dir / "truth" / "spells.parquet")
    if "programme_without_noe" not in world_spells.columns:
        raise ValueError("the world's truth is from an older version (no programmes without NOE); generate it again")
    world_spells["start"] = pd.to_datetime(world_spells["start"])
    a = s[s["cohort"] == after].copy()
    cf_months_left = _cf_months_left(a, world_spells)
    hours = pd.read_parquet(data_dir / "truth" / "employment_without_noe.parquet")
    threshold = config.rules.work_hours_per_week * WEEKS_PER_MONTH
    noe_persons = set(world_spells.loc[world_spells["noe"], "person_id"])
    rows = []
    emp_to = _employment_observed_to(data_dir)
    cf_work = _cf_work_time(a, hours, threshold, noe_persons, emp_to)
    for k in config.horizons:
        for o in ("avsluttet", "arbeid"):
            act = _by_k(a, o, k)
            if o == "avsluttet":  # without NOE a programme offered first is the exit instead
                ends = (cf_months_left["left"] <= k) & ~cf_months_left["programme_first"]
                cf = np.where(a["person_id"].isin(noe_persons) & cf_months_left["left"].notna(),
                              ends.astype(float), act)
                cf = pd.Series(cf, index=a.index).where(act.notna())
            else:
                cf = pd.Series(np.where(cf_work["event"] & (cf_work["time"] <= k), 1.0, 0.0), index=a.index).where(act.notna())
            b = _by_k(s[s["cohort"] == before], o, k)
            rows.append({"outcome": o, "month": k, "before": 100 * b.mean(), "actual": 100 * act.mean(),
                         "without_noe": 100 * cf.mean(), "noe_effect": 100 * (act.mean() - cf.mean()),
                         "other_change": 100 * (cf.mean() - b.mean())})
    return pd.DataFrame(rows)


def _employment_observed_to(data_dir: Path) -> pd.Timestamp:
    from ...data.validate import table_file
    p = table_file(data_dir, "extract")
    t = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    return pd.Timestamp(t["employment_observed_to"].max())


def _cf_months_left(a: pd.DataFrame, world_spells: pd.DataFrame) -> pd.DataFrame:
    """Per rule spell, had NOE not existed: `left`, the months from its start to the end of the
    registration (the world's spell length without NOE's extension; missing where no world spell
    holds it), and `programme_first`, whether a programme a local office would have offered
    starts before that."""
    w = world_spells[["person_id", "start", "months", "months_without_noe", "programme_without_noe",
                      "programme_month"]].rename(columns={"start": "w_start"})
    m = a[["person_id", "start"]].reset_index().merge(w, on="person_id", how="left")
    into = (m["start"].dt.year - m["w_start"].dt.year) * 12 + (m["start"].dt.month - m["w_start"].dt.month)
    m = m[(into >= 0) & (into < m["months"])].assign(into=into)
    m = m.drop_duplicates("index").set_index("index")
    out = pd.DataFrame({"left": m["months_without_noe"] - m["into"],
                        "programme_first": m["programme_without_noe"] & (m["programme_month"] >= m["into"])})
    return out.reindex(a.index).assign(programme_first=lambda d: d["programme_first"].fillna(False).astype(bool))


def _cf_work_time(a: pd.DataFrame, hours: pd.DataFrame, threshold: float, noe_persons: set,
                  emp_to: pd.Timestamp) -> pd.DataFrame:
    """Time to the first month of work after the start had NOE not existed: the world's hours
    without NOE for NOE's users, the actual work time for everyone else."""
    h = hours[hours["hours"] >= threshold][["person_id", "month"]].copy()
    h["month"] = pd.to_datetime(h["month"])
    m = a[["person_id", "start"]].reset_index().merge(h, on="person_id", how="left")
    m = m[m["month"] > m["start"]].groupby("index")["month"].min()
    first = m.reindex(a.index)
    seen = first.notna() & (first <= emp_to)
    t = (first.dt.year - a["start"].dt.year) * 12 + (first.dt.month - a["start"].dt.month)
    noe = a["person_id"].isin(noe_persons)
    time = np.where(noe, t.fillna(10 ** 6), a["work_time"])
    event = np.where(noe, seen, a["work_event"] == 1)
    return pd.DataFrame({"time": time, "event": event.astype(bool)}, index=a.index)


__all__ = ["CohortConfig", "CohortResult", "analyse_cohorts", "design_matrix", "outcome_times", "label_cohorts",
           "COHORTS", "OUTCOMES", "COVARIATES"]
