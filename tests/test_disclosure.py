"""Disclosure control over the linked tables: an attacker written here, independently of
audit.py, differences every published relation; the project's audit must agree with it.

The attacker knows what anyone knows from the published tables: each published cell's
person-months and means (so its sums), which cells are suppressed, and the keys. It sets up
the relations from the keys alone (groups within units, offices within regions within the
country, months within periods), peels every relation with one unknown (repeatedly), and
checks the values it recovers against the true cells (a run with no suppression)."""

import dataclasses
import shutil
from collections import defaultdict

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import arbeidsindikator as ai
import arbeidsindikator.pipeline.run as run_mod
from arbeidsindikator.pipeline import disclosure, publish
from arbeidsindikator.pipeline.audit import DisclosureError, audit

KEYS = ["ORG_NIVAA", "ORG_STED_ID", "NEDBRYTNING", "GRUPPE"]


def _tables(db):
    con = duckdb.connect(str(db), read_only=True)
    m = con.execute("SELECT * EXCLUDE (run_id) FROM published").df()
    p = con.execute("SELECT * EXCLUDE (run_id) FROM published_period").df()
    w = con.execute("SELECT * EXCLUDE (run_id) FROM disclosure_witness").df()
    con.close()
    return m, p, w


def _t(kind, time) -> str:
    return pd.Timestamp(time).strftime("%Y-%m-%d") if kind == "m" else str(time)


def _weight(kind, r) -> float:
    """What a cell's mean is over: persons in a month, person-months in a period."""
    return float(r.ANTALL_PERSONMANEDER if kind == "p" else r.ANTALL_PERSONER)


def _in_work(total: float) -> int:
    """Published means are rounded (publish.DECIMALS), so a differenced sum carries the rounding
    of the cells it is made of. For a job share in per cent a sum is 100 x the persons (person-
    months) in work: the attacker has recovered the cell when it gets that count right."""
    return round(total / 100)


def attack(m: pd.DataFrame, p: pd.DataFrame, outcome: str) -> dict:
    """Differencing attack on one outcome: returns {cell key: recovered sum of the actual}."""
    cells, value = {}, {}

    def key(kind, time, r):
        return (kind, _t(kind, time), int(r.ORG_NIVAA), str(r.ORG_STED_ID), r.NEDBRYTNING, r.GRUPPE)

    months_of = {}
    region_of = defaultdict(set)
    for kind, d, tcol in (("m", m, "BEHOLDNINGSMAANED"), ("p", p, "PERIODE")):
        for r in d[d["UTFALL"] == outcome].itertuples():
            k = key(kind, getattr(r, tcol), r)
            cells[k] = r
            if not r.PRIKKET:
                value[k] = _weight(kind, r) * float(r.faktisk)
            if kind == "p":
                months_of[k[1]] = (pd.Timestamp(r.PERIODE_FRA), pd.Timestamp(r.PERIODE_TIL))
            if kind == "m" and r.ORG_NIVAA == 3:
                region_of[r.ORG_STED_ID].add(r.REGION_ID)
    # relations as lists of (cell, coefficient), from the keys only
    rel = defaultdict(list)
    breakdowns = defaultdict(set)
    for k in cells:
        if k[4] != "Alle":
            breakdowns[k[:4]].add(k[4])
    # a region that a moved office was ever in has no exact period relation
    unsteady = {reg for regs in region_of.values() if len(regs) > 1 for reg in regs}
    for k, r in cells.items():
        kind, t, lvl, unit, bd, grp = k
        if bd != "Alle":
            rel[("g", kind, t, lvl, unit, bd)].append((k, -1))
        else:
            for b in breakdowns[k[:4]]:
                rel[("g", kind, t, lvl, unit, b)].append((k, 1))
        if lvl == 3 and not (kind == "p" and r.REGION_ID in unsteady):
            rel[("o", kind, t, r.REGION_ID, bd, grp)].append((k, -1))
        if lvl == 2 and not (kind == "p" and unit in unsteady):
            rel[("o", kind, t, unit, bd, grp)].append((k, 1))
        if lvl == 2:
            rel[("c", kind, t, bd, grp)].append((k, -1))
        if lvl == 1:
            rel[("c", kind, t, bd, grp)].append((k, 1))
        if kind == "p":
            rel[("t", t, lvl, unit, bd, grp)].append((k, 1))
    for k in cells:
        if k[0] == "m":
            month = pd.Timestamp(k[1])
            for t, (a, b) in months_of.items():
                if a <= month <= b:
                    rel[("t", t) + k[2:]].append((k, -1))
    rel = [r for r in rel.values() if any(k in cells for k, _ in r)]
    # a relation whose parent is missing from the tables is not a relation (an empty parent means
    # empty children too): keep only those with both sides present
    rel = [r for r in rel if any(c > 0 for _, c in r) and any(c < 0 for _, c in r)]
    found = {}
    changed = True
    while changed:
        changed = False
        for r in rel:
            unknown = [(k, c) for k, c in r if k not in value]
            if len(unknown) == 1:
                k, c = unknown[0]
                value[k] = -sum(c2 * value[k2] for k2, c2 in r if k2 != k) / c
                found[k] = value[k]
                changed = True
    return found


