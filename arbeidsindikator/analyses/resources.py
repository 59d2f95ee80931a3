"""Office resources (Dahl 2025): does sick leave and staffing move the indicator?

The analysis is run on an office x month panel built from a run's person-level results
(actual minus expected per person-month) and the office HR table:

- indicator: the weighted mean of the person-level indicator at the user's *home* office
  (NOE users are counted at the office of their municipality, as in the article), in
  percentage points for jobb* and weekly hours for atid*;
- sick leave: 100 x sick-leave hours / agreed hours of the office's state employees, in
  percentage points (so a coefficient reads "per percentage point of sick leave");
- staffing: agreed hours / persons under follow-up at the home office in the month (hours
  per user and month), for all users or for situasjonsbestemt + spesielt tilpasset only;
- weight: persons in the office-month with the outcome observed.

Offices are linked to HR month by month (the stock's home office is the one valid in the
month), so mergers and splits need no special handling; office-months whose HR record is
missing or inconsistent are excluded and listed with the reason, never silently dropped.

The regressions are weighted least squares with dense dummies for month fixed effects
(the panel is a few thousand rows, so this is exact and fast) and three standard-error
types: classical, heteroskedasticity-robust (HC1) and clustered by office (CR1), each with
the small-sample factors statsmodels uses, so results can be checked against it one to one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from scipy import stats

from .. import norsk
from ..pipeline.runs import latest_run_id
from ..data.validate import register_tables, validate

OUTCOMES = ("atid3", "atid12", "jobb3", "jobb12")
SE_TYPES = ("classical", "robust", "cluster")
SE_LABEL = {"classical": "klassiske (homoskedastiske)", "robust": "robuste (HC1)",
            "cluster": "klyngerobuste per kontor (CR1)"}
SAMPLES = {
    "sit_spes": ("Situasjonsbestemt og spesielt tilpasset innsats", ("situasjonsbestemt", "spesielt_tilpasset")),
    "alle": ("Alle brukere i indikatoren", None),
}
# the staffing variant that goes with each sample (users of the sample in the denominator)
STAFFING_OF_SAMPLE = {"sit_spes": "staffing_ss", "alle": "staffing_all"}


NEEDED_TABLES = ("stock", "municipalities", "office_hr", "offices")


class ResourcesError(ValueError):
    """The run or the data cannot give an office-resources panel (the message says why)."""


# ---------------------------------------------------------------------------------------
# the panel


@dataclass
class Panel:
    """Office x month x sample x outcome rows, plus what was excluded and why."""

    data: pd.DataFrame
    excluded: pd.DataFrame
    offices_with_structure_change: int = 0
    run_id: str = ""
    db: str = ""  # the results store (the published tables protect the national series)

    def sample(self, sample: str, outcome: str) -> pd.DataFrame:
        """Rows of one sample and outcome, with `staffing` the sample's variant and the
        outcome window's exposure as `sick_leave_window` / `staffing_window`."""
        d = self.data[(self.data["sample"] == sample) & (self.data["outcome"] == outcome)].copy()
        d["staffing"] = d[STAFFING_OF_SAMPLE[sample]]
        k = window_months(outcome)
        d["sick_leave_window"] = d[f"sick_leave_w{k}"]
        d["staffing_window"] = d[f"{STAFFING_OF_SAMPLE[sample]}_w{k}"]
        return d.reset_index(drop=True)


def window_months(outcome: str) -> int:
    """Months of the outcome window: 3 for atid3/jobb3, 12 for atid12/jobb12."""
    return 12 if outcome.endswith("12") else 3


def _window_means(om: pd.DataFrame, columns: list[str], k: int) -> pd.DataFrame:
    """Mean of each column over months t .. t+k-1 of the same office; missing unless all k
    months are there (a gap or an excluded month leaves the window undefined)."""
    out = []
    for office, g in om.groupby("office_id", sort=False):
        g = g.set_index("month")[columns]
        full = g.reindex(pd.date_range(g.index.min(), g.index.max(), freq="MS"))
        fwd = full[::-1].rolling(k, min_periods=k).mean()[::-1]
        fwd = fwd.loc[g.index]
        fwd.columns = [f"{c}_w{k}" for c in columns]
        out.append(fwd.assign(office_id=office).reset_index(names="month"))
    return pd.concat(out, ignore_index=True)


