"""Benchmark (not a test): latency of the dashboard API under concurrent requests on loopback.

    .venv/bin/python benchmarks/api_latency.py --db demo-output/arbeidsindikator.duckdb \
        [--requests 2000] [--concurrency 8] [--out benchmarks/results/api_latency.json]

Starts the app with uvicorn on a free 127.0.0.1 port, then a bounded load generator (a fixed
number of requests from a fixed number of threads, stopping by itself) asks for whole time
series of random units and outcomes. Reports latency percentiles and throughput with the
machine's description.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import uvicorn
from machine import machine  # benchmarks/ is on sys.path when a script here runs

from arbeidsindikator.present.dashboard import create_app


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--out", default="benchmarks/results/api_latency.json")
    a = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(a.db), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    units = [u["id"] for u in httpx.get(base + "/api/units").json()]
    outcomes = ["atid3", "atid12", "jobb3", "jobb12"]
    rng = random.Random(1)
    jobs = [(rng.choice(units), rng.choice(outcomes)) for _ in range(a.requests)]
    lat, errors = [], 0
    lock = threading.Lock()
    local = threading.local()

    def one(job):
        nonlocal errors
        c = getattr(local, "c", None) or httpx.Client(base_url=base, timeout=30)
        local.c = c
        t = time.perf_counter()
        r = c.get("/api/series", params={"unit": job[0], "outcome": job[1]})
        dt = time.perf_counter() - t
        with lock:
            lat.append(dt)
            errors += r.status_code != 200
    t0 = time.perf_counter()
    with ThreadPoolExecutor(a.concurrency) as ex:
        list(ex.map(one, jobs))
    wall = time.perf_counter() - t0
    server.should_exit = True
    q = statistics.quantiles(lat, n=100)
    res = {"requests": a.requests, "concurrency": a.concurrency, "errors": errors, "wall_s": round(wall, 2),
           "requests_per_s": round(a.requests / wall, 1), "p50_ms": round(q[49] * 1e3, 1), "p90_ms": round(q[89] * 1e3, 1),
           "p99_ms": round(q[98] * 1e3, 1), "max_ms": round(max(lat) * 1e3, 1), "units": len(units),
           "machine": machine()}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
