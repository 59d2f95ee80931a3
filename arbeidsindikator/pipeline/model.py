"""The indicator model: one (weighted) OLS per outcome from accumulated sufficient statistics.

The design is built in SQL: every term becomes a small integer code (categorical levels,
bins, deciles) or a numeric column. Arrow record batches of codes stream out of the
database and are reduced to X'WX, X'Wy and per-person score sums with `np.bincount`, never
a dense one-hot matrix, so memory does not grow with the number of rows and the same
reduction runs per partition on Spark (sum per partition, then add). The second, clustered
pass also writes each row's actual, expected and indicator values (the person rows) while it
streams, with any columns the caller asks it to carry along (the cell codes, in the run).

    model = IndicatorModel(spec).fit(con, "analysis")
    model.results_["jobb3"].params, .std_errors("cluster"), .summary()

Collinear columns and levels without observations are dropped with a note (never a crash);
their coefficients are reported as missing.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import norsk
from .batches import BATCH_ROWS, _q, is_spark, reduce_batches, stream_to_table, whole_clusters
from .config import ModelSpec
from .design import SQL_INT, _sql_literal, code_terms, code_type, term_arrays
from .fitresult import FitResult
from .gram import Layout, _RowSets, _select_columns


class IndicatorModel:
    """Configure with a ModelSpec, `fit` on a table in a DuckDB connection, then `predict`."""

    def __init__(self, spec: ModelSpec, batch_rows: int = BATCH_ROWS):
        self.spec = spec
        self.batch_rows = batch_rows
        # what the table offers, decided by fit: a month column, and the spec's cluster column
        self.has_month_ = True
        self.cluster_ = spec.cluster

    # -- SQL ------------------------------------------------------------------------------
    def population_where(self) -> str:
        parts = ["TRUE"]
        for col, values in self.spec.exclude.items():
            vals = ", ".join(_sql_literal(v) for v in values)
            parts.append(f"coalesce(CAST({_q(col)} AS STRING), '') NOT IN ({vals})")
        return " AND ".join(parts)

    def period_where(self) -> str:
        """The estimation period (the spec's months are checked 'YYYY-MM' by parse_spec)."""
        parts = []
        if self.spec.period_from:
            parts.append(f"month >= DATE '{self.spec.period_from}-01'")
        if self.spec.period_to:
            parts.append(f"month <= DATE '{self.spec.period_to}-01'")
        return " AND ".join(parts) or "TRUE"

    def complete_sql(self) -> str:
        """A row is complete when no term, weight or cluster value is missing (NULL, or NaN
        for numbers). Incomplete rows are left out of the estimation (listwise, counted and
        reported in the notes), never filled in."""
        parts = []
        for t in self.spec.terms:
            col = _q(t.column)
            parts.append(f"{col} IS NOT NULL")
            if t.kind != "categorical":
                parts.append(f"NOT isnan(CAST({col} AS DOUBLE))")
        if self.spec.weight:
            w = _q(self.spec.weight)
            parts.append(f"{w} IS NOT NULL AND NOT isnan(CAST({w} AS DOUBLE))")
        if getattr(self, "cluster_", None):
            parts.append(f"{_q(self.cluster_)} IS NOT NULL")
        return " AND ".join(parts) or "TRUE"

    def missing_counts(self, con, table: str) -> dict[str, dict[str, int]]:
        """Per outcome, the rows of the estimation sample with an observed outcome left out for
        a missing value, per column (a row can lack several)."""
        cols = [t.column for t in self.spec.terms if t.kind != "categorical"]
        checks = {t.column: f"{_q(t.column)} IS NULL" + (f" OR isnan(CAST({_q(t.column)} AS DOUBLE))" if t.column in cols else "")
                  for t in self.spec.terms}
        if self.spec.weight:
            checks[self.spec.weight] = f"{_q(self.spec.weight)} IS NULL OR isnan(CAST({_q(self.spec.weight)} AS DOUBLE))"
        if getattr(self, "cluster_", None):
            checks[self.cluster_] = f"{_q(self.cluster_)} IS NULL"
        exprs, keys = [], []
        for o in self.spec.outcomes:
            obs = f"{_q(o)} IS NOT NULL AND NOT isnan(CAST({_q(o)} AS DOUBLE))"
            exprs.append(f"count(*) FILTER (WHERE {obs} AND NOT ({self.complete_sql()}))")
            keys.append((o, None))
            for c, e in checks.items():
                exprs.append(f"count(*) FILTER (WHERE {obs} AND ({e}))")
                keys.append((o, c))
        row = con.execute(f"SELECT {', '.join(exprs)} FROM {table} WHERE {self.population_where()} "
                          f"AND {self.period_where()}").fetchall()[0]
        out = {o: {} for o in self.spec.outcomes}
        for (o, c), v in zip(keys, row):
            out[o]["*" if c is None else c] = int(v or 0)
        return out

    def design_sql(self, table: str, ordered: bool = True, carried: bool = False) -> str:
        """The rows the model reads; `carried`: with the columns that its person rows carry along."""
        cluster = f"{_q(self.cluster_)}" if self.cluster_ else "CAST(NULL AS BIGINT)"
        month = "month" if self.has_month_ else "CAST(NULL AS DATE)"
        cols = [f"{cluster} AS __cluster", f"{month} AS __month",
                f"({self.period_where()}) AND ({self.complete_sql()}) AS __est", f"({self.complete_sql()}) AS __ok"]
        if carried:
            cols += [f"{expr} AS {name}" for name, expr in self.carry_.items()]
        # codes in their smallest type: the clustered pass sorts these rows, and at national
        # scale four-byte codes were a third of what the sort moves
        for (name, t), c in zip(self.design_types().items(), self.codings_):
            cols.append(f"CAST({c.sql} AS {SQL_INT[t]}) AS {name}" if c.is_coded else f"{c.sql} AS {name}")
        if self.spec.cluster2:
            cols.append(f"{self.cluster2_sql_} AS __cluster2")
        for o in self.spec.outcomes:
            cols.append(f"CAST({_q(o)} AS DOUBLE) AS __y_{o}")
        if self.spec.weight:  # unweighted: no column of ones to sort and stream (see _arrays)
            cols.append(f"CAST({_q(self.spec.weight)} AS DOUBLE) AS __w")
        return (f"SELECT {', '.join(cols)} FROM {table} WHERE {self.population_where()}"
                + (" ORDER BY __cluster, __month" if ordered and self.cluster_ else ""))

    # -- batches --------------------------------------------------------------------------
    def _arrays(self, batch: pa.RecordBatch):
        codes, conts = term_arrays(self.codings_, batch)
        ys = {o: batch.column(f"__y_{o}").to_numpy(zero_copy_only=False).astype(float, copy=False) for o in self.spec.outcomes}
        w = (batch.column("__w").to_numpy(zero_copy_only=False).astype(float, copy=False) if self.spec.weight
             else np.ones(batch.num_rows))
        est = batch.column("__est").to_numpy(zero_copy_only=False).astype(bool, copy=False)
        return codes, conts, ys, w, est

    def design_columns(self, codes, conts) -> dict[str, np.ndarray]:
        """The rows' design as the model coded it, columns __t0, __t1, ... (a missing level in
        the term's 'unseen' slot), in the types of `design_types`. They travel with the
        person rows, so the cells' model variance needs no second pass over the analysis table."""
        codes, conts = iter(codes), iter(conts)
        return {name: (next(codes).astype(t) if c.is_coded else next(conts))
                for (name, t), c in zip(self.design_types().items(), self.codings_)}

    def design_types(self) -> dict[str, type]:
        return {f"__t{i}": code_type(len(c.levels) + 1) if c.is_coded else np.float64 for i, c in enumerate(self.codings_)}

    def person_row_columns(self) -> dict[str, str | type]:
        """The person rows' columns in order: a design query column (its type kept) or a numpy type."""
        return {"person_id": "__cluster", "month": "__month", **{c: c for c in self.carry_}, **self.design_types(),
                **{f"{k}_{o}": np.float64 for o in self.spec.outcomes for k in ("actual", "expected", "indicator")}}

    def _moment_sums(self, batches) -> dict:
        """X'WX, X'Wy, y'Wy, n and the sum of weights per outcome over some batches (all rows,
        or one Spark partition: the sums of the partitions add up to the same)."""
        layout, outs, p = self.layout_, self.spec.outcomes, self.layout_.p
        acc = {"xtx": {o: np.zeros((p, p)) for o in outs}, "xty": {o: np.zeros(p) for o in outs},
               "yy": dict.fromkeys(outs, 0.0), "n": dict.fromkeys(outs, 0), "sw": dict.fromkeys(outs, 0.0)}
        for batch in batches:
            codes, conts, ys, w, est = self._arrays(batch)
            rows = _RowSets(layout, codes, conts)
            grams = {}
            for o in outs:
                m = est & ~np.isnan(ys[o])
                cm, xm, joint = rows.get(m)
                key = m.tobytes()
                if key not in grams:  # outcomes observed on the same rows share X'WX
                    grams[key] = layout.gram(cm, xm, w[m], joint)
                acc["xtx"][o] += grams[key]
                acc["xty"][o] += layout.cross(cm, xm, w[m] * ys[o][m], joint)
                acc["yy"][o] += float((w[m] * ys[o][m] ** 2).sum())
                acc["n"][o] += int(m.sum())
                acc["sw"][o] += float(w[m].sum())
        return acc

    def _meat_acc(self) -> dict:
        outs, p = self.spec.outcomes, self.layout_.p
        return {"hc": {o: np.zeros((p, p)) for o in outs},
                "cl": {o: np.zeros((len(self.kept_[o]), len(self.kept_[o]))) for o in outs},
                "s2": {o: np.zeros((getattr(self, "n_cluster2_", 0), p)) for o in outs},
                "rss": dict.fromkeys(outs, 0.0), "n_clusters": dict.fromkeys(outs, 0)}

    def _meat_pass(self, batches, acc: dict, person_rows: bool):
        """Add the residual sums of squares and the meat of the robust, person-clustered and
        second-level clustered covariances of batches whose rows come in cluster order (a
        cluster may span batches but not partitions) to `acc`; with `person_rows`, yield each
        batch's person rows (`_person_rows`) as it is done."""
        layout, outs = self.layout_, self.spec.outcomes
        for b in (whole_clusters(batches) if self.cluster_ else batches):
            codes, conts, ys, w, est = self._arrays(b)
            rows = _RowSets(layout, codes, conts)
            if self.cluster_:
                cid = b.column("__cluster").to_numpy(zero_copy_only=False)
                g = np.concatenate([[0], np.cumsum(cid[1:] != cid[:-1])])  # clusters numbered by run length
            else:  # no cluster column: every row its own (the clustered covariance is then not reported)
                g = np.arange(b.num_rows)
            ng = int(g.max()) + 1
            yhat = {o: layout.predict(self.beta_full_[o], codes, conts) for o in outs}
            for o in outs:
                m = est & ~np.isnan(ys[o])
                if not m.any():
                    continue
                e = ys[o][m] - yhat[o][m]
                wm = w[m]
                acc["rss"][o] += float((wm * e * e).sum())
                cm, xm, joint = rows.get(m)
                acc["hc"][o] += layout.gram(cm, xm, wm * wm * e * e, joint)
                gm = g[m]
                s = layout.cluster_scores(gm, ng, cm, xm, wm * e)  # clusters without rows here: zero
                acc["cl"][o] += (s.T @ s)[np.ix_(self.kept_[o], self.kept_[o])]
                acc["n_clusters"][o] += int(np.count_nonzero(np.bincount(gm, minlength=ng)))
                if self.spec.cluster2:
                    c2 = b.column("__cluster2").to_numpy(zero_copy_only=False).astype(np.int64)[m]
                    acc["s2"][o] += layout.cluster_scores(c2, self.n_cluster2_, cm, xm, wm * e)
            if person_rows:
                yield self._person_rows(b, codes, conts, yhat)

    def _meat_sums(self, batches) -> dict:
        """The sums of `_meat_pass` over some batches (all rows, or one Spark partition)."""
        acc = self._meat_acc()
        for _ in self._meat_pass(batches, acc, person_rows=False):
            pass
        return acc

    def _person_rows(self, b: pa.RecordBatch, codes, conts, yhat: dict | None = None) -> pa.RecordBatch:
        """A batch's person rows: person_id, month, the carried columns, the design as coded
        (design_columns), and per outcome the actual value (NULL where not observed), the
        expected value and the indicator, actual minus expected."""
        cols = {out: b.column(src) for out, src in self.person_row_columns().items() if isinstance(src, str)}
        cols |= {k: pa.array(v) for k, v in self.design_columns(codes, conts).items()}
        ok = b.column("__ok").to_numpy(zero_copy_only=False).astype(bool)
        for o in self.spec.outcomes:
            actual = b.column(f"__y_{o}")
            pred = yhat[o] if yhat else self.layout_.predict(self.beta_full_[o], codes, conts)
            expected = pa.array(np.where(ok, pred, np.nan), from_pandas=True)
            cols |= {f"actual_{o}": actual, f"expected_{o}": expected, f"indicator_{o}": pc.subtract(actual, expected)}
        return pa.RecordBatch.from_pydict({c: cols[c] for c in self.person_row_columns()})  # Spark's schema order

    def _person_row_batches(self, batches):
        """The person rows of batches in any order (Spark writes them per partition)."""
        for b in batches:
            codes, conts = term_arrays(self.codings_, b)
            yield self._person_rows(b, codes, conts)

    # -- fit ------------------------------------------------------------------------------
    def fit(self, con: duckdb.DuckDBPyConnection, table: str = "analysis", predictions_table: str | None = "predictions",
            progress=None, carry: dict[str, str] | None = None) -> "IndicatorModel":
        """Estimate every outcome; optionally write the person rows to `predictions_table`: per
        row of the population the actual, expected and indicator value of every outcome, the
        design as coded, and the columns `carry` ({name: SQL expression over `table`}).

        `con` is a DuckDB connection, or the Spark engine (spark.SparkConnection): there the
        same sums are computed per partition on the executors and added on the driver."""
        self.carry_ = dict(carry or {})
        have = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {table}").fetchall()}
        self.has_month_ = "month" in have
        self.cluster_ = self.spec.cluster if self.spec.cluster in have else None
        self.missing_ = self.missing_counts(con, table)
        est_where = f"{self.population_where()} AND {self.period_where()} AND {self.complete_sql()}"
        self.codings_ = code_terms(self.spec, con, table, est_where)
        if self.spec.cluster2:  # e.g. commuting region: the level at which the labour market varies
            levels = [r[0] for r in con.execute(f"SELECT DISTINCT CAST({_q(self.spec.cluster2)} AS STRING) FROM {table} "
                                                f"WHERE {self.population_where()} ORDER BY 1").fetchall()]
            cases = " ".join(f"WHEN {_sql_literal(v)} THEN {i}" for i, v in enumerate(levels))
            self.cluster2_sql_ = f"(CASE CAST({_q(self.spec.cluster2)} AS STRING) {cases} END)"
            self.n_cluster2_ = len(levels)
        layout = self.layout_ = Layout(self.codings_)
        outs = self.spec.outcomes
        p = layout.p
        spark = is_spark(con)
        # in a fixed order, so that the float sums (and the coefficients to the last digit) are
        # the same in every run of the same data (national: 10 s unordered, 18 s ordered)
        moments_sql = self.design_sql(table, ordered=True)
        sql = self.design_sql(table, ordered=not spark, carried=bool(predictions_table))
        total = con.execute(f"SELECT count(*) FROM {table} WHERE {self.population_where()}").fetchall()[0][0]

        def tick(label: str, start: float):
            done = 0

            def f(rows):
                nonlocal done
                done += rows
                if progress:
                    progress(label, start + 0.5 * min(done, total) / max(total, 1))
            return f

        mom = reduce_batches(con, moments_sql, self._moment_sums, self.batch_rows, tick("modell: momenter", 0.0))
        xtx, xty, yy, n, sw = (mom[k] for k in ("xtx", "xty", "yy", "n", "sw"))
        # solve
        self.beta_full_ = {}
        self.kept_ = {}
        self.notes_ = {}
        self.ainv_ = {}
        self.xbar_ = {}  # the estimation sample's (weighted) mean design row: the indicator's reference
        for o in outs:
            notes = [f"{norsk.integer(v)} rader med observert utfall er utelatt fordi {c} mangler"
                     for c, v in self.missing_[o].items() if c != "*" and v]
            if n[o] == 0:
                raise ValueError(f"outcome {o} has no observed values in the estimation sample")
            cand = [j for j in range(p) if j not in set(layout.structural_zero)]
            kept = _select_columns(xtx[o], cand, layout, notes)
            a = xtx[o][np.ix_(kept, kept)]
            ainv = np.linalg.inv(a)
            b = np.linalg.solve(a, xty[o][kept])
            full = np.zeros(p)
            full[kept] = b
            self.beta_full_[o], self.kept_[o], self.notes_[o], self.ainv_[o] = full, np.array(kept), notes, ainv
            self.xbar_[o] = xtx[o][0] / sw[o]
        # second pass (rows in cluster order): residuals, robust and clustered meat, the person rows
        ticks = tick("modell: residualer og standardfeil", 0.5)
        if spark or not predictions_table:
            meat = reduce_batches(con, sql, self._meat_sums, self.batch_rows, ticks,
                                  cluster="__cluster", order=("__cluster", "__month"))
        else:  # DuckDB writes the person rows while they stream out of the pass (none kept in memory)
            meat = self._meat_acc()
            reduce_batches(con, sql, lambda batches: stream_to_table(con, predictions_table, self._meat_pass(batches, meat, True)),
                           self.batch_rows, ticks)
        if spark and predictions_table:
            con.map_to_table(sql, self._person_row_batches, predictions_table, self.person_row_columns())
        hc, cl, s2, rss, n_clusters = (meat[k] for k in ("hc", "cl", "s2", "rss", "n_clusters"))
        self.results_ = {}
        for o in outs:
            kept = self.kept_[o]
            ainv = self.ainv_[o]
            k = len(kept)
            ybar = xty[o][0] / sw[o]
            tss = yy[o] - sw[o] * ybar * ybar
            sigma2 = rss[o] / (n[o] - k)
            hck = hc[o][np.ix_(kept, kept)]
            cov = {
                "classical": sigma2 * ainv,
                "robust": n[o] / (n[o] - k) * ainv @ hck @ ainv,
            }
            if self.cluster_:
                cov["cluster"] = (n_clusters[o] / (n_clusters[o] - 1)) * ((n[o] - 1) / (n[o] - k)) * ainv @ cl[o] @ ainv
            if self.spec.cluster2:
                sk = s2[o][:, kept]
                g2 = int((np.abs(sk).sum(axis=1) > 0).sum())
                cov["cluster2"] = (g2 / (g2 - 1)) * ((n[o] - 1) / (n[o] - k)) * ainv @ (sk.T @ sk) @ ainv
            params = np.full(p, np.nan)
            params[kept] = self.beta_full_[o][kept]
            self.results_[o] = FitResult(o, layout.names, params, cov, kept, n[o], n_clusters[o] if self.cluster_ else 0,
                                         sw[o], rss[o], tss, self.notes_[o], self.missing_[o].get("*", 0))
        return self

    def apply(self, con, table: str = "analysis", predictions_table: str = "predictions",
              progress=None, carry: dict[str, str] | None = None) -> "IndicatorModel":
        """A frozen model on new data: the person rows of `table` (as `fit` writes them) from the
        stored coefficients and codings, with nothing estimated again (a monthly release under
        a model version). Decile cut points and levels are those of the estimation data; a row
        whose level the estimation never saw gets no expected value (it is not complete)."""
        self.carry_ = dict(carry or {})
        have = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {table}").fetchall()}
        missing = [c for c in ([self.cluster_] if self.cluster_ else []) + (["month"] if self.has_month_ else []) if c not in have]
        if missing:
            raise ValueError(f"the table has no column {', '.join(missing)}, which the model version was estimated with")
        spark = is_spark(con)
        sql = self.design_sql(table, ordered=not spark, carried=True)
        total = con.execute(f"SELECT count(*) FROM {table} WHERE {self.population_where()}").fetchall()[0][0]
        done = 0

        def tick(rows):
            nonlocal done
            done += rows
            if progress:
                progress("modell: forventede verdier", min(done, total) / max(total, 1))
        if spark:
            con.map_to_table(sql, self._person_row_batches, predictions_table, self.person_row_columns())
        else:
            reduce_batches(con, sql, lambda batches: stream_to_table(con, predictions_table, self._person_row_batches(batches)),
                           self.batch_rows, tick)
        return self

    def coefficient_rows(self) -> list[dict]:
        """Coefficient table of every outcome (estimated columns only) with fit statistics."""
        rows = []
        for o, r in self.results_.items():
            for row in r.table(self.spec.se_type):
                if row["coefficient"] == row["coefficient"]:  # skip dropped (NaN) columns
                    rows.append(row | {"nobs": r.nobs, "n_clusters": r.n_clusters, "r2": r.r2})
        return rows
