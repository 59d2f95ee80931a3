"""The dashboard and the API under hostile use, values never pasted into SQL, and clean failure.

Each test is one finding of the security review (issue 18): it failed on the code before the fix."""

import base64
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import arbeidsindikator as ai
from arbeidsindikator.data.atomic import WORK_PREFIX, clean_stale_workdirs
from arbeidsindikator.cli import app as cli
from arbeidsindikator.present.dashboard import create_app, is_loopback

TOKEN = "hemmelig-token-æøå"
BAD_MONTHS = ["2023-13", "2023-00", "0000-00", "２０２３-０１", "٢٠٢٣-٠١", "2023-1", "20231", "2023-01-01", "x' OR '1'='1",
              "9999-99", "1899-12", "-2023-01", "2023–01", "\u0000"]


@pytest.fixture(scope="module")
def guarded(small_run):
    return TestClient(create_app(small_run[1], token=TOKEN))


@pytest.fixture(scope="module")
def open_client(small_run):
    return TestClient(create_app(small_run[1]))


def test_the_token_guards_every_route_the_docs_included(guarded):
    for path in ("/", "/app.js", "/app.css", "/docs", "/openapi.json", "/redoc", "/api/meta", "/api/units",
                 "/api/series?unit=Norge", "/api/funnel"):
        r = guarded.get(path)
        assert r.status_code in (401, 404), path
        if r.status_code == 401:
            assert r.headers["www-authenticate"].startswith("Basic")
    assert guarded.get("/redoc", headers={"Authorization": f"Bearer {TOKEN}".encode()}).status_code == 404  # not served
    ok = {"Authorization": f"Bearer {TOKEN}".encode()}
    for path in ("/", "/docs", "/openapi.json", "/api/meta"):
        assert guarded.get(path, headers=ok).status_code == 200, path
    basic = {"Authorization": "Basic " + base64.b64encode(f"leder:{TOKEN}".encode()).decode()}
    assert guarded.get("/api/meta", headers=basic).status_code == 200
    assert guarded.get("/api/meta", params={"token": TOKEN}).status_code == 401  # never from the URL


def test_any_token_gets_401_never_500(guarded):
    for got in ("feil", "ærlig", "🔑", "Bearer", "Basic !!!", "Basic " + base64.b64encode(b"\xff\xfe").decode(), "x" * 5000):
        r = guarded.get("/api/meta", headers={"Authorization": f"Bearer {got}".encode("utf-8")})
        assert r.status_code == 401


def test_docs_load_nothing_from_elsewhere(open_client):
    page = open_client.get("/docs").text
    assert "cdn" not in page.lower() and "<script" not in page.lower() and "/api/series" in page
    spec = open_client.get("/openapi.json").json()
    params = spec["paths"]["/api/series"]["get"]["parameters"]
    assert all(p.get("description") for p in params)


def test_security_headers_on_every_response(open_client):
    for path in ("/", "/app.js", "/api/meta", "/api/series?unit=Atlantis"):
        h = open_client.get(path).headers
        assert "script-src 'self'" in h["content-security-policy"] and "default-src 'none'" in h["content-security-policy"]
        assert h["x-content-type-options"] == "nosniff"


def test_the_page_inserts_no_data_as_html():
    js = (Path(ai.__file__).parent / "present" / "dashboard" / "app.js").read_text()
    html = (Path(ai.__file__).parent / "present" / "dashboard" / "index.html").read_text()
    assert "innerHTML" not in js and "outerHTML" not in js and "insertAdjacentHTML" not in js
    assert "token" not in js.lower()  # never read from the URL
    assert "<style" not in html and "style=" not in html and "<script>" not in html  # the CSP allows no inline code


@pytest.mark.parametrize("month", BAD_MONTHS)
def test_malformed_months_are_422_in_norwegian(open_client, month):
    for path, params in (("/api/series", {"unit": "Norge", "from": month}), ("/api/series", {"unit": "Norge", "to": month}),
                         ("/api/groups", {"unit": "Norge", "month": month}), ("/api/index", {"unit": "Norge", "reference": month})):
        r = open_client.get(path, params=params)
        assert r.status_code == 422, (path, month, r.status_code)
        assert "måned" in r.json()["detail"].lower() or "ugyldig" in r.json()["detail"].lower()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["/api/series", "/api/groups", "/api/index", "/api/funnel", "/api/units", "/api/meta"]),
       st.dictionaries(st.sampled_from(["unit", "outcome", "breakdown", "group", "from", "to", "month", "reference",
                                        "period", "level", "region"]),
                       st.one_of(st.text(max_size=30), st.sampled_from(["Norge", "Oslo", "jobb3", "Alle", "2023-06", "3", "-1",
                                                                        "99999999999999999999", "Innsatsgruppe"])),
                       max_size=6))
