"""The wild cluster restricted bootstrap on a 12-region x 96-month panel (the whole period of
the indicator), weighted by persons: 9 999 Webb draws for a p-value, and the 95% interval by
test inversion, against the peer that every analyst can write: refitting statsmodels' WLS
with dummies and clustered standard errors for each draw (on 199 draws, scaled per draw).
Both are checked to give the same p-value on the same 199 draws.

    .venv/bin/python benchmarks/wild_bootstrap.py [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm

sys.path.insert(0, str(Path(__file__).parent))
from machine import machine, status_mb  # noqa: E402

from arbeidsindikator.analyses.evaluation.twfe import WEBB, _Design, _WildBootstrap, wild_bootstrap  # noqa: E402


def panel(G=12, T=96, seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    size = rng.integers(500, 40_000, G)
    start = rng.integers(30, 90, G)
    dose = rng.uniform(0, 1, G)
    rows = [{"unit": i, "month": t, "dose": dose[i] * (t >= start[i]), "w": float(size[i]),
             "y": 0.3 * i + 0.02 * t + 0.5 * dose[i] * (t >= start[i]) + rng.normal(0, 30 / np.sqrt(size[i]))}
            for i in range(G) for t in range(T)]
    return pd.DataFrame(rows)


def statsmodels_p(p: pd.DataFrame, V: np.ndarray) -> float:
    X = pd.get_dummies(p[["dose"]].assign(unit=p["unit"].astype(str), month=p["month"].astype(str)),
                       columns=["unit", "month"], dtype=float).drop(columns="month_0")
    g = p["unit"].to_numpy()
    fit = lambda y: sm.WLS(y, X, weights=p["w"]).fit(cov_type="cluster", cov_kwds={"groups": g})  # noqa: E731
    full = fit(p["y"])
    r = sm.WLS(p["y"], X.drop(columns="dose"), weights=p["w"]).fit()
    t = [fit(r.fittedvalues + V[g, b] * r.resid) for b in range(V.shape[1])]
    ts = np.array([m.params["dose"] / m.bse["dose"] for m in t])
    return float(np.mean(np.abs(ts) >= abs(full.params["dose"] / full.bse["dose"]) - 1e-12))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--draws", type=int, default=9999, help="bootstrap draws for the p-value and the interval")
    ap.add_argument("--peer-draws", type=int, default=199, help="draws for the comparison with statsmodels")
    args = ap.parse_args()
    p = panel()
    t0 = time.perf_counter()
    r = wild_bootstrap(p, "y", "dose", weight="w", B=args.draws, weights="webb", seed=1, level=None)
    t_p = time.perf_counter() - t0
    t0 = time.perf_counter()
    ci = wild_bootstrap(p, "y", "dose", weight="w", B=args.draws, weights="webb", seed=1)
    t_ci = time.perf_counter() - t0
    V = np.random.default_rng(5).choice(WEBB, size=(12, args.peer_draws))
    t0 = time.perf_counter()
    d = _Design(p, "y", ["dose"], "unit", "month", "w", None)
    ours = _WildBootstrap(d, [0], V).p(0.0)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    peer = statsmodels_p(p, V)
    t_peer = time.perf_counter() - t0
    res = {"machine": machine(), "panel": "12 regions x 96 months, weighted",
           "p_9999_s": round(t_p, 3), "p": r.p, "ci_9999_s": round(t_ci, 2), "ci": [ci.ci_low, ci.ci_high],
           "per_draw_ms_ours": round(1000 * t_ours / args.peer_draws, 4),
           "per_draw_ms_statsmodels": round(1000 * t_peer / args.peer_draws, 2),
           "ratio": round(t_peer / t_ours, 1), "same_p_on_199_draws": ours == peer, "peak_rss_mb": round(status_mb("VmHWM"))}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "wild_bootstrap.json").write_text(json.dumps(res, indent=2))
    (args.out / "wild_bootstrap.md").write_text(
        "| measure | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in res.items() if k != "machine") + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
