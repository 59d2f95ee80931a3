"""The dashboard: API tests with an HTTP client, and an end-to-end test in headless Chromium."""

import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from arbeidsindikator.pipeline.shrinkage import NOE_ID
from arbeidsindikator.present.dashboard import create_app, is_loopback

from conftest import RENDERED_TEXT_PX



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


def test_the_api_page_is_norwegian(client):
    text = re.sub(r"<[^>]+>", " ", client.get("/docs").text)
    english = [w for w in (" the ", " with ", " and ", " of ", "unit's", "refused", "Successful") if w in text]
    assert not english, english


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
    assert len(regions) >= 10 and not {"4154", "NOE"} & ids  # NOE is never plotted among offices or regions


def test_no_endpoint_returns_person_level_rows(client):
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert paths == {"/api/meta", "/api/units", "/api/series", "/api/groups", "/api/index", "/api/funnel", "/api/years",
                     "/api/groups_period"}
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


def test_years_groups_and_report_endpoints(client):
    y = client.get("/api/years", params={"unit": "Oslo", "outcome": "jobb3"}).json()
    assert "Oslo" in y["series"] and "Norge" in y["series"] and {r["PERIODE"] for r in y["series"]["Oslo"]} >= {"2019", "2020"}
    g = client.get("/api/groups_period", params={"unit": "Norge", "breakdown": "Innsatsgruppe", "period": "2021"})
    assert g.status_code == 200 and len(g.json()) >= 3
    assert client.get("/api/groups_period", params={"unit": "Norge", "breakdown": "Kjønn"}).status_code == 409
    r = client.get("/rapport", params={"unit": "Oslo"})
    assert r.status_code == 200 and "Arbeidsindikatoren: Oslo" in r.text and "<script" not in r.text
    assert "script-src" not in r.headers["content-security-policy"]  # the report runs no script
    meta = client.get("/api/meta").json()
    assert meta["group_labels"]["ikke_vestlig"] == "Innvandrer, øvrige land" and meta["outcomes"][2]["level_unit"] == "prosent"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(db):
    import uvicorn
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(db), host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.1)
    return srv, th, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def server(small_run):
    srv, th, url = _serve(small_run[1])
    yield url
    srv.should_exit = True
    th.join(timeout=10)


def _open(browser, url, width, height):
    page = browser.new_page(viewport={"width": width, "height": height})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/")
    page.wait_for_selector("body[data-loaded='1']", timeout=30_000)
    return page, errors


def _busy_office(db) -> str:
    """The local office with the most published jobb3 months in the last half year (its table
    of the last months has numbers to read)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("""
            SELECT ORG_STED_ID FROM published
            WHERE ORG_NIVAA = 3 AND UTFALL = 'jobb3' AND NEDBRYTNING = 'Alle' AND ORG_STED_ID <> ?
              AND BEHOLDNINGSMAANED > (SELECT max(BEHOLDNINGSMAANED) FROM published) - INTERVAL 6 MONTH
            GROUP BY ALL ORDER BY count(*) FILTER (WHERE NOT PRIKKET) DESC, sum(ANTALL_PERSONER) DESC, 1
            LIMIT 1""", [NOE_ID]).fetchall()[0][0]
    finally:
        con.close()


def _year_group(db, office: str, breakdown: str, outcome: str) -> str:
    """The group of `breakdown` with the most published calendar years at `office` (its year
    chart has points to draw)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("""
            SELECT GRUPPE FROM published_period
            WHERE ORG_STED_ID = ? AND UTFALL = ? AND NEDBRYTNING = ? AND MANEDER = 12 AND length(PERIODE) = 4
            GROUP BY ALL ORDER BY count(*) FILTER (WHERE NOT PRIKKET) DESC, 1 LIMIT 1""",
                           [office, outcome, breakdown]).fetchall()[0][0]
    finally:
        con.close()


