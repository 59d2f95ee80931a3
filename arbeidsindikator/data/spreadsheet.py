"""Text cells that a spreadsheet would run as formulas (CSV injection).

A CSV cell that begins with =, +, -, @, a tab or a carriage return is a formula to Excel and
LibreOffice. As OWASP advises, such text cells get a leading apostrophe, which the spreadsheet
shows as text; numbers are never touched (a negative number is a number).
"""

from __future__ import annotations

import re

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SQL_PATTERN = "^[=+@\t\r-]"  # the same characters, for DuckDB's regexp_matches
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def escape_text(value):
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def escape_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of `df` whose text cells cannot start a formula."""
    text = [c for c in df.columns if df[c].dtype == object or isinstance(df[c].dtype, pd.StringDtype)]
    if not text:
        return df
    return df.assign(**{c: df[c].map(escape_text) for c in text})


def escape_sql(column: str) -> str:
    """A DuckDB expression for a VARCHAR column (a plain identifier, checked) with the same escaping."""
    if not _IDENTIFIER.match(column):
        raise ValueError(f"not a plain column name: {column!r}")
    pattern = SQL_PATTERN.replace("\t", "\\t").replace("\r", "\\r")
    return f"""CASE WHEN regexp_matches("{column}", '{pattern}') THEN '''' || "{column}" ELSE "{column}" END"""


__all__ = ["escape_frame", "escape_sql", "escape_text"]