def _indicator_sql() -> tuple[str, list]:
    """The office-month indicator per sample and outcome, from a run's person rows (the run id
    and the samples' groups are bound as parameters; outcome names are the package's own)."""
    parts, args = [], []
    for s, (_, groups) in SAMPLES.items():
        where = "" if groups is None else "AND list_contains(?, innsatsgruppe)"
        for o in OUTCOMES:
            scale = 100.0 if o.startswith("jobb") else 1.0
            parts.append(f"""
                SELECT home_office_id AS office_id, month, ? AS sample, ? AS outcome,
                       count(indicator_{o}) AS persons, {scale} * avg(indicator_{o}) AS indicator
                FROM res.person_results WHERE run_id = ? AND indicator_{o} IS NOT NULL {where}
                GROUP BY ALL""")
            args += [s, o, None] + ([list(groups)] if groups is not None else [])
    return " UNION ALL ".join(parts), args


def office_month_panel(db: Path | str, data_dir: Path | str, run_id: str | None = None) -> Panel:
    """Build the office x month panel of a run that kept its person-level results."""
    con = duckdb.connect()
    try:
        con.execute("ATTACH ? AS res (READ_ONLY)", [Path(db).as_posix()])
        con.execute("USE res")
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'res'").fetchall()}
        if "runs" not in tables:
            raise ResourcesError(f"{db} har ingen kjøringer. Kjør først `arbeidsindikator run --person-level`.")
        rid = run_id or latest_run_id(con)
        if "person_results" not in tables or not con.execute(
                "SELECT count(*) FROM person_results WHERE run_id = ?", [rid]).fetchall()[0][0]:
            raise ResourcesError(
                f"Kjøringen {rid} har ikke resultater på personnivå, som kontorressursanalysen trenger. "
                "Kjør `arbeidsindikator run --person-level` (resultatene blir i resultatbasen, "
                "aldri i publiserte tabeller).")
        cols = {r[0] for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = 'res' AND table_name = 'person_results'").fetchall()}
        if "innsatsgruppe" not in cols:
            raise ResourcesError(f"Kjøringen {rid} er laget av en eldre versjon uten innsatsgruppe på personnivå; kjør på nytt.")
        con.execute("USE memory")
        # structural problems stop the analysis; HR value problems are warnings, handled below
        validate(data_dir, tables=list(NEEDED_TABLES))
        missing = set(NEEDED_TABLES) - set(register_tables(con, Path(data_dir), NEEDED_TABLES))
        if missing:
            raise ResourcesError(f"Mangler tabell(er) i {data_dir}: {', '.join(sorted(missing))}")
        sql, args = _indicator_sql()
        con.execute(f"CREATE TABLE ind AS {sql}", [rid if a is None else a for a in args])
        # persons under follow-up per home office and month (every innsatsgruppe, as the article)
        con.execute("""
            CREATE TABLE users AS
            SELECT m.office_id, s.month, count(*) AS users_all,
                   count(*) FILTER (WHERE s.innsatsgruppe IN ('situasjonsbestemt', 'spesielt_tilpasset')) AS users_ss
            FROM stock s JOIN municipalities m ON s.municipality_id = m.municipality_id
              AND s.month >= m.valid_from AND (m.valid_to IS NULL OR s.month <= m.valid_to)
            GROUP BY ALL""")
        om = con.execute("""
            SELECT i.office_id, i.month, any_value(h.agreed_hours) AS agreed_hours,
                   any_value(h.sick_leave_hours) AS sick_leave_hours, count(h.office_id) AS hr_rows,
                   any_value(u.users_all) AS users_all, any_value(u.users_ss) AS users_ss
            FROM (SELECT DISTINCT office_id, month FROM ind) i
            LEFT JOIN office_hr h USING (office_id, month)
            LEFT JOIN users u USING (office_id, month)
            GROUP BY ALL""").df()
        ind = con.execute("SELECT * FROM ind").df()
        changed = con.execute("""
            SELECT count(DISTINCT office_id) FROM offices
            WHERE office_type = 'lokalkontor' AND (successor_office_id IS NOT NULL
                  OR office_id IN (SELECT successor_office_id FROM offices WHERE successor_office_id IS NOT NULL))""").fetchall()[0][0]
    finally:
        con.close()
    om, excluded = _screen_hr(om)
    om["sick_leave"] = 100.0 * om["sick_leave_hours"] / om["agreed_hours"]
    om["staffing_all"] = om["agreed_hours"] / om["users_all"]
    om["staffing_ss"] = om["agreed_hours"] / om["users_ss"].where(om["users_ss"] > 0)
    om["month"] = pd.to_datetime(om["month"])
    resources = ["sick_leave", "staffing_all", "staffing_ss"]
    for k in (3, 12):
        om = om.merge(_window_means(om, resources, k), on=["office_id", "month"], how="left")
    ind["month"] = pd.to_datetime(ind["month"])
    keep = ["office_id", "month", *resources, "agreed_hours", "sick_leave_hours", "users_all", "users_ss"]
    keep += [f"{c}_w{k}" for k in (3, 12) for c in resources]
    data = ind.merge(om[keep], on=["office_id", "month"], how="inner")
    data = data[data["persons"] > 0].sort_values(["sample", "outcome", "month", "office_id"]).reset_index(drop=True)
    data["year"] = data["month"].dt.year
    return Panel(data, excluded, int(changed), rid, str(db))


EXCLUSION_RULES = {
    "mangler_hr": "ingen HR-registrering for kontoret i måneden",
    "dobbel_hr": "mer enn én HR-registrering for kontoret i måneden",
    "avtalte_timer_mangler": "avtalte timer mangler, er null eller negative",
    "sykefravaer_negativt": "sykefraværstimer mangler eller er negative",
    "sykefravaer_over_avtalt": "sykefraværstimer over avtalte timer",
    "ingen_brukere": "ingen brukere under oppfølging ved kontoret i måneden",
}


def _screen_hr(om: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split office-months into usable ones and excluded ones with the first rule they break."""
    a, s = om["agreed_hours"], om["sick_leave_hours"]
    checks = [
        ("mangler_hr", om["hr_rows"] == 0),
        ("dobbel_hr", om["hr_rows"] > 1),
        ("avtalte_timer_mangler", a.isna() | (a <= 0)),
        ("sykefravaer_negativt", s.isna() | (s < 0)),
        ("sykefravaer_over_avtalt", s > a),
        ("ingen_brukere", om["users_all"].fillna(0) <= 0),
    ]
    rule = pd.Series(pd.NA, index=om.index, dtype="object")
    for name, bad in checks:
        rule = rule.where(rule.notna() | ~bad.fillna(False), name)
    excluded = om.loc[rule.notna(), ["office_id", "month", "agreed_hours", "sick_leave_hours"]].copy()
    excluded.insert(2, "regel", rule[rule.notna()])
    excluded.insert(3, "forklaring", excluded["regel"].map(EXCLUSION_RULES))
    return om[rule.isna()].copy(), excluded.sort_values(["regel", "office_id", "month"]).reset_index(drop=True)


def exclusion_summary(excluded: pd.DataFrame) -> pd.DataFrame:
    """One row per rule: how many office-months, how many offices, and examples."""
    if excluded.empty:
        return pd.DataFrame(columns=["regel", "forklaring", "kontormaaneder", "kontorer", "eksempler"])
    g = excluded.groupby(["regel", "forklaring"], sort=False)
    out = g.agg(kontormaaneder=("office_id", "size"), kontorer=("office_id", "nunique")).reset_index()
    out["eksempler"] = [", ".join(f"{r.office_id} {pd.Timestamp(r.month):%Y-%m}" for r in grp.head(3).itertuples())
                        for _, grp in g]
    return out


# ---------------------------------------------------------------------------------------
# weighted least squares


@dataclass
class Fit:
    """A fitted WLS: coefficients, the covariance of every standard-error type (one fit
    gives them all), the type in use, and the usual summary numbers."""

    names: list[str]
    params: np.ndarray
    covs: dict[str, np.ndarray]
    se_type: str
    nobs: int
    df_resid: int
    r2: float
    r2_adj: float
    n_clusters: int | None = None

    def with_se(self, se_type: str) -> "Fit":
        """The same fit, reported with another standard-error type."""
        if se_type not in self.covs:
            raise ValueError(f"se_type must be one of {tuple(self.covs)}, not {se_type!r}")
        return replace(self, se_type=se_type)

    @property
    def cov(self) -> np.ndarray:
        return self.covs[self.se_type]

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    @property
    def df_inference(self) -> int:
        # t with G-1 degrees of freedom for clustered errors (as Stata); N-k otherwise
        return (self.n_clusters - 1) if self.se_type == "cluster" else self.df_resid

    def table(self, level: float = 0.95) -> pd.DataFrame:
        se = self.se
        t = self.params / se
        p = 2 * stats.t.sf(np.abs(t), self.df_inference)
        q = stats.t.ppf(0.5 + level / 2, self.df_inference)
        return pd.DataFrame({"variable": self.names, "coefficient": self.params, "std_err": se, "t": t, "p": p,
                             "ci_low": self.params - q * se, "ci_high": self.params + q * se})

    def coef(self, name: str) -> float:
        return float(self.params[self.names.index(name)])

    def stderr(self, name: str) -> float:
        return float(self.se[self.names.index(name)])


def design(df: pd.DataFrame, x: list[str], fe: str | None = None) -> tuple[np.ndarray, list[str]]:
    """Constant, the regressors and (if `fe`) dummies for every level of `fe` but the first."""
    cols = [np.ones(len(df))] + [df[c].to_numpy(float) for c in x]
    names = ["const"] + list(x)
    if fe is not None:
        codes, levels = pd.factorize(df[fe], sort=True)
        dummies = np.zeros((len(df), len(levels) - 1))
        rows = np.flatnonzero(codes > 0)
        dummies[rows, codes[rows] - 1] = 1.0
        cols.append(dummies)
        names += [f"{fe}[{v}]" for v in levels[1:]]
    return np.column_stack(cols), names


def wls(df: pd.DataFrame, y: str, x: list[str], weights: str = "persons", fe: str | None = "month",
        se_type: str = "cluster", cluster: str = "office_id") -> Fit:
    """Weighted least squares of `y` on `x` (+ fixed effects for `fe` as dummies).

    Standard errors follow statsmodels' conventions: classical s^2 (X'WX)^-1 with
    s^2 = sum w e^2 / (N - k); HC1 with N / (N - k); CR1 with G / (G - 1) * (N - 1) / (N - k).
    All three are computed (CR1 when `cluster` is a column); `se_type` picks the one reported.
    """
    if se_type not in SE_TYPES:
        raise ValueError(f"se_type must be one of {SE_TYPES}, not {se_type!r}")
    clustered = cluster in df.columns
    if se_type == "cluster" and not clustered:
        raise ValueError(f"no column {cluster!r} to cluster by")
    need = [y, weights, *x] + ([fe] if fe else []) + ([cluster] if clustered else [])
    d = df.dropna(subset=need)
    d = d[d[weights] > 0]
    X, names = design(d, x, fe)
    yv = d[y].to_numpy(float)
    w = d[weights].to_numpy(float)
    n, k = X.shape
    if n <= k:
        raise ValueError(f"too few observations ({n}) for {k} parameters")
    sw = np.sqrt(w)
    q, r = np.linalg.qr(X * sw[:, None])
    if np.min(np.abs(np.diag(r))) < 1e-10 * np.max(np.abs(np.diag(r))):
        raise ValueError("the regressors are collinear (check for a constant regressor or a fixed effect with one level)")
    beta = np.linalg.solve(r, q.T @ (yv * sw))
    e = yv - X @ beta
    r_inv = np.linalg.solve(r, np.eye(k))
    bread = r_inv @ r_inv.T  # (X'WX)^-1
    df_resid = n - k
    scores = X * (w * e)[:, None]
    covs = {"classical": bread * float(w @ (e * e)) / df_resid,
            "robust": bread @ (scores.T @ scores) @ bread * n / df_resid}
    n_clusters = None
    if clustered:
        codes, _ = pd.factorize(d[cluster])
        n_clusters = int(codes.max()) + 1
        s = np.zeros((n_clusters, k))
        np.add.at(s, codes, scores)
        covs["cluster"] = bread @ (s.T @ s) @ bread * n_clusters / (n_clusters - 1) * (n - 1) / df_resid
    ybar = np.average(yv, weights=w)
    r2 = 1 - float(w @ (e * e)) / float(w @ ((yv - ybar) ** 2))
    r2_adj = 1 - (1 - r2) * (n - 1) / df_resid
    return Fit(names, beta, covs, se_type, n, df_resid, r2, r2_adj, n_clusters)


# ---------------------------------------------------------------------------------------
# weighted quintiles and descriptive series


def weighted_quantile_groups(x: np.ndarray, w: np.ndarray, q: int = 5) -> np.ndarray:
    """Group 1..q for each observation so that each group holds 1/q of the weight.

    Observations are sorted by x; an observation goes to the group where the midpoint of its
    weight falls. Equal x values share their group (so groups hold 1/q up to ties)."""
    x = np.asarray(x, float)
    w = np.asarray(w, float)
    order = np.argsort(x, kind="stable")
    xs, ws = x[order], w[order]
    # midpoint of each distinct value's weight block
    uniq, start = np.unique(xs, return_index=True)
    block_w = np.add.reduceat(ws, start)
    cum_before = np.cumsum(block_w) - block_w
    mid = (cum_before + block_w / 2) / ws.sum()
    group_of_value = np.minimum(q, np.floor(mid * q).astype(int) + 1)
    out = np.empty(len(x), int)
    out[order] = group_of_value[np.searchsorted(uniq, xs)]
    return out


def quintile_table(d: pd.DataFrame, variable: str, se_type: str = "cluster", q: int = 5) -> pd.DataFrame:
    """Weighted quintiles of `variable`: share of weight, range and mean of the variable, and the
    weighted mean indicator with its standard error (from a WLS on the quintile dummies)."""
    d = d.dropna(subset=[variable, "indicator", "persons"]).copy()
    d["kvintil"] = weighted_quantile_groups(d[variable].to_numpy(), d["persons"].to_numpy(), q)
    rows = []
    for g, part in d.groupby("kvintil"):
        w = part["persons"].to_numpy(float)
        rows.append({"kvintil": int(g), "vektandel": w.sum() / d["persons"].sum(), "kontormaaneder": len(part),
                     "min": part[variable].min(), "max": part[variable].max(),
                     "snitt_variabel": np.average(part[variable], weights=w),
                     "snitt_indikator": np.average(part["indicator"], weights=w)})
    out = pd.DataFrame(rows)
    # SE of each quintile mean: WLS of the indicator on the quintile dummies (no constant)
    dummies = pd.get_dummies(d["kvintil"], prefix="k").astype(float)
    dd = pd.concat([d[["indicator", "persons", "office_id"]], dummies], axis=1)
    fit = wls(dd, "indicator", list(dummies.columns[1:]), fe=None, se_type=se_type)
    # mean of quintile j = const + b_j; its variance from the covariance
    se = [np.sqrt(fit.cov[0, 0])]
    for j in range(1, len(dummies.columns)):
        se.append(np.sqrt(fit.cov[0, 0] + fit.cov[j, j] + 2 * fit.cov[0, j]))
    out["se_indikator"] = se
    return out


PERSONS_ROUNDING = 100  # persons in a published series are rounded to this (never a small cell by difference)


def monthly_series(d: pd.DataFrame, variables: tuple[str, ...] = ("sick_leave", "staffing", "indicator"),
                   published_months: set | None = None) -> pd.DataFrame:
    """Weighted mean and standard deviation per month (weights = persons).

    The series is an output like the indicator's tables and protected with them: persons are
    rounded to PERSONS_ROUNDING, and the indicator's mean and spread are given only in
    `published_months` (where every national cell of the sample's groups is published: else the
    series minus a published group would give a suppressed one back)."""
    rows = []
    for m, part in d.groupby("month"):
        w = part["persons"].to_numpy(float)
        row = {"month": m, "kontorer": len(part),
               "personer_avrundet": int(PERSONS_ROUNDING * round(w.sum() / PERSONS_ROUNDING))}
        for v in variables:
            x = part[v].to_numpy(float)
            ok = ~np.isnan(x)
            mean = np.average(x[ok], weights=w[ok])
            row[f"{v}_snitt"] = mean
            row[f"{v}_sd"] = np.sqrt(np.average((x[ok] - mean) ** 2, weights=w[ok]))
            if v == "indicator" and published_months is not None and pd.Timestamp(m) not in published_months:
                row[f"{v}_snitt"] = row[f"{v}_sd"] = np.nan  # prikket
        rows.append(row)
    return pd.DataFrame(rows)


def published_months(db: Path | str, run_id: str, sample: str) -> dict[str, set]:
    """Per outcome, the months where every national cell of the sample's groups (or the national
    'Alle' cell) is published in the run: the months a national series of the sample may show."""
    groups = SAMPLES[sample][1]
    breakdown, groups = ("Alle", ["Alle"]) if groups is None else ("Innsatsgruppe", list(groups))
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("""SELECT UTFALL, BEHOLDNINGSMAANED FROM published WHERE run_id = ? AND ORG_NIVAA = 1
                              AND NEDBRYTNING = ? AND list_contains(?, GRUPPE)
                              GROUP BY ALL HAVING count(*) = ? AND bool_and(NOT PRIKKET)""",
                           [run_id, breakdown, groups, len(groups)]).fetchall()
    finally:
        con.close()
    out = {o: set() for o in OUTCOMES}
    for o, month in rows:
        out.setdefault(o, set()).add(pd.Timestamp(month))
    return out


# ---------------------------------------------------------------------------------------
# the article's tables and the per-year regressions


# The article relates the indicator of month t to the office's resources in month t. Users'
# outcomes depend on the resources while they are followed up, and monthly sick leave swings a
# lot, so a lasting change shows only partly in the same month's value. The "window" variant
# uses the office's average over the outcome window (t .. t+2 or t .. t+11) instead.
SPECS = {"maaned": ("sick_leave", "staffing"), "vindu": ("sick_leave_window", "staffing_window")}
SPEC_LABEL = {"maaned": "ressurser samme måned (som artikkelen)",
              "vindu": "ressurser i snitt over utfallsvinduet"}


def article_fits(panel: Panel, sample: str, se_type: str = "cluster", extra: list[str] | None = None,
                 spec: str = "maaned") -> dict:
    """{(outcome, with_month_fe): Fit} for the four outcomes, without and with month dummies."""
    x = [*SPECS[spec], *(extra or [])]
    return {(o, fe): wls(panel.sample(sample, o), "indicator", x, fe="month" if fe else None, se_type=se_type)
            for o in OUTCOMES for fe in (False, True)}


VARIABLE_LABEL = {
    "sick_leave": "Sykefravær (prosentpoeng)", "staffing": "Bemanning (timer per bruker per måned)",
    "sick_leave_window": "Sykefravær, snitt i utfallsvinduet (prosentpoeng)",
    "staffing_window": "Bemanning, snitt i utfallsvinduet (timer per bruker per måned)",
}


def _stars(p: float) -> str:
    return "***" if p < 0.01 else "**" if p < 0.05 else "*" if p < 0.1 else ""


def article_table(fits: dict) -> pd.DataFrame:
    """Shaped like Dahl's Tables 1 and 2: one column per outcome x (without, with) month dummies."""
    cols: dict = {}
    for (o, fe), f in fits.items():
        tab = f.table().set_index("variable")
        labels = {"const": "Konstant"} | {v: VARIABLE_LABEL.get(v, v) for v in f.names[1:] if not v.startswith("month[")}
        col = {}
        for v, label in labels.items():
            c, s, p = tab.loc[v, "coefficient"], tab.loc[v, "std_err"], tab.loc[v, "p"]
            col[label] = f"{norsk.significant(c, 4)}{_stars(p)}"
            col[f"  ({label}, SE)"] = f"({norsk.significant(s, 2)})"
        col["Månedsdummyer"] = "ja" if fe else "nei"
        col["Justert R²"] = norsk.number(f.r2_adj, 3)
        col["N (kontormåneder)"] = norsk.integer(f.nobs)
        cols[f"{o}{' FE' if fe else ''}"] = col
    return pd.DataFrame(cols)