def _truth(world, tmp_path_factory, spec):
    """The same tables with nothing suppressed (threshold 1)."""
    db = tmp_path_factory.mktemp("truth") / "res.duckdb"
    ai.run_indicator(world, config=dataclasses.replace(spec, min_persons=1), db=db)
    return _tables(db)


strict_db = {}


@pytest.fixture(scope="module")
def strict(small_world, tmp_path_factory):
    """A high threshold, so that many cells are suppressed and linked."""
    spec = dataclasses.replace(ai.load_spec(), min_persons=15)
    db = tmp_path_factory.mktemp("strict") / "res.duckdb"
    ai.run_indicator(small_world, config=spec, db=db)
    strict_db["path"] = db
    return spec, _tables(db), _truth(small_world, tmp_path_factory, spec)


@pytest.fixture(scope="module")
def primary_only(small_world, tmp_path_factory, strict):
    """The same cells with only primary suppression: what an attacker can do without secondaries.
    The run's own audit refuses to store them; here the gate is then bypassed to get the tables."""
    spec = strict[0]
    db = tmp_path_factory.mktemp("weak") / "res.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(disclosure.Protector, "run", lambda self: None)  # no secondaries, no witness
        with pytest.raises(DisclosureError):
            ai.run_indicator(small_world, config=spec, db=db)
        assert not db.exists()
        mp.setattr(run_mod, "audit", lambda *a, **k: type("Pass", (), {"passed": True})())
        ai.run_indicator(small_world, config=spec, db=db)
    return _tables(db)


def _key_values(m, p, outcome):
    out = {}
    for kind, d, tcol in (("m", m, "BEHOLDNINGSMAANED"), ("p", p, "PERIODE")):
        for r in d[d["UTFALL"] == outcome].itertuples():
            out[(kind, _t(kind, getattr(r, tcol)), int(r.ORG_NIVAA), str(r.ORG_STED_ID), r.NEDBRYTNING, r.GRUPPE)] = \
                _weight(kind, r) * float(r.faktisk)
    return out


def test_attacker_recovers_cells_behind_primary_suppression_only(primary_only, strict):
    """The attacker is real: against primary suppression alone it recovers suppressed values,
    each equal to the truth, and the project's audit finds at least as many."""
    m, p, _ = primary_only
    tm, tp, _ = strict[2]
    truth = _key_values(tm, tp, "jobb3")
    found = attack(m, p, "jobb3")
    assert len(found) > 50
    for k, v in found.items():
        assert _in_work(v) == _in_work(truth[k])
    res = audit(m, p, outcomes=["jobb3"])
    det = res.determined
    assert len(det) >= len(found)
    mine = {(r.kind, _t(r.kind, r.time), r.lvl, r.unit, r.bd, r.grp): r.actual_funnet for r in det.itertuples()}
    for k, v in mine.items():
        assert _in_work(v) == _in_work(truth[k])


