"""Shared fixtures: synthetic worlds are generated once per test session; one headless browser."""

import os
import shutil
from pathlib import Path

import pytest

import arbeidsindikator as ai
from arbeidsindikator.data.synth import generate_world


def _world(tmp_path_factory, name: str, scale: str, seed: int, clean: bool = False) -> Path:
    out = tmp_path_factory.mktemp("worlds") / name
    generate_world(out, scale=scale, seed=seed, clean=clean)
    return out


@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> Path:
    return _world(tmp_path_factory, "small", "small", 1)


@pytest.fixture(scope="session")
def small_clean_world(tmp_path_factory) -> Path:
    return _world(tmp_path_factory, "small_clean", "small", 3, clean=True)


@pytest.fixture(scope="session")
def medium_clean_world(tmp_path_factory) -> Path:
    return _world(tmp_path_factory, "medium_clean", "medium", 11, clean=True)


@pytest.fixture(scope="session")
def medium_world(tmp_path_factory) -> Path:
    return _world(tmp_path_factory, "medium", "medium", 12)


@pytest.fixture(scope="session")
def policy_world_dir(tmp_path_factory) -> Path:
    """A small world with employment observed to 2025-12: outcomes after the programme cuts of
    July 2024, and follow-up spells of the 2023 cohort observed a year on."""
    out = tmp_path_factory.mktemp("worlds") / "policy"
    generate_world(out, scale="small", seed=5, employment_observed_to="2025-12")
    return out


@pytest.fixture(scope="session")
def small_run(small_world, tmp_path_factory):
    """The default model on the small world, person-level results kept (for checks only)."""
    db = tmp_path_factory.mktemp("runs") / "res.duckdb"
    run = ai.run_indicator(small_world, db=db, keep_person_level=True)
    return run, db


@pytest.fixture(scope="session")
def medium_clean_run(medium_clean_world, tmp_path_factory):
    """The default model on the clean medium world, person-level kept (validity, coverage,
    office resources against the truth)."""
    db = tmp_path_factory.mktemp("runs") / "medium_clean.duckdb"
    ai.run_indicator(medium_clean_world, db=db, keep_person_level=True)
    return db


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# every text of every visible chart: its font size in the chart's units times how much the chart
# is scaled on the screen
RENDERED_TEXT_PX = """() => [...document.querySelectorAll('svg')].filter(s => s.getBoundingClientRect().width > 0)
  .flatMap(s => { const vb = s.viewBox.baseVal; const k = vb && vb.width ? s.getBoundingClientRect().width / vb.width : 1;
    return [...s.querySelectorAll('text')].filter(t => t.textContent.trim() && t.getBoundingClientRect().width > 0)
      .map(t => parseFloat(getComputedStyle(t).fontSize) * k); })"""


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing in CI; .ci/run installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.fixture(scope="session")
def readable_on_a_phone(browser):
    """Opens a written page at 390 px and checks what a leader on a phone needs: every chart text
    at least 11 px on the screen, nothing wider than the screen, nothing loaded from elsewhere,
    no script error. Returns how many chart texts it measured."""
    def check(path: Path) -> int:
        page = browser.new_page(viewport={"width": 390, "height": 844})
        requests, errors = [], []
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            page.goto(Path(path).as_uri())
            page.wait_for_load_state("load")
            sizes = page.evaluate(RENDERED_TEXT_PX)
            assert not sizes or min(sizes) >= 11, (Path(path).name, sorted(sizes)[:5])
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, Path(path).name
            assert all(u.startswith(("file:", "data:")) for u in requests), requests
            assert errors == []
            return len(sizes)
        finally:
            page.close()
    return check
