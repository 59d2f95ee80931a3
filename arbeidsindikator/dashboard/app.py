"""The dashboard: a read-only JSON API over the published tables, and its front end.

Only published (aggregated, suppressed) tables are ever queried; no endpoint can reach
person-level rows, even if the results store holds them. Bound to 127.0.0.1 by default;
bound elsewhere it requires a token (Authorization: Bearer <token>, or ?token=).
"""

from __future__ import annotations

import hmac
from functools import lru_cache
from importlib import resources
from pathlib import Path

import duckdb
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from ..page import GROUP_LABEL, OUTCOME_LABEL
from ..runs import latest_run_id
from ..reading import ReadingRuleError, check_level_comparison, index_of_change
from ..shrinkage import funnel as funnel_data

OUTCOMES = ("atid3", "atid12", "jobb3", "jobb12")
SERIES_COLS = ["BEHOLDNINGSMAANED", "ANTALL_PERSONER", "faktisk", "forventet", "INDIKATOR", "INDIKATOR_KI_NEDRE",
               "INDIKATOR_KI_OVRE", "INDIKATOR_KRYMPET", "PRIKKET"]


def _records(df: pd.DataFrame) -> list[dict]:
    df = df.copy()
    for c in df.columns:
        if c in ("BEHOLDNINGSMAANED", "PERIODE_FRA", "PERIODE_TIL", "REFERANSEMAANED"):
            df[c] = pd.to_datetime(df[c]).dt.strftime("%Y-%m")
    return [{k: (None if (isinstance(v, float) and v != v) else v) for k, v in r.items()} for r in df.to_dict("records")]


