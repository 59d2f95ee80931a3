"""Outcomes of every person-month in the stock, computed in the database.

- atid3 / atid12: average weekly hours over the 3 / 12 months after the measurement month
  (hours in months t+1..t+k divided by k x 52/12 weeks).
- jobb3 / jobb12: 1 if the person worked at least 19 hours a week in month t+3 / t+12.

An outcome is censored (NULL, not zero) when its window runs past the last month of
complete employment data (`extract.employment_observed_to`).

The stock and the (sparse) employment table are joined on (person, month) and the windows
are SQL window frames over a month index, so the work stays in DuckDB (or Spark SQL).
"""

from __future__ import annotations

import re

import duckdb

from ..data.contract import WEEKS_PER_MONTH

OUTCOMES = ("atid3", "atid12", "jobb3", "jobb12")
IN_WORK_WEEKLY_HOURS = 19.0
# the unit of an outcome's level (faktisk, forventet) and of the indicator, a difference
UNITS = {"atid3": "timer per uke", "atid12": "timer per uke", "jobb3": "prosent", "jobb12": "prosent"}
INDICATOR_UNITS = {"atid3": "timer per uke", "atid12": "timer per uke", "jobb3": "prosentpoeng", "jobb12": "prosentpoeng"}


def outcome_kind(o: str) -> tuple[str, int | None]:
    """('binary', horizon) for jobbK (a person is in work or not), ('hours', horizon) for atidK
    (average weekly hours), ('other', None) for an outcome of another name (a sum that is only
    known to be at least 0). Disclosure control bounds each kind differently."""
    m = re.fullmatch(r"(jobb|atid)([0-9]+)", o)
    if not m:
        return "other", None
    return ("binary" if m.group(1) == "jobb" else "hours"), int(m.group(2))


def month_index_sql(col: str) -> str:
    """A month as an integer (months since year 0), so window frames can use RANGE."""
    return f"(year({col}) * 12 + month({col}) - 1)"


def outcomes_sql(stock: str = "stock", employment: str = "employment", extract: str = "extract") -> str:
    """SQL selecting person_id, month and the four outcomes for every stock row."""
    wk = WEEKS_PER_MONTH
    thr = IN_WORK_WEEKLY_HOURS * wk - 1e-6  # monthly hours equivalent of 19 hours a week
    mi = month_index_sql("month")
    return f"""
    WITH obs AS (SELECT {month_index_sql('employment_observed_to')} AS last_mi FROM {extract}),
    spine AS (
        SELECT coalesce(s.person_id, e.person_id) AS person_id,
               coalesce(s.month, e.month) AS month,
               coalesce(e.hours, 0.0) AS hours,
               s.person_id IS NOT NULL AS in_stock
        FROM (SELECT person_id, month FROM {stock}) s
        FULL OUTER JOIN (SELECT person_id, month, hours FROM {employment}
                         WHERE month <= (SELECT max(employment_observed_to) FROM {extract})) e
          ON s.person_id = e.person_id AND s.month = e.month
    ),
    w AS (
        SELECT person_id, month, in_stock, {mi} AS mi,
          sum(hours) OVER (PARTITION BY person_id ORDER BY {mi} RANGE BETWEEN 1 FOLLOWING AND 3 FOLLOWING) AS h3,
          sum(hours) OVER (PARTITION BY person_id ORDER BY {mi} RANGE BETWEEN 1 FOLLOWING AND 12 FOLLOWING) AS h12,
          sum(hours) OVER (PARTITION BY person_id ORDER BY {mi} RANGE BETWEEN 3 FOLLOWING AND 3 FOLLOWING) AS m3,
          sum(hours) OVER (PARTITION BY person_id ORDER BY {mi} RANGE BETWEEN 12 FOLLOWING AND 12 FOLLOWING) AS m12
        FROM spine
    )
    SELECT person_id, month,
      CASE WHEN mi + 3 <= last_mi THEN coalesce(h3, 0) / (3 * {wk}) END AS atid3,
      CASE WHEN mi + 12 <= last_mi THEN coalesce(h12, 0) / (12 * {wk}) END AS atid12,
      CASE WHEN mi + 3 <= last_mi THEN CAST(coalesce(m3, 0) >= {thr} AS DOUBLE) END AS jobb3,
      CASE WHEN mi + 12 <= last_mi THEN CAST(coalesce(m12, 0) >= {thr} AS DOUBLE) END AS jobb12
    FROM w, obs
    WHERE in_stock
    """


