"""Surveys drawn from the synthetic world, with the truth they estimate.

- **Time use** (Proba's "ressurskartlegging", 2022 and 2023): every office's staff (full-time
  equivalents from office HR) spend their time on work-oriented follow-up of each innsatsgruppe
  in proportion to the office's users of that group times a true intensity per user (FTEs per
  1 000 users, from Proba's Table 4-2) and an office factor, the rest on other work areas. The
  true national FTEs by innsatsgruppe are the sum over all offices. The survey is a stratified
  sample of offices (by FTE: 0-5, 5-10, 10-25, 25-40, 40+; Nav Vestland and NOE taken whole), some
  offices not answering; in a sampled office every employee logs two weeks of hours by work area
  and innsatsgruppe (a sample of their time), some not answering.
- **Office managers**: one answer per office on 1-6 scales and a yes/no question whose
  probability follows a known logistic model (office size class, staffing); smaller offices
  answer less often.
- **Users** in the stock (a December cross-section), stratified by region, with a 1-6
  satisfaction item that depends on known group effects; non-response depends on sex and age.
- **Follow-up** of former users: in work or not, with a known logistic model on group
  membership; non-response depends on sex and age, which post-stratification corrects.

Each survey is a table of the data contract; `truth/surveys.json` holds the true values and
parameters, `truth/time_use.parquet` the true FTEs.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ..contract import INNSATSGRUPPE
from .offices import HOURS_PER_FTE_MONTH
from .params import NOE_OFFICE

GROUPS = ("standard", "situasjonsbestemt", "spesielt_tilpasset", "varig_tilpasset", "ikke_fastsatt", "ikke_knyttet")
HOUR_COLUMNS = tuple(f"hours_{g}" for g in GROUPS) + ("hours_annet",)
# FTEs per 1 000 users in work-oriented follow-up, Proba Table 4-2 (without innsatsteam)
INTENSITY = {2022: {"standard": 3.63, "situasjonsbestemt": 12.07, "spesielt_tilpasset": 13.17, "varig_tilpasset": 1.96},
             2023: {"standard": 1.60, "situasjonsbestemt": 11.81, "spesielt_tilpasset": 11.60, "varig_tilpasset": 1.91}}
UNSET_SHARE = {"ikke_fastsatt": 0.07, "ikke_knyttet": 0.075}  # of the office's follow-up time
SIZE_BREAKS = (0, 5, 10, 25, 40, np.inf)
SIZE_LABELS = ("0-5", "5-10", "10-25", "25-40", "40+")
SAMPLE_SHARE = 0.38  # Proba: 95 of about 250 offices
OFFICE_RESPONSE = 0.85
EMPLOYEE_RESPONSE = 0.9
LOG_HOURS = 75.0  # two weeks of a full-time employee
VESTLAND = "46"
NOE_FTE_PER_USER = 25 / 12_000  # Proba: 25 FTEs for about 12 000 active users (autumn 2023)
# office-manager survey: P(has a written plan for standard users) = logistic(...)
OFFICE_MODEL = {"konstant": -0.4, "stort_kontor": 0.9, "bemanning": 0.15}
# user survey: satisfaction 1-6 = rounded latent: 4.2 + effects + N(0, 1)
USER_MODEL = {"konstant": 4.2, "ung": -0.35, "ikke_vestlig": -0.25, "nedsatt_arbeidsevne": -0.45}
# follow-up survey: P(in work) = logistic(...)
FOLLOWUP_MODEL = {"konstant": 0.6, "ung": -0.3, "ikke_vestlig": -0.7, "langtid": -0.8, "nedsatt_arbeidsevne": -1.1}


def _logistic(x):
    return 1 / (1 + np.exp(-x))


def _office_frame(world: Path, year: int) -> pd.DataFrame:
    """Local offices that existed in `year`: FTEs (agreed hours / 162.5, mean over the year),
    region, and users by innsatsgruppe at their home office (monthly mean)."""
    hr = pd.read_parquet(world / "office_hr.parquet")
    hr = hr[pd.to_datetime(hr["month"]).dt.year == year]
    fte = (hr.groupby("office_id")["agreed_hours"].mean() / HOURS_PER_FTE_MONTH).rename("office_fte")
    offices = pd.read_parquet(world / "offices.parquet").drop_duplicates("office_id", keep="last").set_index("office_id")
    with duckdb.connect() as con:  # the national stock is 30 million rows: aggregate where it lies
        users = con.execute("""
            WITH m AS (SELECT municipality_id, arg_max(office_id, valid_from) AS home
                       FROM read_parquet(?) GROUP BY ALL)
            SELECT m.home, s.innsatsgruppe::VARCHAR AS grp, count(*) / count(DISTINCT s.month) AS users
            FROM read_parquet(?) s JOIN m ON m.municipality_id = s.municipality_id::VARCHAR
            WHERE year(s.month) = ? GROUP BY ALL""",
            [str(world / "municipalities.parquet"), str(world / "stock.parquet"), year]).df()
        noe_users = con.execute("""SELECT count(*) / count(DISTINCT month) FROM read_parquet(?)
                                   WHERE year(month) = ? AND office_id::VARCHAR = ?""",
                                [str(world / "stock.parquet"), year, NOE_OFFICE]).fetchone()[0] or 0.0
    users = users.pivot_table(index="home", columns="grp", values="users", aggfunc="sum", fill_value=0.0)
    users = users.reindex(columns=list(INNSATSGRUPPE), fill_value=0.0)
    frame = pd.DataFrame({"office_fte": fte}).join(offices[["region_id", "office_type"]], how="left")
    frame = frame[frame["office_type"] == "lokalkontor"].join(users, how="left").fillna(0.0)
    frame.attrs["noe_users"] = float(noe_users)
    return frame


def _true_fte(frame: pd.DataFrame, year: int, rng) -> pd.DataFrame:
    """FTEs per office and group (and other work areas): users x intensity x office factor."""
    f = np.exp(rng.normal(0, 0.2, len(frame)))
    out = pd.DataFrame(index=frame.index)
    for g, k in INTENSITY[year].items():
        out[g] = frame[g] / 1000 * k * f
    follow = out.sum(axis=1)
    for g, s in UNSET_SHARE.items():
        out[g] = follow * s / (1 - sum(UNSET_SHARE.values()))
    follow = out.sum(axis=1)
    scale = np.minimum(1.0, 0.85 * frame["office_fte"] / follow.replace(0, np.nan)).fillna(1.0)
    out = out.mul(scale, axis=0)  # never more follow-up than 85 % of the office's staff
    out["annet"] = frame["office_fte"] - out.sum(axis=1)
    return out


def time_use_survey(world: Path, seed: int, years=(2022, 2023), world_seed: int | None = None
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One draw of the time-use survey: (employee logs, true national FTEs by year and group).
    The offices' true FTEs are fixed by the world (seeded by the world's seed, read from
    truth/world.json unless given); the sample, the non-response and the logged hours vary with
    `seed`."""
    world = Path(world)
    base = world_seed if world_seed is not None else json.loads((world / "truth" / "world.json").read_text())["seed"]
    logs, truth = [], []
    rng = np.random.default_rng([seed, 7])
    for year in years:
        frame = _office_frame(world, year)
        fixed = np.random.default_rng([base, year, 11])
        true = _true_fte(frame, year, fixed)
        stratum = np.where(frame["region_id"] == VESTLAND, "Nav Vestland",
                           pd.cut(frame["office_fte"], SIZE_BREAKS, labels=SIZE_LABELS, right=False).astype(str))
        units = pd.DataFrame({"office_id": frame.index, "stratum": stratum, "office_fte": frame["office_fte"].to_numpy()})
        units = pd.concat([units, true.reset_index(drop=True)], axis=1)
        if year >= 2023:  # NOE: its own stratum, taken whole; its time goes to standard users
            noe_fte = max(1.0, frame.attrs["noe_users"] * NOE_FTE_PER_USER)
            units = pd.concat([units, pd.DataFrame([{"office_id": "4154", "stratum": "NOE", "office_fte": noe_fte,
                                                     "standard": 0.9 * noe_fte, "ikke_knyttet": 0.1 * noe_fte,
                                                     "annet": 0.0}])], ignore_index=True).fillna(0.0)
        truth += [{"year": year, "group": g, "fte": float(units[g].sum())} for g in (*GROUPS, "annet")]
        for st, u in units.groupby("stratum"):
            N, X = len(u), float(u["office_fte"].sum())
            certain = st in ("Nav Vestland", "NOE")
            n = N if certain else min(N, max(2, int(round(SAMPLE_SHARE * N))))
            take = u.sample(n=n, random_state=rng.integers(1 << 31))
            answer = rng.random(n) < OFFICE_RESPONSE
            if answer.sum() < min(2, n):  # at least two answers where two were asked
                answer[np.argsort(rng.random(n))[:min(2, n)]] = True
            for _, o in take[answer].iterrows():
                logs.append(_office_logs(o, st, N, year, rng).assign(stratum_fte=X))
    return pd.concat(logs, ignore_index=True), pd.DataFrame(truth)


