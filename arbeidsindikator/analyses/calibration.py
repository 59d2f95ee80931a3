"""Calibration report: the synthetic world's key figures beside the published ones.

Everything is measured from the written tables (as an analyst would, with SQL), not from
the generator's internals, so the report also checks that the tables say what the
generator meant. Counts are compared after scaling the published national numbers by the
world's size (a medium world is a tenth of Nav).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb

from .. import norsk
from ..pipeline.outcomes import outcomes_sql
from ..data.validate import register_tables, view_file


@dataclass
class Figure:
    name: str
    world: float
    published: float
    tolerance: float | None  # absolute; None = shown for information only
    unit: str
    source: str

    @property
    def ok(self) -> bool | None:
        if self.tolerance is None:
            return None
        return abs(self.world - self.published) <= self.tolerance


def published_facts() -> dict:
    text = resources.files("arbeidsindikator.analyses").joinpath("published_facts.toml").read_text()
    return tomllib.loads(text)


def calibration_report(data_dir: Path | str) -> list[Figure]:
    data_dir = Path(data_dir)
    facts = published_facts()
    world = json.loads((data_dir / "truth" / "world.json").read_text()) if (data_dir / "truth" / "world.json").exists() else {}
    con = duckdb.connect()
    register_tables(con, data_dir)
    con.execute(f"CREATE TEMP TABLE o AS {outcomes_sql()}")
    con.execute("""CREATE TEMP VIEW pop AS
        SELECT s.*, o.atid3, o.atid12, o.jobb3, o.jobb12 FROM stock s JOIN o USING (person_id, month)
        WHERE innsatsgruppe <> 'varig_tilpasset'""")
    q = lambda sql, *args: con.execute(sql, list(args)).fetchall()[0][0]  # noqa: E731
    per_month = q("SELECT count(*) / count(DISTINCT month) FROM pop")
    target = facts["population"]["persons_under_follow_up_per_month"]
    scale = per_month / target
    figs = [Figure("Personer i beholdningen per måned (snitt)", per_month,
                   _target_stock(world) or per_month, 0.15 * per_month, "personer",
                   f"Dahl faktaboks: {norsk.integer(target)} nasjonalt; målet er skalert til verdenens størrelse")]
    groups = {"spesielt_tilpasset": "spesielt tilpasset", "situasjonsbestemt": "situasjonsbestemt", "standard": "standard"}
    lv = facts["innsatsgruppe_levels"]
    has_truth = (data_dir / "truth" / "person_month.parquet").exists()
    if has_truth:
        view_file(con, "tpm", data_dir / "truth" / "person_month.parquet")
    for g, label in groups.items():
        figs.append(Figure(f"Andel i jobb 12 mnd etter, {label}", q("SELECT avg(jobb12) FROM pop WHERE innsatsgruppe = ?", g) * 100,
                           lv["actual_jobb12_share"][g] * 100, 5.0, "prosent", "Skjøstad eksempel 2"))
    for g, label in groups.items():
        if has_truth:
            val = q("""SELECT avg(t.expected_with_office_atid3) FROM pop p JOIN tpm t USING (person_id, month)
                       WHERE p.innsatsgruppe = ? AND p.atid3 IS NOT NULL""", g)
            name = f"Forventet arbeidstid 3 mnd (sann modell), {label}"
        else:
            val = q("SELECT avg(atid3) FROM pop WHERE innsatsgruppe = ?", g)
            name = f"Faktisk arbeidstid 3 mnd, {label}"
        figs.append(Figure(name, val, lv["expected_atid3_hours"][g], 1.5, "timer per uke", "Skjøstad eksempel 2"))
    for g, label in groups.items():
        figs.append(Figure(f"Faktisk arbeidstid 3 mnd, {label}", q("SELECT avg(atid3) FROM pop WHERE innsatsgruppe = ?", g),
                           lv["expected_atid3_hours"][g], None, "timer per uke", "Skjøstad eksempel 2 (forventet)"))
    mr = q("""SELECT count(*) FROM pop p JOIN municipalities m ON p.municipality_id = m.municipality_id
              AND p.month >= m.valid_from AND (m.valid_to IS NULL OR p.month <= m.valid_to)
              JOIN offices f ON m.office_id = f.office_id AND p.month >= f.valid_from AND (f.valid_to IS NULL OR p.month <= f.valid_to)
              WHERE f.region_id = '15' AND p.month = DATE '2023-12-01'""")
    figs.append(Figure("Brukere i Møre og Romsdal, desember 2023", mr,
                       facts["population"]["more_og_romsdal_users_2023_12"] * scale, None, "personer", "Skjøstad eksempel 1 (skalert)"))
    noe = facts["proba_noe"]
    autumn = q("SELECT count(*) / 3 FROM stock WHERE office_id = '4154' AND month BETWEEN DATE '2023-09-01' AND DATE '2023-11-01'")
    winter = q("SELECT count(*) / 2 FROM stock WHERE office_id = '4154' AND month BETWEEN DATE '2024-01-01' AND DATE '2024-02-01'")
    figs.append(Figure("Aktive brukere i NOE, høsten 2023", autumn, noe["active_users_autumn_2023"] * scale, None, "personer", "Proba (skalert)"))
    figs.append(Figure("Aktive brukere i NOE, vinteren 2024", winter, noe["active_users_winter_2024"] * scale, None, "personer", "Proba (skalert)"))
    still = q("""WITH e AS (SELECT person_id, min(month) AS m0 FROM stock WHERE office_id = '4154' GROUP BY 1
                            HAVING min(month) <= DATE '2024-06-01')
                 SELECT avg((s.person_id IS NOT NULL)::INT) FROM e LEFT JOIN stock s
                   ON s.person_id = e.person_id AND s.month = e.m0 + INTERVAL 6 MONTH AND s.office_id = '4154'""")
    figs.append(Figure("Andel fortsatt i NOE 6 mnd etter start", (still or 0) * 100,
                       noe["share_still_in_noe_after_6_months"] * 100, None, "prosent", "Proba"))
    dahl = facts["dahl_office_panel"]
    hr = "FROM office_hr WHERE office_id <> '4154' AND agreed_hours > 0"
    figs.append(Figure("Sykefravær i kontorene siden 2022", 100 * q(f"SELECT sum(sick_leave_hours)/sum(agreed_hours) {hr} AND month >= DATE '2022-01-01'"),
                       dahl["sick_leave_level_since_2022"] * 100, 1.0, "prosent", "Dahl"))
    figs.append(Figure("Sykefravær tidlig 2021 (jan-apr)", 100 * q(f"SELECT sum(sick_leave_hours)/sum(agreed_hours) {hr} AND month BETWEEN DATE '2021-01-01' AND DATE '2021-04-01'"),
                       dahl["sick_leave_early_2021_below"] * 100, None, "prosent", "Dahl: under 6 %"))
    figs.append(Figure("Høyeste månedlige sykefravær i 2022", 100 * q(f"""SELECT max(s) FROM (SELECT sum(sick_leave_hours)/sum(agreed_hours) s {hr}
                       AND year(month) = 2022 GROUP BY month)"""), dahl["sick_leave_2022_peak_months_near"] * 100, 1.5, "prosent", "Dahl"))
    figs.append(Figure("Andel kontormåneder uten sykefravær", 100 * q(f"SELECT avg((sick_leave_hours = 0)::INT) {hr} AND month >= DATE '2018-01-01'"),
                       dahl["share_office_months_with_zero_sick_leave"] * 100, None, "prosent", "Dahl: nesten en femtedel"))
    laid = noe["laid_off_share"]
    for label, a, b, pub in (("2021", "2021-03-01", "2021-11-01", laid["before"]), ("2023", "2023-03-01", "2023-11-01", laid["after"])):
        # spells (person, start month) that have standard innsats, started in the window at 30-59
        val = q("""SELECT avg(laid_off::INT) FROM (
                      SELECT person_id, month - to_months(months_since_registration) AS start,
                             bool_or(laid_off) AS laid_off, bool_or(innsatsgruppe = 'standard') AS std
                      FROM stock GROUP BY 1, 2) sp JOIN persons p USING (person_id)
                    WHERE std AND start BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)
                      AND date_diff('year', birth_month, start) BETWEEN 30 AND 59""", a, b)
        figs.append(Figure(f"Permitterte blant nye forløp 30-59 år, mars-nov {label}", 100 * (val or 0), pub * 100, None, "prosent", "Proba"))
    con.close()
    return figs


def _target_stock(world: dict) -> float | None:
    from ..data.synth.params import SCALES
    return float(SCALES[world["scale"]].stock_per_month) if world.get("scale") in SCALES else None


def report_table(figs: list[Figure]):
    from rich.table import Table
    t = Table(title="Kalibrering: syntetisk verden mot publiserte tall")
    for col in ("Størrelse", "Verden", "Publisert", "Toleranse", "OK", "Kilde"):
        t.add_column(col, justify="right" if col in ("Verden", "Publisert", "Toleranse") else "left")
    for f in figs:
        ok = {True: "[green]ja[/]", False: "[red]nei[/]", None: "info"}[f.ok]
        tol = "" if f.tolerance is None else "±" + _figure(f.tolerance)
        t.add_row(f.name, _figure(f.world), _figure(f.published), tol, ok, f.source)
    return t


def _figure(x) -> str:
    """Counts and large figures without decimals (thousands spaced), shares and rates with two."""
    if x is None or x != x:  # missing, or NaN
        return ""
    x = float(x)
    return norsk.number(x, 0 if abs(x) >= 100 or x.is_integer() else 2)
