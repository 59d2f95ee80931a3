"""The dashboard: a read-only JSON API over the published tables, and its front end.

Only published (aggregated, suppressed) tables are ever queried; no endpoint can reach
person-level rows, even if the results store holds them. Every value goes into SQL as a bound
parameter, and every request parameter is checked first (a malformed one is a 422 with a
Norwegian message, never a 500).

Access. Bound to a loopback address it is open to the local machine. Bound elsewhere it
requires a token on every route, the API description included: API clients send
`Authorization: Bearer <token>`; a browser is asked for it by its own login dialogue (HTTP
Basic, any user name, the token as password), so the token never appears in a URL, a page or
a script. The page loads nothing from elsewhere and is served with a Content-Security-Policy
that allows only its own script and style; data is inserted as text, never as HTML.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import ipaddress
import re
import socket
from functools import lru_cache
from importlib import resources
from pathlib import Path

import duckdb
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ... import norsk
from ...pipeline.reading import ReadingRuleError, check_level_comparison, index_of_change
from ...pipeline.results import Results
from ...pipeline.runs import latest_run_id
from ...pipeline.shrinkage import funnel as funnel_data

OUTCOMES = ("atid3", "atid12", "jobb3", "jobb12")
SERIES_COLS = ["BEHOLDNINGSMAANED", "ANTALL_PERSONER", "faktisk", "forventet", "INDIKATOR", "INDIKATOR_KI_NEDRE",
               "INDIKATOR_KI_OVRE", "INDIKATOR_KRYMPET", "PRIKKET"]
MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])", re.ASCII)
MAX_TEXT = 200  # longest accepted text parameter
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
REALM = 'Basic realm="Arbeidsindikatoren", charset="UTF-8"'
UNIT = Query(..., description="Enhet: «Norge», en region eller et kontor (navn, uten hensyn til store og små bokstaver, eller id).")
OUTCOME = Query("atid3", description="Utfall: atid3 og atid12 (timer per uke), jobb3 og jobb12 (andel i jobb).")
BREAKDOWN = Query("Alle", description="Nedbrytning, for eksempel Alle, Innsatsgruppe eller Aldersgruppe (se /api/meta).")
GROUP = Query("Alle", description="Gruppe i nedbrytningen (se /api/meta).")


def _records(df: pd.DataFrame) -> list[dict]:
    df = df.copy()
    for c in df.columns:
        if c in ("BEHOLDNINGSMAANED", "PERIODE_FRA", "PERIODE_TIL", "REFERANSEMAANED", "FORSTE_MAANED", "SISTE_MAANED"):
            df[c] = pd.to_datetime(df[c]).dt.strftime("%Y-%m")
    return [{k: (None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v) for k, v in r.items()}
            for r in df.astype(object).to_dict("records")]


def month_param(value: str | None, name: str, required: bool = False) -> str | None:
    """A month parameter 'YYYY-MM' (ASCII digits, month 01-12, year 1900-2199)."""
    if value is None or value == "":
        if required:
            raise HTTPException(422, f"Parameteren «{name}» mangler; oppgi en måned som ÅÅÅÅ-MM, for eksempel 2023-06.")
        return None
    if not MONTH.fullmatch(value) or not 1900 <= int(value[:4]) <= 2199:
        raise HTTPException(422, f"Ugyldig måned i «{name}»: {value[:20]!r}. Bruk ÅÅÅÅ-MM, for eksempel 2023-06.")
    return value


def _text(value: str, name: str) -> str:
    if len(value) > MAX_TEXT or any(ord(ch) < 32 for ch in value):
        raise HTTPException(422, f"Ugyldig verdi i «{name}».")
    return value


def check_token(header: str, token: str) -> bool:
    """Bearer <token>, or Basic with the token as password, compared in constant time as bytes
    (the header's own bytes: HTTP headers arrive as latin-1, and a UTF-8 token is sent as its
    bytes; any other text is a valid attempt that simply fails)."""
    raw = header.encode("latin-1", "replace")
    got = b""
    if raw.startswith(b"Bearer "):
        got = raw[7:].strip()
    elif raw.startswith(b"Basic "):
        try:
            got = base64.b64decode(raw[6:].strip(), validate=True).partition(b":")[2]
        except (binascii.Error, ValueError):
            return False
    return hmac.compare_digest(got, token.encode("utf-8"))


def create_app(db: Path | str, token: str | None = None) -> FastAPI:
    db = Path(db)
    if not db.exists():
        raise FileNotFoundError(f"results database {db} does not exist")
    con = duckdb.connect(str(db), read_only=True)
    run_id = latest_run_id(con)
    if run_id is None:
        raise LookupError(f"{db} holds no runs")
    store = Results(db)
    units = store.units(run_id).rename(columns={"ORG_NIVAA": "level", "ORG_STED_ID": "id", "ORG_STED": "name",
                                                "REGION_ID": "region", "FORSTE_MAANED": "first", "SISTE_MAANED": "last",
                                                "NEDLAGT": "closed", "ETTERFOLGER_ID": "successor_id",
                                                "ETTERFOLGER": "successor"})
    units["closed"] = units["closed"].astype(bool)
    store.close()
    by_id = {r.id: r for r in units.itertuples()}
    by_name = {str(r.name).casefold(): r for r in units.itertuples()}
    from ...pipeline.versions import release_info, release_text
    release = release_info(con, run_id)
    release_line = release_text(release, run_id)
    has_final = bool(con.execute("SELECT count(*) FROM duckdb_columns() WHERE table_name = 'published' "
                                 "AND column_name = 'ENDELIG'").fetchall()[0][0])  # a store from before releases has none
    series_cols = SERIES_COLS + (["ENDELIG"] if has_final else [])
    breakdowns = dict(con.execute("SELECT NEDBRYTNING, any_value(I_MODELLEN) FROM published WHERE run_id = ? GROUP BY 1",
                                  [run_id]).fetchall())
    group_rows = con.execute("SELECT DISTINCT NEDBRYTNING, GRUPPE FROM published WHERE run_id = ? ORDER BY 1, 2", [run_id]).fetchall()
    groups_of = {}
    for b, g in group_rows:
        groups_of.setdefault(b, []).append(g)
    periods = [r[0] for r in con.execute("SELECT DISTINCT PERIODE FROM published_period WHERE run_id = ? ORDER BY 1",
                                         [run_id]).fetchall()]
    months = [pd.Timestamp(m) for m in con.execute("SELECT min(BEHOLDNINGSMAANED), max(BEHOLDNINGSMAANED) FROM published "
                                                   "WHERE run_id = ?", [run_id]).fetchall()[0]]

    reports: dict[str, str] = {}  # made once per unit: the published tables do not change while the app runs

    def q(sql: str, args: list) -> pd.DataFrame:
        cur = con.cursor()  # one cursor per request: requests run concurrently
        try:
            return cur.execute(sql, args).df()
        finally:
            cur.close()

    def auth(request: Request):
        if token is None:
            return
        if not check_token(request.headers.get("authorization", ""), token):
            raise HTTPException(401, "Mangler gyldig token (Authorization: Bearer <token>).",
                                headers={"WWW-Authenticate": REALM})

    def unit_row(unit: str):
        _text(unit, "unit")
        r = by_id.get(unit) or by_name.get(unit.casefold())
        if r is None:
            raise HTTPException(404, f"Ukjent enhet: {unit[:60]!r}. Se /api/units for gyldige enheter.")
        return r

    def check_outcome(outcome: str):
        if outcome not in OUTCOMES:
            raise HTTPException(422, f"Ukjent utfall {outcome[:40]!r}; gyldige: {', '.join(OUTCOMES)}.")

    def check_breakdown(breakdown: str, group: str | None = None):
        if breakdown not in breakdowns:
            raise HTTPException(422, f"Ukjent nedbrytning {breakdown[:40]!r}; gyldige: {', '.join(breakdowns)}.")
        if group is not None and group not in groups_of.get(breakdown, []):
            raise HTTPException(422, f"Ukjent gruppe {group[:40]!r} i «{breakdown}»; gyldige: "
                                     f"{', '.join(groups_of.get(breakdown, []))}.")

    app = FastAPI(title="Arbeidsindikatoren", version="1", dependencies=[Depends(auth)],
                  docs_url=None, redoc_url=None, openapi_url=None,
                  description="Publiserte (aggregerte, prikkede) tall for arbeidsindikatoren. Ingen persondata.")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        problems = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ())[1:]) or "forespørselen"
            problems.append(f"«{where}»: {_norwegian(e)}")
        return JSONResponse({"detail": "Ugyldig forespørsel: " + "; ".join(problems)}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # a safety net: never a traceback to the client
        return JSONResponse({"detail": "Noe gikk galt på tjeneren; forespørselen ble ikke besvart."}, status_code=500)

    @app.get("/api/meta", summary="Utfall, nedbrytninger, grupper og perioder i den publiserte kjøringen")
    def meta():
        return {"run_id": run_id, "release": release, "release_text": release_line,
                "outcomes": [{"id": o, "label": norsk.OUTCOME[o], "level_unit": norsk.LEVEL_UNIT[o],
                              "indicator_unit": norsk.INDICATOR_UNIT[o]} for o in OUTCOMES],
                "breakdowns": [{"name": b, "label": norsk.breakdown(b), "in_model": bool(v)} for b, v in breakdowns.items()],
                "groups": groups_of, "periods": periods,
                "group_labels": {g: norsk.group(g) for gs in groups_of.values() for g in gs},
                "months": [m.strftime("%Y-%m") for m in months]}

    @app.get("/api/units", summary="Enhetene: landet, regionene (med NOE) og kontorene")
    def list_units():
        return _records(units)

    @app.get("/api/series", summary="En enhets månedlige indikator med 95 % konfidensintervall, mot region og land")
    def series(unit: str = UNIT, outcome: str = OUTCOME, breakdown: str = BREAKDOWN, group: str = GROUP,
               start: str | None = Query(None, alias="from", description="Første måned, ÅÅÅÅ-MM."),
               end: str | None = Query(None, alias="to", description="Siste måned, ÅÅÅÅ-MM.")):
        # a unit's monthly series, with the region's and the country's indicator for comparison
        # (a comment, not a docstring: FastAPI would show a docstring in /docs, which is Norwegian)
        start = month_param(start, "from")
        end = month_param(end, "to")
        check_outcome(outcome)
        check_breakdown(breakdown, group)
        return cached_series(unit_row(unit).id, outcome, breakdown, group, start, end)

    @lru_cache(maxsize=4096)  # the published tables never change while the app runs
    def cached_series(unit_id, outcome, breakdown, group, start, end):
        u = by_id[unit_id]
        where = "run_id = ? AND ORG_NIVAA = ? AND ORG_STED_ID = ? AND UTFALL = ? AND NEDBRYTNING = ? AND GRUPPE = ?"
        args = [run_id, int(u.level), u.id, outcome, breakdown, group]
        if start:
            where += " AND BEHOLDNINGSMAANED >= CAST(? AS DATE)"
            args.append(f"{start}-01")
        if end:
            where += " AND BEHOLDNINGSMAANED <= CAST(? AS DATE)"
            args.append(f"{end}-01")
        df = q(f"SELECT {', '.join(series_cols)} FROM published WHERE {where} ORDER BY BEHOLDNINGSMAANED", args)
        if df.empty:
            raise HTTPException(404, f"Ingen tall for {u.name}, {outcome}, {breakdown}={group} i de valgte månedene.")
        compare = {}
        for lvl, uid in ((2, u.region if u.level == 3 else None), (1, "0000" if u.level > 1 else None)):
            if uid:
                c = q("""SELECT BEHOLDNINGSMAANED, INDIKATOR, ORG_STED FROM published WHERE run_id = ? AND ORG_NIVAA = ?
                         AND ORG_STED_ID = ? AND UTFALL = ? AND NEDBRYTNING = ? AND GRUPPE = ? ORDER BY 1""",
                      [run_id, lvl, uid, outcome, breakdown, group])
                if not c.empty:
                    compare[c["ORG_STED"].iloc[0]] = _records(c[["BEHOLDNINGSMAANED", "INDIKATOR"]])
        return {"unit": u.name, "level": int(u.level), "outcome": outcome, "breakdown": breakdown, "group": group,
                "in_model": bool(breakdowns[breakdown]), "rows": _records(df), "compare": compare}

    def comparable_groups(unit: str, outcome: str, breakdown: str):
        """The unit, after checking that the breakdown's group levels may be compared (409 if
        the breakdown is in the model: its groups each average zero)."""
        check_outcome(outcome)
        check_breakdown(breakdown)
        u = unit_row(unit)
        try:
            check_level_comparison(breakdown, bool(breakdowns[breakdown]))
        except ReadingRuleError as e:
            raise HTTPException(409, str(e))
        return u

    @app.get("/api/groups", summary="Gruppene i en nedbrytning side om side (avvises for nedbrytninger i modellen)")
    def groups(unit: str = UNIT, month: str | None = Query(None, description="Måned, ÅÅÅÅ-MM."), outcome: str = OUTCOME,
               breakdown: str = Query("Innsatsgruppe", description="Nedbrytning som ikke er med i modellen.")):
        # the groups of a breakdown side by side in a month; refused (409) for breakdowns in the model
        month = month_param(month, "month", required=True)
        u = comparable_groups(unit, outcome, breakdown)
        df = q("""SELECT GRUPPE, ANTALL_PERSONER, faktisk, forventet, INDIKATOR, INDIKATOR_KI_NEDRE, INDIKATOR_KI_OVRE, PRIKKET
                  FROM published WHERE run_id = ? AND ORG_NIVAA = ? AND ORG_STED_ID = ? AND UTFALL = ? AND NEDBRYTNING = ?
                  AND BEHOLDNINGSMAANED = CAST(? AS DATE) ORDER BY GRUPPE""",
               [run_id, int(u.level), u.id, outcome, breakdown, f"{month}-01"])
        return _records(df)

    @app.get("/api/index", summary="Endringsindeks fra en referansemåned, med 95 % konfidensintervall")
    def index(unit: str = UNIT, reference: str | None = Query(None, description="Referansemåned (indeks 0), ÅÅÅÅ-MM."),
              outcome: str = OUTCOME, breakdown: str = BREAKDOWN, group: str = GROUP):
        reference = month_param(reference, "reference", required=True)
        check_outcome(outcome)
        check_breakdown(breakdown, group)
        u = unit_row(unit)
        s = q("""SELECT BEHOLDNINGSMAANED, INDIKATOR, INDIKATOR_SE, faktisk, faktisk_SE, KOV_INDIKATOR_FAKTISK FROM published
                 WHERE run_id = ? AND ORG_NIVAA = ? AND ORG_STED_ID = ? AND UTFALL = ? AND NEDBRYTNING = ? AND GRUPPE = ?""",
              [run_id, int(u.level), u.id, outcome, breakdown, group])
        if s.empty:
            raise HTTPException(404, f"Ingen tall for {u.name}, {outcome}, {breakdown}={group}.")
        try:
            return _records(index_of_change(s, f"{reference}-01", difference_near_zero=True))
        except LookupError:
            raise HTTPException(404, f"Ingen publisert (uprikket) verdi for {u.name} i referansemåneden {reference}; "
                                     "velg en annen referansemåned.")

    @app.get("/api/funnel", summary="Traktplott: enhetene mot antall personer, med kontrollgrenser (ingen rangering)")
    def funnel(outcome: str = Query("jobb3", description="Utfall: atid3, atid12, jobb3 eller jobb12."),
               period: str | None = Query(None, description="Periode, for eksempel 2023 (standard: den siste)."),
               level: int = Query(3, description="2 regioner, 3 kontor."),
               region: str | None = Query(None, description="Bare kontorene i denne regionen (navn eller id).")):
        check_outcome(outcome)
        if level not in (2, 3):
            raise HTTPException(422, "«level» må være 2 (regioner) eller 3 (kontor).")
        period = period or (periods[-1] if periods else None)
        if period not in periods:
            raise HTTPException(422, f"Ukjent periode {str(period)[:40]!r}; gyldige: {', '.join(periods)}.")
        cells = q("""SELECT ORG_STED, ORG_STED_ID, REGION_ID, ANTALL_PERSONER, INDIKATOR, INDIKATOR_SE, PRIKKET
                     FROM published_period WHERE run_id = ? AND PERIODE = ? AND ORG_NIVAA = ? AND UTFALL = ?
                     AND NEDBRYTNING = 'Alle'""", [run_id, period, level, outcome])
        if region:
            cells = cells[cells["REGION_ID"] == unit_row(region).id]
        return _records(funnel_data(cells))

    @app.get("/api/years", summary="En enhets kalenderår (periodeceller) med 95 % konfidensintervall, mot region og land")
    def years(unit: str = UNIT, outcome: str = OUTCOME, breakdown: str = BREAKDOWN, group: str = GROUP):
        # the unit's calendar-year cells (each person's months clustered), with the region's and the country's
        check_outcome(outcome)
        check_breakdown(breakdown, group)
        u = unit_row(unit)
        out = {}
        for lvl, uid in ((int(u.level), u.id), (2, u.region if u.level == 3 else None), (1, "0000" if u.level > 1 else None)):
            if not uid:
                continue
            df = q("""SELECT PERIODE, ORG_STED, ANTALL_PERSONER, faktisk, forventet, INDIKATOR, INDIKATOR_KI_NEDRE,
                             INDIKATOR_KI_OVRE, PRIKKET FROM published_period WHERE run_id = ? AND ORG_NIVAA = ? AND ORG_STED_ID = ?
                      AND UTFALL = ? AND NEDBRYTNING = ? AND GRUPPE = ? AND length(PERIODE) = 4 ORDER BY PERIODE""",
                   [run_id, lvl, uid, outcome, breakdown, group])
            if not df.empty:
                out[str(df["ORG_STED"].iloc[0])] = _records(df.drop(columns="ORG_STED"))
        if not out:
            raise HTTPException(404, f"Ingen årstall for {u.name}, {outcome}, {breakdown}={group}.")
        return {"unit": u.name, "series": out}

    @app.get("/api/groups_period", summary="Gruppene i en nedbrytning side om side for en periode (avvises for "
                                           "nedbrytninger i modellen)")
    def groups_period(unit: str = UNIT, outcome: str = OUTCOME,
                      breakdown: str = Query("Innsatsgruppe", description="Nedbrytning som ikke er med i modellen."),
                      period: str | None = Query(None, description="Periode, for eksempel 2023 (standard: den siste).")):
        u = comparable_groups(unit, outcome, breakdown)
        period = period or (periods[-1] if periods else None)
        if period not in periods:
            raise HTTPException(422, f"Ukjent periode {str(period)[:40]!r}; gyldige: {', '.join(periods)}.")
        df = q("""SELECT GRUPPE, ANTALL_PERSONER, faktisk, forventet, INDIKATOR, INDIKATOR_KI_NEDRE, INDIKATOR_KI_OVRE, PRIKKET
                  FROM published_period WHERE run_id = ? AND ORG_NIVAA = ? AND ORG_STED_ID = ? AND UTFALL = ?
                  AND NEDBRYTNING = ? AND PERIODE = ? ORDER BY GRUPPE""", [run_id, int(u.level), u.id, outcome, breakdown, period])
        return _records(df)

    @app.get("/rapport", response_class=HTMLResponse, include_in_schema=False)
    def unit_report(unit: str = UNIT):
        """The unit's report (the same as `arbeidsindikator report`), made on request."""
        import tempfile

        from ..report import write_report
        u = unit_row(unit)
        if u.id not in reports:
            with tempfile.TemporaryDirectory(prefix="arbeidsindikator-rapport-") as d:
                reports[u.id] = write_report(db, u.id, Path(d)).read_text(encoding="utf-8")
        text = reports[u.id]
        # the report is a static page with inline styles and SVG, and no script
        return HTMLResponse(text, headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                           "img-src data:; frame-ancestors 'none'"})

    @app.get("/openapi.json", include_in_schema=False)
    def openapi():
        return app.openapi()

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs():
        return _api_page(app.openapi())

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def front_end():
        return resources.files("arbeidsindikator.present.dashboard").joinpath("index.html").read_text(encoding="utf-8")

    @app.get("/app.js", include_in_schema=False)
    def script():
        js = resources.files("arbeidsindikator.present.dashboard").joinpath("app.js").read_text(encoding="utf-8")
        return Response(js, media_type="text/javascript; charset=utf-8")

    @app.get("/app.css", include_in_schema=False)
    def style():
        css = resources.files("arbeidsindikator.present.dashboard").joinpath("app.css").read_text(encoding="utf-8")
        return Response(css, media_type="text/css; charset=utf-8")

    return app


