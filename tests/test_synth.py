"""The synthetic world: determinism, contract, ground truth and calibration."""

import hashlib

import duckdb
import numpy as np

from arbeidsindikator.data.contract import TABLES
from arbeidsindikator.pipeline.outcomes import outcomes_sql
from arbeidsindikator.data.synth import generate_world
from arbeidsindikator.analyses.calibration import calibration_report
from arbeidsindikator.data.validate import register_tables, validate


def _digests(d):
    return {p.relative_to(d).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(small_world, tmp_path):
    again = tmp_path / "again"
    generate_world(again, scale="small", seed=1)
    assert _digests(small_world) == _digests(again)


def test_another_seed_differs(small_world, tmp_path):
    other = tmp_path / "other"
    generate_world(other, scale="small", seed=2)
    a, b = _digests(small_world), _digests(other)
    assert a.keys() == b.keys()
    assert a["stock.parquet"] != b["stock.parquet"]
    assert a["employment.parquet"] != b["employment.parquet"]


def test_world_has_every_contract_table_and_passes_validation(small_world):
    for name in TABLES:
        assert (small_world / f"{name}.parquet").exists(), name
    violations = validate(small_world)
    assert [v for v in violations if v.severity == "error"] == []


def test_world_behaves_like_nav(small_world):
    con = duckdb.connect()
    register_tables(con, small_world)
    q = lambda s: con.execute(s).fetchall()  # noqa: E731
    # all 12 regions plus NOE; offices that merge and split over time
    assert q("SELECT count(*) FROM regions")[0][0] == 13
    assert q("SELECT count(*) FROM offices WHERE successor_office_id IS NOT NULL")[0][0] >= 3
    assert q("SELECT count(DISTINCT municipality_id) FROM municipalities WHERE valid_to IS NOT NULL")[0][0] >= 2
    # NOE: none before the pilot (September 2022), only standard innsats, ages 30-59
    assert q("SELECT count(*) FROM stock WHERE office_id = '4154' AND month < DATE '2022-09-01'")[0][0] == 0
    assert q("SELECT count(*) FROM stock WHERE office_id = '4154'")[0][0] > 0
    assert q("SELECT count(*) FROM stock WHERE office_id = '4154' AND innsatsgruppe <> 'standard'")[0][0] == 0
    assert q("""SELECT count(*) FROM stock s JOIN persons p USING (person_id) WHERE office_id = '4154'
                AND (date_diff('month', birth_month, month) < 30*12 - 12 OR date_diff('month', birth_month, month) >= 61*12)""")[0][0] == 0
    # youth guarantee only from July 2023 and only for situasjonsbestemt / spesielt tilpasset
    assert q("SELECT count(*) FROM stock WHERE youth_guarantee AND month < DATE '2023-07-01'")[0][0] == 0
    assert q("""SELECT count(*) FROM stock WHERE youth_guarantee
                AND innsatsgruppe NOT IN ('situasjonsbestemt', 'spesielt_tilpasset')""")[0][0] == 0
    # the pandemic wave of laid-off users in spring 2020
    laid = dict(q("SELECT year(month), avg(laid_off::INT) FROM stock GROUP BY 1"))
    assert laid[2020] > 2 * laid[2019]
    # weekly hours are zero, part-time or full-time
    hours = np.array([r[0] for r in q("SELECT hours * 12 / 52 FROM employment")])
    assert (hours < 19).mean() > 0.1 and ((hours >= 19) & (hours < 34)).mean() > 0.1 and (hours >= 34).mean() > 0.1
    # office HR: July has low agreed hours and a high sick-leave share
    hr = dict(q("""SELECT month(month) = 7, sum(sick_leave_hours) / sum(agreed_hours) FROM office_hr GROUP BY 1"""))
    assert hr[True] > hr[False]


def test_truth_covers_every_office_month(small_world):
    con = duckdb.connect()
    register_tables(con, small_world)
    truth = (small_world / "truth" / "office_month.parquet").as_posix()
    missing = con.execute(f"""
        SELECT count(*) FROM (SELECT DISTINCT office_id, month FROM stock WHERE innsatsgruppe <> 'varig_tilpasset') s
        ANTI JOIN read_parquet('{truth}') t USING (office_id, month)""").fetchall()[0][0]
    assert missing == 0
    n = con.execute(f"""SELECT sum(abs(t.n_persons - s.n)) FROM read_parquet('{truth}') t JOIN
        (SELECT office_id, month, count(*) n FROM stock WHERE innsatsgruppe <> 'varig_tilpasset' GROUP BY 1, 2) s
        USING (office_id, month)""").fetchall()[0][0]
    assert n == 0
    effects = con.execute(f"SELECT effect, outcome, latent, outcome_scale FROM read_parquet('{(small_world / 'truth' / 'effects.parquet').as_posix()}')").fetchall()
    assert {e[0] for e in effects} == {"sick_leave", "staffing", "noe"}


def _oracle(world):
    """An oracle that knows the true model: actual outcome minus the true expected outcome
    with an average office, averaged per office and year."""
    con = duckdb.connect()
    register_tables(con, world)
    con.execute(f"CREATE TABLE o AS {outcomes_sql()}")
    tpm = (world / "truth" / "person_month.parquet").as_posix()
    tom = (world / "truth" / "office_month.parquet").as_posix()
    return con.execute(f"""
        SELECT s.office_id, year(s.month) AS y, count(*) AS n,
               avg(o.jobb3 * 100 - t.expected_average_office_jobb3) AS oracle_jobb3,
               avg(t.expected_with_office_jobb3 - t.expected_average_office_jobb3) AS truth_jobb3,
               avg(o.atid3 - t.expected_average_office_atid3) AS oracle_atid3,
               avg(t.expected_with_office_atid3 - t.expected_average_office_atid3) AS truth_atid3,
               avg(o.jobb12 * 100 - t.expected_with_office_jobb12) AS resid_jobb12,
               avg(o.atid12 - t.expected_with_office_atid12) AS resid_atid12
        FROM stock s JOIN o USING (person_id, month) JOIN read_parquet('{tpm}') t USING (person_id, month)
        WHERE s.innsatsgruppe <> 'varig_tilpasset' AND o.jobb12 IS NOT NULL
        GROUP BY 1, 2 HAVING count(*) >= 300""").df(), con, tom


def test_oracle_recovers_the_stored_truth(small_clean_world):
    df, con, tom = _oracle(small_clean_world)
    assert len(df) > 50
    for o in ("jobb3", "atid3"):
        r = np.corrcoef(df[f"oracle_{o}"], df[f"truth_{o}"])[0, 1]
        assert r > 0.8, (o, r)
    # the person-level truth aggregates exactly to the stored office-month truth
    d = con.execute(f"""SELECT max(abs(t.true_jobb3 - p.v)) FROM read_parquet('{tom}') t JOIN
        (SELECT s.office_id, s.month, avg(x.expected_with_office_jobb3 - x.expected_average_office_jobb3) v
         FROM stock s JOIN read_parquet('{(small_clean_world / 'truth' / 'person_month.parquet').as_posix()}') x
         USING (person_id, month) WHERE s.innsatsgruppe <> 'varig_tilpasset' GROUP BY 1, 2) p USING (office_id, month)""").fetchall()[0][0]
    assert d < 1e-9
    # realised outcomes are unbiased for the true expected outcome (no systematic gap)
    w = df["n"] / df["n"].sum()
    assert abs((w * df["resid_jobb12"]).sum()) < 1.0  # percentage points
    assert abs((w * df["resid_atid12"]).sum()) < 0.3  # hours per week


def test_calibration_at_medium_scale(medium_world):
    figs = calibration_report(medium_world)
    checked = [f for f in figs if f.tolerance is not None]
    assert len(checked) >= 8
    bad = [(f.name, f.world, f.published) for f in checked if not f.ok]
    assert bad == []


def test_calibration_table_formats_counts_without_decimals():
    from arbeidsindikator.analyses.calibration import _figure
    assert _figure(4330.72) == "4 331" and _figure(1180.0) == "1 180" and _figure(7.0) == "7"
    assert _figure(16.904) == "16,90" and _figure(None) == "" and _figure(float("nan")) == ""