def create_app(db: Path | str, token: str | None = None) -> FastAPI:
    db = Path(db)
    if not db.exists():
        raise FileNotFoundError(f"results database {db} does not exist")
    con = duckdb.connect(str(db), read_only=True)
    run_id = latest_run_id(con)
    if run_id is None:
        raise LookupError(f"{db} holds no runs")
    units = con.execute("""SELECT DISTINCT ORG_NIVAA AS level, ORG_STED_ID AS id, ORG_STED AS name, REGION_ID AS region
                           FROM published WHERE run_id = ? ORDER BY 1, 3""", [run_id]).df()
    by_id = {r.id: r for r in units.itertuples()}
    breakdowns = dict(con.execute("SELECT NEDBRYTNING, any_value(I_MODELLEN) FROM published WHERE run_id = ? GROUP BY 1",
                                  [run_id]).fetchall())
    group_rows = con.execute("SELECT DISTINCT NEDBRYTNING, GRUPPE FROM published WHERE run_id = ? ORDER BY 1, 2", [run_id]).fetchall()
    groups_of = {}
    for b, g in group_rows:
        groups_of.setdefault(b, []).append(g)
    periods = [r[0] for r in con.execute("SELECT DISTINCT PERIODE FROM published_period WHERE run_id = ? ORDER BY 1",
                                         [run_id]).fetchall()]

    def q(sql: str, args: list) -> pd.DataFrame:
        cur = con.cursor()  # one cursor per request: requests run concurrently
        try:
            return cur.execute(sql, args).df()
        finally:
            cur.close()

    def auth(request: Request):
        if token is None:
            return
        got = request.headers.get("authorization", "").removeprefix("Bearer ").strip() or request.query_params.get("token", "")
        if not hmac.compare_digest(got, token):
            raise HTTPException(401, "Mangler gyldig token (Authorization: Bearer <token>).")

    def unit_row(unit: str):
        r = by_id.get(unit)
        if r is None:
            match = units[units["name"] == unit]
            if match.empty:
                raise HTTPException(404, f"Ukjent enhet: {unit!r}. Se /api/units.")
            r = next(match.itertuples())
        return r

    def check_outcome(outcome: str):
        if outcome not in OUTCOMES:
            raise HTTPException(422, f"Ukjent utfall {outcome!r}; gyldige: {', '.join(OUTCOMES)}.")

    def check_breakdown(breakdown: str):
        if breakdown not in breakdowns:
            raise HTTPException(422, f"Ukjent nedbrytning {breakdown!r}; gyldige: {', '.join(breakdowns)}.")

    app = FastAPI(title="Arbeidsindikatoren", version="1", dependencies=[Depends(auth)],
                  description="Publiserte (aggregerte, prikkede) tall for arbeidsindikatoren. Ingen persondata.")

    @app.get("/api/meta")
    def meta():
        return {"run_id": run_id, "outcomes": [{"id": o, "label": OUTCOME_LABEL[o]} for o in OUTCOMES],
                "breakdowns": [{"name": b, "in_model": bool(v)} for b, v in breakdowns.items()],
                "groups": groups_of, "periods": periods, "group_labels": GROUP_LABEL}

    @app.get("/api/units")
    def list_units():
        return _records(units)

    @app.get("/api/series")
    def series(unit: str, outcome: str = "atid3", breakdown: str = "Alle", group: str = "Alle",
               start: str | None = Query(None, alias="from", pattern=r"^\d{4}-\d{2}$"),
               end: str | None = Query(None, alias="to", pattern=r"^\d{4}-\d{2}$")):
        """A unit's monthly series, with the region's and the country's indicator for comparison."""
        check_outcome(outcome)
        check_breakdown(breakdown)
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
        df = q(f"SELECT {', '.join(SERIES_COLS)} FROM published WHERE {where} ORDER BY BEHOLDNINGSMAANED", args)
        if df.empty:
            raise HTTPException(404, f"Ingen tall for {u.name}, {outcome}, {breakdown}={group}.")
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

    @app.get("/api/groups")
    def groups(unit: str, outcome: str = "atid3", breakdown: str = "Innsatsgruppe",
               month: str = Query(..., pattern=r"^\d{4}-\d{2}$")):
        """The groups of a breakdown side by side; refused (409) for breakdowns in the model."""
        check_outcome(outcome)
        check_breakdown(breakdown)
        u = unit_row(unit)
        try:
            check_level_comparison(breakdown, bool(breakdowns[breakdown]))
        except ReadingRuleError as e:
            raise HTTPException(409, str(e))
        df = q("""SELECT GRUPPE, ANTALL_PERSONER, faktisk, forventet, INDIKATOR, INDIKATOR_KI_NEDRE, INDIKATOR_KI_OVRE, PRIKKET
                  FROM published WHERE run_id = ? AND ORG_NIVAA = ? AND ORG_STED_ID = ? AND UTFALL = ? AND NEDBRYTNING = ?
                  AND BEHOLDNINGSMAANED = CAST(? AS DATE) ORDER BY GRUPPE""",
               [run_id, int(u.level), u.id, outcome, breakdown, f"{month}-01"])
        return _records(df)

    @app.get("/api/index")
    def index(unit: str, reference: str = Query(..., pattern=r"^\d{4}-\d{2}$"), outcome: str = "atid3",
              breakdown: str = "Alle", group: str = "Alle"):
        check_outcome(outcome)
        check_breakdown(breakdown)
        u = unit_row(unit)
        s = q("""SELECT BEHOLDNINGSMAANED, INDIKATOR, INDIKATOR_SE, faktisk, faktisk_SE, KOV_INDIKATOR_FAKTISK FROM published
                 WHERE run_id = ? AND ORG_NIVAA = ? AND ORG_STED_ID = ? AND UTFALL = ? AND NEDBRYTNING = ? AND GRUPPE = ?""",
              [run_id, int(u.level), u.id, outcome, breakdown, group])
        try:
            return _records(index_of_change(s, f"{reference}-01"))
        except LookupError as e:
            raise HTTPException(404, str(e))

    @app.get("/api/funnel")
    def funnel(outcome: str = "jobb3", period: str | None = None, level: int = Query(3, ge=2, le=3),
               region: str | None = None):
        check_outcome(outcome)
        period = period or (periods[-1] if periods else None)
        if period not in periods:
            raise HTTPException(422, f"Ukjent periode {period!r}; gyldige: {', '.join(periods)}.")
        cells = q("""SELECT ORG_STED, ORG_STED_ID, REGION_ID, ANTALL_PERSONER, INDIKATOR, INDIKATOR_SE, PRIKKET
                     FROM published_period WHERE run_id = ? AND PERIODE = ? AND ORG_NIVAA = ? AND UTFALL = ?
                     AND NEDBRYTNING = 'Alle'""", [run_id, period, level, outcome])
        if region:
            cells = cells[cells["REGION_ID"] == unit_row(region).id]
        return _records(funnel_data(cells))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def front_end():
        return resources.files("arbeidsindikator.dashboard").joinpath("index.html").read_text(encoding="utf-8")

    @app.get("/app.js", include_in_schema=False)
    def script():
        js = resources.files("arbeidsindikator.dashboard").joinpath("app.js").read_text(encoding="utf-8")
        return Response(js, media_type="text/javascript")

    return app


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")
