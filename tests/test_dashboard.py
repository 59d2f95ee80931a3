"""The dashboard: API tests with an HTTP client, and an end-to-end test in headless Chromium."""

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from arbeidsindikator.dashboard import create_app, is_loopback

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def client(small_run):
    _, db = small_run
    return TestClient(create_app(db))


def test_series_has_confidence_bands_and_comparison_lines(client):
    r = client.get("/api/series", params={"unit": "Oslo", "outcome": "jobb3"})
    assert r.status_code == 200
    body = r.json()
    assert body["level"] == 2 and "Norge" in body["compare"]
    row = next(x for x in body["rows"] if not x["PRIKKET"])
    assert row["INDIKATOR_KI_NEDRE"] <= row["INDIKATOR"] <= row["INDIKATOR_KI_OVRE"]
    office = client.get("/api/units").json()[-1]
    assert office["level"] == 3
    assert client.get("/api/series", params={"unit": office["id"], "outcome": "atid3", "from": "2020-01", "to": "2020-12"}).status_code == 200


def test_bad_requests_get_clear_4xx(client):
    assert client.get("/api/series", params={"unit": "Atlantis"}).status_code == 404
    assert "Ukjent enhet" in client.get("/api/series", params={"unit": "Atlantis"}).json()["detail"]
    assert client.get("/api/series", params={"unit": "Norge", "outcome": "lønn"}).status_code == 422
    assert client.get("/api/series", params={"unit": "Norge", "from": "2020"}).status_code == 422
    assert client.get("/api/series", params={"unit": "Norge", "breakdown": "Skostørrelse"}).status_code == 422
    assert client.get("/api/funnel", params={"period": "1999"}).status_code == 422


def test_reading_rule_is_enforced_by_the_api(client):
    r = client.get("/api/groups", params={"unit": "Norge", "breakdown": "Kjønn", "month": "2020-06"})
    assert r.status_code == 409 and "modellen" in r.json()["detail"]
    ok = client.get("/api/groups", params={"unit": "Norge", "breakdown": "Innsatsgruppe", "month": "2020-06"})
    assert ok.status_code == 200 and len(ok.json()) >= 3


def test_index_and_funnel_endpoints(client):
    idx = client.get("/api/index", params={"unit": "Norge", "reference": "2023-06"}).json()
    assert next(r for r in idx if r["BEHOLDNINGSMAANED"] == "2023-06")["ENDRINGSINDEKS"] == 0.0
    f = client.get("/api/funnel", params={"outcome": "jobb3", "period": "2019"}).json()
    assert f and {"GRENSE_95_NEDRE", "UTENFOR_998"} <= set(f[0])
    regions = client.get("/api/funnel", params={"outcome": "jobb3", "period": "2023", "level": 2}).json()
    ids = {r["ORG_STED_ID"] for r in f} | {r["ORG_STED_ID"] for r in regions}
    assert len(regions) >= 10 and "4154" not in ids  # NOE is never plotted among offices or regions


def test_no_endpoint_returns_person_level_rows(client):
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert paths == {"/api/meta", "/api/units", "/api/series", "/api/groups", "/api/index", "/api/funnel"}
    for path in paths:
        assert "person" not in path
    text = client.get("/api/series", params={"unit": "Norge"}).text
    assert "person_id" not in text


def test_token_is_required_when_set(small_run):
    _, db = small_run
    c = TestClient(create_app(db, token="hemmelig"))
    assert c.get("/api/units").status_code == 401
    assert c.get("/api/units", headers={"Authorization": "Bearer hemmelig"}).status_code == 200
    assert c.get("/api/units", params={"token": "hemmelig"}).status_code == 401  # never read from the URL
    assert is_loopback("127.0.0.1") and not is_loopback("0.0.0.0")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(small_run):
    import uvicorn
    _, db = small_run
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(db), host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    th.join(timeout=10)


def test_dashboard_in_a_real_browser(server, tmp_path):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing in CI; .ci/run installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server + "/")
        page.wait_for_selector("body[data-loaded='1']", timeout=20_000)
        office = page.eval_on_selector("#unit optgroup[label='Kontor'] option", "o => o.value")
        page.select_option("#unit", office)
        page.select_option("#outcome", "jobb3")
        page.locator("#legend", has_text="Nav").wait_for(timeout=20_000)  # (the CSP forbids evaluating strings)
        band = page.get_attribute("#ci-band", "points")
        line = page.get_attribute("#line-unit", "points")
        assert band and len(band.split()) > 20 and line and len(line.split()) > 10
        assert page.locator(".compare-line").count() >= 1  # the region's and the country's lines
        assert not page.is_visible("#error"), page.inner_text("#error")
        assert page.locator("#table tr").count() > 5
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        target = os.environ.get("ARBEIDSINDIKATOR_SCREENSHOTS")
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(target) / "dashboard.png")
        browser.close()
    assert shot.stat().st_size > 10_000
    assert errors == []
