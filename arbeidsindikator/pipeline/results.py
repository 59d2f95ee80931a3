"""Reading a results store: the published tables of a run, checked lookups, and the reading
rules built into every comparison.

`Results` is what the Python API, the command line, the reports and the dashboard read
through. It never returns person-level rows. Every lookup checks what it is given against
what the run published (a unit by name or id, case-insensitive; an outcome; a breakdown and
its groups; a month within the run) and says what is valid when it is not, in Norwegian: these
messages reach users through the command line.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import duckdb
import pandas as pd

from .. import norsk
from .runs import latest_run_id, run_exists

TIME_KEYS = ("ORG_NIVAA", "ORG_STED_ID", "UTFALL", "NEDBRYTNING", "GRUPPE")


class Results:
    """Read access to a results store (aggregates only)."""

    def __init__(self, db: Path | str):
        self.db = Path(db)
        if not self.db.exists():
            raise FileNotFoundError(f"Resultatbasen {self.db} finnes ikke; kjør først «arbeidsindikator run».")
        self.con = duckdb.connect(str(self.db), read_only=True)
        self._cache: dict = {}

    # -- runs and tables ------------------------------------------------------------------------
    def run_id(self, run_id: str | None = None) -> str:
        if run_id is not None:
            if not run_exists(self.con, run_id):
                raise LookupError(f"{self.db} har ingen kjøring {run_id!r}.")
            return run_id
        rid = latest_run_id(self.con)
        if rid is None:
            raise LookupError(f"{self.db} har ingen kjøringer; kjør «arbeidsindikator run».")
        return rid

    def runs(self) -> pd.DataFrame:
        return self.con.execute("SELECT * FROM runs ORDER BY created_at").df()

    def coefficients(self, run_id: str | None = None) -> pd.DataFrame:
        return self.con.execute("SELECT * FROM coefficients WHERE run_id = ?", [self.run_id(run_id)]).df()

    def published(self, run_id: str | None = None, **filters) -> pd.DataFrame:
        """The monthly cells of a run, filtered by column = value (column names as in the table,
        case-insensitive: ORG_NIVAA=1, utfall="jobb3", ...)."""
        return self._select("published", run_id, filters, "BEHOLDNINGSMAANED")

    def period(self, run_id: str | None = None, **filters) -> pd.DataFrame:
        """Period cells (calendar years, last 12 months, whole period, ...), person-clustered."""
        return self._select("published_period", run_id, filters, "PERIODE")

    def _select(self, table, run_id, filters, time_col) -> pd.DataFrame:
        rid = self.run_id(run_id)  # first: an empty store has no tables to describe
        columns = {c.upper(): c for c, *_ in self.con.execute(f"DESCRIBE {table}").fetchall() if c != "run_id"}
        where, args = ["run_id = ?"], [rid]
        for k, v in filters.items():
            col = columns.get(str(k).upper())
            if col is None:  # a filter is a column of the table, never SQL
                raise ValueError(f"unknown column {k!r} in {table}; valid: {', '.join(columns.values())}")
            where.append(f'"{col}" = ?')
            args.append(v)
        return self.con.execute(f"SELECT * EXCLUDE (run_id) FROM {table} WHERE {' AND '.join(where)} "
                                f"ORDER BY {', '.join(TIME_KEYS)}, {time_col}", args).df()

    # -- what the run published ---------------------------------------------------------------
    def units(self, run_id: str | None = None) -> pd.DataFrame:
        """Every unit: level, id, name, region, first and last month, and for an office that
        closed, the office that took over (ETTERFOLGER)."""
        rid = self.run_id(run_id)
        if ("units", rid) not in self._cache:
            has = self.con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'units'").fetchall()[0][0]
            if has and self.con.execute("SELECT count(*) FROM units WHERE run_id = ?", [rid]).fetchall()[0][0]:
                u = self.con.execute("SELECT * EXCLUDE (run_id) FROM units WHERE run_id = ? ORDER BY ORG_NIVAA, ORG_STED",
                                     [rid]).df()
            else:  # a store written before the units table existed
                u = self.con.execute("""SELECT ORG_NIVAA, ORG_STED_ID, last(ORG_STED) AS ORG_STED, last(REGION_ID) AS REGION_ID,
                                               min(BEHOLDNINGSMAANED) AS FORSTE_MAANED, max(BEHOLDNINGSMAANED) AS SISTE_MAANED
                                        FROM published WHERE run_id = ? AND NEDBRYTNING = 'Alle' GROUP BY ALL
                                        ORDER BY 1, 3""", [rid]).df()
                u["NEDLAGT"], u["ETTERFOLGER_ID"], u["ETTERFOLGER"] = False, None, None
            self._cache[("units", rid)] = u
        return self._cache[("units", rid)]

    def unit(self, unit: str, run_id: str | None = None) -> pd.Series:
        """A unit by name or id, case-insensitive ('Norge', 'oslo', '0301'); the lowest level
        where a name is used twice (NOE is a region and an office)."""
        u = self.units(run_id)
        key = str(unit).strip().casefold()
        hit = u[(u["ORG_STED_ID"].astype(str).str.casefold() == key) | (u["ORG_STED"].astype(str).str.casefold() == key)]
        if hit.empty:
            close = difflib.get_close_matches(str(unit), list(u["ORG_STED"]), n=3, cutoff=0.6)
            hint = f" Mente du {' eller '.join(repr(c) for c in close)}?" if close else ""
            raise LookupError(f"Ukjent enhet {unit!r}.{hint} Bruk «Norge», en region eller et kontor "
                              "(navn eller nummer; «arbeidsindikator enheter» viser alle).")
        return hit.sort_values("ORG_NIVAA").iloc[-1]

    def _unit(self, unit: str) -> tuple[int, str]:
        r = self.unit(unit)
        return int(r["ORG_NIVAA"]), str(r["ORG_STED_ID"])

    def outcomes(self, run_id: str | None = None) -> list[str]:
        rid = self.run_id(run_id)
        if ("outcomes", rid) not in self._cache:
            got = {r[0] for r in self.con.execute("SELECT DISTINCT UTFALL FROM published WHERE run_id = ?", [rid]).fetchall()}
            self._cache[("outcomes", rid)] = [o for o in norsk.OUTCOME if o in got] + sorted(got - set(norsk.OUTCOME))
        return self._cache[("outcomes", rid)]

    def check_outcome(self, outcome: str) -> str:
        if outcome not in self.outcomes():
            raise LookupError(f"Ukjent utfall {outcome!r}; gyldige: {', '.join(self.outcomes())}.")
        return outcome

    def breakdowns(self, run_id: str | None = None) -> dict[str, bool]:
        """Breakdown -> whether its variable is in the model."""
        rid = self.run_id(run_id)
        if ("bd", rid) not in self._cache:
            self._cache[("bd", rid)] = dict(self.con.execute(
                "SELECT NEDBRYTNING, any_value(I_MODELLEN) FROM published WHERE run_id = ? GROUP BY 1 ORDER BY 1", [rid]).fetchall())
        return self._cache[("bd", rid)]

    def groups(self, breakdown: str, run_id: str | None = None) -> list[str]:
        self.check_breakdown(breakdown)
        return [r[0] for r in self.con.execute("SELECT DISTINCT GRUPPE FROM published WHERE run_id = ? AND NEDBRYTNING = ? "
                                               "ORDER BY 1", [self.run_id(run_id), breakdown]).fetchall()]

    def check_breakdown(self, breakdown: str, group: str | None = None) -> None:
        if breakdown not in self.breakdowns():
            raise LookupError(f"Ukjent nedbrytning {breakdown!r}; gyldige: {', '.join(self.breakdowns())}.")
        if group is not None and group not in (valid := self.groups(breakdown)):
            raise LookupError(f"Ukjent gruppe {group!r} i «{breakdown}»; gyldige: {', '.join(valid)}.")

    def months(self, run_id: str | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
        lo, hi = self.con.execute("SELECT min(BEHOLDNINGSMAANED), max(BEHOLDNINGSMAANED) FROM published WHERE run_id = ?",
                                  [self.run_id(run_id)]).fetchall()[0]
        return pd.Timestamp(lo), pd.Timestamp(hi)

    def check_month(self, month) -> pd.Timestamp:
        """A month ('YYYY-MM', 'YYYY-MM-DD' or a date) inside the run's months."""
        try:
            m = pd.Timestamp(str(month)[:7] + "-01") if isinstance(month, str) else pd.Timestamp(month)
        except (ValueError, TypeError):
            raise ValueError(f"Ugyldig måned {month!r}: bruk ÅÅÅÅ-MM, for eksempel 2023-06.") from None
        lo, hi = self.months()
        if not lo <= m <= hi:
            raise LookupError(f"Ingen publiserte tall for {norsk.month(m.date())}: kjøringen dekker "
                              f"{norsk.month(lo.date())} til {norsk.month(hi.date())}.")
        return m

    def periods(self, run_id: str | None = None) -> list[str]:
        return [r[0] for r in self.con.execute("SELECT DISTINCT PERIODE FROM published_period WHERE run_id = ? ORDER BY 1",
                                               [self.run_id(run_id)]).fetchall()]

    def check_period(self, period: str) -> str:
        if period not in (valid := self.periods()):
            raise LookupError(f"Ukjent periode {period!r}; gyldige: {', '.join(valid)}.")
        return period

    # -- readings -----------------------------------------------------------------------------
    def compare_levels(self, unit: str, outcome: str, breakdown: str, month=None, period: str | None = None):
        """The groups of a breakdown side by side. Refused (ReadingRuleError) for in-model breakdowns."""
        from .reading import check_level_comparison
        level, uid = self._unit(unit)
        self.check_outcome(outcome)
        self.check_breakdown(breakdown)
        check_level_comparison(breakdown, bool(self.breakdowns()[breakdown]))
        flt = {"ORG_NIVAA": level, "ORG_STED_ID": uid, "UTFALL": outcome, "NEDBRYTNING": breakdown}
        if period:
            df = self.period(PERIODE=self.check_period(period), **flt)
        else:
            df = self.published(**flt)
            if month is not None:
                df = df[pd.to_datetime(df["BEHOLDNINGSMAANED"]) == self.check_month(month)]
        if df.empty:
            raise LookupError(f"Ingen tall for {self.unit(unit)['ORG_STED']} i «{breakdown}»"
                              + (f" i {norsk.month(pd.Timestamp(month).date())}" if month is not None else "") + ".")
        return df

    def index_of_change(self, unit: str, outcome: str, reference_month, breakdown: str = "Alle", group: str = "Alle"):
        """Development from a reference month (index 0 there), with a 95% interval; allowed for every breakdown."""
        from .reading import index_of_change
        level, uid = self._unit(unit)
        self.check_outcome(outcome)
        self.check_breakdown(breakdown, group)
        ref = self.check_month(reference_month)
        s = self.published(ORG_NIVAA=level, ORG_STED_ID=uid, UTFALL=outcome, NEDBRYTNING=breakdown, GRUPPE=group)
        name = self.unit(unit)["ORG_STED"]
        if s.empty:
            raise LookupError(f"Ingen tall for {name}, {norsk.outcome(outcome)}, {breakdown} = {group}.")
        shown = s[~s["PRIKKET"].astype(bool)]
        at = shown[pd.to_datetime(shown["BEHOLDNINGSMAANED"]) == ref]
        if at.empty:
            first = pd.to_datetime(shown["BEHOLDNINGSMAANED"]).min() if len(shown) else None
            why = (f"; gruppen har publiserte tall fra {norsk.month(first.date())}" if first is not None and first > ref
                   else "; verdien er prikket eller mangler den måneden")
            raise LookupError(f"Ingen publisert verdi for {name} ({breakdown} = {group}) i referansemåneden "
                              f"{norsk.month(ref.date())}{why}. Velg en annen referansemåned.")
        out = index_of_change(s, ref, difference_near_zero=True)
        out.insert(0, "ORG_STED", name)
        out.insert(1, "UTFALL", outcome)
        out.insert(2, "GRUPPE", group)
        return out

    def funnel(self, level: int, outcome: str, month=None, period: str | None = None, breakdown: str = "Alle",
               group: str = "Alle", region: str | None = None):
        """Funnel-plot data: every unit's indicator against its size with control limits."""
        from .shrinkage import funnel
        if level not in (2, 3):
            raise ValueError("Nivå må være 2 (regioner) eller 3 (kontor).")
        self.check_outcome(outcome)
        self.check_breakdown(breakdown, group)
        if (month is None) == (period is None):
            raise ValueError("Oppgi enten en måned eller en periode.")
        flt = {"ORG_NIVAA": level, "UTFALL": outcome, "NEDBRYTNING": breakdown, "GRUPPE": group}
        if period:
            cells = self.period(PERIODE=self.check_period(period), **flt)
        else:
            cells = self.published(**flt)
            cells = cells[pd.to_datetime(cells["BEHOLDNINGSMAANED"]) == self.check_month(month)]
        if level == 3 and region is not None:
            cells = cells[cells["REGION_ID"] == self._unit(region)[1]]
        return funnel(cells)

    def work_volume(self, unit: str, month, outcome: str = "atid3") -> dict:
        """The indicator as extra hours per week and full-time equivalents for a unit in a month
        (hours outcomes only: a share in work is not hours)."""
        from .reading import work_volume
        self.check_outcome(outcome)
        if outcome not in norsk.HOURS_OUTCOMES:
            raise ValueError(f"Arbeidsvolum finnes bare for arbeidstid (atid3, atid12): {outcome} er en andel i jobb, "
                             "målt i prosentpoeng, ikke timer.")
        level, uid = self._unit(unit)
        m = self.check_month(month)
        c = self.published(ORG_NIVAA=level, ORG_STED_ID=uid, UTFALL=outcome, NEDBRYTNING="Alle")
        c = c[pd.to_datetime(c["BEHOLDNINGSMAANED"]) == m]
        if c.empty or pd.isna(c["INDIKATOR"].iloc[0]):
            u = self.unit(unit)
            closed = ""
            if bool(u.get("NEDLAGT", False)) and pd.Timestamp(u["SISTE_MAANED"]) < m:  # a closed office: say where its users went
                closed = (f" Kontoret ble lagt ned etter {norsk.month(pd.Timestamp(u['SISTE_MAANED']).date())}"
                          + (f"; brukerne ble overført til {u['ETTERFOLGER']}." if u.get("ETTERFOLGER") else "."))
            raise LookupError(f"Ingen publisert verdi for {u['ORG_STED']} i {norsk.month(m.date())}.{closed}")
        return {"unit": c["ORG_STED"].iloc[0], "month": m.strftime("%Y-%m")} | work_volume(
            float(c["INDIKATOR"].iloc[0]), float(c["ANTALL_PERSONER"].iloc[0]))

    def close(self):
        self.con.close()


__all__ = ["Results"]
