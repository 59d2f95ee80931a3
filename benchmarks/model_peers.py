"""The model fit against its peers, on the same design (issue 7).

A design like Nav's jobb3 model: N person-months, ten categorical covariates, persons with
about ten months each, an outcome with person-level correlation; OLS with person-clustered
standard errors. Fitted by

- the project's engine (sufficient statistics over Arrow batches from DuckDB), twice: streaming
  the rows from the Parquet file (`ours`: no load, the fit reads what it needs), and from an
  in-memory DuckDB table with the covariates as ENUM columns (`ours_in_memory`: the same
  starting point as the peers, whose pandas frame with categorical columns is loaded before
  their clock starts),
- pyfixest with the covariates as dummies (gives the coefficients Nav stores),
- pyfixest absorbing nine covariates as fixed effects (one kept as dummies),
- statsmodels OLS with dummies (on the largest sample it handles here),

each in a fresh process, from a design file of exactly its rows (design_files), with the peak
memory (VmHWM) reset when the data is loaded, so it is the fit's own with its data in memory.
(Until the fifth session the peers' peaks included reading a design file of 4x the rows; until
the sixth our fit read that file through a LIMIT.) Also the project's engine at 1x / 2x / 4x
rows, to show that cost grows linearly.

    .venv/bin/python benchmarks/model_peers.py [--rows 5000000] [--repeat 3] [--out benchmarks/results]
    .venv/bin/python benchmarks/model_peers.py --render benchmarks/results/model_peers.json  # the table again

Not part of the test suite; results go to <out>/model_peers.json and .md.
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
from machine import machine, status_mb

LEVELS = [10, 2, 5, 3, 5, 5, 3, 6, 2, 10]  # like age bins, sex, education, ..., inflow deciles
COVS = [f"c{i}" for i in range(len(LEVELS))]


def make_design(n: int, path: Path, seed: int = 1) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    rng = np.random.default_rng(seed)
    person = np.repeat(np.arange(n // 10 + 1), 10)[:n]
    month = np.tile(np.arange(10), n // 10 + 1)[:n]
    cols = {"person_id": person.astype(np.int64),
            "month": (np.datetime64("2020-01") + month.astype("timedelta64[M]")).astype("datetime64[D]")}
    lin = np.zeros(n)
    for c, k in zip(COVS, LEVELS):
        # persistent within person for most covariates, as in the register
        x = rng.integers(0, k, n // 10 + 1)[person] if c not in ("c9",) else rng.integers(0, k, n)
        cols[c] = x.astype(str)
        lin += rng.normal(0, 0.05, k)[x]
    u = rng.normal(0, 0.2, n // 10 + 1)[person]
    cols["y"] = ((0.4 + lin + u + rng.normal(0, 0.45, n)) > 0.5).astype(float)
    pq.write_table(pa.table(cols), path)


def design_files(tmp: Path, sizes: list[int]) -> dict[int, Path]:
    """One design file per row count, each the first rows of the largest design: every engine
    reads exactly its rows, none a larger file with a LIMIT (DuckDB's LIMIT keeps the file's
    order, which cost the streaming fit 0.6 s of 3 at 5 M rows; the peers sliced in memory,
    outside their clock)."""
    import pyarrow.parquet as pq
    largest = tmp / f"design_{sizes[-1]}.parquet"
    make_design(sizes[-1], largest)
    table = pq.read_table(largest)
    paths = {sizes[-1]: largest}
    for n in sizes[:-1]:
        paths[n] = tmp / f"design_{n}.parquet"
        pq.write_table(table.slice(0, n), paths[n])
    return paths


SPEC = """
[model]
name = "peer-benchmark"
outcomes = ["y"]
estimation_period = {{ from = "2020-01", to = "2020-12" }}
se_type = "cluster"
cluster = "person_id"
{terms}
"""


def _reset_peak() -> None:
    """Start the peak (VmHWM) afresh from the current RSS, so that it is the fit's own with its
    data in memory, not the loading's (pandas reads strings before they become categories)."""
    import gc
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")