def _office_logs(o: pd.Series, stratum: str, N: int, year: int, rng) -> pd.DataFrame:
    """Two weeks of logged hours for each answering employee of a sampled office."""
    n_emp = max(1, int(round(o["office_fte"])))
    emp_fte = np.full(n_emp, o["office_fte"] / n_emp)
    shares = np.array([o[g] for g in (*GROUPS, "annet")], float)
    shares = np.clip(shares, 0, None) / max(shares.clip(0).sum(), 1e-12)
    answer = rng.random(n_emp) < EMPLOYEE_RESPONSE
    if not answer.any():
        answer[rng.integers(n_emp)] = True
    rows = []
    for e in np.flatnonzero(answer):
        p = rng.dirichlet(shares * 60 + 1e-3)  # an employee's own mix around the office's
        quarters = rng.multinomial(int(round(LOG_HOURS * emp_fte[e] * 4)), p)  # logged in quarter hours
        rows.append([year, o["office_id"], stratum, N, float(o["office_fte"]), f"{year}-{o['office_id']}-{e + 1}",
                     float(emp_fte[e]), *(quarters / 4.0)])
    return pd.DataFrame(rows, columns=["year", "office_id", "stratum", "stratum_offices", "office_fte", "employee_id",
                                       "employee_fte", *HOUR_COLUMNS])