def _broken_series(db, breakdown: str, outcome: str) -> tuple[str, str]:
    """An office and a group of `breakdown` whose monthly series is published, then suppressed,
    then published again (the chart must break the line there)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return tuple(con.execute("""
            WITH s AS (
                SELECT ORG_STED_ID AS unit, GRUPPE AS grp, NOT PRIKKET AND coalesce(lag(PRIKKET) OVER (
                           PARTITION BY ORG_STED_ID, GRUPPE ORDER BY BEHOLDNINGSMAANED), true) AS starts
                FROM published WHERE ORG_NIVAA = 3 AND UTFALL = ? AND NEDBRYTNING = ? AND ORG_STED_ID <> ?)
            SELECT unit, grp FROM s GROUP BY ALL HAVING sum(starts::INTEGER) >= 2 ORDER BY 1, 2 LIMIT 1""",
                                 [outcome, breakdown, NOE_ID]).fetchall()[0])
    finally:
        con.close()


def _choose(page, selector, value):
    page.evaluate("delete document.body.dataset.loaded")
    page.select_option(selector, value)
    page.wait_for_selector("body[data-loaded='1']", timeout=30_000)


def _screenshot(page, name):
    target = os.environ.get("ARBEIDSINDIKATOR_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / name), full_page=True)


def test_dashboard_in_a_real_browser(server, browser, small_run, tmp_path):
    """Desktop: every view drawn for an office, with its band, the region and country lines,
    the groups side by side, the index and the funnel with the office marked; readable axes."""
    page, errors = _open(browser, server, 1280, 900)
    assert not page.is_visible("#s-groups")  # no breakdown: nothing to set side by side
    assert page.input_value("#from") and page.input_value("#to") and page.input_value("#reference")  # the defaults shown
    office = _busy_office(small_run[1])
    _choose(page, "#unit", office)
    _choose(page, "#outcome", "jobb3")
    # the last months' table, all users: numbers in Norwegian format
    cells = page.eval_on_selector_all("#table-month td", "els => els.map(e => e.textContent)")
    assert any("," in c for c in cells) and not any(re.search(r"[0-9][.][0-9]", c) for c in cells), cells
    _choose(page, "#breakdown", "Innsatsgruppe")
    assert page.is_visible("#s-groups")
    link = page.url  # the view is in the address: the same view opens from it
    assert f"unit={office}" in link and "breakdown=Innsatsgruppe" in link and "outcome=jobb3" in link
    again = browser.new_page(viewport={"width": 1280, "height": 900})
    again.goto(link)
    again.wait_for_selector("body[data-loaded='1']", timeout=30_000)
    assert (again.input_value("#unit"), again.input_value("#outcome"), again.input_value("#breakdown")) == (
        office, "jobb3", "Innsatsgruppe")
    assert re.search(r"[\u2212-]0,0+(?![0-9])", page.locator("main").inner_text()) is None  # no "−0,00"
    assert page.locator("#chart-month .ci-band").count() >= 1 and page.locator("#chart-month .line-unit").count() >= 1
    assert page.locator("#chart-month .compare-line").count() >= 1  # the region's and the country's lines
    assert page.locator("#legend-month").inner_text().count("Nav") >= 1
    _choose(page, "#group", _year_group(small_run[1], office, "Innsatsgruppe", "jobb3"))
    assert page.locator("#chart-year .point").count() >= 3
    assert page.locator("#chart-groups .point").count() >= 3
    assert page.locator("#chart-funnel .point.mark").count() == 1
    assert _selects_fit(page) == []
    boxes = page.eval_on_selector_all("#chart-funnel text.point-label", "els => els.map(e => { const b = e.getBBox(); "
                                      "return [b.x, b.y, b.x + b.width, b.y + b.height]; })")
    assert boxes and not any(a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5
                             for i, a in enumerate(boxes) for b in boxes[i + 1:])  # no name covers another
    assert page.locator("#chart-index polyline, #chart-index circle").count() >= 1
    ticks = page.eval_on_selector_all("#chart-month text", "els => els.map(e => e.textContent)")
    assert "0" in ticks and any("−" in t for t in ticks)  # zero labelled, a real minus sign
    assert "prosentpoeng" in ticks  # the unit on the axis
    cells = page.eval_on_selector_all("#table-month td", "els => els.map(e => e.textContent)")
    assert not any(re.search(r"[0-9][.][0-9]", c) for c in cells), cells  # a group's months: no English decimals
    for code in ("ikke_vestlig", "norskfodt", "situasjonsbestemt", "True", "NaN", "atid3"):
        assert code not in page.locator("main").inner_text()
    assert not page.is_visible("#error"), page.inner_text("#error")
    href = page.get_attribute("#report-link", "href")
    assert href.startswith("rapport?unit=")
    _screenshot(page, "dashboard.png")
    # a breakdown in the model: one small chart per group, the group highlighted over the others
    _choose(page, "#breakdown", "Aldersgruppe")
    assert not page.is_visible("#chart-groups")
    cells = page.locator("#multiples-groups svg")
    assert cells.count() >= 3 and page.locator("#multiples-groups h3").count() == cells.count()
    names = page.eval_on_selector_all("#multiples-groups h3", "els => els.map(e => e.textContent)")
    assert len(set(names)) == len(names)  # each group once, however often the view was redrawn
    for i in range(cells.count()):
        assert cells.nth(i).locator(".line-unit").count() >= 1 and cells.nth(i).locator(".other-line").count() >= 1
        assert page.evaluate(OVERLAPPING_TEXT, f"#multiples-groups div:nth-child({i + 1}) svg") == []
    page.locator("#s-groups").scroll_into_view_if_needed()
    _screenshot(page, "dashboard-groups.png")
    assert errors == []


# each choice's longest option fits its field (the chosen name is never cut off): text width by
# the field's own font, plus the arrow and padding
SELECTS_FIT = """() => [...document.querySelectorAll('select')].flatMap(s => {
  const c = document.createElement('canvas').getContext('2d'), st = getComputedStyle(s);
  c.font = `${st.fontSize} ${st.fontFamily}`;
  return [...s.options].filter(o => c.measureText(o.textContent).width + 28 > s.clientWidth).map(o => [s.id, o.textContent]); })"""


def _selects_fit(page):
    return page.evaluate(SELECTS_FIT)


# pairs of a chart's texts that cover each other (axis labels too close)
OVERLAPPING_TEXT = """(sel) => { const r = [...document.querySelector(sel).querySelectorAll('text')]
    .map(t => [t.textContent, t.getBoundingClientRect()]);
  return r.flatMap(([a, p], i) => r.slice(i + 1).filter(([, q]) => p.left < q.right - 0.5 && q.left < p.right - 0.5
    && p.top < q.bottom - 0.5 && q.top < p.bottom - 0.5).map(([b]) => [a, b])); }"""


# texts of a chart drawn outside its box (clipped on the screen)
CLIPPED_TEXT = """(sel) => { const svg = document.querySelector(sel), b = svg.getBoundingClientRect();
  return [...svg.querySelectorAll('text')].map(t => [t.textContent, t.getBoundingClientRect()])
    .filter(([, r]) => r.left < b.left - 0.5 || r.right > b.right + 0.5 || r.top < b.top - 0.5 || r.bottom > b.bottom + 0.5)
    .map(([s]) => s); }"""


def test_dashboard_on_a_phone_and_after_an_error(server, browser, small_run):
    """Phone width: nothing wider than the screen. An error clears the views instead of leaving
    the previous charts under the message; suppressed months break the line."""
    page, errors = _open(browser, server, 390, 844)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    office, group = _broken_series(small_run[1], "Innvandrerkategori", "atid3")
    _choose(page, "#unit", office)
    assert _selects_fit(page) == []
    _choose(page, "#breakdown", "Innsatsgruppe")  # long group names: one row each, nothing clipped
    assert page.locator("#chart-groups .point").count() >= 3
    assert page.evaluate(CLIPPED_TEXT, "#chart-groups") == []
    _choose(page, "#breakdown", "Innvandrerkategori")
    _choose(page, "#group", group)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator("#multiples-groups svg").count() >= 1  # a small office: groups without a reference value are named
    for i in range(page.locator("#multiples-groups svg").count()):
        assert page.evaluate(CLIPPED_TEXT, f"#multiples-groups div:nth-child({i + 1}) svg") == []
    assert page.locator("#chart-month .line-unit").count() >= 2  # split at suppressed months
    # the last months' table shows the indicator and its interval without scrolling sideways
    for col in ("Indikator", "95 % KI"):
        box = page.locator("#table-month th", has_text=col).bounding_box()
        assert box and box["x"] + box["width"] <= 390, (col, box)
    _screenshot(page, "dashboard-phone.png")
    page.route("**/api/**", lambda route: route.fulfill(status=503, body='{"detail": "Tjenesten er nede."}',
                                                          content_type="application/json"))
    _choose(page, "#outcome", "atid12")
    assert page.is_visible("#error") and "nede" in page.inner_text("#error")
    assert page.locator("#chart-month *").count() == 0 and page.locator("#table-month tr").count() == 0
    assert errors == []


@pytest.fixture(scope="module")
def hostile_world(small_world, tmp_path_factory):
    """An office whose name is HTML with a script in it, and one that closed into another."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    import arbeidsindikator as ai
    d = tmp_path_factory.mktemp("hostile") / "w"
    shutil.copytree(small_world, d)
    o = pq.read_table(d / "offices.parquet").to_pandas()
    evil = '<img src=x onerror="document.body.dataset.pwned=1">Nav Ond'
    o.loc[o["office_id"] == "0302", "office_name"] = evil
    pq.write_table(pa.Table.from_pandas(o, preserve_index=False), d / "offices.parquet")
    db = d.parent / "res.duckdb"
    ai.run_indicator(d, db=db)
    return db, evil, pd


