"""The whole monthly production run at national scale, stage by stage (issue 7).

Builds the national synthetic world once (kept in --world for later runs), then runs
validate -> outcomes -> four models with standard errors -> person-level indicator -> all
published aggregates with uncertainty -> store, in a fresh process. It records wall time,
peak RSS per stage (sampled every 50 ms) and for the whole process (VmHWM), the largest size
of the working database's spill directory (sampled every second), and rows per second, with
the machine's description.

    .venv/bin/python benchmarks/production_run.py [--scale national] [--world /tmp/w_national]
                                                  [--out benchmarks/results]

Not part of the test suite. Targets (issue 7): under 5 minutes and under 6 GB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from machine import machine, status_mb  # benchmarks/ is on sys.path when a script here runs

STAGES = {"validering": "validate", "utfall": "outcomes", "modell": "model", "indikator": "indicator",
          "publisering": "publish", "revisjon": "audit", "lagring": "store"}


def _dir_mb(dirs) -> float:
    total = 0
    for d in dirs:
        for f in d.rglob("*"):
            try:
                total += f.stat().st_size
            except OSError:  # a spill file removed while we look
                pass
    return total / 2**20


def child(world: str, db: str, engine: str = "duckdb") -> dict:
    import arbeidsindikator as ai
    stage = {"name": "start"}
    peaks: dict[str, float] = {}
    done = threading.Event()

    spill = {"peak_mb": 0.0}
    before = set(Path(tempfile.gettempdir()).glob("arbeidsindikator-work-*"))

    def sample():
        i = 0
        while not done.is_set():
            rss = status_mb("VmRSS")
            peaks[stage["name"]] = max(peaks.get(stage["name"], 0.0), rss)
            if i % 20 == 0:  # the working database's spill directory, once a second
                spill["peak_mb"] = max(spill["peak_mb"], _dir_mb(set(Path(tempfile.gettempdir()).glob("arbeidsindikator-work-*")) - before))
            i += 1
            time.sleep(0.05)

    def progress(step: str, frac: float):
        if step in STAGES:  # the model's own sub-steps keep the stage "model"
            stage["name"] = STAGES[step]

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.perf_counter()
    run = ai.run_indicator(world, db=db, progress=progress, engine=engine)
    wall = time.perf_counter() - t0
    done.set()
    th.join()
    n = run.n_person_months
    return {"wall_seconds": wall, "peak_rss_mb": status_mb("VmHWM"), "peak_spill_mb": spill["peak_mb"], "person_months": n,
            "stages": {k: {"seconds": v, "rows_per_second": n / v if v else None, "peak_rss_mb": peaks.get(k)}
                       for k, v in run.timings.items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="national")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--world", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--db", type=Path, default=None, help="keep the results store here (e.g. for api_latency.py)")
    ap.add_argument("--engine", default="duckdb", choices=["duckdb", "spark"],
                    help="spark: local mode on this machine; peak RSS is then the Python driver's only (the JVM is a process of its own)")
    ap.add_argument("--child", nargs=3)
    ap.add_argument("--render", type=Path, help="rewrite the .md next to this results .json")
    a = ap.parse_args()
    if a.render:
        a.render.with_suffix(".md").write_text(render(json.loads(a.render.read_text())))
        return
    if a.child:
        print(json.dumps(child(*a.child)))
        return
    world = a.world or Path(tempfile.gettempdir()) / f"arbeidsindikator-{a.scale}-{a.seed}"
    res = {"machine": machine(), "scale": a.scale, "seed": a.seed, "world": str(world), "engine": a.engine}
    name = f"production_run_{a.scale}" + ("_spark" if a.engine == "spark" else "")
    if not (world / "truth" / "world.json").exists():
        cmd = [sys.executable, "-c", "import sys, json, time; from arbeidsindikator.data.synth import generate_world; "
               "t=time.perf_counter(); s=generate_world(sys.argv[1], scale=sys.argv[2], seed=int(sys.argv[3])); "
               "hwm=[l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; "
               "print(json.dumps({'seconds': time.perf_counter()-t, 'peak_rss_mb': int(hwm)/1024}))",
               str(world), a.scale, str(a.seed)]
        p = subprocess.run(cmd, capture_output=True, text=True, check=True)
        res["synth"] = json.loads(p.stdout.strip().splitlines()[-1])
        print("synth", res["synth"], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = a.db or Path(tmp) / "res.duckdb"
        p = subprocess.run([sys.executable, __file__, "--child", str(world), str(db), a.engine], capture_output=True, text=True)
        if p.returncode != 0:
            res["error"] = p.stderr[-3000:]
            print(p.stderr[-3000:])
        else:
            res["run"] = json.loads(p.stdout.strip().splitlines()[-1])
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{name}.json").write_text(json.dumps(res, indent=1))
    if "run" in res:
        text = render(res)
        (a.out / f"{name}.md").write_text(text)
        print(text)


def render(res: dict) -> str:
    """The results file's table (also: python production_run.py --render results.json)."""
    r = res["run"]
    lines = [f"# Production run, {res['scale']} scale, {res['engine']} engine ({r['person_months']:,} person-months)", "",
             f"Machine: {res['machine']}", "",
             f"Whole run: {r['wall_seconds']:.0f} s, peak RSS {r['peak_rss_mb']:.0f} MB "
             f"(targets: 300 s, 6 000 MB); the working database spilled at most {r.get('peak_spill_mb', 0):,.0f} MB to disk",
             "", "| stage | seconds | rows/s | peak RSS MB |", "|---|---|---|---|"]
    for k, v in r["stages"].items():
        if v["seconds"] < 0.1:  # too short for a rate, or for the 50 ms memory sampler
            lines.append(f"| {k} | {v['seconds']:.1f} | | |")
        else:
            lines.append(f"| {k} | {v['seconds']:.1f} | {v['rows_per_second'] or 0:,.0f} | {v['peak_rss_mb'] or 0:.0f} |")
    lines += ["", "The model's pass writes the person-level indicator (stage model); the indicator stage "
              "only creates the labelled view over it."]
    return "\n".join(lines) + "\n"

if __name__ == "__main__":
    main()