def _norwegian(error: dict) -> str:
    kind = error.get("type", "")
    if kind == "missing":
        return "mangler"
    if kind.startswith("int"):
        return "må være et heltall"
    if kind.startswith("string"):
        return "ugyldig tekst"
    return "ugyldig verdi"


def _api_page(spec: dict) -> str:
    """The API description as a self-contained page (no scripts, nothing from elsewhere)."""
    rows = []
    for path, ops in spec.get("paths", {}).items():
        for method, op in ops.items():
            params = "".join(
                f"<li><code>{html.escape(p['name'])}</code>{' (påkrevd)' if p.get('required') else ''}"
                f"{': ' + html.escape(p['description']) if p.get('description') else ''}</li>"
                for p in op.get("parameters", []))
            rows.append(f"<h2><code>{method.upper()} {html.escape(path)}</code></h2><p>{html.escape(op.get('summary', ''))}</p>"
                        f"<p>{html.escape(op.get('description', '') or '')}</p><ul>{params}</ul>")
    return ("<!doctype html><html lang='nb'><head><meta charset='utf-8'><title>Arbeidsindikatoren: API</title>"
            "<link rel='stylesheet' href='app.css'></head><body><main><h1>Arbeidsindikatoren: API</h1>"
            f"<p>{html.escape(spec.get('info', {}).get('description', ''))} Maskinlesbar beskrivelse: "
            "<a href='openapi.json'>openapi.json</a>.</p>" + "".join(rows) + "</main></body></html>")


def is_loopback(host: str) -> bool:
    """True only if `host` is a loopback address, or a name every address of which is loopback
    (resolved; a name that does not resolve is not loopback)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError, OSError):
        return False
    addrs = {i[4][0] for i in infos}
    return bool(addrs) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs)