def test_names_are_shown_as_text_never_run(browser, hostile_world):
    db, evil, _ = hostile_world
    srv, th, url = _serve(db)
    try:
        page, errors = _open(browser, url, 1280, 900)
        _choose(page, "#unit", "0302")
        assert page.evaluate("document.body.dataset.pwned") is None
        assert evil in page.locator("#legend-month").inner_text()
        assert page.locator("img").count() == 0
        closed = page.locator("#unit option", has_text="nedlagt")
        if closed.count():  # an office that closed is marked with the office that took over
            _choose(page, "#unit", closed.first.get_attribute("value"))
            assert "ble lagt ned" in page.inner_text("#unit-note")
        assert errors == []
    finally:
        srv.should_exit = True
        th.join(timeout=10)


def test_chart_text_is_readable_on_a_phone(server, browser, readable_on_a_phone, small_run, tmp_path):
    """At 390 px every chart's text is at least 11 px on the screen: the dashboard's, the
    static page's and a report's (which show their phone versions of the figures)."""
    from arbeidsindikator.present.page import write_page
    from arbeidsindikator.present.report import write_report
    page, errors = _open(browser, server, 390, 844)
    sizes = page.evaluate(RENDERED_TEXT_PX)
    assert len(sizes) > 20 and min(sizes) >= 11, sorted(sizes)[:5]
    for path in (write_page(small_run[1], tmp_path / "index.html"), write_report(small_run[1], "Oslo", tmp_path)):
        assert readable_on_a_phone(path) > 20
        wide = browser.new_page(viewport={"width": 1280, "height": 900})
        wide.goto(path.as_uri())
        assert wide.locator(".fig-wide svg").first.is_visible() and not wide.locator(".fig-phone svg").first.is_visible()
    assert errors == []


def test_report_in_a_real_browser(browser, small_run, tmp_path):
    """A region's report opens offline (no request leaves the file), shows its figures, and
    fits a phone's width (wide tables scroll inside their box)."""
    from arbeidsindikator.present.report import write_report
    path = write_report(small_run[1], "Oslo", tmp_path)
    for width, name in ((1100, "report.png"), (390, "report-phone.png")):
        page = browser.new_page(viewport={"width": width, "height": 900})
        requests, errors = [], []
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        assert page.locator("figure img, figure svg").count() >= 4
        assert all(u.startswith(("file:", "data:")) for u in requests), requests
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        text = page.locator("body").inner_text()
        assert not re.search(r"\d\.\d", text.replace("...", ""))  # Norwegian decimal commas
        _screenshot(page, name)
        assert errors == []
