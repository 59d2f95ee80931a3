"""Policy evaluation with few clusters (docs/evaluation.md): two-way fixed effects with CR1 and
the wild cluster bootstrap (`twfe`), the imputation estimator (`imputation`), the region and
office panels and treatment tables (`panels`), robustness checks (`robustness`), the world's
true policy effects (`policy_truth`), and a whole evaluation from a configuration (`run`)."""
