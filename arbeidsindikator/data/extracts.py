"""A register extract as it stood at the end of a month (issue 29): the monthly cycle on a world.

Nav's production reads the registers each month. The follow-up stock of month T is known at the
end of T; the a-ordning's employment arrives later (employers report by the 5th of the next
month, and corrections keep coming), so an extract taken at the end of T holds complete
employment only up to T minus a reporting lag (one month by default). `cut_extract` writes what
such an extract would hold from a full world: every monthly table to T (employment to T - lag),
offices and municipalities as known at T (a row that starts later is not there yet; an end date
after T is not known yet), and the extract table saying so. Person data, surveys and the world's
truth are copied as they are: the truth is the same whatever the extract.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb

from . import atomic
from .contract import TABLES
from .validate import table_file

MONTHLY = ("stock", "labour_market", "labour_market_measures", "office_hr", "programme_participation", "programme_places")
VALID = ("offices", "municipalities")


class ExtractError(ValueError):
    """A month outside the world, or a folder that is not a world."""


def _month(s: str) -> dt.date:
    try:
        y, m = (int(x) for x in s.split("-"))
        return dt.date(y, m, 1)
    except ValueError:
        raise ExtractError(f"{s!r} er ikke en måned (ÅÅÅÅ-MM)") from None


def _minus(d: dt.date, months: int) -> dt.date:
    k = d.year * 12 + d.month - 1 - months
    return dt.date(k // 12, k % 12 + 1, 1)


def cut_extract(world: Path | str, out: Path | str, as_of: str, lag: int = 1) -> Path:
    """Write the extract of `world` at the end of month `as_of` to `out` (replaced whole)."""
    world, t = Path(world), _month(as_of)
    if table_file(world, "stock") is None or table_file(world, "extract") is None:
        raise ExtractError(f"{world} er ikke en verden (mangler stock eller extract)")
    if not 0 <= lag <= 12:
        raise ExtractError(f"forsinkelsen må være 0-12 måneder, ikke {lag}")
    con = duckdb.connect()
    def reader(name):
        return "read_parquet" if table_file(world, name).suffix == ".parquet" else "read_csv_auto"
    first, last, observed = con.execute(
        f"SELECT min(month), max(month), (SELECT max(employment_observed_to) FROM {reader('extract')}(?)) "
        f"FROM {reader('stock')}(?)",
        [table_file(world, "extract").as_posix(), table_file(world, "stock").as_posix()]).fetchall()[0]
    if not first <= t <= last:
        raise ExtractError(f"{as_of} er utenfor verdens bestand ({first:%Y-%m} til {last:%Y-%m})")
    employment_to = min(_minus(t, lag), observed)
    with atomic.directory(out) as tmp:
        for name in TABLES:
            src = table_file(world, name)
            if src is None:
                continue
            dst = (tmp / f"{name}.parquet").as_posix()
            path = src.as_posix()
            read = "read_parquet" if src.suffix == ".parquet" else "read_csv_auto"
            if name in MONTHLY or name == "employment":
                to = employment_to if name == "employment" else t
                con.execute(f"COPY (SELECT * FROM {read}(?) WHERE month <= ?) TO '{_esc(dst)}' (FORMAT parquet)",
                            [path, to])
            elif name in VALID:
                con.execute(f"""COPY (SELECT * REPLACE (CASE WHEN valid_to > ? THEN NULL ELSE valid_to END AS valid_to)
                                      FROM {read}(?) WHERE valid_from IS NULL OR valid_from <= ?)
                                TO '{_esc(dst)}' (FORMAT parquet)""", [t, path, t])
            elif name == "extract":
                con.execute(f"""COPY (SELECT ?::DATE AS employment_observed_to, ? AS description)
                                TO '{_esc(dst)}' (FORMAT parquet)""",
                            [employment_to, f"Uttrekk per utgangen av {t:%Y-%m} (arbeidstimer til {employment_to:%Y-%m}, "
                                            f"{lag} måneds forsinkelse) fra {world.name}"])
            else:
                shutil.copy2(src, tmp / src.name)
        if (world / "truth").is_dir():
            shutil.copytree(world / "truth", tmp / "truth")
    con.close()
    return Path(out)


def _esc(path: str) -> str:
    """A file name inside a COPY statement (COPY cannot bind its target): quotes doubled."""
    return path.replace("'", "''")


__all__ = ["ExtractError", "MONTHLY", "cut_extract"]
