"""Disclosure across releases: every release is protected together with the ones before it.

An attacker keeps every release. A cell published once is public for good, and a cell that one
release suppressed and the next publishes is public too; a period that grows (a calendar year
that gets one more month) differenced with its earlier self gives the new month. Three forward
releases of the small world, each protected on its own, let the bounded attacker pin about 600
suppressed counts (tests/test_releases.py measures it). SSB's `IncrementalTimeSuppression` keeps
earlier decisions; this module does that, and makes the periods such that the newest release
holds every cell ever published:

- A release publishes only periods whose every month is observed for every outcome (calendar
  years once their December is, the last 12 such months, the specification's own periods), and
  again every period of the release before it. A period cell therefore has one value forever
  (with no late corrections), and the rolling "last 12 months" of earlier releases stay in the
  table as a series.
- Each cell of the release before that is in this one with the same count and value keeps its
  decision: published stays published (the secondary suppression may not use it: it is known),
  suppressed stays suppressed (it gets a certificate again in this release's system).

So the newest release's tables hold every published cell of every release before it, with the
same values and the same pattern, and its audit and witness prove the whole history. That holds
for releases made in order of their as-of month; an extract older than a stored release is
refused (ReleaseOrderError). A cell whose value was revised (late register data) is a new cell;
its old value is related only to the old values of the earlier release, which that release's
own proof covers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from .indicator import coded_table
from .uncertainty import Period
from .versions import _has

FREE, PUBLISHED_BEFORE, SUPPRESSED_BEFORE = 0, 1, 2
MONTH_KEY = ["BEHOLDNINGSMAANED", "ORG_NIVAA", "ORG_STED_ID", "UTFALL", "NEDBRYTNING", "GRUPPE"]
PERIOD_KEY = ["PERIODE_FRA", "PERIODE_TIL", "ORG_NIVAA", "ORG_STED_ID", "UTFALL", "NEDBRYTNING", "GRUPPE"]


class ReleaseOrderError(ValueError):
    """A release older than one already stored: it could not be protected with the later one."""


@dataclass
class Carried:
    """The release before this one: its id, its periods, and each of its cells' decision and
    values (to tell an unchanged cell from a revised one). Empty for a store's first release."""
    release_id: str | None = None
    periods: list[Period] = field(default_factory=list)
    monthly: pd.DataFrame | None = None
    period: pd.DataFrame | None = None


def previous_release(db, as_of: str) -> Carried:
    """The newest stored release, which holds every earlier one (module docstring). Raises
    ReleaseOrderError if it is as of a later month than `as_of` ('YYYY-MM')."""
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.IOException:
        return Carried()
    with con:
        if not _has(con, "releases"):
            return Carried()
        row = con.execute("SELECT release_id, as_of FROM releases ORDER BY as_of DESC, created_at DESC LIMIT 1").fetchall()
        if not row:
            return Carried()
        rid, last = row[0]
        if last > as_of:
            raise ReleaseOrderError(
                f"Resultatbasen har allerede en publisering per {last}; en publisering per {as_of} kan ikke vernes "
                "sammen med den (en angriper har begge). Publiser uttrekk i månedsrekkefølge.")
        cols = "PRIKKET, ANTALL_PERSONER, faktisk"
        monthly = con.execute(f"SELECT {', '.join(MONTH_KEY)}, {cols} FROM published WHERE run_id = ?", [rid]).df()
        period = con.execute(f"SELECT PERIODE, {', '.join(PERIOD_KEY)}, {cols}, ANTALL_PERSONMANEDER "
                             "FROM published_period WHERE run_id = ?", [rid]).df()
    spans = period[["PERIODE", "PERIODE_FRA", "PERIODE_TIL"]].drop_duplicates()
    periods = [Period(str(r.PERIODE), f"{pd.Timestamp(r.PERIODE_FRA):%Y-%m}", f"{pd.Timestamp(r.PERIODE_TIL):%Y-%m}")
               for r in spans.itertuples()]
    return Carried(rid, periods, monthly, period.drop(columns="PERIODE"))


def release_periods(con, spec, source: str, carried: Carried) -> list[Period]:
    """The periods of a release: those complete for every outcome, and the previous release's."""
    src = coded_table(source)
    first = con.execute(f"SELECT min(month) FROM {src}").fetchall()[0][0]
    lasts = [con.execute(f"SELECT max(month) FROM {src} WHERE actual_{o} IS NOT NULL").fetchall()[0][0]
             for o in spec.outcomes]
    if first is None or any(x is None for x in lasts):
        return list(carried.periods)
    lo, hi = f"{first:%Y-%m}", f"{min(lasts):%Y-%m}"
    inside = lambda a, b: lo <= a and b <= hi  # noqa: E731  ('YYYY-MM' strings order as months)
    periods = [Period(str(y), f"{y}-01", f"{y}-12") for y in range(first.year, int(hi[:4]) + 1)
               if inside(f"{y}-01", f"{y}-12")]
    start = f"{pd.Timestamp(hi + '-01') - pd.DateOffset(months=11):%Y-%m}"
    if inside(start, hi):
        periods.append(Period(f"siste 12 mnd til {hi}", start, hi))
    periods += [Period(label, a, b) for label, a, b in spec.periods if inside(a, b)]
    # the earlier releases' periods first, with their labels; a span once (the last 12 months to
    # a December are that calendar year)
    out, spans = [], set()
    for p in list(carried.periods) + periods:
        if (p.start, p.end) not in spans:
            out.append(p)
            spans.add((p.start, p.end))
    return out


