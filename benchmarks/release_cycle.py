"""Twelve monthly releases in a row (issue 29's check), each from an extract as of its month.

Estimates the model on the whole world (the version, put in production), then cuts an extract
as of each month from --first on and publishes it, each release in a fresh process (wall time
and peak RSS per release). Then, over the releases in order:

- the carry-over that makes the newest release hold the whole history (pipeline/carry.py):
  every cell a release published is published by the next with the same count and value, and
  every cell it suppressed is suppressed there;
- the revision table between consecutive releases, by cause;
- the share of suppressed cells per release (monthly and period tables);
- the attacker of the test suite (tests/test_disclosure.py, written without audit.py) over the
  union of all releases: counts and numbers in work pinned, cells proved small, nobody or
  everybody proved in work, for jobb3 and jobb12 (--no-attack to skip: it is slow on a big world).

    .venv/bin/python benchmarks/release_cycle.py [--scale medium] [--seed 12] [--first 2023-06]
                                                 [--releases 12] [--world DIR] [--work DIR]
                                                 [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

from machine import machine, status_mb  # benchmarks/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]


def child(extract: str, db: str) -> dict:
    import arbeidsindikator as ai
    t = time.perf_counter()
    r = ai.run_indicator(extract, db=db, model_version=True)
    return {"release_id": r.run_id, "seconds": round(time.perf_counter() - t, 1), "peak_mb": round(status_mb("VmHWM")),
            "stages": r.timings}


def _tables(con, rid: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    m = con.execute("SELECT * EXCLUDE (run_id) FROM published WHERE run_id = ?", [rid]).df()
    p = con.execute("SELECT * EXCLUDE (run_id) FROM published_period WHERE run_id = ?", [rid]).df()
    return m, p


def carried_over(old: pd.DataFrame, new: pd.DataFrame, key: list[str]) -> dict:
    """How many of the older release's cells the newer one keeps as they were."""
    j = old.merge(new, on=key, how="left", suffixes=("", "_ny"), indicator=True)
    there = j["_merge"] == "both"
    pub = ~j["PRIKKET"].astype(bool)
    same = there & ~j["PRIKKET_ny"].astype(bool) & (j["faktisk"] == j["faktisk_ny"]) & (j["ANTALL_PERSONER"] == j["ANTALL_PERSONER_ny"])
    return {"published": int(pub.sum()), "published_kept": int((pub & same).sum()),
            "suppressed": int((~pub).sum()), "suppressed_kept": int((~pub & there & j["PRIKKET_ny"].astype(bool)).sum())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="medium")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--first", default="2023-06")
    ap.add_argument("--releases", type=int, default=12)
    ap.add_argument("--world")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--work", help="where the world, the extracts and the store go (default: a new temporary folder)")
    ap.add_argument("--no-attack", action="store_true")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="release_cycle-"))  # world, extracts, store
    work.mkdir(parents=True, exist_ok=True)
    import arbeidsindikator as ai
    from arbeidsindikator.data.extracts import cut_extract
    from arbeidsindikator.data.synth import generate_world
    from arbeidsindikator.pipeline import carry, versions
    world = Path(a.world) if a.world else work / "world"
    if not (world / "stock.parquet").exists() and not any(world.glob("stock*")):
        generate_world(world, scale=a.scale, seed=a.seed)
    db = work / "store.duckdb"
    db.unlink(missing_ok=True)
    t = time.perf_counter()
    est = ai.run_indicator(world, db=db)
    versions.set_status(db, est.run_id, "produksjon")
    res = {"machine": machine(), "scale": a.scale, "seed": a.seed, "estimation_seconds": round(time.perf_counter() - t, 1),
           "releases": []}
    months = pd.period_range(a.first, periods=a.releases, freq="M").strftime("%Y-%m").tolist()
    for month in months:
        x = work / f"uttrekk-{month}"
        if not x.exists():
            cut_extract(world, x, month, lag=1)
        code = (f"import json, sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); from release_cycle import child; "
                f"print(json.dumps(child({str(x)!r}, {str(db)!r})))")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"the release as of {month} failed:\n{r.stderr[-3000:]}")
        row = json.loads(r.stdout.strip().splitlines()[-1]) | {"as_of": month}
        res["releases"].append(row)
        print(month, row["seconds"], "s", row["peak_mb"], "MB", flush=True)
    ids = [r["release_id"] for r in res["releases"]]
    con = duckdb.connect(str(db), read_only=True)
    tables = [_tables(con, rid) for rid in ids]
    con.close()
    for i, (m, p) in enumerate(tables):
        row = res["releases"][i]
        row["monthly_cells"], row["monthly_suppressed_share"] = len(m), round(float(m["PRIKKET"].mean()), 4)
        row["period_cells"], row["period_suppressed_share"] = len(p), round(float(p["PRIKKET"].mean()), 4)
        row["periods"] = int(p["PERIODE"].nunique())
        if i:
            old_m, old_p = tables[i - 1]
            row["carried_monthly"] = carried_over(old_m, m, carry.MONTH_KEY)
            row["carried_period"] = carried_over(old_p, p, carry.PERIOD_KEY)
            rev = versions.revisions(db, ids[i - 1], ids[i])
            row["revisions"] = {str(k): int(v) for k, v in rev["AARSAK"].value_counts().items()}
    if not a.no_attack:
        sys.path.insert(0, str(ROOT / "tests"))
        from test_disclosure import bounded_attack
        res["union_attack"] = {}
        for outcome in ("jobb3", "jobb12"):
            t = time.perf_counter()
            found, _ = bounded_attack(tables, None, outcome, 10)
            res["union_attack"][outcome] = {k: len(v) for k, v in found.items()} | {"seconds": round(time.perf_counter() - t)}
            print(outcome, res["union_attack"][outcome], flush=True)
    path = out / f"release_cycle_{a.scale}.json"
    path.write_text(json.dumps(res, indent=1, default=str))
    print("skrev", path)
    if not a.work:  # a temporary folder of our own: gone with the run
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