def test_hostile_requests_never_get_500(open_client, path, params):
    r = open_client.get(path, params=params)
    assert r.status_code < 500, (path, params, r.text)


def test_unit_names_are_case_insensitive_and_unknown_groups_explained(open_client):
    assert open_client.get("/api/series", params={"unit": "norge"}).status_code == 200
    r = open_client.get("/api/series", params={"unit": "Norge", "breakdown": "Kjønn", "group": "ukjent_kjønn"})
    assert r.status_code == 422 and "kvinne" in r.json()["detail"]


def test_loopback_is_a_literal_address_or_a_name_that_resolves_only_to_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]") and is_loopback("127.0.0.2")
    assert is_loopback("localhost")
    for host in ("127.attacker.example", "0.0.0.0", "192.168.1.10", "", "127.0.0.1.nip.io.invalid", "::"):
        assert not is_loopback(host), host


def test_serve_refuses_a_public_address_without_a_token(small_run):
    r = CliRunner().invoke(cli, ["serve", "--db", str(small_run[1]), "--host", "127.attacker.example"])
    assert r.exit_code == 2 and "token" in r.output.lower()


def test_sql_injection_through_run_ids_and_filters_returns_nothing(small_run, tmp_path):
    _, db = small_run
    res = ai.Results(db)
    with pytest.raises(ValueError, match="unknown column"):
        res.published(**{"1=1 UNION ALL SELECT * FROM person_results --": 1})
    with pytest.raises(LookupError):
        res.published(run_id="none' UNION ALL BY NAME SELECT * FROM person_results --")
    out = tmp_path / "x"
    r = CliRunner().invoke(cli, ["export", "--db", str(db), "--out", str(out),
                                 "--run-id", "none' UNION ALL BY NAME SELECT * FROM person_results --"])
    assert r.exit_code == 2 and not out.with_suffix(".csv").exists()
    assert "Traceback" not in r.output


def test_a_data_directory_whose_name_has_a_quote(small_world, tmp_path):
    import shutil
    d = tmp_path / "Nav's data"
    shutil.copytree(small_world, d)
    from arbeidsindikator.data.validate import validate
    validate(d)
    db = tmp_path / "o'k.duckdb"
    ai.run_indicator(d, db=db)
    assert ai.Results(db).runs().shape[0] == 1


def test_a_new_store_appears_only_with_its_first_run(small_world, tmp_path):
    db = tmp_path / "new.duckdb"
    with pytest.raises(RuntimeError, match="simulated"):
        ai.run_indicator(small_world, db=db, _fail_after_published=True)
    assert not db.exists()
    assert not list(tmp_path.glob(".new.duckdb*"))


def test_results_of_an_empty_store_say_so(tmp_path):
    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    with pytest.raises(LookupError, match="ingen kjøringer"):
        ai.Results(db).published()


