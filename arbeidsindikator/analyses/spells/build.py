"""Follow-up spells from the monthly register (Proba 2024's rules as the default).

A spell starts in month s when a person aged `age_min`-`age_max` is registered with standard
innsats in s and either was not registered in the `gap_months` months before, or was
"ikke vurdert" the month before, or was sick-listed (sykmeldt uten arbeidsgiver) the month
before; each rule can be switched off. A person can have several spells; a new one can start
only after the previous one has ended.

A spell ends with the first of these exits (its month, counted as months since the start):

- `tiltak`: the first month of a labour-market programme (if `programme_participation` is
  there), from the start month on;
- `situasjonsbestemt`: a month registered with situasjonsbestemt innsats (other needs,
  spesielt tilpasset or varig, are `annen_innsats`);
- `overfort_fra_noe`: followed by a local office after being followed by NOE the month before;
- `arbeid`: the jobseeker period ends (the person is not registered in a month) and they work
  at least `work_hours_per_week` hours a week on average (a-ordningen, monthly hours x 12 / 52)
  in that month or the next (`work_window` months): the transition to work;
- `avsluttet`: the jobseeker period ends without that work.

Exits in the same month are taken in the order above (the programme or the decision is what
the register saw first). A spell still registered in the last month of the stock is censored
there (`time` = months registered, event 0). Where the work check needs months after
`extract.employment_observed_to`, an ended period counts as `avsluttet` only if the months are
observed; otherwise the exit kind is `avsluttet_uobservert` (no silent guess).

Beside the exit, every spell carries the time to its first month of work (employment register,
from the month after the start), censored at the last month of observed employment, for the
"job within k months" outcomes.

Everything is computed in DuckDB from the contract tables (bind parameters only); the result
has one row per spell with the covariates at the start. Nothing here is published: the report
shows aggregates only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ...data.contract import INNSATSGRUPPE, WEEKS_PER_MONTH
from ...data.validate import register_tables, table_file, validate

EXITS = ("tiltak", "situasjonsbestemt", "annen_innsats", "overfort_fra_noe", "arbeid", "avsluttet",
         "avsluttet_uobservert")
ENDED = ("arbeid", "avsluttet", "avsluttet_uobservert")  # the jobseeker period ended
NEEDED = ("persons", "stock", "offices", "employment", "extract", "municipalities", "labour_market")


class SpellError(ValueError):
    """Input the spell construction cannot use (named table, column and rule)."""


@dataclass(frozen=True)
class SpellRules:
    age_min: int = 30
    age_max: int = 59
    start_group: str = "standard"
    gap_months: int = 2  # not registered in the months before (0: any new registration month)
    after_ikke_vurdert: bool = True
    after_sick_listed: bool = True
    sick_group: str = "sykmeldt_uten_arbeidsgiver"
    work_hours_per_week: float = 19.0
    work_window: int = 2  # months from the end of the period in which the work must show

    def check(self) -> None:
        if not 0 <= self.age_min <= self.age_max <= 120:
            raise SpellError(f"alderene må oppfylle 0 <= age_min <= age_max <= 120, ikke {self.age_min} og {self.age_max}")
        if self.gap_months < 1:
            raise SpellError(f"gap_months må være minst 1, ikke {self.gap_months}")
        if self.work_window < 1 or self.work_hours_per_week <= 0:
            raise SpellError("work_window må være minst 1 måned og work_hours_per_week positiv")
        for name in ("start_group", "sick_group"):  # a misspelt group would give no spells, silently
            if getattr(self, name) not in INNSATSGRUPPE:
                raise SpellError(f"{name} må være en av {', '.join(INNSATSGRUPPE)}, ikke {getattr(self, name)!r}")


def build_spells(data_dir: Path | str, rules: SpellRules = SpellRules(),
                 con: duckdb.DuckDBPyConnection | None = None, memory_limit: str | None = None) -> pd.DataFrame:
    """One row per spell: person_id, spell (number per person), start, exit_month, time, event
    (1 exit, 0 censored), exit (kind, or 'sensurert'), work_time, work_event, and the covariates
    at the start: sex, age, education, immigrant_category, laid_off, vacancy_rate, benefit,
    office_id, office_type, region_id. `con`: a DuckDB connection (default: a new one), or the
    Spark engine's `SparkConnection`, which runs the same SQL. `memory_limit` (DuckDB's, e.g.
    "3GB") makes DuckDB spill to disk: the national world's spells then peak at 3.9 GB instead of
    8.7 GB and take 47 s instead of 35 s."""
    rules.check()
    data_dir = Path(data_dir)
    validate(data_dir, tables=[*NEEDED] + (["programme_participation"] if table_file(data_dir, "programme_participation") else []))
    own = con is None
    if own:
        # the stock with its window columns is the big table; row order is never relied on
        # (everything is ordered where it matters), which lets DuckDB stream and spill
        con = duckdb.connect(config={"preserve_insertion_order": False}
                             | ({"memory_limit": memory_limit} if memory_limit else {}))
    try:
        found = register_tables(con, data_dir, [*NEEDED, "programme_participation"])
        has_programmes = "programme_participation" in found
        cand = _candidates(con, rules, has_programmes)
    finally:
        if own:
            con.close()
    spells = _non_overlapping(cand)
    spells["spell"] = spells.groupby("person_id").cumcount() + 1
    spells.attrs["rules"] = asdict(rules)
    spells.attrs["programmes"] = has_programmes
    return spells.reset_index(drop=True)


class _Values:
    """Values for the SQL: bound parameters on DuckDB; on Spark, which binds none, literals of
    values checked here (numbers as numbers, group names from the contract's list), so nothing a
    user typed reaches the SQL text unchecked."""

    def __init__(self, spark: bool):
        self.spark, self.params = spark, []

    def __call__(self, v) -> str:
        if not self.spark:
            self.params.append(v)
            return "?"
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise SpellError(f"cannot use {v!r} in the spell query")
        if isinstance(v, str):
            if v not in INNSATSGRUPPE:
                raise SpellError(f"{v!r} is not an innsatsgruppe")
            return f"'{v}'"
        return repr(int(v)) if isinstance(v, int) else repr(float(v))


MN = "(year({c}) * 12 + month({c}))"  # a month as a running number (both dialects)


def _candidates(con, r: SpellRules, has_programmes: bool) -> pd.DataFrame:
    """Every month that satisfies the start rule, with the first exit after it (as if it started
    a spell): exits are looked up within the registration run the month belongs to. The SQL is
    kept to what DuckDB and Spark both read (months as running numbers, min_by, no correlated
    subqueries), so the Spark engine runs the same statements."""
    spark = getattr(con, "engine", "duckdb") == "spark"
    v = _Values(spark)
    threshold = r.work_hours_per_week * WEEKS_PER_MONTH
    prog = ("SELECT person_id, month FROM programme_participation" if has_programmes
            else "SELECT CAST(NULL AS BIGINT) AS person_id, CAST(NULL AS DATE) AS month FROM extract WHERE 1 = 0")
    mn = MN.format(c="month")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE sm AS
        WITH s AS (
            SELECT s.person_id, s.month, {MN.format(c="s.month")} AS mn, s.office_id, s.innsatsgruppe, s.laid_off,
                   s.benefit, s.municipality_id, o.office_type, o.region_id
            FROM stock s JOIN offices o ON o.office_id = s.office_id AND s.month >= o.valid_from
                 AND (o.valid_to IS NULL OR s.month <= o.valid_to))
        , g AS (
            SELECT *,
                   mn - lag(mn) OVER w AS gap1,
                   mn - lag(mn, 2) OVER w AS gap2,
                   lag(innsatsgruppe) OVER w AS prev_group,
                   lag(office_type) OVER w AS prev_type
            FROM s WINDOW w AS (PARTITION BY person_id ORDER BY mn))
        -- runs of consecutive registered months
        SELECT *, sum(CASE WHEN gap1 = 1 THEN 0 ELSE 1 END) OVER (PARTITION BY person_id ORDER BY mn) AS run
        FROM g""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE runs AS
        SELECT person_id, run, max(month) AS run_end, max(mn) AS run_end_mn FROM sm GROUP BY person_id, run""")
    last = con.execute(f"SELECT max(month), min(month), min({mn}) FROM stock").fetchall()[0]
    emp_to = con.execute("SELECT max(employment_observed_to) FROM extract").fetchall()[0][0]
    # events inside a registration run, with their kind's priority
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE ev AS
        SELECT person_id, run, month, mn, 1 AS prio, 'situasjonsbestemt' AS kind FROM sm
            WHERE innsatsgruppe = 'situasjonsbestemt'
        UNION ALL SELECT person_id, run, month, mn, 2, 'annen_innsats' FROM sm
            WHERE innsatsgruppe IN ('spesielt_tilpasset', 'varig_tilpasset')
        UNION ALL SELECT person_id, run, month, mn, 3, 'overfort_fra_noe' FROM sm
            WHERE gap1 = 1 AND prev_type = 'nasjonal' AND office_type = 'lokalkontor'
        UNION ALL SELECT p.person_id, sm.run, sm.month, sm.mn, 0, 'tiltak'
            FROM ({prog}) p JOIN sm ON sm.person_id = p.person_id AND sm.month = p.month""")
    gap = int(r.gap_months)
    reg2 = "(coalesce(gap1, 0) = 2 OR coalesce(gap2, 0) = 2)" if gap >= 2 else "false"
    fresh = f"(coalesce(gap1, 999) > {gap} AND NOT {reg2})" if gap >= 2 else "(coalesce(gap1, 999) > 1)"
    start_group = v(r.start_group)
    # months farther back than the register reaches cannot show a gap: no start there
    conds = [f"({fresh} AND mn - {v(int(last[2]))} >= {gap})"]
    if r.after_ikke_vurdert:
        conds.append("(gap1 = 1 AND prev_group = 'ikke_vurdert')")
    if r.after_sick_listed:
        conds.append(f"(gap1 = 1 AND prev_group = {v(r.sick_group)})")
    sql = f"""
        WITH cand AS (
            SELECT sm.*, CAST(floor((sm.mn - {MN.format(c="p.birth_month")}) / 12) AS INTEGER) AS age
            FROM sm JOIN persons p ON p.person_id = sm.person_id
            WHERE innsatsgruppe = {start_group} AND ({' OR '.join(conds)})),
        firsts AS (
            SELECT c.person_id, c.month AS start, min_by(e.kind, e.mn * 10 + e.prio) AS kind_in_run,
                   min(e.month) AS month_in_run
            FROM cand c JOIN ev e ON e.person_id = c.person_id AND e.run = c.run
                 AND (e.mn > c.mn OR (e.kind = 'tiltak' AND e.mn >= c.mn))
            GROUP BY c.person_id, c.month),
        work AS (
            SELECT c.person_id, c.month AS start, min(e.month) AS first_work
            FROM cand c JOIN employment e ON e.person_id = c.person_id AND e.month > c.month
                 AND e.hours >= {v(threshold)}
            GROUP BY c.person_id, c.month),
        after_end AS (  -- work in the months right after the registration ended
            SELECT r.person_id, r.run, min(e.month) AS work_after_end
            FROM runs r JOIN employment e ON e.person_id = r.person_id AND e.hours >= {v(threshold)}
                 AND {MN.format(c="e.month")} > r.run_end_mn AND {MN.format(c="e.month")} <= r.run_end_mn + {v(int(r.work_window))}
            GROUP BY r.person_id, r.run)
        SELECT c.person_id, c.month AS start, c.run, r.run_end, f.kind_in_run, f.month_in_run, w.first_work,
               c.age, p.sex, p.education, p.immigrant_category, c.laid_off, c.benefit, c.office_id,
               c.office_type, c.region_id, lm.vacancy_rate, a.work_after_end
        FROM cand c
        JOIN persons p ON p.person_id = c.person_id
        JOIN runs r ON r.person_id = c.person_id AND r.run = c.run
        LEFT JOIN firsts f ON f.person_id = c.person_id AND f.start = c.month
        LEFT JOIN work w ON w.person_id = c.person_id AND w.start = c.month
        LEFT JOIN after_end a ON a.person_id = c.person_id AND a.run = c.run
        LEFT JOIN municipalities m ON m.municipality_id = c.municipality_id AND c.month >= m.valid_from
             AND (m.valid_to IS NULL OR c.month <= m.valid_to)
        LEFT JOIN labour_market lm ON lm.commuting_region_id = m.commuting_region_id AND lm.month = c.month
        WHERE c.age BETWEEN {v(int(r.age_min))} AND {v(int(r.age_max))}
        ORDER BY c.person_id, c.month"""
    df = con.execute(sql, v.params or None).df()
    for col in ("start", "run_end", "month_in_run", "first_work", "work_after_end"):
        df[col] = pd.to_datetime(df[col]).astype("datetime64[ns]")  # one unit whichever engine
    for col in ("sex", "education", "immigrant_category", "benefit", "office_id", "office_type", "region_id",
                "kind_in_run"):
        df[col] = df[col].astype(object)
    return df.pipe(_exits, pd.Timestamp(last[0]), pd.Timestamp(emp_to), r)


def _months(a: pd.Series, b: pd.Series | pd.Timestamp) -> np.ndarray:
    """Whole months from b to a."""
    a = pd.to_datetime(a)
    b = pd.to_datetime(b) if isinstance(b, pd.Series) else b
    return ((a.dt.year - (b.dt.year if isinstance(b, pd.Series) else b.year)) * 12
            + (a.dt.month - (b.dt.month if isinstance(b, pd.Series) else b.month))).to_numpy()


def _exits(c: pd.DataFrame, last: pd.Timestamp, emp_to: pd.Timestamp, r: SpellRules) -> pd.DataFrame:
    """The exit of each candidate: the first event in its run, else the end of the run (an ended
    period: to work or not), else censored at the last month of the stock."""
    c["start"] = pd.to_datetime(c["start"])
    run_end = pd.to_datetime(c["run_end"])
    end_month = run_end + pd.DateOffset(months=1)  # the first month not registered
    ended = (run_end < last).to_numpy()
    in_run = c["month_in_run"].notna().to_numpy()
    ev_month = pd.to_datetime(c["month_in_run"])
    exit_month = ev_month.where(in_run, end_month.where(ended))
    observed = (run_end + pd.DateOffset(months=r.work_window) <= emp_to).to_numpy()
    kind = np.where(in_run, c["kind_in_run"].astype(object),
                    np.where(~ended, "sensurert",
                             np.where(c["work_after_end"].notna(), "arbeid",
                                      np.where(observed, "avsluttet", "avsluttet_uobservert"))))
    c["exit"] = kind
    c["exit_month"] = exit_month
    c["event"] = (kind != "sensurert").astype(int)
    # time: months registered before the exit is seen; censored spells: months registered
    c["time"] = np.where(c["event"] == 1, _months(c["exit_month"].fillna(last), c["start"]),
                         _months(pd.Series(last, index=c.index), c["start"]) + 1)
    fw = pd.to_datetime(c["first_work"])
    seen = fw.notna() & (fw <= emp_to)
    c["work_event"] = seen.astype(int).to_numpy()
    c["work_time"] = np.where(seen, _months(fw.fillna(emp_to), c["start"]),
                              _months(pd.Series(emp_to, index=c.index), c["start"]))
    return c.drop(columns=["kind_in_run", "month_in_run", "first_work", "work_after_end", "run_end"])


def _non_overlapping(c: pd.DataFrame) -> pd.DataFrame:
    """Keep the candidates that start spells: each person's first, then the first after the
    previous spell's exit, round by round (as many rounds as the most spells of a person). A
    censored spell ends the person's history."""
    c = c.sort_values(["person_id", "start"]).reset_index(drop=True)
    taken = np.zeros(len(c), bool)
    after = pd.Series(pd.Timestamp.min, index=pd.Index(c["person_id"].unique()))
    rest = c
    while len(rest):
        rest = rest[rest["start"] > rest["person_id"].map(after)]
        if rest.empty:
            break
        first = rest.groupby("person_id", sort=False).head(1)
        taken[first.index] = True
        ends = first["exit_month"].where(first["event"] == 1, pd.Timestamp.max).fillna(pd.Timestamp.max)
        after.loc[first["person_id"].to_numpy()] = ends.to_numpy()
        rest = rest.drop(first.index)
    return c[taken].drop(columns=["run"])


__all__ = ["SpellRules", "SpellError", "build_spells", "EXITS", "ENDED"]
