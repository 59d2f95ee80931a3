"""The model specification (TOML): outcomes, terms, estimation period, breakdowns.

Configuration is data: model variants are just other files. `load_spec` turns a file into a
`ModelSpec` and reports every problem at once (malformed TOML with its line, unknown term
kinds, columns that do not exist in the analysis table).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

TERM_KINDS = ("categorical", "bins", "deciles", "continuous")
SE_TYPES = ("classical", "robust", "cluster")
COUNT_MODES = ("skjult", "intervall")  # how counts of suppressed cells are published (suppression.py)


class ConfigError(Exception):
    def __init__(self, problems: list[str], source: str = ""):
        self.problems = problems
        where = f" in {source}" if source else ""
        super().__init__(f"{len(problems)} problem(s) with the model specification{where}; nothing was written.\n"
                         + "\n".join(f"- {p}" for p in problems))


@dataclass(frozen=True)
class Term:
    column: str
    kind: str
    label: str = ""
    breaks: tuple[float, ...] = ()
    reference: str | None = None


@dataclass(frozen=True)
class Breakdown:
    name: str
    column: str
    bins: tuple[float, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    name: str
    outcomes: tuple[str, ...]
    terms: tuple[Term, ...]
    breakdowns: tuple[Breakdown, ...] = ()
    description: str = ""
    period_from: str | None = None
    period_to: str | None = None
    exclude: dict = field(default_factory=dict)
    se_type: str = "robust"
    cluster: str | None = None  # clustered standard errors need it (the production model: person_id)
    cluster2: str | None = None  # second clustering level for the cells' model uncertainty
    weight: str | None = None
    min_persons: int = 10
    protection_share: float = 0.1  # room an attacker must be left around a suppressed sum, as a share of it
    attribute_k: int = 3  # a published cell has at least this many in work and not in work (disclosure.py)
    suppressed_counts: str = "skjult"  # counts of suppressed cells: 'skjult' (empty) or 'intervall' (a band)
    periods: tuple[tuple[str, str, str], ...] = ()  # extra published periods: (label, from, to)
    source_text: str = ""

    def in_model(self, breakdown: Breakdown) -> bool:
        """A breakdown is 'in the model' when its column is one of the model's columns."""
        return breakdown.column in {t.column for t in self.terms}

    def columns(self) -> set[str]:
        """Every column the specification names (the table needs these and no others)."""
        cols = {t.column for t in self.terms} | set(self.outcomes) | {b.column for b in self.breakdowns}
        cols |= set(self.exclude)
        if self.cluster:
            cols.add(self.cluster)
        if self.period_from or self.period_to:
            cols.add("month")
        if self.cluster2:
            cols.add(self.cluster2)
        if self.weight:
            cols.add(self.weight)
        return cols


def default_spec_text() -> str:
    return resources.files("arbeidsindikator.pipeline").joinpath("configs/default.toml").read_text()