def office_survey(world: Path, seed: int, year: int = 2023) -> pd.DataFrame:
    """One answer per local office (those that answer): size class by FTEs (AFI: 1-15, 16-39,
    40+), 1-6 items and whether the office has a written plan (known logistic model)."""
    rng = np.random.default_rng([seed, 13])
    frame = _office_frame(Path(world), year)
    fte = frame["office_fte"].to_numpy()
    users = frame[list(INNSATSGRUPPE)].sum(axis=1).to_numpy()
    size = np.where(fte < 16, "liten", np.where(fte < 40, "mellomstor", "stor"))
    staffing = fte / np.maximum(users, 1) * 100  # FTEs per 100 users
    large = (size == "stor").astype(float)
    x = OFFICE_MODEL["konstant"] + OFFICE_MODEL["stort_kontor"] * large + OFFICE_MODEL["bemanning"] * (staffing - staffing.mean())
    plan = rng.random(len(fte)) < _logistic(x)
    latent = 3.8 + 0.4 * large + 0.5 * plan + rng.normal(0, 1.1, len(fte))
    answer = rng.random(len(fte)) < np.where(size == "liten", 0.5, 0.7)
    counts = pd.Series(size).value_counts()
    df = pd.DataFrame({"office_id": frame.index.astype(str), "size_class": size,
                       "size_class_offices": counts.reindex(size).to_numpy().astype(int),
                       "staffing": np.round(staffing, 4), "plan": plan,
                       "cooperation": np.clip(np.rint(latent), 1, 6).astype(int),
                       "capacity": np.clip(np.rint(latent - 0.6 + rng.normal(0, 0.8, len(fte))), 1, 6).astype(int)})
    return df[answer].reset_index(drop=True)


