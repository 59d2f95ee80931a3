"""Follow-up spells at national scale: spells from the register, life tables and a Cox model
with ten covariates (Efron ties, clustered by person), and the same Cox fit by lifelines.

    python benchmarks/survival_national.py --world /tmp/w_national   # builds the world if missing

1. In one process: `build_spells` on the national world (DuckDB), life tables by start year,
   and the Cox fit of time to the end of the jobseeker period on a start-year trend and the
   report's covariates: wall time of each step.
2. The Cox fit alone on the same design, ours and lifelines' (`CoxPHFitter`, robust with
   `cluster_col`), each in a fresh process that loads the design from Parquet first: time,
   peak RSS above the loaded data, and the largest difference in coefficients and standard
   errors. lifelines' robust SEs approximate Efron's score residuals, so they differ from ours
   and R's in the fourth decimal; its model-based SEs are compared as well.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from machine import machine, status_mb  # noqa: E402

FIT = r"""
import json, sys, time, warnings
import numpy as np, pandas as pd
sys.path.insert(0, {bench!r})
from machine import status_mb
warnings.filterwarnings("ignore")
d = pd.read_parquet({path!r})
cols = [c for c in d.columns if c not in ("time", "event", "person_id")]
base = status_mb("VmRSS")
t0 = time.perf_counter()
if {peer!r} == "ours":
    from arbeidsindikator.analyses.spells.survival import cox
    r = cox(d, "time", "event", cols, cluster="person_id")
    params, se, se_model = r.params, r.bse, np.sqrt(np.diag(r.cov_model))
else:
    from lifelines import CoxPHFitter
    f = CoxPHFitter().fit(d, "time", "event", cluster_col="person_id", robust=True)
    params, se = f.params_[cols].to_numpy(), f.standard_errors_[cols].to_numpy()
    se_model = np.full(len(cols), np.nan)  # with robust=True lifelines keeps only the sandwich
secs = time.perf_counter() - t0
print(json.dumps({{"seconds": secs, "peak_above_data_mb": status_mb("VmHWM") - base, "params": list(params),
                  "se": list(se), "se_model": list(se_model)}}))
"""


def fit_in_process(peer: str, path: Path, timeout: float | None = None) -> dict | None:
    """The fit in a fresh process; None if it does not finish within `timeout` seconds."""
    code = FIT.format(bench=str(Path(__file__).parent), path=str(path), peer=peer)
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=Path, default=Path("/tmp/w_national"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--skip-lifelines", action="store_true")
    ap.add_argument("--lifelines-timeout", type=float, default=900,
                    help="seconds; if lifelines has not finished on all spells, both fit a sample instead")
    ap.add_argument("--sample", type=float, default=0.1, help="share of persons in that sample")
    a = ap.parse_args()
    from arbeidsindikator.analyses.spells.cohorts import COVARIATES, design_matrix
    from arbeidsindikator.analyses.spells.build import build_spells
    from arbeidsindikator.analyses.spells.survival import cox, life_table
    if not (a.world / "stock.parquet").exists():
        from arbeidsindikator.data.synth import generate_world
        generate_world(a.world, scale="national", seed=1)
    res = {"machine": machine(), "world": str(a.world)}
    t0 = time.perf_counter()
    spells = build_spells(a.world)
    res["spells"] = len(spells)
    res["persons"] = int(spells["person_id"].nunique())
    res["seconds_spells"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    year = spells["start"].dt.year
    for _, g in spells.groupby(year):
        life_table(g["time"], g["event"], last=24)
    res["seconds_life_tables"] = time.perf_counter() - t1
    X = design_matrix(spells)[list(COVARIATES)[:9]]
    X["startaar"] = (year - 2020).astype(float)
    d = pd.concat([X, spells[["person_id"]]], axis=1)
    d["time"] = spells["time"].astype(float)
    d["event"] = spells["exit"].isin(["arbeid", "avsluttet", "avsluttet_uobservert"]).astype(int)
    t2 = time.perf_counter()
    fit = cox(d, "time", "event", list(X.columns), cluster="person_id")
    res["seconds_cox"] = time.perf_counter() - t2
    res["covariates"] = list(X.columns)
    res["seconds_total"] = time.perf_counter() - t0
    res["peak_rss_mb"] = status_mb("VmHWM")
    res["hazard_ratios"] = dict(zip(X.columns, np.exp(fit.params).round(4).tolist()))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "design.parquet"
        d.to_parquet(path)
        peers = {"ours": fit_in_process("ours", path)}
        res["cox_rows"] = len(d)
        if not a.skip_lifelines:
            lf = fit_in_process("lifelines", path, a.lifelines_timeout)
            if lf is None:  # lifelines did not finish: compare both on a sample of persons
                res["lifelines_full_data"] = f"not finished in {a.lifelines_timeout:.0f} s"
                keep = d["person_id"].isin(d["person_id"].drop_duplicates().sample(frac=a.sample, random_state=1))
                d[keep].to_parquet(path)
                res["cox_rows"] = int(keep.sum())
                peers = {"ours": fit_in_process("ours", path), "lifelines": fit_in_process("lifelines", path)}
            else:
                peers["lifelines"] = lf
    res["cox_peers"] = {k: {kk: v[kk] for kk in ("seconds", "peak_above_data_mb")} for k, v in peers.items()}
    if "lifelines" in peers:
        o, lf = peers["ours"], peers["lifelines"]
        res["ratio_time_lifelines_over_ours"] = lf["seconds"] / o["seconds"]
        res["ratio_memory_lifelines_over_ours"] = lf["peak_above_data_mb"] / max(o["peak_above_data_mb"], 1e-9)
        res["max_abs_diff_coef"] = float(np.max(np.abs(np.array(o["params"]) - np.array(lf["params"]))))
        res["max_abs_diff_robust_se"] = float(np.max(np.abs(np.array(o["se"]) - np.array(lf["se"]))))
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "survival_national.json").write_text(json.dumps(res, indent=2, default=float))
    lines = ["# Follow-up spells and Cox at national scale", "", f"World: `{a.world}`; {res['spells']:,} spells of "
             f"{res['persons']:,} persons.", "", "| step | seconds |", "|---|---|"]
    lines += [f"| {k[8:]} | {res[k]:.1f} |" for k in ("seconds_spells", "seconds_life_tables", "seconds_cox", "seconds_total")]
    lines += ["", f"Peak RSS of the whole run: {res['peak_rss_mb']:.0f} MB.", ""]
    if "lifelines_full_data" in res:
        lines += [f"lifelines on all {res['spells']:,} spells: {res['lifelines_full_data']}; the comparison below is on "
                  f"{res['cox_rows']:,} spells (a {a.sample:.0%} sample of persons).", ""]
    lines += ["| Cox fit (fresh process) | seconds | peak above data (MB) |", "|---|---|---|"]
    lines += [f"| {k} | {v['seconds']:.1f} | {v['peak_above_data_mb']:.0f} |" for k, v in res["cox_peers"].items()]
    if "lifelines" in peers:
        lines += ["", f"lifelines / ours: time x{res['ratio_time_lifelines_over_ours']:.1f}, memory "
                  f"x{res['ratio_memory_lifelines_over_ours']:.1f}; largest coefficient difference "
                  f"{res['max_abs_diff_coef']:.1e}, robust SE difference {res['max_abs_diff_robust_se']:.1e}."]
    (a.out / "survival_national.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