def article_table_long(fits: dict, sample: str) -> pd.DataFrame:
    """The same numbers unrounded, one row per outcome x model x variable (for CSV)."""
    rows = []
    for (o, fe), f in fits.items():
        for r in f.table().itertuples():
            if r.variable.startswith("month["):
                continue
            rows.append({"utvalg": sample, "utfall": o, "maanedsdummyer": fe, "variabel": r.variable,
                         "koeffisient": r.coefficient, "standardfeil": r.std_err, "p": r.p,
                         "ki_nedre": r.ci_low, "ki_ovre": r.ci_high, "se_type": f.se_type,
                         "justert_r2": f.r2_adj, "r2": f.r2, "n": f.nobs, "klynger": f.n_clusters})
    return pd.DataFrame(rows)


def yearly_fits(panel: Panel, sample: str, outcome: str, se_type: str = "cluster") -> pd.DataFrame:
    """The regression per year (no month dummies, as the article): coefficient and 95% CI."""
    d = panel.sample(sample, outcome)
    rows = []
    for y, part in d.groupby("year"):
        if part["office_id"].nunique() < 10:
            continue
        f = wls(part, "indicator", ["sick_leave", "staffing"], fe=None, se_type=se_type)
        for r in f.table().itertuples():
            if r.variable != "const":
                rows.append({"aar": int(y), "utvalg": sample, "utfall": outcome, "variabel": r.variable,
                             "koeffisient": r.coefficient, "standardfeil": r.std_err,
                             "ki_nedre": r.ci_low, "ki_ovre": r.ci_high, "n": f.nobs})
    return pd.DataFrame(rows)


