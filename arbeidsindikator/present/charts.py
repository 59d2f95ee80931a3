"""Charts for the reports and the web page, drawn once here in one style.

matplotlib with the Agg backend (no screen). Every chart: Norwegian tick labels (decimal
comma, a real minus), the zero line drawn and labelled, the unit on the y axis, legends below
the plot area (never over the data), titles that fit, and lines that break where a month is
suppressed instead of drawing straight across it. Figures are saved as SVG (inline in the
HTML, and as files for slides) and PNG, without dates in the files, so a rerun writes the same
bytes.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .. import norsk  # noqa: E402

COLOURS = ["#1f5f8b", "#d9822b", "#4b8b3b", "#8b3b7a", "#9aa01f", "#5b6f7b", "#c0392b", "#2c8c99"]  # no two oranges
UNIT_COLOUR, REGION_COLOUR, COUNTRY_COLOUR = "#1f5f8b", "#d9822b", "#555555"
plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "arbeidsindikator", "font.size": 9,
                     "axes.spines.top": False, "axes.spines.right": False, "axes.titlesize": 9.5,
                     "axes.titlelocation": "left", "legend.frameon": False, "figure.constrained_layout.use": True})
SVG_META = {"Creator": None, "Date": None, "Format": None, "Type": None}
PNG_META = {"Software": None}


def monthly(df: pd.DataFrame, columns: list[str], time: str = "BEHOLDNINGSMAANED") -> pd.DataFrame:
    """A unit's monthly rows on a complete month index, values NaN where the month is suppressed
    or missing, so lines and bands break there."""
    d = df.copy()
    d[time] = pd.to_datetime(d[time])
    if "PRIKKET" in d:
        d.loc[d["PRIKKET"].astype(bool), columns] = np.nan
    d = d.set_index(time)[columns]
    if d.empty:
        return d
    full = pd.date_range(d.index.min(), d.index.max(), freq="MS")
    return d.reindex(full)


def style_axis(ax, unit: str, decimals: int = 1, zero: bool = True, dates: bool = True, ticks: int = 5) -> None:
    """Norwegian ticks, a nice number of them, zero drawn and among the ticks, the unit as label."""
    ax.yaxis.set_major_locator(MaxNLocator(nbins=ticks, steps=[1, 2, 2.5, 5, 10]))
    ax.yaxis.set_major_formatter(norsk.axis_formatter(decimals))
    if zero:
        lo, hi = ax.get_ylim()
        ax.set_ylim(min(lo, 0), max(hi, 0))
        ax.axhline(0, color="#888", lw=0.8, zorder=1)
    ax.set_ylabel(unit)
    ax.grid(axis="y", color="#eee", lw=0.6)
    if dates:
        ax.xaxis.set_major_locator(mdates.YearLocator())
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))


def log_axis(ax) -> None:
    """A logarithmic x axis with plain Norwegian numbers (100, 200, 500, 1 000) for counts."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: norsk.integer(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def band_line(ax, frame: pd.DataFrame, value: str, lo: str, hi: str, colour: str, label: str, band: bool = True,
              **kw) -> None:
    if band and lo in frame and hi in frame:
        ax.fill_between(frame.index, frame[lo], frame[hi], color=colour, alpha=0.18, lw=0)
    ax.plot(frame.index, frame[value], color=colour, lw=kw.pop("lw", 1.5), label=label, **kw)


def legend_below(fig, axes, ncol: int = 4, extra: list | None = None) -> None:
    """One legend for the figure, below the plots, with each label once."""
    handles, labels, seen = [], [], set()
    for ax in np.atleast_1d(axes).ravel():
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in seen and not lab.startswith("_"):
                seen.add(lab)
                handles.append(h)
                labels.append(lab)
    for h, lab in extra or []:
        handles.append(h)
        labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(ncol, len(handles)), fontsize=8)


def ci_patch(colour: str = UNIT_COLOUR, label: str = "95 % konfidensintervall"):
    from matplotlib.patches import Patch
    return Patch(facecolor=colour, alpha=0.18, label=label), label