def decisions(new: pd.DataFrame, old: pd.DataFrame | None, key: list[str], values: list[str]) -> np.ndarray:
    """Per row of `new` (labelled cells, before suppression): PUBLISHED_BEFORE if the old release
    published the same cell with the same `values`, SUPPRESSED_BEFORE if it suppressed it, else
    FREE (new, or revised)."""
    out = np.full(len(new), FREE, np.int8)
    if old is None or old.empty or new.empty:
        return out
    old = old.drop_duplicates(key)  # a span published under two labels by an older release
    k_new = _norm(new[key])
    k_old = _norm(old[key])
    j = k_new.reset_index(drop=True).merge(k_old.assign(__row=np.arange(len(old))), on=key, how="left")
    hit = j["__row"].notna().to_numpy()
    rows = j["__row"].to_numpy()[hit].astype(np.int64)
    sup = old["PRIKKET"].to_numpy(bool)[rows]
    same = np.ones(len(rows), bool)
    for c in values:
        a = pd.to_numeric(new[c], errors="coerce").to_numpy(float)[hit]
        b = pd.to_numeric(old[c], errors="coerce").to_numpy(float)[rows]
        same &= np.isclose(a, b, rtol=0, atol=5e-5) if c == "faktisk" else (a == b)
    idx = np.flatnonzero(hit)
    out[idx[sup]] = SUPPRESSED_BEFORE
    out[idx[~sup & same]] = PUBLISHED_BEFORE
    return out


def _norm(d: pd.DataFrame) -> pd.DataFrame:
    """Key columns comparable across the store and a fresh frame (dates as dates, ids as text)."""
    d = d.copy()
    for c in d.columns:
        if c in ("BEHOLDNINGSMAANED", "PERIODE_FRA", "PERIODE_TIL"):
            d[c] = pd.to_datetime(d[c]).dt.date
        elif c == "ORG_NIVAA":
            d[c] = d[c].astype(np.int64)
        else:
            d[c] = d[c].astype(str)
    return d


def history_check(con, release_id: str) -> pd.DataFrame:
    """For every earlier release in the store: how many of its published cells this release does
    not publish, or publishes with another count or value though it was final (`skjult_senere`:
    then this release's audit does not cover the history; a provisional value may be revised), and
    how many of its suppressed cells this release publishes (`vist_senere`). Both 0 means this
    release holds the whole history (module docstring)."""
    if not _has(con, "releases"):
        return pd.DataFrame(columns=["release_id", "as_of", "skjult_senere", "vist_senere"])
    rows = []
    earlier = con.execute("""SELECT e.release_id, e.as_of FROM releases e, releases r WHERE r.release_id = ?
                             AND e.release_id <> r.release_id AND e.created_at < r.created_at ORDER BY e.created_at""",
                          [release_id]).fetchall()
    for rid, as_of in earlier:
        n = {"skjult_senere": 0, "vist_senere": 0}
        for table, key in (("published", MONTH_KEY), ("published_period", PERIOD_KEY)):
            on = " AND ".join(f"n.{c} = o.{c}" for c in key)
            hidden, shown = con.execute(f"""
                SELECT count(*) FILTER (WHERE NOT o.PRIKKET AND (n.run_id IS NULL OR n.PRIKKET
                                        OR (o.ENDELIG AND (n.ANTALL_PERSONER IS DISTINCT FROM o.ANTALL_PERSONER
                                                           OR n.faktisk IS DISTINCT FROM o.faktisk)))),
                       count(*) FILTER (WHERE o.PRIKKET AND NOT n.PRIKKET)
                FROM {table} o LEFT JOIN {table} n ON n.run_id = ? AND {on}
                WHERE o.run_id = ?""", [release_id, rid]).fetchall()[0]
            n["skjult_senere"] += int(hidden)
            n["vist_senere"] += int(shown)
        rows.append({"release_id": rid, "as_of": as_of, **n})
    return pd.DataFrame(rows, columns=["release_id", "as_of", "skjult_senere", "vist_senere"])


__all__ = ["Carried", "PUBLISHED_BEFORE", "ReleaseOrderError", "SUPPRESSED_BEFORE", "decisions", "history_check",
           "previous_release", "release_periods"]