def user_surveys(world: Path, seed: int, n_users: int = 1500, n_followup: int = 1500) -> dict[str, pd.DataFrame]:
    """The user survey (a December 2023 cross-section of the stock, stratified by region) and the
    follow-up survey (persons who left the stock in 2023), with the population margins they are
    weighted to and the fieldwork counts."""
    world = Path(world)
    rng = np.random.default_rng([seed, 17])
    persons = pd.read_parquet(world / "persons.parquet").set_index("person_id")
    with duckdb.connect() as con:
        src = str(world / "stock.parquet")
        cols = "person_id, month, office_id::VARCHAR AS office_id, reduced_work_capacity, months_since_registration"
        dec = con.execute(f"SELECT {cols} FROM read_parquet(?) WHERE month = DATE '2023-12-01'", [src]).df()
        left = con.execute(f"""SELECT {cols} FROM read_parquet(?) QUALIFY month = max(month) OVER (PARTITION BY person_id)
                               AND year(month) = 2023 AND month < DATE '2023-12-01'""", [src]).df()
    dec["month"], left["month"] = pd.to_datetime(dec["month"]), pd.to_datetime(left["month"])
    offices = pd.read_parquet(world / "offices.parquet").drop_duplicates("office_id", keep="last").set_index("office_id")

    def traits(rows: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
        p = persons.loc[rows["person_id"]]
        age = ((at - pd.to_datetime(p["birth_month"])).dt.days / 365.25).to_numpy()
        return pd.DataFrame({
            "sex": p["sex"].astype(str).to_numpy(),
            "age_group": pd.cut(age, [0, 25, 35, 50, 200], labels=["16-24", "25-34", "35-49", "50+"], right=False).astype(str),
            "ung": (age < 25), "ikke_vestlig": (p["immigrant_category"].astype(str) == "ikke_vestlig").to_numpy(),
            "lav_utdanning": (p["education"].astype(str) == "grunnskole").to_numpy(),
            "nedsatt_arbeidsevne": rows["reduced_work_capacity"].to_numpy(),
            "langtid": (rows["months_since_registration"].to_numpy() >= 6)})

    dec = dec[dec["office_id"] != NOE_OFFICE].copy()
    dec["region_id"] = dec["office_id"].astype(str).map(offices["region_id"])
    pop_region = dec["region_id"].value_counts()
    share = pop_region / pop_region.sum()
    n_region = np.maximum(2, np.round(share * n_users)).astype(int)
    take = pd.concat([g.sample(n=min(len(g), n_region[r]), random_state=rng.integers(1 << 31))
                      for r, g in dec.groupby("region_id")])
    t = traits(take, pd.Timestamp("2023-12-01"))
    eff = sum(USER_MODEL[k] * t[k].to_numpy() for k in ("ung", "ikke_vestlig", "nedsatt_arbeidsevne"))
    satisfaction = np.clip(np.rint(USER_MODEL["konstant"] + eff + rng.normal(0, 1, len(t))), 1, 6).astype(int)
    helped = np.clip(np.rint(3.6 + 0.6 * (satisfaction - 4) + rng.normal(0, 0.9, len(t))), 1, 6).astype(int)
    p_resp = _logistic(-0.3 + 0.5 * (t["sex"] == "kvinne") + 0.4 * (t["age_group"] == "50+") - 0.5 * t["ung"])
    answer = rng.random(len(t)) < p_resp
    users = pd.DataFrame({"respondent_id": np.arange(1, len(t) + 1), "region_id": take["region_id"].to_numpy(),
                          "region_population": pop_region.reindex(take["region_id"]).to_numpy().astype(int),
                          "region_sample": pd.Series(n_region).reindex(take["region_id"]).to_numpy().astype(int),
                          **{c: t[c].to_numpy() for c in t.columns}, "satisfaction": satisfaction, "helped": helped})
    users = users[answer].reset_index(drop=True)
    # follow-up: persons whose last month in the stock was in 2023 (before December)
    left = left.sort_values("person_id").reset_index(drop=True)
    frame = traits(left, pd.Timestamp("2024-06-01"))
    pop = frame.groupby(["sex", "age_group"]).size()
    idx = rng.choice(len(left), size=min(n_followup, len(left)), replace=False)
    f = frame.iloc[idx].reset_index(drop=True)
    x = FOLLOWUP_MODEL["konstant"] + sum(FOLLOWUP_MODEL[k] * f[k].to_numpy() for k in FOLLOWUP_MODEL if k != "konstant")
    in_work = rng.random(len(f)) < _logistic(x)
    p_resp = _logistic(-0.6 + 0.5 * (f["sex"] == "kvinne") + 0.5 * (f["age_group"] == "50+") - 0.4 * (f["age_group"] == "16-24"))
    answer = rng.random(len(f)) < p_resp
    follow = pd.DataFrame({"respondent_id": np.arange(1, len(f) + 1), **{c: f[c].to_numpy() for c in f.columns},
                           "in_work": in_work})[answer].reset_index(drop=True)
    margins = pop.rename("persons").reset_index().assign(survey="oppfolging")
    fieldwork = pd.DataFrame([
        {"survey": "bruker", "respondents": int(len(users)), "refused_or_other": int(len(t) - len(users)),
         "not_contacted": 0, "eligible_share": 1.0},
        {"survey": "oppfolging", "respondents": int(len(follow)), "refused_or_other": int(len(f) - len(follow)),
         "not_contacted": 0, "eligible_share": 1.0}])
    truth = {"user_model": USER_MODEL, "followup_model": FOLLOWUP_MODEL, "office_model": OFFICE_MODEL,
             "followup_population_in_work": float(np.mean(_logistic(
                 FOLLOWUP_MODEL["konstant"] + sum(FOLLOWUP_MODEL[k] * frame[k].to_numpy() for k in FOLLOWUP_MODEL
                                                  if k != "konstant"))))}
    return {"survey_users": users, "survey_followup": follow, "survey_population": margins,
            "survey_fieldwork": fieldwork, "truth": truth}


def write_surveys(world: Path, seed: int) -> dict:
    """Draw every survey once and write them into the world (contract tables) with the truth."""
    world = Path(world)
    logs, truth = time_use_survey(world, seed, world_seed=seed)
    logs.to_parquet(world / "time_use.parquet", index=False)
    truth.to_parquet(world / "truth" / "time_use.parquet", index=False)
    office_survey(world, seed).to_parquet(world / "survey_offices.parquet", index=False)
    u = user_surveys(world, seed)
    for name in ("survey_users", "survey_followup", "survey_population", "survey_fieldwork"):
        u[name].to_parquet(world / f"{name}.parquet", index=False)
    (world / "truth" / "surveys.json").write_text(json.dumps(u["truth"], indent=2))
    return {"time_use_employees": len(logs), "survey_users": len(u["survey_users"])}


__all__ = ["time_use_survey", "office_survey", "user_surveys", "write_surveys", "GROUPS", "HOUR_COLUMNS", "INTENSITY"]