class Figures:
    """Collects charts: inline SVG for the page, SVG and PNG files for slides (under `dir`)."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def add(self, fig, name: str, alt: str) -> str:
        fig.savefig(self.dir / f"{name}.svg", metadata=SVG_META)
        fig.savefig(self.dir / f"{name}.png", dpi=150, metadata=PNG_META)
        return inline_svg(fig, name, alt)


# On a phone a desktop figure (7-12 in wide) shrinks to the screen and its 9 pt text to 4-5 px.
# Each inline figure therefore also comes in a phone version: PHONE_WIDTH wide with text at least
# PHONE_FONT pt, which on a 360 px column is at least 11 px; pages show one or the other by CSS
# (htmlpage.FIGURE_CSS). Panels side by side are stacked in the phone version.
PHONE_WIDTH = 3.6  # inches: 259 user units, shown on ~360 px
PHONE_FONT = 9.0  # pt
# (the CSS that picks one is htmlpage.FIGURE_CSS)


def _svg_text(fig, alt: str, prefix: str = "") -> str:
    import html
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata=SVG_META)
    s = buf.getvalue()
    svg = s[s.index("<svg"):]
    if prefix:  # the phone copy's ids must not clash with the desktop copy's on the same page
        svg = svg.replace('id="', f'id="{prefix}').replace("url(#", f"url(#{prefix}").replace('href="#', f'href="#{prefix}')
    return svg.replace("<svg ", f'<svg role="img" aria-label="{html.escape(alt)}" ', 1)


def _legend_columns(labels: list[str]) -> int:
    return 2 if max((len(x) for x in labels), default=0) <= 16 else 1


def _phone(fig) -> None:
    """Lay the figure out for a phone in place: panels stacked in one column (each with its own
    tick labels), legends in one column, every second year on a date axis, text at least
    PHONE_FONT."""
    from matplotlib.text import Text
    panels = [ax for ax in fig.axes if ax.get_subplotspec() is not None and ax.get_visible()]
    w, h = fig.get_size_inches()
    if len(panels) > 1:
        gs = fig.add_gridspec(len(panels), 1)
        for i, ax in enumerate(panels):
            ax.set_subplotspec(gs[i])
            ax.tick_params(labelleft=True, labelbottom=True)
        # small multiples (more than four panels) get lower panels, so the page stays short
        fig.set_size_inches(PHONE_WIDTH, (2.5 if len(panels) <= 4 else 1.9) * len(panels) + 0.8)
    else:
        fig.set_size_inches(PHONE_WIDTH, max(h, 2.8))
    for ax in panels:
        if isinstance(ax.xaxis.get_major_locator(), mdates.YearLocator):
            lo, hi = ax.get_xlim()
            if hi - lo > 5 * 365:
                ax.xaxis.set_major_locator(mdates.YearLocator(2))
        title = ax.get_title(loc="left")
        if len(title) > 44:  # a long title wraps instead of running off the edge
            ax.set_title(textwrap.fill(title, 44), loc="left")
    # a legend's columns are fixed when it is made: make it again, in one or two columns
    for leg in list(fig.legends):
        handles, labels = leg.legend_handles, [t.get_text() for t in leg.texts]
        leg.remove()
        ncol = _legend_columns(labels)
        fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=PHONE_FONT)
        w, h = fig.get_size_inches()
        fig.set_size_inches(w, h + 0.17 * -(-len(labels) // ncol))  # the legend's rows below the panels
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is not None and len(leg.texts) > 1:
            handles, labels = leg.legend_handles, [t.get_text() for t in leg.texts]
            ax.legend(handles, labels, ncol=_legend_columns(labels), fontsize=PHONE_FONT)
    for t in fig.findobj(Text):
        if t.get_text() and t.get_fontsize() < PHONE_FONT:
            t.set_fontsize(PHONE_FONT)


def inline_svg(fig, name: str, alt: str) -> str:
    wide = _svg_text(fig, alt)
    _phone(fig)
    phone = f'<div class="fig-phone">{_svg_text(fig, alt, "m-")}</div>'
    plt.close(fig)
    return f'<figure id="fig-{name}"><div class="fig-wide">{wide}</div>{phone}</figure>'


__all__ = ["COLOURS", "COUNTRY_COLOUR", "Figures", "REGION_COLOUR", "UNIT_COLOUR", "band_line", "ci_patch", "inline_svg",
           "legend_below", "log_axis", "monthly", "plt", "style_axis"]