def test_a_killed_run_leaves_no_working_directory_behind(small_world, tmp_path):
    """SIGKILL cannot be caught: the next run finds the directory by its dead owner and removes
    it. SIGTERM is caught: the run cleans up itself."""
    env = dict(os.environ, TMPDIR=str(tmp_path))
    code = ("import sys; from arbeidsindikator.cli import app; "
            "sys.argv = ['arbeidsindikator', 'run', '--data', sys.argv[1], '--db', sys.argv[2]]; app()")
    for sig in (signal.SIGKILL, signal.SIGTERM):
        p = subprocess.Popen([sys.executable, "-c", code, str(small_world), str(tmp_path / "r.duckdb")], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while not list(tmp_path.glob(f"{WORK_PREFIX}*/work.duckdb")) and time.time() < deadline:
            time.sleep(0.05)
        assert list(tmp_path.glob(f"{WORK_PREFIX}*")), "the run never started its work"
        p.send_signal(sig)
        p.wait(60)
        if sig == signal.SIGTERM:
            assert p.returncode != 0 and not list(tmp_path.glob(f"{WORK_PREFIX}*"))
        else:
            assert list(tmp_path.glob(f"{WORK_PREFIX}*"))  # left behind ...
            assert clean_stale_workdirs(tmp_path)  # ... and found by the next run
            assert not list(tmp_path.glob(f"{WORK_PREFIX}*"))
    assert not (tmp_path / "r.duckdb").exists()


def test_stale_temporary_stores_of_dead_processes_are_removed(tmp_path):
    from arbeidsindikator.pipeline.runs import remove_stale_temporaries
    db = tmp_path / "r.duckdb"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = [tmp_path / f".r.duckdb.{int(dead.stdout)}.0123abcd.tmp", tmp_path / ".r.duckdb.0123abcd.tmp",
             tmp_path / ".r.duckdb.0123abcd.tmp.wal"]
    live = [tmp_path / f".r.duckdb.{os.getpid()}.89abcdef.tmp", tmp_path / ".other.duckdb.0123abcd.tmp"]
    for p in stale + live:
        p.write_bytes(b"")
    assert sorted(remove_stale_temporaries(db)) == sorted(stale)
    assert all(p.exists() for p in live)


def test_a_termination_signal_during_the_commit_waits_and_the_run_is_reported_stored(small_world, tmp_path, monkeypatch):
    """SIGTERM while the run is committed: it is stored, reported as stored, then the command
    exits 143 (never 'cannot rollback - no transaction is active')."""
    from arbeidsindikator.pipeline import runs
    real = runs.deferred_signals

    @contextlib.contextmanager
    def signalled(caught):
        with real(caught):
            os.kill(os.getpid(), signal.SIGTERM)  # arrives at the worst moment: the commit is next
            yield
    monkeypatch.setattr(runs, "deferred_signals", signalled)
    db = tmp_path / "r.duckdb"
    for target in (db, db):
        r = CliRunner().invoke(cli, ["run", "--data", str(small_world), "--db", str(target)])
        assert r.exit_code == 128 + signal.SIGTERM, r.output
        assert "lagret" in r.output and "Uventet" not in r.output
    assert ai.Results(db).runs().shape[0] == 2
    assert not list(tmp_path.glob(".r.duckdb*"))


def test_text_that_a_spreadsheet_would_run_is_escaped_in_csv_exports(tmp_path):
    from arbeidsindikator.data.spreadsheet import escape_frame
    from arbeidsindikator.pipeline.publish import export
    con = duckdb.connect()
    names = ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tX", "Nav Øst", "Nav - Vest"]
    con.execute("CREATE TABLE t AS SELECT unnest(?) AS ORG_STED, -1.5 AS INDIKATOR", [names])
    csv, parquet = export(con, "SELECT * FROM t", tmp_path / "ut")
    got = pd.read_csv(csv, keep_default_na=False)
    assert got["ORG_STED"].tolist() == ["'" + n for n in names[:5]] + names[5:]
    assert (got["INDIKATOR"] == -1.5).all()  # numbers are numbers
    assert pd.read_parquet(parquet)["ORG_STED"].tolist() == names  # the data file keeps the values
    framed = escape_frame(pd.DataFrame({"a": names, "b": [-1] * len(names)}))
    assert framed["a"].str[0].tolist() == ["'"] * 5 + ["N", "N"] and framed["b"].eq(-1).all()


def test_a_unit_name_without_letters_gets_its_id_as_file_name():
    from arbeidsindikator.present.report import unit_slug
    assert unit_slug("Nav Øst-Viken", "0301", 3) == "nav-øst-viken"
    assert unit_slug("*** ", "0301", 3) == "enhet-0301"
    assert unit_slug("...", "", 2) == "enhet-2"


def test_an_index_of_change_from_a_level_near_zero_is_refused():
    from arbeidsindikator.pipeline.reading import ReadingRuleError, index_of_change
    months = pd.date_range("2020-01-01", periods=4, freq="MS")
    s = pd.DataFrame({"BEHOLDNINGSMAANED": months, "INDIKATOR": [-0.3, 0.1, 0.2, 0.4], "INDIKATOR_SE": 0.2,
                      "faktisk": 0.3002, "faktisk_SE": 0.05, "KOV_INDIKATOR_FAKTISK": 0.0})
    with pytest.raises(ReadingRuleError, match="null"):
        index_of_change(s, months[0])
    ok = index_of_change(s.assign(faktisk=20.0), months[0])
    assert ok["ENDRINGSINDEKS"].abs().max() < 5 and (ok["ENDRING_ENHET"] == "prosent").all()
    # where readers need a chart (API, dashboard, reports): the change in the indicator's unit instead
    diff = index_of_change(s, months[0], difference_near_zero=True)
    assert (diff["ENDRING_ENHET"] == "differanse").all()
    assert diff["ENDRINGSINDEKS"].tolist() == pytest.approx([0.0, 0.4, 0.5, 0.7])
    assert (diff["ENDRINGSINDEKS_KI_OVRE"] > diff["ENDRINGSINDEKS_KI_NEDRE"]).iloc[1:].all()
