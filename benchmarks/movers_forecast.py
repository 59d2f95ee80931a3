"""The movers' forecast-bias test over repeated synthetic worlds (issue 32).

For each seed: a clean and a realistic world, the default model run with person-level results,
then the forecast-bias test (analyses/movers.py) per outcome. Reports, over the worlds,

- on clean worlds: how often the coefficient's 95 % interval covers 1 (goal: at least 90 %);
- on realistic worlds: how often it covers the truth's own coefficient (the same regression on
  the movers' change in their true office contribution), and the mean of both coefficients;
- on both: the correlation with the true office contribution of Nav's office mean and of the
  person-effects variant (analyses/person_effects.py).

    python benchmarks/movers_forecast.py --scale small --seeds 10 --out benchmarks/results/movers_forecast_small.csv

`--world DIR` (repeat) scores given worlds instead of generating them (the smoke test).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from arbeidsindikator.analyses.movers import forecast_test
from arbeidsindikator.data.synth.world import generate_world
from arbeidsindikator.pipeline.run import run_indicator


def score(world: Path, work: Path) -> pd.DataFrame:
    """The forecast test and the person-effects variant's scores, one row per outcome."""
    db = work / f"{world.name}.duckdb"
    run_indicator(world, db=db, keep_person_level=True)
    res = forecast_test(db, data_dir=world)
    t = res.table.merge(res.office_measures, on=["run_id", "outcome"])
    meta = json.loads((world / "truth" / "world.json").read_text())
    t["clean"], t["seed"], t["scale"] = bool(meta["clean"]), int(meta["seed"]), meta["scale"]
    t["covers_1"] = (t["ci_low"] <= 1) & (t["ci_high"] >= 1)
    db.unlink()
    return t


def summary(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (clean, o), g in df.groupby(["clean", "outcome"]):
        n = len(g)
        hit = g["covers_1"] if clean else g["truth_in_interval"]
        p = float(hit.mean())
        rows.append({"world": "ren" if clean else "realistisk", "outcome": o, "worlds": n,
                     "covers": "1" if clean else "fasitens koeffisient", "share": p,
                     "mc_se": float(np.sqrt(p * (1 - p) / n)), "mean_coefficient": float(g["coefficient"].mean()),
                     "mean_truth_coefficient": float(g["truth_coefficient"].mean()), "mean_movers": float(g["movers"].mean()),
                     "r_truth_indicator": float(g["indicator_r_truth"].mean()),
                     "r_truth_person_effects": float(g["person_effects_r_truth"].mean())})
    return pd.DataFrame(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="small")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=101)
    ap.add_argument("--world", type=Path, action="append", help="score this world instead of generating")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/movers_forecast_small.csv"))
    a = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="movers-"))
    t0 = time.perf_counter()
    try:
        parts = []
        if a.world:
            parts = [score(w, work) for w in a.world]
        else:
            for seed in range(a.first_seed, a.first_seed + a.seeds):
                for clean in (True, False):
                    w = work / f"{a.scale}-{seed}-{'clean' if clean else 'real'}"
                    generate_world(w, scale=a.scale, seed=seed, clean=clean)
                    parts.append(score(w, work))
                    shutil.rmtree(w)
                    print(f"seed {seed} {'ren' if clean else 'realistisk'}: {time.perf_counter() - t0:.0f} s", flush=True)
        df = pd.concat(parts, ignore_index=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(a.out, index=False)
    s = summary(df)
    s.to_csv(a.out.with_name(a.out.stem + "_summary.csv"), index=False)
    print(s.round(3).to_string(index=False))
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
