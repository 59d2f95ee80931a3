"""One outcome's fitted model: coefficients, the three kinds of covariance (classical,
robust HC1, clustered CR1), tests and a summary."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .. import norsk


@dataclass
class FitResult:
    outcome: str
    names: list[str]
    params: np.ndarray  # NaN where dropped
    cov: dict  # se type -> covariance over the kept columns
    kept: np.ndarray  # indices (into names) of estimated columns
    nobs: int
    n_clusters: int
    sum_weights: float
    rss: float
    tss: float
    notes: list[str]
    n_missing: int = 0  # rows with an observed outcome left out for a missing covariate, weight or cluster

    @property
    def df_resid(self) -> int:
        return self.nobs - len(self.kept)

    @property
    def r2(self) -> float:
        return 1 - self.rss / self.tss if self.tss > 0 else float("nan")

    def std_errors(self, se_type: str = "cluster") -> np.ndarray:
        if se_type not in self.cov:
            raise ValueError(f"no {se_type} standard errors: the model was fitted "
                             + ("without a cluster column" if se_type == "cluster" else f"with {', '.join(self.cov)}"))
        out = np.full(len(self.names), np.nan)
        out[self.kept] = np.sqrt(np.diag(self.cov[se_type]))
        return out

    def tvalues(self, se_type: str = "cluster") -> np.ndarray:
        return self.params / self.std_errors(se_type)

    def pvalues(self, se_type: str = "cluster") -> np.ndarray:
        t = self.tvalues(se_type)
        if se_type == "classical":
            return 2 * stats.t.sf(np.abs(t), self.df_resid)
        return 2 * stats.norm.sf(np.abs(t))

    def table(self, se_type: str = "cluster") -> list[dict]:
        """Rows like Nav's model_metrics: variable, coefficient, std_err, t_value, p_value."""
        se = {k: self.std_errors(k) if k in self.cov else np.full(len(self.names), np.nan)
              for k in ("classical", "robust", "cluster")}
        t, p = self.tvalues(se_type), self.pvalues(se_type)
        return [{"response_variable": self.outcome, "variable": n, "coefficient": float(b),
                 "std_err": float(se[se_type][i]), "t_value": float(t[i]), "p_value": float(p[i]),
                 "se_type": se_type, "std_err_classical": float(se["classical"][i]),
                 "std_err_robust": float(se["robust"][i]), "std_err_cluster": float(se["cluster"][i])}
                for i, (n, b) in enumerate(zip(self.names, self.params))]

    def summary(self, se_type: str | None = None) -> str:
        se_type = se_type or ("cluster" if "cluster" in self.cov else "robust")
        lines = [f"{self.outcome}: N = {norsk.integer(self.nobs)}, klynger = {norsk.integer(self.n_clusters)}, "
                 f"R² = {norsk.number(self.r2, 4)}, SE = {se_type}"
                 + (f", utelatt for manglende verdier: {norsk.integer(self.n_missing)}" if self.n_missing else "")]
        for r in self.table(se_type):
            if np.isnan(r["coefficient"]):
                continue
            lines.append(f"  {r['variable']:<45} {norsk.number(r['coefficient'], 4):>10} ({norsk.number(r['std_err'], 4)})")
        return "\n".join(lines + [f"  merknad: {n}" for n in self.notes])