def compute_outcomes(con: duckdb.DuckDBPyConnection, target: str = "outcomes") -> None:
    """Materialise the outcomes as table `target` in the connection (needs the contract views)."""
    con.execute(f"CREATE OR REPLACE TABLE {target} AS {outcomes_sql()}")


def valid_sql(t: str, m: str) -> str:
    """The version of table alias `t` (valid_from / valid_to) that holds in month `m`."""
    return f"{m} >= {t}.valid_from AND ({t}.valid_to IS NULL OR {m} <= {t}.valid_to)"


def labour_market_sql() -> str:
    """The labour market per commuting region and month, with the inflow's mean over the 12
    months up to the month (`inflow_rate_12m`: a region's lasting level, little moved by one
    month's passing deviation; Nav's model variants use such 12-month measures)."""
    mi = month_index_sql("month")
    return f"""SELECT *, avg(inflow_rate) OVER (PARTITION BY commuting_region_id ORDER BY {mi}
                                          RANGE BETWEEN 11 PRECEDING AND CURRENT ROW) AS inflow_rate_12m
               FROM labour_market"""


MEASURES = ("youth_unemployment_rate", "shift_share_index")  # from the optional labour_market_measures


def analysis_sql(outcomes: str = "outcomes", measures: bool = False) -> str:
    """The person-month table the model reads: the stock with the person's characteristics,
    the organisation (following office, its type and region; home office of the municipality),
    the commuting region's labour market in the month, and the outcomes. Office and region
    names are labels, not variables: they are looked up when the results are labelled
    (national: writing them for 35 million rows cost 11 of 54 s). `measures`: the extract has the
    optional labour_market_measures (Nav's candidate models' terms); they are added where it does."""
    extra = "".join(f", x.{c}" for c in MEASURES) if measures else ""
    join = ("LEFT JOIN labour_market_measures x ON x.commuting_region_id = m.commuting_region_id AND x.month = s.month"
            if measures else "")
    return f"""
    SELECT s.person_id, s.month,
           s.office_id, f.office_type, f.region_id,
           m.office_id AS home_office_id, s.municipality_id, m.commuting_region_id,
           CAST(floor(({month_index_sql('s.month')} - {month_index_sql('p.birth_month')}) / 12) AS INTEGER) AS age,
           p.sex, p.education, p.immigrant_category,
           s.innsatsgruppe, s.months_since_registration, s.benefit, s.laid_off, s.youth_guarantee,
           s.work_hours_12m, s.work_hours_24m, s.reduced_work_capacity,
           l.inflow_rate, l.inflow_rate_12m, l.unemployment_rate, l.vacancy_rate{extra},
           o.atid3, o.atid12, o.jobb3, o.jobb12
    FROM stock s
    JOIN persons p USING (person_id)
    JOIN offices f ON s.office_id = f.office_id AND {valid_sql('f', 's.month')}
    JOIN municipalities m ON s.municipality_id = m.municipality_id AND {valid_sql('m', 's.month')}
    JOIN ({labour_market_sql()}) l ON l.commuting_region_id = m.commuting_region_id AND l.month = s.month
    {join}
    LEFT JOIN {outcomes} o ON o.person_id = s.person_id AND o.month = s.month
    """


def build_analysis(con: duckdb.DuckDBPyConnection, target: str = "analysis", measures: bool = False) -> None:
    """Outcomes and the analysis table, materialised in the (working) connection."""
    compute_outcomes(con, "outcomes")
    con.execute(f"CREATE OR REPLACE TABLE {target} AS {analysis_sql('outcomes', measures)}")
