"""The HTML shell of the reports and the web page: one stylesheet, escaped text, tables and
CSV downloads in data: URIs. A page loads nothing from elsewhere and opens offline."""

from __future__ import annotations

import base64
import html

import pandas as pd

from ..data.spreadsheet import escape_frame

# inline figures come as a desktop and a phone version (charts.inline_svg); one is shown
FIGURE_CSS = (".fig-phone{display:none}"
              "@media (max-width:600px){.fig-wide{display:none}.fig-phone{display:block}}")
STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1060px;margin:2em auto;color:#222;padding:0 1em;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
h3{font-size:1em;margin-top:1.4em} p{max-width:80ch} figure{margin:.5em 0}
svg,img{max-width:100%;height:auto} .scroll{overflow-x:auto;max-width:100%} .scroll svg{max-width:none;width:100%} table{border-collapse:collapse;font-size:.9em;margin:.6em 0}
td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:right} th{background:#f6f6f6}
td:first-child,th:first-child{text-align:left}
.rule{background:#fff6e0;padding:.5em .8em;border-left:4px solid #e0a800}
.note{background:#eef4fa;padding:.5em .8em;border-left:4px solid #1f5f8b}
.meta{color:#555;font-size:.9em} a.csv{display:inline-block;margin:.3em 0;font-size:.9em}
@media (max-width:600px){body{margin:1em auto} td,th{padding:2px 4px;font-size:.85em}}
"""


def esc(text) -> str:
    return html.escape("" if text is None else str(text))


def csv_link(df: pd.DataFrame, name: str, label: str) -> str:
    data = base64.b64encode(escape_frame(df).to_csv(index=False).encode("utf-8")).decode("ascii")
    return f'<a class="csv" download="{esc(name)}.csv" href="data:text/csv;base64,{data}">Last ned {esc(label)} (CSV)</a>'


def table(header: list[str], rows: list[list[str]]) -> str:
    """A table of already formatted cells (escaped here)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<div class='scroll'><table><tr>{head}</tr>{body}</table></div>"  # a wide table scrolls in its box


def page(title: str, body: str, lead: str = "") -> str:
    return (f'<!doctype html><html lang="nb"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}{FIGURE_CSS}</style></head>'
            f"<body><h1>{esc(title)}</h1>{lead}{body}</body></html>")


def section(sid: str, title: str, text: str, content: str) -> str:
    return f'<section id="{esc(sid)}"><h2>{esc(title)}</h2>' + (f"<p>{esc(text)}</p>" if text else "") + content + "</section>"


__all__ = ["FIGURE_CSS", "STYLE", "csv_link", "esc", "page", "section", "table"]