def se_type_comparison(panel: Panel, sample: str) -> pd.DataFrame:
    """The same month-FE estimates with each standard-error type, side by side."""
    rows = []
    for o in OUTCOMES:
        fit = wls(panel.sample(sample, o), "indicator", ["sick_leave", "staffing"], fe="month")
        for v in ("sick_leave", "staffing"):
            row = {"utfall": o, "variabel": v, "koeffisient": fit.coef(v)}
            for s in SE_TYPES:
                row[f"se_{s}"] = fit.with_se(s).stderr(v)
            rows.append(row)
    return pd.DataFrame(rows)


def true_effects(data_dir: Path | str) -> pd.DataFrame | None:
    """The synthetic world's true effects in the analysis' units (None for real data).

    truth/effects.parquet holds the average marginal effect of a persistent one-unit change
    (sick leave as a share, staffing in hours per user); here per percentage point of sick
    leave and per hour of staffing, in the indicator's units."""
    p = Path(data_dir) / "truth" / "effects.parquet"
    if not p.exists():
        return None
    t = pd.read_parquet(p)
    t = t[t["effect"].isin(["sick_leave", "staffing"])].copy()
    t["sann_effekt"] = np.where(t["effect"] == "sick_leave", t["outcome_scale"] / 100.0, t["outcome_scale"])
    return t.rename(columns={"effect": "variabel", "outcome": "utfall"})[["variabel", "utfall", "sann_effekt", "latent"]]