def test_no_suppressed_value_is_recovered_from_the_tables(strict):
    _, (m, p, w), _ = strict
    assert m["PRIKKET"].mean() > 0.2
    for outcome in ("jobb3", "atid12"):
        assert attack(m, p, outcome) == {}
    with_witness = audit(m, p, w)
    assert with_witness.passed and with_witness.witness_ok
    assert with_witness.summary()["bevist_ved_vitne"].sum() == with_witness.summary()["prikket"].sum()
    without = audit(m, p)  # decided numerically, without the protection's own proof
    assert without.passed and without.summary()["bevist_numerisk"].sum() == without.summary()["prikket"].sum()


def test_a_tampered_witness_is_rejected(strict):
    _, (m, p, w), _ = strict
    bad = w.copy()
    bad.loc[bad.index[0], "VERDI"] += 1
    res = audit(m, p, bad)
    assert res.witness_ok is False and res.passed  # rejected, and the cells then decided numerically


def test_counts_of_suppressed_cells_are_not_published(strict):
    _, (m, p, _), _ = strict
    assert m.loc[m["PRIKKET"], "ANTALL_PERSONER"].isna().all()
    assert p.loc[p["PRIKKET"], ["ANTALL_PERSONER", "ANTALL_PERSONMANEDER"]].isna().all().all()
    assert m.loc[~m["PRIKKET"], "ANTALL_PERSONER"].notna().all()
    assert set(m.loc[m["PRIKKET"], "PRIKKET_ARSAK"]) == {"prikket for å beskytte små grupper"}  # not primary or secondary


def test_counts_as_bands(small_world, tmp_path):
    spec = dataclasses.replace(ai.load_spec(), suppressed_counts="intervall")
    db = tmp_path / "res.duckdb"
    ai.run_indicator(small_world, config=spec, db=db)
    m, _, _ = _tables(db)
    bands = set(m.loc[m["PRIKKET"], "ANTALL_INTERVALL"])
    assert "1-9" in bands and bands <= {"1-9", "10-19", "20-49", "50-99", "100+"}
    assert m.loc[~m["PRIKKET"], "ANTALL_INTERVALL"].isna().all()
    assert m.loc[m["PRIKKET"], "ANTALL_PERSONER"].isna().all()


def test_primary_cells_keep_room_against_a_linear_programme(strict):
    """For sampled primary cells, the attacker's LP interval for the sum of the actual outcome
    (cells further away fixed at their truth: more than he knows) is never a point, and every
    cell whose room the protection reports as proved has at least the required share on each
    side; most primary cells have it proved."""
    spec, (m, p, w), (tm, tp, _) = strict
    res = audit(m, p, w, truth=(tm, tp), intervals=60, seed=3)
    iv = pd.concat([o.intervals for o in res.outcomes], ignore_index=True)
    assert len(iv) >= 200 and iv["PRIMAER"].all()
    assert ((iv["ovre"] - iv["nedre"]) > 1e-6).all()
    proved = iv[iv["ROM_BEVIST"]]
    need = spec.protection_share * proved["verdi"] - 1e-6
    assert (proved["ovre"] - proved["verdi"] >= need).all() and (proved["verdi"] - proved["nedre"] >= need).all()
    primaries = w[w["PRIMAER"]]
    assert primaries["ROM_BEVIST"].mean() > 0.8


def test_the_pattern_does_not_depend_on_row_order(small_world, tmp_path):
    captured = []
    orig = publish.protect

    def grab(m, p, *a, **k):
        captured.append((m.copy(), p.copy(), a, k))
        return orig(m, p, *a, **k)

    publish.protect = grab
    try:
        ai.run_indicator(small_world, db=tmp_path / "r.duckdb")
    finally:
        publish.protect = orig
    m, p, a, k = captured[0]
    first = disclosure.protect(m, p, *a, **k)
    again = disclosure.protect(m.sample(frac=1.0, random_state=1), p.sample(frac=1.0, random_state=2), *a, **k)
    assert (first[2].suppressed == again[2].suppressed).all()
    assert (first[2].masks[0].witness == again[2].masks[0].witness).all()