def parse_spec(text: str, source: str = "") -> ModelSpec:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"malformed TOML: {e}"], source) from None
    problems = []
    m = raw.get("model")
    if not isinstance(m, dict):
        raise ConfigError(["missing [model] table"], source)
    outcomes = m.get("outcomes")
    if not outcomes or not isinstance(outcomes, list):
        problems.append("model.outcomes must be a non-empty list of outcome columns")
        outcomes = []
    terms = []
    for i, t in enumerate(m.get("terms", [])):
        kind = t.get("kind")
        if "column" not in t:
            problems.append(f"model.terms[{i}]: missing 'column'")
            continue
        if kind not in TERM_KINDS:
            problems.append(f"model.terms[{i}] ({t['column']}): kind must be one of {', '.join(TERM_KINDS)}, got {kind!r}")
            continue
        breaks = tuple(float(b) for b in t.get("breaks", []))
        if kind == "bins" and (not breaks or list(breaks) != sorted(set(breaks))):
            problems.append(f"model.terms[{i}] ({t['column']}): bins need strictly increasing 'breaks'")
        terms.append(Term(t["column"], kind, t.get("label", t["column"]), breaks,
                          None if t.get("reference") is None else str(t["reference"])))
    if not terms:
        problems.append("model.terms is empty: the model needs at least one term")
    cluster = m.get("cluster")
    if cluster is not None and (not isinstance(cluster, str) or not cluster):
        problems.append(f"model.cluster must be a column name, got {cluster!r}")
        cluster = None
    se = m.get("se_type", "cluster" if cluster else "robust")
    if se not in SE_TYPES:
        problems.append(f"model.se_type must be one of {', '.join(SE_TYPES)}, got {se!r}")
    elif se == "cluster" and not cluster:
        problems.append("model.se_type = 'cluster' needs model.cluster, the column that identifies a cluster (e.g. person_id)")
    period = m.get("estimation_period", {}) or {}
    for k in ("from", "to"):
        v = period.get(k)
        if v is not None and not _is_month(v):
            problems.append(f"model.estimation_period.{k} must look like 'YYYY-MM', got {v!r}")
    exclude = m.get("exclude", {}) or {}
    if not isinstance(exclude, dict) or not all(isinstance(v, list) for v in exclude.values()):
        problems.append("model.exclude must map a column to a list of values to leave out")
        exclude = {}
    breakdowns = tuple(Breakdown(b["name"], b["column"], tuple(float(x) for x in b.get("bins", [])))
                       for b in raw.get("breakdowns", []) if "name" in b and "column" in b)
    if any("name" not in b or "column" not in b for b in raw.get("breakdowns", [])):
        problems.append("every [[breakdowns]] entry needs 'name' and 'column'")
    publish = raw.get("publish", {}) or {}
    min_persons = publish.get("min_persons", 10)
    if not isinstance(min_persons, int) or isinstance(min_persons, bool) or min_persons < 1:
        problems.append(f"publish.min_persons must be a whole number of at least 1, got {min_persons!r}")
        min_persons = 10
    share = publish.get("protection_share", 0.1)
    if not isinstance(share, (int, float)) or isinstance(share, bool) or not 0 <= share <= 1:
        problems.append(f"publish.protection_share must be a number between 0 and 1, got {share!r}")
        share = 0.1
    attribute_k = publish.get("attributt_k", 3)
    if not isinstance(attribute_k, int) or isinstance(attribute_k, bool) or attribute_k < 1:
        problems.append(f"publish.attributt_k must be a whole number of at least 1, got {attribute_k!r}")
        attribute_k = 3
    counts = publish.get("counts", "skjult")
    if counts not in COUNT_MODES:
        problems.append(f"publish.counts must be one of {', '.join(COUNT_MODES)}, got {counts!r}")
    periods = []
    for i, per in enumerate(publish.get("periods", [])):
        a, b = per.get("from"), per.get("to")
        if not all(_is_month(v) for v in (a, b)) or a > b:
            problems.append(f"publish.periods[{i}] needs 'from' <= 'to', both like 'YYYY-MM', got {a!r}..{b!r}")
            continue
        periods.append((str(per.get("label", f"{a}--{b}")), a, b))
    if problems:
        raise ConfigError(problems, source)
    return ModelSpec(name=m.get("name", "model"), outcomes=tuple(outcomes), terms=tuple(terms),
                     breakdowns=breakdowns, description=m.get("description", ""),
                     period_from=period.get("from"), period_to=period.get("to"), exclude=exclude,
                     se_type=se, cluster=cluster, cluster2=m.get("cluster2"),
                     weight=m.get("weight"),
                     min_persons=min_persons, protection_share=float(share), attribute_k=attribute_k,
                     suppressed_counts=counts,
                     periods=tuple(periods), source_text=text)


def _is_month(v) -> bool:
    return isinstance(v, str) and re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", v) is not None


def load_spec(path: Path | str | None = None) -> ModelSpec:
    """Load a spec from a file (None: the packaged default)."""
    if path is None:
        return parse_spec(default_spec_text(), "default.toml")
    p = Path(path)
    if not p.exists():
        raise ConfigError([f"filen {p} finnes ikke"], str(p))
    return parse_spec(p.read_text(), str(p))


def check_columns(spec: ModelSpec, available: set[str], table: str = "analysis") -> None:
    """Every column the spec names must exist in the table the model reads."""
    missing = sorted(c for c in spec.columns() if c not in available)
    if missing:
        raise ConfigError([f"column {c!r} does not exist in the {table} table (available: {', '.join(sorted(available))})"
                           for c in missing])
