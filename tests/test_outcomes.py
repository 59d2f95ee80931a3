"""Outcomes against a hand computation, including censoring and the 19-hour threshold."""

import datetime as dt

import duckdb
import pytest

from arbeidsindikator.data.contract import WEEKS_PER_MONTH
from arbeidsindikator.pipeline.outcomes import outcomes_sql


def _con(stock_months, employment, observed_to):
    con = duckdb.connect()
    con.execute("CREATE TABLE stock (person_id BIGINT, month DATE)")
    con.execute("CREATE TABLE employment (person_id BIGINT, month DATE, hours DOUBLE)")
    con.execute("CREATE TABLE extract (employment_observed_to DATE, description VARCHAR)")
    con.executemany("INSERT INTO stock VALUES (?, ?)", stock_months)
    con.executemany("INSERT INTO employment VALUES (?, ?, ?)", employment)
    con.execute("INSERT INTO extract VALUES (?, 'test')", [observed_to])
    return con


def d(y, m):
    return dt.date(y, m, 1)


def test_outcomes_by_hand():
    w = WEEKS_PER_MONTH
    stock = [(1, d(2020, 1)), (1, d(2020, 2)), (2, d(2020, 1))]
    emp = [(1, d(2020, 2), 10 * w), (1, d(2020, 3), 19 * w), (1, d(2020, 4), 18.99 * w),
           (1, d(2021, 1), 40 * w), (1, d(2021, 2), 30 * w)]
    con = _con(stock, emp, d(2021, 1))
    rows = {(r[0], r[1]): r[2:] for r in con.execute(outcomes_sql()).fetchall()}
    atid3, atid12, jobb3, jobb12 = rows[(1, d(2020, 1))]
    assert atid3 == pytest.approx((10 + 19 + 18.99) / 3)  # months Feb-Apr
    assert atid12 == pytest.approx((10 + 19 + 18.99 + 40) / 12)  # Feb 2020 - Jan 2021
    assert jobb3 == 0.0  # April: 18.99 hours a week is below 19
    assert jobb12 == 1.0  # January 2021: 40 hours
    # February 2020: the 12-month window ends in February 2021, after the data: censored
    atid3, atid12, jobb3, jobb12 = rows[(1, d(2020, 2))]
    assert atid3 == pytest.approx((19 + 18.99 + 0) / 3) and jobb3 == 0.0
    assert atid12 is None and jobb12 is None
    # a person with no employment rows worked zero hours, not missing
    assert rows[(2, d(2020, 1))] == (0.0, 0.0, 0.0, 0.0)


def test_exactly_19_hours_counts_as_in_work():
    w = WEEKS_PER_MONTH
    con = _con([(1, d(2020, 1))], [(1, d(2020, 4), round(19 * w, 1) + 0.05)], d(2020, 12))
    assert con.execute(outcomes_sql()).fetchall()[0][4] == 1.0