def child(engine: str, path: str, rows: int) -> dict:
    """Fit in this (fresh) process and report time, peak memory and a few coefficients."""
    t0 = time.perf_counter()
    if engine.startswith("ours"):
        import duckdb

        import arbeidsindikator as ai
        terms = "".join(f'\n[[model.terms]]\ncolumn = "{c}"\nkind = "categorical"\nreference = "0"\n' for c in COVS)
        spec = ai.parse_spec(SPEC.format(terms=terms))
        con = duckdb.connect()
        if engine == "ours_in_memory":  # the peers' frame, handed to DuckDB (categoricals become ENUMs)
            import pandas as pd
            df = pd.read_parquet(path)
            for c in COVS:
                df[c] = df[c].astype("category")
            con.execute("CREATE TABLE d AS SELECT * FROM df")
            del df
        else:
            con.execute(f"CREATE VIEW d AS SELECT * FROM read_parquet('{path}')")
        _reset_peak()
        start_mb = status_mb("VmRSS")
        t0 = time.perf_counter()
        m = ai.fit_model(con, "d", spec)
        r = m["y"]
        params, se = r.params, r.std_errors("cluster")
        coef = {n: (float(params[n]), float(se[n])) for n in params.index if n.startswith(("c0", "c5", "c9"))}
    else:
        import pandas as pd
        df = pd.read_parquet(path)
        for c in COVS:
            df[c] = df[c].astype("category")
        _reset_peak()
        start_mb = status_mb("VmRSS")
        t0 = time.perf_counter()
        if engine == "statsmodels":
            import statsmodels.formula.api as smf
            f = "y ~ " + " + ".join(f"C({c})" for c in COVS)
            res = smf.ols(f, data=df).fit(cov_type="cluster", cov_kwds={"groups": df["person_id"].to_numpy()})
            params, bse = res.params, res.bse
        else:
            import pyfixest as pf
            if engine == "pyfixest_dummies":
                f = "y ~ " + " + ".join(f"C({c})" for c in COVS)
            else:  # absorb nine covariates, keep c0 as dummies
                f = "y ~ C(c0) | " + " + ".join(COVS[1:])
            res = pf.feols(f, data=df, vcov={"CRV1": "person_id"})
            params, bse = res.coef(), res.se()
        coef = {}
        for name in params.index:
            for c in ("c0", "c5", "c9"):
                if name.startswith(f"C({c})"):
                    level = name.split("T.")[-1].rstrip("]")
                    coef[f"{c}[{level}]"] = (float(params[name]), float(bse[name]))
    return {"engine": engine, "rows": rows, "seconds": time.perf_counter() - t0, "peak_rss_mb": status_mb("VmHWM"),
            "start_rss_mb": start_mb, "coef": coef}


def run_child(engine: str, path: Path, rows: int, repeat: int = 1, timeout: int = 3600) -> dict:
    """The fit in `repeat` fresh processes: the median time (the machine is a shared VM whose
    single runs vary by 20 %), the largest peak, and every time."""
    cmd = [sys.executable, __file__, "--child", engine, "--data", str(path), "--rows", str(rows)]
    runs = []
    for _ in range(repeat):
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            return {"engine": engine, "rows": rows, "error": (p.stderr or p.stdout)[-2000:]}
        runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
    times = sorted(r["seconds"] for r in runs)
    return runs[0] | {"seconds": float(np.median(times)), "all_seconds": times,
                      "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "start_rss_mb": max(r["start_rss_mb"] for r in runs)}


def _agree(a: dict, b: dict) -> dict:
    common = sorted(set(a["coef"]) & set(b["coef"]))
    if not common:
        return {"compared": 0}
    db = max(abs(a["coef"][k][0] - b["coef"][k][0]) / max(abs(b["coef"][k][0]), 1e-12) for k in common)
    ds = max(abs(a["coef"][k][1] - b["coef"][k][1]) / b["coef"][k][1] for k in common)
    return {"compared": len(common), "max_rel_diff_coef": db, "max_rel_diff_se": ds}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--statsmodels-rows", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes per fit; the median time is reported")
    ap.add_argument("--child")
    ap.add_argument("--data")
    ap.add_argument("--render", type=Path, help="only rewrite <out>/model_peers.md from this results JSON")
    a = ap.parse_args()
    if a.render:
        return render(json.loads(a.render.read_text()), a.out)
    if a.child:
        print(json.dumps(child(a.child, a.data, a.rows)))
        return
    a.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = (("ours", a.rows), ("ours_in_memory", a.rows), ("pyfixest_dummies", a.rows), ("pyfixest_fe", a.rows),
                ("ours", a.statsmodels_rows), ("statsmodels", a.statsmodels_rows), ("ours", 2 * a.rows), ("ours", 4 * a.rows))
        paths = design_files(Path(tmp), sorted({rows for _, rows in runs}))
        res = {"machine": machine(), "rows": a.rows, "repeat": a.repeat, "runs": []}
        for engine, rows in runs:
            r = run_child(engine, paths[rows], rows, a.repeat)
            print(engine, rows, {k: v for k, v in r.items() if k != "coef"}, flush=True)
            res["runs"].append(r)
    (a.out / "model_peers.json").write_text(json.dumps(summarize(res), indent=1))
    render(res, a.out)


