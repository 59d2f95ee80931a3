"""Period cells (period_cells.py), with persons who moved between finest cells, against a plain
pandas computation: each person's sums per cell, squared, summed per cell."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from arbeidsindikator.pipeline import period_cells
from arbeidsindikator.pipeline.batches import ClustersApart
from arbeidsindikator.pipeline.period_cells import MOMENTS, SUMS, CellSets, period_frame, period_moments

OUTCOMES = ("a", "b")
SETS = tuple((lvl, bd) for lvl in (1, 2, 3) for bd in range(3))
CS = CellSets(SETS, n_periods=3, n_units={1: 1, 2: 3, 3: 6}, n_groups=(1, 3, 2), outcomes=OUTCOMES)


def _rows(seed: int) -> pd.DataFrame:
    """Period rows: person x period x finest cell. A person-period stays in one finest cell,
    changes breakdown groups only, or changes office (and maybe groups)."""
    rng = np.random.default_rng(seed)
    pp = pd.DataFrame({"__cluster": np.repeat(np.arange(400), 3), "__p": np.tile(np.arange(3), 400)})
    pp["kind"] = rng.choice(3, len(pp), p=[0.4, 0.4, 0.2])
    d = pp.loc[pp.index.repeat(rng.integers(1, 5, len(pp)))].reset_index(drop=True)
    n = len(d)
    home = d["__cluster"].to_numpy()
    moves_group, moves_office = d["kind"] >= 1, d["kind"] == 2
    d["__office"] = np.where(moves_office, rng.integers(0, 6, n), home % 6)
    d["__region"] = d["__office"] // 2
    d["__g1"] = np.where(moves_group, rng.integers(0, 3, n), home % 3)
    d["__g2"] = np.where(moves_group & (rng.random(n) < 0.5), rng.integers(0, 2, n), home % 2)
    for o in OUTCOMES:
        d[f"n_{o}"] = rng.integers(0, 4, n).astype(float)
        d[f"sy_{o}"] = np.where(d[f"n_{o}"] > 0, rng.normal(size=n) * d[f"n_{o}"], np.nan)  # NULL where no months
        d[f"se_{o}"] = np.where(d[f"n_{o}"] > 0, rng.normal(size=n), np.nan)
        d[f"sx_{o}"] = np.where(d[f"n_{o}"] > 0, rng.normal(size=n), np.nan)
    return d.drop(columns="kind")


def _expected(d: pd.DataFrame) -> pd.DataFrame:
    frames = []
    for lvl, bd in SETS:
        cols = [c for c in ({2: "__region", 3: "__office"}.get(lvl), f"__g{bd}" if bd else None) if c]
        per_person = d.fillna(0).groupby(["__p", "__cluster"] + cols, as_index=False)[[f"{m}_{o}" for o in OUTCOMES for m in SUMS]].sum()
        for o in OUTCOMES:
            n, sy, se = per_person[f"n_{o}"], per_person[f"sy_{o}"], per_person[f"se_{o}"]
            per_person[f"g_{o}"] = (n > 0).astype(float)
            per_person[f"syy_{o}"], per_person[f"see_{o}"] = sy * sy, se * se
            per_person[f"nsy_{o}"], per_person[f"nse_{o}"], per_person[f"nn_{o}"] = n * sy, n * se, n * n
        f = per_person.groupby(["__p"] + cols, as_index=False)[[f"{m}_{o}" for o in OUTCOMES for m in MOMENTS]].sum()
        f["lvl"], f["bd"] = lvl, bd
        f["unit"] = f[cols[0]] if lvl > 1 else 0
        f["grp"] = f[f"__g{bd}"] if bd else 0
        frames.append(f[f[[f"n_{o}" for o in OUTCOMES]].sum(axis=1) > 0])
    return pd.concat(frames, ignore_index=True)


def _batches(d: pd.DataFrame, seed: int) -> list[pa.RecordBatch]:
    """The rows cut at random places, persons across batch boundaries included."""
    t = pa.Table.from_pandas(d, preserve_index=False)
    cuts = np.sort(np.random.default_rng(seed).choice(np.arange(1, len(d)), 12, replace=False))
    return [t.slice(a, b - a).to_batches()[0] for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(d)])]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("one_key", [True, False])
def test_period_moments_equal_per_person_sums_squared(seed, one_key, monkeypatch):
    if not one_key:  # the fallback for codes too many to combine into one integer
        monkeypatch.setattr(period_cells, "KEY_LIMIT", 1.0)
    # batches are joined up to this many rows: several sums per call, added up
    monkeypatch.setattr(period_cells, "BATCH_ROWS", 500)
    d = _rows(seed)
    got = period_frame(period_moments(iter(_batches(d, seed)), CS), CS)
    want = _expected(d)
    keys = ["__p", "lvl", "unit", "bd", "grp"]
    merged = want.merge(got, on=keys, how="outer", suffixes=("_want", "_got"), indicator=True)
    assert (merged["_merge"] == "both").all(), "the same cells"
    for c in [f"{m}_{o}" for o in OUTCOMES for m in MOMENTS]:
        np.testing.assert_allclose(merged[f"{c}_got"], merged[f"{c}_want"], rtol=1e-12, atol=1e-9, err_msg=c)


def test_rows_out_of_person_order_are_refused():
    d = _rows(0).iloc[::-1]
    with pytest.raises(ValueError, match="cluster order"):
        period_moments(iter(_batches(d, 0)), CS)


def test_no_rows_give_no_cells():
    assert period_frame(period_moments(iter(()), CS), CS).empty


def test_codes_outside_their_ranges_are_refused():
    d = _rows(0)
    d.loc[0, "__g2"] = 7  # CS knows two groups of breakdown 2
    with pytest.raises(ValueError, match="outside their ranges"):
        period_moments(iter(_batches(d, 0)), CS)


MONTHS = [(0, 11), (12, 23), (0, 23), (6, 17)]  # two years, both, and twelve months across them
CS_M = CellSets(SETS, n_periods=len(MONTHS), n_units={1: 1, 2: 3, 3: 6}, n_groups=(1, 3, 2), outcomes=OUTCOMES)


def _person_months(seed: int) -> pd.DataFrame:
    """Person-months as the model's pass writes them: each person's months together, the
    persons in no particular order; offices and groups that change (and change back), and
    months where an outcome is not observed."""
    rng = np.random.default_rng(seed)
    rows = []
    for person in rng.permutation(300):
        start, n = rng.integers(0, 20), rng.integers(1, 16)
        mi = np.arange(start, min(start + n, 24))
        office = np.full(len(mi), person % 6)
        if rng.random() < 0.3:  # moves office for a while, and maybe back
            a = rng.integers(0, len(mi))
            office[a:a + rng.integers(1, 6)] = rng.integers(0, 6)
        g1 = np.where(rng.random(len(mi)) < 0.2, rng.integers(0, 3, len(mi)), person % 3)
        rows.append(pd.DataFrame({"__cluster": person, "__mi": mi, "__office": office, "__region": office // 2,
                                  "__g1": g1, "__g2": person % 2}))
    d = pd.concat(rows, ignore_index=True)
    for o in OUTCOMES:
        d[f"actual_{o}"] = np.where(rng.random(len(d)) < 0.8, rng.normal(size=len(d)), np.nan)
        d[f"expected_{o}"] = rng.normal(size=len(d))
        d[f"indicator_{o}"] = d[f"actual_{o}"] - d[f"expected_{o}"]
    return d


def _as_period_rows(d: pd.DataFrame) -> pd.DataFrame:
    """The same months as period rows, one per person-month and period it lies in."""
    out = []
    for i, (a, b) in enumerate(MONTHS):
        p = d[(d["__mi"] >= a) & (d["__mi"] <= b)].copy()
        p["__p"] = i
        for o in OUTCOMES:
            seen = p[f"actual_{o}"].notna()
            p[f"n_{o}"] = seen.astype(float)
            p[f"sy_{o}"], p[f"se_{o}"] = p[f"actual_{o}"], p[f"indicator_{o}"]
            p[f"sx_{o}"] = p[f"expected_{o}"].where(seen)
        out.append(p)
    return pd.concat(out, ignore_index=True)


@pytest.mark.parametrize("seed", range(3))
def test_period_moments_from_person_months_equal_those_from_period_rows(seed, monkeypatch):
    """The person-months of persons in no particular order (and, once, months in no order
    within a person), cut anywhere, give every period's cells as the per-person sums of their
    months in each period do."""
    monkeypatch.setattr(period_cells, "BATCH_ROWS", 300)
    d = _person_months(seed)
    if seed == 2:  # each person's months together but in no order either
        d = d.sample(frac=1, random_state=seed).sort_values("__cluster", kind="stable", key=lambda c: c.map(
            {p: i for i, p in enumerate(d["__cluster"].unique())})).reset_index(drop=True)
    got = period_frame(period_moments(iter(_batches(d, seed)), CS_M, months=MONTHS), CS_M)
    p = _as_period_rows(d).sort_values(["__cluster", "__p"], kind="stable")
    want = period_frame(period_moments(iter(_batches(p, seed)), CS_M), CS_M)
    keys = ["__p", "lvl", "unit", "bd", "grp"]
    merged = want.merge(got, on=keys, how="outer", suffixes=("_want", "_got"), indicator=True)
    assert (merged["_merge"] == "both").all() and len(merged) > 100, "the same cells"
    for c in [f"{m}_{o}" for o in OUTCOMES for m in MOMENTS]:
        np.testing.assert_allclose(merged[f"{c}_got"], merged[f"{c}_want"], rtol=1e-12, atol=1e-9, err_msg=c)
    assert (_expected(p)[["__p", "lvl", "unit", "bd", "grp"]].drop_duplicates().shape[0]) == len(got)


def test_person_months_of_a_person_apart_are_refused():
    d = _person_months(0)
    first = d["__cluster"].iloc[0]
    d = pd.concat([d, d[d["__cluster"] == first].iloc[:1]], ignore_index=True)  # one month again, at the end
    with pytest.raises(ClustersApart, match="together"):
        period_moments(iter(_batches(d, 0)), CS_M, months=MONTHS)


def test_publishing_sorts_person_results_whose_persons_lie_apart(monkeypatch):
    """Publishing reads the coded person results in stored order; a table whose persons' months
    do not lie together (not written by the model's pass) is read again, sorted, with the same
    cells as from a table in order."""
    from types import SimpleNamespace

    import duckdb

    from arbeidsindikator.pipeline.batches import reduce_batches
    from arbeidsindikator.pipeline.publish import _period_cells
    from arbeidsindikator.pipeline.uncertainty import Period

    d = _person_months(1)
    d["person_id"] = d.pop("__cluster")
    d["month"] = pd.to_datetime({"year": 2020 + d["__mi"] // 12, "month": d["__mi"] % 12 + 1, "day": 1})
    d = d.drop(columns="__mi")
    con = duckdb.connect()
    for name, frame in (("together", d), ("apart", d.sample(frac=1, random_state=1))):  # apart: months scattered
        con.register("frame", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")  # together: in order, as the model's pass writes
        con.unregister("frame")
    con.execute("SET preserve_insertion_order = false")  # as in a run
    from arbeidsindikator.pipeline import publish
    queries = []

    def logged(con, sql, *args, **kwargs):
        queries.append(sql)
        return reduce_batches(con, sql, *args, **kwargs)
    monkeypatch.setattr(publish, "reduce_batches", logged)
    codes = SimpleNamespace(regions=[0, 1, 2], offices=list(range(6)), labels=[["Alle"], ["a", "b", "c"], ["x", "y"]],
                            breakdowns=[("Alle", False), ("g1", False), ("g2", True)])
    periods = [Period(f"p{i}", f"{2020 + a // 12}-{a % 12 + 1:02d}", f"{2020 + b // 12}-{b % 12 + 1:02d}")
               for i, (a, b) in enumerate(MONTHS)]
    want = _period_cells(con, codes, periods, OUTCOMES, "together")
    assert len(queries) == 1 and "ORDER BY" not in queries[0]  # read as stored
    got = _period_cells(con, codes, periods, OUTCOMES, "apart")
    assert len(queries) == 3 and "ORDER BY" in queries[2]  # refused as stored, then sorted
    assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0] is False  # restored
    keys = ["__p", "lvl", "unit", "bd", "grp"]
    pd.testing.assert_frame_equal(got.sort_values(keys).reset_index(drop=True), want.sort_values(keys).reset_index(drop=True),
                                  rtol=1e-12)
    assert len(want) > 100
