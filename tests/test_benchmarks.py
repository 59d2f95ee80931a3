"""Every benchmark script runs on tiny data, so that an API change cannot break one silently
(the timings themselves are not asserted: they are measured in benchmarks/, not here)."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], timeout: float = 600) -> str:
    p = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout


def test_model_peers(tmp_path):
    _run(["benchmarks/model_peers.py", "--rows", "2000", "--statsmodels-rows", "2000", "--repeat", "1", "--out", str(tmp_path)])
    res = json.loads((tmp_path / "model_peers.json").read_text())
    assert (tmp_path / "model_peers.md").exists()
    assert "ours" in json.dumps(res) and "pyfixest" in json.dumps(res)


def test_wild_bootstrap(tmp_path):
    _run(["benchmarks/wild_bootstrap.py", "--draws", "99", "--peer-draws", "9", "--out", str(tmp_path)])
    res = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert res["same_p_on_199_draws"] is True and 0 <= res["p"] <= 1


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    out = tmp_path_factory.mktemp("production")
    _run(["benchmarks/production_run.py", "--scale", "small", "--out", str(out), "--db", str(out / "res.duckdb")], 900)
    return out


def test_production_run(production):
    res = json.loads(next(production.glob("*.json")).read_text())
    assert res["run"] and (production / "res.duckdb").exists()


def test_api_latency(production, tmp_path):
    _run(["benchmarks/api_latency.py", "--db", str(production / "res.duckdb"), "--requests", "20", "--concurrency", "2",
          "--out", str(tmp_path / "api.json")])
    assert json.loads((tmp_path / "api.json").read_text())


def test_survival_national(small_world, tmp_path):
    _run(["benchmarks/survival_national.py", "--world", str(small_world), "--out", str(tmp_path), "--sample", "1.0",
          "--lifelines-timeout", "300"], 900)
    assert list(tmp_path.glob("*.json"))


def test_evaluation_truth(tmp_path):
    out = tmp_path / "evaluation_truth.csv"
    _run(["benchmarks/evaluation_truth.py", "--seeds", "1", "--bootstrap", "99", "--out", str(out)], 900)
    assert len(pd.read_csv(out)) and (tmp_path / "evaluation_truth_summary.csv").exists()


def test_release_cycle(small_world, tmp_path):
    _run(["benchmarks/release_cycle.py", "--scale", "small", "--world", str(small_world), "--releases", "2",
          "--out", str(tmp_path), "--work", str(tmp_path / "arbeid")], 900)
    res = json.loads((tmp_path / "release_cycle_small.json").read_text())
    second = res["releases"][1]
    assert second["carried_monthly"]["published"] == second["carried_monthly"]["published_kept"] > 0
    assert second["carried_monthly"]["suppressed"] == second["carried_monthly"]["suppressed_kept"] > 0
    assert not any(v for k, v in res["union_attack"]["jobb12"].items() if k != "seconds")


def test_movers_forecast(small_world, tmp_path):
    out = tmp_path / "movers.csv"
    _run(["benchmarks/movers_forecast.py", "--world", str(small_world), "--out", str(out)], 900)
    got = pd.read_csv(out)
    assert len(got) == 4 and {"coefficient", "truth_coefficient", "person_effects_r_truth"} <= set(got)
    assert (tmp_path / "movers_summary.csv").exists()