def summarize(res: dict) -> dict:
    """Add the peers' time and memory ratios (against each of our starting points) and the
    coefficients' agreement, and our engine's scaling."""
    runs = res["runs"]
    summary = {}
    for r in runs:
        if r["engine"].startswith("ours") or "error" in r:
            continue
        summary[r["engine"]] = {"rows": r["rows"]}
        for ours in ("ours", "ours_in_memory"):  # ratios against each of our starting points there is
            base = next((o for o in runs if o["engine"] == ours and o["rows"] == r["rows"] and "error" not in o), None)
            if base:
                sfx = "" if ours == "ours" else "_in_memory"
                summary[r["engine"]] |= {f"time_ratio{sfx}": r["seconds"] / base["seconds"],
                                         f"memory_ratio{sfx}": r["peak_rss_mb"] / base["peak_rss_mb"]}
        summary[r["engine"]] |= _agree(next(o for o in runs if o["engine"] == "ours" and o["rows"] == r["rows"]), r)
    res["summary"] = summary
    res["scaling_seconds"] = {r["rows"]: r["seconds"] for r in runs if r["engine"] == "ours" and "error" not in r}  # from Parquet
    return res


def render(res: dict, out: Path) -> None:
    """<out>/model_peers.md from the results (ratios to two decimals: a target is a line)."""
    runs, summary = res["runs"], res["summary"]
    lines = [f"# Model fit against peers ({res['rows']:,} rows, 10 categorical covariates, person-clustered SE)", "",
             f"Machine: {res['machine']}", "",
             f"Each fit ran in {res.get('repeat', 1)} fresh process(es): seconds are the median (all runs in brackets), the peak the largest.",
             "Ratios: the peer's time (memory) over ours, ours streaming from Parquet / ours from an in-memory table.", "",
             "RSS at start: the process when the clock starts (imports and the loaded data), which the peak includes.", "",
             "| engine | rows | seconds | peak RSS MB | RSS at start MB | time ratio | memory ratio | max rel diff coef / SE |",
             "|---|---|---|---|---|---|---|---|"]
    pair = lambda s, k: (f"{s[k]:.2f}" if k in s else "-") + " / " + (f"{s[k + '_in_memory']:.2f}" if k + "_in_memory" in s else "-")  # noqa: E731
    for r in runs:
        if "error" in r:
            lines.append(f"| {r['engine']} | {r['rows']:,} | failed | | | | | |")
            continue
        s = summary.get(r["engine"], {})
        agree = f"{s.get('max_rel_diff_coef', float('nan')):.1e} / {s.get('max_rel_diff_se', float('nan')):.1e}" if s.get("compared") else ""
        every = " (" + ", ".join(f"{x:.2f}" for x in r.get("all_seconds", [])) + ")" if len(r.get("all_seconds", [])) > 1 else ""
        lines.append(f"| {r['engine']} | {r['rows']:,} | {r['seconds']:.2f}{every} | {r['peak_rss_mb']:.0f} | {r.get('start_rss_mb', float('nan')):.0f} | "
                     f"{pair(s, 'time_ratio') if s else ''} | {pair(s, 'memory_ratio') if s else ''} | {agree} |")
    lines += ["", "Scaling of the project's engine (seconds by rows): "
              + ", ".join(f"{int(k):,}: {v:.2f}" for k, v in res["scaling_seconds"].items())]
    (out / "model_peers.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