def test_an_office_that_moves_region(small_world, tmp_path):
    """An office that changes region mid-period: its monthly rows carry the region of the month,
    the period relations through it are exact only where it stayed, and no cell is recovered."""
    world = tmp_path / "moved"
    shutil.copytree(small_world, world)
    offices = pq.read_table(world / "offices.parquet").to_pandas()
    local = offices[(offices["office_type"] == "lokalkontor") & offices["valid_to"].isna()]
    row = local.iloc[0]
    other = sorted(set(offices["region_id"]) - {row["region_id"], "NOE"})[0]
    first = row.copy()
    first["valid_to"] = pd.Timestamp("2021-06-01").date()
    second = row.copy()
    second["valid_from"], second["region_id"] = pd.Timestamp("2021-07-01").date(), other
    offices = pd.concat([offices[offices["office_id"] != row["office_id"]], pd.DataFrame([first, second])])
    pq.write_table(pa.Table.from_pandas(offices.sort_values(["office_id", "valid_from"]), preserve_index=False),
                   world / "offices.parquet")
    db = tmp_path / "res.duckdb"
    ai.run_indicator(world, db=db)
    m, p, w = _tables(db)
    mine = m[(m["ORG_STED_ID"] == row["office_id"]) & (m["NEDBRYTNING"] == "Alle")]
    before = mine[pd.to_datetime(mine["BEHOLDNINGSMAANED"]) < "2021-07-01"]["REGION_ID"].unique()
    after = mine[pd.to_datetime(mine["BEHOLDNINGSMAANED"]) >= "2021-07-01"]["REGION_ID"].unique()
    assert list(before) == [row["region_id"]] and list(after) == [other]
    res = audit(m, p, w)
    assert res.passed and res.witness_ok
    assert attack(m, p, "jobb3") == {}


def test_nothing_is_recovered_through_the_api(strict):
    """What the HTTP API shows (every unit's monthly series for every group, the funnels of every
    period) gives an attacker nothing more than the tables."""
    from fastapi.testclient import TestClient

    from arbeidsindikator.present.dashboard import create_app
    _, (m, p, _), _ = strict
    db = strict_db["path"]
    client = TestClient(create_app(db))
    meta = client.get("/api/meta").json()
    rows = []
    for u in client.get("/api/units").json():
        for bd, groups in meta["groups"].items():
            for g in groups:
                r = client.get("/api/series", params={"unit": u["id"], "outcome": "jobb3", "breakdown": bd, "group": g})
                if r.status_code != 200:
                    continue
                for x in r.json()["rows"]:
                    rows.append({"BEHOLDNINGSMAANED": x["BEHOLDNINGSMAANED"] + "-01", "ORG_NIVAA": u["level"],
                                 "ORG_STED_ID": u["id"], "REGION_ID": u["region"], "UTFALL": "jobb3", "NEDBRYTNING": bd,
                                 "GRUPPE": g, "ANTALL_PERSONER": x["ANTALL_PERSONER"], "faktisk": x["INDIKATOR"],
                                 "PRIKKET": x["PRIKKET"]})
    seen = pd.DataFrame(rows)
    assert len(seen) > 10_000 and seen["PRIKKET"].any()
    funnels = []  # the indicator of the published period cells; an attacker reads a year's label as its months
    for period in (x for x in meta["periods"] if x.isdigit()):
        for level in (2, 3):
            for c in client.get("/api/funnel", params={"outcome": "jobb3", "period": period, "level": level}).json():
                funnels.append({"PERIODE": period, "PERIODE_FRA": f"{period}-01-01", "PERIODE_TIL": f"{period}-12-01",
                                "ORG_NIVAA": level, "ORG_STED_ID": c["ORG_STED_ID"], "REGION_ID": c["REGION_ID"],
                                "UTFALL": "jobb3", "NEDBRYTNING": "Alle", "GRUPPE": "Alle",
                                "ANTALL_PERSONER": c["ANTALL_PERSONER"], "faktisk": c["INDIKATOR"], "PRIKKET": False})
    assert len(funnels) > 100
    # the funnel shows persons; the person-months its mean is over are in the published table
    funnels = pd.DataFrame(funnels).merge(
        p.loc[p["UTFALL"] == "jobb3", ["PERIODE", "ORG_NIVAA", "ORG_STED_ID", "NEDBRYTNING", "GRUPPE", "ANTALL_PERSONMANEDER"]]
        .astype({"PERIODE": str}), how="left")
    assert funnels["ANTALL_PERSONMANEDER"].notna().all()
    assert attack(seen, funnels, "jobb3") == {}
